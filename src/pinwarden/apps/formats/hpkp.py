"""``hpkp``: HTTP Public Key Pinning headers (RFC 7469), one per rule, each after a
``# hosts: a.example.com, b.example.com`` comment naming where it applies (a header
carries no host names).

Browsers removed HPKP (Chrome 72, Firefox 72): this format documents pins, it does not
enforce them anywhere. ``max-age`` is relative, so it is computed from the export time
and read back relative to the import time. ``includeSubDomains`` is pinwarden's ``**.``;
a rule with both plain and ``**.`` hosts gets one header of each. HPKP has no ``*.``
wildcard, no ``exclude``, no SHA-1 and no IP-address hosts, and browsers ignored a header
without a backup pin.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from pinwarden.apps.formats import Exported, ExportOptions
from pinwarden.apps.formats._common import (
    Abilities,
    Domain,
    Entry,
    Imported,
    build_policy,
    check_size,
    decode_sha256,
    domains_of,
    fail,
    name_notes,
    rule_label,
    sha256_pins,
    unsupported,
    utc,
)
from pinwarden.errors import InputError
from pinwarden.policy import Mode, Policy

__all__ = ["DEFAULT_MAX_AGE", "FORMAT", "HpkpFormat"]

DEFAULT_MAX_AGE = 5_184_000
"""60 days: the order of magnitude RFC 7469 §4.1 suggests, used for rules without expiry."""
_CAN = Abilities("HPKP", expiry=True, report_only=True, report_uri=True)
_OBSOLETE = (
    "browsers removed HPKP (Chrome 72, Firefox 72): these headers only document the pins; "
    "no browser enforces them"
)
_HEADER = re.compile(r"(public-key-pins(?:-report-only)?)\s*:(.*)", re.IGNORECASE | re.DOTALL)
_HOSTS = re.compile(r"#\s*hosts\s*:(.*)", re.IGNORECASE | re.DOTALL)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SECONDS = re.compile(r"[0-9]{1,11}")
_MAX_AGE_LIMIT = 10**10  # ~317 years: past any real pin's life, within datetime's range


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _max_age(
    expires_at: dt.datetime | None, now: dt.datetime, label: str
) -> tuple[int, str | None]:
    if expires_at is None:
        return DEFAULT_MAX_AGE, (
            f"{label}: no expiry, but HPKP needs max-age; 60 days ({DEFAULT_MAX_AGE} s) assumed"
        )
    seconds = int((utc(expires_at) - utc(now)).total_seconds())
    if seconds <= 0:
        return 0, (
            f"{label}: expired at {utc(expires_at).isoformat()}, before the export; "
            "max-age=0 tells a browser to forget the pins"
        )
    return seconds, None


def _render(policy: Policy, domains: list[Domain], now: dt.datetime, losses: list[str]) -> str:
    blocks: dict[tuple[int, bool], list[str]] = {}
    for domain in domains:
        blocks.setdefault((domain.index, domain.subtree), []).append(domain.name)
    lines = [
        "# HTTP Public Key Pinning (RFC 7469) headers written by pinwarden.",
        "# Browsers removed HPKP (Chrome 72, Firefox 72): these lines only document the pins.",
    ]
    warned: set[int] = set()
    for (index, subtree), names in blocks.items():
        rule = policy.rules[index]
        label = rule_label(index, rule)
        pins = sha256_pins(rule)
        max_age, loss = _max_age(rule.expires_at, now, label)
        if index not in warned:
            warned.add(index)
            if loss:
                losses.append(loss)
            if len(pins) < 2:
                losses.append(
                    f"{label}: one SHA-256 pin: browsers ignored an HPKP header without a "
                    "backup pin"
                )
        directives = [p.hpkp for p in pins] + [f"max-age={max_age}"]
        if subtree:
            directives.append("includeSubDomains")
        if rule.report_uri:
            directives.append(f"report-uri={_quote(rule.report_uri)}")
        header = (
            "Public-Key-Pins-Report-Only" if rule.mode is Mode.REPORT_ONLY else "Public-Key-Pins"
        )
        lines += ["", f"# hosts: {', '.join(names)}", f"{header}: {'; '.join(directives)}"]
    return "\n".join(lines) + "\n"


# -- reading ---------------------------------------------------------------------------
# RFC 7469 §2.1 directives, read by hand: the grammar is a few lines, and Python's
# http.cookies / email header parsers do not read it.


def _directives(text: str, source: str, where: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos >= len(text):
            return out
        if text[pos] == ";":
            pos += 1
            continue
        name = _TOKEN.match(text, pos)
        if name is None:
            raise fail(source, where, f"cannot read a directive at {text[pos : pos + 20]!r}")
        pos = name.end()
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        value: str | None = None
        if pos < len(text) and text[pos] == "=":
            pos += 1
            while pos < len(text) and text[pos] in " \t":
                pos += 1
            if pos < len(text) and text[pos] == '"':
                chars: list[str] = []
                pos += 1
                while pos < len(text) and text[pos] != '"':
                    if text[pos] == "\\" and pos + 1 < len(text):
                        pos += 1
                    chars.append(text[pos])
                    pos += 1
                if pos >= len(text):
                    raise fail(source, where, f"unterminated quoted value of {name.group()}")
                pos += 1
                value = "".join(chars)
            else:
                token = _TOKEN.match(text, pos)
                if token is None:
                    raise fail(source, where, f"{name.group()}= has no value")
                value = token.group()
                pos = token.end()
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos < len(text) and text[pos] != ";":
            raise fail(source, where, f"expected ';' after {name.group()}, found {text[pos]!r}")
        out.append((name.group(), value))


def _header(
    name: str, text: str, hosts: list[str], now: dt.datetime, source: str, where: str
) -> list[Entry]:
    pins = []
    seen: dict[str, str | None] = {}
    for directive, value in _directives(text, source, where):
        key = directive.lower()
        if key.startswith("pin-"):
            if key != "pin-sha256":
                raise fail(source, where, f"{directive}: RFC 7469 defines pin-sha256 only")
            if value is None:
                raise fail(source, where, "pin-sha256 has no value")
            pins.append(decode_sha256(value, source, f"{where}: pin-sha256"))
            continue
        if key in seen:
            raise fail(source, where, f"{directive} is given twice")
        seen[key] = value
    # RFC 7469 has browsers skip unknown directives; refusing them catches typos such as
    # "includeSubdomain", which would otherwise silently unpin the subdomains.
    unknown = sorted(set(seen) - {"max-age", "includesubdomains", "report-uri"})
    if unknown:
        raise fail(source, where, f"unknown directive(s) {', '.join(unknown)}")
    if not pins:
        raise fail(source, where, "no pin-sha256 directive")
    if "max-age" not in seen:
        raise fail(source, where, "max-age=<seconds> is required")
    max_age = seen["max-age"]
    # ASCII digits only: str.isdigit() also takes "²" (int() then raises) and "٣"
    # (int() reads 3), neither of which RFC 7469's delta-seconds allows.
    if max_age is None:
        raise fail(source, where, "max-age has no value; max-age=<seconds> is required")
    if _SECONDS.fullmatch(max_age) is None:
        raise fail(
            source,
            where,
            f"max-age={max_age[:20]!r} is not a number of seconds (up to 11 digits 0-9)",
        )
    seconds = int(max_age)
    if seconds > _MAX_AGE_LIMIT:
        raise fail(source, where, f"max-age={seconds} is beyond any real pin's life")
    if "includesubdomains" in seen and seen["includesubdomains"] is not None:
        raise fail(source, where, "includeSubDomains takes no value")
    report_uri = seen.get("report-uri")
    if "report-uri" in seen and report_uri is None:
        raise fail(source, where, "report-uri has no value")
    mode = Mode.REPORT_ONLY if name.lower().endswith("report-only") else Mode.ENFORCE
    expires_at = now + dt.timedelta(seconds=seconds)
    subtree = "includesubdomains" in seen
    entries = []
    for host in hosts:
        if "*" in host:
            raise fail(source, where, f"{host!r}: HPKP has no wildcards; use includeSubDomains")
        entries.append(
            Entry(
                host,
                "subtree" if subtree else "exact",
                tuple(pins),
                where,
                expires_at,
                mode,
                report_uri,
            )
        )
    return entries


class HpkpFormat:
    """RFC 7469 headers. ``clock`` gives "now" for reading ``max-age`` back (tests
    pass a fixed one)."""

    name = "hpkp"
    summary = "HPKP Public-Key-Pins headers (RFC 7469), each after a '# hosts:' comment"
    suffix = ".txt"
    importable = True

    def __init__(self, clock: Callable[[], dt.datetime] | None = None) -> None:
        self._clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))

    def export(self, policy: Policy, options: ExportOptions) -> Exported:
        if options.now is None:
            raise InputError("the hpkp format needs the current time (ExportOptions.now)")
        losses: list[str] = []
        for index, rule in enumerate(policy.rules):
            losses.extend(unsupported(index, rule, _CAN))
        domains = domains_of(policy, "HPKP", losses, ip_ok=False)
        text = _render(policy, domains, options.now, losses)
        notes = [_OBSOLETE]
        notes.extend(name_notes(policy, "HPKP"))
        if any(rule.expires_at is not None for rule in policy.rules):
            notes.append(
                f"max-age counts from now ({utc(options.now).isoformat(timespec='seconds')}): "
                "the expiry moves with the time the header is served"
            )
        return Exported(text, tuple(losses), tuple(notes))

    def read(self, data: bytes, source: str) -> Imported:
        check_size(data, source)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise fail(source, None, f"not UTF-8 text (byte {exc.start})") from None
        now = utc(self._clock())
        entries: list[Entry] = []
        hosts: list[str] | None = None
        hosts_line = 0
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            where = f"line {number}"
            if not line:
                continue
            if line.startswith("#"):
                match = _HOSTS.fullmatch(line)
                if match is None:
                    continue
                if hosts is not None:
                    raise fail(
                        source, where, f"the hosts comment of line {hosts_line} has no header"
                    )
                hosts = [h.strip() for h in match.group(1).split(",") if h.strip()]
                if not hosts:
                    raise fail(source, where, "empty hosts comment")
                hosts_line = number
                continue
            header = _HEADER.fullmatch(line)
            if header is None:
                raise fail(
                    source, where, "expected a '# hosts: ...' comment or a Public-Key-Pins header"
                )
            if hosts is None:
                raise fail(
                    source,
                    where,
                    "a header carries no host names: put '# hosts: name, ...' on the line before",
                )
            entries += _header(header.group(1), header.group(2), hosts, now, source, where)
            hosts = None
        if hosts is not None:
            raise fail(source, f"line {hosts_line}", "the hosts comment has no header after it")
        imported = build_policy(entries, source)
        note = (
            f"max-age read relative to now ({now.isoformat(timespec='seconds')}): the expiries "
            "are when those max-ages would end if the headers were seen today"
        )
        return Imported(imported.policy, (note, *imported.notes))

    def parse(self, data: bytes, source: str) -> Policy:
        return self.read(data, source).policy


FORMAT = HpkpFormat()
