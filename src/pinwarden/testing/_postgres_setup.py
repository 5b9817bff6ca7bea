"""Finding PostgreSQL for :class:`~pinwarden.testing.postgres.PostgresServer`: where its
server binaries are (:func:`find_postgres`), which account runs them when this process is
root, and a free loopback port. Separate from the server so that what is looked up on
the machine reads apart from how a throwaway cluster is run."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Account",
    "PostgresBinaries",
    "PostgresUnavailable",
    "account_for",
    "find_postgres",
    "free_port",
    "traversable_by_others",
]

_ENV_BIN = "PINWARDEN_POSTGRES_BIN"
_SEARCH_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin")


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's server binaries (``initdb``, ``postgres``) are not installed, or the
    server could not be started. The message says which and how to install them."""


@dataclass(frozen=True)
class PostgresBinaries:
    """Where ``initdb`` and ``postgres`` were found."""

    bin_dir: Path

    @property
    def initdb(self) -> Path:
        return self.bin_dir / "initdb"

    @property
    def postgres(self) -> Path:
        return self.bin_dir / "postgres"


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,): newest installed major version first.
    digits = path.parent.name.split(".")
    return tuple(int(d) for d in digits if d.isdigit())


def _has_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in ("initdb", "postgres"))


def find_postgres() -> PostgresBinaries:
    """The directory holding ``initdb`` and ``postgres``; raises :class:`PostgresUnavailable`
    with an install hint when there is none."""
    override = os.environ.get(_ENV_BIN)
    if override:
        directory = Path(override)
        if _has_binaries(directory):
            return PostgresBinaries(directory)
        raise PostgresUnavailable(
            f"{_ENV_BIN}={override} does not hold executable initdb and postgres"
        )
    on_path = shutil.which("initdb")
    if on_path is not None:
        # Debian links only some binaries into PATH; resolve to the real bin directory.
        directory = Path(on_path).resolve().parent
        if _has_binaries(directory):
            return PostgresBinaries(directory)
    for pattern in _SEARCH_GLOBS:
        root = Path("/")
        matches = sorted(root.glob(pattern.lstrip("/")), key=_version_key, reverse=True)
        for directory in matches:
            if _has_binaries(directory):
                return PostgresBinaries(directory)
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, postgres) not found in $PINWARDEN_POSTGRES_BIN, "
        "PATH, /usr/lib/postgresql/*/bin or /usr/local/pgsql/bin; install them "
        "(Debian/Ubuntu: apt-get install postgresql)"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    home: str


def account_for(run_as: str | None) -> Account | None:
    """The account to run PostgreSQL as: None to stay ourselves (not root), else an
    unprivileged one, because postgres exits at once when started as root."""
    if run_as is None and os.geteuid() != 0:
        return None
    candidates = [run_as] if run_as is not None else ["postgres", "nobody"]
    for name in candidates:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid == 0:
            raise PostgresUnavailable(f"cannot run PostgreSQL as {name!r}: it is root")
        return Account(name, entry.pw_uid, entry.pw_gid, entry.pw_dir)
    raise PostgresUnavailable(
        f"running as root and no unprivileged account ({', '.join(candidates)}) to run "
        "PostgreSQL as; pass run_as= an existing account"
    )


def traversable_by_others(directory: Path) -> bool:
    """Whether an unprivileged account can reach ``directory`` (every ancestor has o+x)."""
    for part in (directory, *directory.parents):
        with contextlib.suppress(OSError):
            if not part.stat().st_mode & 0o001:
                return False
    return True
