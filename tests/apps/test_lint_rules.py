"""The lint rules one by one: each fires on the mistake it names, and stays quiet on the
nearest policy that does not make it."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from pinwarden.apps.lint import RULES, Evidence, Finding, lint_policy, skipped_rules
from pinwarden.apps.live import AddressResult, Endpoint
from pinwarden.apps.trust import TrustStore, load_trust_store
from pinwarden.certs import CertInfo, describe_chain
from pinwarden.errors import CertificateError, PolicyError
from pinwarden.pins import Pin, fingerprint_sha256
from pinwarden.policy import Policy
from pinwarden.testing import CA, Issued, KeyType, PrivateKey, generate_key, pem

UTC = dt.timezone.utc
DAY = dt.timedelta(days=1)
HOST = "api.example.com"
KEY_TYPES: tuple[KeyType, ...] = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096")
CERTIFICATE_RULES = ["PW002", "PW003", "PW004", "PW005", "PW006", "PW010", "PW019"]
LIVE_RULES = ["PW014", "PW015", "PW017", "PW018"]


@functools.cache
def _key(key_type: KeyType) -> PrivateKey:
    # RSA 3072/4096 take a while to generate: one of each per run is enough.
    return generate_key(key_type)


def _spare_pin() -> Pin:
    """The pin of a key that is in no chain: a backup kept offline."""
    return Pin.from_public_key(generate_key().public_key())


def _now() -> dt.datetime:
    return dt.datetime.now(UTC)


@dataclass(frozen=True)
class Hierarchy:
    root: CA
    intermediate: CA
    leaf: Issued
    backup: Pin

    @property
    def certs(self) -> tuple[CertInfo, ...]:
        """The chain as a ``--chain`` file gives it: leaf, intermediate, root."""
        return _chain(self.leaf.cert, self.intermediate.cert, self.root.cert)


def _hierarchy(*, root: CA | None = None, leaf_days: int | None = None) -> Hierarchy:
    root = root or CA("lint root")
    intermediate = root.intermediate("lint intermediate")
    if leaf_days is None:
        leaf = intermediate.issue(HOST)
    else:
        start = _now() - DAY
        leaf = intermediate.issue(HOST, not_before=start, not_after=start + leaf_days * DAY)
    return Hierarchy(root, intermediate, leaf, _spare_pin())


@pytest.fixture
def pki() -> Hierarchy:
    return _hierarchy()


def _chain(*certs: x509.Certificate) -> tuple[CertInfo, ...]:
    return tuple(describe_chain(list(certs), ends_at_anchor=False))


def _rule(hosts: Sequence[str], pins: Sequence[Pin | str], **extra: Any) -> dict[str, Any]:
    return {"hosts": list(hosts), "pins": [str(p) for p in pins], **extra}


def _policy(*rules: dict[str, Any]) -> Policy:
    return Policy.from_dict({"pin": list(rules)}, source="app.toml")


def _lint(
    policy: Policy,
    *,
    now: dt.datetime | None = None,
    certificates: Sequence[CertInfo] = (),
    live: Sequence[AddressResult] | None = None,
    trust_store: TrustStore | None = None,
) -> list[Finding]:
    evidence = Evidence(
        now or _now(),
        tuple(certificates),
        tuple(live) if live is not None else None,
        trust_store,
    )
    return lint_policy(policy, evidence)


def _of(findings: Sequence[Finding], rule_id: str) -> list[Finding]:
    return [f for f in findings if f.rule.id == rule_id]


def _ids(findings: Sequence[Finding]) -> set[str]:
    return {f.rule.id for f in findings}


# -- the rule table -------------------------------------------------------------


def test_rules_are_numbered_with_a_severity_and_a_fix() -> None:
    assert list(RULES) == [f"PW{n:03d}" for n in range(1, 20)]
    names = [r.name for r in RULES.values()]
    assert len(set(names)) == len(names)
    for rule_id, rule in RULES.items():
        assert rule.id == rule_id
        assert rule.severity in ("error", "warning", "note")
        assert rule.needs in ("policy", "certificates", "live", "trust-store")
        assert rule.name == rule.name.lower() and " " not in rule.name
        assert rule.summary.strip() and rule.fix.strip()


def test_finding_carries_the_rule_and_where_it_is() -> None:
    policy = _policy(_rule([HOST, "www.example.com"], [_spare_pin()], allow_single_pin=True))
    (finding,) = _of(_lint(policy), "PW001")
    assert finding.severity == "error" == RULES["PW001"].severity
    assert finding.source == "app.toml"
    assert finding.key == "pin[0].pins"
    assert finding.rule_index == 0
    assert finding.hosts == (HOST, "www.example.com")


def test_naive_now_is_refused(pki: Hierarchy) -> None:
    policy = _policy(_rule([HOST], [pki.intermediate.pin, pki.backup]))
    with pytest.raises(ValueError, match="timezone-aware"):
        lint_policy(policy, Evidence(dt.datetime(2030, 1, 1)))


# -- PW001 single key -----------------------------------------------------------


def test_pw001_one_pin_with_allow_single_pin() -> None:
    policy = _policy(_rule([HOST], [_spare_pin()], allow_single_pin=True))
    (finding,) = _of(_lint(policy), "PW001")
    assert "1 sha256" in finding.message
    assert "allow_single_pin" in finding.message


def test_pw001_one_pin_in_report_only() -> None:
    policy = _policy(_rule([HOST], [_spare_pin()], mode="report-only"))
    assert len(_of(_lint(policy), "PW001")) == 1


def test_pw001_a_sha1_pin_is_no_second_sha256_key(pki: Hierarchy) -> None:
    sha1 = Pin.from_certificate(pki.root.cert, "sha1")
    policy = _policy(_rule([HOST], [pki.intermediate.pin, sha1], allow_single_pin=True))
    assert len(_of(_lint(policy), "PW001")) == 1


def test_pw001_not_for_two_keys() -> None:
    policy = _policy(_rule([HOST], [_spare_pin(), _spare_pin()]))
    assert _of(_lint(policy), "PW001") == []


# -- PW002 no backup ------------------------------------------------------------


def test_pw002_every_pin_is_in_the_chain(pki: Hierarchy) -> None:
    policy = _policy(_rule([HOST], [pki.leaf.pin, pki.intermediate.pin]))
    (finding,) = _of(_lint(policy, certificates=pki.certs), "PW002")
    assert finding.key == "pin[0].pins"


def test_pw002_not_with_a_backup_outside_the_chain(pki: Hierarchy) -> None:
    policy = _policy(_rule([HOST], [pki.intermediate.pin, pki.backup]))
    assert _of(_lint(policy, certificates=pki.certs), "PW002") == []


def test_pw002_not_guessed_without_certificates(pki: Hierarchy) -> None:
    policy = _policy(_rule([HOST], [pki.leaf.pin, pki.intermediate.pin]))
    assert _of(_lint(policy), "PW002") == []


# -- PW003 leaf pin on a short-lived certificate --------------------------------


@pytest.mark.parametrize(
    ("days", "fires"), [(47, True), (90, True), (100, True), (101, False), (400, False)]
)
def test_pw003_leaf_only_pin_by_lifetime(days: int, fires: bool) -> None:
    pki = _hierarchy(leaf_days=days)
    policy = _policy(_rule([HOST], [pki.leaf.pin, pki.backup]))
    found = _of(_lint(policy, certificates=pki.certs), "PW003")
    assert len(found) == (1 if fires else 0)
    if fires:
        assert f"{days} days" in found[0].message
        assert found[0].key == "pin[0].pins"


def test_pw003_not_when_the_intermediate_is_pinned_too() -> None:
    pki = _hierarchy(leaf_days=90)
    policy = _policy(_rule([HOST], [pki.leaf.pin, pki.intermediate.pin, pki.backup]))
    assert _of(_lint(policy, certificates=pki.certs), "PW003") == []


def test_pw003_not_when_only_the_intermediate_is_pinned() -> None:
    pki = _hierarchy(leaf_days=90)
    policy = _policy(_rule([HOST], [pki.intermediate.pin, pki.backup]))
    assert _of(_lint(policy, certificates=pki.certs), "PW003") == []


# -- PW004 / PW005: hashes that are not SPKI pins -------------------------------


def _raw_key_sha256(cert: x509.Certificate) -> bytes:
    """SHA-256 of what SecKeyCopyExternalRepresentation returns (computed here, not by
    pinwarden.forms): PKCS#1 for RSA, the uncompressed X9.63 point for EC."""
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        raw = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        raw = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    return hashlib.sha256(raw).digest()


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_pw004_certificate_fingerprint_for_every_key_type(key_type: KeyType) -> None:
    root = CA("lint root")
    intermediate = root.intermediate("lint intermediate")
    leaf = intermediate.issue(HOST, key=_key(key_type))
    fingerprint = Pin("sha256", hashlib.sha256(_der(leaf.cert)).digest())
    certs = _chain(leaf.cert, intermediate.cert, root.cert)
    policy = _policy(_rule([HOST], [intermediate.pin, fingerprint]))
    findings = _lint(policy, certificates=certs)
    (finding,) = _of(findings, "PW004")
    assert finding.key == "pin[0].pins[1]"
    assert str(leaf.pin) in finding.message  # the pin to use instead
    assert _of(findings, "PW005") == []
    # A trap is not a backup: the intermediate alone remains.
    assert len(_of(findings, "PW002")) == 1


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_pw005_raw_key_hash_for_every_key_type(key_type: KeyType) -> None:
    root = CA("lint root")
    intermediate = root.intermediate("lint intermediate")
    leaf = intermediate.issue(HOST, key=_key(key_type))
    raw = Pin("sha256", _raw_key_sha256(leaf.cert))
    certs = _chain(leaf.cert, intermediate.cert, root.cert)
    policy = _policy(_rule([HOST], [raw, intermediate.pin, _spare_pin()]))
    findings = _lint(policy, certificates=certs)
    (finding,) = _of(findings, "PW005")
    assert finding.key == "pin[0].pins[0]"
    assert str(leaf.pin) in finding.message
    assert _of(findings, "PW004") == []
    assert _of(findings, "PW002") == []  # the spare key is a real backup


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_pw004_pw005_not_for_the_spki_pin(key_type: KeyType) -> None:
    root = CA("lint root")
    intermediate = root.intermediate("lint intermediate")
    leaf = intermediate.issue(HOST, key=_key(key_type), not_after=_now() + 400 * DAY)
    certs = _chain(leaf.cert, intermediate.cert, root.cert)
    policy = _policy(_rule([HOST], [leaf.pin, _spare_pin()]))
    assert _ids(_lint(policy, certificates=certs)) & {"PW004", "PW005"} == set()


def _ed25519_leaf(issuer: CA) -> x509.Certificate:
    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - DAY)
        .not_valid_after(_now() + 89 * DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(issuer.key, hashes.SHA256())
    )


def test_pw004_for_an_ed25519_leaf_and_no_raw_key_form() -> None:
    root = CA("lint root")
    intermediate = root.intermediate("lint intermediate")
    leaf = _ed25519_leaf(intermediate)
    public = leaf.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    fingerprint = Pin("sha256", hashlib.sha256(_der(leaf)).digest())
    raw = Pin("sha256", hashlib.sha256(public).digest())
    certs = _chain(leaf, intermediate.cert, root.cert)
    policy = _policy(_rule([HOST], [intermediate.pin, fingerprint, raw]))
    findings = _lint(policy, certificates=certs)
    assert [f.key for f in _of(findings, "PW004")] == ["pin[0].pins[1]"]
    # Apple has no external representation of an Ed25519 key to confuse with the pin.
    assert _of(findings, "PW005") == []


# -- PW006 / PW007: the pinned root ---------------------------------------------


def test_pw006_pinned_root_expired() -> None:
    old = CA("old root", not_before=_now() - 3650 * DAY, not_after=_now() - DAY)
    pki = _hierarchy(root=old)
    policy = _policy(_rule([HOST], [pki.root.pin, pki.backup]))
    (finding,) = _of(_lint(policy, certificates=pki.certs), "PW006")
    assert finding.key == "pin[0].pins[0]"
    assert "old root" in finding.message
    assert f"{old.cert.not_valid_after_utc:%Y-%m-%d}" in finding.message


def test_pw006_root_given_alone_is_still_a_root() -> None:
    old = CA("old root", not_before=_now() - 3650 * DAY, not_after=_now() - DAY)
    policy = _policy(_rule([HOST], [old.pin, _spare_pin()]))
    assert len(_of(_lint(policy, certificates=_chain(old.cert)), "PW006")) == 1


def test_pw006_not_for_a_root_still_valid() -> None:
    ending = CA("ending root", not_before=_now() - 3650 * DAY, not_after=_now() + 30 * DAY)
    pki = _hierarchy(root=ending)
    policy = _policy(_rule([HOST], [pki.root.pin, pki.backup]))
    certs = pki.certs
    assert _of(_lint(policy, certificates=certs), "PW006") == []
    # ...until the day it has expired.
    later = _lint(policy, certificates=certs, now=_now() + 31 * DAY)
    assert len(_of(later, "PW006")) == 1


def test_pw006_not_for_an_expired_pinned_intermediate() -> None:
    root = CA("lint root")
    intermediate = root.intermediate(
        "old intermediate", not_before=_now() - 400 * DAY, not_after=_now() - DAY
    )
    leaf = intermediate.issue(HOST, not_before=_now() - 10 * DAY, not_after=_now() - 2 * DAY)
    policy = _policy(_rule([HOST], [intermediate.pin, _spare_pin()]))
    certs = _chain(leaf.cert, intermediate.cert, root.cert)
    assert _of(_lint(policy, certificates=certs), "PW006") == []


def _store(tmp_path: Path, *cas: CA) -> TrustStore:
    cafile = tmp_path / "cafile.pem"
    cafile.write_bytes(pem(*(ca.cert for ca in cas)))
    return load_trust_store(cafile)


def test_pw007_root_missing_from_the_trust_store(pki: Hierarchy, tmp_path: Path) -> None:
    store = _store(tmp_path, CA("some other root"))
    policy = _policy(_rule([HOST], [pki.root.pin, pki.backup]))
    (finding,) = _of(_lint(policy, certificates=pki.certs, trust_store=store), "PW007")
    assert finding.key == "pin[0].pins[0]"
    assert str(tmp_path / "cafile.pem") in finding.message


def test_pw007_not_when_the_store_has_the_root(pki: Hierarchy, tmp_path: Path) -> None:
    store = _store(tmp_path, CA("some other root"), pki.root)
    policy = _policy(_rule([HOST], [pki.root.pin, pki.backup]))
    assert _of(_lint(policy, certificates=pki.certs, trust_store=store), "PW007") == []


def test_pw007_only_for_roots(pki: Hierarchy, tmp_path: Path) -> None:
    # An intermediate is never in a trust store: pinning it is the recommended practice.
    store = _store(tmp_path, pki.root)
    policy = _policy(_rule([HOST], [pki.intermediate.pin, pki.backup]))
    assert _of(_lint(policy, certificates=pki.certs, trust_store=store), "PW007") == []


def test_pw007_not_guessed_without_a_trust_store(pki: Hierarchy) -> None:
    policy = _policy(_rule([HOST], [pki.root.pin, pki.backup]))
    assert _of(_lint(policy, certificates=pki.certs), "PW007") == []


def test_trust_store_without_certificates_is_an_input_error(tmp_path: Path) -> None:
    cafile = tmp_path / "empty.pem"
    cafile.write_text("no certificates here\n")
    with pytest.raises(CertificateError, match=r"empty\.pem"):
        load_trust_store(cafile)
    with pytest.raises(CertificateError, match=r"missing\.pem"):
        load_trust_store(tmp_path / "missing.pem")


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_trust_store_reads_any_bytes_without_crashing(data: bytes, framed: bool) -> None:
    if framed:
        data = b"-----BEGIN CERTIFICATE-----\n" + data + b"\n-----END CERTIFICATE-----\n"
    with tempfile.TemporaryDirectory() as folder:
        cafile = Path(folder) / "bundle.pem"
        cafile.write_bytes(data)
        try:
            store = load_trust_store(cafile)
        except CertificateError as exc:
            message = str(exc)
        else:
            assert store.digests
            return
    assert "bundle.pem" in message


# -- PW008 sha1 ------------------------------------------------------------------


def test_pw008_sha1_pin(pki: Hierarchy) -> None:
    sha1 = Pin.from_certificate(pki.intermediate.cert, "sha1")
    policy = _policy(_rule([HOST], [pki.intermediate.pin, pki.backup, sha1]))
    (finding,) = _of(_lint(policy), "PW008")
    assert finding.severity == "warning"
    assert finding.key == "pin[0].pins[2]"
    assert str(sha1) in finding.message


def test_pw008_not_for_sha256_pins(pki: Hierarchy) -> None:
    policy = _policy(_rule([HOST], [pki.intermediate.pin, pki.backup]))
    assert _of(_lint(policy), "PW008") == []


# -- PW009 / PW010 / PW016: expiry ----------------------------------------------


def test_pw009_no_expiry() -> None:
    policy = _policy(_rule([HOST], [_spare_pin(), _spare_pin()]))
    (finding,) = _of(_lint(policy), "PW009")
    assert finding.key == "pin[0]"


def test_pw009_not_with_an_expiry() -> None:
    policy = _policy(_rule([HOST], [_spare_pin(), _spare_pin()], expires="2099-01-01"))
    assert _of(_lint(policy), "PW009") == []


def test_pw010_expiry_after_the_pinned_certificates() -> None:
    pki = _hierarchy(leaf_days=400)
    end = pki.leaf.cert.not_valid_after_utc
    late = (end + 30 * DAY).date().isoformat()
    policy = _policy(_rule([HOST], [pki.leaf.pin, pki.backup], expires=late))
    (finding,) = _of(_lint(policy, certificates=pki.certs), "PW010")
    assert finding.key == "pin[0].expires"
    assert f"{end:%Y-%m-%d}" in finding.message


def test_pw010_not_with_an_expiry_before_they_expire() -> None:
    pki = _hierarchy(leaf_days=400)
    early = (pki.leaf.cert.not_valid_after_utc - 30 * DAY).date().isoformat()
    policy = _policy(_rule([HOST], [pki.leaf.pin, pki.backup], expires=early))
    assert _of(_lint(policy, certificates=pki.certs), "PW010") == []


def test_pw010_counts_the_longest_lived_pinned_certificate() -> None:
    pki = _hierarchy(leaf_days=400)
    # After the leaf but well before the intermediate (10 years): the intermediate pin
    # still matches then.
    late = (pki.leaf.cert.not_valid_after_utc + 30 * DAY).date().isoformat()
    policy = _policy(_rule([HOST], [pki.leaf.pin, pki.intermediate.pin, pki.backup], expires=late))
    assert _of(_lint(policy, certificates=pki.certs), "PW010") == []


def test_pw016_expired_rule() -> None:
    policy = _policy(_rule([HOST], [_spare_pin(), _spare_pin()], expires="2020-01-01"))
    (finding,) = _of(_lint(policy), "PW016")
    assert finding.severity == "warning"
    assert finding.key == "pin[0].expires"
    assert _of(_lint(policy, now=dt.datetime(2019, 12, 31, tzinfo=UTC)), "PW016") == []


def test_pw016_a_date_is_enforced_through_that_whole_day() -> None:
    text = f'[[pin]]\nhosts = ["{HOST}"]\npins = ["{_spare_pin()}", "{_spare_pin()}"]\n'
    policy = Policy.from_toml(text + "expires = 2026-03-01\n", source="app.toml")
    last_second = dt.datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)
    assert _of(_lint(policy, now=last_second), "PW016") == []
    assert len(_of(_lint(policy, now=last_second + dt.timedelta(seconds=1)), "PW016")) == 1


# -- PW011 report loop ----------------------------------------------------------


def test_pw011_report_uri_on_a_host_of_this_rule() -> None:
    policy = _policy(
        _rule(
            [HOST, "reports.example.com"],
            [_spare_pin(), _spare_pin()],
            report_uri="https://reports.example.com/pins",
        )
    )
    (finding,) = _of(_lint(policy), "PW011")
    assert finding.key == "pin[0].report_uri"
    assert "this rule" in finding.message
    assert "reports.example.com" in finding.message


def test_pw011_report_uri_pinned_by_another_enforcing_rule() -> None:
    policy = _policy(
        _rule([HOST], [_spare_pin(), _spare_pin()], report_uri="https://r.example.net:8443/x"),
        _rule(["**.example.net"], [_spare_pin(), _spare_pin()]),
    )
    (finding,) = _of(_lint(policy), "PW011")
    assert finding.key == "pin[0].report_uri"
    assert "pin[1]" in finding.message
    assert "**.example.net" in finding.message


def test_pw011_not_for_an_unpinned_report_host() -> None:
    policy = _policy(
        _rule([HOST], [_spare_pin(), _spare_pin()], report_uri="https://reports.example.org/"),
        _rule(["**.example.net"], [_spare_pin(), _spare_pin()]),
    )
    assert _of(_lint(policy), "PW011") == []


def test_pw011_not_when_the_report_host_is_report_only() -> None:
    policy = _policy(
        _rule([HOST], [_spare_pin(), _spare_pin()], report_uri="https://r.example.net/x"),
        _rule(["r.example.net"], [_spare_pin()], mode="report-only"),
    )
    assert _of(_lint(policy), "PW011") == []


def test_pw011_not_when_the_report_host_is_excluded() -> None:
    policy = _policy(
        _rule(
            ["**.example.com"],
            [_spare_pin(), _spare_pin()],
            exclude=["reports.example.com"],
            report_uri="https://reports.example.com/pins",
        )
    )
    assert _of(_lint(policy), "PW011") == []


# -- PW012 public suffix --------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "include_subdomains"),
    [
        ("**.co.uk", False),
        ("*.github.io", False),  # the private section of the list
        ("**.com", False),
        ("co.uk", True),
        ("*.anything.ck", False),  # "*.ck": every name under ck is a suffix
    ],
)
def test_pw012_subdomains_of_a_public_suffix(host: str, include_subdomains: bool) -> None:
    policy = _policy(
        _rule([HOST, host], [_spare_pin(), _spare_pin()], include_subdomains=include_subdomains)
    )
    (finding,) = _of(_lint(policy), "PW012")
    assert finding.key == "pin[0].hosts[1]"
    assert host in finding.message


@pytest.mark.parametrize(
    ("host", "include_subdomains"),
    [
        ("**.example.co.uk", False),
        ("*.example.github.io", False),
        ("co.uk", False),  # the exact name only
        ("**.www.ck", False),  # "!www.ck": an exception to "*.ck"
        ("example.com", True),
    ],
)
def test_pw012_not_for_a_registered_domain(host: str, include_subdomains: bool) -> None:
    policy = _policy(
        _rule([host], [_spare_pin(), _spare_pin()], include_subdomains=include_subdomains)
    )
    assert _of(_lint(policy), "PW012") == []


# -- PW013 overlapping rules ----------------------------------------------------


def test_pw013_broad_and_specific_rules_with_different_pins() -> None:
    policy = _policy(
        _rule(["**.example.com"], [_spare_pin(), _spare_pin()]),
        _rule([HOST], [_spare_pin(), _spare_pin()]),
    )
    (finding,) = _of(_lint(policy), "PW013")
    assert finding.severity == "warning"
    assert finding.key == "pin[1].hosts"
    assert "'**.example.com'" in finding.message and f"'{HOST}'" in finding.message


@pytest.mark.parametrize(
    "change", [{"mode": "report-only"}, {"expires": "2099-01-01"}], ids=["mode", "expiry"]
)
def test_pw013_same_pins_different_settings(change: dict[str, Any]) -> None:
    pins = [_spare_pin(), _spare_pin()]
    policy = _policy(_rule(["**.example.com"], pins), _rule([HOST], pins, **change))
    assert len(_of(_lint(policy), "PW013")) == 1


def test_pw013_one_label_wildcard_under_a_subtree() -> None:
    policy = _policy(
        _rule(["**.example.com"], [_spare_pin(), _spare_pin()]),
        _rule(["*.cdn.example.com"], [_spare_pin(), _spare_pin()]),
    )
    (finding,) = _of(_lint(policy), "PW013")
    assert finding.key == "pin[1].hosts"


def test_pw013_not_with_identical_settings() -> None:
    pins = [_spare_pin(), _spare_pin()]
    policy = _policy(
        _rule(["**.example.com"], pins, expires="2099-01-01"),
        _rule([HOST], list(reversed(pins)), expires="2099-01-01"),
    )
    assert _of(_lint(policy), "PW013") == []


def test_pw013_not_for_disjoint_hosts() -> None:
    policy = _policy(
        _rule(["**.example.com"], [_spare_pin(), _spare_pin()]),
        _rule(["api.example.org"], [_spare_pin(), _spare_pin()]),
    )
    assert _of(_lint(policy), "PW013") == []


def test_pw013_not_when_the_broad_rule_excludes_the_host() -> None:
    # The fix PW013 itself suggests ("add `exclude` to the broader rule") must silence it:
    # with the exclude, api.example.com is covered by pin[1] only.
    policy = _policy(
        _rule(["**.example.com"], [_spare_pin(), _spare_pin()], exclude=[HOST]),
        _rule([HOST], [_spare_pin(), _spare_pin()]),
    )
    assert _of(_lint(policy), "PW013") == []


# -- PW014 / PW015 / PW017: live endpoints --------------------------------------


def _served(address: str, certs: Sequence[CertInfo], host: str = HOST) -> AddressResult:
    return AddressResult(Endpoint(host, 443), address, verified_chain=tuple(certs))


def test_pw014_one_address_serves_a_chain_no_pin_matches(pki: Hierarchy) -> None:
    other = _hierarchy()
    policy = _policy(_rule([HOST], [pki.intermediate.pin, pki.backup]))
    live = [_served("127.0.0.1", pki.certs), _served("127.0.0.2", other.certs)]
    findings = _lint(policy, live=live)
    (finding,) = _of(findings, "PW014")
    assert finding.key == "pin[0].pins"
    assert "127.0.0.2" in finding.message
    assert "127.0.0.1" not in finding.message


def test_pw014_not_when_every_address_matches(pki: Hierarchy) -> None:
    policy = _policy(_rule([HOST], [pki.intermediate.pin, pki.backup]))
    live = [_served("127.0.0.1", pki.certs), _served("127.0.0.2", pki.certs)]
    assert _of(_lint(policy, live=live), "PW014") == []


def test_pw014_not_for_an_expired_rule(pki: Hierarchy) -> None:
    # An expired rule is not enforced: clients are not locked out (PW016 says so).
    other = _hierarchy()
    policy = _policy(_rule([HOST], [pki.intermediate.pin, pki.backup], expires="2020-01-01"))
    findings = _lint(policy, live=[_served("127.0.0.1", other.certs)])
    assert _of(findings, "PW014") == []
    assert len(_of(findings, "PW016")) == 1


def test_pw015_backup_pin_not_served(pki: Hierarchy) -> None:
    policy = _policy(_rule([HOST], [pki.intermediate.pin, pki.backup]))
    (finding,) = _of(_lint(policy, live=[_served("127.0.0.1", pki.certs)]), "PW015")
    assert finding.severity == "note"
    assert finding.key == "pin[0].pins[1]"
    assert str(pki.backup) in finding.message


def test_pw015_not_for_pins_that_are_served(pki: Hierarchy) -> None:
    policy = _policy(_rule([HOST], [pki.intermediate.pin, pki.root.pin]))
    assert _of(_lint(policy, live=[_served("127.0.0.1", pki.certs)]), "PW015") == []


def test_pw015_counts_what_any_address_serves(pki: Hierarchy) -> None:
    other = _hierarchy()
    policy = _policy(_rule([HOST], [pki.intermediate.pin, other.intermediate.pin]))
    live = [_served("127.0.0.1", pki.certs), _served("127.0.0.2", other.certs)]
    assert _of(_lint(policy, live=live), "PW015") == []


def test_pw017_name_that_does_not_resolve(pki: Hierarchy) -> None:
    policy = _policy(_rule([HOST], [pki.intermediate.pin, pki.backup]))
    failed = AddressResult(Endpoint(HOST, 443), "", network_error="NXDOMAIN for api.example.com")
    findings = _lint(policy, live=[failed])
    (finding,) = _of(findings, "PW017")
    assert finding.key == "pin[0].hosts"
    assert "NXDOMAIN" in finding.message
    assert _ids(findings) & {"PW014", "PW015"} == set()


def test_pw017_chain_that_does_not_verify(pki: Hierarchy) -> None:
    policy = _policy(_rule([HOST], [pki.intermediate.pin, pki.backup]))
    unverified = AddressResult(
        Endpoint(HOST, 443),
        "127.0.0.2",
        served_chain=pki.certs,
        verification_error="unable to get local issuer certificate",
    )
    (finding,) = _of(_lint(policy, live=[unverified]), "PW017")
    assert "127.0.0.2" in finding.message
    assert "unable to get local issuer certificate" in finding.message


def test_pw017_not_for_an_endpoint_that_answered(pki: Hierarchy) -> None:
    policy = _policy(_rule([HOST], [pki.intermediate.pin, pki.backup]))
    assert _of(_lint(policy, live=[_served("127.0.0.1", pki.certs)]), "PW017") == []


def test_pw017_only_in_the_policy_that_pins_the_host(pki: Hierarchy) -> None:
    # `lint a.toml b.toml --live` probes the hosts of both files and gives every result to
    # each file's lint; a.toml does not pin b.example.com, so its failure is not a.toml's.
    policy = _policy(_rule([HOST], [pki.intermediate.pin, pki.backup]))
    failed = AddressResult(Endpoint("b.example.com", 443), "", network_error="SERVFAIL")
    assert _of(_lint(policy, live=[failed]), "PW017") == []


# -- skipped rules ----------------------------------------------------------------


def _skipped(evidence: Evidence) -> list[str]:
    return [r.id for r in skipped_rules(evidence)]


def test_skipped_rules_without_evidence() -> None:
    assert _skipped(Evidence(_now())) == [
        *CERTIFICATE_RULES[:5],
        "PW007",
        "PW010",
        *LIVE_RULES,
        "PW019",
    ]


def test_skipped_rules_with_certificates(pki: Hierarchy, tmp_path: Path) -> None:
    assert _skipped(Evidence(_now(), pki.certs)) == ["PW007", *LIVE_RULES]
    store = _store(tmp_path, pki.root)
    assert _skipped(Evidence(_now(), pki.certs, trust_store=store)) == LIVE_RULES


def test_skipped_rules_with_live_chains(pki: Hierarchy, tmp_path: Path) -> None:
    store = _store(tmp_path, pki.root)
    live = (_served("127.0.0.1", pki.certs),)
    assert _skipped(Evidence(_now(), live=live, trust_store=store)) == []


def test_skipped_rules_when_no_live_endpoint_gave_a_chain(pki: Hierarchy) -> None:
    # Every handshake failed: no certificate was at hand, so the certificate rules were not
    # evaluated and must be reported as skipped, not silently passed.
    failed = (AddressResult(Endpoint(HOST, 443), "", network_error="SERVFAIL"),)
    skipped = _skipped(Evidence(_now(), live=failed))
    assert set(CERTIFICATE_RULES) <= set(skipped)


def test_certificate_rules_really_are_not_evaluated_when_skipped(pki: Hierarchy) -> None:
    # The same traps that fire with certificates stay silent without them.
    fingerprint = Pin("sha256", fingerprint_sha256(_der(pki.leaf.cert)))
    policy = _policy(_rule([HOST], [pki.leaf.pin, fingerprint]))
    assert _ids(_lint(policy, certificates=pki.certs)) >= {"PW002", "PW003", "PW004"}
    assert _ids(_lint(policy)) & set(CERTIFICATE_RULES) == set()


# -- any policy -------------------------------------------------------------------

_PINS = [str(_spare_pin()) for _ in range(4)]
_HOSTS = [
    "example.com",
    "api.example.com",
    "*.example.com",
    "**.example.com",
    "**.co.uk",
    "*.github.io",
    "a.b.example.com",
    "*.b.example.com",
]


@st.composite
def _policies(draw: st.DrawFn) -> dict[str, Any]:
    rules = []
    for _ in range(draw(st.integers(1, 4))):
        pins = draw(st.lists(st.sampled_from(_PINS), min_size=1, max_size=3, unique=True))
        rule: dict[str, Any] = {
            "hosts": draw(st.lists(st.sampled_from(_HOSTS), min_size=1, max_size=3, unique=True)),
            "pins": pins,
            "allow_single_pin": True,
            "mode": draw(st.sampled_from(["enforce", "report-only"])),
        }
        if draw(st.booleans()):
            rule["expires"] = draw(st.sampled_from(["2020-01-01", "2099-01-01"]))
        if draw(st.booleans()):
            rule["report_uri"] = "https://" + draw(st.sampled_from(_HOSTS)).lstrip("*.") + "/r"
        rules.append(rule)
    return {"pin": rules}


@settings(max_examples=150, deadline=None)
@given(_policies())
def test_any_policy_lints_with_findings_that_point_into_it(data: dict[str, Any]) -> None:
    try:
        policy = Policy.from_dict(data, source="any.toml")
    except PolicyError:  # ambiguous overlaps are refused when loading, not left to lint
        return
    for finding in lint_policy(policy, Evidence(_now())):
        assert finding.rule is RULES[finding.rule.id]
        assert finding.source == "any.toml"
        assert finding.rule_index is not None
        assert finding.key.startswith(f"pin[{finding.rule_index}]")
        assert finding.message
