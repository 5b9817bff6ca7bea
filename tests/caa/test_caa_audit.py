"""``pinwarden caa audit`` end to end: the real CLI, in-process, against the test kit's
DNS server and a TLS server on 127.0.0.1 serving a test-kit leaf; the audited names
resolve to the loopback interface through ``loopback_names``. Also the asyncio API
(:func:`pinwarden.caa.audit.audit`) where the CLI cannot show it: progress, order.

Test-kit certificates are issued by ``O=pinwarden test kit``; the identities file
below maps that organisation to the issuer domain name ``ca.test``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinwarden.caa.audit import AuditResult, audit, audit_name
from pinwarden.caa.identities import parse_identities
from pinwarden.cli import main
from pinwarden.testing import CA, DNSServer, Issued, TLSServer, loopback_names

RESULT_KEYS = {
    "name",
    "status",
    "found_at",
    "dns_error",
    "issuer",
    "ca",
    "ca_domains",
    "may_issue",
    "may_issue_wildcard",
    "findings",
}
FINDING_KEYS = {"code", "severity", "message"}

TEST_KIT_CA = """\
[[ca]]
name = "Test Kit CA"
caa = ["ca.test"]
organizations = ["pinwarden test kit"]
source = "tests/caa/test_caa_audit.py"
"""

OK = "ok.audit.test"  # CAA allows ca.test: the CA serving it may renew
DENIED = "denied.audit.test"  # CAA allows only other.test: renewal will fail
NONE = "none.audit.test"  # no CAA anywhere: any CA may issue
BROKEN = "broken.audit.test"  # SERVFAIL
NOTE = "note.audit.test"  # wildcards governed differently: a note only
NAMES = (OK, DENIED, NONE, BROKEN, NOTE)


@dataclass(frozen=True)
class World:
    dns: DNSServer
    tls: TLSServer
    leaf: Issued
    cafile: Path
    identities: Path
    tmp: Path

    def argv(self, *names: str, identities: bool = True, json_: bool = True) -> list[str]:
        argv = ["caa", "audit", *names, "--nameserver", self.dns.nameserver]
        argv += ["--port", str(self.tls.port), "--cafile", str(self.cafile), "--timeout", "5"]
        if identities:
            argv += ["--identities", str(self.identities)]
        return [*argv, "--json"] if json_ else argv


@pytest.fixture(scope="module")
def pki() -> tuple[CA, CA]:
    root = CA("audit test root")
    return root, root.intermediate("audit test intermediate")


@pytest.fixture
def world(pki: tuple[CA, CA], tmp_path: Path) -> Iterator[World]:
    root, intermediate = pki
    leaf = intermediate.issue(*NAMES)
    cafile = tmp_path / "root.pem"
    cafile.write_bytes(root.cert_pem)
    identities = tmp_path / "cas.toml"
    identities.write_text(TEST_KIT_CA)
    with DNSServer() as dns, TLSServer(leaf) as tls, loopback_names(NAMES):
        dns.add(OK, "CAA", '0 issue "ca.test"')
        dns.add(DENIED, "CAA", '0 issue "other.test"')
        dns.add(DENIED, "CAA", '0 iodef "mailto:security@audit.test"')
        dns.add(NONE, "A", "127.0.0.1")
        dns.add(BROKEN, "CAA", '0 issue "ca.test"')
        dns.fail(BROKEN, "SERVFAIL")
        dns.add(NOTE, "CAA", '0 issue "ca.test"')
        dns.add(NOTE, "CAA", '0 issuewild ";"')
        yield World(dns, tls, leaf, cafile, identities, tmp_path)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(argv)
    captured = capsys.readouterr()
    assert captured.out, captured.err
    doc: dict[str, Any] = json.loads(captured.out)
    assert set(doc) == {"results", "summary"}
    for result in doc["results"]:
        assert set(result) == RESULT_KEYS
        assert all(set(f) == FINDING_KEYS for f in result["findings"])
    return code, doc


def _by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in doc["results"]}


def _codes(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["code"], f["severity"]) for f in result["findings"]]


# -- through the CLI, with TLS ------------------------------------------------------------


def test_audit_over_tls_flags_each_name(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _run(world.argv(*NAMES), capsys)
    assert code == 1  # an error finding wins over the unknown one
    results = _by_name(doc)
    assert [r["name"] for r in doc["results"]] == list(NAMES)  # input order
    issuer = world.leaf.cert.issuer.rfc4514_string()
    assert "O=pinwarden test kit" in issuer

    ok = results[OK]
    assert ok == {
        "name": OK,
        "status": "ok",
        "found_at": OK,
        "dns_error": None,
        "issuer": issuer,
        "ca": "Test Kit CA",
        "ca_domains": ["ca.test"],
        "may_issue": "ca.test",
        "may_issue_wildcard": "ca.test",
        "findings": [],
    }

    denied = results[DENIED]
    assert denied["status"] == "error"
    assert _codes(denied) == [("current-ca-not-allowed", "error")]
    message = denied["findings"][0]["message"]
    assert (
        "Test Kit CA (ca.test) issued the certificate for denied.audit.test served today" in message
    )
    assert "the next renewal will fail" in message
    assert (denied["may_issue"], denied["ca"]) == ("other.test", "Test Kit CA")

    none = results[NONE]
    assert none["status"] == "warning"
    assert _codes(none) == [("no-caa", "warning")]
    assert (none["found_at"], none["may_issue"]) == (None, "any CA")
    assert "pinwarden caa generate" in none["findings"][0]["message"]

    broken = results[BROKEN]
    assert broken["status"] == "unknown"
    assert _codes(broken) == [("dns-error", "unknown")]
    assert "answered SERVFAIL" in broken["dns_error"]
    assert broken["dns_error"] == broken["findings"][0]["message"]
    assert (broken["found_at"], broken["may_issue"], broken["may_issue_wildcard"]) == (
        None,
        None,
        None,
    )
    assert broken["ca"] == "Test Kit CA"  # TLS still told who serves it

    note = results[NOTE]
    assert note["status"] == "ok"  # a note does not count
    assert _codes(note) == [("wildcard-differs", "note")]
    assert note["may_issue_wildcard"] == "no CA (issuewild names no issuer)"

    assert doc["summary"] == {"ok": 2, "error": 1, "warning": 1, "unknown": 1}


def test_exit_3_for_unknown_when_there_is_no_error(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = _run(world.argv(OK, NONE, BROKEN), capsys)
    assert code == 3
    assert doc["summary"] == {"ok": 1, "warning": 1, "unknown": 1}


def test_exit_0_when_only_warnings_and_notes(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = _run(world.argv(OK, NONE, NOTE), capsys)
    assert code == 0
    assert doc["summary"] == {"ok": 2, "warning": 1}


def test_unknown_issuer_without_the_test_kit_in_the_table(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    other = world.tmp / "other.toml"
    other.write_text('[[ca]]\nname = "Other CA"\ncaa = ["other.test"]\norganizations = ["Other"]\n')
    argv = [*world.argv(OK, DENIED, identities=False), "--identities", str(other)]
    code, doc = _run(argv, capsys)
    assert code == 3  # nothing is known about the CA, so nothing is an error
    for name in (OK, DENIED):
        result = _by_name(doc)[name]
        assert result["status"] == "unknown"
        assert _codes(result) == [("unknown-ca", "unknown")]
        assert (result["ca"], result["ca_domains"]) == (None, [])
        assert result["issuer"] == world.leaf.cert.issuer.rfc4514_string()
        assert "add it with --identities" in result["findings"][0]["message"]


def test_unknown_issuer_with_the_bundled_table_only(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = _run(world.argv(OK, identities=False), capsys)
    assert code == 3
    assert _codes(doc["results"][0]) == [("unknown-ca", "unknown")]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_closed_port_is_a_tls_error(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    argv = world.argv(OK, NONE)
    argv[argv.index("--port") + 1] = str(port := _closed_port())
    code, doc = _run(argv, capsys)
    assert code == 3
    for result in doc["results"]:
        assert result["issuer"] is None and result["ca"] is None
        tls = [f for f in result["findings"] if f["code"] == "tls-error"]
        assert len(tls) == 1
        assert f"{result['name']}:{port}: no TLS handshake" in tls[0]["message"]
    # With CAA records, not knowing today's CA leaves the renewal an open question.
    assert _by_name(doc)[OK]["status"] == "unknown"
    # Without any, every CA may renew: the TLS failure is only a note.
    assert _codes(_by_name(doc)[NONE]) == [("no-caa", "warning"), ("tls-error", "note")]
    assert _by_name(doc)[NONE]["status"] == "warning"


def test_untrusted_certificate_is_a_tls_error(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = world.tmp / "stranger.pem"
    stranger.write_bytes(CA("a root nobody uses").cert_pem)
    argv = world.argv(OK)
    argv[argv.index("--cafile") + 1] = str(stranger)
    code, doc = _run(argv, capsys)
    assert code == 3
    finding = doc["results"][0]["findings"][0]
    assert finding["code"] == "tls-error"
    assert "the certificate does not verify" in finding["message"]


@pytest.fixture
def wildcard_world(world: World, pki: tuple[CA, CA]) -> Iterator[World]:
    """A leaf for *.wild.audit.test only, served for www.wild.audit.test."""
    leaf = pki[1].issue("*.wild.audit.test")
    with TLSServer(leaf) as tls, loopback_names(["www.wild.audit.test"]):
        yield World(world.dns, tls, leaf, world.cafile, world.identities, world.tmp)


def test_wildcard_leaf_with_issuewild_semicolon_is_an_error(
    wildcard_world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    dns = wildcard_world.dns
    dns.add("wild.audit.test", "CAA", '0 issue "ca.test"')
    dns.add("wild.audit.test", "CAA", '0 issuewild ";"')
    dns.add("www.wild.audit.test", "A", "127.0.0.1")
    code, doc = _run(wildcard_world.argv("www.wild.audit.test"), capsys)
    assert code == 1
    result = doc["results"][0]
    assert result["status"] == "error"
    assert result["found_at"] == "wild.audit.test"
    assert ("current-ca-not-allowed", "error") in _codes(result)
    # The same records with a plain leaf for the name: issue allows ca.test.
    assert result["may_issue"] == "ca.test"


def test_wildcard_leaf_is_judged_by_the_rrset_of_its_base(
    wildcard_world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # Renewing *.wild.audit.test, a CA looks for RelevantCAASet(wild.audit.test)
    # (RFC 8659 §3: "for *.X, start at X"): issuewild ";" there forbids it, whatever
    # www.wild.audit.test publishes for itself.
    dns = wildcard_world.dns
    dns.add("wild.audit.test", "CAA", '0 issue "ca.test"')
    dns.add("wild.audit.test", "CAA", '0 issuewild ";"')
    dns.add("www.wild.audit.test", "CAA", '0 issue "ca.test"')
    code, doc = _run(wildcard_world.argv("www.wild.audit.test"), capsys)
    result = doc["results"][0]
    assert ("current-ca-not-allowed", "error") in _codes(result), result["findings"]
    assert code == 1
    message = result["findings"][-1]["message"]
    assert "*.wild.audit.test" in message
    assert "*.www.wild.audit.test" not in message


def test_a_leaf_for_a_name_and_its_wildcard_is_judged_for_both(
    world: World, pki: tuple[CA, CA], capsys: pytest.CaptureFixture[str]
) -> None:
    # Served at apex.audit.test, a leaf for apex.audit.test and *.apex.audit.test is
    # renewed for both: issuewild ";" there forbids the wildcard half.
    leaf = pki[1].issue("apex.audit.test", "*.apex.audit.test")
    world.dns.add("apex.audit.test", "CAA", '0 issue "ca.test"')
    world.dns.add("apex.audit.test", "CAA", '0 issuewild ";"')
    with TLSServer(leaf) as tls, loopback_names(["apex.audit.test"]):
        both = World(world.dns, tls, leaf, world.cafile, world.identities, world.tmp)
        code, doc = _run(both.argv("apex.audit.test"), capsys)
    result = doc["results"][0]
    assert code == 1
    assert ("current-ca-not-allowed", "error") in _codes(result)
    assert "*.apex.audit.test" in result["findings"][-1]["message"]


def test_human_output(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(world.argv(OK, DENIED, NONE, json_=False))
    out = capsys.readouterr().out
    assert code == 1
    for name in (OK, DENIED, NONE):
        assert name in out
    assert "denied.audit.test: error current-ca-not-allowed: Test Kit CA (ca.test)" in out
    assert "none.audit.test: warning no-caa:" in out
    assert "1 error, 1 ok, 1 warning\n" in out
    assert "Test Kit CA" in out  # the "CA today" column


# -- without TLS, files, concurrency ------------------------------------------------------


def test_no_connect_audits_dns_only(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    before = world.tls.handshakes
    argv = [*world.argv(OK, DENIED, NONE, NOTE, identities=False), "--no-connect"]
    code, doc = _run(argv, capsys)
    assert code == 0  # no TLS: no CA today, so nothing can fail to renew
    assert world.tls.handshakes == before
    results = _by_name(doc)
    for result in results.values():
        assert (result["issuer"], result["ca"], result["ca_domains"]) == (None, None, [])
        assert all(f["code"] not in ("tls-error", "unknown-ca") for f in result["findings"])
    assert results[DENIED]["status"] == "ok"
    assert results[DENIED]["may_issue"] == "other.test"
    assert _codes(results[NONE]) == [("no-caa", "warning")]
    assert doc["summary"] == {"ok": 3, "warning": 1}


def test_no_connect_does_not_read_the_cafile(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*world.argv(OK), "--no-connect"]
    argv[argv.index("--cafile") + 1] = str(world.tmp / "missing.pem")
    code, doc = _run(argv, capsys)
    assert code == 0
    assert doc["results"][0]["status"] == "ok"


def test_names_from_a_file_with_comments(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    names = world.tmp / "names.txt"
    names.write_text(
        "# names we serve\n"
        "\n"
        f"{OK}   # the main site\n"
        f"  {NONE}\n"
        f"{OK.upper()}.\n"  # the same name again, spelled otherwise
        "#" + DENIED + "\n"  # commented out
    )
    code, doc = _run([*world.argv(NOTE), "--file", str(names)], capsys)
    assert code == 0
    assert [r["name"] for r in doc["results"]] == [NOTE, OK, NONE]


def test_concurrency_does_not_change_the_results(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = []
    for concurrency in ("1", "8"):
        runs.append(_run([*world.argv(*NAMES), "--concurrency", concurrency], capsys))
    assert runs[0] == runs[1]
    assert runs[0][0] == 1


# -- bad input exits 2 --------------------------------------------------------------------


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("pinwarden: error: ")
    assert captured.err.count("\n") == 1
    return captured.err


def test_no_names(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert "no names to audit" in _refused(world.argv(), capsys)
    empty = world.tmp / "empty.txt"
    empty.write_text("# nothing yet\n\n")
    assert "no names to audit" in _refused(world.argv("--file", str(empty)), capsys)


@pytest.mark.parametrize("value", ["0", "-3"])
def test_bad_concurrency(value: str, world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert "--concurrency" in _refused(world.argv(OK, "--concurrency", value), capsys)
    assert world.dns.queries == []


def test_bad_timeout_and_port(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert "--timeout" in _refused([*world.argv(OK), "--timeout", "0"], capsys)
    assert "--port" in _refused([*world.argv(OK), "--port", "70000"], capsys)


def test_bad_cafile(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = world.tmp / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    for path in (garbage, world.tmp / "missing.pem"):
        argv = world.argv(OK)
        argv[argv.index("--cafile") + 1] = str(path)
        assert "cannot load CA certificates" in _refused(argv, capsys)
    assert world.dns.queries == []


def test_malformed_identities_file(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    bad = world.tmp / "bad.toml"
    bad.write_text('[[ca]]\nname = "Test Kit CA"\ncaa = ["ca.test."]\n')
    err = _refused([*world.argv(OK, identities=False), "--identities", str(bad)], capsys)
    assert "bad.toml" in err and "ca[0].caa[0]" in err
    bad.write_text("[[ca]\n")
    assert "not valid TOML" in _refused(
        [*world.argv(OK, identities=False), "--identities", str(bad)], capsys
    )


def test_non_utf8_names_file(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    latin1 = world.tmp / "names.txt"
    latin1.write_bytes(b"ok.audit.test\nm\xfcnchen.audit.test\n")
    err = _refused(world.argv("--file", str(latin1)), capsys)
    assert "names.txt" in err and "not UTF-8" in err


def test_missing_names_file(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert "nowhere.txt" in _refused(world.argv("--file", str(world.tmp / "nowhere.txt")), capsys)


def test_a_name_that_is_not_a_domain_name(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert "not a domain name" in _refused([*world.argv(OK, "bad name"), "--no-connect"], capsys)


_NAME_FILES = st.one_of(
    st.binary(max_size=200),
    st.text(alphabet="ab-.*# \t\r\n\u00e9\u2028", max_size=80).map(str.encode),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=_NAME_FILES)
def test_any_names_file_is_audited_or_refused(content: bytes) -> None:
    # Any bytes: exit 2 with one line naming the problem, or an audit of the names read.
    with DNSServer() as dns, tempfile.TemporaryDirectory() as folder:
        names = Path(folder) / "names.txt"
        names.write_bytes(content)
        argv = ["--file", str(names), "--no-connect", "--json", "--timeout", "2"]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["caa", "audit", *argv, "--nameserver", dns.nameserver])
    if code == 2:
        assert out.getvalue() == ""
        assert err.getvalue().startswith("pinwarden: error: ")
        assert err.getvalue().count("\n") == 1
    else:
        assert code in (0, 3)
        doc = json.loads(out.getvalue())
        assert all(set(r) == RESULT_KEYS for r in doc["results"])
        assert doc["results"]


# -- the asyncio API -------------------------------------------------------------------------


def test_audit_reports_progress_and_keeps_the_input_order(world: World) -> None:
    seen: list[tuple[int, int]] = []
    table = parse_identities(TEST_KIT_CA)
    context = ssl.create_default_context(cafile=str(world.cafile))
    names = [NOTE, DENIED, OK]
    results: list[AuditResult] = asyncio.run(
        audit(
            names,
            concurrency=2,
            on_progress=lambda done, total: seen.append((done, total)),
            port=world.tls.port,
            nameserver=world.dns.nameserver,
            context=context,
            identities=table,
        )
    )
    assert [r.name for r in results] == names
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert [r.status for r in results] == ["ok", "error", "ok"]
    denied = results[1]
    assert denied.identity is not None and denied.identity.name == "Test Kit CA"
    assert [e.verdict.value for e in denied.evaluations] == ["denied"]


def test_audit_refuses_a_concurrency_below_one() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        asyncio.run(audit(["example.com"], concurrency=0, connect=False))


def test_audit_name_without_connecting(world: World) -> None:
    result = asyncio.run(
        audit_name(NONE, nameserver=world.dns.nameserver, connect=False, identities=())
    )
    assert result.status == "warning"
    assert (result.issuer, result.identity, result.evaluations) == (None, None, ())
    assert result.summary is not None and result.summary.name.any_ca


@pytest.mark.parametrize(
    ("record", "code", "severity"),
    [
        (
            '0 issue "ca.test; accounturi=https://acme.test/acct/1"',
            "renewal-conditional",
            "warning",
        ),
        ('0 issue "ca.test; validationmethods=dns-01"', "renewal-conditional", "warning"),
        ('0 issue "CA.TEST"', "ca-reads-differently", "warning"),
    ],
)
def test_an_allowed_renewal_with_strings_attached_is_not_plain_ok(
    world: World, record: str, code: str, severity: str, capsys: pytest.CaptureFixture[str]
) -> None:
    world.dns.add(NONE, "CAA", record)
    _, doc = _run(world.argv(NONE), capsys)
    result = doc["results"][0]
    assert (code, severity) in _codes(result), result["findings"]
    assert result["status"] == "warning"


def test_a_bad_name_in_the_file_is_refused_before_any_work_naming_its_line(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    names = world.tmp / "names.txt"
    names.write_text(f"{OK}\n# a comment\n1.2.3.4\n")
    before = len(world.dns.queries)
    assert (
        main(
            [
                "caa",
                "audit",
                "--file",
                str(names),
                "--no-connect",
                "--nameserver",
                world.dns.nameserver,
            ]
        )
        == 2
    )
    assert f"{names}:3" in capsys.readouterr().err
    assert len(world.dns.queries) == before
