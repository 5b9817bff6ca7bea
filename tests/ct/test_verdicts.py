"""The CT monitor's verdicts: expected / unexpected (with reasons) / found. The issuer is
recognised by its key where the entry proves it; its name alone never makes a certificate
expected."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
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
    check_issuer,
    issuer_identity,
    names_in_unreadable,
)
from pinwarden.ct.watch import WatchList
from pinwarden.pins import Pin
from pinwarden.testing import CA, DNSServer, Issued, generate_key, issue_precertificate

NOW = dt.datetime.now(dt.timezone.utc)
ISSUING = CA("verdict test root").intermediate("verdict test issuing CA")
# The test kit's CAs are named O=pinwarden test kit: an identity with that name and the
# issuing CA's key (the pin) recognises them by key; NAME_ONLY by their name alone.
NAME_ONLY = CAIdentity(
    name="pinwarden test CA", caa=("ca.pinwarden.test",), organizations=("pinwarden test kit",)
)
TEST_CA = replace(NAME_ONLY, pins=(ISSUING.pin,))
OTHER_CA = CAIdentity(name="Other CA", caa=("other.example",), organizations=("Other Org",))
IDENTITIES = (OTHER_CA, TEST_CA)


@pytest.fixture(scope="module")
def ca() -> CA:
    return ISSUING


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
    # The key wins over the name (TEST_CA's organisation matches the issuer name too).
    assert issuer_identity(entry, (OTHER_CA, NAME_ONLY, by_pin)) == by_pin
    assert check_issuer(entry, (OTHER_CA, NAME_ONLY, by_pin)).by_key
    assert issuer_identity(x509_entry(ca.issue("a.example.test")), (OTHER_CA,)) is None
    assert judge(entry, ".example.test ca=pinned.example", identities=(by_pin,)).verdict == (
        EXPECTED
    )


def test_an_x509_entry_is_recognised_by_the_chain_certificate_that_signed_it(ca: CA) -> None:
    entry = x509_entry(ca.issue("www.example.test"))
    found = check_issuer(entry, IDENTITIES)
    assert (found.identity, found.by_key, found.key, found.doubt) == (TEST_CA, True, ca.pin, None)


# -- an issuer's name is only a claim ----------------------------------------------------------


def rogue_intermediate(organization: str, common_name: str) -> CA:
    """A CA under another root whose intermediate carries someone else's name."""
    root = CA("rogue root")
    key = generate_key()
    now = dt.datetime.now(dt.timezone.utc)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=300))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(root.key, hashes.SHA256())
    )
    rogue = CA.__new__(CA)
    rogue.name, rogue.parent, rogue.key, rogue.cert = common_name, root, key, cert
    return rogue


@pytest.mark.parametrize("precert", [False, True])
def test_an_issuer_claiming_a_pinned_ca_s_name_with_another_key_is_unexpected(
    precert: bool,
) -> None:
    rogue = rogue_intermediate("pinwarden test kit", "R3")
    entry = (
        precert_entry(rogue, "www.example.test")
        if precert
        else (x509_entry(rogue.issue("www.example.test")))
    )
    for watch in (".example.test ca=ca.pinwarden.test", ".example.test ca=caa"):
        result = judge(entry, watch, identities=(TEST_CA,))
        assert result.verdict == UNEXPECTED
        assert result.reasons == (
            f"issuer {entry.issuer!r} claims to be pinwarden test CA but its key {rogue.pin} "
            "is not a known pinwarden test CA key",
        )


def test_the_bundled_table_does_not_take_a_let_s_encrypt_name_for_let_s_encrypt() -> None:
    rogue = rogue_intermediate("Let's Encrypt", "R10")
    for entry in (
        x509_entry(rogue.issue("www.example.test")),
        precert_entry(rogue, "www.example.test"),
    ):
        watch = WatchList.parse(".example.test ca=letsencrypt.org")
        result = asyncio.run(Judge().judge(entry, watch.matches(entry.dns_names), NOW))
        assert result.verdict == UNEXPECTED
        assert "claims to be Let's Encrypt but its key" in result.reasons[0]


def test_a_ca_known_by_name_only_never_makes_a_certificate_expected(ca: CA, dns: DNSServer) -> None:
    entry = x509_entry(ca.issue("allowed.example.test"))
    for watch in (".example.test ca=ca.pinwarden.test", ".example.test ca=caa"):
        result = judge(entry, watch, dns=dns, identities=(NAME_ONLY,))
        assert result.verdict == UNEXPECTED
        (reason,) = result.reasons
        assert "is taken for pinwarden test CA by its name only" in reason
        assert "add the SPKI pins of pinwarden test CA's issuing intermediates" in reason
    # A name that is not an allowed CA is just that (no need to doubt it).
    wrong = judge(entry, ".example.test ca=other.example", identities=(NAME_ONLY,))
    assert wrong.reasons == (
        "issued by pinwarden test CA (ca.pinwarden.test), not by an allowed CA (other.example)",
    )


def test_an_issuer_key_the_entry_does_not_prove_is_not_assumed(ca: CA) -> None:
    issued = ca.issue("www.example.test")
    no_chain = parse_leaf(encode_merkle_tree_leaf(0, der(issued)), encode_extra_data([]), 0)
    result = judge(no_chain, ".example.test ca=ca.pinwarden.test")
    assert result.verdict == UNEXPECTED
    assert result.reasons[0].endswith(
        "its key cannot be checked against the known pinwarden test CA keys: the log entry "
        "does not carry the issuing certificate"
    )
    # The chain beside an x509 entry is not signed by the log: a known intermediate put in
    # front of a certificate it did not sign proves nothing.
    rogue = rogue_intermediate("pinwarden test kit", "R3")
    forged = parse_leaf(
        encode_merkle_tree_leaf(0, der(rogue.issue("www.example.test"))),
        encode_extra_data([ca.cert.public_bytes(serialization.Encoding.DER)]),
        0,
    )
    assert check_issuer(forged, IDENTITIES).key is None
    result = judge(forged, ".example.test ca=ca.pinwarden.test")
    assert result.verdict == UNEXPECTED
    assert result.reasons[0].endswith(
        "the first certificate of the chain submitted with it did not sign it"
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


@pytest.mark.parametrize(
    ("records", "condition"),
    [
        (
            ['0 issue "ca.pinwarden.test; accounturi=https://ca.pinwarden.test/acct/1"'],
            "only for the account https://ca.pinwarden.test/acct/1",
        ),
        (
            ['0 issue "ca.pinwarden.test; validationmethods=dns-01"'],
            "only with the validation method dns-01",
        ),
    ],
)
def test_caa_conditions_a_certificate_cannot_show_are_unexpected(
    ca: CA, records: list[str], condition: str
) -> None:
    with DNSServer() as server:
        for record in records:
            server.add("shop.example.test", "CAA", record)
        result = judge(
            x509_entry(ca.issue("shop.example.test")), ".example.test ca=caa", dns=server
        )
        assert result.verdict == UNEXPECTED
        assert result.reasons == (
            "CAA of shop.example.test (records at shop.example.test) allows pinwarden test CA "
            f"(ca.pinwarden.test) {condition}; which account or method was used cannot be "
            "checked from the certificate",
        )
        # A record that allows the CA without conditions beside it decides.
        server.add("shop.example.test", "CAA", '0 issue "ca.pinwarden.test"')
        judge_again = Judge(nameservers=(server.nameserver,), identities=IDENTITIES)
        entry = x509_entry(ca.issue("shop.example.test"))
        watch = WatchList.parse(".example.test ca=caa")
        again = asyncio.run(judge_again.judge(entry, watch.matches(entry.dns_names), NOW))
        assert again == Judgement(EXPECTED)


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
    # www: its rule has the key; api: it does not; other: the rule expired and the key is
    # not among its pins either.
    assert result.reasons == (
        f"key {issued.pin} is not among the policy {tmp_path / 'pins.toml'} pins for "
        "api.example.test",
        f"the rule of policy {tmp_path / 'pins.toml'} for other.example.test expired at the "
        f"end of 2000-01-01 and key {issued.pin} is not among its pins (an expired rule no "
        "longer says which keys are expected: renew it)",
    )
    uncovered = judge(
        x509_entry(ca.issue("new.example.test")),
        ".example.test policy=pins.toml",
        base_dir=tmp_path,
    )
    assert uncovered.verdict == UNEXPECTED
    assert "no rule of policy" in uncovered.reasons[0]
    assert "covers new.example.test" in uncovered.reasons[0]


def test_an_expired_rule_still_says_which_keys_were_expected(ca: CA, tmp_path: Path) -> None:
    ours = ca.issue("www.example.test")
    backup = Pin.from_private_key(generate_key())
    (tmp_path / "pins.toml").write_text(
        f'[[pin]]\nhosts = ["www.example.test"]\npins = ["{ours.pin}", "{backup}"]\n'
        "expires = 2020-01-01\n",
        encoding="utf-8",
    )
    watch = "www.example.test policy=pins.toml"
    assert judge(x509_entry(ours), watch, base_dir=tmp_path) == Judgement(EXPECTED)
    rogue = ca.issue("www.example.test")  # a key in no pin set
    result = judge(x509_entry(rogue), watch, base_dir=tmp_path)
    assert result.verdict == UNEXPECTED
    assert result.reasons == (
        f"the rule of policy {tmp_path / 'pins.toml'} for www.example.test expired at the end "
        f"of 2020-01-01 and key {rogue.pin} is not among its pins (an expired rule no longer "
        "says which keys are expected: renew it)",
    )
    # pins= beside the policy still allows its keys.
    both = judge(x509_entry(rogue), f"{watch} pins={rogue.pin}", base_dir=tmp_path)
    assert both == Judgement(EXPECTED)


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


def _reference_names(data: bytes) -> set[str]:
    """The byte-by-byte walk names_in_unreadable replaced: what it found must be found."""
    import re

    dotted = re.compile(rb"(?:[A-Za-z0-9_*-]{1,63}\.){1,126}[A-Za-z0-9-]{1,63}")
    found: set[str] = set()
    for position in range(len(data) - 2):
        if data[position] not in (0x82, 0x0C, 0x13, 0x16):
            continue
        length = data[position + 1]
        chunk = data[position + 2 : position + 2 + length]
        if 0 < length < 0x80 and len(chunk) == length and dotted.fullmatch(chunk):
            found.add(chunk.decode("ascii").lower())
    found.update(m.group().decode("ascii").lower() for m in dotted.finditer(data))
    return found


def unreadable(data: bytes) -> LogEntry:
    return LogEntry(
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


NAMES = st.sampled_from([b"www.example.test", b"a.b", b"x-1.example.test", b"*.w.example.test"])
PIECES = st.one_of(
    st.binary(max_size=8),
    NAMES,
    NAMES.map(lambda n: bytes([0x82, len(n)]) + n),
    NAMES.map(lambda n: bytes([0x30, 0x16, 0x0C, len(n)]) + n + b"0"),
    st.sampled_from([b"\x82", b"\x0c", b"\x13", b"\x16", b".", b"0", b"a"]),
)


@given(st.lists(PIECES, max_size=30).map(b"".join))
def test_names_in_unreadable_finds_all_the_byte_walk_found(data: bytes) -> None:
    assert _reference_names(data) <= set(names_in_unreadable(unreadable(data)))


def test_names_across_a_chunk_boundary_are_found() -> None:
    for offset in range(-40, 40, 3):
        filler = os.urandom((1 << 18) + offset)
        name = b"www.example.test"
        data = filler + b"\x82" + bytes([len(name)]) + name + b"0" + os.urandom(100)
        assert "www.example.test" in names_in_unreadable(unreadable(data))


def test_a_huge_unreadable_entry_is_scanned_at_c_speed() -> None:
    # A log entry may be 16 MiB; walking it in Python took seconds (on the event loop).
    data = b"\x16\x05a.b.c" * (2**24 // 7)
    started = time.perf_counter()
    names = names_in_unreadable(unreadable(data))
    assert names == ("a.b.c",)
    assert time.perf_counter() - started < 1.5
