"""``pinwarden check``: every address of live endpoints against a policy."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.markup import escape

from pinwarden.apps.lint import Evidence, lint_policy
from pinwarden.apps.live import AddressResult, Endpoint
from pinwarden.certs import CertInfo
from pinwarden.cli._app import JSON_HELP, app
from pinwarden.cli._common import check_port, parse_when, probe_with_progress
from pinwarden.cli._output import emit_json, err, out
from pinwarden.errors import InputError
from pinwarden.policy import Policy
from pinwarden.probe import parse_target
from pinwarden.verify import Outcome, Verdict, verify

_STYLE = {
    "ok": "green",
    "mismatch": "red bold",
    "invalid-chain": "red bold",
    "unknown": "magenta",
    "expired": "yellow",
    "not-pinned": "dim",
}


@dataclass(frozen=True)
class _Checked:
    result: AddressResult
    status: str
    detail: str
    verdict: Verdict | None = None

    def pinned(self) -> list[CertInfo]:
        """The certificates of the verified chain that a pin of the rule matches."""
        if self.verdict is None or self.verdict.rule is None:
            return []
        rule = self.verdict.rule
        chain = self.result.verified_chain or ()
        return [c for c in chain if any(p.matches(c.der) for p in rule.pins)]


def _judge(policy: Policy, result: AddressResult, now: dt.datetime) -> _Checked:
    if result.network_error is not None:
        return _Checked(result, "unknown", result.network_error)
    if result.verified_chain is None:
        return _Checked(result, "invalid-chain", f"does not verify: {result.verification_error}")
    # OpenSSL verified the chain now; with --at, a certificate may be invalid by then.
    for cert in result.verified_chain:
        if cert.not_after is not None and cert.not_after < now:
            return _Checked(
                result,
                "invalid-chain",
                f"{cert.position} {cert.subject} expires on {cert.not_after:%Y-%m-%d}, "
                f"before {now:%Y-%m-%d}",
            )
        if cert.not_before is not None and cert.not_before > now:
            return _Checked(
                result,
                "invalid-chain",
                f"{cert.position} {cert.subject} is not valid before {cert.not_before:%Y-%m-%d}",
            )
    chain = [c.der for c in result.verified_chain]
    verdict = verify(policy, result.endpoint.host, chain, now=now)
    status = {
        Outcome.MATCHED: "ok",
        Outcome.MISMATCH: "mismatch",
        Outcome.EXPIRED: "expired",
        Outcome.NOT_PINNED: "not-pinned",
        Outcome.NO_CHAIN: "invalid-chain",
    }[verdict.outcome]
    return _Checked(result, status, verdict.message(), verdict)


def _endpoints(policy: Policy, hosts: list[str], port: int) -> list[Endpoint]:
    if hosts:
        return [Endpoint(*parse_target(h, default_port=port)) for h in hosts]
    found = [
        Endpoint(p.base, port)
        for rule in policy.rules
        for p in rule.hosts
        if p.kind == "exact" or p.include_base
    ]
    if not found:
        raise InputError(f"{policy.source}: no exact host name to check; name hosts to check")
    return list(dict.fromkeys(found))


@app.command("check")
def check_command(
    policy_file: Annotated[str, typer.Option("--policy", metavar="FILE", help="Pin policy.")],
    hosts: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[HOST[:PORT]]...", help="Endpoints (default: the policy's host names)."
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="Port when a host gives none.")] = 443,
    nameserver: Annotated[
        str | None, typer.Option(metavar="IP[:PORT]", help="Resolve through this DNS server.")
    ] = None,
    cafile: Annotated[
        str | None, typer.Option(help="Trust store (PEM); default: the system store.")
    ] = None,
    at: Annotated[str | None, typer.Option(metavar="DATE", help="Judge as of this date.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per DNS query and handshake.")] = 10.0,
    concurrency: Annotated[int, typer.Option(help="Handshakes at a time.")] = 16,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Check live endpoints against a policy, at EVERY address of each name.

    Load balancers and CDNs can serve different chains from different addresses: each
    A/AAAA address gets its own handshake (with SNI), its verified chain, the pin that
    matched, the days left on each pinned certificate, and a verdict. Exit 1 when an
    address serves a chain that fails the pins or does not verify, 3 when an address or
    name could not be reached (never reported as OK), 0 otherwise.
    """
    check_port(port)
    policy = Policy.load(policy_file)
    now = parse_when(at)
    endpoints = _endpoints(policy, hosts or [], port)
    results = probe_with_progress(
        endpoints,
        nameserver=nameserver,
        cafile=cafile,
        timeout=timeout,
        concurrency=concurrency,
        quiet=json_,
    )
    checked = [_judge(policy, r, now) for r in results]
    chains = tuple(c for r in results for c in r.verified_chain or ())
    for finding in lint_policy(policy, Evidence(now, chains)):
        if finding.rule.id in ("PW004", "PW005"):
            err().print(f"warning: {finding.message}", markup=False)
    if json_:
        emit_json(_to_json(policy, checked, now))
    else:
        _show(checked, now)
    statuses = {c.status for c in checked}
    if statuses & {"mismatch", "invalid-chain"}:
        raise typer.Exit(1)
    if "unknown" in statuses:
        raise typer.Exit(3)


def _to_json(policy: Policy, checked: list[_Checked], now: dt.datetime) -> dict[str, object]:
    counts: dict[str, int] = {}
    for c in checked:
        counts[c.status] = counts.get(c.status, 0) + 1
    return {
        "policy": policy.source,
        "at": now.isoformat(),
        "results": [
            {
                "host": c.result.endpoint.host,
                "port": c.result.endpoint.port,
                "address": c.result.address or None,
                "status": c.status,
                "detail": c.detail,
                "matched_pin": str(c.verdict.matched_pin)
                if c.verdict and c.verdict.matched_pin
                else None,
                "matched_position": c.verdict.matched_position if c.verdict else None,
                "pinned_certificates": [p.to_json(now) for p in c.pinned()],
                "verified_chain": [x.to_json(now) for x in c.result.verified_chain]
                if c.result.verified_chain is not None
                else None,
            }
            for c in checked
        ],
        "summary": counts,
    }


def _show(checked: list[_Checked], now: dt.datetime) -> None:
    console = out()
    for c in checked:
        r = c.result
        style = _STYLE[c.status]
        where = f"{r.endpoint} at {r.address}" if r.address else str(r.endpoint)
        console.print(f"[bold]{escape(where)}[/bold]: [{style}]{c.status}[/{style}]")
        if c.verdict is not None and c.verdict.matched_pin is not None:
            console.print(
                f"  matched {c.verdict.matched_pin} (chain position {c.verdict.matched_position})"
            )
        for i, cert in enumerate(r.verified_chain or ()):
            console.print(f"  [{i}] {cert.position} {escape(cert.subject)}  {cert.pin}")
        for cert in c.pinned():
            days = cert.days_left(now)
            console.print(
                f"  pinned {cert.position} {escape(cert.subject)}: "
                + (f"{days} days left" if days is not None else "validity unknown")
            )
        if c.status not in ("ok", "not-pinned"):
            for line in c.detail.splitlines():
                console.print(f"  {escape(line)}")
    counts: dict[str, int] = {}
    for c in checked:
        counts[c.status] = counts.get(c.status, 0) + 1
    console.print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
