"""What a CT log list says about each log: a pure data model shared by SCT verification, the
CT-policy audit, the log clients and the monitor.

Parsing (Chrome v3, Apple) is in :mod:`pinwarden.ct.loglist`; this module only holds the
values and writes them back as a Chrome v3 document (used by the test kit to publish the keys
of its own logs).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_der_public_key

__all__ = ["FinalTreeHead", "Log", "LogList", "LogState", "PreviousOperator", "log_id_of"]


class LogState(str, Enum):
    """The states of Chrome's CT log lifecycle (Apple's list uses the same names)."""

    PENDING = "pending"
    QUALIFIED = "qualified"
    USABLE = "usable"
    READONLY = "readonly"
    RETIRED = "retired"
    REJECTED = "rejected"


@dataclass(frozen=True)
class FinalTreeHead:
    """The last tree head of a read-only log, as the list freezes it."""

    tree_size: int
    sha256_root_hash: bytes


@dataclass(frozen=True)
class PreviousOperator:
    """An operator that ran the log until ``end_time`` (exclusive)."""

    name: str
    end_time: datetime


@dataclass(frozen=True)
class Log:
    """One CT log. ``key`` is the DER SubjectPublicKeyInfo; ``log_id`` its SHA-256.

    An RFC 6962 log has ``url``; a static-ct-api ("tiled") log has ``submission_url`` and
    ``monitoring_url`` and ``tiled`` set. ``state_since`` is when the log entered ``state``
    (``None`` when the list gives no state). ``temporal_interval`` is the half-open range of
    certificate expiry dates (``notAfter``) the log accepts.
    """

    description: str
    log_id: bytes
    key: bytes
    operator: str
    mmd: int = 86400
    state: LogState | None = None
    state_since: datetime | None = None
    url: str | None = None
    submission_url: str | None = None
    monitoring_url: str | None = None
    tiled: bool = False
    temporal_interval: tuple[datetime, datetime] | None = None
    previous_operators: tuple[PreviousOperator, ...] = ()
    final_tree_head: FinalTreeHead | None = None
    log_type: str | None = None

    @property
    def log_id_b64(self) -> str:
        return base64.b64encode(self.log_id).decode("ascii")

    @property
    def base_url(self) -> str | None:
        """Where the log is read: ``monitoring_url`` for a tiled log, else ``url``."""
        return self.monitoring_url if self.tiled else self.url

    def public_key(self) -> EllipticCurvePublicKey | RSAPublicKey:
        key = load_der_public_key(self.key)
        if not isinstance(key, (EllipticCurvePublicKey, RSAPublicKey)):
            raise TypeError(f"log {self.description}: key is neither ECDSA nor RSA")
        return key

    def operator_at(self, when: datetime) -> str:
        """Who operated the log at ``when``: the first previous operator whose ``end_time``
        is after ``when``, else the current one."""
        for previous in sorted(self.previous_operators, key=lambda p: p.end_time):
            if when < previous.end_time:
                return previous.name
        return self.operator


@dataclass(frozen=True)
class LogList:
    """A parsed log list. ``kind`` is ``"chrome"`` or ``"apple"``; ``source`` the file or URL;
    ``fetched_at`` when this copy was downloaded (from the cache), if known."""

    logs: tuple[Log, ...]
    kind: str = "chrome"
    source: str = "<memory>"
    version: str | None = None
    timestamp: datetime | None = None
    fetched_at: datetime | None = None
    _by_id: dict[bytes, Log] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {log.log_id: log for log in self.logs})

    def by_id(self, log_id: bytes) -> Log | None:
        return self._by_id.get(log_id)

    @property
    def operators(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(log.operator for log in self.logs))

    def to_chrome_v3(self) -> dict[str, Any]:
        """This list as a Chrome v3 JSON document (``json.dumps`` it to write a file)."""
        operators: dict[str, dict[str, Any]] = {}
        for log in self.logs:
            entry = operators.setdefault(
                log.operator, {"name": log.operator, "email": [], "logs": [], "tiled_logs": []}
            )
            entry["tiled_logs" if log.tiled else "logs"].append(_log_to_v3(log))
        document: dict[str, Any] = {"operators": list(operators.values())}
        if self.version is not None:
            document["version"] = self.version
        if self.timestamp is not None:
            document["log_list_timestamp"] = _time(self.timestamp)
        return document


def log_id_of(key_der: bytes) -> bytes:
    """RFC 6962 section 3.2: a log's ID is the SHA-256 of its DER SubjectPublicKeyInfo."""
    return hashlib.sha256(key_der).digest()


def _time(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _log_to_v3(log: Log) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "description": log.description,
        "log_id": log.log_id_b64,
        "key": base64.b64encode(log.key).decode("ascii"),
        "mmd": log.mmd,
    }
    if log.tiled:
        entry["submission_url"] = log.submission_url
        entry["monitoring_url"] = log.monitoring_url
    else:
        entry["url"] = log.url
    if log.state is not None:
        state: dict[str, Any] = {
            "timestamp": _time(log.state_since or datetime(1970, 1, 1, tzinfo=timezone.utc))
        }
        if log.final_tree_head is not None:
            state["final_tree_head"] = {
                "sha256_root_hash": base64.b64encode(log.final_tree_head.sha256_root_hash).decode(),
                "tree_size": log.final_tree_head.tree_size,
            }
        entry["state"] = {log.state.value: state}
    if log.temporal_interval is not None:
        start, end = log.temporal_interval
        entry["temporal_interval"] = {"start_inclusive": _time(start), "end_exclusive": _time(end)}
    if log.previous_operators:
        entry["previous_operators"] = [
            {"name": p.name, "end_time": _time(p.end_time)} for p in log.previous_operators
        ]
    if log.log_type is not None:
        entry["log_type"] = log.log_type
    return entry
