"""CAA (RFC 8659, 8657, 9495): which CAs a domain allows to issue, where that is
published, whether the CA serving a host today may renew, and records to publish.

* :mod:`pinwarden.caa.model` — the value types (records, lookups, verdicts);
* :mod:`pinwarden.caa.records` — CAA rdata and its zone-file presentation form;
* :mod:`pinwarden.caa.values` — property values (issue, iodef, contactemail…);
* :mod:`pinwarden.caa.lookup` — the RFC 8659 §3 search for the relevant RRset, sync and
  asyncio, with dnspython;
* :mod:`pinwarden.caa.evaluate` — may CA X issue for name N (RFC 8659 §4, 8657, 9495);
* :mod:`pinwarden.caa.summary` — what an RRset allows, for display and JSON;
* :mod:`pinwarden.caa.audit` — many names, and whether the CA serving each may renew;
* :mod:`pinwarden.caa.identities` — well-known CAs and their CAA issuer domain names;
* :mod:`pinwarden.caa.generate` — records that allow exactly a set of CAs.

A DNS failure is never "allowed": it is :attr:`Verdict.UNKNOWN`, with the reason.
"""
