"""CT log entries: MerkleTreeLeaf and get-entries parsing, names, the TBS hash of a real
precertificate/certificate pair built here, odd certificates, and hypothesis properties."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from pinwarden.ct._wire import u8, u16, u64, vector
from pinwarden.ct.entries import (  # the walks under test
    MAX_TIMESTAMP_MS,
    POISON_OID,
    SCT_LIST_OID,
    LogEntry,
    _a_label,
    _tbs_layout,
    _tlv,
    certificate_tbs,
    encode_extra_data,
    encode_leaf_index_extension,
    encode_merkle_tree_leaf,
    parse_get_entries,
    parse_leaf,
    parse_leaf_index_extension,
    strip_ct_extensions,
    tbs_hash,
)
from pinwarden.ct.sct import SignedEntryType
from pinwarden.errors import CTFormatError, PinwardenError
from pinwarden.pins import Pin
from pinwarden.testing import CA

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
TIMESTAMP_MS = 1_772_366_400_123  # 2026-03-01T12:00:00.123Z
ISSUER_KEY_HASH = bytes(range(32))

_CA = CA("entries test CA")
_ROOT_DER = _CA.cert.public_bytes(serialization.Encoding.DER)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _sct_list() -> bytes:
    """A well-formed TLS SignedCertificateTimestampList with one (unsigned) SCT."""
    sct = (
        u8(0)
        + bytes(32)
        + u64(TIMESTAMP_MS)
        + vector(b"", 2)
        + u8(4)  # sha256
        + u8(3)  # ecdsa
        + vector(b"\x30\x06\x02\x01\x01\x02\x01\x01", 2)
    )
    return vector(vector(sct, 2), 2)


def _octet_string(data: bytes) -> bytes:
    assert len(data) < 0x80
    return b"\x04" + bytes([len(data)]) + data


def build(
    *sans: str,
    common_name: str | None = "www.example.com",
    ct: str | None = None,
    serial: int = 0x1234567890,
    cn_type: _ASN1Type | None = None,
) -> x509.Certificate:
    """A certificate issued by the test CA. ``ct`` adds the poison (``"poison"``) or an
    SCT list (``"scts"``) between the SAN and the key usage extensions, where a CA puts
    them: a precertificate and its final certificate differ only there."""
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Org")]
    if common_name is not None:
        if cn_type is None:
            attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        else:
            attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name, cn_type))
    key = _CA.key
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attributes))
        .issuer_name(_CA.cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=90))
    )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False
        )
    if ct == "poison":
        builder = builder.add_extension(x509.PrecertPoison(), critical=True)
    elif ct == "scts":
        sct_oid = x509.ObjectIdentifier(SCT_LIST_OID)
        builder = builder.add_extension(
            x509.UnrecognizedExtension(sct_oid, _octet_string(_sct_list())), critical=False
        )
    builder = builder.add_extension(
        x509.BasicConstraints(ca=False, path_length=None), critical=True
    )
    return builder.sign(key, hashes.SHA256())


def x509_leaf(cert_der: bytes, timestamp_ms: int = TIMESTAMP_MS, extensions: bytes = b"") -> bytes:
    return encode_merkle_tree_leaf(timestamp_ms, cert_der, extensions=extensions)


def precert_leaf(tbs: bytes, extensions: bytes = b"") -> bytes:
    return encode_merkle_tree_leaf(
        TIMESTAMP_MS, tbs, issuer_key_hash=ISSUER_KEY_HASH, extensions=extensions
    )


# --- the TBS hash -----------------------------------------------------------------------------


def test_precertificate_and_final_certificate_share_the_tbs_hash() -> None:
    sans = ("www.example.com", "example.com")
    pre = build(*sans, ct="poison")
    final = build(*sans, ct="scts")
    pre_tbs, final_tbs = pre.tbs_certificate_bytes, final.tbs_certificate_bytes
    assert pre_tbs != final_tbs
    assert strip_ct_extensions(pre_tbs) == strip_ct_extensions(final_tbs)
    # cryptography's own RFC 6962 reconstruction of the final certificate agrees.
    assert strip_ct_extensions(final_tbs) == final.tbs_precertificate_bytes
    assert tbs_hash(pre_tbs) == tbs_hash(final_tbs)
    assert tbs_hash(pre_tbs) == hashlib.sha256(final.tbs_precertificate_bytes).digest()

    # As a log holds them: the precertificate's TBS without the poison, the final
    # certificate whole. Their entries carry the same key.
    pre_entry = parse_leaf(precert_leaf(strip_ct_extensions(pre_tbs)), None, 0)
    final_entry = parse_leaf(x509_leaf(_der(final)), None, 1)
    assert pre_entry.error is None
    assert final_entry.error is None
    assert pre_entry.tbs_hash == final_entry.tbs_hash
    # A precertificate logged with its poison still (against RFC 6962) hashes the same.
    assert parse_leaf(precert_leaf(pre_tbs), None, 2).tbs_hash == final_entry.tbs_hash
    assert pre_entry.dns_names == final_entry.dns_names


def test_different_certificates_have_different_tbs_hashes() -> None:
    first = build("a.example", ct="scts", serial=1)
    second = build("a.example", ct="scts", serial=2)
    assert tbs_hash(first.tbs_certificate_bytes) != tbs_hash(second.tbs_certificate_bytes)


def test_strip_omits_an_extension_list_left_empty() -> None:
    pre = build(common_name="only.example", ct="poison")
    tbs = pre.tbs_certificate_bytes
    stripped = strip_ct_extensions(tbs)
    assert stripped != tbs
    assert bytes.fromhex("060a2b06010401d679020403") not in stripped
    # Still a TBSCertificate that cryptography reads, with only BasicConstraints left.
    entry = parse_leaf(precert_leaf(stripped), None, 0)
    assert entry.error is None
    assert entry.dns_names == ("only.example",)


def test_strip_returns_a_tbs_without_ct_extensions_unchanged() -> None:
    tbs = build("plain.example").tbs_certificate_bytes
    assert strip_ct_extensions(tbs) is tbs
    assert tbs_hash(tbs) == hashlib.sha256(tbs).digest()


@pytest.mark.parametrize(
    "data",
    [b"", b"\x30", b"\x02\x01\x01", b"\x30\x03\x02\x01", b"\x30\x00\x00", b"\x30\x85\x00"],
)
def test_strip_refuses_what_is_not_a_tbs(data: bytes) -> None:
    with pytest.raises(CTFormatError, match="TBSCertificate"):
        strip_ct_extensions(data)


def test_certificate_tbs_slices_the_exact_bytes() -> None:
    cert = build("slice.example")
    assert certificate_tbs(_der(cert)) == cert.tbs_certificate_bytes
    with pytest.raises(CTFormatError, match="Certificate"):
        certificate_tbs(_der(cert) + b"\x00")


def test_oid_constants_name_the_rfc_6962_extensions() -> None:
    assert x509.ObjectIdentifier(POISON_OID) == x509.oid.ExtensionOID.PRECERT_POISON
    assert (
        x509.ObjectIdentifier(SCT_LIST_OID)
        == x509.oid.ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS
    )


# --- entries -----------------------------------------------------------------------------------


def test_x509_entry_fields() -> None:
    cert = build("WWW.Example.COM", "api.example.com", common_name="www.example.com", ct="scts")
    intermediate = _CA.intermediate("entries test intermediate")
    chain = [_der(intermediate.cert), _ROOT_DER]
    leaf_input = x509_leaf(_der(cert), extensions=encode_leaf_index_extension(41))
    entry = parse_leaf(leaf_input, encode_extra_data(chain), 41)

    assert entry.index == 41
    assert entry.entry_type is SignedEntryType.X509
    assert not entry.is_precert
    assert entry.timestamp_ms == TIMESTAMP_MS
    assert entry.timestamp == dt.datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=dt.timezone.utc)
    assert entry.leaf_input == leaf_input
    assert entry.leaf_hash == hashlib.sha256(b"\x00" + leaf_input).digest()
    assert entry.leaf_index == 41
    assert entry.certificate_der == _der(cert)
    assert entry.tbs_der == cert.tbs_certificate_bytes
    assert entry.issuer_key_hash is None
    assert entry.chain_der == tuple(chain)
    assert entry.chain_fingerprints == tuple(hashlib.sha256(c).digest() for c in chain)
    # Lower-cased, in certificate order, the common name (a duplicate) once.
    assert entry.dns_names == ("www.example.com", "api.example.com")
    assert entry.unicode_names == entry.dns_names
    assert entry.error is None
    # The details, read on demand from the same parse.
    assert entry.serial == 0x1234567890
    assert entry.issuer == _CA.cert.subject.rfc4514_string()
    assert entry.not_before == NOW
    assert entry.not_after == NOW + dt.timedelta(days=90)
    assert entry.spki_pin == Pin.from_certificate(cert)


def test_precert_entry_fields() -> None:
    pre = build("shop.example", ct="poison")
    logged_tbs = strip_ct_extensions(pre.tbs_certificate_bytes)
    extra = encode_extra_data([_ROOT_DER], pre_certificate=_der(pre))
    entry = parse_leaf(precert_leaf(logged_tbs), extra, 7)

    assert entry.is_precert
    assert entry.entry_type is SignedEntryType.PRECERT
    assert entry.issuer_key_hash == ISSUER_KEY_HASH
    assert entry.tbs_der == logged_tbs
    assert entry.certificate_der == _der(pre)
    assert entry.chain_der == (_ROOT_DER,)
    assert entry.extra_data == extra
    assert entry.dns_names == ("shop.example", "www.example.com")
    assert entry.serial == 0x1234567890
    assert entry.spki_pin == Pin.from_certificate(pre)
    assert entry.leaf_index is None


def test_precert_entry_without_extra_data() -> None:
    tbs = strip_ct_extensions(build("a.example", ct="poison").tbs_certificate_bytes)
    entry = parse_leaf(precert_leaf(tbs), None, 0)
    assert entry.certificate_der is None
    assert entry.chain_der == ()
    assert entry.chain_fingerprints == ()
    assert entry.extra_data == b""


def test_names_come_from_the_logged_tbs_not_the_extra_data() -> None:
    """The pre-certificate beside a precert entry is not covered by the leaf hash: a log
    could put anything there, so the names are those of the logged TBS."""
    logged = strip_ct_extensions(build("real.example", ct="poison").tbs_certificate_bytes)
    decoy = build("decoy.example", ct="poison")
    entry = parse_leaf(precert_leaf(logged), encode_extra_data([], pre_certificate=_der(decoy)), 0)
    assert entry.dns_names == ("real.example", "www.example.com")


def test_idna_names() -> None:
    cert = build(
        "xn--bcher-kva.example",
        "*.xn--caf-dma.example",
        "xn--zz.example",  # not valid punycode: kept as it is
        common_name="Bücher.example",
    )
    entry = parse_leaf(x509_leaf(_der(cert)), None, 0)
    assert entry.dns_names == ("xn--bcher-kva.example", "*.xn--caf-dma.example", "xn--zz.example")
    assert entry.unicode_names == ("bücher.example", "*.café.example", "xn--zz.example")


def test_certificate_without_names() -> None:
    entry = parse_leaf(x509_leaf(_der(build(common_name=None))), None, 0)
    assert entry.error is None
    assert entry.dns_names == ()
    assert entry.unicode_names == ()


def test_common_name_in_an_unusual_string_type_is_read_by_cryptography() -> None:
    cert = build("a.example", common_name="BMP.Example", cn_type=_ASN1Type.BMPString)
    entry = parse_leaf(x509_leaf(_der(cert)), None, 0)
    assert entry.error is None
    assert entry.dns_names == ("a.example", "bmp.example")


def test_several_common_names_are_all_kept() -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "one.example"),
            x509.NameAttribute(NameOID.COMMON_NAME, "two.example"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(_CA.key.public_key())
        .serial_number(5)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
        .sign(_CA.key, hashes.SHA256())
    )
    entry = parse_leaf(x509_leaf(_der(cert)), None, 0)
    assert entry.dns_names == ("one.example", "two.example")


def _duplicate_san(tbs: bytes) -> bytes:
    """``tbs`` with its subjectAltName extension twice (no builder will write that)."""
    san = _tbs_layout(tbs)[6][0]
    return _reencode_with_extra(tbs, tbs.index(san) + len(san), san)


def _reencode_with_extra(tbs: bytes, at: int, extra: bytes) -> bytes:
    _, contents, end = _tlv(tbs, 0, len(tbs), "t")
    pos = contents
    while pos < end:
        element = pos
        tag, inner, pos = _tlv(tbs, pos, end, "f")
        if tag == 0xA3:
            _, items, items_end = _tlv(tbs, inner, pos, "e")
            new_items = tbs[items:at] + extra + tbs[at:items_end]
            seq = _der_element(0x30, new_items)
            return _der_element(
                0x30, tbs[contents:element] + _der_element(0xA3, seq) + tbs[pos:end]
            )
    raise AssertionError("no extensions")


def _der_element(tag: int, contents: bytes) -> bytes:
    size = len(contents)
    if size < 0x80:
        return bytes([tag, size]) + contents
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + contents


def test_a_certificate_cryptography_refuses_still_gives_an_entry() -> None:
    """The leaf structure is valid, the certificate is not: the entry comes back with its
    leaf hash and an error, so that the monitor reports it instead of stalling."""
    tbs = _duplicate_san(build("dup.example").tbs_certificate_bytes)
    leaf_input = precert_leaf(tbs)
    entry = parse_leaf(leaf_input, None, 3)
    assert entry.error is not None
    assert "could not be read" in entry.error
    assert entry.leaf_hash == hashlib.sha256(b"\x00" + leaf_input).digest()
    assert entry.dns_names == ()
    assert entry.serial is None
    assert entry.issuer is None
    assert entry.not_before is None
    assert entry.not_after is None
    assert entry.spki_pin is None
    assert entry.tbs_hash == hashlib.sha256(tbs).digest()


@pytest.mark.parametrize(
    "body",
    [
        b"\x30\x03\x02\x01\x05",  # a SEQUENCE, but no TBSCertificate
        b"\x04\x00",  # not even a SEQUENCE
        b"\x30\x80\x00\x00",  # indefinite length (BER, not DER)
    ],
)
def test_garbage_in_a_valid_leaf_is_an_entry_with_an_error(body: bytes) -> None:
    for leaf_input in (x509_leaf(body), precert_leaf(body)):
        entry = parse_leaf(leaf_input, None, 0)
        assert entry.error is not None
        assert entry.dns_names == ()
        assert entry.tbs_hash == hashlib.sha256(entry.tbs_der).digest()


# --- malformed leaves ------------------------------------------------------------------------


def _valid_leaf() -> bytes:
    return x509_leaf(_der(build("m.example")))


@pytest.mark.parametrize(
    ("leaf_input", "message"),
    [
        (b"", r"entry 9: MerkleTreeLeaf: truncated at byte 0: version"),
        (b"\x01\x00", r"entry 9: MerkleTreeLeaf version 1"),
        (b"\x00\x01", r"entry 9: MerkleTreeLeaf leaf_type 1"),
        (b"\x00\x00" + u64(1), r"entry 9: TimestampedEntry: truncated at byte 10: entry_type"),
        (b"\x00\x00" + u64(1) + u16(7), r"entry 9: entry_type 7"),
        (b"\x00\x00" + u64(1) + u16(0) + b"\x00\x00\x00", r"x509_entry .* at least 1"),
        (b"\x00\x00" + u64(1) + u16(1) + bytes(20), r"issuer_key_hash needs 32 bytes"),
        (b"\x00\x00" + u64(1) + u16(0) + vector(b"x", 3), r"length of extensions"),
        (b"\x00\x00" + u64(1) + u16(0) + vector(b"x", 3) + b"\x00\x05", r"extensions needs 5"),
        (b"\x00\x00" + u64(2**64 - 1) + u16(0), r"entry 9: timestamp .* beyond the year 9999"),
    ],
)
def test_malformed_leaf_names_index_and_field(leaf_input: bytes, message: str) -> None:
    with pytest.raises(CTFormatError, match=message):
        parse_leaf(leaf_input, None, 9)


def test_trailing_bytes_after_the_leaf_are_malformed() -> None:
    with pytest.raises(CTFormatError, match=r"entry 4: TimestampedEntry: 1 unexpected trailing"):
        parse_leaf(_valid_leaf() + b"\x00", None, 4)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (b"\x00\x00", r"extra_data: truncated .* length of certificate_chain"),
        (vector(b"\x00\x00\x01", 3), r"certificate_chain\[0\] needs 1 bytes"),
        (vector(vector(b"c", 3), 3) + b"x", r"extra_data: 1 unexpected trailing"),
        (vector(b"\x00\x00\x00", 3), r"certificate_chain\[0\] .* at least 1"),
    ],
)
def test_malformed_extra_data(extra: bytes, message: str) -> None:
    with pytest.raises(CTFormatError, match=message):
        parse_leaf(_valid_leaf(), extra, 0)


def test_precert_extra_data_needs_the_pre_certificate() -> None:
    tbs = strip_ct_extensions(build("p.example", ct="poison").tbs_certificate_bytes)
    with pytest.raises(CTFormatError, match="pre_certificate"):
        parse_leaf(precert_leaf(tbs), b"", 0)


def test_largest_timestamp_is_accepted() -> None:
    entry = parse_leaf(x509_leaf(b"\x04\x00", timestamp_ms=MAX_TIMESTAMP_MS), None, 0)
    assert entry.timestamp.year == 9999


# --- get-entries JSON -----------------------------------------------------------------------


def _get_entries(*pairs: tuple[bytes, bytes]) -> dict[str, Any]:
    return {
        "entries": [
            {
                "leaf_input": base64.b64encode(leaf).decode(),
                "extra_data": base64.b64encode(extra).decode(),
            }
            for leaf, extra in pairs
        ]
    }


def test_get_entries_in_every_form() -> None:
    cert = build("one.example")
    pre = build("two.example", ct="poison")
    pairs = (
        (x509_leaf(_der(cert)), encode_extra_data([_ROOT_DER])),
        (
            precert_leaf(strip_ct_extensions(pre.tbs_certificate_bytes)),
            encode_extra_data([_ROOT_DER], pre_certificate=_der(pre)),
        ),
    )
    document = _get_entries(*pairs)
    text = json.dumps(document)
    for response in (document, text, text.encode()):
        entries = parse_get_entries(response, 100)
        assert [e.index for e in entries] == [100, 101]
        assert [e.is_precert for e in entries] == [False, True]
        assert entries[0].dns_names == ("one.example", "www.example.com")
        assert entries[1].dns_names == ("two.example", "www.example.com")
        assert entries[1].certificate_der == _der(pre)
        assert entries[0] == parse_leaf(*pairs[0], 100, source="get-entries entry")
    assert parse_get_entries({"entries": []}, 0) == []


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (b"{", r"https://log/get-entries: not JSON"),
        (b"\xff\xfe", r"not JSON"),
        ("[" * 100_000 + "]" * 100_000, r"not JSON"),
        ("[]", r"expected a JSON object, got a list"),
        ("{}", r"'entries' is missing"),
        ('{"entries": {}}', r"'entries' must be a list, got an object"),
        ('{"entries": [1]}', r"entries\[0\] must be an object, got int"),
        ('{"entries": [{"extra_data": ""}]}', r"entries\[0\].leaf_input is missing"),
        ('{"entries": [{"leaf_input": 5, "extra_data": ""}]}', r"leaf_input must be .*got int"),
        ('{"entries": [{"leaf_input": "", "extra_data": null}]}', r"extra_data .* got null"),
        ('{"entries": [{"leaf_input": "!!", "extra_data": ""}]}', r"leaf_input is not valid base"),
        ('{"entries": [{"leaf_input": "", "extra_data": ""}]}', r"entry 5: MerkleTreeLeaf"),
    ],
)
def test_get_entries_errors(response: str | bytes, message: str) -> None:
    with pytest.raises(CTFormatError, match=message):
        parse_get_entries(response, 5, source="https://log/get-entries")


def test_get_entries_error_names_the_entry_index() -> None:
    good = _valid_leaf()
    document = _get_entries((good, encode_extra_data([])), (good[:-3], b""))
    with pytest.raises(CTFormatError, match=r"get-entries entry 11: "):
        parse_get_entries(document, 10)


# --- the leaf_index extension -----------------------------------------------------------------


def test_leaf_index_extension() -> None:
    encoded = encode_leaf_index_extension(2**40 - 1)
    assert len(encoded) == 8
    assert parse_leaf_index_extension(encoded) == 2**40 - 1
    # Among other extensions, in any order.
    other = u8(7) + vector(b"abc", 2)
    assert parse_leaf_index_extension(other + encode_leaf_index_extension(3)) == 3
    # Absent, wrong size or not an extension list: no index, not an error (RFC 6962 logs
    # put opaque bytes there).
    assert parse_leaf_index_extension(b"") is None
    assert parse_leaf_index_extension(other) is None
    assert parse_leaf_index_extension(u8(0) + vector(b"\x01\x02", 2)) is None
    assert parse_leaf_index_extension(b"\x00\x00") is None
    with pytest.raises(ValueError, match="40 bits"):
        encode_leaf_index_extension(2**40)


# --- properties -------------------------------------------------------------------------------

_bodies = st.binary(min_size=1, max_size=64)
_extensions = st.binary(max_size=16)


@given(
    st.integers(0, MAX_TIMESTAMP_MS),
    _bodies,
    st.none() | st.binary(min_size=32, max_size=32),
    _extensions,
    st.lists(_bodies, max_size=3),
    st.none() | _bodies,
    st.integers(0, 2**40),
)
def test_parse_inverts_encode(
    timestamp_ms: int,
    body: bytes,
    issuer_key_hash: bytes | None,
    extensions: bytes,
    chain: list[bytes],
    pre_certificate: bytes | None,
    index: int,
) -> None:
    leaf_input = encode_merkle_tree_leaf(
        timestamp_ms, body, issuer_key_hash=issuer_key_hash, extensions=extensions
    )
    is_precert = issuer_key_hash is not None
    pre = (pre_certificate or b"p") if is_precert else None
    extra = encode_extra_data(chain, pre_certificate=pre)
    entry = parse_leaf(leaf_input, extra, index)
    assert entry.index == index
    assert entry.timestamp_ms == timestamp_ms
    assert entry.is_precert == is_precert
    assert entry.issuer_key_hash == issuer_key_hash
    assert entry.extensions == extensions
    assert entry.chain_der == tuple(chain)
    assert entry.leaf_input == leaf_input
    if is_precert:
        assert entry.tbs_der == body
        assert entry.certificate_der == pre
    else:
        assert entry.certificate_der == body
    assert entry.error is not None  # random bytes are no certificate


@settings(max_examples=300)
@given(st.binary(max_size=200), st.none() | st.binary(max_size=80), st.integers(0, 2**63))
def test_any_bytes_give_an_entry_or_a_ct_format_error(
    leaf_input: bytes, extra: bytes | None, index: int
) -> None:
    try:
        entry = parse_leaf(leaf_input, extra, index)
    except CTFormatError:
        return
    assert isinstance(entry, LogEntry)
    assert entry.leaf_hash == hashlib.sha256(b"\x00" + leaf_input).digest()
    # The lazy details never raise; for a certificate that was not read they are None.
    details = (entry.serial, entry.issuer, entry.not_before, entry.not_after, entry.spki_pin)
    if entry.error is not None:
        assert details == (None,) * 5
        assert entry.dns_names == ()
    assert len(entry.tbs_hash) == 32


def _mutations(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` with a few bytes changed, cut short or extended."""
    positions = st.integers(0, max(len(data) - 1, 0))
    flip = st.tuples(positions, st.integers(0, 255)).map(
        lambda pv: data[: pv[0]] + bytes([pv[1]]) + data[pv[0] + 1 :]
    )
    cut = positions.map(lambda p: data[:p])
    return flip | cut | st.binary(max_size=4).map(lambda b: data + b)


_REAL_LEAF = x509_leaf(_der(build("fuzz.example", "b.example", ct="scts")))
_REAL_PRE = precert_leaf(
    strip_ct_extensions(build("fuzz.example", ct="poison").tbs_certificate_bytes)
)


@settings(max_examples=300)
@given(st.sampled_from([_REAL_LEAF, _REAL_PRE]).flatmap(_mutations))
def test_mutated_real_leaves_give_an_entry_or_a_ct_format_error(leaf_input: bytes) -> None:
    try:
        entry = parse_leaf(leaf_input, None, 0)
    except CTFormatError:
        return
    assert entry.leaf_hash == hashlib.sha256(b"\x00" + leaf_input).digest()
    _ = (entry.serial, entry.issuer, entry.not_before, entry.not_after, entry.spki_pin)
    assert len(entry.tbs_hash) == 32


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_strip_ct_extensions_on_any_bytes(data: bytes) -> None:
    try:
        stripped = strip_ct_extensions(data)
    except CTFormatError:
        return
    assert isinstance(stripped, bytes)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
_entry_like = st.fixed_dictionaries(
    {},
    optional={
        "leaf_input": st.one_of(st.text(max_size=12), _json, st.just("AAA=")),
        "extra_data": st.one_of(st.text(max_size=12), _json, st.just("")),
    },
)


@settings(max_examples=300)
@given(
    st.one_of(
        st.binary(max_size=100),
        _json.map(json.dumps),
        st.fixed_dictionaries({"entries": st.lists(_entry_like | _json, max_size=3)}).map(
            json.dumps
        ),
    )
)
def test_any_get_entries_response_gives_entries_or_ct_format_error(response: str | bytes) -> None:
    try:
        entries = parse_get_entries(response, 0)
    except CTFormatError:
        return
    assert all(isinstance(e, LogEntry) for e in entries)


def test_only_pinwarden_errors_leave_the_parsers() -> None:
    """CTFormatError is the one type: it is an InputError, which the CLI maps to exit 2."""
    assert issubclass(CTFormatError, PinwardenError)
    assert issubclass(CTFormatError, ValueError)


# --- common names: the walk agrees with cryptography ------------------------------------------

_cn_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20)
_other_attributes = st.lists(
    st.sampled_from([NameOID.ORGANIZATION_NAME, NameOID.LOCALITY_NAME, NameOID.SERIAL_NUMBER]),
    max_size=3,
)
_string_types = st.sampled_from(
    [None, _ASN1Type.PrintableString, _ASN1Type.IA5String, _ASN1Type.BMPString]
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(_cn_text, _string_types), max_size=3),
    _other_attributes,
    st.booleans(),
)
def test_common_names_match_cryptography(
    common_names: Sequence[tuple[str, _ASN1Type | None]],
    others: list[x509.ObjectIdentifier],
    multi_valued: bool,
) -> None:
    attributes = [x509.NameAttribute(oid, f"o{i}") for i, oid in enumerate(others)]
    for value, kind in common_names:
        if kind in (_ASN1Type.PrintableString, _ASN1Type.IA5String) and not value.isascii():
            kind = None
        if kind is _ASN1Type.PrintableString:
            value = "".join(c if c.isalnum() else "x" for c in value)
        if kind is None:
            attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, value))
        else:
            attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, value, kind))
    if multi_valued and len(attributes) >= 2 and attributes[0] != attributes[1]:
        name = x509.Name(
            [
                x509.RelativeDistinguishedName(attributes[:2]),
                *[x509.RelativeDistinguishedName([a]) for a in attributes[2:]],
            ]
        )
    else:
        name = x509.Name(attributes)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(_CA.cert.subject)
        .public_key(_CA.key.public_key())
        .serial_number(9)
        .not_valid_before(NOW)
        .not_valid_after(NOW + dt.timedelta(days=1))
        .sign(_CA.key, hashes.SHA256())
    )
    entry = parse_leaf(x509_leaf(_der(cert)), None, 0)
    assert entry.error is None
    by_cryptography = [
        str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ]
    assert entry.dns_names == tuple(dict.fromkeys(_a_label(v) for v in by_cryptography if v))
