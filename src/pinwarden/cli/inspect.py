"""``pinwarden inspect HOST[:PORT]``: the served and the verified chain of a server."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from pinwarden.cli._app import JSON_HELP, app
from pinwarden.cli._common import (
    CafileOption,
    ConnectOption,
    ServernameOption,
    TimeoutOption,
    check_timeout,
)
from pinwarden.cli._output import emit_json, out, render_chain
from pinwarden.probe import ProbeResult, parse_target, probe


def show_probe(result: ProbeResult, now: dt.datetime) -> None:
    """Human output of a probe (also used by the demo)."""
    console = out()
    via = f" via {result.address}" if result.address != result.host else ""
    console.print(
        f"[bold]{result.servername}[/bold] port {result.port}{via}: "
        f"{result.tls_version}, {result.cipher}"
    )
    if result.verified_chain is not None:
        console.print(
            f"\n[bold]Verified chain[/bold] ({len(result.verified_chain)} certificates, "
            "built by OpenSSL up to a trusted root — pins are checked against this one)"
        )
        render_chain(console, result.verified_chain, now)
    else:
        console.print(f"\n[red bold]NOT VERIFIED[/red bold]: {result.verification_error}")
    served = [c.der for c in result.served_chain]
    verified = [c.der for c in result.verified_chain or ()]
    if served and served == verified[: len(served)]:
        extra = len(verified) - len(served)
        console.print(
            f"\n[bold]Served chain[/bold]: the first {len(served)} certificates above"
            + (f"; the other {extra} came from the trust store" if extra else "")
            + "."
        )
        return
    console.print(
        f"\n[bold]Served chain[/bold] ({len(result.served_chain)} certificates, as the server "
        "sent them — untrusted, for diagnosis only)"
    )
    render_chain(console, result.served_chain, now)


@app.command("inspect")
def inspect_command(
    target: Annotated[str, typer.Argument(metavar="HOST[:PORT]", help="Server to connect to.")],
    servername: ServernameOption = None,
    connect: ConnectOption = None,
    cafile: CafileOption = None,
    timeout: TimeoutOption = 10.0,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show the chain a server sends and the chain OpenSSL verifies, with pins.

    Exit 0 when the chain verifies, 1 when it does not, 3 when no handshake completed.
    """
    host, port = parse_target(target)
    check_timeout(timeout)
    result = probe(
        host, port, servername=servername, connect=connect, cafile=cafile, timeout=timeout
    )
    now = dt.datetime.now(dt.timezone.utc)
    if json_:
        emit_json(result.to_json(now))
    else:
        show_probe(result, now)
    if not result.verified:
        raise typer.Exit(1)
