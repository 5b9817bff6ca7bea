"""Reading what a DNS response says about CAA, for :mod:`pinwarden.caa.lookup`: the
CAA records at the end of the answer's alias chain, its TTL and AD bit, or why the
response is no usable answer (an error RCODE, with RFC 8914 Extended DNS Errors; a
malformed message).

dnspython builds the queries, but the answers are read here: dnspython refuses a whole
response when one CAA tag holds a character other than a letter or digit, and its query
functions then drop the bytes (a broken record looks like a timeout). A CA reading that
response sees the record, so we must too: the answer section is read by the small
hand-written reader :func:`_answer_records`, and dnspython only reads the header and the
EDNS options (for Extended DNS Errors). Sending the queries is
:mod:`pinwarden.caa._transport`'s business.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from pinwarden.caa.model import CAARecord
from pinwarden.caa.records import CAAFormatError, from_rdata

__all__ = [
    "Answer",
    "Failure",
    "MalformedResponse",
    "Server",
    "interpret",
    "name_text",
    "server_text",
]

Server = tuple[str, int]
"""A DNS server: its IP address and port."""

_MAX_ALIASES = 16  # CNAME/DNAME links followed in one answer (dnspython's MAX_CHAIN)
_DNSSEC_EDE = range(6, 13)  # RFC 8914 4.7-4.13: DNSSEC Bogus ... NSEC Missing
_RR_HEADER = struct.Struct("!HHIH")  # type, class, TTL, RDLENGTH (RFC 1035 4.1.3)
_TTL_MAX = 0x7FFFFFFF  # RFC 2181 8: a TTL with the top bit set counts as zero


# -- what asking one question gave -------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A usable answer to one CAA query: the CAA records at the end of its alias chain."""

    rcode: str
    records: tuple[CAARecord, ...]
    aliases: tuple[str, ...]
    ttl: int | None
    authenticated: bool


@dataclass(frozen=True)
class Failure:
    """No usable answer: ``rcode`` for the step (``SERVFAIL``, ``timeout``,
    ``malformed``, ``unreachable``...) and the reason, naming the server."""

    rcode: str
    reason: str


class MalformedResponse(Exception):
    """A response that cannot be read; the message says what is wrong with it."""


# -- how names and servers are reported --------------------------------------------


def name_text(name: dns.name.Name) -> str:
    """``name`` as reported: lowercase, without the final dot."""
    return name.to_text(omit_final_dot=True).lower()


def server_text(server: Server) -> str:
    """``server`` as reported: ``IP:PORT``, ``[IPv6]:PORT``."""
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# -- reading an answer -------------------------------------------------------------


def interpret(query: dns.message.Message, wire: bytes, server: Server) -> Answer | Failure:
    """What a response to ``query`` says about CAA, or why it says nothing usable."""
    where = server_text(server)
    try:
        # The header and question only: this runs for every answer of a climb, and the
        # answer section is read by hand below. A failure is parsed whole for its EDNS
        # options (continue_on_error keeps them even when dnspython refuses a record).
        header = dns.message.from_wire(wire, question_only=True)
        ours = query.is_response(header)
    except Exception:  # dnspython given hostile bytes can raise more than DNSException
        return Failure("malformed", f"{where} sent a reply that is not a DNS message")
    if not ours:
        return Failure("malformed", f"{where} answered another question")
    try:
        # RFC 6891 6.1.3: the OPT record holds the upper 8 bits of a 12-bit RCODE.
        rcode = dns.rcode.Rcode.make((_extended_rcode(wire) << 4) | (wire[3] & 0xF))
    except MalformedResponse as exc:
        return Failure("malformed", f"malformed answer from {where}: {exc}")
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        text = dns.rcode.to_text(rcode)
        try:
            message = dns.message.from_wire(wire, continue_on_error=True)
        except Exception:  # the EDNS options are only a better explanation
            return Failure(text, f"{where} answered {text}")
        return Failure(text, f"{where} answered {text}{_extended_errors(message)}")
    flags = header.flags
    qname = query.question[0].name
    try:
        records, aliases, ttl = _relevant(qname, wire, _answer_records(wire))
    except MalformedResponse as exc:
        return Failure("malformed", f"malformed answer from {where}: {exc}")
    return Answer(
        dns.rcode.to_text(rcode),
        records,
        tuple(name_text(alias) for alias in aliases),
        ttl,
        bool(flags & dns.flags.AD),
    )


def _extended_errors(message: dns.message.Message) -> str:
    """Extended DNS Errors (RFC 8914) as a clause: codes 6-12 mean DNSSEC validation
    failed, which is why a validating resolver answered SERVFAIL."""
    notes: list[str] = []
    dnssec = False
    for option in message.extended_errors():
        code = int(option.code)
        dnssec = dnssec or code in _DNSSEC_EDE
        label = dns.edns.EDECode.to_text(code).replace("_", " ")
        notes.append(f"EDE {code} {label}" + (f": {option.text}" if option.text else ""))
    if not notes:
        return ""
    return f" ({'DNSSEC validation failed: ' if dnssec else ''}{'; '.join(notes)})"


@dataclass(frozen=True)
class _Record:
    """One answer record, located in the message: the rdata is ``wire[start:end]``."""

    owner: dns.name.Name
    rdtype: int
    ttl: int
    start: int
    end: int


def _answer_records(wire: bytes) -> list[_Record]:
    """The class-IN records of the answer section.

    Hand-written (see the module docstring): dnspython's message parser refuses some
    CAA rdata. Names, compression pointers included, are still read by dnspython's
    ``dns.name.from_wire``, which accepts only pointers that point backwards (no loops)."""
    try:
        questions, answers = struct.unpack_from("!HH", wire, 4)
        offset = 12
        for _ in range(questions):
            offset += _name_at(wire, offset, "the question")[1] + 4  # + type, class
        records: list[_Record] = []
        for index in range(1, answers + 1):
            where = f"answer record {index}"
            owner, used = _name_at(wire, offset, where)
            offset += used
            rdtype, rdclass, ttl, length = _RR_HEADER.unpack_from(wire, offset)
            offset += _RR_HEADER.size
            if offset + length > len(wire):
                raise MalformedResponse(f"{where} claims {length} bytes of data past the end")
            if rdclass == dns.rdataclass.IN:
                ttl = ttl if ttl <= _TTL_MAX else 0
                records.append(_Record(owner, rdtype, ttl, offset, offset + length))
            offset += length
    except struct.error:
        raise MalformedResponse("the message ends in the middle of a record") from None
    return records


def _extended_rcode(wire: bytes) -> int:
    """The extended RCODE bits of the OPT record (0 without one): the sections are
    walked by hand, rdata skipped, as :func:`_answer_records` does."""
    try:
        counts = struct.unpack_from("!HHHH", wire, 4)
        offset = 12
        for _ in range(counts[0]):
            offset += _name_at(wire, offset, "the question")[1] + 4
        for section, count in zip(("answer", "authority", "additional"), counts[1:], strict=True):
            for index in range(1, count + 1):
                where = f"{section} record {index}"
                offset += _name_at(wire, offset, where)[1]
                rdtype, _, ttl, length = _RR_HEADER.unpack_from(wire, offset)
                offset += _RR_HEADER.size + length
                if offset > len(wire):
                    raise MalformedResponse(f"{where} claims {length} bytes of data past the end")
                if rdtype == dns.rdatatype.OPT:
                    return int(ttl) >> 24 & 0xFF
    except struct.error:
        raise MalformedResponse("the message ends in the middle of a record") from None
    return 0


def _name_at(wire: bytes, offset: int, where: str) -> tuple[dns.name.Name, int]:
    try:
        return dns.name.from_wire(wire, offset)
    except (dns.exception.DNSException, IndexError, ValueError) as exc:
        raise MalformedResponse(f"{where} has a malformed name ({exc})") from None


def _relevant(
    qname: dns.name.Name, wire: bytes, records: list[_Record]
) -> tuple[tuple[CAARecord, ...], list[dns.name.Name], int | None]:
    """The CAA records at the end of the alias chain that starts at ``qname``, the
    chain, and the RRset's TTL. Records of other owners are ignored."""
    owner = qname
    aliases: list[dns.name.Name] = []
    while (target := _alias(wire, records, owner)) is not None:
        if target == qname or target in aliases:
            raise MalformedResponse(f"the aliases loop back to {name_text(target)}")
        if len(aliases) == _MAX_ALIASES:
            raise MalformedResponse(f"more than {_MAX_ALIASES} aliases")
        aliases.append(target)
        owner = target
    found = [r for r in records if r.rdtype == dns.rdatatype.CAA and r.owner == owner]
    caa: list[CAARecord] = []
    for record in found:
        try:
            caa.append(from_rdata(wire[record.start : record.end]))
        except CAAFormatError as exc:
            raise MalformedResponse(f"a CAA record of {name_text(owner)}: {exc}") from None
    ttl = min((record.ttl for record in found), default=None)
    return tuple(caa), aliases, ttl


def _alias(wire: bytes, records: list[_Record], owner: dns.name.Name) -> dns.name.Name | None:
    """Where the answer sends ``owner``: its CNAME, or else the name a DNAME above it
    makes of it (RFC 6672 2.2; servers send the synthesized CNAME too, but a resolver
    may answer with the DNAME alone)."""
    for record in records:
        if record.rdtype == dns.rdatatype.CNAME and record.owner == owner:
            return _target(wire, record)
    for record in records:
        if (
            record.rdtype == dns.rdatatype.DNAME
            and owner.is_subdomain(record.owner)
            and owner != record.owner
        ):
            try:
                return owner.relativize(record.owner).concatenate(_target(wire, record))
            except dns.name.NameTooLong:
                raise MalformedResponse(
                    f"the DNAME of {name_text(record.owner)} makes a name too long"
                ) from None
    return None


def _target(wire: bytes, record: _Record) -> dns.name.Name:
    kind = "CNAME" if record.rdtype == dns.rdatatype.CNAME else "DNAME"
    target, used = _name_at(wire, record.start, f"the {kind} of {name_text(record.owner)}")
    if record.start + used != record.end:
        raise MalformedResponse(f"the {kind} of {name_text(record.owner)} is not one name")
    return target
