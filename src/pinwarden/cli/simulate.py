"""``pinwarden simulate``: would every shipped pin set accept a chain?"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from rich.markup import escape
from rich.table import Table

from pinwarden.apps.lint import Evidence, lint_policy
from pinwarden.apps.live import Endpoint
from pinwarden.apps.simulate import (
    Cell,
    Status,
    Target,
    build_verified_chain,
    names_for_chain,
    simulate,
)
from pinwarden.apps.trust import load_trust_store
from pinwarden.certs import CertInfo, load_objects
from pinwarden.cli._app import JSON_HELP, app
from pinwarden.cli._common import parse_when, probe_with_progress
from pinwarden.cli._output import emit_json, err, out
from pinwarden.cli.pin import _read
from pinwarden.errors import CertificateError, InputError
from pinwarden.hosts import normalize_host
from pinwarden.policy import Policy
from pinwarden.probe import parse_target

_STYLE = {
    Status.PASSES: "green",
    Status.LOCKED_OUT: "red bold",
    Status.INVALID_CHAIN: "red bold",
    Status.REPORTED: "yellow",
    Status.FAILS_OPEN: "yellow",
    Status.NOT_PINNED: "dim",
    Status.UNKNOWN: "magenta",
}


def _versions(specs: list[str]) -> list[tuple[str, Policy]]:
    versions: list[tuple[str, Policy]] = []
    for spec in specs:
        label, eq, path = spec.partition("=")
        if not eq or not label or "/" in label:
            label, path = Path(spec).stem, spec
        if any(label == seen for seen, _ in versions):
            raise InputError(f"--policy: two versions are called {label!r}; name them: v1=FILE")
        versions.append((label, Policy.load(path)))
    return versions


def _pinned_hosts(policies: list[Policy]) -> list[str]:
    return list(
        dict.fromkeys(
            p.base
            for policy in policies
            for rule in policy.rules
            for p in rule.hosts
            if p.kind == "exact" or p.include_base
        )
    )


def _chain_targets(
    path: str, names: list[str], policies: list[Policy], cafile: str | None, now: dt.datetime
) -> tuple[list[Target], list[CertInfo]]:
    objects = load_objects(_read(path), source=path)
    certs = [o.certificate for o in objects if o.certificate is not None]
    if not certs:
        raise CertificateError(f"{path}: no certificate in this file")
    hosts = [normalize_host(n) for n in names] or names_for_chain(certs[0], policies)
    if not names:
        pinned = _pinned_hosts(policies)
        if not any(any(pol.rule_for(h) for pol in policies) for h in hosts):
            # A chain that covers no pinned host would pass every version as "not
            # pinned": check it against the pinned hosts instead, where it would be
            # deployed if it replaced their certificate.
            err().print(
                f"note: {path} covers none of the pinned hosts; simulating it for "
                f"{', '.join(pinned)} (give --name HOST to choose)",
                markup=False,
            )
            hosts = list(dict.fromkeys([*hosts, *pinned]))
    if not hosts:
        raise InputError(f"{path}: the leaf names no host; give --name HOST")
    anchors = load_trust_store(cafile).anchors()
    targets = []
    for host in hosts:
        chain, problem = build_verified_chain(certs, host, anchors, now)
        targets.append(Target(host, chain, problem))
    return targets, [CertInfo.from_certificate(c, "leaf") for c in certs]


def _live_targets(
    hosts: list[str],
    nameserver: str | None,
    cafile: str | None,
    timeout: float,
    quiet: bool,
    now: dt.datetime,
) -> list[Target]:
    endpoints = [Endpoint(*parse_target(h)) for h in hosts]
    results = probe_with_progress(
        endpoints,
        nameserver=nameserver,
        cafile=cafile,
        timeout=timeout,
        concurrency=16,
        quiet=quiet,
    )
    anchors = load_trust_store(cafile).anchors()
    targets = []
    for r in results:
        if r.network_error is not None:
            targets.append(Target(r.endpoint.host, None, r.network_error, r.address or None, True))
        elif r.verified_chain is None:
            targets.append(Target(r.endpoint.host, None, r.verification_error, r.address))
        else:
            # What OpenSSL verified is valid now; --at asks about another date: build the
            # path again from what the server sends, as a client would on that date.
            served = [x509.load_der_x509_certificate(c.der) for c in r.served_chain]
            chain, problem = build_verified_chain(served, r.endpoint.host, anchors, now)
            targets.append(Target(r.endpoint.host, chain, problem, r.address))
    return targets


@app.command("simulate")
def simulate_command(
    policy: Annotated[
        list[str],
        typer.Option(
            metavar="[NAME=]FILE",
            help="The pin policy of one shipped app version (repeat; NAME defaults to the "
            "file name).",
        ),
    ],
    chain: Annotated[
        str | None,
        typer.Option(metavar="FILE", help="The chain to deploy: leaf first, PEM or DER."),
    ] = None,
    host: Annotated[
        list[str] | None,
        typer.Option(metavar="HOST[:PORT]", help="Use what this host serves now (repeat)."),
    ] = None,
    name: Annotated[
        list[str] | None,
        typer.Option(metavar="HOST", help="Host names for --chain (default: the leaf's names)."),
    ] = None,
    at: Annotated[
        str | None, typer.Option(metavar="DATE", help="Simulate on this date (default: now).")
    ] = None,
    cafile: Annotated[
        str | None, typer.Option(help="Trust store (PEM); default: the system store.")
    ] = None,
    nameserver: Annotated[
        str | None, typer.Option(metavar="IP[:PORT]", help="DNS server for --host.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per handshake for --host.")] = 10.0,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """For every shipped pin set, would it accept this chain on this date?

    A table of version × host: passes, locked-out, reported (report-only), fails-open
    (the rule expired), not-pinned, invalid-chain (no client accepts it), unknown (not
    reachable). Use it as a CI gate before a certificate, key or CDN change. Exit 1 when
    any version is locked out (or the chain is invalid), 3 when a host could not be
    reached, 0 otherwise.
    """
    if (chain is None) == (not host):
        raise InputError("give either --chain FILE or --host HOST (not both)")
    if name and chain is None:
        raise InputError("--name goes with --chain")
    now = parse_when(at)
    versions = _versions(policy)
    policies = [p for _, p in versions]
    if chain is not None:
        targets, certs = _chain_targets(chain, name or [], policies, cafile, now)
        _warn_traps(versions, certs, now)
    else:
        targets = _live_targets(host or [], nameserver, cafile, timeout, json_, now)
        served = {der for t in targets for der in t.chain or ()}
        _warn_traps(versions, [CertInfo.from_certificate(der, "leaf") for der in served], now)
    cells = simulate(versions, targets, now=now)
    if json_:
        emit_json(_to_json(cells, now))
    else:
        _show(versions, targets, cells, now)
    if any(c.status.blocks for c in cells):
        raise typer.Exit(1)
    if any(c.status is Status.UNKNOWN for c in cells):
        raise typer.Exit(3)


def _warn_traps(
    versions: list[tuple[str, Policy]], certs: list[CertInfo], now: dt.datetime
) -> None:
    evidence = Evidence(now, tuple(certs))
    for label, policy in versions:
        for finding in lint_policy(policy, evidence):
            if finding.rule.id in ("PW004", "PW005"):
                err().print(f"warning: {label}: {finding.message}", markup=False)


def _to_json(cells: list[Cell], now: dt.datetime) -> dict[str, object]:
    return {
        "at": now.isoformat(),
        "results": [
            {
                "version": c.version,
                "host": c.target.host,
                "address": c.target.address,
                "status": c.status.value,
                "detail": c.detail,
                "matched_pin": str(c.verdict.matched_pin)
                if c.verdict and c.verdict.matched_pin
                else None,
            }
            for c in cells
        ],
        "locked_out": sorted({c.version for c in cells if c.status.blocks}),
    }


def _show(
    versions: list[tuple[str, Policy]], targets: list[Target], cells: list[Cell], now: dt.datetime
) -> None:
    console = out()
    table = Table(title=f"Simulated on {now:%Y-%m-%d %H:%M} UTC", title_justify="left")
    table.add_column("host")
    for label, _ in versions:
        table.add_column(escape(label))
    by_key = {(c.version, c.target): c for c in cells}
    for target in targets:
        row = [escape(target.label)]
        for label, _ in versions:
            cell = by_key[(label, target)]
            style = _STYLE[cell.status]
            row.append(f"[{style}]{cell.status.value}[/{style}]")
        table.add_row(*row)
    console.print(table)
    for cell in cells:
        if cell.status in (Status.PASSES, Status.NOT_PINNED):
            continue
        console.print(
            f"{escape(cell.version)} × {escape(cell.target.label)}: {escape(cell.detail)}"
        )
    blocked = sorted(
        {c.version for c in cells if c.status.blocks}, key=[v for v, _ in versions].index
    )
    if blocked:
        console.print(f"[red bold]LOCKED OUT[/red bold]: {', '.join(map(escape, blocked))}")
    else:
        console.print("[green]no shipped version is locked out[/green]")
