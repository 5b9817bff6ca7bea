"""A verifying async client for RFC 6962 CT logs (section 4: ``get-sth``,
``get-sth-consistency``, ``get-proof-by-hash``, ``get-entries``, ``get-roots``).

Nothing a log serves is returned unchecked: every tree head is verified with the log-list key
on receipt, and anything malformed or failing a check raises
:class:`~pinwarden.errors.LogMisbehaviourError` with ``kind`` naming the check and what the
log served as ``evidence``. Proofs are returned parsed; checking them against tree heads (and
entries against the signed root) is :mod:`pinwarden.ct.reader`'s job.

Errors: :class:`~pinwarden.errors.NetworkError` when the log cannot be reached after the
retries of :class:`~pinwarden.ct._http.HTTPSettings` (or redirects elsewhere: redirects are
not followed); :class:`LogMisbehaviourError` kinds ``malformed-tree-head``, ``bad-signature``,
``implausible-size`` (a signed tree head larger than
:data:`~pinwarden.ct.treehead.MAX_TREE_SIZE`), ``bad-proof`` (a proof that does not parse),
``malformed-entry`` (entries that do not parse, none or too many returned) and
``oversized-response`` (an answer larger than ``max_response_bytes``). Evidence ``url`` is the
URL that answered, query included.

Why an oversized answer is misbehaviour, not a network error: no answer of these APIs comes
near the limit (64 MiB by default; a get-entries batch or a tile is at most a few MiB), a
retry would download it again, and exit 3 or a silent retry in the monitor would hide a log
(or whatever answers at its URL) that serves something hostile, which the operator must hear
about. It is not an input error either: nothing the user gave us is wrong.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from pinwarden.ct._closing import AsyncClosing
from pinwarden.ct._http import Fetched, Fetcher, HTTPSettings, ResponseTooLargeError, Sleep
from pinwarden.ct._json_text import json_object
from pinwarden.ct.entries import LogEntry, parse_get_entries
from pinwarden.ct.logs import Log
from pinwarden.ct.treehead import SignedTreeHead, log_name, parse_sth, verify_sth
from pinwarden.errors import CTFormatError, InputError, LogMisbehaviourError

__all__ = [
    "InclusionProof",
    "LogClient",
    "RFC6962Client",
    "gather",
    "parse_consistency_proof",
    "parse_inclusion_proof",
    "parse_roots",
]

_T = TypeVar("_T")

_HASH_SIZE = 32
# A proof in a tree of 2^64 leaves has at most 2 * 64 hashes; more is garbage.
_MAX_PROOF_HASHES = 130
_EVIDENCE_CHARS = 2000


@dataclass(frozen=True)
class InclusionProof:
    """A ``get-proof-by-hash`` answer: the index of the leaf and its audit path."""

    leaf_index: int
    audit_path: tuple[bytes, ...]


async def gather(aws: Iterable[Awaitable[_T]]) -> list[_T]:
    """Run ``aws`` concurrently and return their results in order; on the first failure
    cancel the others and raise it (``asyncio.gather`` would leave them running)."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class LogClient(AsyncClosing):
    """What both clients share: the log, its :class:`~pinwarden.ct._http.Fetcher`, closing,
    and the error helpers. ``api`` is ``"rfc6962"`` or ``"static"``."""

    api = ""

    def __init__(
        self,
        log: Log,
        *,
        settings: HTTPSettings | None = None,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        fetcher: Fetcher | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.log = log
        self.name = log_name(log)
        if fetcher is None:
            url = log.base_url
            if not url:
                raise InputError(f"log {self.name}: the log list gives no URL to read it from")
            fetcher = Fetcher(
                url,
                what=f"log {self.name}",
                settings=settings,
                client=client,
                transport=transport,
                sleep=sleep,
            )
        self.fetcher = fetcher

    async def aclose(self) -> None:
        await self.fetcher.aclose()

    async def latest_head(self) -> SignedTreeHead:
        """The log's current tree head, signature verified."""
        raise NotImplementedError

    async def fetch(self, path: str, params: Mapping[str, str | int] | None = None) -> Fetched:
        """:meth:`Fetcher.fetch <pinwarden.ct._http.Fetcher.fetch>`, with an answer larger
        than the settings allow reported as ``oversized-response`` misbehaviour."""
        try:
            return await self.fetcher.fetch(path, params)
        except ResponseTooLargeError as exc:
            raise self.misbehaviour(
                "oversized-response",
                f"the answer to GET {exc.url} is larger than {exc.limit} bytes",
                {"url": exc.url, "limit": exc.limit},
            ) from None

    def misbehaviour(
        self, kind: str, message: str, evidence: Mapping[str, object] | None = None
    ) -> LogMisbehaviourError:
        return LogMisbehaviourError(kind, self.name, message, dict(evidence or {}))

    def malformed(
        self,
        kind: str,
        exc: CTFormatError,
        path: str,
        body: bytes,
        *,
        url: str | None = None,
        **extra: object,
    ) -> LogMisbehaviourError:
        """A response that does not parse, as misbehaviour with the response as evidence
        (``url``: the URL that answered; default: ``path`` under the log's URL)."""
        evidence: dict[str, object] = {"url": url or self.fetcher.url(path), "error": str(exc)}
        evidence.update(extra)
        evidence["response"] = body[:_EVIDENCE_CHARS].decode("utf-8", "replace")
        return self.misbehaviour(kind, str(exc), evidence)


class RFC6962Client(LogClient):
    """An RFC 6962 log read through ``<url>/ct/v1/…``.

    ``entries_per_request`` is the size of the ``get-entries`` requests; a larger range is
    split into requests fetched in parallel (bounded by the fetcher's ``concurrency``), each
    repeated from where the log stopped when it returns fewer entries than asked.
    """

    api = "rfc6962"

    def __init__(self, log: Log, *, entries_per_request: int = 256, **kwargs: Any) -> None:
        super().__init__(log, **kwargs)
        if entries_per_request < 1:
            raise InputError("entries_per_request must be at least 1")
        self.entries_per_request = entries_per_request

    async def latest_head(self) -> SignedTreeHead:
        return await self.get_sth()

    async def get_sth(self) -> SignedTreeHead:
        """``get-sth``: the current signed tree head, its signature verified."""
        path = "ct/v1/get-sth"
        fetched = await self.fetch(path)
        try:
            sth = parse_sth(fetched.body, source="get-sth")
        except CTFormatError as exc:
            raise self.malformed(
                "malformed-tree-head", exc, path, fetched.body, url=fetched.url
            ) from exc
        verify_sth(sth, self.log)
        return sth

    async def get_sth_consistency(self, first: int, second: int) -> tuple[bytes, ...]:
        """``get-sth-consistency``: the proof that the tree of size ``first`` is a prefix of
        the tree of size ``second`` (empty for equal sizes, without a request)."""
        if not 0 < first <= second:
            raise InputError(
                f"consistency proof sizes must be 0 < first <= second: {first}, {second}"
            )
        if first == second:
            return ()
        path = "ct/v1/get-sth-consistency"
        fetched = await self.fetch(path, {"first": first, "second": second})
        try:
            return parse_consistency_proof(fetched.body)
        except CTFormatError as exc:
            raise self.malformed(
                "bad-proof", exc, path, fetched.body, url=fetched.url, first=first, second=second
            ) from exc

    async def get_proof_by_hash(self, leaf_hash: bytes, tree_size: int) -> InclusionProof:
        """``get-proof-by-hash``: where the leaf with ``leaf_hash`` is in the tree of
        ``tree_size`` leaves, and its audit path."""
        path = "ct/v1/get-proof-by-hash"
        params: dict[str, str | int] = {
            "hash": base64.b64encode(leaf_hash).decode("ascii"),
            "tree_size": tree_size,
        }
        fetched = await self.fetch(path, params)
        try:
            return parse_inclusion_proof(fetched.body, tree_size)
        except CTFormatError as exc:
            raise self.malformed(
                "bad-proof",
                exc,
                path,
                fetched.body,
                url=fetched.url,
                leaf_hash=params["hash"],
                tree_size=tree_size,
            ) from exc

    async def get_entries(self, start: int, end: int) -> list[LogEntry]:
        """Entries ``start`` to ``end - 1`` (half-open, unlike the RFC's inclusive ``end``
        parameter), in order, however few entries the log returns per request."""
        if not 0 <= start <= end:
            raise InputError(f"entry range must be 0 <= start <= end: {start}, {end}")
        step = self.entries_per_request
        chunks = [(s, min(s + step, end)) for s in range(start, end, step)]
        results = await gather(self._entries(s, e) for s, e in chunks)
        return [entry for chunk in results for entry in chunk]

    async def _entries(self, start: int, end: int) -> list[LogEntry]:
        path = "ct/v1/get-entries"
        found: list[LogEntry] = []
        position = start
        while position < end:
            fetched = await self.fetch(path, {"start": position, "end": end - 1})
            body = fetched.body
            try:
                entries = parse_get_entries(body, position, source="get-entries")
            except CTFormatError as exc:
                raise self.malformed(
                    "malformed-entry", exc, path, body, url=fetched.url, start=position, end=end - 1
                ) from exc
            problem = None
            if not entries:
                problem = f"get-entries returned no entries for {position}..{end - 1}"
            elif len(entries) > end - position:
                problem = (
                    f"get-entries returned {len(entries)} entries for {position}..{end - 1}, "
                    f"more than the {end - position} asked"
                )
            if problem is not None:
                raise self.malformed(
                    "malformed-entry",
                    CTFormatError(problem),
                    path,
                    body,
                    url=fetched.url,
                    start=position,
                    end=end - 1,
                )
            found.extend(entries)
            position += len(entries)
        return found

    async def get_roots(self) -> list[bytes]:
        """``get-roots``: the DER certificates the log accepts as roots (not parsed)."""
        path = "ct/v1/get-roots"
        fetched = await self.fetch(path)
        try:
            return parse_roots(fetched.body)
        except CTFormatError as exc:
            raise self.malformed(
                "malformed-entry", exc, path, fetched.body, url=fetched.url
            ) from exc


def parse_consistency_proof(body: bytes | str) -> tuple[bytes, ...]:
    """A ``get-sth-consistency`` response: the proof's 32-byte hashes. Raises
    :class:`~pinwarden.errors.CTFormatError`."""
    source = "get-sth-consistency"
    return _hash_list(json_object(body, source), "consistency", source)


def parse_inclusion_proof(body: bytes | str, tree_size: int) -> InclusionProof:
    """A ``get-proof-by-hash`` response for a tree of ``tree_size`` leaves. Raises
    :class:`~pinwarden.errors.CTFormatError`."""
    source = "get-proof-by-hash"
    obj = json_object(body, source)
    index = obj.get("leaf_index")
    if isinstance(index, bool) or not isinstance(index, int):
        raise CTFormatError(f"{source}: leaf_index is missing or not an integer")
    if not 0 <= index < tree_size:
        raise CTFormatError(f"{source}: leaf_index {index} is outside a tree of size {tree_size}")
    return InclusionProof(index, _hash_list(obj, "audit_path", source))


def parse_roots(body: bytes | str) -> list[bytes]:
    """A ``get-roots`` response: the DER certificates (not parsed). Raises
    :class:`~pinwarden.errors.CTFormatError`."""
    source = "get-roots"
    items = json_object(body, source).get("certificates")
    if not isinstance(items, list):
        raise CTFormatError(f"{source}: certificates is missing or not a list")
    return [_b64(item, f"{source}: certificates[{i}]") for i, item in enumerate(items)]


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise CTFormatError(f"{what}: not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CTFormatError(f"{what}: not base64") from None


def _hash_list(obj: Mapping[str, Any], key: str, source: str) -> tuple[bytes, ...]:
    items = obj.get(key)
    if not isinstance(items, list):
        raise CTFormatError(f"{source}: {key} is missing or not a list")
    if len(items) > _MAX_PROOF_HASHES:
        raise CTFormatError(f"{source}: {key} has {len(items)} hashes, too many for any tree")
    hashes = []
    for position, item in enumerate(items):
        value = _b64(item, f"{source}: {key}[{position}]")
        if len(value) != _HASH_SIZE:
            raise CTFormatError(f"{source}: {key}[{position}] is {len(value)} bytes, not 32")
        hashes.append(value)
    return tuple(hashes)
