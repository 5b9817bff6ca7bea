"""CA identities: the bundled table is valid and sourced, certificates are mapped to the
CA that issued them (by intermediate pin, issuer organisation, issuer CN prefix), and a
user file adds or replaces entries — or is refused with the file and key named."""

from __future__ import annotations

import contextlib
import re
import struct
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import REPO, vectors
from pinwarden.caa.identities import (
    BUNDLED_SOURCE,
    CAIdentity,
    identify_issuer,
    identity_for_domain,
    issuer_domain_for,
    load_identities,
    parse_identities,
)
from pinwarden.caa.model import IssueValue
from pinwarden.caa.values import is_issuer_domain_name, parse_issue_value
from pinwarden.certs import CertInfo
from pinwarden.errors import CertificateError, InputError, PolicyError
from pinwarden.pins import Pin
from pinwarden.testing import CA, generate_key

SETTINGS = settings(max_examples=200, deadline=None)

# What the table must say for the CAs the issue names: the identifier to publish first,
# and every identifier the CA documents.
EXPECTED = {
    "Let's Encrypt": ["letsencrypt.org"],
    "DigiCert": [
        "digicert.com",
        "symantec.com",
        "geotrust.com",
        "rapidssl.com",
        "thawte.com",
        "digitalcertvalidation.com",
    ],
    "Sectigo": ["sectigo.com", "comodoca.com", "comodo.com", "usertrust.com", "trust-provider.com"],
    "Google Trust Services": ["pki.goog"],
    "Amazon": ["amazon.com", "amazontrust.com", "awstrust.com", "amazonaws.com"],
    "GlobalSign": ["globalsign.com"],
    "GoDaddy": ["godaddy.com", "starfieldtech.com"],
    "Entrust": ["entrust.net", "affirmtrust.com"],
    "SSL.com": ["ssl.com"],
    "Buypass": ["buypass.com", "buypass.no"],
    "HARICA": ["harica.gr"],
    "ZeroSSL": ["sectigo.com"],
    "Microsoft": ["microsoft.com"],
    "Certum": ["certum.pl", "certum.eu"],
    "Actalis": ["actalis.it"],
}


def _by_name(name: str) -> CAIdentity:
    return next(i for i in load_identities() if i.name == name)


def _issued_by(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Certificate:
    """A leaf whose issuer name is exactly ``attributes``, signed by that issuer's key.
    (The test kit names every CA 'O=pinwarden test kit', so the issuer is built here.)"""
    issuer_key = generate_key()
    leaf_key = generate_key()
    issuer = x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])
    template = CA("template").issue("shop.example").cert
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shop.example")]))
        .issuer_name(issuer)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(template.not_valid_before_utc)
        .not_valid_after(template.not_valid_after_utc)
        .sign(issuer_key, hashes.SHA256())
    )


# -- the bundled table ---------------------------------------------------------------------


def test_the_table_covers_the_cas_with_their_documented_identifiers() -> None:
    table = {identity.name: identity for identity in load_identities()}
    for name, identifiers in EXPECTED.items():
        assert name in table, name
        assert table[name].preferred == identifiers[0], name
        assert set(identifiers) <= set(table[name].caa), name


def test_every_identifier_is_an_issuer_domain_name_a_ca_would_match() -> None:
    for identity in load_identities():
        for domain in identity.caa:
            assert is_issuer_domain_name(domain), (identity.name, domain)
            assert domain == domain.lower(), "Boulder compares case-sensitively"
            assert parse_issue_value(domain) == IssueValue(domain)


def test_every_entry_says_where_its_identifiers_come_from() -> None:
    for identity in load_identities():
        assert identity.source.startswith("https://"), identity.name
        assert identity.organizations or identity.common_name_prefixes, identity.name


def test_organisations_name_one_ca_each_so_identification_is_unambiguous() -> None:
    seen: dict[str, str] = {}
    for identity in load_identities():
        for organization in identity.organizations:
            folded = organization.casefold()
            assert folded not in seen, f"{organization!r}: {seen.get(folded)} and {identity.name}"
            seen[folded] = identity.name


def test_a_pin_identifies_one_ca() -> None:
    # The CT monitor takes an issuer key among an entry's pins for that CA: a key listed
    # under two CAs would make the answer depend on the table's order.
    owners: dict[Pin, str] = {}
    for identity in load_identities():
        assert len(set(identity.pins)) == len(identity.pins), identity.name
        for pin in identity.pins:
            assert pin.algorithm == "sha256"
            assert pin not in owners, f"{pin} is under {owners[pin]} and {identity.name}"
            owners[pin] = identity.name


def test_let_s_encrypt_is_recognised_by_the_keys_of_its_issuing_intermediates() -> None:
    # R10-R14, E5-E9 (2024 hierarchy) and YR1-YR3, YE1-YE3 (generation Y), each computed
    # from the certificate Let's Encrypt publishes (the source comments in the table).
    production = _by_name("Let's Encrypt")
    assert len(production.pins) == 16
    assert not set(production.pins) & set(_by_name("Let's Encrypt (staging)").pins)
    r11 = Pin.parse("sha256/bdrBhpj38ffhxpubzkINl0rG+UyossdhcBYj+Zx2fcc=")
    assert r11 in production.pins


def test_to_dict_is_shaped_like_the_toml_table() -> None:
    gts = _by_name("Google Trust Services")
    data = gts.to_dict()
    assert data["caa"] == ["pki.goog"]
    assert data["pins"] == ["sha256/YPtHaftLw6/0vnc2BnNKGF54xiCA28WFcccjkA4ypCM="]
    again = parse_identities(tomli_w.dumps({"ca": [data]}))
    assert again == (gts,)


def test_docs_list_the_table_as_it_is() -> None:
    text = (REPO / "docs" / "caa.md").read_text(encoding="utf-8")
    section = text.split("## CA identities", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([^|`]+?) \| `([^`]+)` \| ([^|]*) \|", section, re.MULTILINE)
    documented = [
        (name, preferred, re.findall(r"`([^`]+)`", others)) for name, preferred, others in rows
    ]
    assert documented == [
        (identity.name, identity.preferred, list(identity.caa[1:]))
        for identity in load_identities()
    ]


# -- identify_issuer --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("organization", "expected"),
    [
        ("Let's Encrypt", "Let's Encrypt"),
        ("DigiCert Inc", "DigiCert"),
        ("Sectigo Limited", "Sectigo"),
        ("Google Trust Services", "Google Trust Services"),
        ("Amazon", "Amazon"),
        ("GlobalSign nv-sa", "GlobalSign"),
        ("Starfield Technologies, Inc.", "GoDaddy"),
        ("Entrust, Inc.", "Entrust"),
        ("SSL Corporation", "SSL.com"),
        ("Buypass AS-983163327", "Buypass"),
        ("Hellenic Academic and Research Institutions CA", "HARICA"),
        ("ZeroSSL", "ZeroSSL"),
        ("Microsoft Corporation", "Microsoft"),
        ("Asseco Data Systems S.A.", "Certum"),
        ("Actalis S.p.A.", "Actalis"),
    ],
)
def test_the_issuer_organisation_names_the_ca(organization: str, expected: str) -> None:
    leaf = _issued_by(
        (NameOID.COUNTRY_NAME, "US"),
        (NameOID.ORGANIZATION_NAME, organization),
        (NameOID.COMMON_NAME, "Issuing CA 7"),
    )
    found = identify_issuer(leaf)
    assert found is not None
    assert found.name == expected
    # The same through the issuer string pinwarden shows (CertInfo.issuer, RFC 4514).
    issuer_text = CertInfo.from_certificate(leaf, "leaf").issuer
    assert identify_issuer(issuer_text) == found
    assert identify_issuer(leaf.issuer) == found


def test_every_organisation_of_the_table_identifies_its_own_entry() -> None:
    for identity in load_identities():
        for organization in identity.organizations:
            leaf = _issued_by((NameOID.ORGANIZATION_NAME, organization))
            assert identify_issuer(leaf) == identity, organization


def test_organisations_compare_without_case_or_extra_blanks() -> None:
    leaf = _issued_by((NameOID.ORGANIZATION_NAME, "  digicert   INC "))
    found = identify_issuer(leaf)
    assert found is not None
    assert found.name == "DigiCert"


def test_the_organisation_wins_over_a_common_name_of_another_ca() -> None:
    # ZeroSSL's intermediates are Sectigo-made but named O=ZeroSSL; DigiCert's GeoTrust
    # and RapidSSL brands say O=DigiCert Inc.
    zerossl = _issued_by(
        (NameOID.ORGANIZATION_NAME, "ZeroSSL"),
        (NameOID.COMMON_NAME, "Sectigo-made ZeroSSL RSA Domain Secure Site CA"),
    )
    assert getattr(identify_issuer(zerossl), "name", None) == "ZeroSSL"
    geotrust = _issued_by(
        (NameOID.ORGANIZATION_NAME, "DigiCert Inc"),
        (NameOID.COMMON_NAME, "GeoTrust TLS RSA CA G1"),
    )
    assert getattr(identify_issuer(geotrust), "name", None) == "DigiCert"


def test_a_common_name_prefix_identifies_an_issuer_without_a_known_organisation() -> None:
    leaf = _issued_by((NameOID.COMMON_NAME, "RapidSSL TLS RSA CA G1"))
    assert getattr(identify_issuer(leaf), "name", None) == "DigiCert"
    amazon = "CN=Amazon RSA 2048 M02,O=Some Reseller,C=US"
    assert getattr(identify_issuer(amazon), "name", None) == "Amazon"


def test_an_unknown_issuer_is_none() -> None:
    leaf = CA("Example Private Root").intermediate("Example Issuing CA").issue("localhost").cert
    assert identify_issuer(leaf) is None  # O=pinwarden test kit
    assert identify_issuer("") is None
    assert identify_issuer("CN=Let's Encrypt lookalike,O=Let's Encrypt Fan Club") is None


def test_a_string_that_is_not_a_name_is_a_certificate_error() -> None:
    with pytest.raises(CertificateError, match="not an RFC 4514 name"):
        identify_issuer("O=Amazon,,=")


@given(st.text(max_size=80))
@SETTINGS
def test_any_issuer_string_is_identified_or_refused_cleanly(text: str) -> None:
    try:
        result = identify_issuer(text)
    except CertificateError:
        return
    assert result is None or isinstance(result, CAIdentity)


def test_a_known_intermediate_pin_in_the_chain_identifies_the_ca_first() -> None:
    wr2 = (vectors("ct/sct-real") / "issuer_google-cert.bin").read_bytes()
    # The leaf's issuer name says nothing known; the served intermediate's key does.
    leaf = CA("Example Root").issue("localhost").cert
    found = identify_issuer(leaf, chain=[wr2])
    assert found is not None
    assert found.name == "Google Trust Services"
    assert identify_issuer(leaf, chain=[x509.load_der_x509_certificate(wr2)]) == found
    # An unreadable extra certificate in the chain does not stop the search.
    assert identify_issuer(leaf, chain=[b"\x30\x03\x02\x01\x00", wr2]) == found
    assert identify_issuer(leaf, chain=[b"junk"]) is None


@pytest.mark.vectors
def test_real_google_certificates_identify_as_google_trust_services() -> None:
    folder = vectors("ct/sct-real")
    leaf = x509.load_der_x509_certificate((folder / "leaf_google-cert.bin").read_bytes())
    issuer = x509.load_der_x509_certificate((folder / "issuer_google-cert.bin").read_bytes())
    gts = _by_name("Google Trust Services")
    assert identify_issuer(leaf) == gts
    assert identify_issuer(issuer) == gts  # WR2 itself, issued by GTS Root R1
    assert Pin.from_certificate(issuer) in gts.pins
    assert identity_for_domain("pki.goog") == gts


def _tile_precertificates(data: bytes) -> list[tuple[bytes, bytes]]:
    """(issuer_key_hash, precertificate DER) of each static-ct-api TileLeaf."""
    entries = []
    i = 0
    while i < len(data):
        (entry_type,) = struct.unpack(">H", data[i + 8 : i + 10])
        assert entry_type == 1  # precert_entry
        i += 10
        issuer_key_hash = data[i : i + 32]
        i += 32
        i += 3 + int.from_bytes(data[i : i + 3], "big")  # TBSCertificate
        i += 2 + int.from_bytes(data[i : i + 2], "big")  # CtExtensions
        length = int.from_bytes(data[i : i + 3], "big")
        precertificate = data[i + 3 : i + 3 + length]
        i += 3 + length
        i += 2 + int.from_bytes(data[i : i + 2], "big")  # chain fingerprints
        entries.append((issuer_key_hash, precertificate))
    return entries


@pytest.mark.vectors
def test_staging_pins_are_the_issuer_keys_of_real_log_entries() -> None:
    staging = _by_name("Let's Encrypt (staging)")
    folder = vectors("ct/tiles")
    seen: set[Pin] = set()
    for tile in ("000", "001", "002", "003"):
        for key_hash, der in _tile_precertificates((folder / "tile" / "data" / tile).read_bytes()):
            precertificate = x509.load_der_x509_certificate(der)
            assert identify_issuer(precertificate) == staging
            seen.add(Pin("sha256", key_hash))
    assert seen == set(staging.pins)
    # The production entry is the one a domain lookup finds.
    found = identity_for_domain("letsencrypt.org")
    assert found is not None
    assert found.name == "Let's Encrypt"


# -- identity_for_domain and issuer_domain_for -------------------------------------------------


def test_identity_for_domain_prefers_the_ca_that_publishes_it_first() -> None:
    assert getattr(identity_for_domain("sectigo.com"), "name", None) == "Sectigo"
    assert getattr(identity_for_domain("COMODOCA.com."), "name", None) == "Sectigo"
    assert getattr(identity_for_domain("starfieldtech.com"), "name", None) == "GoDaddy"
    assert getattr(identity_for_domain("buypass.no"), "name", None) == "Buypass"
    assert identity_for_domain("ca.example.net") is None


def test_issuer_domain_for_takes_a_ca_name_or_a_domain() -> None:
    assert issuer_domain_for("Let's Encrypt") == "letsencrypt.org"
    assert issuer_domain_for("  google trust  SERVICES ") == "pki.goog"
    assert issuer_domain_for("digicert") == "digicert.com"
    assert issuer_domain_for("CA.Example.NET.") == "ca.example.net"
    with pytest.raises(PolicyError, match=r"neither an issuer domain name .* Let's Encrypt"):
        issuer_domain_for("my favourite CA")


# -- user files ---------------------------------------------------------------------------------


USER_FILE = """
[[ca]]
name = "LET'S ENCRYPT"
caa = ["letsencrypt.org", "acme.example.net"]
organizations = ["Let's Encrypt"]
source = "https://example.net/our-acme"

[[ca]]
name = "Example Private CA"
caa = ["pki.example.net"]
organizations = ["Example Corp"]
common_name_prefixes = ["Example Issuing"]
note = "our own CA"
"""


def test_a_user_file_replaces_entries_by_name_in_place_and_adds_new_ones(tmp_path: Path) -> None:
    path = tmp_path / "cas.toml"
    path.write_text(USER_FILE, encoding="utf-8")
    bundled = load_identities()
    table = load_identities(path)
    assert len(table) == len(bundled) + 1
    assert table[0].name == "LET'S ENCRYPT"
    assert table[0].caa == ("letsencrypt.org", "acme.example.net")
    assert table[1:-1] == bundled[1:]
    assert table[-1].name == "Example Private CA"
    leaf = _issued_by((NameOID.ORGANIZATION_NAME, "Example Corp"))
    assert identify_issuer(leaf, identities=table) == table[-1]
    assert identify_issuer(leaf) is None  # the bundled table alone does not know it
    assert identity_for_domain("acme.example.net", identities=table) == table[0]
    assert issuer_domain_for("example private ca", identities=table) == "pki.example.net"
    # The bundled table is not changed by loading a user file.
    assert load_identities() == bundled


def _load(tmp_path: Path, text: str | bytes) -> tuple[CAIdentity, ...]:
    path = tmp_path / "cas.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return load_identities(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[ca]\nname = 1", "not valid TOML"),
        (
            '[[ca]]\nname = "X"\ncaa = ["x.example"]\nissuer = "X"',
            r"ca\[0\].*unknown key.*'issuer'",
        ),
        ('[[ca]]\ncaa = ["x.example"]', r"ca\[0\]\.name: needs a name"),
        ('[[ca]]\nname = "X"\ncaa = []', r"ca\[0\]\.caa: needs at least one"),
        ('[[ca]]\nname = "X"', r"ca\[0\]\.caa: needs at least one"),
        ('[[ca]]\nname = "X"\ncaa = "x.example"', r"ca\[0\]\.caa: must be a list of strings"),
        (
            '[[ca]]\nname = "X"\ncaa = ["ok.example", "Let\'s Encrypt"]',
            r"ca\[0\]\.caa\[1\].*not an issuer domain",
        ),
        ('[[ca]]\nname = "X"\ncaa = ["x.example."]', r"ca\[0\]\.caa\[0\].*no trailing dot"),
        ('[[ca]]\nname = "X"\ncaa = ["x.example"]\npins = ["sha256/abc"]', r"ca\[0\]\.pins\[0\]"),
        (
            '[[ca]]\nname = "X"\ncaa = ["x.example"]\norganizations = [""]',
            r"organizations: must not hold empty",
        ),
        ('[[ca]]\nname = "X"\ncaa = ["x.example"]\nnote = 3', r"ca\[0\]\.note: must be a string"),
        ("ca = 3", r"ca: \[\[ca\]\] entries expected"),
        ("ca = [1]", r"ca\[0\]: must be a table"),
        ('[[cas]]\nname = "X"', "unknown top-level key"),
        (
            '[[ca]]\nname = "X"\ncaa = ["a.example"]\n[[ca]]\nname = "x"\ncaa = ["b.example"]',
            r"ca\[1\]\.name: a second entry",
        ),
        (b"\xff\xfe[[ca]]", r"not UTF-8 text \(byte 0\)"),
    ],
)
def test_a_malformed_user_file_is_refused_naming_file_and_key(
    tmp_path: Path, text: str | bytes, message: str
) -> None:
    with pytest.raises(PolicyError, match=message) as caught:
        _load(tmp_path, text)
    assert str(tmp_path / "cas.toml") in str(caught.value)


def test_a_missing_user_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read CA identities file"):
        load_identities(tmp_path / "absent.toml")


_scalars = st.one_of(st.text(max_size=20), st.integers(), st.booleans(), st.floats(allow_nan=False))
_values: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["name", "caa", "pins", "organizations", "note", "x"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@given(
    st.dictionaries(
        st.sampled_from(["ca", "other"]),
        st.one_of(
            _values,
            st.lists(
                st.dictionaries(
                    st.sampled_from(
                        sorted(
                            {
                                "name",
                                "caa",
                                "organizations",
                                "common_name_prefixes",
                                "pins",
                                "note",
                                "source",
                            }
                        )
                    ),
                    _values,
                    max_size=7,
                ),
                max_size=3,
            ),
        ),
        max_size=2,
    )
)
@SETTINGS
def test_any_toml_document_is_read_or_refused_with_a_policy_error(document: dict[str, Any]) -> None:
    text = tomli_w.dumps(document)
    try:
        table = parse_identities(text, source="fuzz.toml")
    except PolicyError as exc:
        message = str(exc)
    else:
        for identity in table:
            assert identity.caa
            assert all(is_issuer_domain_name(d) for d in identity.caa)
        return
    assert message.startswith("fuzz.toml")


@given(st.text(max_size=200))
@SETTINGS
def test_any_text_is_read_or_refused_with_a_policy_error(text: str) -> None:
    with contextlib.suppress(PolicyError):
        parse_identities(text, source=BUNDLED_SOURCE)
