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
