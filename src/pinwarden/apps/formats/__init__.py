"""Other tools' pin formats: export a :class:`~pinwarden.policy.Policy` to them and
import it back.

Each format lives in its own module, which defines ``FORMAT``: an object with the
:class:`PinFormat` shape. Modules are imported on first use, so the CLI starts fast.

A format that cannot express a policy exactly (no expiry in OkHttp, no ``*.`` wildcard
in Android...) lists every difference in :attr:`Exported.losses`; :func:`export_policy`
refuses such an export unless ``lossy=True``.
"""

from __future__ import annotations

import datetime as dt
import importlib
from dataclasses import dataclass, field
from typing import Protocol

from pinwarden.errors import InputError, LossyExportError
from pinwarden.pins import Pin
from pinwarden.policy import Policy

__all__ = [
    "ExportOptions",
    "Exported",
    "PinFormat",
    "export_policy",
    "format_names",
    "get_format",
    "import_policy",
]

# name -> module defining FORMAT. Export-only formats have importable = False.
_MODULES = {
    "toml": "pinwarden.apps.formats.toml_format",
    "okhttp-kotlin": "pinwarden.apps.formats.okhttp",
    "okhttp-java": "pinwarden.apps.formats.okhttp",
    "android-nsc": "pinwarden.apps.formats.android",
    "ios-plist": "pinwarden.apps.formats.ios",
    "trustkit-plist": "pinwarden.apps.formats.trustkit",
    "trustkit-swift": "pinwarden.apps.formats.trustkit",
    "hpkp": "pinwarden.apps.formats.hpkp",
    "swift-urlsession": "pinwarden.apps.formats.swift_urlsession",
    "python": "pinwarden.apps.formats.python_snippet",
}


@dataclass(frozen=True)
class ExportOptions:
    """What an export may need beyond the policy."""

    certificates: tuple[bytes, ...] = ()
    """DER certificates at hand (``--chain``): lets iOS tell leaf pins from CA pins."""
    now: dt.datetime | None = None
    """The time to turn an absolute expiry into a relative one (HPKP ``max-age``)."""
    leaf_pins: frozenset[Pin] = frozenset()
    """Pins the user declares keys of leaf certificates (``--leaf-pin``), such as a
    backup key for a future leaf; for iOS, they take precedence over ``certificates``."""
    ca_pins: frozenset[Pin] = frozenset()
    """Pins the user declares keys of CA certificates (``--ca-pin``), such as a CA one
    may switch to; for iOS, they take precedence over ``certificates``."""


@dataclass(frozen=True)
class Exported:
    """The text of an export, what it could not express, and notes for the user."""

    text: str
    losses: tuple[str, ...] = ()
    """Each way the exported config differs from the policy (empty: exact)."""
    notes: tuple[str, ...] = field(default=())
    """Warnings that do not change the meaning (e.g. HPKP is obsolete in browsers)."""


class PinFormat(Protocol):
    """The shape of a format module's ``FORMAT`` object."""

    name: str
    summary: str
    suffix: str
    importable: bool

    def export(self, policy: Policy, options: ExportOptions) -> Exported: ...

    def parse(self, data: bytes, source: str) -> Policy:
        """Read a config back; raises :class:`~pinwarden.errors.FormatError` (or another
        :class:`~pinwarden.errors.InputError`) naming ``source`` and the problem."""
        ...


def format_names(*, importable: bool | None = None) -> list[str]:
    """Every format name (only the importable ones with ``importable=True``)."""
    names = list(_MODULES)
    if importable is None:
        return names
    return [n for n in names if get_format(n).importable == importable]


def get_format(name: str) -> PinFormat:
    """The format called ``name``; :class:`~pinwarden.errors.InputError` if unknown."""
    module = _MODULES.get(name)
    if module is None:
        raise InputError(f"unknown format {name!r}; known: {', '.join(_MODULES)}")
    loaded = importlib.import_module(module)
    found: PinFormat = getattr(loaded, "FORMATS", {}).get(name) or loaded.FORMAT
    return found


def export_policy(
    policy: Policy, name: str, options: ExportOptions | None = None, *, lossy: bool = False
) -> Exported:
    """Write ``policy`` in format ``name``. Raises
    :class:`~pinwarden.errors.LossyExportError` when the format cannot express it exactly,
    unless ``lossy`` is true."""
    result = get_format(name).export(policy, options or ExportOptions())
    if result.losses and not lossy:
        raise LossyExportError(name, result.losses)
    return result


def import_policy(data: bytes, name: str, *, source: str = "<bytes>") -> Policy:
    """Read a policy from a config in format ``name``."""
    fmt = get_format(name)
    if not fmt.importable:
        raise InputError(f"{name} is an export-only format; it cannot be imported")
    return fmt.parse(data, source)
