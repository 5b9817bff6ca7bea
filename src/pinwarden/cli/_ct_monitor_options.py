"""The checks on ``pinwarden ct monitor``'s options that need more than Typer gives: where
to start a new log (``--start-at-end``, ``--from-start``, ``--from``), the ``--state`` URL,
the ``--alert`` channels and bounded numbers. Separate from the command so that each check
is read (and tested) on its own; all raise :class:`~pinwarden.errors.InputError`."""

from __future__ import annotations

import datetime as dt

from pinwarden.cli._common import parse_when
from pinwarden.ct.alerts import Channel, StdoutChannel, parse_alert_spec
from pinwarden.ct.store import redact_url, sqlite_path_of
from pinwarden.errors import InputError

__all__ = ["alert_channels", "check_positive", "check_state", "parse_from", "start_position"]


def start_position(
    start_at_end: bool, from_start: bool, from_date: str | None
) -> str | dt.datetime:
    chosen = [
        name
        for name, given in (
            ("--start-at-end", start_at_end),
            ("--from-start", from_start),
            ("--from", from_date is not None),
        )
        if given
    ]
    if len(chosen) > 1:
        raise InputError(f"{' and '.join(chosen)} cannot be combined: choose where to start")
    if from_start:
        return "start"
    if from_date is None:
        return "end"
    return parse_from(from_date)


def parse_from(text: str) -> dt.datetime:
    """``--from``: read like ``--at`` (a date, or an ISO 8601 datetime with an offset)."""
    return parse_when(text, "--from")


def check_state(url: str) -> None:
    """Refuse a state URL the store could never open before anything is downloaded."""
    scheme = url.partition(":")[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        sqlite_path_of(url)
    elif scheme not in ("postgresql", "postgres"):
        raise InputError(
            f"--state {redact_url(url)!r}: unknown scheme {scheme or '(none)'!r}; use "
            "sqlite:///path/to/file.sqlite3 or postgresql://user@host/database"
        )


def alert_channels(specs: list[str], json_: bool) -> tuple[Channel, ...]:
    channels = tuple(parse_alert_spec(spec) for spec in specs)
    if not channels:
        return (StdoutChannel(json_lines=json_),)
    names = [channel.name for channel in channels]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        # The outbox keys deliveries by channel name: two equal channels would be one.
        raise InputError(f"--alert {repeated[0]!r} is given twice")
    return channels


def check_positive(value: float, option: str, limit: float) -> None:
    if not value == value or not 0 < value <= limit:  # also refuses NaN
        raise InputError(f"{option} {value}: give a number more than 0 and at most {limit:g}")
