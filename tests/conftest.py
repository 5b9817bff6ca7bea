"""Shared fixtures: a PKI per test, policies built from it, and outside test vectors."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import pinwarden
from pinwarden.testing import CA, Issued, generate_key
from pinwarden.testing.pytest_plugin import PKI

REPO = Path(__file__).resolve().parent.parent

pytest_plugins = ["pytester"]


def vectors(name: str) -> Path:
    """The folder of outside test vectors ``../shared/testdata/<name>``.

    Skips the test when it is absent (a bare clone), fails instead under
    PINWARDEN_REQUIRE_VECTORS=1 (CI). PINWARDEN_TESTDATA overrides the location.
    """
    candidates = [
        Path(os.environ["PINWARDEN_TESTDATA"]) if os.environ.get("PINWARDEN_TESTDATA") else None,
        REPO.parent / "shared" / "testdata",
        Path("/work/shared/testdata"),
    ]
    for base in candidates:
        if base is not None and (base / name / "SOURCES.md").is_file():
            return base / name
    message = f"outside test vectors {name!r} not found (looked in ../shared/testdata)"
    if os.environ.get("PINWARDEN_REQUIRE_VECTORS") == "1":
        pytest.fail(message + " and PINWARDEN_REQUIRE_VECTORS=1")
    pytest.skip(message)


@dataclass(frozen=True)
class World:
    """A PKI with everything the pinning tests need: root → intermediate → leaf for
    localhost/127.0.0.1, a backup key that is in no chain, and a second, unrelated
    trusted CA (for attacks)."""

    pki: PKI
    backup_pin: pinwarden.Pin
    other_root: CA

    @property
    def root(self) -> CA:
        return self.pki.root

    @property
    def intermediate(self) -> CA:
        return self.pki.intermediate

    @property
    def leaf(self) -> Issued:
        return self.pki.leaf

    @property
    def cadata(self) -> str:
        """Both trusted roots, PEM."""
        return (self.root.cert_pem + self.other_root.cert_pem).decode("ascii")

    def policy(self, *pins: pinwarden.Pin | str, **rule: Any) -> pinwarden.Policy:
        """A one-rule policy for ``localhost`` (override with hosts=[...])."""
        data: dict[str, Any] = {"hosts": ["localhost"], "pins": [str(p) for p in pins]}
        data.update(rule)
        return pinwarden.Policy.from_dict({"pin": [data]})

    def context(self, policy: pinwarden.Policy, **kwargs: Any) -> pinwarden.PinnedSSLContext:
        kwargs.setdefault("send_reports", False)
        return pinwarden.create_context(policy, cadata=self.cadata, **kwargs)


@pytest.fixture
def world(pinwarden_pki: PKI) -> World:
    backup = pinwarden.Pin.from_public_key(generate_key().public_key())
    return World(pinwarden_pki, backup, CA("unrelated trusted root"))


@pytest.fixture
def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


PolicyFactory = Callable[..., pinwarden.Policy]
