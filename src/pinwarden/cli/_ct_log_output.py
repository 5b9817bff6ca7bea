"""What ``pinwarden ct log`` prints: a log, its signed tree head and its entries, for
people (rich text) and as the documented JSON objects, and the evidence of a log's
misbehaviour. Separate from :mod:`pinwarden.cli.ct_log` so that the commands read as
what they fetch and check, and the output as what the user sees."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from pinwarden.cli._output import emit_json, err, out, printable
from pinwarden.ct.entries import LogEntry
from pinwarden.ct.logs import Log
from pinwarden.ct.treehead import SignedTreeHead, log_name
from pinwarden.errors import LogMisbehaviourError

__all__ = [
    "entry_json",
    "log_json",
    "show_entry",
    "show_head",
    "show_misbehaviour",
    "shown",
    "verify_progress",
]


def log_json(log: Log) -> dict[str, Any]:
    return {
        "description": log.description,
        "operator": log.operator,
        "log_id": log.log_id_b64,
        "api": "static-ct-api" if log.tiled else "rfc6962",
        "url": log.base_url,
    }


def show_misbehaviour(log: Log, exc: LogMisbehaviourError, json_: bool) -> None:
    message = str(exc)
    if json_:
        emit_json(
            {
                "log": log_json(log),
                "verified": False,
                "misbehaviour": {"kind": exc.kind, "message": message, "evidence": exc.evidence},
            }
        )
        return
    console = out()
    console.print(f"[red bold]MISBEHAVIOUR[/red bold] ({exc.kind}): {shown(message)}")
    if exc.evidence:
        console.print("[bold]Evidence[/bold] (what the log served):")
        for line in json.dumps(exc.evidence, indent=2, ensure_ascii=False).splitlines():
            console.print(shown(line))


def shown(text: str) -> str:
    """Outside text (log lists, certificates, log answers) safe for rich and the terminal."""
    return escape(printable(text))


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return "unknown"
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def show_head(log: Log, head: SignedTreeHead, now: dt.datetime) -> None:
    console = out()
    api = "static-ct-api" if log.tiled else "RFC 6962"
    console.print(f"[bold]{shown(log_name(log))}[/bold]  ({shown(log.operator)}, {api})")
    console.print(f"  url         {shown(log.base_url or '')}")
    console.print(f"  tree size   {head.tree_size}")
    age = now - head.timestamp
    console.print(f"  timestamp   {_when(head.timestamp)} ({_age(age)})")
    console.print(f"  root hash   {base64.b64encode(head.root_hash).decode()}")
    console.print(f"              {head.root_hash.hex()}")
    if head.origin is not None:
        console.print(f"  origin      {shown(head.origin)}")
    console.print(f"  signature   [green]verified[/green] with the key of log ID {log.log_id_b64}")


def _age(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return f"{-seconds} s in the future"
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def entry_json(entry: LogEntry) -> dict[str, Any]:
    """One log entry as the documented JSON object (docs/json.md, "CT log entry")."""
    pin = entry.spki_pin
    serial = entry.serial
    return {
        "index": entry.index,
        "timestamp": entry.timestamp_ms,
        "timestamp_iso": _when(entry.timestamp),
        "entry_type": "precert_entry" if entry.is_precert else "x509_entry",
        "leaf_hash": base64.b64encode(entry.leaf_hash).decode(),
        "dns_names": list(entry.dns_names),
        "unicode_names": list(entry.unicode_names),
        "issuer": entry.issuer,
        "serial": None if serial is None else format(serial, "x"),
        "not_before": _when(entry.not_before) if entry.not_before else None,
        "not_after": _when(entry.not_after) if entry.not_after else None,
        "tbs_sha256": entry.tbs_hash.hex(),
        "spki_pin": None if pin is None else str(pin),
        "issuer_key_hash": None if entry.issuer_key_hash is None else entry.issuer_key_hash.hex(),
        "chain_fingerprints": [f.hex() for f in entry.chain_fingerprints],
        "tbs": base64.b64encode(entry.tbs_der).decode(),
        "certificate": (
            None
            if entry.certificate_der is None
            else base64.b64encode(entry.certificate_der).decode()
        ),
        "error": entry.error,
    }


_UNAUTHENTICATED = "[yellow]unauthenticated (extra_data)[/yellow]"


def show_entry(entry: LogEntry) -> None:
    console = out()
    kind = "precertificate" if entry.is_precert else "certificate"
    console.print(f"[bold]#{entry.index}[/bold]  {_when(entry.timestamp)}  {kind}")
    pad = "    "
    if entry.error is not None:
        console.print(f"{pad}[red]unreadable certificate[/red]: {shown(entry.error)}")
    names = ", ".join(
        name if name == uname else f"{name} ({uname})"
        for name, uname in zip(entry.dns_names, entry.unicode_names, strict=False)
    )
    console.print(f"{pad}names       {shown(names) or '[dim]none[/dim]'}")
    if entry.issuer is not None:
        console.print(f"{pad}issuer      {shown(entry.issuer)}")
    if entry.serial is not None:
        console.print(f"{pad}serial      {entry.serial:x}")
    if entry.not_before is not None and entry.not_after is not None:
        console.print(f"{pad}validity    {_when(entry.not_before)} → {_when(entry.not_after)}")
    if entry.spki_pin is not None:
        console.print(f"{pad}pin         {entry.spki_pin}")
    console.print(f"{pad}tbs sha256  {entry.tbs_hash.hex()}")
    console.print(f"{pad}leaf hash   {base64.b64encode(entry.leaf_hash).decode()}")
    # What follows came beside the leaf (get-entries extra_data, the rest of a TileLeaf):
    # the leaf hash does not cover it, so it is shown as the log's unchecked word.
    if entry.is_precert and entry.certificate_der is not None:
        digest = hashlib.sha256(entry.certificate_der).hexdigest()
        console.print(f"{pad}pre-cert    sha256 {digest}  {_UNAUTHENTICATED}")
    if entry.chain_fingerprints:
        count = len(entry.chain_fingerprints)
        console.print(f"{pad}chain       {count} certificate(s)  {_UNAUTHENTICATED}")
        for fingerprint in entry.chain_fingerprints:
            console.print(f"{pad}            sha256 {fingerprint.hex()}")


def verify_progress(total: int) -> Progress:
    return Progress(
        TextColumn("verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err(),
        transient=True,
        disable=not err().is_terminal or total == 0,
    )
