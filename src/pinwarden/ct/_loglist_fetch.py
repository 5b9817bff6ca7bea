"""Getting a CT log list: read from a file or downloaded from an http(s) URL (size-capped),
its detached signature checked where the list publishes one (Google's key is built in),
and a checked download cached.

Separate from parsing (pure) and from the cache layout: this is the part that does I/O
and decides what to trust.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from pinwarden.ct._loglist_cache import _write_cache, default_cache_dir
from pinwarden.ct._loglist_parse import _short, parse_log_list
from pinwarden.ct.logs import LogList
from pinwarden.errors import LogListError, NetworkError

if TYPE_CHECKING:
    import httpx

CHROME_LOG_LIST_URL = "https://www.gstatic.com/ct/log_list/v3/log_list.json"
CHROME_ALL_LOGS_LIST_URL = "https://www.gstatic.com/ct/log_list/v3/all_logs_list.json"
APPLE_LOG_LIST_URL = "https://valid.apple.com/ct/log_list/current_log_list.json"

# Google's log-list signing key, published at
# https://www.gstatic.com/ct/log_list/v3/log_list_pubkey.pem. Written into the source on
# purpose: a key fetched beside the list it verifies proves nothing. The same text is in
# google/certificate-transparency-go (submission/loglist_refresher.go) and in AOSP's
# CertificateTransparencyDownloader; SHA-256 of its DER:
# f1d8b68e50210d8e73d9a3e97f571773c52d7f28c0b1a71beee81d8562e6fd85 (tested).
GOOGLE_LOG_LIST_KEY_PEM = b"""-----BEGIN PUBLIC KEY-----
MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAsu0BHGnQ++W2CTdyZyxv
HHRALOZPlnu/VMVgo2m+JZ8MNbAOH2cgXb8mvOj8flsX/qPMuKIaauO+PwROMjiq
fUpcFm80Kl7i97ZQyBDYKm3MkEYYpGN+skAR2OebX9G2DfDqFY8+jUpOOWtBNr3L
rmVcwx+FcFdMjGDlrZ5JRmoJ/SeGKiORkbbu9eY1Wd0uVhz/xI5bQb0OgII7hEj+
i/IPbJqOHgB8xQ5zWAJJ0DmG+FM6o7gk403v6W3S8qRYiR84c50KppGwe4YqSMkF
bLDleGQWLoaDSpEWtESisb4JiLaY4H+Kk0EyAhPSb+49JfUozYl+lf7iFN3qRq/S
IXXTh6z0S7Qa8EYDhKGCrpI03/+qprwy+my6fpWHi6aUIk4holUCmWvFxZDfixox
K0RlqbFDl2JXMBquwlQpm8u5wrsic1ksIv9z8x9zh4PJqNpCah0ciemI3YGRQqSe
/mRRXBiSn9YQBUPcaeqCYan+snGADFwHuXCd9xIAdFBolw9R9HTedHGUfVXPJDiF
4VusfX6BRR/qaadB+bqEArF/TzuDUr6FvOR4o8lUUxgLuZ/7HO+bHnaPFKYHHSm+
+z1lVDhhYuSZ8ax3T0C3FZpb7HMjZtpEorSV5ElKJEJwrhrBCMOD8L01EoSPrGlS
1w22i9uGHMn/uGQKo28u7AsCAwEAAQ==
-----END PUBLIC KEY-----
"""

# Chrome's all_logs_list.json is about 100 kB; anything near this is not a log list.
_MAX_BYTES = 32 * 1024 * 1024


# -- signatures --------------------------------------------------------------------------


def verify_signature(
    data: bytes,
    signature: bytes,
    public_key: bytes | RSAPublicKey | None = None,
    *,
    source: str,
) -> None:
    """Check a detached log-list signature: RSA PKCS#1 v1.5 with SHA-256 over ``data``.

    ``public_key`` is PEM or DER SubjectPublicKeyInfo bytes or a key object; None means
    Google's log-list key (:data:`GOOGLE_LOG_LIST_KEY_PEM`). Raises :class:`LogListError`
    when the key is unusable or the signature does not verify.
    """
    key = _rsa_key(GOOGLE_LOG_LIST_KEY_PEM if public_key is None else public_key, source)
    try:
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        whose = "Google's log-list key" if public_key is None else "the given public key"
        raise LogListError(
            f"{source}: the signature does not verify with {whose}: the list was changed "
            "after signing or is not the one signed"
        ) from None


def _rsa_key(value: bytes | RSAPublicKey, source: str) -> RSAPublicKey:
    if isinstance(value, RSAPublicKey):
        return value
    try:
        if value.lstrip().startswith(b"-----BEGIN"):
            key = load_pem_public_key(value)
        else:
            key = load_der_public_key(value)
    except (ValueError, UnsupportedAlgorithm):
        raise LogListError(f"{source}: the log-list public key is not a PEM or DER key") from None
    if not isinstance(key, RSAPublicKey):
        raise LogListError(
            f"{source}: the log-list public key must be RSA (log lists are "
            "signed with RSA PKCS#1 v1.5 SHA-256)"
        )
    return key


def published_signature_url(url: str) -> str | None:
    """Where the signature of a list is published: ``.sig`` beside Chrome's two v3 lists;
    None for any other list (Apple publishes none)."""
    if url in (CHROME_LOG_LIST_URL, CHROME_ALL_LOGS_LIST_URL):
        return url.removesuffix(".json") + ".sig"
    return None


# -- loading -----------------------------------------------------------------------------


def _is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def load_log_list(
    source: str | os.PathLike[str],
    *,
    now: datetime,
    kind: str | None = None,
    signature: str | os.PathLike[str] | None = None,
    public_key: bytes | RSAPublicKey | None = None,
    cache_dir: Path | None = None,
    cache: bool = True,
    http: httpx.Client | None = None,
    timeout: float = 30.0,
) -> LogList:
    """Read a log list from a file or download it from an http(s) URL.

    ``signature`` is the detached signature (a file or URL); for Chrome's own URLs it
    defaults to the published ``.sig`` (:func:`published_signature_url`), so those downloads
    are always verified. ``public_key`` defaults to Google's key. A download is checked
    (signature, then every field) before anything is written; then, unless ``cache`` is
    False, it is cached as the list of its kind (:func:`cache_path`) with ``now`` as its
    fetch time, which the returned list carries as ``fetched_at``.

    Raises :class:`LogListError` for a bad list or signature, :class:`NetworkError` when a
    URL cannot be fetched. ``http`` is the httpx client to use (tests); by default one is
    made with ``timeout`` seconds.
    """
    if now.tzinfo is None:
        raise ValueError("load_log_list: now must be timezone-aware")
    text = os.fspath(source)
    signature_source = os.fspath(signature) if signature is not None else None
    if not _is_url(text):
        data = _read_file(text, "log list")
        if signature_source is not None:
            signed = _read_any(signature_source, http=http, timeout=timeout)
            verify_signature(data, signed, public_key, source=text)
        return parse_log_list(data, source=text, kind=kind)
    data = _download(text, http=http, timeout=timeout)
    if signature_source is None:
        signature_source = published_signature_url(text)
    sig: bytes | None = None
    if signature_source is not None:
        sig = _read_any(signature_source, http=http, timeout=timeout)
        verify_signature(data, sig, public_key, source=text)
    fetched_at = now.astimezone(timezone.utc)
    loglist = dataclasses.replace(
        parse_log_list(data, source=text, kind=kind), fetched_at=fetched_at
    )
    if cache:
        _write_cache(
            cache_dir or default_cache_dir(),
            loglist.kind,
            data,
            sig,
            {
                "url": text,
                "signature_url": signature_source,
                "signature_verified": sig is not None,
                "fetched_at": fetched_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "sha256": hashlib.sha256(data).hexdigest(),
            },
        )
    return loglist


def _read_file(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_BYTES + 1)
    except OSError as exc:
        raise LogListError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    if len(data) > _MAX_BYTES:
        raise LogListError(f"{path}: larger than {_MAX_BYTES} bytes: not a {what}")
    return data


def _read_any(source: str, *, http: httpx.Client | None, timeout: float) -> bytes:
    if _is_url(source):
        return _download(source, http=http, timeout=timeout)
    return _read_file(source, "signature")


def _download(url: str, *, http: httpx.Client | None, timeout: float) -> bytes:
    import httpx  # imported on first download only: keeps `import pinwarden` light

    try:
        if http is not None:
            return _get(http, url)
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            return _get(client, url)
    except httpx.InvalidURL as exc:
        raise LogListError(f"{url}: not a usable URL: {_short(exc)}") from None
    except httpx.HTTPError as exc:
        raise NetworkError(f"{url}: {_short(exc)}") from None


def _get(client: httpx.Client, url: str) -> bytes:
    with client.stream("GET", url) as response:
        if response.status_code != 200:
            raise NetworkError(f"{url}: HTTP {response.status_code} {response.reason_phrase}")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > _MAX_BYTES:
                raise LogListError(f"{url}: larger than {_MAX_BYTES} bytes: not a log list")
            chunks.append(chunk)
    return b"".join(chunks)
