"""Well-known CAs and their CAA issuer domain names: which name to publish for a CA, and
which CA issued a certificate (to ask "may the CA serving this host today renew?").

The table is data (``caa/data/ca_identities.toml``, each entry with its source), read
once; a user file of the same shape adds entries or replaces them by name.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from pinwarden.caa.values import is_issuer_domain_name
from pinwarden.errors import CertificateError, PinFormatError, PolicyError
from pinwarden.pins import Pin

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "CAIdentity",
    "identify_issuer",
    "identity_for_domain",
    "issuer_domain_for",
    "load_identities",
    "parse_identities",
]

BUNDLED_SOURCE = "pinwarden/caa/data/ca_identities.toml"

_KEYS = frozenset(
    {"name", "caa", "organizations", "common_name_prefixes", "pins", "note", "source"}
)


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class CAIdentity:
    """A CA: its CAA issuer domain names (``caa[0]`` is the one to publish), how to
    recognise a certificate it issued (issuer organisation names, issuer common-name
    prefixes, SPKI pins of its issuing intermediates), a note and the source."""

    name: str
    caa: tuple[str, ...]
    organizations: tuple[str, ...] = ()
    common_name_prefixes: tuple[str, ...] = ()
    pins: tuple[Pin, ...] = ()
    note: str = ""
    source: str = ""

    @property
    def preferred(self) -> str:
        """The issuer domain name to publish in new records."""
        return self.caa[0]

    def recognises(self, issuer_domain: str) -> bool:
        """Whether this CA honours ``issuer_domain`` (compared case-insensitively)."""
        folded = issuer_domain.lower().rstrip(".")
        return any(name.lower() == folded for name in self.caa)

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready data, shaped like the TOML table."""
        return {
            "name": self.name,
            "caa": list(self.caa),
            "organizations": list(self.organizations),
            "common_name_prefixes": list(self.common_name_prefixes),
            "pins": [str(p) for p in self.pins],
            "note": self.note,
            "source": self.source,
        }


def _strings(entry: Mapping[str, Any], key: str, source: str, where: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError("must be a list of strings", source=source, key=f"{where}.{key}")
    if any(not v.strip() for v in value):
        raise PolicyError("must not hold empty strings", source=source, key=f"{where}.{key}")
    return tuple(value)


def _text(entry: Mapping[str, Any], key: str, source: str, where: str) -> str:
    value = entry.get(key, "")
    if not isinstance(value, str):
        raise PolicyError("must be a string", source=source, key=f"{where}.{key}")
    return value


def _identity(entry: Any, source: str, n: int) -> CAIdentity:
    where = f"ca[{n}]"
    if not isinstance(entry, Mapping):
        raise PolicyError("must be a table", source=source, key=where)
    unknown = sorted(map(repr, set(entry) - _KEYS))
    if unknown:
        raise PolicyError(
            f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}",
            source=source,
            key=where,
        )
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PolicyError("needs a name", source=source, key=f"{where}.name")
    caa = _strings(entry, "caa", source, where)
    if not caa:
        raise PolicyError(
            "needs at least one issuer domain name", source=source, key=f"{where}.caa"
        )
    for i, domain in enumerate(caa):
        if not is_issuer_domain_name(domain):
            raise PolicyError(
                f"{domain!r} is not an issuer domain name (RFC 8659 §4.2: letters, digits "
                "and hyphens in dot-separated labels, no trailing dot)",
                source=source,
                key=f"{where}.caa[{i}]",
            )
    pins: list[Pin] = []
    for i, text in enumerate(_strings(entry, "pins", source, where)):
        try:
            pins.append(Pin.parse(text))
        except PinFormatError as exc:
            raise PolicyError(str(exc), source=source, key=f"{where}.pins[{i}]") from None
    return CAIdentity(
        name=name.strip(),
        caa=tuple(d.lower() for d in caa),
        organizations=_strings(entry, "organizations", source, where),
        common_name_prefixes=_strings(entry, "common_name_prefixes", source, where),
        pins=tuple(pins),
        note=_text(entry, "note", source, where),
        source=_text(entry, "source", source, where),
    )


def parse_identities(text: str, *, source: str = "<toml>") -> tuple[CAIdentity, ...]:
    """The ``[[ca]]`` entries of a TOML document, in order.

    Raises :class:`~pinwarden.errors.PolicyError` naming ``source`` and the offending key
    for anything malformed: not TOML, an unknown key, a missing name or issuer domain
    name, an invalid issuer domain name or pin, two entries with the same name."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"not valid TOML: {exc}", source=source) from None
    except (ValueError, RecursionError) as exc:
        # Deep nesting or an integer past Python's digit limit.
        raise PolicyError(f"not a readable TOML document: {exc}", source=source) from None
    unknown = sorted(map(repr, set(data) - {"ca"}))
    if unknown:
        raise PolicyError(
            f"unknown top-level key(s) {', '.join(unknown)}; entries go in [[ca]] tables",
            source=source,
        )
    entries = data.get("ca", [])
    if not isinstance(entries, list):
        raise PolicyError("[[ca]] entries expected", source=source, key="ca")
    found: dict[str, CAIdentity] = {}
    for n, entry in enumerate(entries):
        identity = _identity(entry, source, n)
        key = _fold(identity.name)
        if key in found:
            raise PolicyError(
                f"a second entry named {identity.name!r}", source=source, key=f"ca[{n}].name"
            )
        found[key] = identity
    return tuple(found.values())


@functools.lru_cache(maxsize=1)
def _bundled() -> tuple[CAIdentity, ...]:
    text = resources.files("pinwarden.caa").joinpath("data/ca_identities.toml").read_text("utf-8")
    return parse_identities(text, source=BUNDLED_SOURCE)


def load_identities(extra: Path | str | None = None) -> tuple[CAIdentity, ...]:
    """The bundled table, with the entries of the TOML file ``extra`` (same shape) added
    at the end or replacing bundled entries of the same name (compared case-insensitively)
    in place."""
    table = list(_bundled())
    if extra is None:
        return tuple(table)
    path = Path(extra)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(
            f"cannot read CA identities file: {exc.strerror or exc}", source=str(path)
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"not UTF-8 text (byte {exc.start})", source=str(path)) from None
    position = {_fold(identity.name): i for i, identity in enumerate(table)}
    for identity in parse_identities(text, source=str(path)):
        i = position.get(_fold(identity.name))
        if i is None:
            position[_fold(identity.name)] = len(table)
            table.append(identity)
        else:
            table[i] = identity
    return tuple(table)


def _name_of(issuer: x509.Certificate | x509.Name | str) -> x509.Name | None:
    if isinstance(issuer, x509.Certificate):
        return issuer.issuer
    if isinstance(issuer, x509.Name):
        return issuer
    if not issuer.strip():
        return None
    try:
        # cryptography's RFC 4514 reader: the inverse of the rfc4514_string() that
        # CertInfo.issuer holds.
        return x509.Name.from_rfc4514_string(issuer)
    except ValueError as exc:
        raise CertificateError(f"issuer {issuer!r} is not an RFC 4514 name: {exc}") from None


def _attributes(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [a.value for a in name.get_attributes_for_oid(oid) if isinstance(a.value, str)]


def identify_issuer(
    issuer: x509.Certificate | x509.Name | str,
    *,
    chain: Iterable[x509.Certificate | bytes] = (),
    identities: Sequence[CAIdentity] | None = None,
) -> CAIdentity | None:
    """The CA that issued a certificate, or None when the table does not know it.

    ``issuer`` is the certificate itself (its issuer name is used), the issuer name, or
    that name as an RFC 4514 string (``CertInfo.issuer``). ``chain`` (certificates or
    DER) are the certificates served above it: an SPKI pin of a known intermediate among
    them identifies the CA first. Then the issuer organisation (O=) is compared exactly,
    case-insensitively; then issuer common-name (CN=) prefixes. In each step the first
    entry of the table wins.

    The name steps take the issuer at its word: any CA can put "O=Let's Encrypt" in its
    intermediate. They identify a CA only where the chain was verified to a trusted root
    (``caa audit``, a live TLS connection); the CT monitor, which judges certificates
    anyone can log, treats a name match as a claim (:func:`pinwarden.ct.verdicts.check_issuer`).

    Raises :class:`~pinwarden.errors.CertificateError` for a string that is not an RFC
    4514 name."""
    table = tuple(identities) if identities is not None else load_identities()
    for cert in chain:
        try:
            pin = Pin.from_certificate(cert)
        except CertificateError:
            continue  # an unreadable extra certificate identifies nobody
        for identity in table:
            if pin in identity.pins:
                return identity
    name = _name_of(issuer)
    if name is None:
        return None
    organizations = {_fold(o) for o in _attributes(name, NameOID.ORGANIZATION_NAME)}
    for identity in table:
        if any(_fold(o) in organizations for o in identity.organizations):
            return identity
    common_names = [_fold(cn) for cn in _attributes(name, NameOID.COMMON_NAME)]
    for identity in table:
        prefixes = [_fold(p) for p in identity.common_name_prefixes]
        if any(cn.startswith(p) for cn in common_names for p in prefixes):
            return identity
    return None


def identity_for_domain(
    domain: str, *, identities: Sequence[CAIdentity] | None = None
) -> CAIdentity | None:
    """The CA that an issuer domain name stands for: the first entry that publishes it as
    its preferred name, else the first that recognises it; None when unknown."""
    table = tuple(identities) if identities is not None else load_identities()
    folded = domain.strip().lower().rstrip(".")
    for identity in table:
        if identity.preferred == folded:
            return identity
    for identity in table:
        if identity.recognises(folded):
            return identity
    return None


def issuer_domain_for(text: str, *, identities: Sequence[CAIdentity] | None = None) -> str:
    """The issuer domain name meant by ``text``: a CA's name from the table ("Let's
    Encrypt", case-insensitively) gives its preferred domain; otherwise ``text`` must
    itself be an issuer domain name, returned in lower case.

    Raises :class:`~pinwarden.errors.PolicyError` when it is neither."""
    table = tuple(identities) if identities is not None else load_identities()
    wanted = _fold(text)
    for identity in table:
        if _fold(identity.name) == wanted:
            return identity.preferred
    candidate = text.strip().removesuffix(".")
    if is_issuer_domain_name(candidate):
        return candidate.lower()
    known = ", ".join(identity.name for identity in table)
    raise PolicyError(
        f"{text!r} is neither an issuer domain name (such as letsencrypt.org) nor a CA "
        f"pinwarden knows ({known})"
    )
