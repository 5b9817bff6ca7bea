"""The on-disk cache of downloaded CT log lists (one per kind, with its signature and a
metadata file naming its fetch time), the list commands use by default, and the warning
when a list is too old to judge with.

Separate from fetching: reading the cache never touches the network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pinwarden.ct._loglist_parse import KINDS, parse_log_list
from pinwarden.ct.logs import LogList
from pinwarden.errors import LogListError
from pinwarden.policy import parse_iso_datetime

# Chrome stops enforcing CT when its list is older than 70 days
# (https://googlechrome.github.io/CertificateTransparency/log_list.html).
MAX_AGE = timedelta(days=70)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/pinwarden/ct`` (``~/.cache/pinwarden/ct`` when unset or relative,
    as the XDG base directory specification says)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "pinwarden" / "ct"


def cache_path(kind: str = "chrome", cache_dir: Path | None = None) -> Path:
    """The cached list of ``kind``: ``<cache>/<kind>-log-list.json``; its signature (when it
    had one) is beside it as ``.sig`` and its URL and fetch time as ``.meta.json``."""
    if kind not in KINDS:
        raise LogListError(f"unknown log list kind {kind!r} (chrome or apple)")
    return (cache_dir or default_cache_dir()) / f"{kind}-log-list.json"


def _sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name.removesuffix(".json") + suffix)


def _write_cache(
    directory: Path, kind: str, data: bytes, sig: bytes | None, meta: dict[str, Any]
) -> None:
    path = cache_path(kind, directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        sig_path = _sidecar(path, ".sig")
        if sig is not None:
            _atomic_write(sig_path, sig)
        else:
            sig_path.unlink(missing_ok=True)
        _atomic_write(path, data)
        # Written last and naming the list's SHA-256: a crash between the writes leaves
        # metadata that does not match, which reads as "fetch time unknown".
        _atomic_write(_sidecar(path, ".meta.json"), json.dumps(meta, indent=2).encode())
    except OSError as exc:
        raise LogListError(f"{directory}: cannot write the log list cache: {exc}") from None


def _atomic_write(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def cached_log_list(kind: str = "chrome", *, cache_dir: Path | None = None) -> LogList | None:
    """The cached list of ``kind`` (None when there is none), with ``fetched_at`` from its
    metadata. Its ``source`` is the cache file, so errors name the file to delete."""
    path = cache_path(kind, cache_dir)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LogListError(f"{path}: cannot read the cached log list: {exc.strerror}") from None
    try:
        loglist = parse_log_list(data, source=str(path), kind=kind)
    except LogListError as exc:
        raise LogListError(f"{exc} (run `pinwarden ct loglist update` to replace it)") from None
    return dataclasses.replace(loglist, fetched_at=_cached_fetch_time(path, data))


def _cached_fetch_time(path: Path, data: bytes) -> datetime | None:
    try:
        meta = json.loads(_sidecar(path, ".meta.json").read_bytes())
        if not isinstance(meta, dict) or meta.get("sha256") != hashlib.sha256(data).hexdigest():
            return None
        fetched = parse_iso_datetime(str(meta["fetched_at"]))
    except (OSError, ValueError, KeyError, RecursionError, OverflowError):
        return None
    return fetched.astimezone(timezone.utc) if fetched.tzinfo is not None else None


def default_log_list(
    now: datetime | None = None, *, kind: str = "chrome", cache_dir: Path | None = None
) -> LogList:
    """The list commands use when given no ``--log-list``: the cached one of ``kind``.

    Never touches the network. Raises :class:`LogListError` saying what to do when nothing is
    cached. ``now`` is accepted so callers pass their clock as to the CLI loader; the list is
    returned whatever its age (see :func:`staleness_warning`).
    """
    del now
    loglist = cached_log_list(kind, cache_dir=cache_dir)
    if loglist is None:
        flag = "" if kind == "chrome" else f" --kind {kind}"
        where = cache_path(kind, cache_dir).parent
        raise LogListError(
            f"no {kind.capitalize()} CT log list is cached in {where}: "
            f"run `pinwarden ct loglist update{flag}` or pass --log-list FILE|URL"
        )
    return loglist


def staleness_warning(loglist: LogList, now: datetime) -> str | None:
    """A warning when the list is more than 70 days old at ``now`` (Chrome stops enforcing CT
    with such a list), measured from ``log_list_timestamp`` or else the download time; None
    when it is fresh enough or its age is unknown (an Apple list read from a file)."""
    reference, what = loglist.timestamp, "published"
    if reference is None:
        reference, what = loglist.fetched_at, "downloaded"
    if reference is None:
        return None
    age = now - reference
    if age <= MAX_AGE:
        return None
    # 70 days and some hours is already too old; say so rather than "70 days ago".
    days = f"{age.days}" if age.days > MAX_AGE.days else f"more than {MAX_AGE.days}"
    return (
        f"{loglist.source}: this log list was {what} {days} days ago "
        f"({reference:%Y-%m-%d}); Chrome stops enforcing CT with a list older than "
        f"{MAX_AGE.days} days and logs may have changed state since: run "
        "`pinwarden ct loglist update`"
    )
