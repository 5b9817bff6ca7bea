"""``pinwarden recommend HOST``: a pin set for a live chain, with a backup."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pinwarden.apps.backup import write_new_files
from pinwarden.apps.formats.toml_format import dumps
from pinwarden.apps.live import Endpoint
from pinwarden.apps.recommend import Recommendation, load_known_cas, recommend
from pinwarden.certs import CertInfo, load_objects
from pinwarden.cli._app import JSON_HELP, app
from pinwarden.cli._common import parse_when, probe_with_progress
from pinwarden.cli._output import emit_json, err, out
from pinwarden.cli.pin import _read
from pinwarden.errors import CertificateError, NetworkError
from pinwarden.pins import Pin
from pinwarden.probe import parse_target


def _backups(
    keys: list[str], csrs: list[str], certs: list[str], password: bytes | None
) -> list[tuple[str, Pin]]:
    found: list[tuple[str, Pin]] = []
    for kind, paths in (("private-key", keys), ("csr", csrs), ("certificate", certs)):
        for path in paths:
            objects = load_objects(_read(path), source=path, password=password)
            wanted = [
                o
                for o in objects
                if o.kind == kind or (kind == "private-key" and o.kind == "public-key")
            ]
            if not wanted:
                raise CertificateError(f"{path}: no {kind.replace('-', ' ')} in this file")
            for obj in wanted:
                label = f"backup {obj.kind} {path}" + (f" ({obj.subject})" if obj.subject else "")
                found.append((label, obj.pin))
    return found


@app.command("recommend")
def recommend_command(
    target: Annotated[str, typer.Argument(metavar="HOST[:PORT]", help="The live endpoint.")],
    backup_key: Annotated[
        list[str] | None,
        typer.Option(metavar="FILE", help="A key kept offline (private or public, PEM/DER)."),
    ] = None,
    backup_csr: Annotated[
        list[str] | None, typer.Option(metavar="FILE", help="A CSR of a key kept offline.")
    ] = None,
    backup_cert: Annotated[
        list[str] | None,
        typer.Option(metavar="FILE", help="A second CA's certificate (its key is pinned)."),
    ] = None,
    passphrase_file: Annotated[
        Path | None, typer.Option(help="Passphrase of an encrypted --backup-key.")
    ] = None,
    ca_data: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="More CA facts, shaped like the bundled table."),
    ] = None,
    cafile: Annotated[
        str | None, typer.Option(help="Trust store (PEM); default: the system store.")
    ] = None,
    nameserver: Annotated[
        str | None, typer.Option(metavar="IP[:PORT]", help="Resolve through this DNS server.")
    ] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", metavar="FILE", help="Write the policy file here.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite --out if it exists.")] = False,
    at: Annotated[
        str | None, typer.Option(metavar="DATE", help="Recommend as of this date.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds per DNS query and handshake.")] = 10.0,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Propose a pin set for a host from the chains its addresses serve: which level to
    pin and why (leaf lifetime, intermediate expiry, CAs that rotate intermediates),
    plus at least one backup pin outside the current chain. Prints a ready policy.

    Exit 0 with a recommendation, 1 when a served chain does not verify, 2 without a
    backup, 3 when an address could not be reached.
    """
    host, port = parse_target(target)
    password = _read(str(passphrase_file)).rstrip(b"\r\n") if passphrase_file else None
    backups = _backups(backup_key or [], backup_csr or [], backup_cert or [], password)
    extra = _read(str(ca_data)).decode("utf-8", "replace") if ca_data is not None else None
    known = load_known_cas(extra, extra_source=str(ca_data))
    now = parse_when(at)
    results = probe_with_progress(
        [Endpoint(host, port)],
        nameserver=nameserver,
        cafile=cafile,
        timeout=timeout,
        concurrency=16,
        quiet=json_,
    )
    failed = [r for r in results if r.network_error is not None]
    if failed:
        raise NetworkError("; ".join(f"{r.address or host}: {r.network_error}" for r in failed))
    unverified = [r for r in results if r.verified_chain is None]
    if unverified:
        for r in unverified:
            err().print(
                f"{r.endpoint} at {r.address}: the chain does not verify "
                f"({r.verification_error}); fix the deployment before pinning",
                markup=False,
            )
        raise typer.Exit(1)
    chains: dict[tuple[bytes, ...], tuple[CertInfo, ...]] = {}
    for r in results:
        chain = r.verified_chain or ()
        chains.setdefault(tuple(c.der for c in chain), chain)
    rec = recommend([host], list(chains.values()), backups, now=now, known_cas=known)
    text = dumps(rec.policy())
    if out_path is not None:
        write_new_files([(out_path, text.encode(), 0o644)], force=force)
    if json_:
        emit_json(_to_json(rec, text, [r.address for r in results]))
        return
    _show(rec, text, out_path)


def _to_json(rec: Recommendation, text: str, addresses: list[str]) -> dict[str, object]:
    return {
        "hosts": list(rec.hosts),
        "addresses": addresses,
        "level": rec.level,
        "reasons": list(rec.reasons),
        "pins": [{"pin": str(p.pin), "role": p.role, "of": p.label} for p in rec.pins],
        "expires": rec.expires.isoformat(),
        "warnings": list(rec.warnings),
        "known_ca": rec.known_ca.name if rec.known_ca else None,
        "policy": text,
    }


def _show(rec: Recommendation, text: str, out_path: Path | None) -> None:
    console = out()
    console.print(f"[bold]Pin the {rec.level}[/bold] for {escape(', '.join(rec.hosts))}, because:")
    for reason in rec.reasons:
        console.print(f"  - {escape(reason)}")
    console.print("\nPins:")
    for p in rec.pins:
        console.print(f"  {p.pin}  {p.role:<7}  {escape(p.label)}")
    for warning in rec.warnings:
        err().print(f"warning: {warning}", markup=False)
    if out_path is not None:
        console.print(f"\nwrote the policy to {escape(str(out_path))}")
        return
    console.print("\nPolicy (save as pins.toml):\n")
    console.print(text, markup=False, highlight=False)
