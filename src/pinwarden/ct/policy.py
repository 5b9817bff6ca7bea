"""Audit the SCTs embedded in a certificate against the Chrome and Apple CT policies.

This is an **audit** of what a certificate carries, not the enforcement a TLS client
performs: only SCTs embedded in the certificate are seen. SCTs a server delivers in the
TLS handshake (``signed_certificate_timestamp`` extension) or in a stapled OCSP response
can make a certificate compliant in a browser, but Python's :mod:`ssl` does not expose
them. Browsers also judge with their own, current log lists; this audit judges with the
list it is given, as of ``now``.

Pure: no I/O and no clock (``now`` is passed in). The per-SCT verdicts come from
:mod:`pinwarden.ct.sct`; only VALID SCTs count towards a policy.

This module is the public face; the code is in :mod:`~pinwarden.ct._policy_common` (the
verdict types and the counting both policies share), :mod:`~pinwarden.ct._policy_chrome`
and :mod:`~pinwarden.ct._policy_apple`.
"""

from __future__ import annotations

from pinwarden.ct._policy_apple import apple_lifetime_days, audit_apple
from pinwarden.ct._policy_chrome import audit_chrome, chrome_lifetime
from pinwarden.ct._policy_common import AUDIT_NOTE, PolicyLine, PolicyVerdict, Validity, undecided

# Importable from here as before the split; not in ``__all__``.
from pinwarden.ct._policy_common import PolicyName as PolicyName

__all__ = [
    "AUDIT_NOTE",
    "PolicyLine",
    "PolicyVerdict",
    "Validity",
    "apple_lifetime_days",
    "audit_apple",
    "audit_chrome",
    "chrome_lifetime",
    "undecided",
]
