"""Backup keys: a key pair made now, kept offline, whose pin ships in the app before it
is needed — so that a compromised or lost server key can be replaced without locking
out every installed copy (RFC 7469 §4.3, and the article's advice)."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pinwarden.errors import InputError
from pinwarden.hosts import canonical_ip, is_plain_host, normalize_host
from pinwarden.pins import Pin

__all__ = ["KEY_TYPES", "BackupKey", "KeyType", "generate_backup_key", "write_new_files"]

KeyType = Literal["ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"]
KEY_TYPES: tuple[KeyType, ...] = get_args(KeyType)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class BackupKey:
    """A new private key (PEM, encrypted when a passphrase was given), its optional CSR
    (PEM) and its SPKI pin."""

    key_type: KeyType
    key_pem: bytes
    csr_pem: bytes | None
    pin: Pin
    encrypted: bool


def _generate(key_type: KeyType) -> PrivateKey:
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))


def _subject(text: str) -> x509.Name:
    try:
        name = x509.Name.from_rfc4514_string(text)
    except ValueError as exc:
        why = f": {exc}" if str(exc) else ""
        raise InputError(f"subject {text!r} is not an RFC 4514 name like 'CN=…,O=…'{why}") from None
    if not list(name):
        raise InputError("the CSR subject is empty; give e.g. --subject 'CN=api.example.com'")
    return name


def _dns_name(text: str) -> str:
    """A SAN DNS name in A-label form (``bücher.example`` → ``xn--bcher-kva.example``)."""
    try:
        name = normalize_host(text.strip()) if text.strip() else ""
    except InputError:
        name = ""
    if not name or not is_plain_host(name) or canonical_ip(name) is not None:
        raise InputError(f"--san {text!r} is not a DNS name")
    return name


def generate_backup_key(
    key_type: KeyType = "ec-p256",
    *,
    passphrase: bytes | None = None,
    csr_subject: str | None = None,
    csr_names: Sequence[str] = (),
) -> BackupKey:
    """Make a new key of ``key_type``; encrypt it with ``passphrase`` (PKCS#8, the best
    encryption cryptography offers); with ``csr_subject``, also a CSR signed by the key
    (``csr_names`` become its subjectAltName DNS names)."""
    if key_type not in KEY_TYPES:
        raise InputError(f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}")
    if passphrase is not None and not passphrase:
        raise InputError("the passphrase is empty")
    subject = _subject(csr_subject) if csr_subject is not None else None
    names = [_dns_name(n) for n in csr_names]
    key = _generate(key_type)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    csr_pem = None
    if subject is not None:
        builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
        algorithm = hashes.SHA384() if key_type == "ec-p384" else hashes.SHA256()
        csr_pem = builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM)
    return BackupKey(
        key_type, key_pem, csr_pem, Pin.from_public_key(key.public_key()), bool(passphrase)
    )


def write_new_files(files: Sequence[tuple[Path, bytes, int]], *, force: bool = False) -> None:
    """Write each ``(path, data, mode)`` so that either all files are written or none is
    changed; never overwrite an existing file unless ``force``. Each file is written to
    a temporary file in its directory with its final mode from the start (a private key
    is never readable by others, not even for a moment), then moved into place. With
    ``force``, the files replaced are kept aside until every new file is in place, and
    put back if one cannot be."""
    seen: set[str] = set()
    for path, _, _ in files:
        if path.is_dir():
            raise InputError(f"{path} is a directory")
        if not force and (path.exists() or path.is_symlink()):
            raise InputError(f"{path} exists; use --force to overwrite it")
        real = os.path.realpath(path)
        if real in seen:
            raise InputError(f"{path} is named twice: each file needs its own path")
        seen.add(real)
    temps: list[tuple[str, Path]] = []
    placed: list[Path] = []
    aside: list[tuple[str, Path]] = []
    try:
        for path, data, mode in files:
            temps.append((_write_temp(path, data, mode), path))
        for temp, path in temps:
            if force and (path.exists() or path.is_symlink()):
                # A fresh placeholder name to move the old file onto (replace() overwrites it).
                fd, old = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.old.")
                os.close(fd)
                _move(path, old)
                aside.append((old, path))
            _place(temp, path)
            placed.append(path)
    except BaseException:
        for path in placed:  # files this call created: all or nothing
            with contextlib.suppress(OSError):
                path.unlink()
        for old, path in aside:
            with contextlib.suppress(OSError):
                os.replace(old, path)
        raise
    else:
        for old, _ in aside:
            with contextlib.suppress(OSError):
                os.unlink(old)
    finally:
        for temp, _ in temps:
            with contextlib.suppress(OSError):
                os.unlink(temp)


def _write_temp(path: Path, data: bytes, mode: int) -> str:
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return temp


def _move(source: Path, target: str) -> None:
    try:
        os.replace(source, target)
    except OSError as exc:
        raise InputError(f"cannot replace {source}: {exc.strerror or exc}") from None


def _place(temp: str, path: Path) -> None:
    """Give ``temp`` the name ``path``, which must not exist: link() fails if the name
    appeared meanwhile, so nothing is overwritten by a race."""
    try:
        os.link(temp, path)
        return
    except FileExistsError:
        raise InputError(f"{path} exists; use --force to overwrite it") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.ENOTSUP):
            raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    # A file system without hard links: create the name exclusively and copy.
    try:
        with open(temp, "rb") as source:
            data = source.read()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, os.stat(temp).st_mode & 0o777)
    except FileExistsError:
        raise InputError(f"{path} exists; use --force to overwrite it") from None
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
