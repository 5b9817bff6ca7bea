"""The JSON and text forms the CT readers share: a JSON object read from a log's answer,
base64 text, millisecond ISO 8601 UTC times and an exception's first line for messages.

One copy for the tree heads, the proof parsers, the reader's evidence and the HTTP errors, so
that they read and write these alike.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from pinwarden.errors import CTFormatError

__all__ = ["b64", "first_line", "iso_ms", "json_object"]


def json_object(data: bytes | str, source: str) -> Mapping[str, Any]:
    """``data`` parsed as JSON, which must be an object. Raises
    :class:`~pinwarden.errors.CTFormatError` naming ``source``."""
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise CTFormatError(f"{source}: not JSON ({first_line(exc)})") from None
    if not isinstance(obj, dict):
        raise CTFormatError(f"{source}: not a JSON object")
    return obj


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its type name when it has none."""
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def iso_ms(when: datetime) -> str:
    """``when`` in UTC as ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
