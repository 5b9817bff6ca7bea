"""``pinwarden ct check (HOST[:PORT] | CERT.pem)``: verify the SCTs embedded in a
certificate and audit it against the Chrome and Apple CT policies."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from rich.console import Console
from rich.markup import escape

from pinwarden.certs import CertInfo, load_objects
from pinwarden.cli._app import JSON_HELP
from pinwarden.cli._common import (
    CafileOption,
    ConnectOption,
    ServernameOption,
    TimeoutOption,
    check_timeout,
    parse_when,
)
from pinwarden.cli._output import emit_json, err, out, printable
from pinwarden.cli.ct import ct_app
from pinwarden.cli.ct_loglist import LOG_LIST_HELP, load_for_cli
from pinwarden.cli.pin import _read
from pinwarden.ct.logs import Log, LogList
from pinwarden.ct.policy import (
    AUDIT_NOTE,
    PolicyVerdict,
    audit_apple,
    audit_chrome,
    chrome_lifetime,
    undecided,
)
from pinwarden.ct.sct import (
    SCT,
    MalformedSCT,
    SCTResult,
    SCTStatus,
    embedded_sct_items,
    find_issuer,
    verify_embedded,
    verify_sct,
)
from pinwarden.errors import CertificateError, InputError
from pinwarden.probe import parse_target, probe

# Suffixes that make an argument a file name even when the file does not exist, so a typo
# gives "no such file" rather than a DNS failure for "cert.pem".
_FILE_SUFFIXES = (".pem", ".crt", ".cer", ".der", ".bin", ".p7b")


@dataclass(frozen=True)
class _Subject:
    """The certificate to check, its issuer (when known) and where each came from."""

    leaf: x509.Certificate
    leaf_info: CertInfo
    issuer: x509.Certificate | None
    issuer_from: str | None
    source: str  # "file" or "host"


@dataclass(frozen=True)
class _Row:
    """One embedded SCT as shown: its verdict, or only what the log list says of it when
    it could not be verified (no issuer). A malformed SCT may lack a log ID and a time."""

    sct: SCT | MalformedSCT
    result: SCTResult | None
    log_list: LogList

    @property
    def status(self) -> str:
        return self.result.status.value if self.result is not None else "unverified"

    @property
    def detail(self) -> str:
        if self.result is not None:
            return self.result.detail
        return "needs the issuer certificate (--issuer FILE)"

    @property
    def log(self) -> Log | None:
        return self.log_list.by_id(self.sct.log_id) if self.sct.log_id is not None else None

    @property
    def leaf_index(self) -> int | None:
        return self.sct.leaf_index if isinstance(self.sct, SCT) else None

    def to_json(self, index: int) -> dict[str, object]:
        log, sct = self.log, self.sct
        return {
            "index": index,
            "log_id": _b64(sct.log_id) if sct.log_id is not None else None,
            "log": log.description if log else None,
            "operator": log.operator_at(sct.timestamp)
            if log and sct.timestamp is not None
            else None,
            "log_state": log.state.value if log and log.state else None,
            "log_state_since": _iso(log.state_since) if log and log.state_since else None,
            "log_api": ("static-ct-api" if log.tiled else "rfc6962") if log else None,
            "timestamp": _iso(sct.timestamp) if sct.timestamp is not None else None,
            "leaf_index": self.leaf_index,
            "status": self.status,
            "detail": self.detail,
        }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


# What cryptography raises for a certificate it cannot load: InvalidVersion (a version
# field other than v1 or v3) is not a ValueError.
_UNREADABLE = (ValueError, x509.InvalidVersion)


def _certificate(der: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except _UNREADABLE as exc:
        raise CertificateError(f"{what}: cryptography cannot read it: {exc}") from None


def _certificates(path: str) -> list[x509.Certificate]:
    found = [o.certificate for o in load_objects(_read(path), source=path)]
    certs = [c for c in found if c is not None]
    if not certs:
        raise CertificateError(f"{path}: no certificate in this file")
    return certs


def _is_file(target: str) -> bool:
    if Path(target).is_file():
        return True
    if "/" in target or "\\" in target or target.lower().endswith(_FILE_SUFFIXES):
        raise InputError(f"{target}: no such file (give HOST[:PORT] or an existing file)")
    return False


def _issuer_among(
    leaf: x509.Certificate, candidates: list[x509.Certificate], where: str
) -> x509.Certificate | None:
    """The candidate that signed ``leaf``; else one that its issuer name names, with a
    warning: an altered leaf no longer verifies under its real issuer, and checking its
    SCTs against that issuer shows them as bad rather than leaving them unverified."""
    issuer = find_issuer(leaf, candidates)
    if issuer is None:
        issuer = find_issuer(leaf, candidates, by_name=True)
        if issuer is not None:
            err().print(
                f"warning: the issuer in {printable(where)} has the name this certificate "
                "names, but its signature over the certificate does not verify (was the "
                "certificate altered?); its SCTs are checked against that issuer",
                markup=False,
            )
    return issuer


def _from_file(path: str) -> _Subject:
    certs = _certificates(path)
    leaf = certs[0]
    issuer = _issuer_among(leaf, certs[1:], path)
    return _Subject(
        leaf,
        CertInfo.from_certificate(leaf, "leaf"),
        issuer,
        f"the bundle {path}" if issuer is not None else None,
        "file",
    )


def _from_host(
    target: str, servername: str | None, connect: str | None, cafile: str | None, timeout: float
) -> _Subject:
    host, port = parse_target(target)
    result = probe(
        host, port, servername=servername, connect=connect, cafile=cafile, timeout=timeout
    )
    if result.verified_chain is not None:
        chain, where = result.verified_chain, "the verified chain"
    else:
        err().print(
            f"warning: {printable(result.servername)}'s chain does not verify "
            f"({printable(result.verification_error or 'unknown reason')}); its SCTs are "
            "checked against the issuer the server sent",
            markup=False,
        )
        chain, where = result.served_chain, "the chain the server sent"
    if not chain:
        raise CertificateError(f"{target}: the server sent no certificate")
    leaf = _certificate(chain[0].der, f"{target}: leaf certificate")
    candidates = []
    for info in chain[1:]:
        try:
            candidates.append(x509.load_der_x509_certificate(info.der))
        except _UNREADABLE:
            continue  # a server may send anything; an unreadable extra is no issuer
    issuer = _issuer_among(leaf, candidates, where)
    return _Subject(leaf, chain[0], issuer, where if issuer is not None else None, "host")


@ct_app.command("check")
def ct_check_command(
    target: Annotated[
        str,
        typer.Argument(
            metavar="HOST[:PORT] | CERT",
            help="A server to connect to, or a certificate file (PEM or DER; a bundle's "
            "first certificate is checked, the others are searched for its issuer).",
        ),
    ],
    issuer_file: Annotated[
        str | None,
        typer.Option(
            "--issuer",
            metavar="FILE",
            help="The issuer's certificate (embedded SCTs sign the issuer's key hash); in a "
            "chain file, the certificate that signed the leaf is used.",
        ),
    ] = None,
    log_list_source: Annotated[
        str | None,
        typer.Option("--log-list", metavar="FILE|URL", help=LOG_LIST_HELP),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(metavar="DATE", help="Time of check (default: now)."),
    ] = None,
    servername: ServernameOption = None,
    connect: ConnectOption = None,
    cafile: CafileOption = None,
    timeout: TimeoutOption = 10.0,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Verify a certificate's embedded SCTs and audit the Chrome and Apple CT policies.

    For each embedded SCT: the log, its operator and state, the timestamp and whether the
    signature verifies. Then each policy's verdict, requirement by requirement.

    This is an AUDIT of what the certificate carries, not what a browser enforces: SCTs
    delivered in the TLS handshake or in a stapled OCSP response are not seen (Python's
    ssl module does not expose them). A HOST is probed and its verified chain gives the
    issuer; for a file, the issuer comes from --issuer or from the rest of the bundle.

    An SCT that cannot be decoded (an unknown version, malformed extensions) is shown as
    malformed and does not count; as in Chromium, the other SCTs still do.

    Exit 0 when both policies are met, 1 when one is not or an SCT has a bad signature,
    3 when it could not be decided (no issuer, or no handshake).
    """
    now = parse_when(at)
    # The list first: a missing or broken list is an input error, found before any network.
    log_list = load_for_cli(log_list_source, dt.datetime.now(dt.timezone.utc), at=now)
    if _is_file(target):
        subject = _from_file(target)
    else:
        check_timeout(timeout)
        subject = _from_host(target, servername, connect, cafile, timeout)
    if issuer_file is not None:
        subject = _with_issuer_file(subject, issuer_file)
    scts = embedded_sct_items(subject.leaf)
    if subject.issuer is None and any(isinstance(s, SCT) for s in scts):
        # Without the issuer the SCTs cannot be verified; a malformed one needs no issuer.
        rows = [
            _Row(
                sct,
                verify_sct(sct, subject.leaf, issuer=None, log_list=log_list, now=now),
                log_list,
            )
            if isinstance(sct, MalformedSCT)
            else _Row(sct, None, log_list)
            for sct in scts
        ]
        reason = (
            "no issuer certificate (the SCTs sign its key hash): give it with --issuer FILE"
            + (", or after the leaf in the file" if subject.source == "file" else "")
        )
        chrome, apple = undecided("chrome", reason), undecided("apple", reason)
    else:
        results = verify_embedded(subject.leaf, subject.issuer, log_list, now)
        rows = [_Row(r.sct, r, log_list) for r in results]
        chrome = audit_chrome(subject.leaf, results, log_list, now)
        apple = audit_apple(subject.leaf, results, log_list, now)
    if json_:
        emit_json(_to_json(target, subject, log_list, rows, chrome, apple, now))
    else:
        _show(subject, log_list, rows, (chrome, apple), now)
    raise typer.Exit(_exit_status(rows, chrome, apple))


def _with_issuer_file(subject: _Subject, path: str) -> _Subject:
    """``subject`` with its issuer from ``path``: the certificate there that signed the
    leaf (a full chain file may hold the leaf and the root too), else one its issuer name
    names, else the first, with a warning."""
    certs = _certificates(path)
    given = _issuer_among(subject.leaf, certs, path)
    if given is None:
        given = certs[0]
        err().print(
            f"warning: {printable(path)} did not sign this certificate: its SCTs will not "
            "verify against it",
            markup=False,
        )
    return _Subject(subject.leaf, subject.leaf_info, given, f"--issuer {path}", subject.source)


def _exit_status(rows: list[_Row], chrome: PolicyVerdict, apple: PolicyVerdict) -> int:
    bad = any(r.result is not None and r.result.status is SCTStatus.BAD_SIGNATURE for r in rows)
    if bad or chrome.compliant is False or apple.compliant is False:
        return 1
    if chrome.compliant is None or apple.compliant is None:
        return 3
    return 0


def _both(chrome: PolicyVerdict, apple: PolicyVerdict) -> bool | None:
    if chrome.compliant is False or apple.compliant is False:
        return False
    if chrome.compliant is None or apple.compliant is None:
        return None
    return True


def _to_json(
    target: str,
    subject: _Subject,
    log_list: LogList,
    rows: list[_Row],
    chrome: PolicyVerdict,
    apple: PolicyVerdict,
    now: dt.datetime,
) -> dict[str, object]:
    issuer = (
        CertInfo.from_certificate(subject.issuer, "intermediate").to_json(now)
        if subject.issuer is not None
        else None
    )
    return {
        "target": target,
        "source": subject.source,
        "at": _iso(now),
        "certificate": subject.leaf_info.to_json(now),
        "lifetime_seconds": int(
            chrome_lifetime(
                subject.leaf.not_valid_before_utc, subject.leaf.not_valid_after_utc
            ).total_seconds()
        ),
        "issuer": issuer,
        "issuer_from": subject.issuer_from,
        "log_list": {
            "source": log_list.source,
            "kind": log_list.kind,
            "timestamp": _iso(log_list.timestamp) if log_list.timestamp else None,
            "logs": len(log_list.logs),
        },
        "scts": [row.to_json(i) for i, row in enumerate(rows, start=1)],
        "chrome": chrome.to_json(),
        "apple": apple.to_json(),
        "compliant": _both(chrome, apple),
        "audit_note": AUDIT_NOTE,
    }


_MARK = {True: "[green]✓[/green]", False: "[red bold]✗[/red bold]", None: "[magenta]?[/magenta]"}
_STATUS_STYLE = {
    "valid": "green",
    "bad-signature": "red bold",
    "unknown-log": "yellow",
    "log-not-trusted-at-time": "yellow",
    "future-timestamp": "yellow",
    "malformed": "yellow",
    "unverified": "magenta",
}


def _text(value: str) -> str:
    """Outside text (names from certificates and log lists) made safe for rich."""
    return escape(printable(value))


def _show(
    subject: _Subject,
    log_list: LogList,
    rows: list[_Row],
    verdicts: tuple[PolicyVerdict, PolicyVerdict],
    now: dt.datetime,
) -> None:
    console = out()
    leaf = subject.leaf
    lifetime = chrome_lifetime(leaf.not_valid_before_utc, leaf.not_valid_after_utc)
    console.print(f"[bold]Certificate[/bold]  {_text(subject.leaf_info.subject)}")
    console.print(f"  issuer      {_text(subject.leaf_info.issuer)}")
    issuer_note = (
        f"from {_text(subject.issuer_from)}"
        if subject.issuer_from
        else "[magenta]not found[/magenta]"
    )
    console.print(f"  issuer cert {issuer_note}")
    console.print(
        f"  validity    {leaf.not_valid_before_utc:%Y-%m-%d %H:%M:%S}Z → "
        f"{leaf.not_valid_after_utc:%Y-%m-%d %H:%M:%S}Z "
        f"(notAfter − notBefore: {lifetime.days} days"
        + (f" {lifetime - dt.timedelta(days=lifetime.days)}" if lifetime.seconds else "")
        + ")"
    )
    listed_at = f", published {log_list.timestamp:%Y-%m-%d}" if log_list.timestamp else ""
    console.print(
        f"  log list    {_text(log_list.source)} ({log_list.kind}, {len(log_list.logs)} logs"
        f"{listed_at})"
    )
    console.print(f"  checked at  {now:%Y-%m-%d %H:%M:%S}Z")
    console.print()
    if not rows:
        console.print(
            "[bold]Embedded SCTs[/bold]: [red bold]no SCTs[/red bold] in this certificate"
        )
    else:
        console.print(f"[bold]Embedded SCTs[/bold] ({len(rows)})")
    for i, row in enumerate(rows, start=1):
        _show_row(console, i, row)
    for verdict in verdicts:
        console.print()
        _show_verdict(console, verdict)
    console.print()
    console.print(f"[dim]{escape(AUDIT_NOTE)}[/dim]")


def _show_row(console: Console, index: int, row: _Row) -> None:
    sct, log = row.sct, row.log
    if sct.log_id is None:
        console.print(f"  [{index}] undecodable SCT ({len(sct.raw)} bytes)")
    elif log is None:
        console.print(f"  [{index}] unknown log {_b64(sct.log_id)}")
    else:
        state = log.state.value if log.state else "no state in the list"
        since = f" since {log.state_since:%Y-%m-%d}" if log.state and log.state_since else ""
        api = "static-ct-api" if log.tiled else "RFC 6962"
        operator = (
            f" — operator {_text(log.operator_at(sct.timestamp))}"
            if sct.timestamp is not None
            else ""
        )
        console.print(
            f"  [{index}] [bold]{_text(log.description)}[/bold]{operator}, {state}{since}, {api}"
        )
    if sct.timestamp is not None:
        stamp = f"{sct.timestamp:%Y-%m-%d %H:%M:%S}.{sct.timestamp.microsecond // 1000:03d}Z"
        index_text = f", leaf index {row.leaf_index}" if row.leaf_index is not None else ""
        console.print(f"      logged {stamp}{index_text}")
    style = _STATUS_STYLE.get(row.status, "bold")
    label = "SCT" if isinstance(sct, MalformedSCT) else "signature"
    console.print(f"      {label} [{style}]{row.status}[/{style}]: {_text(row.detail)}")


def _show_verdict(console: Console, verdict: PolicyVerdict) -> None:
    style = {True: "green", False: "red bold", None: "magenta"}[verdict.compliant]
    console.print(f"[{style}]{_text(verdict.summary)}[/{style}]")
    for line in verdict.lines:
        console.print(f"  {_MARK[line.met]} {_text(line.requirement)}")
        console.print(f"      found {_text(line.found)}")
    for note in verdict.notes:
        console.print(f"  note: {_text(note)}")
