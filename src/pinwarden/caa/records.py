"""CAA records: the rdata wire format (RFC 8659 §4.1) and the zone-file presentation
form (§4.1.1, RFC 1035 §5.1, RFC 3597 §5). Property values are read by
:mod:`pinwarden.caa.values`.

The readers here are written by hand on purpose: dnspython refuses a whole DNS response
when one CAA tag holds a character other than a letter or digit, and such a response must
still be read and reported (a CA would see it), not mistaken for a timeout.

Every function raises :class:`CAAFormatError` (an :class:`~pinwarden.errors.InputError`)
on malformed input, never another exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pinwarden.caa.model import CAARecord
from pinwarden.errors import InputError

__all__ = [
    "CAAFormatError",
    "from_rdata",
    "parse_presentation",
    "to_presentation",
    "to_rdata",
]


class CAAFormatError(InputError):
    """CAA rdata or a CAA property value is malformed; the message says where.

    ``detail`` is the reason alone, without the value it was found in (for callers
    that quote the value themselves)."""

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail if detail is not None else message


def _show(value: str | bytes, limit: int = 80) -> str:
    """A value quoted for an error message, cut short when long."""
    shown = repr(value if len(value) <= limit else value[:limit])
    return shown if len(value) <= limit else shown + "…"


# -- rdata (RFC 8659 §4.1) ---------------------------------------------------------------


def from_rdata(data: bytes) -> CAARecord:
    """A record from its rdata: flags (1 octet), tag length (1 octet), tag, value.

    Raises :class:`CAAFormatError` for rdata too short for its tag length or with an
    empty tag (RFC 8659 §4.1: the tag length is at least 1). A tag with characters
    outside letters and digits is returned as read (non-ASCII bytes as ``\\xNN``), for
    the evaluator to treat as an unknown property."""
    if len(data) < 2:
        raise CAAFormatError(f"CAA rdata of {len(data)} bytes: at least 2 are needed")
    flags, length = data[0], data[1]
    if length == 0:
        raise CAAFormatError("CAA rdata with an empty tag")
    if len(data) < 2 + length:
        raise CAAFormatError(f"CAA rdata of {len(data)} bytes is too short for a {length}-byte tag")
    raw_tag = data[2 : 2 + length]
    tag = raw_tag.decode("ascii", "backslashreplace")
    return CAARecord(flags, tag, bytes(data[2 + length :]))


def to_rdata(record: CAARecord) -> bytes:
    """The rdata of ``record`` (the inverse of :func:`from_rdata` for ASCII tags).

    Raises :class:`CAAFormatError` when the record cannot exist on the wire: flags
    outside 0–255, a tag that is empty, longer than 255 octets or not ASCII."""
    if not 0 <= record.flags <= 255:
        raise CAAFormatError(f"CAA flags {record.flags} are outside 0-255")
    if not record.tag or not record.tag.isascii():
        raise CAAFormatError(f"CAA tag {record.tag!r} is not 1 to 255 ASCII characters")
    tag = record.tag.encode("ascii")
    if len(tag) > 255:
        raise CAAFormatError(f"CAA tag of {len(tag)} characters: at most 255 fit in rdata")
    return bytes([record.flags, len(tag)]) + tag + record.value


# -- presentation form (RFC 8659 §4.1.1, RFC 1035 §5.1, RFC 3597 §5) ---------------------

_PRESENTABLE_TAG = re.compile(r"[A-Za-z0-9]{1,255}")
_FLAGS = re.compile(r"[0-9]{1,3}")
_GENERIC = "\\#"
_HEX_WORD = re.compile(r"[0-9A-Fa-f]*")
_DECIMAL = re.compile(r"[0-9]{1,5}")


@dataclass(frozen=True)
class _Token:
    text: str
    """The token as written, without its quotes; escapes are kept."""
    quoted: bool
    position: int


def _tokenize(text: str) -> list[_Token]:
    """Zone-file tokens (RFC 1035 §5.1): blanks separate, ``;`` starts a comment,
    parentheses only group lines, ``"…"`` is one token, ``\\`` escapes the next
    character (or starts ``\\DDD``) in both forms."""
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n()":
            i += 1
        elif c == ";":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c == '"':
            start = i
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            if i >= n:
                raise CAAFormatError(f"CAA record {_show(text)}: unterminated quoted string")
            tokens.append(_Token(text[start + 1 : i], True, start))
            i += 1
        else:
            start = i
            while i < n and text[i] not in ' \t\r\n();"':
                i += 2 if text[i] == "\\" else 1
            if i < n and text[i] == '"':
                raise CAAFormatError(
                    f"CAA record {_show(text)}: a quote inside an unquoted string at position {i}"
                )
            tokens.append(_Token(text[start:i], False, start))
    return tokens


def _unescape(token: _Token, source: str) -> bytes:
    """The bytes a presentation string stands for: ``\\DDD`` is one octet (decimal),
    ``\\X`` is X itself, anything else is its UTF-8 encoding."""
    out = bytearray()
    raw = token.text
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c != "\\":
            out += c.encode("utf-8", "surrogatepass")
            i += 1
            continue
        if i + 1 >= n:
            raise CAAFormatError(f"CAA record {_show(source)}: a lone backslash ends the value")
        digits = raw[i + 1 : i + 4]
        if raw[i + 1].isascii() and raw[i + 1].isdigit():
            if len(digits) < 3 or not (digits.isascii() and digits.isdigit()):
                raise CAAFormatError(
                    f"CAA record {_show(source)}: \\{digits} is not a \\DDD escape of three "
                    "decimal digits"
                )
            octet = int(digits)
            if octet > 255:
                raise CAAFormatError(
                    f"CAA record {_show(source)}: \\{digits} is not an octet (0-255)"
                )
            out.append(octet)
            i += 4
        else:
            out += raw[i + 1].encode("utf-8", "surrogatepass")
            i += 2
    return bytes(out)


def _is_rdata_start(token: _Token) -> bool:
    return not token.quoted and (token.text == _GENERIC or bool(_FLAGS.fullmatch(token.text)))


def _rdata_tokens(tokens: list[_Token], text: str) -> list[_Token]:
    """The tokens after the type ``CAA`` of a zone line (``[owner] [ttl] [class] CAA``),
    or all tokens when the text starts with the flags (or RFC 3597's ``\\#``)."""
    if tokens and _is_rdata_start(tokens[0]):
        return tokens
    for k in range(min(4, len(tokens) - 1)):
        token = tokens[k]
        if not token.quoted and token.text.upper() == "CAA" and _is_rdata_start(tokens[k + 1]):
            return tokens[k + 1 :]
    raise CAAFormatError(
        f"CAA record {_show(text)}: expected '<flags> <tag> <value>', optionally after "
        "'[owner] [ttl] [class] CAA'"
    )


def _from_generic(tokens: list[_Token], text: str) -> CAARecord:
    # RFC 3597 §5: \# <length> <hex>…, the only way to write a tag that is not letters
    # and digits.
    if len(tokens) < 2 or tokens[1].quoted or not _DECIMAL.fullmatch(tokens[1].text):
        raise CAAFormatError(f"CAA record {_show(text)}: '\\#' must be followed by a length")
    words = tokens[2:]
    if any(w.quoted or not _HEX_WORD.fullmatch(w.text) for w in words):
        raise CAAFormatError(f"CAA record {_show(text)}: generic rdata must be hexadecimal")
    hexdigits = "".join(w.text for w in words)
    if len(hexdigits) % 2:
        raise CAAFormatError(f"CAA record {_show(text)}: odd number of hexadecimal digits")
    data = bytes.fromhex(hexdigits)
    declared = int(tokens[1].text)
    if declared != len(data):
        raise CAAFormatError(
            f"CAA record {_show(text)}: generic rdata declares {declared} octets but holds "
            f"{len(data)}"
        )
    return from_rdata(data)


def parse_presentation(text: str) -> CAARecord:
    """A record from its zone-file form: ``0 issue "letsencrypt.org; validationmethods=dns-01"``
    (RFC 8659 §4.1.1), optionally preceded by ``[owner] [ttl] [class] CAA``, or in
    RFC 3597's generic form ``\\# <length> <hex>``.

    The value is one quoted or unquoted ``<character-string>`` (RFC 1035 §5.1) with
    ``\\X`` and ``\\DDD`` escapes; unlike a TXT string it is not limited to 255 octets.
    Characters beyond ASCII stand for their UTF-8 bytes."""
    tokens = _tokenize(text)
    rdata = _rdata_tokens(tokens, text)
    if rdata[0].text == _GENERIC and not rdata[0].quoted:
        return _from_generic(rdata, text)
    if len(rdata) != 3:
        raise CAAFormatError(
            f"CAA record {_show(text)}: expected '<flags> <tag> <value>', found "
            f"{len(rdata)} fields (quote a value that contains blanks)"
        )
    flags_token, tag_token, value_token = rdata
    flags = int(flags_token.text)
    if flags > 255:
        raise CAAFormatError(f"CAA record {_show(text)}: flags {flags} are outside 0-255")
    if tag_token.quoted or not _PRESENTABLE_TAG.fullmatch(tag_token.text):
        raise CAAFormatError(
            f"CAA record {_show(text)}: the tag {tag_token.text!r} must be 1 to 255 letters "
            "and digits (write other tags in the generic form '\\# <length> <hex>')"
        )
    return CAARecord(flags, tag_token.text, _unescape(value_token, text))


def _quote(value: bytes) -> str:
    parts = ['"']
    for octet in value:
        if octet in (0x22, 0x5C):
            parts.append("\\" + chr(octet))
        elif 0x20 <= octet <= 0x7E:
            parts.append(chr(octet))
        else:
            parts.append(f"\\{octet:03d}")
    parts.append('"')
    return "".join(parts)


def to_presentation(record: CAARecord) -> str:
    """The zone-file form of ``record``, which :func:`parse_presentation` reads back to
    an equal record: ``<flags> <tag> "<value>"``, the value quoted with ``\\"``,
    ``\\\\`` and ``\\DDD`` for octets outside printable ASCII; a tag that is not letters
    and digits is written in RFC 3597's generic form ``\\# <length> <hex>``.

    Raises :class:`CAAFormatError` for a record that cannot exist (see :func:`to_rdata`)."""
    rdata = to_rdata(record)
    if _PRESENTABLE_TAG.fullmatch(record.tag):
        return f"{record.flags} {record.tag} {_quote(record.value)}"
    return f"{_GENERIC} {len(rdata)} {rdata.hex()}"
