"""The pinned context at socket level: where the check runs, what it refuses, resumption,
logging, callbacks, and sharing between threads. Real TLS on 127.0.0.1 throughout."""

from __future__ import annotations

import datetime as dt
import logging
import pickle
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

import pinwarden
import pinwarden.checker
from conftest import World
from pinwarden import Outcome, PinValidationError, Violation
from pinwarden.testing import TLSServer
from pinwarden.tls import PinnedSSLObject, PinnedSSLSocket, verified_chain
from tls_support import connect, get, memory_handshake, verdict

TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3


def test_context_keeps_full_validation(world: World) -> None:
    context = world.context(world.policy(world.intermediate.pin, world.backup_pin))
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version >= TLS12
    assert context.sslsocket_class is PinnedSSLSocket
    assert context.sslobject_class is PinnedSSLObject
    assert context.policy.rules[0].pins[0] == world.intermediate.pin


def test_default_trust_store_is_loaded(world: World) -> None:
    context = pinwarden.create_context(world.policy(world.intermediate.pin, world.backup_pin))
    # The system store may be a directory (loaded lazily) or a bundle; either way the
    # context must not be empty-handed and must verify.
    paths = ssl.get_default_verify_paths()
    assert context.cert_store_stats()["x509_ca"] > 0 or paths.capath or paths.cafile
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_unreadable_trust_anchors_are_an_input_error(world: World, tmp_path: object) -> None:
    policy = world.policy(world.intermediate.pin, world.backup_pin)
    with pytest.raises(pinwarden.CertificateError, match="cannot load trust anchors"):
        pinwarden.create_context(policy, cafile="/nonexistent/ca.pem")
    with pytest.raises(pinwarden.CertificateError):
        pinwarden.create_context(policy, cadata="not a certificate")


def test_policy_type_is_checked(world: World) -> None:
    with pytest.raises(TypeError):
        pinwarden.create_context({"pin": []})  # type: ignore[arg-type]


@pytest.mark.parametrize("position", ["leaf", "intermediate", "root"])
def test_verdict_names_the_matching_position(world: World, position: str) -> None:
    pin = {"leaf": world.leaf.pin, "intermediate": world.intermediate.pin, "root": world.root.pin}[
        position
    ]
    context = world.context(world.policy(pin, world.backup_pin))
    with TLSServer(world.leaf) as server, connect(context, server) as tls:
        result = verdict(tls)
        assert result.outcome is Outcome.MATCHED
        assert result.matched_position == ["leaf", "intermediate", "root"].index(position)
        assert b"200 OK" in get(tls)


def test_failure_is_a_certificate_error_with_every_field_set(world: World) -> None:
    context = world.context(world.policy(world.backup_pin, world.other_root.pin))
    with TLSServer(world.leaf) as server:
        with pytest.raises(PinValidationError) as info:
            connect(context, server)
        assert server.requests == []
    exc = info.value
    assert isinstance(exc, ssl.SSLCertVerificationError)
    assert isinstance(exc, ssl.SSLError)
    assert exc.verify_code == 50
    assert isinstance(exc.strerror, str) and "no pin matched" in exc.strerror
    assert exc.errno == 1
    assert exc.reason == "CERTIFICATE_VERIFY_FAILED"
    assert exc.verdict is not None and exc.verdict.outcome is Outcome.MISMATCH
    assert str(world.leaf.pin) in str(exc)
    assert str(world.backup_pin) in str(exc)
    copy = pickle.loads(pickle.dumps(exc))
    assert isinstance(copy, PinValidationError)
    assert copy.verify_message == exc.verify_message


def test_check_runs_before_the_first_byte_without_do_handshake_on_connect(world: World) -> None:
    context = world.context(world.policy(world.backup_pin, world.other_root.pin))
    with TLSServer(world.leaf) as server:
        tls = connect(context, server, do_handshake_on_connect=False)
        with pytest.raises(PinValidationError):
            tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        # The failed socket stays refused, whatever the caller tries next.
        with pytest.raises((PinValidationError, OSError)):
            tls.sendall(b"GET / HTTP/1.1\r\n\r\n")
        tls.close()
        assert server.requests == []


def test_explicit_do_handshake_checks_and_closes(world: World) -> None:
    context = world.context(world.policy(world.backup_pin, world.other_root.pin))
    with TLSServer(world.leaf) as server:
        tls = connect(context, server, do_handshake_on_connect=False)
        with pytest.raises(PinValidationError):
            tls.do_handshake()
        assert tls.fileno() == -1  # closed on failure
        assert server.requests == []


def test_deferred_handshake_passes_when_pins_match(world: World) -> None:
    context = world.context(world.policy(world.intermediate.pin, world.backup_pin))
    with TLSServer(world.leaf) as server:
        tls = connect(context, server, do_handshake_on_connect=False)
        with tls:
            assert b"200 OK" in get(tls)
            assert verdict(tls).outcome is Outcome.MATCHED


@pytest.mark.parametrize("switch", ["check_hostname", "verify_mode"])
def test_refuses_to_pin_when_verification_was_turned_off(world: World, switch: str) -> None:
    context = world.context(world.policy(world.intermediate.pin, world.backup_pin))
    context.check_hostname = False
    if switch == "verify_mode":
        context.verify_mode = ssl.CERT_NONE
    with TLSServer(world.leaf) as server:
        with pytest.raises(PinValidationError, match="verification was turned off"):
            connect(context, server)
        assert server.requests == []


def test_unpinned_host_relies_on_ca_validation_alone(world: World) -> None:
    context = world.context(
        world.policy(world.backup_pin, world.other_root.pin, hosts=["example.test"])
    )
    with TLSServer(world.leaf) as server, connect(context, server) as tls:
        assert verdict(tls).outcome is Outcome.NOT_PINNED
    untrusted = pinwarden.testing.CA("untrusted").issue()
    with TLSServer(untrusted) as server, pytest.raises(ssl.SSLCertVerificationError) as info:
        connect(context, server)
    assert not isinstance(info.value, PinValidationError)


@pytest.mark.parametrize("version", [TLS12, TLS13])
def test_resumed_session_is_checked_and_passes(world: World, version: ssl.TLSVersion) -> None:
    context = world.context(world.policy(world.intermediate.pin, world.backup_pin))
    with TLSServer(world.leaf, maximum_version=version) as server:
        with connect(context, server) as first:
            get(first)  # TLS 1.3 tickets arrive after the handshake
            session = first.session
        with connect(context, server, session=session) as again:
            assert again.session_reused
            assert verified_chain(again) == []  # CPython keeps no chain for a resumed session
            result = verdict(again)
            assert result.outcome is Outcome.MATCHED
            assert result.matched_position == 1
            assert b"200 OK" in get(again)


def test_memory_bio_connection_is_checked(world: World) -> None:
    good = world.context(world.policy(world.intermediate.pin, world.backup_pin))
    client, _ = memory_handshake(good, world.leaf.server_context())
    assert isinstance(client, PinnedSSLObject)
    assert verdict(client).outcome is Outcome.MATCHED
    bad = world.context(world.policy(world.backup_pin, world.other_root.pin))
    with pytest.raises(PinValidationError):
        memory_handshake(bad, world.leaf.server_context())


def test_expired_rule_fails_open_and_warns_once(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    yesterday = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)).date()
    context = world.context(world.policy(world.backup_pin, world.other_root.pin, expires=yesterday))
    with caplog.at_level(logging.WARNING, logger="pinwarden"), TLSServer(world.leaf) as server:
        for _ in range(3):
            with connect(context, server) as tls:
                assert verdict(tls).outcome is Outcome.EXPIRED
                assert b"200 OK" in get(tls)
    warnings = [r for r in caplog.records if "expired" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "NOT enforced" in warnings[0].getMessage()


def test_rule_is_enforced_until_its_expiry(world: World) -> None:
    expires = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    policy = world.policy(world.backup_pin, world.other_root.pin, expires="2030-01-01T00:00:00Z")
    before = world.context(policy, clock=lambda: expires - dt.timedelta(seconds=1))
    after = world.context(policy, clock=lambda: expires)
    with TLSServer(world.leaf) as server:
        with pytest.raises(PinValidationError):
            connect(before, server)
        with connect(after, server) as tls:
            assert verdict(tls).outcome is Outcome.EXPIRED


def test_report_only_lets_through_logs_and_calls_back(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Violation] = []
    policy = world.policy(world.backup_pin, mode="report-only")
    context = world.context(policy, on_violation=seen.append)
    with (
        caplog.at_level(logging.WARNING, logger="pinwarden"),
        TLSServer(world.leaf) as server,
        connect(context, server) as tls,
    ):
        assert b"200 OK" in get(tls)
    assert len(seen) == 1 and seen[0].blocked is False
    assert seen[0].report["mode"] == "report-only"
    assert seen[0].report["port"] == server.port
    assert any("report-only" in r.getMessage() for r in caplog.records)


def test_enforce_calls_back_then_blocks(world: World) -> None:
    seen: list[Violation] = []
    context = world.context(
        world.policy(world.backup_pin, world.other_root.pin), on_violation=seen.append
    )
    with TLSServer(world.leaf) as server, pytest.raises(PinValidationError):
        connect(context, server)
    assert [v.blocked for v in seen] == [True]


def test_a_failing_callback_never_changes_the_outcome(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(_: Violation) -> None:
        raise RuntimeError("callback bug")

    report_only = world.context(
        world.policy(world.backup_pin, mode="report-only"), on_violation=explode
    )
    enforce = world.context(
        world.policy(world.backup_pin, world.other_root.pin), on_violation=explode
    )
    with caplog.at_level(logging.ERROR, logger="pinwarden"), TLSServer(world.leaf) as server:
        with connect(report_only, server) as tls:
            assert b"200 OK" in get(tls)
        with pytest.raises(PinValidationError):
            connect(enforce, server)
    assert sum("on_violation callback failed" in r.getMessage() for r in caplog.records) == 2


def test_one_context_shared_by_many_threads(world: World) -> None:
    other_leaf = world.other_root.issue("localhost")
    context = world.context(world.policy(world.intermediate.pin, world.backup_pin))
    barrier = threading.Barrier(8)

    def attempt(server: TLSServer) -> str:
        barrier.wait(10)
        try:
            with connect(context, server) as tls:
                get(tls)
                return "passed"
        except PinValidationError:
            return "blocked"

    with TLSServer(world.leaf) as good, TLSServer(other_leaf) as bad:
        servers = [good, bad] * 4
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(attempt, servers))
    assert results == ["passed", "blocked"] * 4
    assert len(good.requests) == 4 and bad.requests == []


def _version_4(cert_der: bytes) -> bytes:
    """The same certificate claiming X.509 version 4: OpenSSL still reads it,
    cryptography refuses it — a server may send anything."""
    at = cert_der.find(b"\xa0\x03\x02\x01\x02")
    return cert_der[:at] + b"\xa0\x03\x02\x01\x03" + cert_der[at + 5 :]


def test_a_served_certificate_only_openssl_can_read_changes_nothing(world: World) -> None:
    junk = _version_4(world.other_root.issue("x.test").cert.public_bytes(Encoding.DER))
    seen: list[Violation] = []
    report_only = world.context(
        world.policy(world.backup_pin, mode="report-only"), on_violation=seen.append
    )
    enforce = world.context(
        world.policy(world.backup_pin, world.other_root.pin), on_violation=seen.append
    )
    with TLSServer(world.leaf, extra=[junk]) as server:
        with connect(report_only, server) as tls:
            assert b"200 OK" in get(tls)
        with pytest.raises(PinValidationError):
            connect(enforce, server)
    assert [v.blocked for v in seen] == [False, True]
    assert len(seen[0].report["served-certificate-chain"]) == 3
    assert ssl.PEM_cert_to_DER_cert(seen[0].report["served-certificate-chain"][2]) == junk


def test_an_unforeseen_error_in_the_check_fails_closed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("bug in the check")

    monkeypatch.setattr(pinwarden.checker.PinChecker, "check", broken)
    context = world.context(world.policy(world.intermediate.pin, world.backup_pin))
    with TLSServer(world.leaf) as server:
        tls = connect(context, server, do_handshake_on_connect=False)
        with pytest.raises(PinValidationError, match="could not complete") as info:
            tls.do_handshake()
        assert isinstance(info.value.__cause__, RuntimeError)
        assert tls.fileno() == -1
        assert server.requests == []
