"""What several commands read the same way: policies, certificate files, dates, live
endpoints with a progress bar."""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from pinwarden.apps.live import AddressResult, Endpoint, probe_endpoints
from pinwarden.certs import CertInfo, describe_chain, load_objects
from pinwarden.cli._output import err
from pinwarden.cli.pin import _read
from pinwarden.errors import CertificateError, InputError
from pinwarden.policy import Policy, parse_iso_datetime

__all__ = [
    "CafileOption",
    "ConnectOption",
    "ServernameOption",
    "TimeoutOption",
    "check_port",
    "check_timeout",
    "load_chain",
    "load_policy_text",
    "parse_when",
    "probe_with_progress",
]


# The connection options of the commands that probe one host (inspect, ct check).
ServernameOption = Annotated[
    str | None, typer.Option(help="Name to send (SNI) and verify; default: HOST.")
]
ConnectOption = Annotated[
    str | None,
    typer.Option(metavar="IP", help="Connect to this address instead of resolving HOST."),
]
CafileOption = Annotated[
    str | None,
    typer.Option(help="Trust these CA certificates (PEM) instead of the system store."),
]
TimeoutOption = Annotated[float, typer.Option(help="Seconds to wait for the connection.")]


def parse_when(text: str | None, option: str = "--at") -> dt.datetime:
    """``--at`` (or ``option``): a date (its start, UTC) or an ISO 8601 datetime with an
    offset; now when None."""
    if text is None:
        return dt.datetime.now(dt.timezone.utc)
    value = text.strip()
    try:
        if len(value) == 10:
            when = dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), dt.timezone.utc)
        else:
            when = parse_iso_datetime(value)
    except ValueError:
        raise InputError(
            f"{option} {text!r} is not a date (YYYY-MM-DD) or ISO 8601 datetime"
        ) from None
    if when.tzinfo is None:
        raise InputError(f"{option} {text!r} needs a UTC offset (e.g. 2027-01-01T00:00:00Z)")
    try:
        utc = when.astimezone(dt.timezone.utc)
        # Leave room for the date arithmetic of the commands (a year of policy lifetime).
        utc + dt.timedelta(days=800)
        utc - dt.timedelta(days=800)
    except OverflowError:
        raise InputError(f"{option} {text!r} is out of range") from None
    return utc


def check_timeout(value: float, option: str = "--timeout") -> float:
    """A timeout in seconds: finite, positive, at most a day."""
    if not math.isfinite(value) or value <= 0 or value > 86400:
        raise InputError(f"{option} {value}: give seconds, more than 0 and at most 86400")
    return value


def check_port(value: int, option: str = "--port") -> int:
    if not 0 < value < 65536:
        raise InputError(f"{option} {value}: a port is a number from 1 to 65535")
    return value


def load_policy_text(path: str) -> tuple[Policy, str]:
    """A policy file and its text (for line numbers)."""
    policy = Policy.load(path)
    return policy, Path(path).read_text(encoding="utf-8")


def load_chain(path: str) -> list[CertInfo]:
    """The certificates of a PEM/DER file, described as a chain (leaf first)."""
    certs = [o.certificate for o in load_objects(_read(path), source=path)]
    found = [c for c in certs if c is not None]
    if not found:
        raise CertificateError(f"{path}: no certificate in this file")
    return describe_chain(found, ends_at_anchor=False)


def probe_with_progress(
    endpoints: Sequence[Endpoint],
    *,
    nameserver: str | None,
    cafile: str | None,
    timeout: float,
    concurrency: int,
    quiet: bool = False,
) -> list[AddressResult]:
    """:func:`probe_endpoints` with a progress bar on stderr (none when ``quiet``)."""
    if concurrency < 1:
        raise InputError("--concurrency must be at least 1")
    check_timeout(timeout)
    probe = functools.partial(
        probe_endpoints,
        endpoints,
        nameserver=nameserver,
        cafile=cafile,
        timeout=timeout,
        concurrency=concurrency,
    )
    if quiet or not endpoints:
        return probe()
    with Progress(
        TextColumn("checking addresses"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err(),
        transient=True,
    ) as progress:
        task = progress.add_task("check", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return probe(on_progress=update)
