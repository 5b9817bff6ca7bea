"""``pinwarden lint POLICY…``: rotation-safety findings for pin policies."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from pinwarden.apps.lint import RULES, Evidence, Finding, LintRule, lint_policy, skipped_rules
from pinwarden.apps.live import AddressResult, Endpoint
from pinwarden.apps.sarif import locate, to_sarif
from pinwarden.apps.trust import TrustStore, load_trust_store
from pinwarden.cli._app import JSON_HELP, app
from pinwarden.cli._common import (
    check_port,
    load_chain,
    load_policy_text,
    parse_when,
    probe_with_progress,
)
from pinwarden.cli._output import emit_json, err, out
from pinwarden.errors import InputError
from pinwarden.policy import Policy

_STYLE = {"error": "red bold", "warning": "yellow", "note": "cyan"}


def _live_endpoints(policies: list[Policy], port: int) -> tuple[list[Endpoint], list[str]]:
    endpoints: list[Endpoint] = []
    wildcards: list[str] = []
    for policy in policies:
        for rule in policy.rules:
            for pattern in rule.hosts:
                if pattern.kind == "exact" or pattern.include_base:
                    endpoints.append(Endpoint(pattern.base, port))
                if pattern.kind != "exact":
                    wildcards.append(pattern.text)
    return list(dict.fromkeys(endpoints)), wildcards


@app.command("lint")
def lint_command(
    policies: Annotated[list[str], typer.Argument(metavar="POLICY...", help="Policy files.")],
    chain: Annotated[
        list[str] | None,
        typer.Option(metavar="FILE", help="The current chain(s), PEM or DER (repeat)."),
    ] = None,
    live: Annotated[
        bool,
        typer.Option(help="Also handshake with every address of every pinned host name."),
    ] = False,
    port: Annotated[int, typer.Option(help="Port for --live.")] = 443,
    nameserver: Annotated[
        str | None, typer.Option(metavar="IP[:PORT]", help="DNS server for --live.")
    ] = None,
    cafile: Annotated[
        str | None,
        typer.Option(
            help="The trust store (PEM) that pinned roots must be in and --live verifies "
            "with; default: the system store."
        ),
    ] = None,
    at: Annotated[
        str | None, typer.Option(metavar="DATE", help="Lint as of this date (default: now).")
    ] = None,
    ignore: Annotated[
        list[str] | None, typer.Option(metavar="ID", help="Skip a rule, e.g. PW009 (repeat).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per handshake for --live.")] = 10.0,
    concurrency: Annotated[int, typer.Option(help="Parallel handshakes for --live.")] = 16,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
    sarif: Annotated[
        bool, typer.Option("--sarif", help="Print SARIF 2.1.0 for CI code scanning.")
    ] = False,
) -> None:
    """Check pin policies for what locks users out, never matches or fails silently:
    numbered rules (PW001…) with a severity and a fix each.

    Rules about certificates need `--chain` or `--live`; `--live` adds the checks of
    what endpoints serve now. Exit 1 when there is an error-level finding, 3 when
    `--live` could not reach an endpoint (and there is no error), 0 otherwise.
    """
    if json_ and sarif:
        raise InputError("choose one of --json and --sarif")
    ignored = {i.upper() for i in ignore or ()}
    unknown = sorted(ignored - set(RULES))
    if unknown:
        raise InputError(f"--ignore: unknown rule(s) {', '.join(unknown)}")
    check_port(port)
    now = parse_when(at)
    loaded = [(path, *load_policy_text(path)) for path in policies]
    chains = [tuple(load_chain(path)) for path in chain or ()]
    results: tuple[AddressResult, ...] | None = None
    if live:
        endpoints, wildcards = _live_endpoints([p for _, p, _ in loaded], port)
        if wildcards:
            err().print(
                "note: --live cannot enumerate wildcard patterns; not probed: "
                + ", ".join(dict.fromkeys(wildcards)),
                markup=False,
            )
        results = tuple(
            probe_with_progress(
                endpoints,
                nameserver=nameserver,
                cafile=cafile,
                timeout=timeout,
                concurrency=concurrency,
                quiet=json_ or sarif,
            )
        )
    store: TrustStore | None = None
    if chains or live:
        store = load_trust_store(cafile)
    evidence = Evidence(now, chains[0] if chains else (), results, store, tuple(chains[1:]))
    per_file: list[tuple[str, str, list[Finding]]] = []
    for path, policy, text in loaded:
        findings = [f for f in lint_policy(policy, evidence) if f.rule.id not in ignored]
        per_file.append((path, text, findings))
    skipped = [r for r in skipped_rules(evidence) if r.id not in ignored]
    everything = [f for _, _, fs in per_file for f in fs]
    if sarif:
        emit_json(to_sarif(per_file))
    elif json_:
        emit_json(_to_json(per_file, skipped))
    else:
        _show(per_file, skipped)
    if any(f.severity == "error" for f in everything):
        raise typer.Exit(1)
    if any(f.rule.id == "PW017" for f in everything):
        raise typer.Exit(3)


def _to_json(
    per_file: list[tuple[str, str, list[Finding]]], skipped: list[LintRule]
) -> dict[str, object]:
    findings = [f for _, _, fs in per_file for f in fs]
    return {
        "files": [
            {
                "source": path,
                "findings": [
                    {
                        "id": f.rule.id,
                        "name": f.rule.name,
                        "severity": f.severity,
                        "message": f.message,
                        "key": f.key,
                        "line": locate(text, f.key),
                        "fix": f.rule.fix,
                    }
                    for f in fs
                ],
            }
            for path, text, fs in per_file
        ],
        "skipped_rules": [r.id for r in skipped],
        "errors": sum(f.severity == "error" for f in findings),
        "warnings": sum(f.severity == "warning" for f in findings),
        "notes": sum(f.severity == "note" for f in findings),
    }


def _show(per_file: list[tuple[str, str, list[Finding]]], skipped: list[LintRule]) -> None:
    console = out()
    counts = {"error": 0, "warning": 0, "note": 0}
    for path, text, findings in per_file:
        for f in findings:
            counts[f.severity] += 1
            line = locate(text, f.key)
            where = f"{path}:{line}" if line else path
            style = _STYLE[f.severity]
            console.print(
                f"{escape(where)}: [{style}]{f.severity}[/{style}] {f.rule.id} "
                f"{f.rule.name}: {escape(f.message)}"
            )
            console.print(f"    fix: {escape(f.rule.fix)}")
    files = len(per_file)
    console.print(
        f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['note']} note(s) "
        f"in {files} polic{'y' if files == 1 else 'ies'}"
    )
    if skipped:
        err().print(
            "not checked (need --chain, --live or a trust store): "
            + ", ".join(f"{r.id} {r.name}" for r in skipped),
            markup=False,
        )
