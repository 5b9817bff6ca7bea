"""Signed certificate timestamps (RFC 6962 section 3.2): parsing and verification.

An SCT is a log's signed promise to publish a certificate. We parse SCTs with our own
TLS-structure reader (:mod:`pinwarden.ct._wire`) rather than with cryptography's certificate
extension parser, so one parser covers the three ways SCTs arrive (embedded in a certificate,
in the TLS handshake, in an OCSP response) and malformed bytes give a
:class:`~pinwarden.errors.CTFormatError` naming the field instead of a bare ``ValueError``.
Inside a well-framed list, one SCT that cannot be decoded is kept as a :class:`MalformedSCT`
(a MALFORMED verdict) so that the others are still checked, as Chromium does.

Verification rebuilds the ``digitally-signed`` struct of RFC 6962 section 3.2 and checks it
with the log's key from a log list (ECDSA P-256 or RSA PKCS#1 v1.5, both with SHA-256). See
:func:`verify_sct` for the exact verdict rules.

This module is the public face; the code is in private modules by what it does:
:mod:`~pinwarden.ct._sct_types` (the types and protocol numbers),
:mod:`~pinwarden.ct._sct_codec` (parsing and encoding), :mod:`~pinwarden.ct._sct_signed`
(what a log signed), :mod:`~pinwarden.ct._sct_verify` (verdicts) and
:mod:`~pinwarden.ct._tbs` (the DER walk over a certificate's extensions).
"""

from __future__ import annotations

from pinwarden.ct._sct_codec import (
    embedded_sct_items,
    embedded_scts,
    encode_sct,
    encode_sct_list,
    leaf_index_extension,
    parse_sct,
    parse_sct_list,
    parse_sct_list_items,
)
from pinwarden.ct._sct_signed import (
    SignedEntry,
    entry_of,
    issuer_key_hash,
    sct_signature_input,
    signed_data,
)

# The protocol numbers (the test kit signs with them) and ``_tlv`` (the tests build DER with
# it) stay importable from here, as before the split; they are not in ``__all__``.
from pinwarden.ct._sct_types import HASH_SHA256 as HASH_SHA256
from pinwarden.ct._sct_types import (
    SCT,
    MalformedSCT,
    SCTResult,
    SCTStatus,
    SignedEntryType,
)
from pinwarden.ct._sct_types import SCT_VERSION_V1 as SCT_VERSION_V1
from pinwarden.ct._sct_types import SIG_ECDSA as SIG_ECDSA
from pinwarden.ct._sct_types import SIG_RSA as SIG_RSA
from pinwarden.ct._sct_verify import find_issuer, verify_embedded, verify_sct
from pinwarden.ct._tbs import _tlv as _tlv

__all__ = [
    "SCT",
    "MalformedSCT",
    "SCTResult",
    "SCTStatus",
    "SignedEntry",
    "SignedEntryType",
    "embedded_sct_items",
    "embedded_scts",
    "encode_sct",
    "encode_sct_list",
    "entry_of",
    "find_issuer",
    "issuer_key_hash",
    "leaf_index_extension",
    "parse_sct",
    "parse_sct_list",
    "parse_sct_list_items",
    "sct_signature_input",
    "signed_data",
    "verify_embedded",
    "verify_sct",
]
