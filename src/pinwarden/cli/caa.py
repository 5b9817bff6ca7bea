"""``pinwarden caa check|audit|generate``: what CAA records allow, whether today's CA may
renew, and records to publish."""

from __future__ import annotations

import asyncio
import ssl
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from pinwarden.caa.audit import AuditResult, audit
from pinwarden.caa.evaluate import evaluate, evaluate_email
from pinwarden.caa.generate import generate, parse_per_ca, render
from pinwarden.caa.identities import CAIdentity, issuer_domain_for, load_identities
from pinwarden.caa.lookup import _start as start_name
from pinwarden.caa.lookup import lookup_caa
from pinwarden.caa.model import CAALookup, Evaluation, Verdict
from pinwarden.caa.records import to_presentation
from pinwarden.caa.summary import CAASummary, record_to_dict, summarize
from pinwarden.cli._app import JSON_HELP, app
from pinwarden.cli._common import check_port, check_timeout
from pinwarden.cli._output import emit_json, err, out, printable
from pinwarden.cli.pin import _read
from pinwarden.errors import CertificateError, InputError

caa_app = typer.Typer(
    help="CAA (RFC 8659): which CAs may issue for a name, may today's CA renew, records "
    "to publish.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(caa_app, name="caa")

_VERDICT_STYLE = {Verdict.ALLOWED: "green", Verdict.DENIED: "red bold", Verdict.UNKNOWN: "magenta"}
_STATUS_STYLE = {"ok": "green", "warning": "yellow", "unknown": "magenta", "error": "red bold"}
_IDENTITIES_HELP = "More CA identities (TOML, the shape of the bundled table; docs/caa.md)."
_NAMESERVER_HELP = "Ask this DNS server (a recursive resolver) instead of the system's."


def _shown(text: str) -> str:
    """Outside text (DNS data, messages quoting it) safe for rich and the terminal."""
    return escape(printable(text))


def _identities(path: Path | None) -> tuple[CAIdentity, ...]:
    return load_identities(path)


def _ca_domains(ca: str, table: tuple[CAIdentity, ...]) -> list[str]:
    """The issuer domain names ``--ca`` stands for: all of a known CA's when it is named
    ("DigiCert"), else the one domain given."""
    wanted = " ".join(ca.split()).casefold()
    for identity in table:
        if " ".join(identity.name.split()).casefold() == wanted:
            return list(identity.caa)
    return [issuer_domain_for(ca, identities=table)]


# -- check -------------------------------------------------------------------------------


def _lookup_json(lookup: CAALookup) -> dict[str, Any]:
    return {
        "name": lookup.name,
        "found_at": lookup.found_at,
        "aliases": list(lookup.aliases),
        "ttl": lookup.ttl,
        "authenticated": lookup.authenticated,
        "error": lookup.error,
        "records": [record_to_dict(r) for r in lookup.records],
        "steps": [
            {
                "name": s.name,
                "rcode": s.rcode,
                "records": s.records,
                "aliases": list(s.aliases),
                "authenticated": s.authenticated,
            }
            for s in lookup.steps
        ],
    }


def _evaluation_json(ca: str, kind: str, evaluation: Evaluation) -> dict[str, Any]:
    return {
        "ca": ca,
        "for": kind,
        "verdict": evaluation.verdict.value,
        "reasons": list(evaluation.reasons),
        "conditions": list(evaluation.conditions),
        "warnings": list(evaluation.warnings),
        "matched": record_to_dict(evaluation.matched) if evaluation.matched else None,
    }


@caa_app.command("check")
def check_command(
    name: Annotated[str, typer.Argument(help="The name (or *.name) to check.")],
    ca: Annotated[
        str | None,
        typer.Option(
            metavar="ISSUER-DOMAIN",
            help="Judge this CA: an issuer domain name (letsencrypt.org) or a CA's name.",
        ),
    ] = None,
    wildcard: Annotated[bool, typer.Option(help="Judge a wildcard certificate (*.NAME).")] = False,
    email: Annotated[
        bool, typer.Option(help="Judge S/MIME issuance for addresses at NAME (issuemail).")
    ] = False,
    account_uri: Annotated[
        str | None, typer.Option(metavar="URI", help="The CA account asking (RFC 8657).")
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(metavar="METHOD", help="The validation method used, e.g. dns-01 (RFC 8657)."),
    ] = None,
    nameserver: Annotated[
        str | None, typer.Option(metavar="IP[:PORT]", help=_NAMESERVER_HELP)
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds for the whole lookup.")] = 10.0,
    identities: Annotated[Path | None, typer.Option(metavar="FILE", help=_IDENTITIES_HELP)] = None,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show the relevant CAA record set of a name (where it was found, aliases, TTL,
    DNSSEC), which CAs may issue for the name and for its wildcard, and the verdict for
    `--ca`.

    Exit 0 allowed (or no `--ca`), 1 denied, 3 unknown (a DNS failure: never allowed).
    """
    name = name.strip()
    if name.startswith("*."):
        name, wildcard = name[2:], True
    if "*" in name:
        raise InputError(f"{name!r}: '*' may only be the whole first label (*.name)")
    if email and wildcard:
        raise InputError("--email and --wildcard do not go together")
    if (account_uri is not None or method is not None) and (ca is None or email):
        raise InputError("--account-uri and --method need --ca and go with certificates")
    for option, value in (("--ca", ca), ("--account-uri", account_uri), ("--method", method)):
        if value is not None and not value.strip():
            raise InputError(f"{option} is empty")
    domains = _ca_domains(ca, _identities(identities)) if ca is not None else []
    check_timeout(timeout)
    lookup = lookup_caa(name, nameserver=nameserver, timeout=timeout)
    summary = summarize(lookup.records) if lookup.error is None else None
    evaluation: Evaluation | None = None
    ca_domain: str | None = None
    for domain in domains:
        # A CA known by name may be named in the records by any of its issuer domain
        # names (DigiCert honours symantec.com too): allowed if any of them is.
        if email:
            candidate = evaluate_email(lookup, domain)
        else:
            candidate = evaluate(
                lookup, domain, wildcard=wildcard, account_uri=account_uri, method=method
            )
        if evaluation is None or (
            candidate.verdict is Verdict.ALLOWED and evaluation.verdict is not Verdict.ALLOWED
        ):
            evaluation, ca_domain = candidate, domain
    kind = "email" if email else ("wildcard" if wildcard else "name")
    if json_:
        emit_json(
            {
                "lookup": _lookup_json(lookup),
                "summary": summary.to_dict() if summary else None,
                "evaluation": _evaluation_json(ca_domain, kind, evaluation)
                if evaluation is not None and ca_domain is not None
                else None,
            }
        )
    else:
        _show_check(lookup, summary, ca_domain, kind, evaluation)
    if lookup.error is not None or (evaluation and evaluation.verdict is Verdict.UNKNOWN):
        raise typer.Exit(3)
    if evaluation is not None and evaluation.verdict is Verdict.DENIED:
        raise typer.Exit(1)


def _show_check(
    lookup: CAALookup,
    summary: CAASummary | None,
    ca: str | None,
    kind: str,
    evaluation: Evaluation | None,
) -> None:
    console = out()
    if lookup.error is not None:
        console.print(f"[magenta bold]DNS lookup failed[/magenta bold]: {_shown(lookup.error)}")
        console.print("Nothing can be concluded: a CA must refuse to issue.")
    elif lookup.found_at is None:
        console.print(
            f"No CAA records at {_shown(lookup.name)} or any parent up to the top-level "
            "domain: [yellow]any CA may issue[/yellow]."
        )
    else:
        via = f" (via {' → '.join(map(escape, lookup.aliases))})" if lookup.aliases else ""
        dnssec = "DNSSEC-authenticated" if lookup.authenticated else "not DNSSEC-authenticated"
        console.print(
            f"Relevant CAA records for {_shown(lookup.name)}: found at "
            f"[bold]{_shown(lookup.found_at)}[/bold]{via}, TTL {lookup.ttl}, {dnssec}"
        )
        for record in lookup.records:
            console.print(f"  {_shown(to_presentation(record))}")
    if summary is not None and lookup.error is None:
        console.print(f"May issue for {_shown(lookup.name)}: {_shown(summary.name.describe())}")
        console.print(
            f"May issue for *.{_shown(lookup.name)}: {_shown(summary.wildcard.describe())}"
        )
        if summary.email.tag is not None:
            console.print(f"May issue for e-mail: {_shown(summary.email.describe())}")
        for iodef in summary.iodef:
            console.print(f"Reports (iodef): {_shown(iodef.url)}")
        for contact in summary.contact_emails:
            console.print(f"Contact e-mail: {_shown(contact.address)}")
        for phone in summary.contact_phones:
            console.print(f"Contact phone: {_shown(phone.number)}")
        for bad in summary.malformed:
            console.print(
                f"[yellow]malformed[/yellow]: {_shown(to_presentation(bad.record))}: "
                f"{_shown(bad.reason)}"
            )
    if evaluation is None or ca is None:
        return
    style = _VERDICT_STYLE[evaluation.verdict]
    target = {
        "name": lookup.name,
        "wildcard": f"*.{lookup.name}",
        "email": f"e-mail at {lookup.name}",
    }
    console.print(
        f"\n{_shown(ca)} for {_shown(target[kind])}: [{style}]{evaluation.verdict.value.upper()}"
        f"[/{style}]"
    )
    for reason in evaluation.reasons:
        console.print(f"  - {_shown(reason)}")
    for condition in evaluation.conditions:
        console.print(f"  [yellow]only if[/yellow] {_shown(condition)}")
    for warning in evaluation.warnings:
        console.print(f"  [yellow]warning[/yellow]: {_shown(warning)}")


# -- audit -------------------------------------------------------------------------------


def _names(names: list[str], file: Path | None) -> list[str]:
    """Every name to audit, checked before any work starts (``FILE:LINE`` named), in
    the A-label form that is both looked up and connected to."""
    found = [(n, "argument") for n in names]
    if file is not None:
        try:
            text = _read(str(file)).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"{file}: not UTF-8 text (byte {exc.start})") from None
        for number, line in enumerate(text.splitlines(), start=1):
            entry = line.split("#", 1)[0].strip()
            if entry:
                found.append((entry, f"{file}:{number}"))
    if not found:
        raise InputError("no names to audit: give NAME… or --file FILE")
    checked: list[str] = []
    for entry, where in found:
        if entry.startswith("*."):
            raise InputError(f"{where}: {entry!r}: audit a host name, not a wildcard")
        try:
            checked.append(start_name(entry).to_text(omit_final_dot=True).lower())
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
    return list(dict.fromkeys(checked))


def _context(cafile: str | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise CertificateError(f"cannot load CA certificates {cafile or ''}: {exc}") from None


@caa_app.command("audit")
def audit_command(
    names: Annotated[
        list[str] | None, typer.Argument(metavar="[NAME]...", help="Names to audit.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Names, one a line (# comments).")
    ] = None,
    port: Annotated[int, typer.Option(help="TLS port to read the served certificate from.")] = 443,
    connect: Annotated[
        bool, typer.Option(help="Connect over TLS to find the CA serving each name today.")
    ] = True,
    nameserver: Annotated[
        str | None, typer.Option(metavar="IP[:PORT]", help=_NAMESERVER_HELP)
    ] = None,
    cafile: Annotated[
        str | None, typer.Option(help="Trust store (PEM) for TLS; default: the system store.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per lookup and per handshake.")] = 10.0,
    concurrency: Annotated[int, typer.Option(help="Names audited at a time.")] = 32,
    identities: Annotated[Path | None, typer.Option(metavar="FILE", help=_IDENTITIES_HELP)] = None,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Audit many names: their CAA records and, over TLS, whether the CA serving each
    one today may issue its next certificate.

    Findings: `current-ca-not-allowed` (the next renewal will fail: error),
    `no-caa` (any CA may issue: warning), `wildcard-differs` (note), `dns-error`,
    `tls-error`, `unknown-ca` (could not decide). Exit 1 when there is an error, 3 when
    something could not be decided, 0 otherwise.
    """
    if concurrency < 1:
        raise InputError("--concurrency must be at least 1")
    check_timeout(timeout)
    check_port(port)
    wanted = _names(names or [], file)
    table = _identities(identities)
    context = _context(cafile) if connect else None
    results = _run_audit(
        wanted,
        table,
        context,
        quiet=json_,
        port=port,
        nameserver=nameserver,
        timeout=timeout,
        concurrency=concurrency,
        connect=connect,
    )
    if json_:
        emit_json(_audit_json(results))
    else:
        _show_audit(results)
    statuses = {r.status for r in results}
    if "error" in statuses:
        raise typer.Exit(1)
    if "unknown" in statuses:
        raise typer.Exit(3)


def _run_audit(
    names: list[str],
    table: tuple[CAIdentity, ...],
    context: ssl.SSLContext | None,
    *,
    quiet: bool,
    **options: Any,
) -> list[AuditResult]:
    if quiet or not sys.stderr.isatty():
        return asyncio.run(audit(names, identities=table, context=context, **options))
    with Progress(
        TextColumn("auditing"), BarColumn(), MofNCompleteColumn(), console=err(), transient=True
    ) as progress:
        task = progress.add_task("audit", total=len(names))

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return asyncio.run(
            audit(names, identities=table, context=context, on_progress=update, **options)
        )


def _audit_json(results: list[AuditResult]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return {
        "results": [
            {
                "name": r.name,
                "status": r.status,
                "found_at": r.lookup.found_at,
                "dns_error": r.lookup.error,
                "issuer": r.issuer,
                "ca": r.identity.name if r.identity else None,
                "ca_domains": list(r.identity.caa) if r.identity else [],
                "may_issue": r.summary.name.describe() if r.summary else None,
                "may_issue_wildcard": r.summary.wildcard.describe() if r.summary else None,
                "findings": [
                    {"code": f.code, "severity": f.severity, "message": f.message}
                    for f in r.findings
                ],
            }
            for r in results
        ],
        "summary": counts,
    }


def _show_audit(results: list[AuditResult]) -> None:
    console = out()
    table = Table(show_lines=False)
    for column in ("name", "CAA at", "may issue", "CA today", "status"):
        table.add_column(column)
    for r in results:
        style = _STATUS_STYLE[r.status]
        at = r.lookup.found_at or ("(DNS error)" if r.lookup.error else "(none)")
        may = r.summary.name.describe() if r.summary else "?"
        ca = r.identity.name if r.identity else (r.issuer or "-")
        table.add_row(
            _shown(r.name), _shown(at), _shown(may), _shown(ca), f"[{style}]{r.status}[/{style}]"
        )
    console.print(table)
    for r in results:
        for f in r.findings:
            style = _STATUS_STYLE.get(f.severity, "dim")
            console.print(
                f"{_shown(r.name)}: [{style}]{f.severity}[/{style}] {f.code}: {_shown(f.message)}"
            )
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    console.print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))


# -- generate ----------------------------------------------------------------------------


@caa_app.command("generate")
def generate_command(
    ca: Annotated[
        list[str] | None,
        typer.Option(metavar="ISSUER-DOMAIN", help="A CA that may issue (repeat; none: ';')."),
    ] = None,
    wildcard_ca: Annotated[
        list[str] | None,
        typer.Option(metavar="ISSUER-DOMAIN", help="CAs for wildcards, if they differ."),
    ] = None,
    no_wildcard: Annotated[
        bool, typer.Option("--no-wildcard", help="No CA may issue wildcard certificates.")
    ] = False,
    iodef: Annotated[
        list[str] | None, typer.Option(metavar="URL", help="Where CAs report (mailto:/https:).")
    ] = None,
    account_uri: Annotated[
        list[str] | None,
        typer.Option(metavar="[CA=]URI", help="Only this ACME account may use that CA (RFC 8657)."),
    ] = None,
    method: Annotated[
        list[str] | None,
        typer.Option(metavar="[CA=]METHOD", help="Allowed validation method for a CA (RFC 8657)."),
    ] = None,
    name: Annotated[str, typer.Option(help="Owner name of the records.")] = "example.com.",
    ttl: Annotated[int, typer.Option(help="TTL of the records.")] = 3600,
    format_: Annotated[
        str, typer.Option("--format", help="zone (BIND), tinydns or json.")
    ] = "zone",
    identities: Annotated[Path | None, typer.Option(metavar="FILE", help=_IDENTITIES_HELP)] = None,
) -> None:
    """Print CAA records that allow exactly the CAs given: `issue` per CA (`;` when
    none), `issuewild` only when wildcards differ, `iodef`, and RFC 8657 parameters.
    """
    if no_wildcard and wildcard_ca:
        raise InputError("--no-wildcard and --wildcard-ca contradict each other")
    if format_ not in ("zone", "tinydns", "json"):
        raise InputError(f"--format {format_!r}: choose zone, tinydns or json")
    if ttl < 0 or ttl > 2**31 - 1:
        raise InputError(f"--ttl {ttl}: must be from 0 to 2147483647")
    table = _identities(identities)
    cas = [issuer_domain_for(c, identities=table) for c in ca or ()]
    wild: list[str] | None
    if no_wildcard:
        wild = []
    elif wildcard_ca:
        wild = [issuer_domain_for(c, identities=table) for c in wildcard_ca]
    else:
        wild = None
    every = list(dict.fromkeys(cas + (wild or [])))
    accounts = parse_per_ca(account_uri or [], every, option="--account-uri")
    methods = parse_per_ca(method or [], every, option="--method")
    records = generate(
        cas,
        wildcard_cas=wild,
        iodef=iodef or (),
        account_uris=accounts,
        validation_methods=methods,
    )
    text = render(records, name=name, ttl=ttl, fmt=format_)  # type: ignore[arg-type]
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
