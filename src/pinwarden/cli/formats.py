"""``pinwarden export`` and ``pinwarden import``: other tools' pin formats."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives import serialization

from pinwarden.apps.formats import (
    Exported,
    ExportOptions,
    export_policy,
    format_names,
    get_format,
    import_policy,
)
from pinwarden.apps.formats.toml_format import dumps
from pinwarden.certs import load_objects
from pinwarden.cli._app import JSON_HELP, app
from pinwarden.cli._output import emit_json, err
from pinwarden.errors import InputError, LossyExportError, PinFormatError
from pinwarden.pins import Pin
from pinwarden.policy import Policy

_FORMATS = ", ".join(format_names())


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step: a reader (or a crash) sees the old
    file or the new one, never half of it. Keeps an existing file's permissions."""
    target = path.resolve()
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, mode)
        os.replace(temp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None


def _certificates(paths: list[str]) -> tuple[bytes, ...]:
    ders: list[bytes] = []
    for path in paths:
        for obj in load_objects(_read(path), source=path):
            if obj.certificate is not None:
                ders.append(obj.certificate.public_bytes(serialization.Encoding.DER))
    return tuple(ders)


def _pins(texts: list[str], option: str) -> frozenset[Pin]:
    pins: set[Pin] = set()
    for text in texts:
        try:
            pins.add(Pin.parse(text))
        except PinFormatError as exc:
            raise PinFormatError(f"{option} {text[:80]!r}: {exc}") from None
    return frozenset(pins)


def _say(lines: list[str] | tuple[str, ...], prefix: str) -> None:
    console = err()
    for line in lines:
        console.print(f"{prefix}{line}", markup=False, soft_wrap=True, highlight=False)


def _export_json(
    name: str, source: str, result: Exported | None, out: Path | None, losses: tuple[str, ...]
) -> dict[str, Any]:
    return {
        "format": name,
        "source": source,
        "exported": result is not None,
        "out": str(out) if out is not None and result is not None else None,
        "text": result.text if result is not None else None,
        "losses": list(losses),
        "notes": list(result.notes) if result is not None else [],
    }


@app.command("export")
def export_command(
    policy_file: Annotated[
        str, typer.Argument(metavar="POLICY", help="pinwarden policy (TOML); '-' reads stdin.")
    ],
    format_: Annotated[
        str, typer.Option("--format", "-f", metavar="FORMAT", help=f"One of: {_FORMATS}.")
    ],
    lossy: Annotated[
        bool,
        typer.Option(
            "--lossy", help="Export even when the format cannot express the policy exactly."
        ),
    ] = False,
    chain: Annotated[
        list[str] | None,
        typer.Option(
            "--chain",
            metavar="CERTS.pem",
            help="Certificates of the pinned keys (repeatable): tells leaf pins from CA "
            "pins for ios-plist.",
        ),
    ] = None,
    leaf_pin: Annotated[
        list[str] | None,
        typer.Option(
            "--leaf-pin",
            metavar="PIN",
            help="A pin that is the key of a leaf certificate, e.g. a backup key for a "
            "future leaf (repeatable; ios-plist: NSPinnedLeafIdentities).",
        ),
    ] = None,
    ca_pin: Annotated[
        list[str] | None,
        typer.Option(
            "--ca-pin",
            metavar="PIN",
            help="A pin that is the key of a CA certificate, e.g. of a CA you may switch "
            "to (repeatable; ios-plist: NSPinnedCAIdentities).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Write here (atomically) instead of stdout."),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Write a pin policy in another tool's format (docs/formats.md).

    Prints the config on stdout (or writes --out); what the format cannot express is
    listed on stderr, and then nothing is written unless --lossy is given (exit 2).
    """
    data = _read(policy_file)
    source = "<stdin>" if policy_file == "-" else policy_file
    policy = get_format("toml").parse(data, source)
    options = ExportOptions(
        certificates=_certificates(chain or []),
        now=dt.datetime.now(dt.timezone.utc),
        leaf_pins=_pins(leaf_pin or [], "--leaf-pin"),
        ca_pins=_pins(ca_pin or [], "--ca-pin"),
    )
    try:
        result = export_policy(policy, format_, options, lossy=lossy)
    except LossyExportError as exc:
        if json_:
            emit_json(_export_json(format_, source, None, out, exc.losses))
        _say(
            [f"pinwarden: error: {format_} cannot express {source} exactly; nothing written:"],
            "",
        )
        _say(exc.losses, "  - ")
        _say(["Use --lossy to export anyway."], "")
        raise typer.Exit(2) from None
    if out is not None:
        write_atomic(out, result.text)
    if json_:
        emit_json(_export_json(format_, source, result, out, result.losses))
    elif out is None:
        sys.stdout.write(result.text)
        sys.stdout.flush()
    if result.losses:
        _say([f"{format_} differs from {source} (--lossy):"], "")
        _say(result.losses, "  - ")
    _say(result.notes, "note: ")
    if out is not None and not json_:
        _say([f"wrote {out}"], "")


@app.command("import")
def import_command(
    file: Annotated[
        str,
        typer.Argument(metavar="FILE", help="A config in another tool's format; '-' reads stdin."),
    ],
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            metavar="FORMAT",
            help=f"One of: {_FORMATS} (export-only formats cannot be imported).",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Write the policy here (atomically) instead of stdout."),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Read another tool's pin config and print it as a pinwarden policy (TOML).

    Notes on what reads differently in pinwarden go to stderr.
    """
    data = _read(file)
    source = "<stdin>" if file == "-" else file
    fmt = get_format(format_)
    notes: tuple[str, ...] = ()
    reader = getattr(fmt, "read", None)
    if fmt.importable and reader is not None:
        imported = reader(data, source)
        policy: Policy = imported.policy
        notes = imported.notes
    else:
        policy = import_policy(data, format_, source=source)
    text = dumps(policy)
    if out is not None:
        write_atomic(out, text)
    if json_:
        emit_json(
            {
                "format": format_,
                "source": source,
                "out": str(out) if out is not None else None,
                "policy": {"version": 1, "pin": [rule.to_dict() for rule in policy.rules]},
                "notes": list(notes),
            }
        )
    elif out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    _say(notes, "note: ")
    if out is not None and not json_:
        _say([f"wrote {out}"], "")
