"""Streaming gzip decoding with a cap on the output, for the HTTP fetcher of the CT clients.

Separate from :mod:`pinwarden.ct._http` because it is byte handling, not HTTP: the fetcher
feeds it the raw chunks of a body and turns its two exceptions into a retry (:class:`_Garbled`,
kept by that name: it appears in the fetcher's messages) or a
:class:`~pinwarden.ct._http.ResponseTooLargeError` (:class:`_TooLarge`).
"""

from __future__ import annotations

import zlib


class _Garbled(Exception):
    """A body that does not decode (bad or truncated gzip): retried like a broken transfer."""


class _TooLarge(Exception):
    """A body beyond ``max_response_bytes`` (raised inside
    :meth:`~pinwarden.ct._http.Fetcher._once`)."""


class _Gunzip:
    """Decompresses the gzip members of a body as its chunks arrive, refusing more than
    ``limit`` bytes of output (raises :class:`_TooLarge`). Hand-written over zlib because
    httpx's decoder has no output limit; the pattern of ``pinwarden.ct.tiles._gunzip``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._size = 0
        self._member: zlib._Decompress | None = None

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        while data:
            if self._member is None:
                self._member = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            member = self._member
            try:
                piece = member.decompress(data, self._limit - self._size + 1)
            except zlib.error as exc:
                raise _Garbled(f"bad gzip data ({exc})") from None
            self._size += len(piece)
            if self._size > self._limit:
                raise _TooLarge
            out.append(piece)
            if member.eof:
                data = member.unused_data  # the next member, if any
                self._member = None
            else:
                # Below the output limit zlib consumed everything: this is empty.
                data = member.unconsumed_tail
        return b"".join(out)

    def finish(self) -> None:
        if self._member is not None:
            raise _Garbled("truncated gzip data")
