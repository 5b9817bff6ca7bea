"""``pinwarden ct log sth|get|verify LOG``: read one CT log (RFC 6962 or static-ct-api) and
check what it serves — the signed tree head, entries by index, or a whole range against the
signed root. For debugging a log; the monitor does the same continuously.

LOG is a log of a log list (its description, a unique part of it, its base64 log ID or its
URL; ``--log-list``, default the cached list), or a log URL with ``--key`` (its public key)
and ``--api``. Exit 0 when everything verified, 1 when the log misbehaved (the evidence is
printed), 2 for a usage or input error, 3 when the log could not be read.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
from collections.abc import Callable, Coroutine
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pinwarden.cli._app import JSON_HELP
from pinwarden.cli._common import check_timeout
from pinwarden.cli._ct_log_output import (
    entry_json,
    log_json,
    show_entry,
    show_head,
    show_misbehaviour,
    shown,
    verify_progress,
)
from pinwarden.cli._output import emit_json, out
from pinwarden.cli.ct import ct_app
from pinwarden.cli.ct_loglist import LOG_LIST_HELP, load_for_cli
from pinwarden.ct._http import HTTPSettings
from pinwarden.ct.entries import LogEntry
from pinwarden.ct.logs import Log, LogList, log_id_of
from pinwarden.ct.reader import LogReader
from pinwarden.ct.treehead import SignedTreeHead, checkpoint_origin, log_name
from pinwarden.errors import InputError, LogMisbehaviourError

__all__ = ["entry_json", "log_app", "resolve_log"]

log_app = typer.Typer(
    help="Read one CT log and verify what it serves: its signed tree head (`sth`), entries "
    "(`get`), a range of entries against the signed root (`verify`).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
ct_app.add_typer(log_app, name="log")

_T = TypeVar("_T")


class Api(str, Enum):
    RFC6962 = "rfc6962"
    STATIC = "static"


LogArgument = Annotated[
    str,
    typer.Argument(
        metavar="LOG",
        help="A log of the log list (description, unique part of it, base64 log ID or URL), "
        "or a log URL with --key.",
    ),
]
LogListOption = Annotated[
    str | None, typer.Option("--log-list", metavar="FILE|URL", help=LOG_LIST_HELP)
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--key",
        metavar="FILE",
        help="The log's public key (PEM or DER SubjectPublicKeyInfo): read LOG as a URL "
        "instead of looking it up in a log list.",
    ),
]
ApiOption = Annotated[
    Api,
    typer.Option(help="The API of the log at a URL given with --key (RFC 6962 or static-ct-api)."),
]
OriginOption = Annotated[
    str | None,
    typer.Option(
        metavar="ORIGIN",
        help="The checkpoint origin to expect from a static-ct-api log (default: its "
        "submission URL without scheme).",
    ),
]
TimeoutOption = Annotated[
    float, typer.Option(help="Seconds to wait for each request (each is retried on failure).")
]
RetriesOption = Annotated[
    int,
    typer.Option(
        metavar="N",
        help="Retries of a failed request (timeout, dropped connection, 429, 5xx), with "
        "backoff and the log's Retry-After.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help=JSON_HELP)]


# -- finding the log ---------------------------------------------------------------------


def _read_key(path: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"--key {path}: cannot read: {exc.strerror or exc}") from None
    key: object
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_public_key(data)
        else:
            try:
                key = serialization.load_der_public_key(data)
            except ValueError:
                # The log list's own spelling: the base64 of the DER key.
                key = serialization.load_der_public_key(base64.b64decode(data, validate=True))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InputError(f"--key {path}: not a PEM or DER public key ({exc})") from None
    if not isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
        raise InputError(f"--key {path}: a CT log key is ECDSA or RSA")
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def _same_url(a: str, b: str | None) -> bool:
    return b is not None and checkpoint_origin(a).lower() == checkpoint_origin(b).lower()


def resolve_log(value: str, loglist: LogList) -> Log:
    """The log of ``loglist`` that ``value`` names: its base64 log ID, one of its URLs
    (scheme and trailing slash ignored), its description (case-insensitive), or a part of the
    description found in exactly one log. Raises :class:`~pinwarden.errors.InputError`."""
    text = value.strip()
    try:
        raw_id = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw_id = b""
    if len(raw_id) == 32 and (found := loglist.by_id(raw_id)) is not None:
        return found
    by_url = [
        log
        for log in loglist.logs
        if any(_same_url(text, u) for u in (log.url, log.submission_url, log.monitoring_url))
    ]
    if by_url:
        return by_url[0]
    folded = text.casefold()
    exact = [log for log in loglist.logs if log.description.casefold() == folded]
    if len(exact) == 1:
        return exact[0]
    partial = exact or [log for log in loglist.logs if folded in log.description.casefold()]
    if len(partial) == 1:
        return partial[0]
    if not partial:
        raise InputError(f"no log in {loglist.source} matches {value!r}")
    names = ", ".join(repr(log.description) for log in partial[:10])
    raise InputError(f"{value!r} matches {len(partial)} logs in {loglist.source}: {names}")


def _log(value: str, log_list: str | None, key: str | None, api: Api, now: dt.datetime) -> Log:
    if key is None:
        return resolve_log(value, load_for_cli(log_list, now))
    if log_list is not None:
        raise InputError("give either --key (LOG is a URL) or --log-list, not both")
    if not _is_url(value):
        raise InputError(f"with --key, LOG is the log's http(s) URL, not {value!r}")
    spki = _read_key(key)
    url = value if value.endswith("/") else value + "/"
    tiled = api is Api.STATIC
    return Log(
        description=url,
        log_id=log_id_of(spki),
        key=spki,
        operator="unknown",
        url=None if tiled else url,
        submission_url=url if tiled else None,
        monitoring_url=url if tiled else None,
        tiled=tiled,
    )


# -- running -------------------------------------------------------------------------------


def _reader(log: Log, origin: str | None, timeout: float, retries: int) -> LogReader:
    if not 0 <= retries <= 100:
        raise InputError(f"--retries {retries}: give 0 to 100")
    settings = HTTPSettings(timeout=check_timeout(timeout), attempts=retries + 1)
    if origin is not None and not log.tiled:
        raise InputError("--origin applies to static-ct-api logs only")
    extra: dict[str, Any] = {"origin": origin} if log.tiled else {}
    return LogReader(log, settings=settings, **extra)


def _run(
    log: Log,
    json_: bool,
    work: Callable[[LogReader], Coroutine[Any, Any, _T]],
    origin: str | None,
    timeout: float,
    retries: int,
) -> _T:
    """Run ``work`` with a reader of ``log``; on misbehaviour print the evidence, exit 1."""

    async def main() -> _T:
        async with _reader(log, origin, timeout, retries) as reader:
            return await work(reader)

    try:
        return asyncio.run(main())
    except LogMisbehaviourError as exc:
        show_misbehaviour(log, exc, json_)
        raise typer.Exit(1) from None


def _emit_verified(log: Log, head: SignedTreeHead, **more: Any) -> None:
    """The ``--json`` document of a command whose answers all verified."""
    emit_json({"log": log_json(log), "verified": True, "tree_head": head.to_json(), **more})


# -- commands ------------------------------------------------------------------------------


@log_app.command("sth")
def sth_command(
    log: LogArgument,
    log_list: LogListOption = None,
    key: KeyOption = None,
    api: ApiOption = Api.RFC6962,
    origin: OriginOption = None,
    timeout: TimeoutOption = 30.0,
    retries: RetriesOption = 4,
    json_: JsonOption = False,
) -> None:
    """Fetch the log's current signed tree head (RFC 6962 get-sth, or the static-ct-api
    checkpoint) and verify its signature with the log's key.

    Exit 0 when it verifies, 1 when the log misbehaved, 3 when it could not be read.
    """
    now = dt.datetime.now(dt.timezone.utc)
    target = _log(log, log_list, key, api, now)

    async def work(reader: LogReader) -> SignedTreeHead:
        return await reader.latest_verified()

    head = _run(target, json_, work, origin, timeout, retries)
    if json_:
        _emit_verified(target, head)
    else:
        show_head(target, head, now)


@log_app.command("get")
def get_command(
    log: LogArgument,
    index: Annotated[int, typer.Argument(metavar="INDEX", help="The first entry, from 0.")],
    end: Annotated[
        int | None,
        typer.Argument(metavar="[END]", help="The last entry (inclusive); default: INDEX."),
    ] = None,
    log_list: LogListOption = None,
    key: KeyOption = None,
    api: ApiOption = Api.RFC6962,
    origin: OriginOption = None,
    timeout: TimeoutOption = 30.0,
    retries: RetriesOption = 4,
    json_: JsonOption = False,
) -> None:
    """Fetch entries INDEX to END of the log and print them (names, issuer, serial,
    validity, SPKI pin, TBS hash), each proved to be in the log's signed tree.

    Exit 0 when they verify, 1 when the log misbehaved, 3 when it could not be read.
    """
    last = index if end is None else end
    if index < 0 or last < index:
        raise InputError(f"entries {index}..{last}: give 0 <= INDEX <= END")
    now = dt.datetime.now(dt.timezone.utc)
    target = _log(log, log_list, key, api, now)

    async def work(reader: LogReader) -> tuple[SignedTreeHead, list[LogEntry]]:
        head = await reader.latest_verified()
        if last >= head.tree_size:
            raise InputError(
                f"entry {last} is not in the log: its signed tree head has {head.tree_size} entries"
            )
        found: list[LogEntry] = []
        async for batch in reader.entries(index, last + 1, head):
            found.extend(batch.entries)
        return head, found

    head, entries = _run(target, json_, work, origin, timeout, retries)
    if json_:
        _emit_verified(target, head, entries=[entry_json(e) for e in entries])
        return
    for position, entry in enumerate(entries):
        if position:
            out().print()
        show_entry(entry)


@log_app.command("verify")
def verify_command(
    log: LogArgument,
    start: Annotated[int, typer.Option(metavar="N", help="The first entry to verify.")] = 0,
    end: Annotated[
        int | None,
        typer.Option(metavar="M", help="Stop before entry M; default: the tree size."),
    ] = None,
    log_list: LogListOption = None,
    key: KeyOption = None,
    api: ApiOption = Api.RFC6962,
    origin: OriginOption = None,
    timeout: TimeoutOption = 30.0,
    retries: RetriesOption = 4,
    json_: JsonOption = False,
) -> None:
    """Audit entries N to M-1: download them, hash each into the tree and check the result
    against the signed tree head (from entry 0 to the tree size, the root is recomputed
    from every entry).

    Exit 0 when the range verifies, 1 when the log misbehaved, 3 when it could not be read.
    """
    if start < 0 or (end is not None and end < start):
        raise InputError(f"--start {start} --end {end}: give 0 <= N <= M")
    now = dt.datetime.now(dt.timezone.utc)
    target = _log(log, log_list, key, api, now)

    async def work(reader: LogReader) -> tuple[SignedTreeHead, int, int]:
        head = await reader.latest_verified()
        stop = head.tree_size if end is None else end
        if stop > head.tree_size:
            raise InputError(
                f"--end {stop} is beyond the log's signed tree head of {head.tree_size} entries"
            )
        count = 0
        with verify_progress(stop - start) as progress:
            task = progress.add_task("verify", total=stop - start)
            async for batch in reader.entries(start, stop, head):
                count += len(batch.entries)
                progress.update(task, completed=count)
        return head, stop, count

    head, stop, count = _run(target, json_, work, origin, timeout, retries)
    full = start == 0 and stop == head.tree_size
    if json_:
        _emit_verified(target, head, start=start, end=stop, entries=count, root_recomputed=full)
        return
    how = (
        "the root recomputed from every entry equals the signed root"
        if full
        else "proved part of the signed tree"
    )
    out().print(
        f"[green]verified[/green] {shown(log_name(target))}: entries {start}..{stop - 1} "
        f"({count}) against the tree head of size {head.tree_size}: {how}"
        if count
        else f"[green]verified[/green] {shown(log_name(target))}: no entries in "
        f"{start}..{stop - 1}; tree head of size {head.tree_size} verified"
    )
