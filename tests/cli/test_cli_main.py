"""The CLI's contract: exit codes, one-line errors without tracebacks, --version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import pinwarden
from pinwarden.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"pinwarden {pinwarden.__version__}"


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("inspect", "pin", "demo"):
        assert command in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["pin", "/nonexistent/file.pem"], "No such file"),
        (["inspect", "https://example.com/"], "not a URL"),
        (["inspect", "localhost:0"], "port"),
        (["inspect", "[::1"], "missing ']'"),
    ],
)
def test_input_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("pinwarden: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    assert main(["inspect"]) == 2


def test_entry_point_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pinwarden", "pin", "/nonexistent"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("pinwarden: error: /nonexistent")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["lint", "{policy}", "--at", "9999-12-31T23:59:59-05:00"],
        ["lint", "{policy}", "--at", "0001-01-01T00:00:00+05:00"],
        ["lint", "{policy}", "--at", "9999-12-31"],
        ["check", "--policy", "{policy}", "--timeout", "inf"],
        ["check", "--policy", "{policy}", "--timeout", "nan"],
        ["check", "--policy", "{policy}", "--timeout", "-1"],
        ["check", "--policy", "{policy}", "--port", "70000"],
        ["lint", "{policy}", "--live", "--port", "0"],
        ["identify", "AAAA", "--host", "127.0.0.1:1", "--timeout", "-1"],
        ["caa", "check", "example.com", "--timeout", "inf"],
    ],
)
def test_out_of_range_options_are_input_errors(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "pins.toml"
    policy.write_text(
        '[[pin]]\nhosts = ["a.example"]\npins = ["sha256/'
        + "A" * 43
        + '=", "sha256/'
        + "B" * 43
        + '="]\nexpires = 0001-01-01T00:00:00Z\n'
    )
    assert main([a.replace("{policy}", str(policy)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pinwarden: error:") and err.count("\n") == 1


def test_a_policy_that_expired_in_year_one_lints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "pins.toml"
    policy.write_text(
        '[[pin]]\nhosts = ["a.example"]\npins = ["sha256/'
        + "A" * 43
        + '=", "sha256/'
        + "B" * 43
        + '="]\nexpires = 0001-01-01T00:00:00Z\n'
    )
    assert main(["lint", str(policy)]) == 0
    assert "PW016" in capsys.readouterr().out


def test_json_output_is_ascii_so_hostile_names_cannot_drive_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from pinwarden.cli._output import emit_json

    hostile = {"name": "evil\u009b2J\u202egro.elpmaxe\x1b]0;x\x07", "ok": "café"}
    emit_json(hostile)
    out = capsys.readouterr().out
    assert out.isascii()
    assert json.loads(out) == hostile
