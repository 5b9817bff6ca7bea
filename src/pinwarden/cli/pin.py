"""``pinwarden pin FILE…``: the pin of every certificate, key and CSR in files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pinwarden.certs import LoadedObject, load_objects
from pinwarden.cli._app import JSON_HELP, app
from pinwarden.cli._output import emit_json, out
from pinwarden.errors import CertificateError, InputError


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
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Print the SPKI pin of every certificate, key and CSR in files.

    Reads PEM (any number of blocks, bundles included) and DER: certificates, private
    keys (PKCS#8 or traditional, encrypted with --passphrase-file), public keys, CSRs.
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
        emit_json(
            [
                {
                    "source": obj.source,
                    "index": obj.index,
                    "kind": obj.kind,
                    "pin": str(obj.pin),
                    "subject": obj.subject,
                }
                for obj in found
            ]
        )
        return
    console = out()
    for obj in found:
        what = obj.kind + (f"  {escape(obj.subject)}" if obj.subject else "")
        console.print(f"{obj.pin}  {what}  [dim]({escape(obj.source)} #{obj.index})[/dim]")
