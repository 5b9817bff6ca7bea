"""Certificate hierarchies for tests: roots, intermediates and leaves, RSA or ECDSA,
with chosen validity, and new certificates for existing keys (to test rotations)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pinwarden.pins import Pin

__all__ = ["CA", "Issued", "KeyType", "PrivateKey", "generate_key", "pem"]

KeyType = Literal["ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_CA_LIFETIME = dt.timedelta(days=3650)
_LEAF_LIFETIME = dt.timedelta(days=90)
_BACKDATE = dt.timedelta(days=1)


def generate_key(key_type: KeyType = "ec-p256") -> PrivateKey:
    """A new private key: ``ec-p256`` (default, fast), ``ec-p384`` or ``rsa-2048/3072/4096``."""
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type in ("rsa-2048", "rsa-3072", "rsa-4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    raise ValueError(f"unknown key type {key_type!r}")


def pem(*certs: x509.Certificate | bytes) -> bytes:
    """PEM text of one or more certificates (objects, or DER bytes — which may be
    certificates cryptography itself would refuse), concatenated."""
    return b"".join(
        ssl.DER_cert_to_PEM_cert(c).encode("ascii")
        if isinstance(c, bytes)
        else c.public_bytes(serialization.Encoding.PEM)
        for c in certs
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pinwarden test kit"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _validity(
    not_before: dt.datetime | None, not_after: dt.datetime | None, lifetime: dt.timedelta
) -> tuple[dt.datetime, dt.datetime]:
    start = not_before or (dt.datetime.now(dt.timezone.utc) - _BACKDATE)
    return start, not_after or (start + lifetime)


def _sign_alg(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        return hashes.SHA384()
    return hashes.SHA256()


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key and the issuer chain a server sends with it.

    ``chain`` holds the intermediates, nearest first, without the root; ``root`` is the
    trust anchor the chain ends at.
    """

    cert: x509.Certificate
    key: PrivateKey
    chain: tuple[x509.Certificate, ...]
    root: x509.Certificate

    @property
    def pin(self) -> Pin:
        return Pin.from_certificate(self.cert)

    @property
    def cert_pem(self) -> bytes:
        return pem(self.cert)

    @property
    def chain_pem(self) -> bytes:
        """The certificate followed by its intermediates: what a server serves."""
        return pem(self.cert, *self.chain)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def server_context(
        self,
        *,
        extra: Sequence[x509.Certificate | bytes] = (),
        maximum_version: ssl.TLSVersion | None = None,
    ) -> ssl.SSLContext:
        """A server-side context serving this certificate, its chain, and ``extra``
        certificates (objects or raw DER) appended after them, to test clients against
        padded or malformed chains."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if maximum_version is not None:
            context.maximum_version = maximum_version
        fd, path = tempfile.mkstemp(prefix="pinwarden-test-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self.key_pem + self.chain_pem + pem(*extra))
            context.load_cert_chain(path)
        finally:
            os.unlink(path)
        return context


class CA:
    """A certificate authority: a self-signed root, or an intermediate of ``parent``.

    >>> root = CA("Example Root")
    >>> intermediate = root.intermediate("Example Issuing CA")
    >>> leaf = intermediate.issue("localhost", "127.0.0.1")
    """

    def __init__(
        self,
        name: str = "pinwarden test root",
        *,
        key: PrivateKey | None = None,
        key_type: KeyType = "ec-p256",
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        parent: CA | None = None,
        path_length: int | None = None,
    ) -> None:
        self.name = name
        self.parent = parent
        self.key: PrivateKey = key or generate_key(key_type)
        start, end = _validity(not_before, not_after, _CA_LIFETIME)
        public = self.key.public_key()
        issuer_name = parent.cert.subject if parent else _name(name)
        signer = parent.key if parent else self.key
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(issuer_name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
                critical=False,
            )
        )
        self.cert: x509.Certificate = builder.sign(signer, _sign_alg(signer))

    @property
    def root(self) -> CA:
        return self.parent.root if self.parent else self

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """This CA's certificate and its parents', up to but excluding the root."""
        if self.parent is None:
            return ()
        return (self.cert, *self.parent.chain)

    @property
    def pin(self) -> Pin:
        return Pin.from_certificate(self.cert)

    @property
    def cert_pem(self) -> bytes:
        return pem(self.cert)

    def client_context(self) -> ssl.SSLContext:
        """A plain client context (no pins) that trusts this CA's root."""
        return ssl.create_default_context(cadata=self.root.cert_pem.decode("ascii"))

    def intermediate(
        self,
        name: str = "pinwarden test intermediate",
        *,
        key: PrivateKey | None = None,
        key_type: KeyType = "ec-p256",
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> CA:
        """A CA signed by this one. Pass ``key`` to re-issue for an existing key."""
        return CA(
            name,
            key=key,
            key_type=key_type,
            not_before=not_before,
            not_after=not_after,
            parent=self,
        )

    def issue(
        self,
        *names: str,
        key: PrivateKey | None = None,
        key_type: KeyType = "ec-p256",
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        common_name: str | None = None,
    ) -> Issued:
        """A server certificate for DNS names and IP addresses (``localhost`` and
        ``127.0.0.1`` by default). Pass ``key`` to re-issue for an existing key."""
        hosts = names or ("localhost", "127.0.0.1")
        leaf_key = key or generate_key(key_type)
        start, end = _validity(not_before, not_after, _LEAF_LIFETIME)
        builder = self.leaf_builder(
            hosts, key=leaf_key, not_before=start, not_after=end, common_name=common_name
        )
        return Issued(self.sign(builder), leaf_key, self.chain, self.root.cert)

    def leaf_builder(
        self,
        names: Sequence[str],
        *,
        key: PrivateKey,
        not_before: dt.datetime,
        not_after: dt.datetime,
        common_name: str | None = None,
    ) -> x509.CertificateBuilder:
        """The server certificate :meth:`issue` makes, unsigned: for ``names`` (DNS names and
        IP addresses, at least one; the common name defaults to the first) and ``key``, issued
        by this CA. For test kits that add extensions before signing it with :meth:`sign`
        (the CT kit's precertificates and certificates with embedded SCTs)."""
        return (
            x509.CertificateBuilder()
            .subject_name(_name(common_name or names[0]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(list(_san(names))), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )

    def sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        """``builder`` signed with this CA's key (SHA-384 for a P-384 key, else SHA-256)."""
        return builder.sign(self.key, _sign_alg(self.key))


def _san(hosts: Iterable[str]) -> Iterable[x509.GeneralName]:
    for host in hosts:
        try:
            yield x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            yield x509.DNSName(host)
