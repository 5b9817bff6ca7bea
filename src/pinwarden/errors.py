"""Every exception pinwarden raises on purpose.

Two families:

* :class:`InputError` and its subclasses: the bytes or settings a user gave us are wrong.
  The message names what was wrong and where (file, key, PEM block, ...). The CLI turns
  them into a one-line message and exit status 2.
* :class:`PinValidationError`: a TLS connection failed its pin check. It subclasses
  :class:`ssl.SSLCertVerificationError` so every HTTP client reports it as the
  certificate error it is.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pinwarden.verify import Verdict

__all__ = [
    "CTFormatError",
    "CertificateError",
    "FormatError",
    "InputError",
    "LogListError",
    "LogMisbehaviourError",
    "LossyExportError",
    "MerkleProofError",
    "NetworkError",
    "PinFormatError",
    "PinValidationError",
    "PinwardenError",
    "PolicyError",
    "StoreError",
    "UnsupportedPlatformError",
]


class PinwardenError(Exception):
    """Base class of every error pinwarden raises on purpose."""


class InputError(PinwardenError, ValueError):
    """Input from outside (a file, a string, a setting) is not what it must be."""


class PinFormatError(InputError):
    """A pin string could not be parsed, or a pin is not what it claims to be."""


class CertificateError(InputError):
    """A certificate, key or CSR could not be read."""


class PolicyError(InputError):
    """A pin policy is invalid. ``source`` is the file (or ``<dict>``) and ``key`` the
    dotted path of the offending setting, when known."""

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None):
        self.source = source
        self.key = key
        self.detail = message
        where = ": ".join(part for part in (source, key) if part)
        super().__init__(f"{where}: {message}" if where else message)


class NetworkError(PinwardenError):
    """A host could not be reached or did not complete a handshake: the result is unknown."""


class UnsupportedPlatformError(PinwardenError):
    """This Python cannot give us the verified chain, so pins cannot be checked safely."""


# OpenSSL's X509_V_ERR_APPLICATION_VERIFICATION: "application verification failure".
# Reusing OpenSSL's own code for an application-level rejection keeps tools that
# switch on verify_code meaningful.
_APPLICATION_VERIFICATION = 50


class PinValidationError(ssl.SSLCertVerificationError, PinwardenError):
    """A connection was refused because its verified chain matched none of the pins
    (or because it could not be checked safely).

    Why an :class:`ssl.SSLCertVerificationError`: asyncio and uvloop only catch
    ``ssl.SSLError`` during the handshake, httpcore only maps ``ssl.SSLError``, and aiohttp
    turns certificate errors into ``ClientConnectorCertificateError``. ``strerror`` is
    always a string (anyio crashed on ``None``: https://github.com/agronholm/anyio/issues/795).
    """

    verdict: Verdict | None

    def __init__(self, message: str, verdict: Verdict | None = None) -> None:
        super().__init__(1, message)
        self.verdict = verdict
        self.verify_code = _APPLICATION_VERIFICATION
        self.verify_message = message
        self.reason = "CERTIFICATE_VERIFY_FAILED"
        self.library = "SSL"
        self.strerror = message

    def __str__(self) -> str:
        return f"certificate pin check failed: {self.verify_message}"

    def __reduce__(self) -> tuple[type[PinValidationError], tuple[str]]:
        # OSError pickles its (errno, strerror) args; keep the message round-tripping
        # for multiprocessing and concurrent.futures users.
        return (type(self), (self.verify_message,))


class FormatError(InputError):
    """A file in another tool's pin format (Android XML, a plist, OkHttp code, an HPKP
    header...) could not be read. The message names the file and the problem."""


class LossyExportError(InputError):
    """A policy cannot be written in a format without changing what it means.
    ``losses`` lists each difference; pass ``lossy=True`` (``--lossy``) to accept them."""

    def __init__(self, format_name: str, losses: tuple[str, ...]) -> None:
        self.format_name = format_name
        self.losses = losses
        listed = "; ".join(losses)
        super().__init__(
            f"{format_name} cannot express this policy exactly: {listed}. "
            "Use --lossy to export anyway"
        )


class CTFormatError(InputError):
    """Certificate Transparency bytes could not be parsed: an SCT or SCT list, a log entry
    (``MerkleTreeLeaf``, ``get-entries`` JSON, a data or hash tile), a signed tree head or
    checkpoint, a proof. The message names the structure, the field and the byte offset."""


class LogListError(InputError):
    """A CT log list (Chrome v3 or Apple) could not be read, has a missing or wrong-typed
    field, or its signature does not verify."""


class MerkleProofError(PinwardenError):
    """A Merkle inclusion or consistency proof (RFC 6962 section 2.1, RFC 9162 section 2.1)
    does not verify, or is malformed (wrong number of hashes, a hash of the wrong size,
    impossible indices or sizes)."""


class LogMisbehaviourError(PinwardenError):
    """A CT log served something that fails a check: a bad tree-head signature, a root that
    does not match the entries, two tree heads that are not consistent (a fork), a bad proof
    or malformed entries. ``kind`` names the check (``bad-signature``, ``wrong-root``,
    ``fork``, ``bad-proof``, ``malformed-entry``...), ``log`` the log's URL or name, and
    ``evidence`` holds what the log served (tree heads, proof, indices), JSON-ready."""

    def __init__(
        self, kind: str, log: str, message: str, evidence: dict[str, object] | None = None
    ) -> None:
        self.kind = kind
        self.log = log
        self.evidence = dict(evidence or {})
        super().__init__(f"log {log} misbehaved ({kind}): {message}")


class StoreError(PinwardenError):
    """The monitor's state store (SQLite or PostgreSQL) could not be opened, is of an
    unknown version, or a lease was lost."""
