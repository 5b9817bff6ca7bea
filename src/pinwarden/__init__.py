"""pinwarden: certificate pinning done safely, and its alternatives done for real.

Pin in any Python client with one :class:`ssl.SSLContext`::

    import pinwarden, httpx
    context = pinwarden.create_context(pinwarden.Policy.load("pins.toml"))
    httpx.get("https://api.example.com/", verify=context)
"""

from pinwarden._version import __version__
from pinwarden.certs import CertInfo, LoadedObject, describe_chain, load_objects
from pinwarden.errors import (
    CertificateError,
    FormatError,
    InputError,
    LossyExportError,
    NetworkError,
    PinFormatError,
    PinValidationError,
    PinwardenError,
    PolicyError,
    UnsupportedPlatformError,
)
from pinwarden.hosts import HostPattern
from pinwarden.pins import Pin, pin_diagnosis
from pinwarden.policy import Mode, PinRule, Policy, RuleMatch
from pinwarden.reports import Reporter, Violation, build_report
from pinwarden.tls import PinnedSSLContext, create_context
from pinwarden.verify import Outcome, Verdict, verify

__all__ = [
    "CertInfo",
    "CertificateError",
    "FormatError",
    "HostPattern",
    "InputError",
    "LoadedObject",
    "LossyExportError",
    "Mode",
    "NetworkError",
    "Outcome",
    "Pin",
    "PinFormatError",
    "PinRule",
    "PinValidationError",
    "PinnedSSLContext",
    "PinwardenError",
    "Policy",
    "PolicyError",
    "Reporter",
    "RuleMatch",
    "UnsupportedPlatformError",
    "Verdict",
    "Violation",
    "__version__",
    "build_report",
    "create_context",
    "describe_chain",
    "load_objects",
    "pin_diagnosis",
    "verify",
]
