"""``pinwarden export`` and ``pinwarden import`` driven in-process, on real files."""

from __future__ import annotations

import json
import os
import plistlib
import re
import stat
import sys
import types
from pathlib import Path

import pytest

from conftest import REPO, World
from pinwarden.apps import formats as registry
from pinwarden.apps.formats import Exported, ExportOptions, import_policy
from pinwarden.cli import main
from pinwarden.pins import Pin
from pinwarden.policy import Policy
from pinwarden.testing import generate_key

A = str(Pin("sha256", b"\x01" * 32))
B = str(Pin("sha256", b"\x02" * 32))
C = str(Pin("sha256", b"\x03" * 32))
EXACT = f"""
[[pin]]
hosts = ["api.example.com", "*.cdn.example.com"]
pins = ["{A}", "{B}"]

[[pin]]
hosts = ["example.org"]
include_subdomains = true
pins = ["{B}", "{C}"]
"""
LOSSY = f"""
[[pin]]
hosts = ["api.example.com"]
pins = ["{A}", "{B}"]
expires = 2027-06-01

[[pin]]
hosts = ["example.org"]
pins = ["{A}", "{B}"]
mode = "report-only"
report_uri = "https://reports.example.net/pins"
"""


def write(tmp_path: Path, text: str, name: str = "pins.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def tables(policy: Policy) -> list[dict[str, object]]:
    return [rule.to_dict() for rule in policy.rules]


def doc_keys(heading: str) -> set[str]:
    text = (REPO / "docs" / "formats.md").read_text(encoding="utf-8")
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))


def test_export_prints_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy_file = write(tmp_path, EXACT)
    assert main(["export", "--format", "okhttp-kotlin", str(policy_file)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("import okhttp3.CertificatePinner\n")
    assert captured.err == ""  # exact: no losses, no notes
    back = import_policy(captured.out.encode(), "okhttp-kotlin")
    assert tables(back) == tables(Policy.load(policy_file))


def test_refused_export_lists_every_loss_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_file = write(tmp_path, LOSSY)
    out = tmp_path / "Pins.java"
    assert main(["export", "-f", "okhttp-java", str(policy_file), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert not out.exists()
    lines = captured.err.splitlines()
    assert lines[0] == (
        f"pinwarden: error: okhttp-java cannot express {policy_file} exactly; nothing written:"
    )
    losses = [line for line in lines if line.startswith("  - ")]
    assert len(losses) == 3
    assert "pin[0] (api.example.com): expires 2027-06-02T00:00:00+00:00" in losses[0]
    assert "pin[1] (example.org): report-only mode" in losses[1]
    assert "pin[1] (example.org): report_uri https://reports.example.net/pins" in losses[2]
    assert lines[-1] == "Use --lossy to export anyway."


def test_lossy_export_writes_and_still_lists_the_losses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_file = write(tmp_path, LOSSY)
    assert main(["export", "-f", "okhttp-java", "--lossy", str(policy_file)]) == 0
    captured = capsys.readouterr()
    assert "new CertificatePinner.Builder()" in captured.out
    assert f"okhttp-java differs from {policy_file} (--lossy):" in captured.err
    assert captured.err.count("\n  - ") == 3


def test_out_replaces_the_file_atomically(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_file = write(tmp_path, EXACT)
    out = tmp_path / "Pins.kt"
    out.write_text("old\n")
    out.chmod(0o640)
    assert main(["export", "-f", "okhttp-kotlin", str(policy_file), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"wrote {out}" in captured.err
    assert out.read_text().startswith("import okhttp3.CertificatePinner\n")
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Pins.kt", "pins.toml"]


def test_a_failed_write_leaves_the_old_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy_file = write(tmp_path, EXACT)
    out = tmp_path / "pins.kt"
    out.write_text("old\n")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    assert main(["export", "-f", "okhttp-kotlin", str(policy_file), "--out", str(out)]) == 2
    assert "cannot write: No space left on device" in capsys.readouterr().err
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pins.kt", "pins.toml"]


def test_out_in_a_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy_file = write(tmp_path, EXACT)
    out = tmp_path / "missing" / "pins.kt"
    assert main(["export", "-f", "okhttp-kotlin", str(policy_file), "--out", str(out)]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_export_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy_file = write(tmp_path, LOSSY)
    assert main(["export", "-f", "trustkit-plist", str(policy_file), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == doc_keys("## `pinwarden export --json`")
    assert result["format"] == "trustkit-plist"
    assert result["exported"] is True
    assert result["losses"] == []
    assert result["text"].startswith("<?xml")
    assert result["out"] is None
    assert any("TSKSwizzleNetworkDelegates" in note for note in result["notes"])

    assert main(["export", "-f", "android-nsc", str(policy_file), "--json"]) == 2
    refused = json.loads(capsys.readouterr().out)
    assert set(refused) == set(result)
    assert refused["exported"] is False
    assert refused["text"] is None
    assert len(refused["losses"]) == 2  # report-only and report_uri; Android has expiry


def test_ios_export_with_the_chain(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_file = write(
        tmp_path,
        f'[[pin]]\nhosts = ["localhost"]\n'
        f'pins = ["{world.intermediate.pin}", "{world.root.pin}"]\n',
    )
    chain = tmp_path / "chain.pem"
    chain.write_bytes(world.leaf.chain_pem + world.root.cert_pem)
    assert main(["export", "-f", "ios-plist", str(policy_file), "--chain", str(chain)]) == 0
    captured = capsys.readouterr()
    assert "NSPinnedCAIdentities" in captured.out
    assert "NSPinnedLeafIdentities" not in captured.out
    # Without the chain neither pin can be classified: refused, --lossy or not.
    for lossy in ([], ["--lossy"]):
        assert main(["export", "-f", "ios-plist", str(policy_file), *lossy]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.count("\n") == 1
        assert captured.err.startswith(
            f"pinwarden: error: ios-plist: cannot tell whether {world.intermediate.pin} "
            f"(of pin[0]), {world.root.pin} (of pin[0]) are each the key of a leaf or of a CA"
        )
        assert "Declare it with --leaf-pin" in captured.err


def _backup_policy(tmp_path: Path, *pins: object) -> tuple[Path, Pin]:
    backup = Pin.from_public_key(generate_key().public_key())
    listed = ", ".join(f'"{p}"' for p in (*pins, backup))
    return write(tmp_path, f'[[pin]]\nhosts = ["localhost"]\npins = [{listed}]\n'), backup


def test_ios_leaf_backup_declared_with_leaf_pin(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_file, backup = _backup_policy(tmp_path, world.leaf.pin)
    chain = tmp_path / "chain.pem"
    chain.write_bytes(world.leaf.chain_pem)
    args = ["export", "-f", "ios-plist", str(policy_file), "--chain", str(chain)]
    assert main([*args, "--lossy"]) == 2  # the backup is unclassified
    assert f"cannot tell whether {backup} (of pin[0]) is the key" in capsys.readouterr().err
    assert main([*args, "--leaf-pin", str(backup)]) == 0
    entry = plistlib.loads(capsys.readouterr().out.encode())["NSAppTransportSecurity"][
        "NSPinnedDomains"
    ]["localhost"]
    assert entry == {
        "NSIncludesSubdomains": False,
        "NSPinnedLeafIdentities": [
            {"SPKI-SHA256-BASE64": world.leaf.pin.base64},
            {"SPKI-SHA256-BASE64": backup.base64},
        ],
    }


def test_ios_ca_pin_with_a_leaf_backup_is_a_loss(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ATS requires a match in both lists: a leaf backup beside a CA pin makes every
    connection need a leaf with the backup key."""
    policy_file, backup = _backup_policy(tmp_path, world.intermediate.pin)
    chain = tmp_path / "chain.pem"
    chain.write_bytes(world.leaf.chain_pem)
    args = ["export", "-f", "ios-plist", str(policy_file), "--chain", str(chain)]
    assert main([*args, "--leaf-pin", str(backup)]) == 2
    err = capsys.readouterr().err
    assert "ATS then requires a match in each list" in err
    assert "the backup of a CA-pinned domain must be a second CA's key" in err
    assert main([*args, "--ca-pin", str(backup)]) == 0
    captured = capsys.readouterr()
    assert "NSPinnedLeafIdentities" not in captured.out
    assert backup.base64 in captured.out


def test_declared_pins_must_be_pins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy_file = write(tmp_path, EXACT)
    assert main(["export", "-f", "ios-plist", str(policy_file), "--leaf-pin", "nope"]) == 2
    assert capsys.readouterr().err.startswith("pinwarden: error: --leaf-pin 'nope': ")


def test_readme_export_commands_on_a_recommended_policy(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pinwarden recommend` writes the CA key, a backup key and an expiry: what each
    format makes of it (the commands README.md shows)."""
    policy_file, backup = _backup_policy(tmp_path, world.intermediate.pin)
    policy_file.write_text(policy_file.read_text() + "expires = 2027-06-01\n")
    chain = tmp_path / "chain.pem"
    chain.write_bytes(world.leaf.chain_pem + world.root.cert_pem)
    pins = str(policy_file)

    assert main(["export", "--format", "okhttp-kotlin", pins]) == 2  # OkHttp has no expiry
    assert "OkHttp has no expiry" in capsys.readouterr().err
    assert main(["export", "--format", "okhttp-kotlin", "--lossy", pins]) == 0
    assert "OkHttp has no expiry" in capsys.readouterr().err

    assert main(["export", "--format", "android-nsc", pins]) == 0
    assert 'expiration="2027-06-02"' in capsys.readouterr().out

    ios = ["export", "--format", "ios-plist", "--chain", str(chain)]
    assert main([*ios, "--lossy", pins]) == 2  # the backup key: leaf or CA?
    capsys.readouterr()
    assert main([*ios, "--ca-pin", str(backup), "--lossy", pins]) == 0
    captured = capsys.readouterr()
    assert "NSPinnedLeafIdentities" not in captured.out
    losses = [line for line in captured.err.splitlines() if line.startswith("  - ")]
    assert len(losses) == 1
    assert "iOS ATS has no expiry" in losses[0]


def test_hpkp_export_uses_the_current_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_file = write(
        tmp_path,
        f'[[pin]]\nhosts = ["a.example.com"]\npins = ["{A}", "{B}"]\nexpires = 2099-01-01\n',
    )
    assert main(["export", "-f", "hpkp", str(policy_file)]) == 0
    captured = capsys.readouterr()
    max_age = int(re.findall(r"max-age=(\d+)", captured.out)[0])
    assert 2_000_000_000 < max_age < 2_300_000_000  # ~73 years from now
    assert "note: browsers removed HPKP (Chrome 72, Firefox 72)" in captured.err


def test_import_prints_a_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    xml = write(
        tmp_path,
        f"""<network-security-config><domain-config>
        <domain includeSubdomains="true">example.com</domain>
        <pin-set expiration="2027-06-02"><pin digest="SHA-256">{A[7:]}</pin></pin-set>
        </domain-config></network-security-config>""",
        "network_security_config.xml",
    )
    assert main(["import", "-f", "android-nsc", str(xml)]) == 0
    captured = capsys.readouterr()
    policy = Policy.from_toml(captured.out)
    assert tables(policy) == [
        {
            "hosts": ["example.com"],
            "pins": [A],
            "include_subdomains": True,
            "expires": "2027-06-02T00:00:00+00:00",
            "mode": "enforce",
            "allow_single_pin": True,
        }
    ]
    assert "expires = 2027-06-01\n" in captured.out
    assert "note: **.example.com: one pin" in captured.err
    assert "time zone" in captured.err


def test_import_out_json_and_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    kotlin = f'val p = CertificatePinner.Builder().add("a.example.com", "{A}", "{B}").build()'
    out = tmp_path / "pins.toml"
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=_Bytes(kotlin.encode())))
    assert main(["import", "-f", "okhttp-kotlin", "-", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == doc_keys("## `pinwarden import --json`")
    assert result["source"] == "<stdin>"
    assert result["out"] == str(out)
    assert result["policy"] == {
        "version": 1,
        "pin": [{"hosts": ["a.example.com"], "pins": [A, B], "mode": "enforce"}],
    }
    assert tables(Policy.load(out)) == result["policy"]["pin"]


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self) -> bytes:
        return self.data


def test_import_errors_are_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path, "Public-Key-Pins: max-age=1\n", "headers.txt")
    assert main(["import", "-f", "hpkp", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pinwarden: error: {bad}: line 1: a header carries no host names")
    assert err.count("\n") == 1
    assert main(["import", "-f", "hpkp", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err


def test_unknown_and_export_only_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_file = write(tmp_path, EXACT)
    assert main(["export", "-f", "nope", str(policy_file)]) == 2
    assert "unknown format 'nope'; known: toml, okhttp-kotlin" in capsys.readouterr().err
    assert main(["import", "-f", "python", str(policy_file)]) == 2
    assert "python is an export-only format" in capsys.readouterr().err


def test_format_help_lists_the_formats(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    for name in ("okhttp-kotlin", "android-nsc", "trustkit-swift", "hpkp", "python"):
        assert name in help_text


class _Snippet:
    name = "fake-snippet"
    summary = "a test format"
    suffix = ".txt"
    importable = False

    def export(self, policy: Policy, options: ExportOptions) -> Exported:
        hosts = ", ".join(p.text for rule in policy.rules for p in rule.hosts)
        return Exported(f"pinned: {hosts}\n", notes=("a note",))

    def parse(self, data: bytes, source: str) -> Policy:
        raise AssertionError("never called for an export-only format")


def test_export_only_formats_go_through_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = types.ModuleType("fake_snippet_format")
    module.FORMAT = _Snippet()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_snippet_format", module)
    monkeypatch.setitem(registry._MODULES, "fake-snippet", "fake_snippet_format")
    policy_file = write(tmp_path, EXACT)
    assert main(["export", "-f", "fake-snippet", str(policy_file)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "pinned: api.example.com, *.cdn.example.com, example.org\n"
    assert captured.err == "note: a note\n"
    assert main(["import", "-f", "fake-snippet", str(policy_file)]) == 2
    assert "fake-snippet is an export-only format" in capsys.readouterr().err
