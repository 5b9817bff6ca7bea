"""Printing: human text on stdout through rich, JSON on stdout, messages on stderr."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape

from pinwarden.certs import CertInfo

__all__ = ["emit_json", "err", "out", "printable", "render_chain"]


def out() -> Console:
    """The stdout console (made per call so redirected or captured stdout is honoured)."""
    return Console(highlight=False, soft_wrap=True, emoji=False)


def err() -> Console:
    # emoji=False: ":x:" in a URN or a DNS record must print as written, not as an emoji.
    return Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def printable(text: str) -> str:
    """``text`` with control and format characters (terminal escapes, U+202E...) shown
    as escapes: outside data must not drive the terminal."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def emit_json(data: Any) -> None:
    """Print ``data`` as JSON. ASCII only: names from certificates and logs may hold control
    and bidi characters (U+009B, U+202E...) that must not reach a terminal raw; ``\\u``
    escapes keep the document the same to any JSON reader."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=True) + "\n")
    sys.stdout.flush()


def _validity(info: CertInfo, now: dt.datetime) -> str:
    if info.not_before is None or info.not_after is None:
        return "unknown"
    days = (info.not_after - now).days
    if days < 0:
        left = f"[red]EXPIRED {-days} days ago[/red]"
    elif now < info.not_before:
        left = "[red]not yet valid[/red]"
    else:
        left = f"{days} days left"
    return f"{info.not_before:%Y-%m-%d} → {info.not_after:%Y-%m-%d} ({left})"


def render_chain(
    console: Console, chain: Sequence[CertInfo], now: dt.datetime, indent: str = "  "
) -> None:
    """Print each certificate of a chain: position, subject, issuer, key, validity,
    SPKI pin and certificate fingerprint."""
    for i, info in enumerate(chain):
        console.print(f"{indent}[bold][{i}] {info.position}[/bold]  {escape(info.subject)}")
        pad = indent + "    "
        console.print(f"{pad}issuer       {escape(info.issuer)}")
        console.print(f"{pad}key          {info.key}")
        console.print(f"{pad}validity     {_validity(info, now)}")
        console.print(f"{pad}pin          [green]{info.pin or 'unreadable'}[/green]")
        console.print(f"{pad}fingerprint  sha256:{info.fingerprint_sha256}  (not a pin)")
