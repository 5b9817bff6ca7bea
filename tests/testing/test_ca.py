"""The test kit's certificate authority: hierarchies that really verify (with
cryptography's X.509 verifier and with OpenSSL in a real handshake), RSA and ECDSA keys,
chosen validity, re-issuing for an existing key, and padded server chains."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from pinwarden.pins import Pin
from pinwarden.testing import CA, Issued, KeyType, TLSServer, generate_key, pem
from pinwarden.tls import served_chain, verified_chain

DER = serialization.Encoding.DER
UTC = dt.timezone.utc


def _verify(
    issued: Issued,
    name: x509.DNSName | x509.IPAddress | None = None,
    *,
    at: dt.datetime | None = None,
    roots: Sequence[x509.Certificate] | None = None,
) -> list[x509.Certificate]:
    """Verify like a TLS client would, with cryptography's own path builder."""
    verifier = (
        PolicyBuilder()
        .store(Store(list(roots) if roots is not None else [issued.root]))
        .time(at or dt.datetime.now(UTC))
        .build_server_verifier(name or x509.DNSName("localhost"))
    )
    return verifier.verify(issued.cert, list(issued.chain))


def _handshake(
    server: TLSServer, context: ssl.SSLContext, hostname: str = "localhost"
) -> tuple[list[bytes], list[bytes]]:
    """A real TLS handshake; returns (served chain, chain OpenSSL verified)."""
    with (
        socket.create_connection(server.address, timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=hostname) as tls,
    ):
        return served_chain(tls), verified_chain(tls)


def _der(*certs: x509.Certificate) -> list[bytes]:
    return [c.public_bytes(DER) for c in certs]


# -- hierarchies verify -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("root_type", "intermediate_type", "leaf_type"),
    [
        ("ec-p256", "ec-p256", "ec-p256"),
        ("rsa-2048", "rsa-2048", "rsa-2048"),
        ("ec-p384", "rsa-2048", "ec-p256"),
        ("rsa-2048", "ec-p384", "rsa-2048"),
    ],
)
def test_chains_verify(root_type: KeyType, intermediate_type: KeyType, leaf_type: KeyType) -> None:
    root = CA("kit root", key_type=root_type)
    intermediate = root.intermediate("kit intermediate", key_type=intermediate_type)
    leaf = intermediate.issue("localhost", "127.0.0.1", key_type=leaf_type)
    assert leaf.chain == (intermediate.cert,)
    assert leaf.root == root.cert
    expected = [leaf.cert, intermediate.cert, root.cert]
    assert _verify(leaf) == expected
    assert _verify(leaf, x509.IPAddress(ipaddress.ip_address("127.0.0.1"))) == expected
    with pytest.raises(VerificationError):
        _verify(leaf, x509.DNSName("other.example"))
    with pytest.raises(VerificationError):
        _verify(leaf, roots=[CA("unrelated root").cert])


@pytest.mark.parametrize(
    ("key_type", "kind", "size"),
    [
        ("ec-p256", ec.EllipticCurvePrivateKey, 256),
        ("ec-p384", ec.EllipticCurvePrivateKey, 384),
        ("rsa-2048", rsa.RSAPrivateKey, 2048),
        ("rsa-3072", rsa.RSAPrivateKey, 3072),
    ],
)
def test_generate_key(key_type: KeyType, kind: type, size: int) -> None:
    key = generate_key(key_type)
    assert isinstance(key, kind)
    assert key.key_size == size


def test_generate_key_refuses_unknown_types() -> None:
    with pytest.raises(ValueError, match="unknown key type 'dsa-1024'"):
        generate_key("dsa-1024")  # type: ignore[arg-type]


def test_rsa_and_ec_leaves() -> None:
    root = CA("kit root")
    for key_type, key_encipherment in (("rsa-2048", True), ("ec-p256", False)):
        leaf = root.issue("localhost", key_type=key_type)  # type: ignore[arg-type]
        usage = leaf.cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.digital_signature
        assert usage.key_encipherment is key_encipherment
        assert isinstance(
            leaf.cert.public_key(),
            rsa.RSAPublicKey if key_type == "rsa-2048" else ec.EllipticCurvePublicKey,
        )
        eku = leaf.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
        assert _verify(leaf) == [leaf.cert, root.cert]


def test_p384_issuers_sign_with_sha384() -> None:
    root = CA("p384 root", key_type="ec-p384")
    assert isinstance(root.cert.signature_hash_algorithm, hashes.SHA384)
    leaf = root.issue("localhost")
    assert isinstance(leaf.cert.signature_hash_algorithm, hashes.SHA384)
    assert isinstance(CA("p256 root").cert.signature_hash_algorithm, hashes.SHA256)


def test_ca_certificates() -> None:
    root = CA("kit root")
    intermediate = root.intermediate("kit intermediate")
    for ca in (root, intermediate):
        constraints = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert constraints.critical and constraints.value.ca
        assert ca.cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
        assert ca.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == ca.name
    assert root.cert.subject == root.cert.issuer
    assert intermediate.cert.issuer == root.cert.subject
    intermediate.cert.verify_directly_issued_by(root.cert)
    root.cert.verify_directly_issued_by(root.cert)
    assert root.root is root and intermediate.root is root
    assert root.chain == () and intermediate.chain == (intermediate.cert,)


def test_path_length_constraint_is_written() -> None:
    root = CA("constrained root", path_length=0)
    assert (
        root.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    )
    # A CA below a path_length=0 root breaks the constraint: verification refuses it.
    leaf = root.intermediate("too deep").issue("localhost")
    with pytest.raises(VerificationError):
        _verify(leaf)


def test_names_and_addresses() -> None:
    leaf = CA("kit root").issue("a.example", "192.0.2.7", "2001:db8::7", common_name="custom")
    san = leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["a.example"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("192.0.2.7"),
        ipaddress.ip_address("2001:db8::7"),
    ]
    assert leaf.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "custom"
    default = CA("kit root").issue()
    default_san = default.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert default_san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert default_san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]


# -- validity ---------------------------------------------------------------------------------


def test_chosen_validity_is_honoured() -> None:
    start = dt.datetime(2031, 3, 1, 12, 0, 0, tzinfo=UTC)
    end = dt.datetime(2031, 4, 1, 12, 0, 0, tzinfo=UTC)
    root = CA(
        "future root", not_before=start - dt.timedelta(days=1), not_after=end + dt.timedelta(days=1)
    )
    intermediate = root.intermediate("future intermediate", not_before=start, not_after=end)
    leaf = intermediate.issue("localhost", not_before=start, not_after=end - dt.timedelta(days=1))
    assert (root.cert.not_valid_before_utc, root.cert.not_valid_after_utc) == (
        start - dt.timedelta(days=1),
        end + dt.timedelta(days=1),
    )
    assert (intermediate.cert.not_valid_before_utc, intermediate.cert.not_valid_after_utc) == (
        start,
        end,
    )
    assert (leaf.cert.not_valid_before_utc, leaf.cert.not_valid_after_utc) == (
        start,
        end - dt.timedelta(days=1),
    )
    # Valid inside the window, refused on either side of it.
    assert len(_verify(leaf, at=start + dt.timedelta(days=2))) == 3
    with pytest.raises(VerificationError):
        _verify(leaf, at=start - dt.timedelta(seconds=1))
    with pytest.raises(VerificationError):
        _verify(leaf, at=end - dt.timedelta(days=1) + dt.timedelta(seconds=1))
    with pytest.raises(VerificationError):
        _verify(leaf)  # now: not yet valid


def test_default_validity() -> None:
    before = dt.datetime.now(UTC).replace(microsecond=0)
    root = CA("default root")
    leaf = root.issue("localhost")
    after = dt.datetime.now(UTC)
    for cert, lifetime in (
        (root.cert, dt.timedelta(days=3650)),
        (leaf.cert, dt.timedelta(days=90)),
    ):
        assert cert.not_valid_before_utc <= before
        assert cert.not_valid_before_utc >= before - dt.timedelta(days=1, seconds=1)
        assert cert.not_valid_after_utc - cert.not_valid_before_utc == lifetime
        assert cert.not_valid_after_utc > after


def test_expired_leaf_does_not_verify() -> None:
    now = dt.datetime.now(UTC)
    leaf = CA("kit root").issue(
        "localhost", not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1)
    )
    with pytest.raises(VerificationError):
        _verify(leaf)


# -- re-issuing for an existing key ------------------------------------------------------------


def test_reissued_leaf_keeps_the_pin() -> None:
    root = CA("kit root")
    first = root.issue("localhost")
    second = root.issue("localhost", key=first.key)
    other_ca = CA("another root").issue("localhost", key=first.key)
    assert second.cert != first.cert
    assert second.cert.serial_number != first.cert.serial_number
    assert second.pin == first.pin == other_ca.pin
    assert second.pin == Pin.from_private_key(first.key)
    assert root.issue("localhost").pin != first.pin
    assert _verify(second) == [second.cert, root.cert]


def test_reissued_intermediate_keeps_the_pin() -> None:
    root = CA("kit root")
    intermediate = root.intermediate("kit intermediate")
    again = root.intermediate("kit intermediate", key=intermediate.key)
    assert again.cert != intermediate.cert
    assert again.pin == intermediate.pin
    assert CA("self-signed with the same key", key=intermediate.key).pin == intermediate.pin
    # A leaf of the re-issued intermediate verifies with the new certificate.
    leaf = again.issue("localhost")
    assert _verify(leaf) == [leaf.cert, again.cert, root.cert]


def test_intermediate_of_intermediate() -> None:
    root = CA("kit root")
    first = root.intermediate("first intermediate")
    second = first.intermediate("second intermediate", key_type="rsa-2048")
    leaf = second.issue("localhost")
    assert second.root is root
    assert second.chain == (second.cert, first.cert)
    assert leaf.chain == (second.cert, first.cert)
    assert leaf.root == root.cert
    assert second.cert.issuer == first.cert.subject
    assert _verify(leaf) == [leaf.cert, second.cert, first.cert, root.cert]


# -- PEM and server contexts --------------------------------------------------------------------


def test_pem_helpers() -> None:
    root = CA("kit root")
    intermediate = root.intermediate("kit intermediate")
    leaf = intermediate.issue("localhost")
    assert x509.load_pem_x509_certificates(pem(leaf.cert, intermediate.cert)) == [
        leaf.cert,
        intermediate.cert,
    ]
    assert x509.load_pem_x509_certificates(leaf.chain_pem) == [leaf.cert, intermediate.cert]
    assert x509.load_pem_x509_certificate(leaf.cert_pem) == leaf.cert
    assert x509.load_pem_x509_certificate(root.cert_pem) == root.cert
    key = serialization.load_pem_private_key(leaf.key_pem, None)
    assert Pin.from_private_key(key) == leaf.pin
    assert leaf.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-2048"])
def test_real_handshake_serves_and_verifies_the_chain(key_type: KeyType) -> None:
    root = CA("kit root", key_type=key_type)
    intermediate = root.intermediate("kit intermediate", key_type=key_type)
    leaf = intermediate.issue("localhost", "127.0.0.1", key_type=key_type)
    with TLSServer(leaf) as server:
        served, verified = _handshake(server, root.client_context())
        served_ip, _ = _handshake(server, root.client_context(), hostname="127.0.0.1")
    assert served == served_ip == _der(leaf.cert, intermediate.cert)
    assert verified == _der(leaf.cert, intermediate.cert, root.cert)


def test_client_context_refuses_another_root() -> None:
    leaf = CA("kit root").intermediate().issue("localhost")
    with TLSServer(leaf) as server, pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server, CA("unrelated root").client_context())


def test_server_context_appends_extra_certificates() -> None:
    root = CA("kit root")
    intermediate = root.intermediate("kit intermediate")
    leaf = intermediate.issue("localhost")
    stranger = CA("padding root")
    extra = [stranger.cert, stranger.issue("padding.example").cert]
    with TLSServer(leaf, extra=extra) as server:
        served, verified = _handshake(server, root.client_context())
    assert served == _der(leaf.cert, intermediate.cert, *extra)
    # The padding is sent, but it is not part of what OpenSSL verified.
    assert verified == _der(leaf.cert, intermediate.cert, root.cert)


def test_server_context_directly() -> None:
    root = CA("kit root")
    leaf = root.intermediate().issue("localhost")
    context = leaf.server_context(extra=[root.cert], maximum_version=ssl.TLSVersion.TLSv1_2)
    assert isinstance(context, ssl.SSLContext)
    assert context.maximum_version is ssl.TLSVersion.TLSv1_2
    with TLSServer(leaf, maximum_version=ssl.TLSVersion.TLSv1_2) as server:
        served, _ = _handshake(server, root.client_context())
        assert served[0] == leaf.cert.public_bytes(DER)
        with (
            socket.create_connection(server.address, timeout=10) as raw,
            root.client_context().wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.version() == "TLSv1.2"
