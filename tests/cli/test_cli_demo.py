"""``pinwarden demo`` runs offline and every step behaves as the article says."""

from __future__ import annotations

import pytest

from pinwarden.cli import main


def test_demo_tells_the_whole_story(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "✘" not in out
    assert out.count("✔") == 9
    for step in (
        "1. inspect",
        "2. a pinned request",
        "3. rotation gone wrong",
        "4. man-in-the-middle",
        "5. the alternatives: Certificate Transparency",
    ):
        assert step in out
    assert "simulate: App A would be locked out, App B passes" in out
    assert "App A is locked out" in out
    assert "App B keeps working" in out
    assert "A client without pins accepts it" in out
    assert "App B blocks it" in out
    assert "no pin matched the verified chain" in out
    assert "Chrome CT policy: compliant" in out
    assert "UNEXPECTED certificate for api.demo.test from CN=Rogue Issuing CA 2" in out
    assert "EXPECTED   certificate for api.demo.test from CN=Demo Issuing CA 2" in out
