"""An alert and its text: :class:`AlertEvent`, its one-line summary, the environment a
hook receives, and :func:`clean`, which makes what a certificate carries safe to show.

Separate from :mod:`pinwarden.ct.alerts` so that what an alert says stands apart from
the channels that deliver it; :mod:`pinwarden.ct.alerts` re-exports the public names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

EVENT_DISCOVERED = "discovered"
EVENT_MISBEHAVIOUR = "log-misbehaviour"
EVENT_STALLED = "log-stalled"


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def clean(text: object) -> str:
    """``text`` on one line, each character that is not printable replaced by its
    ``\\x..`` / ``\\u....`` / ``\\U........`` escape: safe for a terminal, an environment
    variable or an e-mail header. Not printable (``str.isprintable``) covers what a hostile
    certificate could put in an issuer or a name to drive a terminal, split a line or a
    header, reorder what is shown, or crash an encoder: control characters, line and
    paragraph separators, bidi and other format characters, lone surrogates."""
    value = str(text)
    if value.isprintable():
        return value  # the common case, at C speed
    return "".join(c if c.isprintable() else _escape(c) for c in value)


@dataclass(frozen=True)
class AlertEvent:
    """One alert: ``kind`` is ``discovered``, ``log-misbehaviour`` or ``log-stalled``;
    ``payload`` the JSON-ready details (docs/json.md, "ct monitor alerts")."""

    id: int
    kind: str
    payload: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        # id and event are the alert's own: a payload cannot override them.
        return {**self.payload, "id": self.id, "event": self.kind}


def summary_line(event: AlertEvent) -> str:
    """One human sentence for an alert (stdout, Slack text, e-mail subject), with every
    control character escaped: its parts come from certificates anyone can log."""
    return clean(_summary(event))


def _summary(event: AlertEvent) -> str:
    p = event.payload
    if event.kind == EVENT_DISCOVERED:
        names = ", ".join(str(n) for n in p.get("names", [])[:5]) or "(no names)"
        more = len(p.get("names", [])) - 5
        if more > 0:
            names += f" (+{more} more)"
        reasons = "; ".join(p.get("reasons", []))
        tail = f": {reasons}" if reasons else ""
        return (
            f"{str(p.get('verdict', '?')).upper()} certificate for {names} "
            f"from {p.get('issuer', '?')} (watch {p.get('watch_item', '?')}){tail}"
        )
    if event.kind == EVENT_MISBEHAVIOUR:
        return (
            f"CT log {p.get('log', '?')} misbehaved ({p.get('kind', '?')}): {p.get('message', '')}"
        )
    if event.kind == EVENT_STALLED:
        return f"CT log {p.get('log', '?')} stalled: {p.get('message', '')}"
    return f"{event.kind}: {json.dumps(dict(p), sort_keys=True)}"


def hook_environment(event: AlertEvent) -> dict[str, str]:
    """The variables a hook receives, beside the monitor's own environment."""
    p = event.payload
    env = {"EVENT": event.kind, "ALERT_ID": str(event.id), "SUMMARY": summary_line(event)}
    simple = {
        "WATCH_ITEM": "watch_item",
        "ISSUER_DN": "issuer",
        "SERIAL": "serial",
        "NOT_BEFORE": "not_before",
        "NOT_AFTER": "not_after",
        "TBS_SHA256": "tbs_sha256",
        "CERT_SHA256": "cert_sha256",
        "PUBKEY_SHA256": "pubkey_sha256",
        "SPKI_PIN": "spki_pin",
        "VERDICT": "verdict",
        "CERT_FILENAME": "cert_file",
        "JSON_FILENAME": "json_file",
        "LOG": "log",
        "KIND": "kind",
        "MESSAGE": "message",
    }
    for variable, key in simple.items():
        value = p.get(key)
        if value is not None:
            env[variable] = str(value)
    if "names" in p:
        env["DNS_NAMES"] = ",".join(str(n) for n in p["names"])
    if "reasons" in p:
        env["REASONS"] = "; ".join(str(r) for r in p["reasons"])
    if "logs" in p:
        env["LOGS"] = ",".join(f"{entry['log']}#{entry['index']}" for entry in p["logs"])
    # A hook runs without a shell, but its values reach programs that print or parse them:
    # no control characters (a NUL cannot even be passed), one line each.
    return {key: clean(value) for key, value in env.items()}


# Every variable a hook may receive: removed from the inherited environment first, so a hook
# never sees a stale value from the monitor's own environment for a variable its event lacks.
HOOK_VARIABLES = frozenset(
    {
        "EVENT",
        "ALERT_ID",
        "SUMMARY",
        "WATCH_ITEM",
        "ISSUER_DN",
        "SERIAL",
        "NOT_BEFORE",
        "NOT_AFTER",
        "TBS_SHA256",
        "CERT_SHA256",
        "PUBKEY_SHA256",
        "SPKI_PIN",
        "VERDICT",
        "CERT_FILENAME",
        "JSON_FILENAME",
        "LOG",
        "KIND",
        "MESSAGE",
        "DNS_NAMES",
        "REASONS",
        "LOGS",
    }
)
