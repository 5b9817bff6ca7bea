"""Names in the raw bytes of a log entry whose certificate could not be parsed
(:func:`names_in_unreadable`), so that the monitor still matches it against the watch list.

Separate from :mod:`pinwarden.ct.verdicts` because it is a byte scanner (regular
expressions over DER that a parser refused), not a judgement; :mod:`pinwarden.ct.verdicts`
re-exports :func:`names_in_unreadable`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pinwarden.ct.entries import LogEntry

# Dotted runs of host-name characters in raw DER: what could be a DNS name.
_DOTTED = re.compile(rb"(?:[A-Za-z0-9_*-]{1,63}\.){1,126}[A-Za-z0-9-]{1,63}")
# Runs of the characters _DOTTED is made of, and string-shaped TLVs: a dNSName [2]
# IMPLICIT IA5String, UTF8String, PrintableString or IA5String tag, a short-form length,
# then such a run (which may go on past the string: the length says where it ends).
_RUN = re.compile(rb"[A-Za-z0-9_*.-]{3,}")
_STRING_TLV = re.compile(rb"[\x82\x0c\x13\x16]([\x03-\x7f][A-Za-z0-9_*.-]{3,})")
_STRING_TAGS = frozenset(b"\x82\x0c\x13\x16")
# Scanned a chunk at a time, each chunk ending at a byte no run or string content holds
# (the last such byte within _BREAK_WINDOW of the nominal end), so that a caller in a
# worker thread lets other threads run between chunks.
_CHUNK = 1 << 18
_BREAK_WINDOW = 8192
_LAST_BREAK = re.compile(rb"[^A-Za-z0-9_*.-][A-Za-z0-9_*.-]*\Z")


def _chunks(data: bytes) -> Iterator[tuple[int, int]]:
    start, size = 0, len(data)
    while start < size:
        end = min(size, start + _CHUNK)
        if end < size:
            cut = _LAST_BREAK.search(data, end - _BREAK_WINDOW, end)
            if cut is not None:
                end = cut.start() + 1
        yield start, end
        # Two bytes back: a string TLV whose tag or length byte is the break starts in
        # the next chunk; anything before it ended in this one.
        start = end if end >= size else max(start + 1, end - 2)


def names_in_unreadable(entry: LogEntry) -> tuple[str, ...]:
    """Host-name-like strings in the raw bytes of an entry whose certificate could not be
    parsed (fail safe: such an entry has no names, so without this a certificate for a
    watched name that cryptography refuses would go unnoticed).

    Hand-written on purpose: the bytes are exactly what a DER parser refused. Two nets:
    the contents of every string-shaped TLV (a dNSName ``[2]``, UTF8String,
    PrintableString, IA5String with a short length) that look like a name, and every
    dotted run of host-name characters (which may carry a following byte or two: a
    superset only makes more matches, and such a certificate is unexpected anyway).

    Regular expressions find the candidates (C speed; a log entry may be 16 MiB) and
    each distinct candidate is checked once. It holds the GIL only a chunk at a time,
    so a caller may run it in a worker thread without stalling the event loop."""
    data = entry.tbs_der
    tlvs: set[bytes] = set()
    runs: set[bytes] = set()
    for start, end in _chunks(data):
        tlvs.update(_STRING_TLV.findall(data, start, end))
        runs.update(_RUN.findall(data, start, end))
    found: dict[bytes, None] = {}
    for tlv in tlvs:
        _string_content(tlv, 0, found)
        if tlv[0] in _STRING_TAGS:
            # The "length" may be the tag of the real string one byte on.
            _string_content(tlv, 1, found)
    for run in runs:
        found.update(dict.fromkeys(_DOTTED.findall(run)))
    return tuple(dict.fromkeys(name.decode("ascii").lower() for name in found))


def _string_content(tlv: bytes, at: int, found: dict[bytes, None]) -> None:
    length = tlv[at]
    content = tlv[at + 1 : at + 1 + length]
    if len(content) == length and _DOTTED.fullmatch(content):
        found[content] = None
