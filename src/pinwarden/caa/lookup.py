"""The RFC 8659 §3 search for the relevant CAA RRset, sync and asyncio.

Starting at the name (``x`` for ``*.x``), ask for its CAA records; the first name whose
answer holds CAA records is where the relevant RRset is; otherwise ask for its parent, up
to and including the top-level domain but never the root ("up to but not including the DNS
root", RFC 8659 §3). Aliases are followed by the recursive resolver inside each answer
(RFC 1034 4.3.2), and the climb always goes on from the parent of the name asked, never
from an alias target: that was RFC 6844's rule, which RFC 8659 dropped.

A failed step (SERVFAIL, REFUSED, a timeout, an unreadable answer, bogus DNSSEC) ends the
search with an error, because a CA must not issue then: nothing after it can be concluded,
least of all "no CAA". NXDOMAIN is no failure: a name that does not exist has no CAA
records, and the search goes on to its parent.

This module is the search itself: the queries are sent by :mod:`pinwarden.caa._transport`
and their answers read by :mod:`pinwarden.caa._dnswire`, by hand, because dnspython refuses
some CAA records that a CA would read.
"""

from __future__ import annotations

import re
import time

import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import idna

from pinwarden.caa._dnswire import Answer, Failure, name_text
from pinwarden.caa._transport import ask_async, ask_sync, is_ip, servers_for
from pinwarden.caa.model import CAALookup, LookupStep
from pinwarden.errors import InputError

__all__ = ["lookup_caa", "lookup_caa_async"]

_PAYLOAD = 1232  # the EDNS UDP size of DNS Flag Day 2020: answers that need no IP fragments


def lookup_caa(name: str, *, nameserver: str | None = None, timeout: float = 5.0) -> CAALookup:
    """Search for the CAA RRset relevant to ``name`` (RFC 8659 §3).

    ``name`` may be a wildcard ``*.x`` (the search starts at ``x``) or a Unicode name
    (asked and reported as its IDNA A-label). The queries go to ``nameserver``
    (``IP``, ``IP:PORT`` or ``[IPv6]:PORT``) or else to the servers the system resolver
    uses, with RD and the DNSSEC OK bit set, so that the AD bit of an answer says whether
    a validating resolver authenticated it. A truncated answer is asked again over TCP.
    ``timeout`` bounds the whole search.

    The result says where the relevant RRset was found (``found_at``, None when no name
    up to the top-level domain has CAA records), the aliases the answer followed there,
    its TTL and AD bit, and every step. With no CAA anywhere, ``authenticated`` says
    whether every answer was (the absence is then proven by DNSSEC).

    A DNS failure at any step sets ``error`` instead, with the name and the reason (a
    DNSSEC failure is named from RFC 8914 Extended DNS Errors when the resolver sends
    them): a lookup is never "no CAA" after a failure.

    Raises :class:`~pinwarden.errors.InputError` for a name or ``nameserver`` that is
    not valid, and :class:`~pinwarden.errors.NetworkError` when no ``nameserver`` is
    given and the system has no DNS server configured.
    """
    climb = _Climb(name, nameserver, timeout)
    while (query := climb.next_query()) is not None:
        climb.take(ask_sync(climb.servers, query, climb.deadline, timeout))
    return climb.result()


async def lookup_caa_async(
    name: str, *, nameserver: str | None = None, timeout: float = 5.0
) -> CAALookup:
    """:func:`lookup_caa` for asyncio: the same arguments, result and errors."""
    climb = _Climb(name, nameserver, timeout)
    while (query := climb.next_query()) is not None:
        climb.take(await ask_async(climb.servers, query, climb.deadline, timeout))
    return climb.result()


# -- the search, without I/O -----------------------------------------------------


class _Climb:
    """The RFC 8659 §3 search as a state machine: which question to ask next and what
    the answers add up to. The sync and asyncio versions differ only in how they ask."""

    def __init__(self, name: str, nameserver: str | None, timeout: float) -> None:
        if not timeout > 0:
            raise InputError(f"the CAA lookup timeout must be positive, not {timeout!r}")
        self.start = _start(name)
        self.wildcard = name.strip().startswith("*.")
        self.servers = servers_for(nameserver)
        self.deadline = time.monotonic() + timeout
        self._next: dns.name.Name | None = self.start
        self._steps: list[LookupStep] = []
        self._found: tuple[dns.name.Name, Answer] | None = None
        self._error: str | None = None

    def next_query(self) -> dns.message.QueryMessage | None:
        if self._next is None:
            return None
        # RD: the resolver recurses for us. DO (RFC 3225): DNSSEC is wanted, so the AD bit
        # of the answer says whether the resolver validated it (RFC 4035 3.2.3).
        return dns.message.make_query(
            self._next, dns.rdatatype.CAA, use_edns=0, want_dnssec=True, payload=_PAYLOAD
        )

    def take(self, outcome: Answer | Failure) -> None:
        """Record the outcome of the question :meth:`next_query` gave."""
        asked = self._next
        if asked is None:
            raise RuntimeError("no question is pending")
        if isinstance(outcome, Failure):
            self._steps.append(LookupStep(name_text(asked), outcome.rcode, 0))
            self._error = f"CAA query for {name_text(asked)} failed: {outcome.reason}"
            self._next = None
            return
        self._steps.append(
            LookupStep(
                name_text(asked),
                outcome.rcode,
                len(outcome.records),
                outcome.aliases,
                outcome.authenticated,
            )
        )
        if outcome.records:
            self._found = asked, outcome
            self._next = None
        else:
            parent = asked.parent()
            self._next = None if parent == dns.name.root else parent

    def result(self) -> CAALookup:
        name = name_text(self.start)
        steps = tuple(self._steps)
        wild = self.wildcard
        if self._error is not None:
            return CAALookup(name, None, (), steps=steps, error=self._error, wildcard=wild)
        if self._found is None:
            # Authenticated when every "none here" was: the absence itself is proven.
            proven = all(step.authenticated for step in steps)
            return CAALookup(name, None, (), authenticated=proven, steps=steps, wildcard=wild)
        at, answer = self._found
        return CAALookup(
            name,
            name_text(at),
            answer.records,
            answer.aliases,
            answer.ttl,
            answer.authenticated,
            steps,
            wildcard=wild,
        )


def _start(name: str) -> dns.name.Name:
    """The name the search starts at: ``x`` for ``*.x``, as an absolute A-label name."""
    text = name.strip()
    if text.startswith("*."):
        text = text[2:]
    problem = f"cannot look up CAA for {name!r}"
    if is_ip(text):
        raise InputError(f"{problem}: an IP address has no CAA records, only domain names do")
    if not text.strip(".") or any(ch.isspace() for ch in text):
        raise InputError(f"{problem}: not a domain name")
    try:
        if not text.isascii():
            # IDNA 2008 with UTS #46 mapping, as browsers and HTTP clients send names.
            text = idna.encode(text.rstrip("."), uts46=True).decode("ascii")
        start = dns.name.from_text(text)
    except (idna.IDNAError, UnicodeError, dns.exception.DNSException) as exc:
        raise InputError(f"{problem}: not a domain name ({exc})") from None
    if any(re.search(rb"[^A-Za-z0-9_*-]", label) for label in start.labels):
        raise InputError(f"{problem}: not a host name (letters, digits, '-' and '_' only)")
    if any(b"*" in label for label in start.labels):
        raise InputError(f"{problem}: '*' may only be the whole first label, as in '*.example.com'")
    return start
