"""``pinwarden pin FILE…``: the pin of every certificate, key and CSR in files."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pinwarden.certs import LoadedObject, load_objects
from pinwarden.cli._app import JSON_HELP, app
from pinwarden.cli._output import emit_json, out
from pinwarden.errors import CertificateError, InputError
from pinwarden.forms import KeyForms, forms_of_spki
from pinwarden.pins import certificate_der


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None


@app.command("pin")
def pin_command(
    files: Annotated[
        list[str], typer.Argument(metavar="FILE...", help="PEM or DER files; '-' reads stdin.")
    ],
    passphrase_file: Annotated[
        Path | None,
        typer.Option(help="File holding the passphrase of encrypted private keys."),
    ] = None,
    all_forms: Annotated[
        bool,
        typer.Option(
            "--all-forms",
            help="Also print the hashes often mistaken for the pin: raw-key SHA-256 "
            "(iOS SecKeyCopyExternalRepresentation), certificate fingerprints, SPKI SHA-1; "
            "base64 and hex.",
        ),
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Print the SPKI pin of every certificate, key and CSR in files.

    Reads PEM (any number of blocks, bundles included) and DER: certificates, private
    keys (PKCS#8 or traditional, encrypted with --passphrase-file), public keys, CSRs.
    Only the SPKI SHA-256 (`sha256/...`) is a pin; `--all-forms` shows the others so
    that a value found elsewhere can be recognised (see also `pinwarden identify`).
    """
    password: bytes | None = None
    if passphrase_file is not None:
        password = _read(str(passphrase_file)).rstrip(b"\r\n")
    found: list[LoadedObject] = []
    for path in files:
        data = _read(path)
        try:
            found.extend(load_objects(data, source=path, password=password))
        except CertificateError as exc:
            raise CertificateError(str(exc)) from None
    if json_:
        entries: list[dict[str, object]] = []
        for obj in found:
            entry: dict[str, object] = {
                "source": obj.source,
                "index": obj.index,
                "kind": obj.kind,
                "pin": str(obj.pin),
                "subject": obj.subject,
            }
            if all_forms:
                entry["forms"] = {
                    name: {"base64": base64.b64encode(d).decode(), "hex": d.hex()}
                    for name, d in _forms(obj).items()
                }
            entries.append(entry)
        emit_json(entries)
        return
    console = out()
    for obj in found:
        what = obj.kind + (f"  {escape(obj.subject)}" if obj.subject else "")
        console.print(f"{obj.pin}  {what}  [dim]({escape(obj.source)} #{obj.index})[/dim]")
        if all_forms:
            forms = _forms(obj)
            for name, digest in forms.items():
                label = "PIN " if name == "spki-sha256" else "    "
                console.print(f"  {label}{name:<15} {base64.b64encode(digest).decode()}")
                console.print(f"      {'':<15} {digest.hex()}")
            if forms.raw_key_sha256 is None:
                console.print("      (no raw-key form: Apple's SecKey has one for RSA and EC only)")


def _forms(obj: LoadedObject) -> KeyForms:
    assert obj.spki is not None
    cert_der = certificate_der(obj.certificate) if obj.certificate is not None else None
    return forms_of_spki(obj.spki, cert_der)
