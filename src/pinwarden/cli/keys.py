"""``pinwarden keygen``: a new backup key (and CSR) and its pin."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pinwarden.apps.backup import KEY_TYPES, generate_backup_key, write_new_files
from pinwarden.cli._app import JSON_HELP, app
from pinwarden.cli._output import emit_json, err, out
from pinwarden.cli.pin import _read
from pinwarden.errors import InputError


@app.command("keygen")
def keygen_command(
    out_path: Annotated[
        Path, typer.Option("--out", metavar="FILE", help="Where to write the private key (PEM).")
    ],
    csr: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Also write a CSR for the key here.")
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option(help="The CSR's subject, RFC 4514: 'CN=api.example.com,O=Example'."),
    ] = None,
    san: Annotated[
        list[str] | None, typer.Option(metavar="NAME", help="A DNS name for the CSR (repeat).")
    ] = None,
    key_type: Annotated[
        str, typer.Option("--type", help=f"Key type: {', '.join(KEY_TYPES)}.")
    ] = "ec-p256",
    passphrase_file: Annotated[
        Path | None,
        typer.Option(help="Encrypt the key with the passphrase in this file (recommended)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = False,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Write a new private key (mode 0600, never over an existing file without --force)
    and optionally a CSR, and print its SPKI pin: the backup pin to ship before you
    need it. Keep the key offline; when the server key must be replaced, get a
    certificate for this key and the apps already in the field accept it.
    """
    if key_type not in KEY_TYPES:
        raise InputError(f"--type {key_type!r}: choose one of {', '.join(KEY_TYPES)}")
    if (csr is None) != (subject is None):
        raise InputError("--csr and --subject go together: the CSR needs a subject")
    if san and csr is None:
        raise InputError("--san needs --csr")
    passphrase = None
    if passphrase_file is not None:
        passphrase = _read(str(passphrase_file)).rstrip(b"\r\n")
        if not passphrase:
            raise InputError(f"{passphrase_file}: the passphrase file is empty")
    backup = generate_backup_key(
        key_type, passphrase=passphrase, csr_subject=subject, csr_names=san or ()
    )
    files = [(out_path, backup.key_pem, 0o600)]
    if csr is not None and backup.csr_pem is not None:
        files.append((csr, backup.csr_pem, 0o644))
    write_new_files(files, force=force)
    if json_:
        emit_json(
            {
                "key": str(out_path),
                "csr": str(csr) if csr is not None else None,
                "type": backup.key_type,
                "encrypted": backup.encrypted,
                "pin": str(backup.pin),
            }
        )
        return
    console = out()
    console.print(f"{backup.pin}")
    what = "encrypted " if backup.encrypted else ""
    err().print(
        f"wrote the {what}{backup.key_type} private key to {escape(str(out_path))} (mode 0600)"
        + (f" and a CSR to {escape(str(csr))}" if csr is not None else "")
        + ".\nShip the pin above as a backup pin now; keep the key offline"
        + ("" if backup.encrypted else " (it is NOT encrypted: consider --passphrase-file)")
        + "."
    )
