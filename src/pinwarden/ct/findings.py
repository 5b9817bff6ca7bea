"""What the CT monitor records of a matching certificate: the store's
:class:`~pinwarden.ct.store.Finding`, the alert payload (the keys of docs/json.md's "ct
monitor alerts", which the hook's variables are read from), and two files in the output
directory, ``<tbs[:2]>/<tbs>.pem`` (the certificate) and ``<tbs[:2]>/<tbs>.json`` (the
payload), named by the TBS hash so that a precertificate and its final certificate share
them.

For a precertificate entry the certificate stored is the precertificate submitted beside
the leaf, which the log's Merkle tree does not cover: it is kept only when its TBS (less the
poison) is the logged TBS, otherwise the finding has no PEM.

The files describe the certificate as its alert did: they are written for the first
sighting and left alone by later ones (another log, the final certificate of a
precertificate, a replay), which would otherwise put their own verdict and log in the
file the alert points to. Each write goes to a temporary file of its own in the same
directory and is renamed into place, so that a reader never sees half a file and two
writers (two sessions finding one certificate at once) never share a temporary file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import ssl
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pinwarden.ct.entries import LogEntry, certificate_tbs, tbs_hash
from pinwarden.ct.store import Finding
from pinwarden.ct.verdicts import Judgement
from pinwarden.ct.watch import WatchMatch
from pinwarden.errors import CTFormatError

__all__ = ["build_finding", "certificate_der", "iso", "write_files"]


def certificate_der(entry: LogEntry) -> bytes | None:
    """The certificate to store for ``entry`` (module docstring), or None."""
    der = entry.certificate_der
    if der is None or not entry.is_precert:
        return der
    try:
        return der if tbs_hash(certificate_tbs(der)) == entry.tbs_hash else None
    except CTFormatError:
        return None


def iso(value: datetime | None) -> str | None:
    """An aware datetime as ISO 8601 with ``Z``."""
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _serial_hex(serial: int | None) -> str:
    if serial is None:
        return ""
    # The serial's DER content octets in hex, as certspotter's SERIAL.
    return serial.to_bytes((serial.bit_length() + 8) // 8, "big", signed=True).hex()


def build_finding(
    entry: LogEntry,
    found: Sequence[WatchMatch],
    judgement: Judgement,
    *,
    output_dir: Path,
    log_name: str,
    log_id: str,
) -> tuple[Finding, dict[str, Any]]:
    """The finding and the alert payload for ``entry`` found in the log ``log_name``
    (``log_id`` in base64), matching the watch list entries ``found``."""
    der = certificate_der(entry)
    pem = ssl.DER_cert_to_PEM_cert(der) if der is not None else ""
    tbs_hex = entry.tbs_hash.hex()
    serial = _serial_hex(entry.serial)
    pin = entry.spki_pin
    matched = tuple(dict.fromkeys(name for match in found for name in match.names))
    names = entry.dns_names or matched
    items = tuple(match.item.key for match in found)
    folder = output_dir / tbs_hex[:2]
    cert_file = folder / f"{tbs_hex}.pem" if pem else None
    cert_sha256 = hashlib.sha256(der).digest() if der is not None else b""
    finding = Finding(
        tbs_hash=entry.tbs_hash,
        index=entry.index,
        verdict=judgement.verdict,
        reasons=judgement.reasons,
        names=names,
        issuer=entry.issuer or "",
        serial=serial,
        not_before=entry.not_before,
        not_after=entry.not_after,
        cert_sha256=cert_sha256,
        spki_pin=str(pin) if pin is not None else "",
        pem=pem,
        watch_items=items,
        is_precert=entry.is_precert,
    )
    payload: dict[str, Any] = {
        "watch_item": ", ".join(items),
        "watch_items": list(items),
        "names": list(names),
        "matched_names": list(matched),
        "verdict": judgement.verdict,
        "reasons": list(judgement.reasons),
        "issuer": entry.issuer,
        "serial": serial or None,
        "not_before": iso(entry.not_before),
        "not_after": iso(entry.not_after),
        "tbs_sha256": tbs_hex,
        "cert_sha256": cert_sha256.hex() or None,
        "pubkey_sha256": pin.digest.hex() if pin is not None else None,
        "spki_pin": finding.spki_pin or None,
        "is_precert": entry.is_precert,
        "entry_timestamp": iso(entry.timestamp),
        "cert_file": str(cert_file) if cert_file is not None else None,
        "json_file": str(folder / f"{tbs_hex}.json"),
        "logs": [{"log": log_name, "log_id": log_id, "index": entry.index}],
    }
    return finding, payload


def write_files(finding: Finding, payload: dict[str, Any], *, replace: bool = False) -> bool:
    """Write the PEM and JSON files named in ``payload`` (module docstring), unless the
    JSON file exists already (with ``replace``: in any case). Returns whether it wrote.
    Raises :class:`OSError` when a file cannot be written."""
    json_file = Path(payload["json_file"])
    if not replace and json_file.exists():
        return False
    json_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if payload["cert_file"] is not None:
        _atomic_write(Path(payload["cert_file"]), finding.pem)
    # The JSON last: its presence says the files are complete.
    _atomic_write(json_file, json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return True


def _atomic_write(path: Path, text: str) -> None:
    # Readers (a hook, a human) never see half a file, even after a crash; mkstemp gives
    # each writer its own temporary file.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
