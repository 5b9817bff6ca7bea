"""The CT monitor's verdicts: expected / unexpected (with reasons) / found."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from pinwarden.caa.identities import CAIdentity
from pinwarden.ct.entries import (
    LogEntry,
    encode_extra_data,
    encode_merkle_tree_leaf,
    parse_leaf,
    strip_ct_extensions,
)
from pinwarden.ct.sct import SignedEntryType
from pinwarden.ct.verdicts import (
    EXPECTED,
    FOUND,
    UNEXPECTED,
    Judge,
    Judgement,
    issuer_identity,
    names_in_unreadable,
)
from pinwarden.ct.watch import WatchList
from pinwarden.pins import Pin
from pinwarden.testing import CA, DNSServer, Issued, generate_key, issue_precertificate

NOW = dt.datetime.now(dt.timezone.utc)
TEST_CA = CAIdentity(
    name="pinwarden test CA", caa=("ca.pinwarden.test",), organizations=("pinwarden test kit",)
)
OTHER_CA = CAIdentity(name="Other CA", caa=("other.example",), organizations=("Other Org",))
IDENTITIES = (OTHER_CA, TEST_CA)


@pytest.fixture(scope="module")
def ca() -> CA:
    return CA("verdict test root").intermediate("verdict test issuing CA")


@pytest.fixture(scope="module")
def dns() -> Iterator[DNSServer]:
    with DNSServer() as server:
        server.add("allowed.example.test", "CAA", '0 issue "ca.pinwarden.test"')
        server.add("denied.example.test", "CAA", '0 issue "other.example"')
        server.add("wild.example.test", "CAA", '0 issue "ca.pinwarden.test"')
        server.add("wild.example.test", "CAA", '0 issuewild "other.example"')
        server.fail("broken.example.test", "SERVFAIL", rdtype="CAA")
        yield server


def der(issued: Issued) -> bytes:
    return issued.cert.public_bytes(serialization.Encoding.DER)


def x509_entry(issued: Issued, index: int = 0) -> LogEntry:
    leaf = encode_merkle_tree_leaf(1_700_000_000_000, der(issued))
    chain = [c.public_bytes(serialization.Encoding.DER) for c in issued.chain]
    return parse_leaf(leaf, encode_extra_data(chain), index)


def precert_entry(ca: CA, *names: str) -> LogEntry:
    precert = issue_precertificate(ca, *names).precert
    issuer_spki = ca.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tbs = strip_ct_extensions(precert.cert.tbs_certificate_bytes)
    leaf = encode_merkle_tree_leaf(
        1_700_000_000_000, tbs, issuer_key_hash=hashlib.sha256(issuer_spki).digest()
    )
    return parse_leaf(leaf, encode_extra_data([], pre_certificate=der(precert)), 0)


def judge(
    entry: LogEntry,
    watch_text: str,
    *,
    dns: DNSServer | None = None,
    identities: tuple[CAIdentity, ...] = IDENTITIES,
    base_dir: Path | None = None,
) -> Judgement:
    watch = WatchList.parse(watch_text, base_dir=base_dir)
    matches = watch.matches(entry.dns_names)
    assert matches, "the test certificate must match the watch list"
    judge = Judge(nameservers=(dns.nameserver,) if dns else (), identities=identities)
    return asyncio.run(judge.judge(entry, matches, NOW))


def test_no_expectations_is_found_not_expected(ca: CA) -> None:
    assert judge(x509_entry(ca.issue("www.example.test")), ".example.test") == Judgement(FOUND)


def test_named_cas(ca: CA) -> None:
    entry = x509_entry(ca.issue("www.example.test"))
    assert judge(entry, ".example.test ca=ca.pinwarden.test").verdict == EXPECTED
    assert judge(entry, ".example.test ca=other.example,ca.pinwarden.test").verdict == EXPECTED
    wrong = judge(entry, ".example.test ca=other.example")
    assert wrong.verdict == UNEXPECTED
    assert wrong.reasons == (
        "issued by pinwarden test CA (ca.pinwarden.test), not by an allowed CA (other.example)",
    )
    unknown = judge(entry, ".example.test ca=ca.pinwarden.test", identities=(OTHER_CA,))
    assert unknown.verdict == UNEXPECTED
    assert "is not a CA pinwarden knows" in unknown.reasons[0]


def test_a_precertificate_is_recognised_by_its_issuer_key_hash(ca: CA) -> None:
    entry = precert_entry(ca, "www.example.test")
    by_pin = CAIdentity(name="Pinned CA", caa=("pinned.example",), pins=(ca.pin,))
    assert issuer_identity(entry, (OTHER_CA, by_pin, TEST_CA)) == by_pin
    assert issuer_identity(x509_entry(ca.issue("a.example.test")), (OTHER_CA,)) is None
    assert judge(entry, ".example.test ca=pinned.example", identities=(by_pin,)).verdict == (
        EXPECTED
    )


@pytest.mark.parametrize(
    ("name", "verdict", "reason"),
    [
        ("allowed.example.test", EXPECTED, None),
        ("sub.allowed.example.test", EXPECTED, None),  # the climb finds the parent's records
        ("nothing.example.test", EXPECTED, None),  # no CAA anywhere: any CA may issue
        (
            "denied.example.test",
            UNEXPECTED,
            "CAA of denied.example.test (records at denied.example.test) does not allow "
            "pinwarden test CA (ca.pinwarden.test) to issue at detection time",
        ),
        ("broken.example.test", UNEXPECTED, "CAA of broken.example.test: unknown (CAA query"),
        ("wild.example.test", EXPECTED, None),
        ("*.wild.example.test", UNEXPECTED, "CAA of *.wild.example.test (records at"),
    ],
)
def test_ca_from_caa_at_detection_time(
    ca: CA, dns: DNSServer, name: str, verdict: str, reason: str | None
) -> None:
    result = judge(x509_entry(ca.issue(name)), ".example.test ca=caa", dns=dns)
    assert result.verdict == verdict
    if reason is None:
        assert result.reasons == ()
    else:
        assert len(result.reasons) == 1 and result.reasons[0].startswith(reason)


def test_a_dns_failure_is_never_allowed_even_with_another_server_down(ca: CA) -> None:
    # No server answers at all (a closed port): the verdict says unknown, not allowed.
    entry = x509_entry(ca.issue("allowed.example.test"))
    watch = WatchList.parse(".example.test ca=caa")
    judge = Judge(nameservers=("127.0.0.1:9",), identities=IDENTITIES, caa_timeout=0.5)
    result = asyncio.run(judge.judge(entry, watch.matches(entry.dns_names), NOW))
    assert result.verdict == UNEXPECTED
    assert "unknown" in result.reasons[0]


def test_caa_with_an_unknown_issuer_is_unknown(ca: CA, dns: DNSServer) -> None:
    entry = x509_entry(ca.issue("allowed.example.test"))
    result = judge(entry, ".example.test ca=caa", dns=dns, identities=(OTHER_CA,))
    assert result.verdict == UNEXPECTED
    assert "cannot be told (unknown)" in result.reasons[0]


def test_caa_answers_are_cached_briefly(ca: CA, dns: DNSServer) -> None:
    judge = Judge(nameservers=(dns.nameserver,), identities=IDENTITIES)
    before = len(dns.queries)

    async def twice() -> None:
        await judge.caa("allowed.example.test")
        await judge.caa("allowed.example.test")

    asyncio.run(twice())
    assert len(dns.queries) - before == 1


def test_pins(ca: CA) -> None:
    issued = ca.issue("www.example.test")
    entry = x509_entry(issued)
    other = Pin.from_private_key(generate_key())
    assert judge(entry, f".example.test pins={issued.pin},{other}").verdict == EXPECTED
    result = judge(entry, f".example.test pins={other}")
    assert result.verdict == UNEXPECTED
    assert result.reasons == (f"key {issued.pin} is not among the pins= pins for www.example.test",)


def test_policy_pins(ca: CA, tmp_path: Path) -> None:
    issued = ca.issue("www.example.test", "api.example.test", "other.example.test")
    backup = Pin.from_private_key(generate_key())
    stale = Pin.from_private_key(generate_key())
    (tmp_path / "pins.toml").write_text(
        f'[[pin]]\nhosts = ["www.example.test"]\npins = ["{issued.pin}", "{backup}"]\n'
        f'[[pin]]\nhosts = ["api.example.test"]\npins = ["{stale}", "{backup}"]\n'
        f'[[pin]]\nhosts = ["other.example.test"]\npins = ["{stale}", "{backup}"]\n'
        'expires = "2000-01-01"\n',
        encoding="utf-8",
    )
    result = judge(x509_entry(issued), ".example.test policy=pins.toml", base_dir=tmp_path)
    assert result.verdict == UNEXPECTED
    # www: its rule has the key; api: it does not; other: the rule expired (fails open).
    assert result.reasons == (
        f"key {issued.pin} is not among the policy {tmp_path / 'pins.toml'} pins for "
        "api.example.test",
    )
    uncovered = judge(
        x509_entry(ca.issue("new.example.test")),
        ".example.test policy=pins.toml",
        base_dir=tmp_path,
    )
    assert uncovered.verdict == UNEXPECTED
    assert "no rule of policy" in uncovered.reasons[0]
    assert "covers new.example.test" in uncovered.reasons[0]


def test_names_outside_the_expected_set(ca: CA) -> None:
    watch = ".example.test names=www.example.test,*.api.example.test"
    assert judge(x509_entry(ca.issue("www.example.test", "a.api.example.test")), watch) == (
        Judgement(EXPECTED)
    )
    result = judge(x509_entry(ca.issue("www.example.test", "evil.example.test", "x.org")), watch)
    assert result.verdict == UNEXPECTED
    assert result.reasons[0].endswith(": evil.example.test, x.org")


def test_validity_longer_than_allowed(ca: CA) -> None:
    start = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    short = ca.issue("www.example.test", not_before=start, not_after=start + dt.timedelta(days=90))
    long = ca.issue("www.example.test", not_before=start, not_after=start + dt.timedelta(days=398))
    assert judge(x509_entry(short), ".example.test max-validity=90").verdict == EXPECTED
    result = judge(x509_entry(long), ".example.test max-validity=90")
    assert result.verdict == UNEXPECTED
    assert result.reasons == (
        "valid for 398.0 days (2030-01-01 to 2031-02-03), longer than max-validity=90",
    )


def test_reasons_name_their_entry_when_several_have_expectations(ca: CA) -> None:
    issued = ca.issue("www.example.test")
    other = Pin.from_private_key(generate_key())
    result = judge(
        x509_entry(issued),
        f".example.test ca=other.example\nwww.example.test pins={other}\n.test",
    )
    assert result.verdict == UNEXPECTED
    assert [r.split(":")[0] for r in result.reasons] == [".example.test", "www.example.test"]


def test_an_unreadable_certificate_is_unexpected_and_its_names_still_match(ca: CA) -> None:
    entry = x509_entry(ca.issue("secret.example.test"))
    broken = replace(entry, error="certificate could not be read: bad", dns_names=())
    names = names_in_unreadable(broken)
    assert "secret.example.test" in names
    watch = WatchList.parse(".example.test ca=ca.pinwarden.test")
    matches = watch.matches(names)
    assert matches
    result = asyncio.run(Judge(identities=IDENTITIES).judge(broken, matches, NOW))
    assert result.verdict == UNEXPECTED
    assert result.reasons[0].startswith("certificate could not be read: bad")


@given(st.binary(max_size=600))
def test_names_in_unreadable_reads_any_bytes(data: bytes) -> None:
    entry = LogEntry(
        index=0,
        timestamp_ms=0,
        entry_type=SignedEntryType.X509,
        leaf_input=b"",
        leaf_hash=b"\0" * 32,
        extensions=b"",
        leaf_index=None,
        tbs_der=data,
        certificate_der=None,
        issuer_key_hash=None,
        chain_fingerprints=(),
        chain_der=(),
        extra_data=b"",
        dns_names=(),
        unicode_names=(),
        error="unreadable",
    )
    names = names_in_unreadable(entry)
    assert all(name.isascii() and name == name.lower() and "." in name for name in names)
    WatchList.parse(".example.test").matches(names)  # never raises
