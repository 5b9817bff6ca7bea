"""The test kit's throwaway PostgreSQL server."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pinwarden.testing.postgres import PostgresServer, PostgresUnavailable, find_postgres


def postgres_or_skip() -> None:
    """Skip without PostgreSQL's binaries, except in CI (PINWARDEN_REQUIRE_VECTORS=1)."""
    try:
        find_postgres()
    except PostgresUnavailable as exc:
        if os.environ.get("PINWARDEN_REQUIRE_VECTORS") == "1":
            pytest.fail(f"{exc} (PINWARDEN_REQUIRE_VECTORS=1: the PostgreSQL tests must run)")
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    postgres_or_skip()
    with PostgresServer(database="pinwarden") as running:
        yield running


def owner_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def test_the_server_answers_on_loopback_and_its_socket(server: PostgresServer) -> None:
    assert server.url == f"postgresql://pinwarden@127.0.0.1:{server.port}/pinwarden"
    with psycopg.connect(server.url) as conn:
        row = conn.execute(
            "SELECT current_user, current_database(), current_setting('listen_addresses'), "
            "current_setting('fsync')"
        ).fetchone()
    assert row == ("pinwarden", "pinwarden", "127.0.0.1", "off")
    assert (server.socket_dir / f".s.PGSQL.{server.port}").exists()
    with psycopg.connect(
        host=str(server.socket_dir), port=server.port, user="pinwarden", dbname="postgres"
    ) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_the_server_never_runs_as_root(server: PostgresServer) -> None:
    # PostgreSQL refuses root; as root the kit runs it as an unprivileged account.
    assert server.pid is not None
    assert owner_uid(server.pid) != 0
    assert owner_uid(server.pid) == os.stat(server.data_dir).st_uid


def test_databases_are_separate(server: PostgresServer) -> None:
    first = server.create_database("kit_first")
    second = server.create_database("kit_second")
    with psycopg.connect(first, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x int)")
    with psycopg.connect(second) as conn:
        assert conn.execute("SELECT to_regclass('t')").fetchone() == (None,)
    with pytest.raises(ValueError, match="use letters, digits"):
        server.create_database('x"; DROP DATABASE postgres; --')


def test_stop_removes_everything() -> None:
    postgres_or_skip()
    first = PostgresServer()
    second = PostgresServer()
    with first, second:
        assert first.port != second.port
        directory, pid, port = first.directory, first.pid, first.port
        assert first.running
    assert not directory.exists()
    assert not first.running and first.pid is None
    assert pid is not None and not Path(f"/proc/{pid}").exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    first.stop()  # twice is fine
    with pytest.raises(RuntimeError, match="not running"):
        first.directory  # noqa: B018 - the property raises


def test_missing_binaries_are_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PINWARDEN_POSTGRES_BIN", str(tmp_path))
    with pytest.raises(PostgresUnavailable, match="does not hold executable initdb and postgres"):
        find_postgres()
    with pytest.raises(PostgresUnavailable), PostgresServer():
        pass


def test_a_server_that_cannot_start_says_why() -> None:
    postgres_or_skip()
    server = PostgresServer(settings={"shared_buffers": "lots"})
    with pytest.raises(PostgresUnavailable, match=r"postgres exited .*shared_buffers"):
        server.start()
    assert not server.running
    with pytest.raises(RuntimeError, match="not running"):
        server.directory  # noqa: B018 - cleaned up: the property raises


def test_the_override_names_a_bin_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    postgres_or_skip()
    found = find_postgres()
    monkeypatch.setenv("PINWARDEN_POSTGRES_BIN", str(found.bin_dir))
    assert find_postgres() == found
    assert found.initdb.name == "initdb" and found.postgres.name == "postgres"


def test_it_refuses_to_run_the_server_as_root_or_a_missing_account() -> None:
    postgres_or_skip()
    with pytest.raises(PostgresUnavailable, match="'root': it is root"):
        PostgresServer(run_as="root").start()
    with pytest.raises(PostgresUnavailable, match="no unprivileged account"):
        PostgresServer(run_as="no-such-user-pinwarden").start()


def test_without_binaries_tests_skip_but_ci_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PINWARDEN_POSTGRES_BIN", str(tmp_path))
    monkeypatch.delenv("PINWARDEN_REQUIRE_VECTORS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="does not hold executable"):
        postgres_or_skip()
    monkeypatch.setenv("PINWARDEN_REQUIRE_VECTORS", "1")
    with pytest.raises(pytest.fail.Exception, match="the PostgreSQL tests must run"):
        postgres_or_skip()
