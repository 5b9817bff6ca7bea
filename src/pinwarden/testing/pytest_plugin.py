"""pytest fixtures of the pinwarden test kit (registered through the ``pytest11`` entry
point, so they are available wherever pinwarden is installed).

* ``pinwarden_pki``: a fresh root CA, an intermediate and a leaf for ``localhost`` and
  ``127.0.0.1`` (:class:`PKI`).
* ``pinwarden_server``: a running :class:`~pinwarden.testing.TLSServer` serving that leaf.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from pinwarden.testing.ca import CA, Issued
from pinwarden.testing.server import TLSServer

__all__ = ["PKI", "pinwarden_pki", "pinwarden_server"]


@dataclass(frozen=True)
class PKI:
    """A root, an intermediate signed by it, and a leaf signed by the intermediate."""

    root: CA
    intermediate: CA
    leaf: Issued

    @property
    def root_pem(self) -> str:
        """The root certificate as PEM text: pass it as ``cadata`` to trust it."""
        return self.root.cert_pem.decode("ascii")


@pytest.fixture
def pinwarden_pki() -> PKI:
    root = CA("pinwarden fixture root")
    intermediate = root.intermediate("pinwarden fixture intermediate")
    return PKI(root, intermediate, intermediate.issue("localhost", "127.0.0.1"))


@pytest.fixture
def pinwarden_server(pinwarden_pki: PKI) -> Iterator[TLSServer]:
    with TLSServer(pinwarden_pki.leaf) as server:
        yield server
