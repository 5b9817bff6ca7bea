"""``pinwarden demo``: the article's story, run for real on the loopback interface.

Everything is built on the spot with the test kit: a CA, a server, clients with
different pin sets. Nothing leaves this machine.
"""

from __future__ import annotations

import datetime as dt
import http.client
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import typer
from rich.console import Console
from rich.markup import escape

from pinwarden.apps.simulate import Status, Target, build_verified_chain, simulate
from pinwarden.cli._app import app
from pinwarden.cli._output import out
from pinwarden.cli.demo_ct import ct_step
from pinwarden.cli.inspect import show_probe
from pinwarden.errors import PinValidationError
from pinwarden.pins import Pin
from pinwarden.policy import Policy
from pinwarden.probe import probe
from pinwarden.testing import CA, TLSServer, generate_key, loopback_names
from pinwarden.tls import create_context

HOST = "api.demo.test"


@dataclass
class _Scorecard:
    console: Console
    failures: int = 0

    def expect(self, what: str, ok: bool, detail: str = "") -> None:
        mark = "[green]✔[/green]" if ok else "[red]✘ UNEXPECTED[/red]"
        self.console.print(f"  {mark} {what}")
        if detail:
            for line in detail.splitlines():
                self.console.print(f"      [dim]{escape(line)}[/dim]")
        if not ok:
            self.failures += 1


def _get(context_factory: Callable[[], ssl.SSLContext], port: int) -> tuple[bool, str]:
    """One HTTPS GET to HOST through http.client; (succeeded, status or error)."""
    context = context_factory()
    conn = http.client.HTTPSConnection(HOST, port, context=context, timeout=10)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        return True, f"HTTP {response.status} {response.reason}"
    except PinValidationError as exc:
        return False, exc.verify_message
    except OSError as exc:
        return False, str(exc)
    finally:
        conn.close()


def _policy(*pins: Pin, single: bool = False) -> Policy:
    rule: dict[str, object] = {"hosts": [HOST], "pins": [str(p) for p in pins]}
    if single:
        rule["allow_single_pin"] = True
    return Policy.from_dict({"pin": [rule]}, source="<demo>")


@app.command("demo")
def demo_command() -> None:
    """Offline walk-through of pinning: inspect, pin, rotate, block a MITM.

    Runs on 127.0.0.1 with a throw-away CA: inspects a server, makes pinned requests,
    rotates the server's key and intermediate (simulated first; an app pinned to the
    leaf is locked out, one with a backup pin keeps working), and blocks a
    man-in-the-middle whose CA the client trusts; then audits a certificate's SCTs and runs a
    CT monitor that finds the rogue certificate in a local log. Exit 0 when every step
    behaved as expected.
    """
    console = out()
    card = _Scorecard(console)
    now = dt.datetime.now(dt.timezone.utc)

    console.rule("[bold]pinwarden demo[/bold] — certificate pinning, live on 127.0.0.1")
    console.print(
        "A public CA issues [bold]api.demo.test[/bold] a certificate through an intermediate.\n"
        "The operator also made a [bold]backup key[/bold] and keeps it offline: its pin is "
        "shipped in the app before the key is ever used."
    )
    root = CA("Demo Root CA")
    issuing1 = root.intermediate("Demo Issuing CA 1")
    leaf1 = issuing1.issue(HOST)
    backup_key = generate_key()
    backup_pin = Pin.from_public_key(backup_key.public_key())
    trust = root.cert_pem.decode()

    with loopback_names([HOST]), TLSServer(leaf1) as server:
        console.rule("1. inspect: what the server sends and what OpenSSL verifies")
        result = probe(HOST, server.port, cadata=trust)
        show_probe(result, now)
        console.print(f"\nBackup key (offline, in no chain yet): [green]{backup_pin}[/green]\n")

        console.rule("2. a pinned request")
        app_b = _policy(issuing1.pin, backup_pin)
        app_a = _policy(leaf1.pin, single=True)
        console.print(
            "App A pinned only the leaf key (pinwarden refuses a single pin unless told "
            "allow_single_pin — this app insisted).\n"
            "App B pinned the intermediate [bold]and[/bold] the backup key."
        )
        ok, detail = _get(
            lambda: create_context(app_a, cadata=trust, send_reports=False), server.port
        )
        card.expect(f"App A connects: {detail}", ok)
        ok, detail = _get(
            lambda: create_context(app_b, cadata=trust, send_reports=False), server.port
        )
        card.expect(f"App B connects: {detail}", ok)

        console.rule("3. rotation gone wrong")
        console.print(
            "The leaf key leaks, so the operator rotates to the backup key; the CA re-issues "
            "the certificate from a [bold]new intermediate[/bold] (CAs change them without notice)."
        )
        issuing2 = root.intermediate("Demo Issuing CA 2")
        rotated = issuing2.issue(HOST, key=backup_key)
        console.print(
            "\nBefore deploying, the operator runs [bold]pinwarden simulate[/bold]: would each "
            "shipped app version accept the new chain?"
        )
        chain, problem = build_verified_chain([rotated.cert, issuing2.cert], HOST, [root.cert], now)
        cells = simulate(
            [("App A", app_a), ("App B", app_b)], [Target(HOST, chain, problem)], now=now
        )
        status = {cell.version: cell.status for cell in cells}
        card.expect(
            "simulate: App A would be locked out, App B passes — "
            f"{', '.join(f'{v}: {s.value}' for v, s in status.items())}",
            status == {"App A": Status.LOCKED_OUT, "App B": Status.PASSES},
        )
        console.print("The operator deploys anyway (App A's users were warned, in theory).")
        server.serve(rotated)
        ok, detail = _get(
            lambda: create_context(app_a, cadata=trust, send_reports=False), server.port
        )
        card.expect(
            "App A is locked out: its only pin is gone — every installed copy fails, "
            "even to download an update",
            not ok,
            detail,
        )
        ok, detail = _get(
            lambda: create_context(app_b, cadata=trust, send_reports=False), server.port
        )
        card.expect(f"App B keeps working: the backup pin matches the new leaf ({detail})", ok)
        console.print(
            "  Pinning the intermediate alone would have failed too: the CA switched "
            "intermediates. Always ship a backup pin that is not in the current chain."
        )

        console.rule("4. man-in-the-middle with a CA the client trusts")
        console.print(
            "A corporate proxy, malware or a mis-issuing CA puts its own root in the "
            "client's trust store and serves a valid-looking certificate for api.demo.test."
        )
        rogue = CA("Rogue Interception CA")
        server.serve(rogue.intermediate("Rogue Issuing CA").issue(HOST))
        both = trust + rogue.cert_pem.decode()
        plain = rogue.client_context()
        plain.load_verify_locations(cadata=trust)
        ok, detail = _get(lambda: plain, server.port)
        card.expect(
            f"A client without pins accepts it: {detail} — the attacker reads everything", ok
        )
        ok, detail = _get(
            lambda: create_context(app_b, cadata=both, send_reports=False), server.port
        )
        card.expect("App B blocks it: CA validation passed, the pins did not", not ok, detail)

        rogue_leaf = rogue.intermediate("Rogue Issuing CA 2").issue(HOST)
        ct_step(console, card.expect, issuing2, HOST, (backup_pin,), rogue_leaf, now)

    console.rule()
    if card.failures:
        console.print(f"[red]{card.failures} step(s) did not behave as expected.[/red]")
        raise typer.Exit(1)
    console.print(
        "Every step behaved as expected. Next: [bold]pinwarden inspect HOST[/bold] on your "
        "own server, [bold]pinwarden keygen[/bold] and [bold]pinwarden recommend HOST[/bold] "
        "for a pin set, [bold]pinwarden lint[/bold] and [bold]simulate[/bold] before you "
        "ship it, [bold]pinwarden ct monitor[/bold] for your domains, and README.md."
    )
