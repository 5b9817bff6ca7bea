"""Read CT log lists: Chrome's v3 JSON and Apple's list, from a file or a URL, with the
detached signature checked where the list publishes one and downloads cached on disk.

* Chrome v3: https://www.gstatic.com/ct/log_list/v3/log_list.json, schema
  https://www.gstatic.com/ct/log_list/v3/log_list_schema.json. Google signs the list:
  ``log_list.sig`` beside it is an RSA PKCS#1 v1.5 signature with SHA-256 over the JSON
  bytes, made with the key ``log_list_pubkey.pem`` (:data:`GOOGLE_LOG_LIST_KEY_PEM`).
* Apple: https://valid.apple.com/ct/log_list/current_log_list.json, schema
  https://valid.apple.com/ct/log_list/schema_versions/log_list_schema_v5.json. The same
  shape as Chrome's, plus ``assetVersion``/``assetVersionV2``, a ``version`` in each state
  and ``tls_only`` on logs; every log has a ``state`` and there is no
  ``log_list_timestamp``. Apple publishes no detached signature: only HTTPS vouches for it.

The JSON is read with :mod:`json`; the walk over it is written here because each field
needs its own check and an error that names its path (``operators[1].logs[3].key``).
Fields pinwarden does not use (``email``, ``dns``, ``tls_only``...) are ignored, as are
fields it does not know.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
import math
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from pinwarden.ct.logs import FinalTreeHead, Log, LogList, LogState, PreviousOperator, log_id_of
from pinwarden.errors import LogListError, NetworkError
from pinwarden.policy import parse_iso_datetime

if TYPE_CHECKING:
    import httpx

__all__ = [
    "APPLE_LOG_LIST_URL",
    "CHROME_ALL_LOGS_LIST_URL",
    "CHROME_LOG_LIST_URL",
    "GOOGLE_LOG_LIST_KEY_PEM",
    "KINDS",
    "MAX_AGE",
    "cache_path",
    "cached_log_list",
    "default_cache_dir",
    "default_log_list",
    "detect_kind",
    "load_log_list",
    "log_to_json",
    "parse_log_list",
    "published_signature_url",
    "staleness_warning",
    "verify_signature",
]

CHROME_LOG_LIST_URL = "https://www.gstatic.com/ct/log_list/v3/log_list.json"
CHROME_ALL_LOGS_LIST_URL = "https://www.gstatic.com/ct/log_list/v3/all_logs_list.json"
APPLE_LOG_LIST_URL = "https://valid.apple.com/ct/log_list/current_log_list.json"
KINDS = ("chrome", "apple")

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

# Chrome stops enforcing CT when its list is older than 70 days
# (https://googlechrome.github.io/CertificateTransparency/log_list.html).
MAX_AGE = timedelta(days=70)

# Chrome's all_logs_list.json is about 100 kB; anything near this is not a log list.
_MAX_BYTES = 32 * 1024 * 1024


# -- parsing -----------------------------------------------------------------------------


def detect_kind(document: Mapping[str, Any]) -> str:
    """``"apple"`` when the document has Apple's ``assetVersion``/``assetVersionV2`` keys or
    a ``$schema`` under https://valid.apple.com/, else ``"chrome"``."""
    if "assetVersion" in document or "assetVersionV2" in document:
        return "apple"
    schema = document.get("$schema")
    if isinstance(schema, str) and schema.startswith("https://valid.apple.com/"):
        return "apple"
    return "chrome"


def parse_log_list(data: bytes, *, source: str, kind: str | None = None) -> LogList:
    """Parse a Chrome v3 or Apple log list (JSON bytes) into a :class:`LogList`.

    ``kind`` is ``"chrome"`` or ``"apple"``; when None it is detected (:func:`detect_kind`).
    Raises :class:`LogListError` naming ``source`` and the JSON path of the first field that
    is missing or of the wrong type, a ``log_id`` that is not the SHA-256 of its ``key``, or a
    log ID listed twice.
    """
    if kind is not None and kind not in KINDS:
        raise LogListError(f"{source}: unknown log list kind {kind!r} (chrome or apple)")
    try:
        document = json.loads(data, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise LogListError(f"{source}: not JSON: {_short(exc)}") from None
    return _Reader(source).document(document, kind)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "…"


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


class _Reader:
    """One walk over one document; ``fail`` builds the error for a JSON path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> LogListError:
        return LogListError(f"{self.source}: {path}: {message}")

    # typed field access ----------------------------------------------------------------

    def obj(self, value: object, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be an object, not {_type_name(value)}")
        return value

    def need(self, obj: dict[str, Any], key: str, path: str) -> object:
        if key not in obj:
            raise self.fail(_join(path, key), "missing")
        return obj[key]

    # An optional field may be absent; present, it must have its type (null is not one).

    def text(self, obj: dict[str, Any], key: str, path: str) -> str:
        value = self.need(obj, key, path)
        if not isinstance(value, str):
            raise self.fail(_join(path, key), f"must be a string, not {_type_name(value)}")
        return value

    def optional_text(self, obj: dict[str, Any], key: str, path: str) -> str | None:
        return self.text(obj, key, path) if key in obj else None

    def array(self, obj: dict[str, Any], key: str, path: str, *, required: bool) -> list[Any]:
        if not required and key not in obj:
            return []
        value = self.need(obj, key, path)
        if not isinstance(value, list):
            raise self.fail(_join(path, key), f"must be an array, not {_type_name(value)}")
        return value

    def integer(self, obj: dict[str, Any], key: str, path: str, *, minimum: int) -> int:
        value = self.need(obj, key, path)
        where = _join(path, key)
        # JSON has one number type: 86400.0 is accepted as 86400, 1.5 is not a count.
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, float):
            raise self.fail(where, f"must be a whole number, not {value!r}")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"must be a whole number, not {_type_name(value)}")
        if value < minimum:
            raise self.fail(where, f"must be at least {minimum}, not {value}")
        return value

    def b64(self, obj: dict[str, Any], key: str, path: str, *, size: int | None = None) -> bytes:
        text = self.text(obj, key, path)
        where = _join(path, key)
        try:
            value = base64.b64decode(text.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error):
            raise self.fail(where, "not base64") from None
        if not value:
            raise self.fail(where, "empty")
        if size is not None and len(value) != size:
            raise self.fail(where, f"must decode to {size} bytes, not {len(value)}")
        return value

    def time(self, obj: dict[str, Any], key: str, path: str) -> datetime:
        text = self.text(obj, key, path)
        where = _join(path, key)
        try:
            when = parse_iso_datetime(text) if text.strip() else None
        except (ValueError, OverflowError):
            when = None
        if when is None:
            raise self.fail(where, f"{_quote(text)} is not an RFC 3339 date-time")
        if when.tzinfo is None:
            raise self.fail(where, f"{_quote(text)} has no UTC offset (e.g. Z)")
        try:
            return when.astimezone(timezone.utc)
        except OverflowError:
            raise self.fail(where, f"{_quote(text)} is out of range") from None

    def url(self, obj: dict[str, Any], key: str, path: str) -> str:
        text = self.text(obj, key, path)
        try:
            parts = urlsplit(text)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            ok = False
        if not ok:
            raise self.fail(_join(path, key), f"{_quote(text)} is not an http(s) URL")
        return text

    # the document ----------------------------------------------------------------------

    def document(self, value: object, kind: str | None) -> LogList:
        if not isinstance(value, dict):
            raise LogListError(
                f"{self.source}: a log list is a JSON object, not {_type_name(value)}"
            )
        kind = kind or detect_kind(value)
        version = (
            self.text(value, "version", "")
            if kind == "apple"
            else self.optional_text(value, "version", "")
        )
        timestamp = None
        if "log_list_timestamp" in value:
            timestamp = self.time(value, "log_list_timestamp", "")
        if kind == "apple":
            for key in ("assetVersion", "assetVersionV2"):
                if key in value:
                    self.integer(value, key, "", minimum=0)
        logs: list[Log] = []
        seen: dict[bytes, str] = {}
        for i, operator in enumerate(self.array(value, "operators", "", required=True)):
            for log, path in self.operator(operator, f"operators[{i}]", kind):
                if log.log_id in seen:
                    raise self.fail(
                        f"{path}.log_id", f"{log.log_id_b64} is also the ID of {seen[log.log_id]}"
                    )
                seen[log.log_id] = path
                logs.append(log)
        return LogList(
            logs=tuple(logs), kind=kind, source=self.source, version=version, timestamp=timestamp
        )

    def operator(self, value: object, path: str, kind: str) -> list[tuple[Log, str]]:
        operator = self.obj(value, path)
        name = self.text(operator, "name", path)
        for i, email in enumerate(self.array(operator, "email", path, required=False)):
            if not isinstance(email, str):
                raise self.fail(f"{path}.email[{i}]", f"must be a string, not {_type_name(email)}")
        if "logs" not in operator and "tiled_logs" not in operator:
            raise self.fail(path, "has neither logs nor tiled_logs")
        found: list[tuple[Log, str]] = []
        for field, tiled in (("logs", False), ("tiled_logs", True)):
            for i, entry in enumerate(self.array(operator, field, path, required=False)):
                where = f"{path}.{field}[{i}]"
                found.append((self.log(entry, where, operator=name, tiled=tiled, kind=kind), where))
        return found

    def log(self, value: object, path: str, *, operator: str, tiled: bool, kind: str) -> Log:
        entry = self.obj(value, path)
        # The key is not parsed as DER here: Chrome's own sample list has a raw EC point for
        # one log. Log.public_key() fails for such a log when an SCT needs it.
        key = self.b64(entry, "key", path)
        log_id = self.b64(entry, "log_id", path, size=32)
        if not hmac.compare_digest(log_id, log_id_of(key)):
            raise self.fail(f"{path}.log_id", "is not the SHA-256 of key")
        description = self.optional_text(entry, "description", path)
        mmd = self.integer(entry, "mmd", path, minimum=1)
        url = submission_url = monitoring_url = None
        if tiled:
            submission_url = self.url(entry, "submission_url", path)
            monitoring_url = self.url(entry, "monitoring_url", path)
        else:
            url = self.url(entry, "url", path)
        state, since, final = self.state(entry, path, kind)
        interval = None
        if "temporal_interval" in entry:
            where = f"{path}.temporal_interval"
            span = self.obj(entry["temporal_interval"], where)
            start = self.time(span, "start_inclusive", where)
            end = self.time(span, "end_exclusive", where)
            if end <= start:
                raise self.fail(where, "end_exclusive is not after start_inclusive")
            interval = (start, end)
        previous: list[PreviousOperator] = []
        for i, item in enumerate(self.array(entry, "previous_operators", path, required=False)):
            where = f"{path}.previous_operators[{i}]"
            former = self.obj(item, where)
            former_name = self.text(former, "name", where)
            previous.append(PreviousOperator(former_name, self.time(former, "end_time", where)))
        return Log(
            description=description or f"log {base64.b64encode(log_id).decode()}",
            log_id=log_id,
            key=key,
            operator=operator,
            mmd=mmd,
            state=state,
            state_since=since,
            url=url,
            submission_url=submission_url,
            monitoring_url=monitoring_url,
            tiled=tiled,
            temporal_interval=interval,
            previous_operators=tuple(previous),
            final_tree_head=final,
            log_type=self.optional_text(entry, "log_type", path),
        )

    def state(
        self, entry: dict[str, Any], path: str, kind: str
    ) -> tuple[LogState | None, datetime | None, FinalTreeHead | None]:
        # Apple's schema requires a state on every log; Chrome's does not.
        if "state" not in entry and kind == "chrome":
            return None, None, None
        where = f"{path}.state"
        states = self.obj(self.need(entry, "state", path), where)
        if len(states) != 1:
            names = ", ".join(sorted(states)) or "none"
            raise self.fail(where, f"must name exactly one state, not {names}")
        ((name, body),) = states.items()
        try:
            state = LogState(name)
        except ValueError:
            known = ", ".join(s.value for s in LogState)
            raise self.fail(where, f"unknown state {_quote(name)} (one of {known})") from None
        where = f"{where}.{name}"
        details = self.obj(body, where)
        since = self.time(details, "timestamp", where)
        if kind == "apple" and "version" in details:
            self.text(details, "version", where)
        final = None
        # Both schemas require a final tree head for read-only logs; Apple's own build
        # script never reads it, so an Apple list without one is accepted.
        if state is LogState.READONLY and ("final_tree_head" in details or kind == "chrome"):
            head_path = f"{where}.final_tree_head"
            head = self.obj(self.need(details, "final_tree_head", where), head_path)
            final = FinalTreeHead(
                tree_size=self.integer(head, "tree_size", head_path, minimum=0),
                sha256_root_hash=self.b64(head, "sha256_root_hash", head_path, size=32),
            )
        return state, since, final


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _quote(text: str) -> str:
    shown = text if len(text) <= 80 else text[:80] + "…"
    return json.dumps(shown, ensure_ascii=True)


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


# -- cache -------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/pinwarden/ct`` (``~/.cache/pinwarden/ct`` when unset or relative,
    as the XDG base directory specification says)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "pinwarden" / "ct"


def cache_path(kind: str = "chrome", cache_dir: Path | None = None) -> Path:
    """The cached list of ``kind``: ``<cache>/<kind>-log-list.json``; its signature (when it
    had one) is beside it as ``.sig`` and its URL and fetch time as ``.meta.json``."""
    if kind not in KINDS:
        raise LogListError(f"unknown log list kind {kind!r} (chrome or apple)")
    return (cache_dir or default_cache_dir()) / f"{kind}-log-list.json"


def _sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name.removesuffix(".json") + suffix)


def _write_cache(
    directory: Path, kind: str, data: bytes, sig: bytes | None, meta: dict[str, Any]
) -> None:
    path = cache_path(kind, directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        sig_path = _sidecar(path, ".sig")
        if sig is not None:
            _atomic_write(sig_path, sig)
        else:
            sig_path.unlink(missing_ok=True)
        _atomic_write(path, data)
        # Written last and naming the list's SHA-256: a crash between the writes leaves
        # metadata that does not match, which reads as "fetch time unknown".
        _atomic_write(_sidecar(path, ".meta.json"), json.dumps(meta, indent=2).encode())
    except OSError as exc:
        raise LogListError(f"{directory}: cannot write the log list cache: {exc}") from None


def _atomic_write(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def cached_log_list(kind: str = "chrome", *, cache_dir: Path | None = None) -> LogList | None:
    """The cached list of ``kind`` (None when there is none), with ``fetched_at`` from its
    metadata. Its ``source`` is the cache file, so errors name the file to delete."""
    path = cache_path(kind, cache_dir)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LogListError(f"{path}: cannot read the cached log list: {exc.strerror}") from None
    try:
        loglist = parse_log_list(data, source=str(path), kind=kind)
    except LogListError as exc:
        raise LogListError(f"{exc} (run `pinwarden ct loglist update` to replace it)") from None
    return dataclasses.replace(loglist, fetched_at=_cached_fetch_time(path, data))


def _cached_fetch_time(path: Path, data: bytes) -> datetime | None:
    try:
        meta = json.loads(_sidecar(path, ".meta.json").read_bytes())
        if not isinstance(meta, dict) or meta.get("sha256") != hashlib.sha256(data).hexdigest():
            return None
        fetched = parse_iso_datetime(str(meta["fetched_at"]))
    except (OSError, ValueError, KeyError, RecursionError, OverflowError):
        return None
    return fetched.astimezone(timezone.utc) if fetched.tzinfo is not None else None


def default_log_list(
    now: datetime | None = None, *, kind: str = "chrome", cache_dir: Path | None = None
) -> LogList:
    """The list commands use when given no ``--log-list``: the cached one of ``kind``.

    Never touches the network. Raises :class:`LogListError` saying what to do when nothing is
    cached. ``now`` is accepted so callers pass their clock as to the CLI loader; the list is
    returned whatever its age (see :func:`staleness_warning`).
    """
    del now
    loglist = cached_log_list(kind, cache_dir=cache_dir)
    if loglist is None:
        flag = "" if kind == "chrome" else f" --kind {kind}"
        where = cache_path(kind, cache_dir).parent
        raise LogListError(
            f"no {kind.capitalize()} CT log list is cached in {where}: "
            f"run `pinwarden ct loglist update{flag}` or pass --log-list FILE|URL"
        )
    return loglist


def staleness_warning(loglist: LogList, now: datetime) -> str | None:
    """A warning when the list is more than 70 days old at ``now`` (Chrome stops enforcing CT
    with such a list), measured from ``log_list_timestamp`` or else the download time; None
    when it is fresh enough or its age is unknown (an Apple list read from a file)."""
    reference, what = loglist.timestamp, "published"
    if reference is None:
        reference, what = loglist.fetched_at, "downloaded"
    if reference is None:
        return None
    age = now - reference
    if age <= MAX_AGE:
        return None
    # 70 days and some hours is already too old; say so rather than "70 days ago".
    days = f"{age.days}" if age.days > MAX_AGE.days else f"more than {MAX_AGE.days}"
    return (
        f"{loglist.source}: this log list was {what} {days} days ago "
        f"({reference:%Y-%m-%d}); Chrome stops enforcing CT with a list older than "
        f"{MAX_AGE.days} days and logs may have changed state since: run "
        "`pinwarden ct loglist update`"
    )


# -- JSON --------------------------------------------------------------------------------


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def log_to_json(log: Log) -> dict[str, Any]:
    """One log as the documented JSON object (``docs/json.md``, "CT log")."""
    interval = None
    if log.temporal_interval is not None:
        start, end = log.temporal_interval
        interval = {"start_inclusive": _iso(start), "end_exclusive": _iso(end)}
    final = None
    if log.final_tree_head is not None:
        final = {
            "tree_size": log.final_tree_head.tree_size,
            "sha256_root_hash": base64.b64encode(log.final_tree_head.sha256_root_hash).decode(),
        }
    return {
        "description": log.description,
        "operator": log.operator,
        "log_id": log.log_id_b64,
        "key": base64.b64encode(log.key).decode("ascii"),
        "api": "static-ct-api" if log.tiled else "rfc6962",
        "url": log.url,
        "submission_url": log.submission_url,
        "monitoring_url": log.monitoring_url,
        "mmd": log.mmd,
        "state": log.state.value if log.state is not None else None,
        "state_since": _iso(log.state_since),
        "final_tree_head": final,
        "temporal_interval": interval,
        "previous_operators": [
            {"name": p.name, "end_time": _iso(p.end_time)} for p in log.previous_operators
        ],
        "log_type": log.log_type,
    }
