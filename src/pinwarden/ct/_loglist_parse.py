"""Parsing CT log lists: Chrome's v3 JSON and Apple's list (the formats are described in
:mod:`pinwarden.ct.loglist`) into a :class:`~pinwarden.ct.logs.LogList`, every field checked.

The JSON is read with :mod:`json`; the walk over it is written here because each field
needs its own check and an error that names its path (``operators[1].logs[3].key``).
Fields pinwarden does not use (``email``, ``dns``, ``tls_only``...) are ignored, as are
fields it does not know. Separate from fetching and caching: parsing is pure (bytes in, a
list or a :class:`~pinwarden.errors.LogListError` out).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from pinwarden.ct.logs import FinalTreeHead, Log, LogList, LogState, PreviousOperator, log_id_of
from pinwarden.errors import LogListError
from pinwarden.policy import parse_iso_datetime

KINDS = ("chrome", "apple")


def detect_kind(document: Mapping[str, Any]) -> str:
    """``"apple"`` when the document has Apple's ``assetVersion``/``assetVersionV2`` keys or
    a ``$schema`` under https://valid.apple.com/, else ``"chrome"``."""
    if "assetVersion" in document or "assetVersionV2" in document:
        return "apple"
    schema = document.get("$schema")
    if isinstance(schema, str) and schema.startswith("https://valid.apple.com/"):
        return "apple"
    return "chrome"


def parse_log_list(data: bytes, *, source: str, kind: str | None = None) -> LogList:
    """Parse a Chrome v3 or Apple log list (JSON bytes) into a :class:`LogList`.

    ``kind`` is ``"chrome"`` or ``"apple"``; when None it is detected (:func:`detect_kind`).
    Raises :class:`LogListError` naming ``source`` and the JSON path of the first field that
    is missing or of the wrong type, a ``log_id`` that is not the SHA-256 of its ``key``, or a
    log ID listed twice.
    """
    if kind is not None and kind not in KINDS:
        raise LogListError(f"{source}: unknown log list kind {kind!r} (chrome or apple)")
    try:
        document = json.loads(data, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise LogListError(f"{source}: not JSON: {_short(exc)}") from None
    return _Reader(source).document(document, kind)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "…"


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


class _Reader:
    """One walk over one document; ``fail`` builds the error for a JSON path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> LogListError:
        return LogListError(f"{self.source}: {path}: {message}")

    # typed field access ----------------------------------------------------------------

    def obj(self, value: object, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be an object, not {_type_name(value)}")
        return value

    def need(self, obj: dict[str, Any], key: str, path: str) -> object:
        if key not in obj:
            raise self.fail(_join(path, key), "missing")
        return obj[key]

    # An optional field may be absent; present, it must have its type (null is not one).

    def text(self, obj: dict[str, Any], key: str, path: str) -> str:
        value = self.need(obj, key, path)
        if not isinstance(value, str):
            raise self.fail(_join(path, key), f"must be a string, not {_type_name(value)}")
        return value

    def optional_text(self, obj: dict[str, Any], key: str, path: str) -> str | None:
        return self.text(obj, key, path) if key in obj else None

    def array(self, obj: dict[str, Any], key: str, path: str, *, required: bool) -> list[Any]:
        if not required and key not in obj:
            return []
        value = self.need(obj, key, path)
        if not isinstance(value, list):
            raise self.fail(_join(path, key), f"must be an array, not {_type_name(value)}")
        return value

    def integer(self, obj: dict[str, Any], key: str, path: str, *, minimum: int) -> int:
        value = self.need(obj, key, path)
        where = _join(path, key)
        # JSON has one number type: 86400.0 is accepted as 86400, 1.5 is not a count.
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, float):
            raise self.fail(where, f"must be a whole number, not {value!r}")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"must be a whole number, not {_type_name(value)}")
        if value < minimum:
            raise self.fail(where, f"must be at least {minimum}, not {value}")
        return value

    def b64(self, obj: dict[str, Any], key: str, path: str, *, size: int | None = None) -> bytes:
        text = self.text(obj, key, path)
        where = _join(path, key)
        try:
            value = base64.b64decode(text.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error):
            raise self.fail(where, "not base64") from None
        if not value:
            raise self.fail(where, "empty")
        if size is not None and len(value) != size:
            raise self.fail(where, f"must decode to {size} bytes, not {len(value)}")
        return value

    def time(self, obj: dict[str, Any], key: str, path: str) -> datetime:
        text = self.text(obj, key, path)
        where = _join(path, key)
        try:
            when = parse_iso_datetime(text) if text.strip() else None
        except (ValueError, OverflowError):
            when = None
        if when is None:
            raise self.fail(where, f"{_quote(text)} is not an RFC 3339 date-time")
        if when.tzinfo is None:
            raise self.fail(where, f"{_quote(text)} has no UTC offset (e.g. Z)")
        try:
            return when.astimezone(timezone.utc)
        except OverflowError:
            raise self.fail(where, f"{_quote(text)} is out of range") from None

    def url(self, obj: dict[str, Any], key: str, path: str) -> str:
        text = self.text(obj, key, path)
        try:
            parts = urlsplit(text)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            ok = False
        if not ok:
            raise self.fail(_join(path, key), f"{_quote(text)} is not an http(s) URL")
        return text

    # the document ----------------------------------------------------------------------

    def document(self, value: object, kind: str | None) -> LogList:
        if not isinstance(value, dict):
            raise LogListError(
                f"{self.source}: a log list is a JSON object, not {_type_name(value)}"
            )
        kind = kind or detect_kind(value)
        version = (
            self.text(value, "version", "")
            if kind == "apple"
            else self.optional_text(value, "version", "")
        )
        timestamp = None
        if "log_list_timestamp" in value:
            timestamp = self.time(value, "log_list_timestamp", "")
        if kind == "apple":
            for key in ("assetVersion", "assetVersionV2"):
                if key in value:
                    self.integer(value, key, "", minimum=0)
        logs: list[Log] = []
        seen: dict[bytes, str] = {}
        for i, operator in enumerate(self.array(value, "operators", "", required=True)):
            for log, path in self.operator(operator, f"operators[{i}]", kind):
                if log.log_id in seen:
                    raise self.fail(
                        f"{path}.log_id", f"{log.log_id_b64} is also the ID of {seen[log.log_id]}"
                    )
                seen[log.log_id] = path
                logs.append(log)
        return LogList(
            logs=tuple(logs), kind=kind, source=self.source, version=version, timestamp=timestamp
        )

    def operator(self, value: object, path: str, kind: str) -> list[tuple[Log, str]]:
        operator = self.obj(value, path)
        name = self.text(operator, "name", path)
        for i, email in enumerate(self.array(operator, "email", path, required=False)):
            if not isinstance(email, str):
                raise self.fail(f"{path}.email[{i}]", f"must be a string, not {_type_name(email)}")
        if "logs" not in operator and "tiled_logs" not in operator:
            raise self.fail(path, "has neither logs nor tiled_logs")
        found: list[tuple[Log, str]] = []
        for field, tiled in (("logs", False), ("tiled_logs", True)):
            for i, entry in enumerate(self.array(operator, field, path, required=False)):
                where = f"{path}.{field}[{i}]"
                found.append((self.log(entry, where, operator=name, tiled=tiled, kind=kind), where))
        return found

    def log(self, value: object, path: str, *, operator: str, tiled: bool, kind: str) -> Log:
        entry = self.obj(value, path)
        # The key is not parsed as DER here: Chrome's own sample list has a raw EC point for
        # one log. Log.public_key() fails for such a log when an SCT needs it.
        key = self.b64(entry, "key", path)
        log_id = self.b64(entry, "log_id", path, size=32)
        if not hmac.compare_digest(log_id, log_id_of(key)):
            raise self.fail(f"{path}.log_id", "is not the SHA-256 of key")
        description = self.optional_text(entry, "description", path)
        mmd = self.integer(entry, "mmd", path, minimum=1)
        url = submission_url = monitoring_url = None
        if tiled:
            submission_url = self.url(entry, "submission_url", path)
            monitoring_url = self.url(entry, "monitoring_url", path)
        else:
            url = self.url(entry, "url", path)
        state, since, final = self.state(entry, path, kind)
        interval = None
        if "temporal_interval" in entry:
            where = f"{path}.temporal_interval"
            span = self.obj(entry["temporal_interval"], where)
            start = self.time(span, "start_inclusive", where)
            end = self.time(span, "end_exclusive", where)
            if end <= start:
                raise self.fail(where, "end_exclusive is not after start_inclusive")
            interval = (start, end)
        previous: list[PreviousOperator] = []
        for i, item in enumerate(self.array(entry, "previous_operators", path, required=False)):
            where = f"{path}.previous_operators[{i}]"
            former = self.obj(item, where)
            former_name = self.text(former, "name", where)
            previous.append(PreviousOperator(former_name, self.time(former, "end_time", where)))
        return Log(
            description=description or f"log {base64.b64encode(log_id).decode()}",
            log_id=log_id,
            key=key,
            operator=operator,
            mmd=mmd,
            state=state,
            state_since=since,
            url=url,
            submission_url=submission_url,
            monitoring_url=monitoring_url,
            tiled=tiled,
            temporal_interval=interval,
            previous_operators=tuple(previous),
            final_tree_head=final,
            log_type=self.optional_text(entry, "log_type", path),
        )

    def state(
        self, entry: dict[str, Any], path: str, kind: str
    ) -> tuple[LogState | None, datetime | None, FinalTreeHead | None]:
        # Apple's schema requires a state on every log; Chrome's does not.
        if "state" not in entry and kind == "chrome":
            return None, None, None
        where = f"{path}.state"
        states = self.obj(self.need(entry, "state", path), where)
        if len(states) != 1:
            names = ", ".join(sorted(states)) or "none"
            raise self.fail(where, f"must name exactly one state, not {names}")
        ((name, body),) = states.items()
        try:
            state = LogState(name)
        except ValueError:
            known = ", ".join(s.value for s in LogState)
            raise self.fail(where, f"unknown state {_quote(name)} (one of {known})") from None
        where = f"{where}.{name}"
        details = self.obj(body, where)
        since = self.time(details, "timestamp", where)
        if kind == "apple" and "version" in details:
            self.text(details, "version", where)
        final = None
        # Both schemas require a final tree head for read-only logs; Apple's own build
        # script never reads it, so an Apple list without one is accepted.
        if state is LogState.READONLY and ("final_tree_head" in details or kind == "chrome"):
            head_path = f"{where}.final_tree_head"
            head = self.obj(self.need(details, "final_tree_head", where), head_path)
            final = FinalTreeHead(
                tree_size=self.integer(head, "tree_size", head_path, minimum=0),
                sha256_root_hash=self.b64(head, "sha256_root_hash", head_path, size=32),
            )
        return state, since, final


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _quote(text: str) -> str:
    shown = text if len(text) <= 80 else text[:80] + "…"
    return json.dumps(shown, ensure_ascii=True)
