"""The benchmarks' certificates, pin policies and HTTPS server.

The server is :class:`pinwarden.testing.TLSServer` on 127.0.0.1, run in a child process
so that its TLS and HTTP work neither competes with the measured client for the GIL nor
shows up in the client's timings as lock waits.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import pinwarden
from pinwarden.testing import CA, Issued, TLSServer, generate_key, pem

__all__ = ["HOSTNAME", "BenchPKI", "ServerProcess"]

HOSTNAME = "localhost"
"""The name clients connect to; the leaf covers it and the policy pins it."""

_START_TIMEOUT = 60.0
_REPLY_TIMEOUT = 10.0


@dataclass(frozen=True)
class BenchPKI:
    """root → intermediate → leaf (ECDSA P-256, as the test kit makes them), plus two keys
    that are in no chain: ``backup`` (the policy's backup pin) and ``spare`` (for a policy
    that must fail)."""

    root: CA
    intermediate: CA
    leaf: Issued
    backup: pinwarden.Pin
    spare: pinwarden.Pin

    @classmethod
    def create(cls) -> BenchPKI:
        root = CA("pinwarden bench root")
        intermediate = root.intermediate("pinwarden bench intermediate")
        leaf = intermediate.issue(HOSTNAME, "127.0.0.1")
        backup = pinwarden.Pin.from_public_key(generate_key().public_key())
        spare = pinwarden.Pin.from_public_key(generate_key().public_key())
        return cls(root, intermediate, leaf, backup, spare)

    @property
    def cadata(self) -> str:
        """The root as PEM text: the only trust anchor of both the pinned and plain side."""
        return self.root.cert_pem.decode("ascii")

    def policy(self) -> pinwarden.Policy:
        """Pins the intermediate, with a backup pin: what the benchmarks connect with."""
        return _policy(self.intermediate.pin, self.backup)

    def wrong_policy(self) -> pinwarden.Policy:
        """Pins two keys that are not in the chain: every connection must be refused."""
        return _policy(self.backup, self.spare)

    def chain_der(self) -> list[bytes]:
        """leaf, intermediate, root as DER: the chain OpenSSL verifies for the server."""
        certs = (self.leaf.cert, self.intermediate.cert, self.root.cert)
        return [c.public_bytes(serialization.Encoding.DER) for c in certs]


def _policy(*pins: pinwarden.Pin) -> pinwarden.Policy:
    return pinwarden.Policy.from_dict(
        {"pin": [{"hosts": [HOSTNAME], "pins": [str(p) for p in pins]}]}
    )


def _serve(
    leaf_pem: bytes, key_pem: bytes, chain_pem: bytes, root_pem: bytes, pipe: Connection
) -> None:
    """Child process: serve the leaf and its chain until told to stop."""
    key = serialization.load_pem_private_key(key_pem, None)
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise TypeError(f"unexpected key type {type(key).__name__}")
    issued = Issued(
        x509.load_pem_x509_certificate(leaf_pem),
        key,
        tuple(x509.load_pem_x509_certificates(chain_pem)),
        x509.load_pem_x509_certificate(root_pem),
    )
    with TLSServer(issued) as server:
        pipe.send(("ready", server.port))
        while True:
            command = pipe.recv()
            if command == "count":
                pipe.send((server.handshakes, server.failed_handshakes))
            else:
                break
    pipe.send(("stopped", server.handshakes))


class ServerProcess:
    """A :class:`~pinwarden.testing.TLSServer` in a spawned child process."""

    def __init__(self, pki: BenchPKI) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child_end = context.Pipe()
        leaf = pki.leaf
        self._process = context.Process(
            target=_serve,
            args=(leaf.cert_pem, leaf.key_pem, pem(*leaf.chain), pem(leaf.root), child_end),
            name="pinwarden-bench-server",
            daemon=True,
        )
        self.port = 0

    def start(self) -> ServerProcess:
        self._process.start()
        if not self._pipe.poll(_START_TIMEOUT):
            self._process.terminate()
            raise RuntimeError("the benchmark server did not start")
        status, port = self._pipe.recv()
        if status != "ready":
            raise RuntimeError(f"the benchmark server said {status!r}")
        self.port = int(port)
        return self

    def url(self, path: str = "/") -> str:
        return f"https://{HOSTNAME}:{self.port}{path}"

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def handshakes(self) -> tuple[int, int]:
        """(completed, failed) server-side TLS handshakes so far."""
        self._pipe.send("count")
        if not self._pipe.poll(_REPLY_TIMEOUT):
            raise RuntimeError("the benchmark server stopped answering")
        done, failed = self._pipe.recv()
        return int(done), int(failed)

    def stop(self) -> None:
        if self._process.is_alive():
            try:
                self._pipe.send("stop")
                if self._pipe.poll(_REPLY_TIMEOUT):
                    self._pipe.recv()
            except (OSError, EOFError):
                pass
            self._process.join(_REPLY_TIMEOUT)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(_REPLY_TIMEOUT)
        self._pipe.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
