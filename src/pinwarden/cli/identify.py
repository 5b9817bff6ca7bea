"""``pinwarden identify VALUE``: which hash of which certificate a value is."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pinwarden.certs import load_objects
from pinwarden.cli._app import JSON_HELP, app
from pinwarden.cli._common import check_timeout
from pinwarden.cli._output import emit_json, err, out
from pinwarden.cli.pin import _read
from pinwarden.errors import InputError
from pinwarden.forms import (
    FORM_DESCRIPTIONS,
    Candidate,
    Identification,
    forms_of_certificate,
    forms_of_spki,
    identify,
)
from pinwarden.pins import certificate_der
from pinwarden.probe import parse_target, probe


def _chain_candidates(
    target: str, servername: str | None, connect: str | None, cafile: str | None, timeout: float
) -> list[Candidate]:
    host, port = parse_target(target)
    result = probe(
        host, port, servername=servername, connect=connect, cafile=cafile, timeout=timeout
    )
    chain = result.verified_chain
    unverified = ""
    if chain is None:
        # Identification is diagnosis, not trust: the served chain is what we can offer,
        # but a match there is never reported as a pin to use (exit 1, "unverified").
        err().print(
            f"note: the chain of {target} did not verify ({result.verification_error}); "
            "identifying against the chain it served, which may not be the server's",
            markup=False,
        )
        chain = result.served_chain
        unverified = " (unverified)"
    return [
        Candidate(
            f"{target} [{i}] {info.position} {info.subject}{unverified}",
            forms_of_certificate(info.der),
        )
        for i, info in enumerate(chain)
    ]


def _file_candidates(path: str, password: bytes | None) -> list[Candidate]:
    found: list[Candidate] = []
    for obj in load_objects(_read(path), source=path, password=password):
        assert obj.spki is not None
        cert_der = certificate_der(obj.certificate) if obj.certificate is not None else None
        label = f"{path} #{obj.index} {obj.kind}" + (f" {obj.subject}" if obj.subject else "")
        found.append(Candidate(label, forms_of_spki(obj.spki, cert_der)))
    return found


def _to_json(value: str, matches: list[Identification]) -> dict[str, object]:
    return {
        "value": value,
        "matches": [
            {
                "form": m.form,
                "encoding": m.encoding,
                "is_pin": m.is_pin,
                "of": m.candidate.label,
                "pin": str(m.pin),
            }
            for m in matches
        ],
    }


@app.command("identify")
def identify_command(
    value: Annotated[
        str,
        typer.Argument(
            help="A hash: sha256/<base64>, pin-sha256=\"…\", bare base64 or hex (':' allowed)."
        ),
    ],
    host: Annotated[
        str | None,
        typer.Option(metavar="HOST[:PORT]", help="Compare with every certificate of its chain."),
    ] = None,
    cert: Annotated[
        list[str] | None,
        typer.Option(
            metavar="FILE", help="Compare with the certificates, keys and CSRs in FILE (repeat)."
        ),
    ] = None,
    servername: Annotated[str | None, typer.Option(help="SNI name for --host.")] = None,
    connect: Annotated[
        str | None, typer.Option(metavar="IP", help="Address to connect to for --host.")
    ] = None,
    cafile: Annotated[
        str | None, typer.Option(help="CA certificates (PEM) to verify --host with.")
    ] = None,
    passphrase_file: Annotated[
        Path | None, typer.Option(help="Passphrase of encrypted private keys in --cert files.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for --host.")] = 10.0,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Tell which hash a value is — SPKI pin, raw-key hash (iOS
    SecKeyCopyExternalRepresentation), certificate fingerprint, SPKI SHA-1 — and of
    which certificate or key; and give the SPKI pin to use instead.

    Exit 0 when the value is an SPKI pin of something given, 1 when it is another form
    (a trap), matches nothing, or matches only a chain that did not verify; 3 when
    --host cannot be reached.
    """
    if host is None and not cert:
        raise InputError("give --host HOST[:PORT] or --cert FILE to compare the value with")
    password = _read(str(passphrase_file)).rstrip(b"\r\n") if passphrase_file else None
    candidates: list[Candidate] = []
    for path in cert or ():
        candidates.extend(_file_candidates(path, password))
    if host is not None:
        check_timeout(timeout)
        candidates.extend(_chain_candidates(host, servername, connect, cafile, timeout))
    matches = identify(value, candidates)
    if json_:
        emit_json(_to_json(value, matches))
    else:
        _show(value, matches, len(candidates))
    if not any(m.is_pin and not m.candidate.label.endswith("(unverified)") for m in matches):
        raise typer.Exit(1)


def _show(value: str, matches: list[Identification], compared: int) -> None:
    console = out()
    if not matches:
        console.print(
            f"{escape(value)} matches no form of the {compared} certificate(s) and key(s) "
            "compared: it is not a hash of anything given."
        )
        return
    for m in matches:
        what = FORM_DESCRIPTIONS[m.form]
        console.print(f"[bold]{m.form}[/bold] ({m.encoding}) of {escape(m.candidate.label)}")
        console.print(f"  {escape(what)}")
        if m.is_pin:
            console.print(f"  [green]this is the pin[/green]: {m.pin}")
        else:
            console.print(f"  [yellow]use this pin instead[/yellow]: {m.pin}")
            console.print(f"  (in hex: {m.pin.hex})")
