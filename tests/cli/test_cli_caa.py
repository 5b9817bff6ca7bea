"""``pinwarden caa check`` and ``pinwarden caa generate`` end to end: the real CLI, run
in-process, against the test kit's DNS server on 127.0.0.1.

The check cases are the RFC 8659 §3–§4 examples (quoted where the RFC gives an RRset) and
the CA/B-style edge cases: each serves a zone, runs ``caa check … --json`` and asserts
the exit status, the verdict, where the relevant RRset was found, the names asked, and
the exact number of conditions and warnings. ``caa audit`` is in
tests/caa/test_caa_audit.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinwarden.caa.model import CAARecord
from pinwarden.caa.records import from_rdata, parse_presentation, to_rdata
from pinwarden.cli import main
from pinwarden.testing import DNSServer
from pinwarden.testing.dns import Fault as FaultKind

# The documented --json schema of `caa check` (every case checks it).
TOP_KEYS = {"lookup", "summary", "evaluation"}
LOOKUP_KEYS = {"name", "found_at", "aliases", "ttl", "authenticated", "error", "records", "steps"}
STEP_KEYS = {"name", "rcode", "records", "aliases", "authenticated"}
RECORD_KEYS = {"flags", "critical", "tag", "value", "presentation"}
EVALUATION_KEYS = {"ca", "for", "verdict", "reasons", "conditions", "warnings", "matched"}
SUMMARY_KEYS = {
    "name",
    "wildcard",
    "wildcard_differs",
    "email",
    "iodef",
    "contact_emails",
    "contact_phones",
    "critical_unknown",
    "unknown",
    "malformed",
}
PERMISSION_KEYS = {"tag", "any_ca", "no_ca", "blocked", "issuers"}

ACCOUNT_1 = "https://acme.test/acct/1"
ACCOUNT_2 = "https://acme.test/acct/2"


def rdata(flags: int, tag: bytes, value: bytes) -> bytes:
    """CAA rdata as it goes on the wire (RFC 8659 §4.1), for tags dnspython refuses."""
    return bytes([flags, len(tag)]) + tag + value


@dataclass(frozen=True)
class RR:
    """A record to serve: zone-file text, or raw rdata (bytes) served as it is."""

    name: str
    rdtype: str
    value: str | bytes


@dataclass(frozen=True)
class Fault:
    name: str
    fault: FaultKind
    ede: int | None = None


@dataclass(frozen=True)
class Case:
    id: str
    zone: tuple[RR, ...]
    name: str
    argv: tuple[str, ...]
    exit: int
    verdict: str | None
    found_at: str | None = None
    aliases: tuple[str, ...] = ()
    asked: tuple[str, ...] | None = None
    """The names the server was asked about, in order (None: not checked)."""
    reason: str | None = None
    """A phrase one of the reasons must contain."""
    matched: str | None = None
    """The presentation form of the record that allowed issuance."""
    conditions: tuple[str, ...] = ()
    """Phrases, one per expected condition (exactly that many)."""
    warnings: tuple[str, ...] = ()
    """Phrases, one per expected warning (exactly that many)."""
    error: str | None = None
    """A phrase the lookup error must contain (None: no error)."""
    faults: tuple[Fault, ...] = ()
    ad: bool = False
    expect: dict[str, Any] = field(default_factory=dict)
    """Other values of the JSON document, by dotted path (list items by index)."""


ISSUE_CA = RR("example.com", "CAA", '0 issue "ca.test"')
CERTS = (  # RFC 8659 §4.2
    RR("certs.example.com", "CAA", '0 issue "ca1.example.net"'),
    RR("certs.example.com", "CAA", '0 issue "ca2.example.org"'),
)

CASES = [
    # -- RFC 8659 §3: the climb ------------------------------------------------------------
    Case(
        "rfc8659-3-no-caa-at-any-level",
        (RR("x.y.z", "A", "127.0.0.1"),),
        "x.y.z",
        ("--ca", "ca.test"),
        0,
        "allowed",
        found_at=None,
        asked=("x.y.z", "y.z", "z"),  # up to, not including, the root
        reason="No CAA records at x.y.z or any parent domain: any CA may issue",
        expect={"summary.name.any_ca": True, "lookup.ttl": None, "lookup.records": []},
    ),
    Case(
        "rfc8659-3-climb-stops-at-the-first-rrset",
        (
            RR("b.c", "CAA", '0 issue "example.com"'),
            RR("c", "CAA", '0 issue ";"'),  # above the relevant RRset: never asked
            RR("a.b.c", "A", "127.0.0.1"),
        ),
        "a.b.c",
        ("--ca", "example.com"),
        0,
        "allowed",
        found_at="b.c",
        asked=("a.b.c", "b.c"),
        matched='0 issue "example.com"',
        expect={
            "lookup.steps.0.records": 0,
            "lookup.steps.1.records": 1,
            "lookup.steps.1.rcode": "NOERROR",
        },
    ),
    Case(
        "climb-found-rrset-denies-another-ca",
        (RR("b.c", "CAA", '0 issue "example.com"'), RR("a.b.c", "A", "127.0.0.1")),
        "a.b.c",
        ("--ca", "other.test"),
        1,
        "denied",
        found_at="b.c",
        reason="authorizes example.com, not other.test",
    ),
    Case(
        "nxdomain-of-the-name-itself-climbs-to-the-parent",
        (ISSUE_CA,),
        "gone.example.com",
        ("--ca", "ca.test"),
        0,
        "allowed",
        found_at="example.com",
        asked=("gone.example.com", "example.com"),
        matched='0 issue "ca.test"',
        expect={"lookup.steps.0.rcode": "NXDOMAIN", "lookup.steps.1.rcode": "NOERROR"},
    ),
    # -- RFC 8659 §4.2: issue --------------------------------------------------------------
    Case(
        "rfc8659-4.2-semicolon-forbids-every-ca",
        (RR("nocerts.example.com", "CAA", '0 issue ";"'),),
        "nocerts.example.com",
        ("--ca", "ca.test"),
        1,
        "denied",
        found_at="nocerts.example.com",
        reason="names no issuer: it authorizes no CA",
        expect={"summary.name.no_ca": True, "summary.wildcard.no_ca": True},
    ),
    Case(
        "rfc8659-4.2-certs-example-several-records-one-matches",
        CERTS,
        "certs.example.com",
        ("--ca", "ca2.example.org"),
        0,
        "allowed",
        found_at="certs.example.com",
        matched='0 issue "ca2.example.org"',
        reason="authorizes ca1.example.net, not ca2.example.org",
        expect={"summary.name.issuers.1.issuer": "ca2.example.org"},
    ),
    Case(
        "rfc8659-4.2-certs-example-denies-a-third-ca",
        CERTS,
        "www.certs.example.com",
        ("--ca", "ca3.example.com"),
        1,
        "denied",
        found_at="certs.example.com",
        reason="No issue property at certs.example.com authorizes ca3.example.com",
    ),
    Case(
        "rfc8659-4.2-issuer-defined-parameter-is-ignored-with-a-warning",
        (RR("account.example.com", "CAA", '0 issue "ca1.example.net; account=230123"'),),
        "account.example.com",
        ("--ca", "ca1.example.net"),
        0,
        "allowed",
        found_at="account.example.com",
        warnings=("parameter account=230123, whose meaning only the CA defines",),
    ),
    Case(
        "rfc8659-4.2-malformed-example-authorizes-nobody",
        (RR("malformed.example.com", "CAA", '0 issue "%%%%%"'),),
        "malformed.example.com",
        ("--ca", "ca1.example.net"),
        1,
        "denied",
        found_at="malformed.example.com",
        reason="treats it as naming no issuer, so it authorizes no CA",
        expect={"summary.malformed.0.record.value": "%%%%%", "summary.name.no_ca": True},
    ),
    Case(
        "malformed-value-naming-the-ca-authorizes-nobody",
        (RR("example.com", "CAA", '0 issue "ca.test extra"'),),
        "example.com",
        ("--ca", "ca.test"),
        1,
        "denied",
        found_at="example.com",
        reason="is malformed (expected ';' or the end after the issuer domain name",
    ),
    Case(
        "malformed-record-beside-a-valid-one",
        (
            RR("example.com", "CAA", '0 issue "ca.test extra"'),
            RR("example.com", "CAA", '0 issue "ca.test"'),
        ),
        "example.com",
        ("--ca", "ca.test"),
        0,
        "allowed",
        matched='0 issue "ca.test"',
        found_at="example.com",
    ),
    # -- RFC 8659 §4.1: flags and tags -----------------------------------------------------
    Case(
        "rfc8659-4-critical-tbs-example-forbids-issuance",
        (
            RR("example.com", "CAA", '0 issue "ca.example.net; policy=ev"'),
            RR("example.com", "CAA", '128 tbs "Unknown"'),
        ),
        "example.com",
        ("--ca", "ca.example.net"),
        1,
        "denied",
        found_at="example.com",
        reason="is marked critical but its tag 'tbs' is unknown",
        expect={
            "summary.critical_unknown.0.tag": "tbs",
            "summary.name.blocked": True,
            "lookup.records.1.critical": True,
        },
    ),
    Case(
        "non-critical-unknown-tag-is-ignored",
        (
            RR("example.com", "CAA", '0 issue "ca.example.net"'),
            RR("example.com", "CAA", '0 tbs "Unknown"'),
        ),
        "example.com",
        ("--ca", "ca.example.net"),
        0,
        "allowed",
        found_at="example.com",
        matched='0 issue "ca.example.net"',
        expect={"summary.unknown.0.tag": "tbs", "summary.critical_unknown": []},
    ),
    Case(
        "mixed-case-tag-is-an-issue-property",
        (RR("example.com", "CAA", '0 IsSuE "ca.test"'),),
        "example.com",
        ("--ca", "other.test"),
        1,
        "denied",
        found_at="example.com",
        reason="authorizes ca.test, not other.test",
        expect={"lookup.records.0.tag": "IsSuE", "summary.name.tag": "issue"},
    ),
    Case(
        "mixed-case-issuewild-governs-wildcards",
        (ISSUE_CA, RR("example.com", "CAA", '0 IssueWild ";"')),
        "example.com",
        ("--ca", "ca.test", "--wildcard"),
        1,
        "denied",
        found_at="example.com",
        reason="precedence and the issue properties are ignored",
    ),
    Case(
        "critical-flag-on-a-known-tag-in-mixed-case",
        (RR("example.com", "CAA", '128 ISSUE "ca.test"'),),
        "example.com",
        ("--ca", "ca.test"),
        0,
        "allowed",
        found_at="example.com",
        matched='128 ISSUE "ca.test"',
        expect={"summary.critical_unknown": []},
    ),
    Case(
        "raw-tag-issue-critical-flag-128-denies",
        (ISSUE_CA, RR("example.com", "CAA", rdata(128, b"issue-critical", b"ca.test"))),
        "example.com",
        ("--ca", "ca.test"),
        1,
        "denied",
        found_at="example.com",
        reason="its tag 'issue-critical' is unknown",
        expect={
            "lookup.records.1.tag": "issue-critical",
            "lookup.records.1.flags": 128,
            "summary.critical_unknown.0.tag": "issue-critical",
        },
    ),
    Case(
        "raw-tag-issue-critical-flag-0-is-ignored",
        (ISSUE_CA, RR("example.com", "CAA", rdata(0, b"issue-critical", b"other.test"))),
        "example.com",
        ("--ca", "ca.test"),
        0,
        "allowed",
        found_at="example.com",
        matched='0 issue "ca.test"',
        expect={"lookup.records.1.tag": "issue-critical", "summary.unknown.0.flags": 0},
    ),
    # -- RFC 8659 §4.3: issuewild ----------------------------------------------------------
    Case(
        "rfc8659-4.3-issuewild-overrides-issue-for-a-wildcard",
        (ISSUE_CA, RR("example.com", "CAA", '0 issuewild "wild.test"')),
        "example.com",
        ("--ca", "ca.test", "--wildcard"),
        1,
        "denied",
        found_at="example.com",
        reason="the issue properties are ignored (RFC 8659 §4.3)",
        expect={"evaluation.for": "wildcard", "summary.wildcard_differs": True},
    ),
    Case(
        "issuewild-grants-a-wildcard-that-issue-forbids",
        (
            RR("example.com", "CAA", '0 issue ";"'),
            RR("example.com", "CAA", '0 issuewild "ca.test"'),
        ),
        "example.com",
        ("--ca", "ca.test", "--wildcard"),
        0,
        "allowed",
        found_at="example.com",
        matched='0 issuewild "ca.test"',
    ),
    Case(
        "issuewild-does-not-grant-the-name-itself",
        (
            RR("example.com", "CAA", '0 issue ";"'),
            RR("example.com", "CAA", '0 issuewild "ca.test"'),
        ),
        "example.com",
        ("--ca", "ca.test"),
        1,
        "denied",
        found_at="example.com",
        reason="issuewild properties apply only to wildcard names",
    ),
    Case(
        "rfc8659-4.3-issuewild-semicolon-leaves-the-name-allowed",
        (ISSUE_CA, RR("example.com", "CAA", '0 issuewild ";"')),
        "example.com",
        ("--ca", "ca.test"),
        0,
        "allowed",
        found_at="example.com",
        matched='0 issue "ca.test"',
        expect={"summary.wildcard.no_ca": True, "summary.name.no_ca": False},
    ),
    Case(
        "wildcard-without-issuewild-follows-issue",
        (ISSUE_CA,),
        "example.com",
        ("--ca", "ca.test", "--wildcard"),
        0,
        "allowed",
        found_at="example.com",
        reason="have no issuewild property",
        matched='0 issue "ca.test"',
    ),
    Case(
        "star-argument-is-a-wildcard",
        (ISSUE_CA, RR("example.com", "CAA", '0 issuewild ";"')),
        "*.example.com",
        ("--ca", "ca.test"),
        1,
        "denied",
        found_at="example.com",
        asked=("example.com",),
        expect={"evaluation.for": "wildcard", "lookup.name": "example.com"},
    ),
    # -- parameters (RFC 8659 §4.2 syntax, RFC 8657) ---------------------------------------
    Case(
        "parameters-with-odd-whitespace",
        (
            RR(
                "example.com",
                "CAA",
                rdata(
                    0,
                    b"issue",
                    b" \t ca.test \t;\t accounturi \t= \t"
                    + ACCOUNT_1.encode()
                    + b" ;  validationmethods = dns-01 \t",
                ),
            ),
        ),
        "example.com",
        ("--ca", "ca.test", "--account-uri", ACCOUNT_1, "--method", "dns-01"),
        0,
        "allowed",
        found_at="example.com",
        expect={
            "summary.name.issuers.0.parameters": [
                ["accounturi", ACCOUNT_1],
                ["validationmethods", "dns-01"],
            ]
        },
    ),
    Case(
        "bad-parameter-syntax-blank-between-parameters",
        (
            RR(
                "example.com",
                "CAA",
                f'0 issue "ca.test; accounturi={ACCOUNT_1} validationmethods=dns-01"',
            ),
        ),
        "example.com",
        ("--ca", "ca.test"),
        1,
        "denied",
        found_at="example.com",
        reason="expected ';' between parameters",
        expect={"summary.malformed.0.record.tag": "issue"},
    ),
    Case(
        "bad-parameter-syntax-tag-without-value",
        (RR("example.com", "CAA", '0 issue "ca.test; accounturi"'),),
        "example.com",
        ("--ca", "ca.test"),
        1,
        "denied",
        found_at="example.com",
        reason="expected '=' after the parameter tag 'accounturi'",
    ),
    Case(
        "accounturi-match",
        (RR("example.com", "CAA", f'0 issue "ca.test; accounturi={ACCOUNT_1}"'),),
        "example.com",
        ("--ca", "ca.test", "--account-uri", ACCOUNT_1),
        0,
        "allowed",
        found_at="example.com",
        matched=f'0 issue "ca.test; accounturi={ACCOUNT_1}"',
    ),
    Case(
        "accounturi-mismatch",
        (RR("example.com", "CAA", f'0 issue "ca.test; accounturi={ACCOUNT_1}"'),),
        "example.com",
        ("--ca", "ca.test", "--account-uri", ACCOUNT_2),
        1,
        "denied",
        found_at="example.com",
        reason=f"only for the account {ACCOUNT_1}, not {ACCOUNT_2}",
    ),
    Case(
        "accounturi-not-given-is-a-condition",
        (RR("example.com", "CAA", f'0 issue "ca.test; accounturi={ACCOUNT_1}"'),),
        "example.com",
        ("--ca", "ca.test"),
        0,
        "allowed",
        found_at="example.com",
        conditions=(f"only for the account {ACCOUNT_1}",),
    ),
    Case(
        "accounturi-spelled-in-capitals-warns-about-boulder",
        (RR("example.com", "CAA", f'0 issue "ca.test; AccountURI={ACCOUNT_1}"'),),
        "example.com",
        ("--ca", "ca.test", "--account-uri", ACCOUNT_1),
        0,
        "allowed",
        found_at="example.com",
        warnings=("spells the parameter accounturi as 'AccountURI'",),
    ),
    Case(
        "validationmethods-match",
        (RR("example.com", "CAA", '0 issue "ca.test; validationmethods=dns-01,http-01"'),),
        "example.com",
        ("--ca", "ca.test", "--method", "http-01"),
        0,
        "allowed",
        found_at="example.com",
    ),
    Case(
        "validationmethods-mismatch",
        (RR("example.com", "CAA", '0 issue "ca.test; validationmethods=dns-01,http-01"'),),
        "example.com",
        ("--ca", "ca.test", "--method", "tls-alpn-01"),
        1,
        "denied",
        found_at="example.com",
        reason="only with the validation methods dns-01, http-01, not tls-alpn-01",
    ),
    Case(
        "several-records-the-second-account-matches",
        (
            RR("example.com", "CAA", f'0 issue "ca.test; accounturi={ACCOUNT_1}"'),
            RR("example.com", "CAA", f'0 issue "ca.test; accounturi={ACCOUNT_2}"'),
        ),
        "example.com",
        ("--ca", "ca.test", "--account-uri", ACCOUNT_2),
        0,
        "allowed",
        found_at="example.com",
        matched=f'0 issue "ca.test; accounturi={ACCOUNT_2}"',
        reason=f"only for the account {ACCOUNT_1}, not {ACCOUNT_2}",
    ),
    # -- DNS failures are never "allowed" --------------------------------------------------
    Case(
        "servfail-at-the-queried-name",
        (ISSUE_CA, RR("www.example.com", "A", "127.0.0.1")),
        "www.example.com",
        ("--ca", "ca.test"),
        3,
        "unknown",
        asked=("www.example.com",),
        error="CAA query for www.example.com failed",
        faults=(Fault("www.example.com", "SERVFAIL"),),
        expect={"summary": None, "lookup.steps.0.rcode": "SERVFAIL", "lookup.records": []},
    ),
    Case(
        "servfail-between-the-name-and-the-relevant-rrset",
        (ISSUE_CA, RR("a.b.example.com", "A", "127.0.0.1")),
        "a.b.example.com",
        ("--ca", "ca.test"),
        3,
        "unknown",
        asked=("a.b.example.com", "b.example.com"),
        error="CAA query for b.example.com failed",
        faults=(Fault("b.example.com", "SERVFAIL"),),
        expect={"lookup.steps.1.rcode": "SERVFAIL"},
    ),
    Case(
        "servfail-at-the-relevant-name",
        (ISSUE_CA, RR("www.example.com", "A", "127.0.0.1")),
        "www.example.com",
        ("--ca", "ca.test"),
        3,
        "unknown",
        asked=("www.example.com", "example.com"),
        error="CAA query for example.com failed",
        faults=(Fault("example.com", "SERVFAIL"),),
    ),
    Case(
        "servfail-above-the-relevant-name-is-never-asked",
        (ISSUE_CA, RR("www.example.com", "A", "127.0.0.1")),
        "www.example.com",
        ("--ca", "ca.test"),
        0,
        "allowed",
        found_at="example.com",
        asked=("www.example.com", "example.com"),
        faults=(Fault("com", "SERVFAIL"),),
    ),
    Case(
        "servfail-with-an-extended-dnssec-error",
        (ISSUE_CA,),
        "example.com",
        ("--ca", "ca.test"),
        3,
        "unknown",
        error="answered SERVFAIL (DNSSEC validation failed: EDE 6 ",
        faults=(Fault("example.com", "SERVFAIL", ede=6),),
    ),
    Case(
        "refused-is-a-failure-too",
        (ISSUE_CA,),
        "example.com",
        (),
        3,
        None,
        error="answered REFUSED",
        faults=(Fault("example.com", "REFUSED"),),
    ),
    Case(
        "timeout",
        (ISSUE_CA,),
        "example.com",
        ("--ca", "ca.test", "--timeout", "1"),
        3,
        "unknown",
        error="no answer from 127.0.0.1:",
        faults=(Fault("example.com", "timeout"),),
        expect={"lookup.steps.0.rcode": "timeout"},
    ),
    # -- aliases: left to the resolver (RFC 8659), not RFC 6844's target climbing ----------
    Case(
        "cname-to-a-name-with-caa",
        (
            RR("www.example.com", "CNAME", "cdn.example.net"),
            RR("cdn.example.net", "CAA", '0 issue "ca.test"'),
            RR("example.com", "CAA", '0 issue "other.test"'),
        ),
        "www.example.com",
        ("--ca", "ca.test"),
        0,
        "allowed",
        found_at="www.example.com",
        aliases=("cdn.example.net",),
        asked=("www.example.com",),
        expect={"lookup.steps.0.aliases": ["cdn.example.net"]},
    ),
    Case(
        "cname-target-without-caa-climbs-from-the-alias-not-the-target",
        (
            RR("www.example.com", "CNAME", "cdn.example.net"),
            RR("cdn.example.net", "A", "127.0.0.1"),
            RR("example.net", "CAA", '0 issue "other.test"'),
            RR("example.com", "CAA", '0 issue "ca.test"'),
        ),
        "www.example.com",
        ("--ca", "ca.test"),
        0,
        "allowed",
        found_at="example.com",
        aliases=(),
        asked=("www.example.com", "example.com"),
    ),
    Case(
        "dname-redirects-to-a-name-with-caa",
        (
            RR("alias.test", "DNAME", "target.test"),
            RR("www.target.test", "CAA", '0 issue "other.test"'),
        ),
        "www.alias.test",
        ("--ca", "ca.test"),
        1,
        "denied",
        found_at="www.alias.test",
        aliases=("www.target.test",),
        asked=("www.alias.test",),
        reason="authorizes other.test, not ca.test",
    ),
    # -- DNSSEC --------------------------------------------------------------------------
    Case(
        "ad-bit-reported",
        (ISSUE_CA,),
        "example.com",
        ("--ca", "ca.test"),
        0,
        "allowed",
        found_at="example.com",
        ad=True,
        expect={"lookup.authenticated": True, "lookup.steps.0.authenticated": True},
    ),
    Case(
        "no-ad-bit-reported",
        (ISSUE_CA,),
        "example.com",
        (),
        0,
        None,
        found_at="example.com",
        expect={"lookup.authenticated": False, "evaluation": None},
    ),
    # -- CA names, e-mail, Boulder -------------------------------------------------------
    Case(
        "ca-name-resolved-through-the-identities-table",
        (RR("example.com", "CAA", '0 issue "letsencrypt.org"'),),
        "example.com",
        ("--ca", "Let's Encrypt"),
        0,
        "allowed",
        found_at="example.com",
        expect={"evaluation.ca": "letsencrypt.org"},
    ),
    Case(
        "issuemail-allows-its-ca",
        (
            RR("example.com", "CAA", '0 issue ";"'),
            RR("example.com", "CAA", '0 issuemail "ca.test"'),
        ),
        "example.com",
        ("--ca", "ca.test", "--email"),
        0,
        "allowed",
        found_at="example.com",
        matched='0 issuemail "ca.test"',
        expect={"evaluation.for": "email", "summary.email.issuers.0.issuer": "ca.test"},
    ),
    Case(
        "issuemail-denies-another-ca",
        (RR("example.com", "CAA", '0 issuemail "ca.test"'),),
        "example.com",
        ("--ca", "other.test", "--email"),
        1,
        "denied",
        found_at="example.com",
        reason="No issuemail property at example.com authorizes other.test",
    ),
    Case(
        "issue-does-not-restrict-e-mail",
        (RR("example.com", "CAA", '0 issue ";"'),),
        "example.com",
        ("--ca", "other.test", "--email"),
        0,
        "allowed",
        found_at="example.com",
        reason="have no issuemail property",
    ),
    Case(
        "boulder-flag-1-on-an-unknown-tag",
        (ISSUE_CA, RR("example.com", "CAA", '1 tbs "Unknown"')),
        "example.com",
        ("--ca", "ca.test"),
        0,
        "allowed",
        found_at="example.com",
        warnings=(
            "sets reserved flag bits (value 1): RFC 8659 §4.1 says publishers must clear them",
            "has flag value 1 set: Let's Encrypt's Boulder treats it as the critical",
        ),
    ),
    Case(
        "boulder-case-only-issuer-match",
        (RR("example.com", "CAA", '0 issue "CA.Test"'),),
        "example.com",
        ("--ca", "ca.test"),
        0,
        "allowed",
        found_at="example.com",
        matched='0 issue "CA.Test"',
        warnings=("which matches 'ca.test' only without regard to case",),
    ),
    Case(
        "boulder-refuses-a-wildcard-without-issue-or-issuewild",
        (RR("example.com", "CAA", '0 iodef "mailto:security@example.com"'),),
        "example.com",
        ("--ca", "ca.test", "--wildcard"),
        0,
        "allowed",
        found_at="example.com",
        warnings=("Boulder refuses *.example.com",),
        expect={"summary.iodef.0.target": "security@example.com"},
    ),
    Case(
        "rfc8659-4-iodef-example",
        (
            RR("example.com", "CAA", '0 issue "ca.example.net"'),
            RR("example.com", "CAA", '0 iodef "mailto:security@example.com"'),
            RR("example.com", "CAA", '0 iodef "https://iodef.example.com/"'),
        ),
        "example.com",
        ("--ca", "ca.example.net"),
        0,
        "allowed",
        found_at="example.com",
        matched='0 issue "ca.example.net"',
        expect={
            "summary.iodef": [
                {
                    "url": "mailto:security@example.com",
                    "scheme": "mailto",
                    "target": "security@example.com",
                },
                {
                    "url": "https://iodef.example.com/",
                    "scheme": "https",
                    "target": "iodef.example.com",
                },
            ]
        },
    ),
    Case(
        "contacts-in-the-summary-without-ca",
        (
            ISSUE_CA,
            RR("example.com", "CAA", '0 iodef "https://iodef.example.com/"'),
            RR("example.com", "CAA", '0 contactemail "domain@example.com"'),
            RR("example.com", "CAA", '0 contactphone "+1 (555) 123-4567"'),
        ),
        "example.com",
        (),
        0,
        None,
        found_at="example.com",
        expect={
            "evaluation": None,
            "summary.iodef.0.scheme": "https",
            "summary.contact_emails": ["domain@example.com"],
            "summary.contact_phones.0.e164": "+15551234567",
        },
    ),
]


@pytest.fixture
def dns() -> Iterator[DNSServer]:
    with DNSServer() as server:
        yield server


def _serve(server: DNSServer, zone: tuple[RR, ...]) -> None:
    for rr in zone:
        if isinstance(rr.value, bytes):
            server.add_raw(rr.name, rr.rdtype, rr.value)
        else:
            server.add(rr.name, rr.rdtype, rr.value)


def _at(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def _check(
    server: DNSServer, name: str, *argv: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any]]:
    code = main(["caa", "check", name, *argv, "--json", "--nameserver", server.nameserver])
    captured = capsys.readouterr()
    assert captured.out, captured.err
    doc: dict[str, Any] = json.loads(captured.out)
    return code, doc


def _assert_schema(doc: dict[str, Any]) -> None:
    assert set(doc) == TOP_KEYS
    lookup = doc["lookup"]
    assert set(lookup) == LOOKUP_KEYS
    assert all(set(step) == STEP_KEYS for step in lookup["steps"])
    assert all(set(record) == RECORD_KEYS for record in lookup["records"])
    if doc["summary"] is not None:
        assert set(doc["summary"]) == SUMMARY_KEYS
        for kind in ("name", "wildcard", "email"):
            assert set(doc["summary"][kind]) == PERMISSION_KEYS
    if doc["evaluation"] is not None:
        evaluation = doc["evaluation"]
        assert set(evaluation) == EVALUATION_KEYS
        assert evaluation["matched"] is None or set(evaluation["matched"]) == RECORD_KEYS
        assert evaluation["reasons"], "a verdict always gives its reasons"


def _matches(phrases: tuple[str, ...], texts: list[str]) -> bool:
    return len(phrases) == len(texts) and all(p in t for p, t in zip(phrases, texts, strict=True))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_check_case(case: Case, dns: DNSServer, capsys: pytest.CaptureFixture[str]) -> None:
    _serve(dns, case.zone)
    for fault in case.faults:
        dns.fail(fault.name, fault.fault, ede=fault.ede)
    dns.set_ad(case.ad)

    code, doc = _check(dns, case.name, *case.argv, capsys=capsys)

    _assert_schema(doc)
    assert code == case.exit, doc
    lookup, evaluation = doc["lookup"], doc["evaluation"]
    if case.verdict is None:
        assert evaluation is None
    else:
        assert evaluation["verdict"] == case.verdict, evaluation["reasons"]
    if case.error is None:
        assert lookup["error"] is None
        assert lookup["found_at"] == case.found_at
        assert doc["summary"] is not None
    else:
        assert case.error in lookup["error"]
        assert lookup["found_at"] is None and doc["summary"] is None
    assert tuple(lookup["aliases"]) == case.aliases
    if lookup["found_at"] is not None:
        assert lookup["records"] and lookup["ttl"] == 300
    if case.asked is not None:
        assert tuple(q.name for q in dns.queries) == case.asked
        assert [s["name"] for s in lookup["steps"]] == list(case.asked)
    if evaluation is not None:
        reasons, warnings = evaluation["reasons"], evaluation["warnings"]
        if case.reason is not None:
            assert any(case.reason in r for r in reasons), reasons
        matched = evaluation["matched"]
        if case.matched is not None:
            assert matched is not None and matched["presentation"] == case.matched
        if case.verdict != "allowed":
            assert matched is None
        assert _matches(case.conditions, evaluation["conditions"]), evaluation["conditions"]
        assert _matches(case.warnings, warnings), warnings
    for path, value in case.expect.items():
        assert _at(doc, path) == value, path


def test_there_are_at_least_25_check_cases() -> None:
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)


def test_star_argument_gives_the_same_answer_as_wildcard_option(
    dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve(dns, (ISSUE_CA, RR("example.com", "CAA", '0 issuewild "wild.test"')))
    for ca, code in (("wild.test", 0), ("ca.test", 1)):
        star = _check(dns, "*.example.com", "--ca", ca, capsys=capsys)
        option = _check(dns, "example.com", "--wildcard", "--ca", ca, capsys=capsys)
        plain = _check(dns, "example.com", "--ca", ca, capsys=capsys)
        assert star == option
        assert star[0] == code
        assert star[1]["evaluation"]["for"] == "wildcard"
        assert plain[0] == 1 - code  # the name itself follows issue, not issuewild


def test_raw_tag_is_read_not_taken_for_a_timeout(
    dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # dnspython refuses the whole response for a tag with '-': the answer must still be read.
    dns.add_raw("example.com", "CAA", rdata(128, b"issue-critical", b"ca.test"))
    code, doc = _check(dns, "example.com", "--ca", "ca.test", "--timeout", "2", capsys=capsys)
    assert code == 1
    assert doc["lookup"]["error"] is None
    assert doc["lookup"]["records"] == [
        {
            "flags": 128,
            "critical": True,
            "tag": "issue-critical",
            "value": "ca.test",
            "presentation": "\\# 23 800e69737375652d637269746963616c63612e74657374",
        }
    ]
    assert [q.transport for q in dns.queries] == ["udp"]  # one answer, no retry


# -- human output -------------------------------------------------------------------------


def test_human_output_names_where_what_and_the_verdict(
    dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve(
        dns,
        (
            RR("www.example.com", "CNAME", "cdn.example.net"),
            RR("cdn.example.net", "CAA", '0 issue "ca.test"'),
            RR("cdn.example.net", "CAA", '0 issuewild ";"'),
            RR("cdn.example.net", "CAA", '0 iodef "mailto:security@example.com"'),
            RR("cdn.example.net", "CAA", '0 issue "ca.test bad"'),
        ),
    )
    dns.set_ad()
    code = main(
        ["caa", "check", "www.example.com", "--ca", "ca.test", "--nameserver", dns.nameserver]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert (
        "Relevant CAA records for www.example.com: found at www.example.com "
        "(via cdn.example.net), TTL 300, DNSSEC-authenticated" in out
    )
    assert '  0 issue "ca.test"\n' in out
    assert '  0 issuewild ";"\n' in out
    assert "May issue for www.example.com: ca.test\n" in out
    assert "May issue for *.www.example.com: no CA (issuewild names no issuer)\n" in out
    assert "Reports (iodef): mailto:security@example.com\n" in out
    assert 'malformed: 0 issue "ca.test bad"' in out
    assert "ca.test for www.example.com: ALLOWED\n" in out
    assert '  - `0 issue "ca.test"` authorizes ca.test for www.example.com.' in out


def test_human_output_of_a_denied_wildcard(
    dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve(dns, (ISSUE_CA, RR("example.com", "CAA", '0 issuewild ";"')))
    code = main(
        ["caa", "check", "*.example.com", "--ca", "ca.test", "--nameserver", dns.nameserver]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "found at example.com, TTL 300, not DNSSEC-authenticated" in out
    assert "ca.test for *.example.com: DENIED\n" in out


def test_human_output_without_any_caa(dns: DNSServer, capsys: pytest.CaptureFixture[str]) -> None:
    dns.add("www.example.org", "A", "127.0.0.1")
    code = main(["caa", "check", "www.example.org", "--nameserver", dns.nameserver])
    out = capsys.readouterr().out
    assert code == 0
    assert "No CAA records at www.example.org or any parent up to the top-level domain" in out
    assert "May issue for www.example.org: any CA\n" in out
    assert "ALLOWED" not in out  # no --ca, no verdict


def test_human_output_of_a_dns_failure(dns: DNSServer, capsys: pytest.CaptureFixture[str]) -> None:
    dns.fail("example.com", "SERVFAIL")
    code = main(["caa", "check", "example.com", "--ca", "ca.test", "--nameserver", dns.nameserver])
    out = capsys.readouterr().out
    assert code == 3
    assert "DNS lookup failed: CAA query for example.com failed" in out
    assert "a CA must refuse to issue" in out
    assert "ca.test for example.com: UNKNOWN\n" in out
    assert "May issue" not in out


def test_human_output_of_conditions_and_warnings(
    dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    dns.add("example.com", "CAA", f'0 issue "CA.test; accounturi={ACCOUNT_1}"')
    code = main(["caa", "check", "example.com", "--ca", "ca.test", "--nameserver", dns.nameserver])
    out = capsys.readouterr().out
    assert code == 0
    assert f"  only if only for the account {ACCOUNT_1}\n" in out
    assert "  warning: `0 issue" in out
    assert f"May issue for example.com: CA.test (accounturi={ACCOUNT_1})\n" in out


# -- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["example.com", "--email", "--wildcard", "--ca", "ca.test"], "do not go together"),
        (["*.example.com", "--email", "--ca", "ca.test"], "do not go together"),
        (["example.com", "--method", "dns-01"], "need --ca"),
        (["example.com", "--account-uri", ACCOUNT_1], "need --ca"),
        (["example.com", "--ca", "not a ca!"], "is neither an issuer domain name"),
        (["192.0.2.1", "--ca", "ca.test"], "an IP address has no CAA records"),
        (["exa mple.com"], "not a domain name"),
        (["a.*.example.com"], "'*' may only be the whole first label"),
        (["example.com", "--timeout", "0"], "--timeout 0"),
        (["example.com", "--nameserver", "not-an-ip"], "not-an-ip"),
    ],
)
def test_bad_check_input_exits_2_naming_the_value(
    argv: list[str], message: str, dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    if "--nameserver" not in argv:
        argv = [*argv, "--nameserver", dns.nameserver]
    assert main(["caa", "check", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("pinwarden: error: ")
    assert message in captured.err
    assert captured.err.count("\n") == 1


def test_malformed_identities_file_exits_2(
    dns: DNSServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "cas.toml"
    table.write_text('[[ca]]\nname = "Bad"\ncaa = ["Not A Domain"]\n')
    argv = ["example.com", "--ca", "Bad", "--identities", str(table)]
    code = main(["caa", "check", *argv, "--nameserver", dns.nameserver])
    assert code == 2
    err = capsys.readouterr().err
    assert "cas.toml" in err and "ca[0].caa[0]" in err
    assert dns.queries == []  # refused before asking anything


def test_ca_name_from_a_user_identities_file(
    dns: DNSServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "cas.toml"
    table.write_text('[[ca]]\nname = "Example Private CA"\ncaa = ["pki.example.net"]\n')
    dns.add("example.com", "CAA", '0 issue "pki.example.net"')
    code, doc = _check(
        dns,
        "example.com",
        "--ca",
        "example private ca",
        "--identities",
        str(table),
        capsys=capsys,
    )
    assert code == 0
    assert doc["evaluation"]["ca"] == "pki.example.net"


# -- hostile DNS bytes ------------------------------------------------------------------


def _check_without_capsys(server: DNSServer, *argv: str) -> tuple[int, dict[str, Any]]:
    """``caa check example.com --ca ca.test --json``, stdout read through a redirect: no
    capsys or dns fixture under @given (function-scoped fixtures are not reset between
    examples), so each example has its own server."""
    argv = ("example.com", "--ca", "ca.test", "--json", *argv, "--nameserver", server.nameserver)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["caa", "check", *argv])
    doc: dict[str, Any] = json.loads(buffer.getvalue())
    return code, doc


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=80), flags=st.integers(0, 255), tag=st.binary(min_size=1))
def test_any_caa_rdata_gives_a_verdict_never_a_crash(data: bytes, flags: int, tag: bytes) -> None:
    with DNSServer() as server:
        server.add_raw("example.com", "CAA", rdata(flags, tag[:255], data))
        server.add_raw("example.com", "CAA", data)  # anything, even shorter than a header
        code, doc = _check_without_capsys(server, "--timeout", "3")
    _assert_schema(doc)
    verdict = doc["evaluation"]["verdict"]
    assert (code, verdict) in {(0, "allowed"), (1, "denied"), (3, "unknown")}
    if doc["lookup"]["error"] is not None:
        # Unreadable rdata is a malformed answer, never a timeout.
        assert "malformed answer" in doc["lookup"]["error"]
        assert doc["lookup"]["steps"][-1]["rcode"] == "malformed"


_QUESTION = bytes.fromhex("076578616d706c6503636f6d00") + (257).to_bytes(2, "big") + b"\x00\x01"


@st.composite
def _replies(draw: st.DrawFn) -> bytes:
    """A reply to the CAA question for example.com whose answer section is anything; or
    any bytes with the QR bit set (the transport only waits for responses)."""
    if draw(st.booleans()):
        flags = draw(st.sampled_from([0x8180, 0x81A0, 0x8183, 0x8182, 0x8380]))
        counts = draw(st.tuples(st.integers(0, 4), st.integers(0, 2), st.integers(0, 2)))
        header = b"\0\0" + flags.to_bytes(2, "big") + (1).to_bytes(2, "big")
        header += b"".join(n.to_bytes(2, "big") for n in counts)
        return header + _QUESTION + draw(st.binary(max_size=120))
    anything = bytearray(draw(st.binary(min_size=12, max_size=120)))
    anything[2] |= 0x80
    return bytes(anything)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reply=_replies())
def test_any_dns_reply_is_an_answer_or_unknown(reply: bytes) -> None:
    with DNSServer() as server:
        server.respond_raw("example.com", reply)
        code, doc = _check_without_capsys(server, "--timeout", "2")
    _assert_schema(doc)
    assert code in (0, 1, 3)
    if code == 3:
        assert doc["lookup"]["error"]
        assert doc["lookup"]["steps"][-1]["rcode"] != "timeout"


# -- generate, read back, served, checked -----------------------------------------------


def _generate(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(["caa", "generate", *argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def _from_zone(text: str) -> list[tuple[str, int, CAARecord]]:
    rows = []
    for line in text.splitlines():
        owner, ttl, klass, rdtype, _ = line.split(None, 4)
        assert (klass, rdtype) == ("IN", "CAA")
        rows.append((owner, int(ttl), parse_presentation(line)))
    return rows


def _from_tinydns(text: str) -> list[tuple[str, int, CAARecord]]:
    rows = []
    for line in text.splitlines():
        empty, owner, rdtype, escaped, ttl = line.split(":")
        assert (empty, rdtype) == ("", "257")
        raw = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m[1], 8)]), escaped.encode("ascii"))
        rows.append((owner + ".", int(ttl), from_rdata(raw)))
    return rows


def _from_json(text: str) -> list[tuple[str, int, CAARecord]]:
    rows = json.loads(text)
    assert all(set(r) == {"name", "ttl", "flags", "tag", "value"} for r in rows)
    return [
        (r["name"], r["ttl"], CAARecord(r["flags"], r["tag"], r["value"].encode())) for r in rows
    ]


READERS = {"zone": _from_zone, "tinydns": _from_tinydns, "json": _from_json}


def _serve_generated(server: DNSServer, rows: list[tuple[str, int, CAARecord]]) -> None:
    for owner, ttl, record in rows:
        server.add_raw(owner, "CAA", to_rdata(record), ttl=ttl)


def _verdict(
    server: DNSServer, capsys: pytest.CaptureFixture[str], ca: str, *argv: str
) -> tuple[int, str]:
    code, doc = _check(server, "www.gen.test", "--ca", ca, *argv, capsys=capsys)
    return code, doc["evaluation"]["verdict"]


@pytest.mark.parametrize("fmt", ["zone", "tinydns", "json"])
@pytest.mark.parametrize(
    ("wildcard_argv", "wild_allowed"),
    [
        ((), {"ca.test", "letsencrypt.org"}),
        (("--no-wildcard",), set()),
        (("--wildcard-ca", "wild.test"), {"wild.test"}),
        (("--wildcard-ca", "ca.test"), {"ca.test"}),
    ],
    ids=["same-cas", "no-wildcard", "other-wildcard-ca", "subset-wildcard-ca"],
)
def test_generated_records_served_back_allow_exactly_what_was_asked(
    fmt: str,
    wildcard_argv: tuple[str, ...],
    wild_allowed: set[str],
    dns: DNSServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = _generate(
        capsys,
        "--ca",
        "ca.test",
        "--ca",
        "Let's Encrypt",
        *wildcard_argv,
        "--iodef",
        "mailto:security@gen.test",
        "--name",
        "gen.test",
        "--ttl",
        "600",
        "--format",
        fmt,
    )
    rows = READERS[fmt](text)
    assert {(owner, ttl) for owner, ttl, _ in rows} == {("gen.test.", 600)}
    tags = [record.tag for _, _, record in rows]
    assert tags.count("issuewild") == (0 if not wildcard_argv else len(wild_allowed) or 1)
    assert all(record.flags == 0 for _, _, record in rows)
    _serve_generated(dns, rows)
    dns.add("www.gen.test", "A", "127.0.0.1")  # the records govern the names below too

    for ca in ("ca.test", "letsencrypt.org"):
        assert _verdict(dns, capsys, ca) == (0, "allowed")
    for ca in ("other.test", "wild.test"):  # --wildcard-ca does not reach the name itself
        assert _verdict(dns, capsys, ca) == (1, "denied")
    for ca in ("ca.test", "letsencrypt.org", "wild.test", "other.test"):
        expected = (0, "allowed") if ca in wild_allowed else (1, "denied")
        assert _verdict(dns, capsys, ca, "--wildcard") == expected, ca
    code, doc = _check(dns, "gen.test", capsys=capsys)
    assert code == 0
    assert doc["summary"]["iodef"] == [
        {"url": "mailto:security@gen.test", "scheme": "mailto", "target": "security@gen.test"}
    ]


def test_generated_rfc8657_parameters_are_enforced(
    dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _generate(
        capsys,
        "--ca",
        "ca.test",
        "--ca",
        "other.test",
        "--account-uri",
        f"ca.test={ACCOUNT_1}",
        "--method",
        "ca.test=dns-01",
        "--name",
        "gen.test",
    )
    _serve_generated(dns, _from_zone(text))
    dns.add("www.gen.test", "A", "127.0.0.1")
    good = ("--account-uri", ACCOUNT_1, "--method", "dns-01")
    assert _verdict(dns, capsys, "ca.test", *good) == (0, "allowed")
    assert _verdict(dns, capsys, "ca.test", "--account-uri", ACCOUNT_2) == (1, "denied")
    assert _verdict(dns, capsys, "ca.test", "--method", "http-01") == (1, "denied")
    # other.test was given without restrictions: any account, any method.
    assert _verdict(dns, capsys, "other.test", "--account-uri", ACCOUNT_2) == (0, "allowed")
    code, doc = _check(dns, "www.gen.test", "--ca", "ca.test", capsys=capsys)
    assert code == 0
    assert len(doc["evaluation"]["conditions"]) == 1
    assert ACCOUNT_1 in doc["evaluation"]["conditions"][0]
    assert "dns-01" in doc["evaluation"]["conditions"][0]


def test_generate_without_ca_forbids_everyone(
    dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _generate(capsys, "--name", "gen.test")
    assert text == 'gen.test. 3600 IN CAA 0 issue ";"\n'
    _serve_generated(dns, _from_zone(text))
    assert _verdict(dns, capsys, "ca.test") == (1, "denied")
    assert _verdict(dns, capsys, "ca.test", "--wildcard") == (1, "denied")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ca", "ca.test", "--no-wildcard", "--wildcard-ca", "wild.test"], "contradict"),
        (["--ca", "ca.test", "--format", "xml"], "--format 'xml'"),
        (["--ca", "not a ca!"], "'not a ca!'"),
        (["--ca", "ca.test", "--iodef", "ftp://example.com/"], "ftp://example.com/"),
        (["--ca", "ca.test", "--ttl", "-1"], "--ttl -1"),
        (["--ca", "ca.test", "--ttl", "2147483648"], "--ttl 2147483648"),
        (["--ca", "ca.test", "--account-uri", "other.test=https://a.test/1"], "other.test"),
        (["--ca", "a.test", "--ca", "b.test", "--account-uri", ACCOUNT_1], "say which CA"),
        (["--ca", "ca.test", "--name", "bad name!"], "'bad name!'"),
    ],
)
def test_bad_generate_input_exits_2_naming_the_value(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["caa", "generate", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("pinwarden: error: ")
    assert message in captured.err


def test_generate_ttl_that_is_not_a_number_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["caa", "generate", "--ca", "ca.test", "--ttl", "soon"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Invalid value for '--ttl'" in captured.err


def test_a_ca_named_by_its_name_is_judged_by_every_domain_it_honours(
    dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # The bundled table says DigiCert honours symantec.com: a CA following its records
    # would issue, whatever its preferred domain is.
    _serve(dns, (RR("example.com", "CAA", '0 issue "symantec.com"'),))
    code = main(
        [
            "caa",
            "check",
            "example.com",
            "--ca",
            "DigiCert",
            "--json",
            "--nameserver",
            dns.nameserver,
        ]
    )
    evaluation = json.loads(capsys.readouterr().out)["evaluation"]
    assert code == 0
    assert evaluation["verdict"] == "allowed"
    assert evaluation["ca"] == "symantec.com"


@pytest.mark.parametrize(
    "argv",
    [
        ["*.*.example.com"],
        ["example.com", "--ca", ""],
        ["example.com", "--ca", "ca.test", "--account-uri", " "],
        ["example.com", "--ca", "ca.test", "--email", "--method", "dns-01"],
    ],
)
def test_more_bad_check_input(
    argv: list[str], dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["caa", "check", *argv, "--nameserver", dns.nameserver]) == 2
    assert capsys.readouterr().err.startswith("pinwarden: error:")


def test_a_leading_space_does_not_lose_the_wildcard(
    dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve(dns, (ISSUE_CA, RR("example.com", "CAA", '0 issuewild ";"')))
    code = main(
        ["caa", "check", " *.example.com", "--ca", "ca.test", "--nameserver", dns.nameserver]
    )
    assert code == 1


def test_dns_data_cannot_drive_the_terminal_or_become_emoji(
    dns: DNSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _serve(
        dns,
        (
            RR("example.com", "CAA", '0 issue "ca.test; accounturi=urn:x:1"'),
            RR("example.com", "CAA", '0 contactemail "a\\027]0;PWNED\\007@example.com"'),
        ),
    )
    main(["caa", "check", "example.com", "--ca", "ca.test", "--nameserver", dns.nameserver])
    out = capsys.readouterr().out
    assert "urn:x:1" in out
    assert "\x1b" not in out and "\x07" not in out
