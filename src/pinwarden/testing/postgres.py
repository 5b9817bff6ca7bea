"""A throwaway PostgreSQL server for tests: ``initdb`` into a temporary directory, ``postgres``
listening on 127.0.0.1 (a free port) and on a Unix socket in that directory, everything
removed on exit.

>>> with PostgresServer() as server:
...     url = server.create_database("case1")  # postgresql://pinwarden@127.0.0.1:PORT/case1

The binaries are looked up in ``$PINWARDEN_POSTGRES_BIN``, then ``PATH``, then the Debian and
source-build locations (``/usr/lib/postgresql/<version>/bin``, newest first, and
``/usr/local/pgsql/bin``); :func:`find_postgres` says where, or why not. When they are absent,
starting a server raises :class:`PostgresUnavailable`, so a test can skip with that message.

PostgreSQL refuses to run as root. When this process is root the cluster is created and run
as an unprivileged account (``postgres`` when it exists, else ``nobody``, or ``run_as=``):
the temporary directory is handed to that account and the commands are started with
``subprocess``'s ``user=``/``group=``, which needs no ``su``/``runuser`` binary and no shell.

The cluster trusts every local connection (``--auth=trust``): it listens on loopback only
and lives as long as the ``with`` block. Durability is turned off (``fsync``, full page
writes, synchronous commit) because a test cluster is never recovered after a crash.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from pinwarden.testing._loopback import Running
from pinwarden.testing._postgres_setup import (
    Account,
    PostgresBinaries,
    PostgresUnavailable,
    account_for,
    find_postgres,
    free_port,
    traversable_by_others,
)

__all__ = ["PostgresBinaries", "PostgresServer", "PostgresUnavailable", "find_postgres"]

_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "shared_buffers": "16MB",
    "max_connections": "40",
    "log_min_messages": "warning",
    "log_min_error_statement": "panic",
}
_STOP_TIMEOUT = 15.0


class PostgresServer(Running):
    """A PostgreSQL cluster of its own, for the length of a ``with`` block.

    ``url`` is ``postgresql://<user>@127.0.0.1:<port>/<database>`` (the ``postgres``
    database unless ``database=`` names another, which is then created);
    :meth:`create_database` makes a fresh database (one per test keeps tests apart without
    a cluster each). ``settings`` are extra ``postgresql.conf`` values (``-c name=value``).
    """

    def __init__(
        self,
        *,
        user: str = "pinwarden",
        database: str = "postgres",
        run_as: str | None = None,
        settings: Mapping[str, str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.user = user
        self.database = database
        self.host = "127.0.0.1"
        self.port = 0
        self._run_as = run_as
        self._settings = {**_SETTINGS, **(settings or {})}
        self._startup_timeout = startup_timeout
        self._account: Account | None = None
        self._tmp: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: Path | None = None

    # -- paths ---------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        if self._tmp is None:
            raise RuntimeError("the PostgreSQL server is not running")
        return self._tmp

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def socket_dir(self) -> Path:
        """The directory of the Unix socket (``host=`` for libpq)."""
        return self.directory

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def database_url(self, name: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{name}"

    @property
    def url(self) -> str:
        return self.database_url(self.database)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._process is not None:
            raise RuntimeError("the PostgreSQL server is already running")
        binaries = find_postgres()
        self._account = account_for(self._run_as)
        base = Path(tempfile.gettempdir())
        if self._account is not None and not traversable_by_others(base):
            base = Path("/tmp")  # noqa: S108 - TMPDIR is private; the account must reach it
        self._tmp = Path(tempfile.mkdtemp(prefix="pinwarden-pg-", dir=base))
        try:
            if self._account is not None:
                os.chown(self._tmp, self._account.uid, self._account.gid)
            self._log_file = self._tmp / "postgres.log"
            self._initdb(binaries)
            # A free port can be taken between the probe and postgres' bind: try again.
            for attempt in range(3):
                self.port = free_port()
                try:
                    self._launch(binaries)
                    break
                except PostgresUnavailable:
                    if attempt == 2 or "could not bind" not in self._log_tail():
                        raise
            if self.database != "postgres":
                self.create_database(self.database)
        except BaseException:
            self.stop()
            raise

    def _run(self, argv: list[str], what: str) -> None:
        try:
            done = subprocess.run(  # noqa: S603 - argv built here from found binaries
                argv,
                capture_output=True,
                env=self._env(),
                timeout=self._startup_timeout,
                check=False,
                user=self._uid(),
                group=self._gid(),
                extra_groups=self._groups(),
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresUnavailable(f"{what} failed: {exc}") from None
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode("utf-8", "replace").strip()
            raise PostgresUnavailable(f"{what} failed (exit {done.returncode}): {output[-2000:]}")

    def _env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env["LC_ALL"] = "C"
        if self._account is not None:
            env["HOME"] = str(self.directory)
            env["USER"] = env["LOGNAME"] = self._account.name
        return env

    def _uid(self) -> int | None:
        return self._account.uid if self._account is not None else None

    def _gid(self) -> int | None:
        return self._account.gid if self._account is not None else None

    def _groups(self) -> list[int] | None:
        # Drop root's supplementary groups too, not only its uid and gid.
        return [] if self._account is not None else None

    def _initdb(self, binaries: PostgresBinaries) -> None:
        self._run(
            [
                str(binaries.initdb),
                "--pgdata",
                str(self.data_dir),
                "--username",
                self.user,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            "initdb",
        )

    def _launch(self, binaries: PostgresBinaries) -> None:
        argv = [
            str(binaries.postgres),
            "-D",
            str(self.data_dir),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
        ]
        for name, value in self._settings.items():
            argv += ["-c", f"{name}={value}"]
        assert self._log_file is not None
        with open(self._log_file, "ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - argv built here
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                # Its own process group, so a Ctrl-C at the terminal reaches only the test
                # runner, which then shuts the server down in order.
                start_new_session=True,
                user=self._uid(),
                group=self._gid(),
                extra_groups=self._groups(),
            )
        deadline = time.monotonic() + self._startup_timeout
        while not self._ready():
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise PostgresUnavailable(
                    f"postgres exited with status {code} while starting: {self._log_tail()}"
                )
            if time.monotonic() > deadline:
                self._terminate()
                raise PostgresUnavailable(
                    f"postgres not ready after {self._startup_timeout:g}s: {self._log_tail()}"
                )
            time.sleep(0.05)

    def _ready(self) -> bool:
        # postmaster.pid's 8th line is the server status; "ready" once it accepts
        # connections (PostgreSQL >= 10, src/include/utils/pidfile.h).
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        if len(lines) < 8 or lines[7].strip() != "ready":
            return False
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True
        except OSError:
            return False

    def _log_tail(self) -> str:
        if self._log_file is None:
            return ""
        try:
            text = self._log_file.read_text("utf-8", "replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-6:])

    def _terminate(self) -> None:
        process = self._process
        if process is None:
            return
        # SIGINT is PostgreSQL's "fast" shutdown (roll back, disconnect, checkpoint);
        # SIGQUIT its "immediate" one, then a kill if even that hangs.
        for sig, wait in ((signal.SIGINT, _STOP_TIMEOUT), (signal.SIGQUIT, 5.0)):
            if process.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(wait)
        if process.poll() is None:
            process.kill()
            process.wait()
        self._process = None

    def stop(self) -> None:
        """Shut the server down and delete its directory (safe to call twice)."""
        self._terminate()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # -- databases -----------------------------------------------------------------------

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL (needs psycopg)."""
        if not name.replace("_", "").isalnum() or not name.isascii():
            raise ValueError(f"database name {name!r}: use letters, digits and '_'")
        # The test extra; imported here so the rest of the kit works without it.
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.database_url("postgres"), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.database_url(name)
