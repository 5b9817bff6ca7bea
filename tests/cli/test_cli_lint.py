"""``pinwarden lint`` end to end: policy files on disk, certificate files, and --live
against local TLS servers on two loopback addresses named by a local DNS server."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from pinwarden.apps.lint import RULES
from pinwarden.cli import main
from pinwarden.pins import Pin
from pinwarden.testing import CA, DNSServer, Issued, TLSServer, generate_key, pem
from tls_support import two_addresses

HOST = "api.example.com"
FINDING_KEYS = {"id", "name", "severity", "message", "key", "line", "fix"}
NO_EVIDENCE_SKIPPED = [
    "PW002",
    "PW003",
    "PW004",
    "PW005",
    "PW006",
    "PW007",
    "PW010",
    "PW014",
    "PW015",
    "PW017",
    "PW018",
    "PW019",
]


def _spare_pin() -> Pin:
    return Pin.from_public_key(generate_key().public_key())


def _future(days: int) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days)).date().isoformat()


@dataclass(frozen=True)
class Setup:
    """A root with two intermediates, a leaf for HOST under each, a backup key, and
    files in the (current) temporary folder."""

    root: CA
    intermediate: CA
    leaf: Issued
    other_intermediate: CA
    other_leaf: Issued
    backup: Pin
    folder: Path

    @property
    def cafile(self) -> str:
        path = self.folder / "root.pem"
        path.write_bytes(self.root.cert_pem)
        return "root.pem"


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    # Relative paths, as in a repository checkout: they appear as given in the output.
    monkeypatch.chdir(tmp_path)
    root = CA("lint root")
    intermediate = root.intermediate("lint intermediate A")
    other = root.intermediate("lint intermediate B")
    return Setup(
        root,
        intermediate,
        intermediate.issue(HOST),
        other,
        other.issue(HOST),
        _spare_pin(),
        tmp_path,
    )


def _toml(*rules: dict[str, Any]) -> str:
    """A policy in the documented layout, each pin on its own line."""
    parts = []
    for rule in rules:
        lines = ["[[pin]]"]
        for key, value in rule.items():
            if key == "pins":
                lines += ["pins = [", *(f'  "{p}",' for p in value), "]"]
            elif isinstance(value, bool):
                lines.append(f"{key} = {str(value).lower()}")
            elif key == "expires":
                lines.append(f"expires = {value}")
            else:
                lines.append(f"{key} = {json.dumps(value)}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _write(name: str, *rules: dict[str, Any]) -> str:
    Path(name).write_text(_toml(*rules), encoding="utf-8")
    return name


def _line_of(path: str, number: int | None) -> str:
    assert number is not None
    return Path(path).read_text(encoding="utf-8").split("\n")[number - 1]


def _lint_json(args: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    code = main(["lint", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def _findings(data: Any, file: int = 0) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = data["files"][file]["findings"]
    return found


def _by_id(data: Any, rule_id: str) -> list[dict[str, Any]]:
    return [f for file in data["files"] for f in file["findings"] if f["id"] == rule_id]


# -- output ---------------------------------------------------------------------


def test_text_output(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write("app.toml", {"hosts": [HOST], "pins": [setup.intermediate.pin, setup.backup]})
    assert main(["lint", path]) == 0  # a warning is not an error
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == (
        "app.toml:1: warning PW009 no-expiry: the rule for api.example.com has no expiry"
    )
    assert lines[1] == f"    fix: {RULES['PW009'].fix}"
    assert lines[-1] == "0 error(s), 1 warning(s), 0 note(s) in 1 policy"
    # What was not checked, and why, goes to stderr.
    assert "not checked" in captured.err
    assert "PW002 no-backup-pin" in captured.err


def test_text_output_points_at_the_pin(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    sha1 = Pin.from_certificate(setup.intermediate.cert, "sha1")
    pins = [setup.intermediate.pin, setup.backup, sha1]
    path = _write("app.toml", {"hosts": [HOST], "pins": pins, "expires": _future(60)})
    assert main(["lint", path]) == 0
    (line,) = [t for t in capsys.readouterr().out.splitlines() if "PW008" in t]
    where = line.split(": warning PW008 sha1-pin: ")[0]
    assert where.startswith("app.toml:")
    assert _line_of(path, int(where.split(":")[1])) == f'  "{sha1}",'


def test_error_exits_1(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(
        "app.toml",
        {"hosts": [HOST], "pins": [setup.intermediate.pin], "allow_single_pin": True},
    )
    assert main(["lint", path]) == 1
    out = capsys.readouterr().out
    assert "app.toml:3: error PW001 single-key:" in out
    assert f"fix: {RULES['PW001'].fix}" in out
    assert "1 error(s)" in out


def test_json_schema(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    sha1 = Pin.from_certificate(setup.intermediate.cert, "sha1")
    path = _write(
        "app.toml",
        {"hosts": [HOST], "pins": [setup.intermediate.pin, sha1], "allow_single_pin": True},
    )
    code, data = _lint_json([path], capsys)
    assert code == 1
    assert set(data) == {"files", "skipped_rules", "errors", "warnings", "notes"}
    (file,) = data["files"]
    assert file["source"] == "app.toml"
    findings = file["findings"]
    assert sorted(f["id"] for f in findings) == ["PW001", "PW008", "PW009"]
    for finding in findings:
        assert set(finding) == FINDING_KEYS
        rule = RULES[finding["id"]]
        assert finding["name"] == rule.name
        assert finding["severity"] == rule.severity
        assert finding["fix"] == rule.fix
        assert finding["message"]
        assert finding["key"].startswith("pin[0]")
    (pw008,) = _by_id(data, "PW008")
    assert pw008["key"] == "pin[0].pins[1]"
    assert _line_of(path, pw008["line"]) == f'  "{sha1}",'
    (pw009,) = _by_id(data, "PW009")
    assert _line_of(path, pw009["line"]) == "[[pin]]"
    assert (data["errors"], data["warnings"], data["notes"]) == (1, 2, 0)
    assert data["skipped_rules"] == NO_EVIDENCE_SKIPPED


def test_sarif(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    Path("policies").mkdir()
    path = _write(
        "policies/app.toml",
        {"hosts": [HOST, "**.co.uk"], "pins": [setup.intermediate.pin, setup.backup]},
    )
    assert main(["lint", path, "--sarif"]) == 1  # PW012 is an error
    log = json.loads(capsys.readouterr().out)
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    results = {r["ruleId"]: r for r in run["results"]}
    assert set(results) == {"PW009", "PW012"}
    for result in results.values():
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] == RULES[result["ruleId"]].severity
    location = results["PW012"]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "policies/app.toml"
    line = _line_of(path, location["region"]["startLine"])
    assert line == 'hosts = ["api.example.com", "**.co.uk"]'


def test_several_policies(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(
        "v2.toml",
        {"hosts": [HOST], "pins": [setup.intermediate.pin, setup.backup], "expires": _future(60)},
    )
    bad = _write("v1.toml", {"hosts": [HOST], "pins": [setup.leaf.pin], "allow_single_pin": True})
    code, data = _lint_json([good, bad], capsys)
    assert code == 1
    assert [f["source"] for f in data["files"]] == ["v2.toml", "v1.toml"]
    assert _findings(data, 0) == []
    assert {f["id"] for f in _findings(data, 1)} == {"PW001", "PW009"}


# -- options ------------------------------------------------------------------------


def test_ignore(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(
        "app.toml",
        {"hosts": [HOST], "pins": [setup.intermediate.pin], "allow_single_pin": True},
    )
    code, data = _lint_json([path, "--ignore", "PW009", "--ignore", "pw001"], capsys)
    assert code == 0
    assert _findings(data) == []
    assert data["errors"] == data["warnings"] == 0
    code, data = _lint_json([path, "--ignore", "PW002"], capsys)
    assert code == 1
    assert "PW002" not in data["skipped_rules"]
    assert "PW003" in data["skipped_rules"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--ignore", "PW999"], "PW999"),
        (["--json", "--sarif"], "--json"),
        (["--at", "next tuesday"], "next tuesday"),
        (["--live", "--concurrency", "0"], "--concurrency"),
    ],
)
def test_bad_options_exit_2(
    setup: Setup, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    path = _write("app.toml", {"hosts": [HOST], "pins": [setup.intermediate.pin, setup.backup]})
    assert main(["lint", path, *args]) == 2
    captured = capsys.readouterr()
    assert fragment in captured.err
    assert captured.out == ""


def test_at_a_date(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(
        "app.toml",
        {"hosts": [HOST], "pins": [setup.intermediate.pin, setup.backup], "expires": "2030-06-30"},
    )
    code, data = _lint_json([path, "--at", "2030-06-30"], capsys)
    assert code == 0 and _by_id(data, "PW016") == []
    code, data = _lint_json([path, "--at", "2030-07-01"], capsys)
    assert code == 0
    (finding,) = _by_id(data, "PW016")
    assert _line_of(path, finding["line"]) == "expires = 2030-06-30"


# -- certificates at hand -------------------------------------------------------------


def test_chain_enables_the_certificate_rules(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("chain.pem").write_bytes(setup.leaf.chain_pem)
    path = _write(
        "app.toml",
        {"hosts": [HOST], "pins": [setup.leaf.pin, setup.backup], "expires": _future(30)},
    )
    code, data = _lint_json([path], capsys)
    assert code == 0  # nothing to compare the pins with
    assert "PW003" in data["skipped_rules"]
    code, data = _lint_json([path, "--chain", "chain.pem", "--cafile", setup.cafile], capsys)
    assert code == 1
    (finding,) = _by_id(data, "PW003")
    assert "90 days" in finding["message"]
    assert data["skipped_rules"] == ["PW014", "PW015", "PW017", "PW018"]


def test_chain_certificate_fingerprint(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    Path("chain.pem").write_bytes(setup.leaf.chain_pem)
    der = setup.leaf.cert.public_bytes(Encoding.DER)
    fingerprint = Pin("sha256", hashlib.sha256(der).digest())
    path = _write(
        "app.toml",
        {
            "hosts": [HOST],
            "pins": [setup.intermediate.pin, fingerprint, setup.backup],
            "expires": _future(30),
        },
    )
    code, data = _lint_json([path, "--chain", "chain.pem", "--cafile", setup.cafile], capsys)
    assert code == 1
    (finding,) = _by_id(data, "PW004")
    assert finding["key"] == "pin[0].pins[1]"
    assert _line_of(path, finding["line"]) == f'  "{fingerprint}",'
    assert str(setup.leaf.pin) in finding["message"]


def test_pinned_root_and_the_trust_store(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    Path("full.pem").write_bytes(pem(setup.leaf.cert, setup.intermediate.cert, setup.root.cert))
    Path("other.pem").write_bytes(CA("another root").cert_pem)
    path = _write(
        "app.toml",
        {"hosts": [HOST], "pins": [setup.root.pin, setup.backup], "expires": _future(30)},
    )
    code, data = _lint_json([path, "--chain", "full.pem", "--cafile", "other.pem"], capsys)
    assert code == 1
    (finding,) = _by_id(data, "PW007")
    assert "other.pem" in finding["message"]
    assert _line_of(path, finding["line"]) == f'  "{setup.root.pin}",'
    code, data = _lint_json([path, "--chain", "full.pem", "--cafile", setup.cafile], capsys)
    assert code == 0
    assert _findings(data) == []


# -- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("[[pin]\nhosts = 1\n", "not valid TOML"),
        ('[[pin]]\nhosts = ["a.example.com"]\npins = ["sha256/abc"]\n', "pin[0].pins[0]"),
        ('[[pin]]\nhost = ["a.example.com"]\n', "unknown key"),
        ("\udcff", "UTF-8"),
    ],
)
def test_malformed_policy_exits_2_naming_the_file(
    setup: Setup, capsys: pytest.CaptureFixture[str], content: str, fragment: str
) -> None:
    good = _write("good.toml", {"hosts": [HOST], "pins": [setup.intermediate.pin, setup.backup]})
    Path("broken.toml").write_bytes(content.encode("utf-8", "surrogateescape"))
    assert main(["lint", good, "broken.toml", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing half-written for the good file
    assert "broken.toml" in captured.err
    assert fragment in captured.err
    assert len(captured.err.strip().splitlines()) == 1


def test_missing_policy_exits_2(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "nowhere.toml"]) == 2
    assert "nowhere.toml" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["key", "garbage", "empty-pem", "missing"])
def test_chain_that_is_not_a_certificate_exits_2(
    setup: Setup, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    chain = Path("chain.pem")
    if kind == "key":
        chain.write_bytes(setup.leaf.key_pem)
    elif kind == "garbage":
        chain.write_bytes(b"\x00\x01 not a certificate")
    elif kind == "empty-pem":
        chain.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    path = _write("app.toml", {"hosts": [HOST], "pins": [setup.intermediate.pin, setup.backup]})
    assert main(["lint", path, "--chain", str(chain)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "chain.pem" in captured.err


def test_cafile_that_is_not_a_bundle_exits_2(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("chain.pem").write_bytes(setup.leaf.chain_pem)
    Path("bundle.pem").write_text("nothing here\n")
    path = _write("app.toml", {"hosts": [HOST], "pins": [setup.intermediate.pin, setup.backup]})
    assert main(["lint", path, "--chain", "chain.pem", "--cafile", "bundle.pem"]) == 2
    assert "bundle.pem" in capsys.readouterr().err


# -- --live -------------------------------------------------------------------------


def _live_args(port: int, dns: DNSServer, setup: Setup) -> list[str]:
    return [
        "--live",
        "--port",
        str(port),
        "--nameserver",
        dns.nameserver,
        "--cafile",
        setup.cafile,
        "--timeout",
        "5",
    ]


def test_live_one_address_serves_a_chain_the_pins_do_not_match(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        "app.toml",
        {
            "hosts": [HOST],
            "pins": [setup.intermediate.pin, setup.backup],
            "expires": _future(60),
        },
    )
    with two_addresses(setup.leaf, setup.other_leaf) as port, DNSServer() as dns:
        dns.add(HOST, "A", "127.0.0.1")
        dns.add(HOST, "A", "127.0.0.2")
        code, data = _lint_json([path, *_live_args(port, dns, setup)], capsys)
    assert code == 1
    (lockout,) = _by_id(data, "PW014")
    assert lockout["severity"] == "error"
    assert f"{HOST}:{port} at 127.0.0.2" in lockout["message"]
    assert "127.0.0.1" not in lockout["message"]
    assert _line_of(path, lockout["line"]) == "pins = ["
    (unused,) = _by_id(data, "PW015")
    assert unused["key"] == "pin[0].pins[1]"
    assert str(setup.backup) in unused["message"]
    assert _line_of(path, unused["line"]) == f'  "{setup.backup}",'
    assert _by_id(data, "PW017") == []
    assert data["skipped_rules"] == []


def test_live_text_output(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(
        "app.toml",
        {"hosts": [HOST], "pins": [setup.intermediate.pin, setup.backup], "expires": _future(60)},
    )
    with two_addresses(setup.leaf, setup.other_leaf) as port, DNSServer() as dns:
        dns.add(HOST, "A", "127.0.0.1")
        dns.add(HOST, "A", "127.0.0.2")
        code = main(["lint", path, *_live_args(port, dns, setup)])
    assert code == 1
    out = capsys.readouterr().out
    assert (
        f"app.toml:3: error PW014 live-lockout: {HOST}:{port} at 127.0.0.2 serves a chain"
    ) in out
    assert "app.toml:5: note PW015 pin-not-served:" in out


def test_live_every_address_matches(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(
        "app.toml",
        {
            "hosts": [HOST],
            "pins": [setup.intermediate.pin, setup.other_intermediate.pin, setup.backup],
            "expires": _future(60),
        },
    )
    with two_addresses(setup.leaf, setup.other_leaf) as port, DNSServer() as dns:
        dns.add(HOST, "A", "127.0.0.1")
        dns.add(HOST, "A", "127.0.0.2")
        code, data = _lint_json([path, *_live_args(port, dns, setup)], capsys)
    assert code == 0
    assert [f["id"] for f in _findings(data)] == ["PW015"]  # the backup, as a note
    assert data["notes"] == 1


@pytest.mark.parametrize("fault", ["SERVFAIL", "NXDOMAIN"])
def test_live_name_that_does_not_resolve_exits_3(
    setup: Setup, capsys: pytest.CaptureFixture[str], fault: str
) -> None:
    path = _write(
        "app.toml",
        {
            "hosts": ["down.example.com", "*.cdn.example.com"],
            "pins": [setup.intermediate.pin, setup.backup],
            "expires": _future(60),
        },
    )
    with DNSServer() as dns:
        dns.add("other.example.com", "A", "127.0.0.1")
        if fault == "SERVFAIL":
            dns.fail("down.example.com", "SERVFAIL")
        code = main(["lint", path, *_live_args(443, dns, setup)])
    assert code == 3
    captured = capsys.readouterr()
    (line,) = [t for t in captured.out.splitlines() if "PW017" in t]
    assert line.startswith("app.toml:2: note PW017 live-unknown: down.example.com:443")
    assert fault in line
    assert "PW014" not in captured.out
    # A wildcard cannot be enumerated: said, not silently skipped.
    assert "*.cdn.example.com" in captured.err


def test_live_chain_that_does_not_verify_exits_3(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("other.pem").write_bytes(CA("another root").cert_pem)
    path = _write(
        "app.toml",
        {"hosts": [HOST], "pins": [setup.intermediate.pin, setup.backup], "expires": _future(60)},
    )
    with TLSServer(setup.leaf) as server, DNSServer() as dns:
        dns.add(HOST, "A", "127.0.0.1")
        args = _live_args(server.port, dns, setup)
        args[args.index("--cafile") + 1] = "other.pem"
        code, data = _lint_json([path, *args], capsys)
    assert code == 3
    (unknown,) = _by_id(data, "PW017")
    assert "127.0.0.1" in unknown["message"]
    assert "verify" in unknown["message"]
    assert _by_id(data, "PW014") == []


def test_live_error_outranks_unknown(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(
        "app.toml",
        {"hosts": [HOST], "pins": [setup.intermediate.pin, setup.backup], "expires": _future(60)},
        {
            "hosts": ["down.example.com"],
            "pins": [setup.intermediate.pin, setup.backup],
            "expires": _future(60),
        },
    )
    with two_addresses(setup.leaf, setup.other_leaf) as port, DNSServer() as dns:
        dns.add(HOST, "A", "127.0.0.1")
        dns.add(HOST, "A", "127.0.0.2")
        dns.fail("down.example.com", "SERVFAIL")
        code, data = _lint_json([path, *_live_args(port, dns, setup)], capsys)
    assert code == 1
    assert len(_by_id(data, "PW014")) == 1
    (unknown,) = _by_id(data, "PW017")
    assert unknown["key"] == "pin[1].hosts"


def test_live_failure_is_reported_in_the_file_that_pins_the_host(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _write(
        "v2.toml",
        {"hosts": [HOST], "pins": [setup.intermediate.pin, setup.backup], "expires": _future(60)},
    )
    down = _write(
        "v1.toml",
        {
            "hosts": ["down.example.com"],
            "pins": [setup.intermediate.pin, setup.backup],
            "expires": _future(60),
        },
    )
    with TLSServer(setup.leaf) as server, DNSServer() as dns:
        dns.add(HOST, "A", "127.0.0.1")
        dns.fail("down.example.com", "SERVFAIL")
        code, data = _lint_json([good, down, *_live_args(server.port, dns, setup)], capsys)
    assert code == 3
    assert [f["id"] for f in _findings(data, 0)] == ["PW015"]
    # Its host gave no chain: the certificate rules could not be checked (PW019) either.
    assert [f["id"] for f in _findings(data, 1)] == ["PW019", "PW017"]
