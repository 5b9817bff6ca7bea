"""The documentation stays true to the code: its examples load and its JSON tables
list exactly the keys the code emits."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

import pinwarden
from conftest import REPO, World
from pinwarden.certs import CertInfo
from pinwarden.cli import main
from pinwarden.probe import ProbeResult


def _toml_blocks(path: Path) -> list[str]:
    return re.findall(r"```toml\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL)


def _table_keys(path: Path, heading: str) -> set[str]:
    text = path.read_text(encoding="utf-8")
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    keys: set[str] = set()
    for row in re.findall(r"^\| (`[^|]+`) \|", section, re.MULTILINE):
        keys.update(re.findall(r"`([a-z_0-9]+)`", row))
    return keys


@pytest.mark.parametrize("doc", ["README.md", "docs/policy.md"])
def test_policy_examples_load_as_written(doc: str) -> None:
    blocks = _toml_blocks(REPO / doc)
    assert blocks, f"{doc} has no TOML example"
    for block in blocks:
        policy = pinwarden.Policy.from_toml(block, source=doc)
        rule = policy.rules[0]
        assert len(rule.pins) == 2
        assert rule.expires_at == dt.datetime(2027, 6, 2, tzinfo=dt.timezone.utc)
        assert policy.rule_for("x.cdn.example.com") is not None
        assert policy.rule_for("status.api.example.com") is None


def test_inspect_json_keys_are_documented(world: World) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    info = CertInfo.from_certificate(world.leaf.cert, "leaf")
    result = ProbeResult("h", 1, "h", "127.0.0.1", "TLSv1.3", "x", [info], [info], None)
    json_doc = REPO / "docs" / "json.md"
    assert set(result.to_json(now)) == _table_keys(json_doc, "## `pinwarden inspect --json`")
    assert set(info.to_json(now)) == _table_keys(json_doc, "## Certificate")


def test_pin_json_keys_are_documented(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "leaf.pem"
    path.write_bytes(world.leaf.cert_pem)
    assert main(["pin", str(path), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert set(row) == _table_keys(REPO / "docs" / "json.md", "## `pinwarden pin --json`")


def test_readme_starts_with_the_two_commands() -> None:
    head = "\n".join((REPO / "README.md").read_text(encoding="utf-8").splitlines()[:15])
    assert "make demo" in head
    assert "make test" in head


def _json_doc() -> Path:
    return REPO / "docs" / "json.md"


def _sub_table_keys(heading: str, after: str) -> set[str]:
    """Keys of the table that follows the line ``after`` within section ``heading``."""
    text = _json_doc().read_text(encoding="utf-8")
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    rest = section.split(after, 1)[1]
    table = re.search(r"(?:^\|.*\n)+", rest if after.startswith("|") else rest.lstrip("\n"), re.M)
    assert table is not None, f"no table after {after!r} in {heading}"
    keys: set[str] = set()
    for row in re.findall(r"^\| (`[^|]+`) \|", table.group(0), re.MULTILINE):
        keys.update(re.findall(r"`([a-z_0-9]+)`", row))
    return keys


def _pki_files(world: World, tmp_path: Path) -> tuple[Path, Path, Path]:
    chain = tmp_path / "chain.pem"
    chain.write_bytes(world.leaf.chain_pem + world.root.cert_pem)
    root = tmp_path / "root.pem"
    root.write_bytes(world.root.cert_pem)
    policy = tmp_path / "pins.toml"
    policy.write_text(
        f'[[pin]]\nhosts = ["localhost"]\npins = ["{world.intermediate.pin}", '
        f'"{world.backup_pin}"]\nexpires = 2027-01-01\n'
    )
    return chain, root, policy


def test_lint_rules_are_documented_as_they_are() -> None:
    from pinwarden.apps.lint import RULES

    text = (REPO / "docs" / "lint.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (PW\d{3}) \| `([a-z0-9-]+)` \| (\w+) \| ([^|]+) \|", text, re.M)
    assert [(i, n, s, d.strip()) for i, n, s, d in rows] == [
        (r.id, r.name, r.severity, r.summary) for r in RULES.values()
    ]


def test_new_command_json_keys_are_documented(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain, root, policy = _pki_files(world, tmp_path)

    def run(*argv: str) -> object:
        main(list(argv))
        return json.loads(capsys.readouterr().out)

    forms = run("pin", str(chain), "--all-forms", "--json")
    assert isinstance(forms, list)
    assert set(forms[0]) - _table_keys(_json_doc(), "## `pinwarden pin --json`") == {"forms"}
    assert _table_keys(_json_doc(), "## `pinwarden pin --all-forms --json`") == {"forms"}

    identified = run("identify", str(world.intermediate.pin), "--cert", str(chain), "--json")
    assert isinstance(identified, dict)
    heading = "## `pinwarden identify --json`"
    assert set(identified) == _sub_table_keys(heading, "| key |")
    assert set(identified["matches"][0]) == _sub_table_keys(heading, "Each match:")

    keygen = run("keygen", "--out", str(tmp_path / "k.pem"), "--json")
    assert isinstance(keygen, dict)
    assert set(keygen) == _table_keys(_json_doc(), "## `pinwarden keygen --json`")

    lint = run(
        "lint",
        str(policy),
        "--chain",
        str(chain),
        "--cafile",
        str(root),
        "--at",
        "2027-06-01",
        "--json",
    )
    assert isinstance(lint, dict)
    heading = "## `pinwarden lint --json`"
    assert set(lint) == _sub_table_keys(heading, "| key |")
    assert set(lint["files"][0]["findings"][0]) == _sub_table_keys(heading, "Each finding:")

    sim = run(
        "simulate",
        "--policy",
        str(policy),
        "--chain",
        str(chain),
        "--cafile",
        str(root),
        "--name",
        "localhost",
        "--json",
    )
    assert isinstance(sim, dict)
    heading = "## `pinwarden simulate --json`"
    assert set(sim) == _sub_table_keys(heading, "| key |")
    assert set(sim["results"][0]) == _sub_table_keys(heading, "Each result:")


def test_live_command_json_keys_are_documented(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pinwarden.testing import TLSServer

    _, root, policy = _pki_files(world, tmp_path)
    backup = tmp_path / "backup.pem"
    main(["keygen", "--out", str(backup)])
    capsys.readouterr()
    with TLSServer(world.leaf) as server:
        target = f"localhost:{server.port}"
        main(["check", "--policy", str(policy), target, "--cafile", str(root), "--json"])
        check = json.loads(capsys.readouterr().out)
        main(["recommend", target, "--cafile", str(root), "--backup-key", str(backup), "--json"])
        recommend = json.loads(capsys.readouterr().out)
    heading = "## `pinwarden check --json`"
    assert set(check) == _sub_table_keys(heading, "| key |")
    assert set(check["results"][0]) == _sub_table_keys(heading, "Each result:")
    assert set(recommend) == _table_keys(_json_doc(), "## `pinwarden recommend --json`")


def test_caa_json_keys_are_documented(capsys: pytest.CaptureFixture[str]) -> None:
    from pinwarden.testing.dns import DNSServer

    with DNSServer() as dns:
        dns.add("example.com", "CAA", '0 issue "letsencrypt.org"')
        ns = ["--nameserver", dns.nameserver, "--timeout", "3"]
        main(["caa", "check", "api.example.com", "--ca", "letsencrypt.org", *ns, "--json"])
        check = json.loads(capsys.readouterr().out)
        main(["caa", "audit", "api.example.com", "--no-connect", *ns, "--json"])
        audit = json.loads(capsys.readouterr().out)
    heading = "## `pinwarden caa check --json`"
    assert set(check) == _sub_table_keys(heading, "| key |")
    assert set(check["lookup"]) == _sub_table_keys(heading, "`lookup`:")
    assert set(check["summary"]) == _sub_table_keys(heading, "`summary`:")
    assert set(check["evaluation"]) == _sub_table_keys(heading, "`evaluation`:")
    heading = "## `pinwarden caa audit --json`"
    assert set(audit) == _sub_table_keys(heading, "| key |")
    assert set(audit["results"][0]) == _sub_table_keys(heading, "Each result:")


def test_ct_json_keys_are_documented(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pinwarden.apps.headers import HeadersReport, parse_header
    from pinwarden.testing.ct import TestLog, issue_with_scts, log_list_of

    logs = [TestLog("Log A", operator="A"), TestLog("Log B", operator="B", tiled=True)]
    issued = issue_with_scts(world.intermediate, "ct.example", logs)
    leaf, issuer, loglist = tmp_path / "leaf.pem", tmp_path / "issuer.pem", tmp_path / "l.json"
    leaf.write_bytes(issued.cert_pem)
    issuer.write_bytes(world.intermediate.cert_pem)
    loglist.write_text(json.dumps(log_list_of(logs).to_chrome_v3()))

    main(["ct", "check", str(leaf), "--issuer", str(issuer), "--log-list", str(loglist), "--json"])
    check = json.loads(capsys.readouterr().out)
    heading = "## `pinwarden ct check --json`"
    assert set(check) == _sub_table_keys(heading, "| key |")
    assert set(check["scts"][0]) == _sub_table_keys(heading, "Each SCT:")
    assert set(check["chrome"]) == _sub_table_keys(heading, "Each verdict:")

    main(["ct", "loglist", "show", "--log-list", str(loglist), "--json"])
    show = json.loads(capsys.readouterr().out)
    heading = "## `pinwarden ct loglist show --json`"
    assert set(show) == _sub_table_keys(heading, "| key |")
    assert set(show["operators"][0]["logs"][0]) == _sub_table_keys(heading, "Each log")

    header = parse_header("Public-Key-Pins", 'pin-sha256="x"; max-age=5', "https://h/")
    report = HeadersReport("https://h/", 200, "https://h/", headers=(header,)).to_json()
    heading = "## `pinwarden headers --json`"
    assert set(report) == _sub_table_keys(heading, "| key |")
    assert set(report["headers"][0]) == _sub_table_keys(heading, "Each header:")  # type: ignore[index]


def test_ct_log_json_keys_are_documented(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pinwarden.testing import LocalCTLog

    with LocalCTLog("static") as log:
        log.grow(3)
        log.publish()
        log.write_log_list(tmp_path / "l.json")
        ll = ["--log-list", str(tmp_path / "l.json")]
        assert main(["ct", "log", "get", log.log.description, "0", "1", *ll, "--json"]) == 0
        got = json.loads(capsys.readouterr().out)
        assert main(["ct", "log", "verify", log.log.description, *ll, "--json"]) == 0
        verified = json.loads(capsys.readouterr().out)
    heading = "## `pinwarden ct log sth --json`, `ct log get --json`, `ct log verify --json`"
    common = _sub_table_keys(heading, "| key |") - {"misbehaviour"}  # only on failure
    assert set(got) == common | {"entries"}
    assert set(got["tree_head"]) == _sub_table_keys(heading, "Tree head:")
    assert set(got["entries"][0]) == _sub_table_keys(heading, "`ct log get` adds `entries`")
    assert set(verified) == common | {
        "start",
        "end",
        "entries",
        "root_recomputed",
    }


def test_ct_monitor_json_keys_are_documented(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pinwarden.testing import LocalCTLog, write_log_list

    watch = tmp_path / "watch.txt"
    watch.write_text(".example.com pins=sha256/" + "A" * 43 + "=\n", encoding="utf-8")
    with LocalCTLog("rfc6962") as log:
        log.issue("www.example.com")
        log.grow(3)
        log.publish()
        args = ["ct", "monitor", "--watch", str(watch), "--once", "--from-start", "--json"]
        args += ["--log-list", str(write_log_list(tmp_path / "l.json", log))]
        args += ["--state", f"sqlite:///{tmp_path / 's.db'}", "--output-dir", str(tmp_path)]
        assert main(args) == 1
    *events, summary = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    heading = "## `pinwarden ct monitor` alerts and `--json`"
    (finding,) = events
    assert finding["verdict"] == "unexpected"
    documented = _sub_table_keys(heading, "| key |") | {"id", "event"}
    discovered_only = documented - {"log", "log_id", "kind", "message", "evidence"}
    discovered_only -= {"position", "verified_tree_size", "since", "tree_size"}
    assert set(finding) == discovered_only
    assert set(summary) == _sub_table_keys(heading, "The last line is a summary")
