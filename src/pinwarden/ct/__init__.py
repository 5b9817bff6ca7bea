"""Certificate Transparency: embedded SCTs and the browsers' CT policies, log lists, Merkle
proofs, verified clients for RFC 6962 and static-ct-api logs, and a monitor.

Everything a log or a certificate hands us is checked before it is believed: SCT signatures
against the log list's keys, tree heads against their signatures, entries against the signed
root, successive tree heads against each other.
"""
