"""Lint findings as SARIF 2.1.0, the format CI code scanning (GitHub, GitLab, Azure
DevOps) reads, with each finding placed on its line of the policy file."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pinwarden._version import __version__
from pinwarden.apps.lint import RULES, Finding

__all__ = ["locate", "to_sarif"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_PIN_TABLE = re.compile(r"^\s*\[\[\s*pin\s*\]\]")
_ANY_TABLE = re.compile(r"^\s*\[")
_KEY = re.compile(r"^(pin\[(\d+)\])?\.?([a-z_]+)?(?:\[(\d+)\])?$")


def locate(text: str, key: str) -> int | None:
    """The 1-based line of a dotted ``key`` (``pin[2].pins[1]``) in a policy written as
    TOML ``[[pin]]`` tables; None when it cannot be found.

    Hand-written: tomllib does not report positions. This reads the layout
    ``pinwarden`` documents (array-of-tables, one key per line, arrays possibly spread
    over lines); for other layouts it falls back to the rule's table, or None."""
    match = _KEY.match(key)
    if match is None or match.group(2) is None:
        return None
    wanted = int(match.group(2))
    # Only "\n" ends a TOML line; splitlines() would also split at U+2028 and friends.
    lines = [line.rstrip("\r") for line in text.split("\n")]
    starts = [i for i, line in enumerate(lines) if _PIN_TABLE.match(line)]
    if wanted >= len(starts):
        return None
    start = starts[wanted]
    end = next((i for i in range(start + 1, len(lines)) if _ANY_TABLE.match(lines[i])), len(lines))
    name, item = match.group(3), match.group(4)
    if name is None:
        return start + 1
    key_line = next(
        (i for i in range(start + 1, end) if re.match(rf"^\s*{name}\s*=", lines[i])), None
    )
    if key_line is None:
        return start + 1
    if item is None:
        return key_line + 1
    # The n-th string of the array that starts on key_line.
    index = int(item)
    seen = 0
    for i in range(key_line, end):
        body = lines[i].split("=", 1)[1] if i == key_line else lines[i]
        for _ in re.finditer(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'', body.split("#", 1)[0]):
            if seen == index:
                return i + 1
            seen += 1
        if "]" in body.split("#", 1)[0]:
            break
    return key_line + 1


def _uri(source: str) -> str:
    """An RFC 3986 URI reference: ``file://`` for an absolute path, else the relative
    path percent-encoded (``my pins.toml`` is ``my%20pins.toml``)."""
    path = Path(source)
    return path.resolve().as_uri() if path.is_absolute() else quote(path.as_posix())


def to_sarif(files: Sequence[tuple[str, str, Sequence[Finding]]]) -> dict[str, Any]:
    """A SARIF 2.1.0 log of one run: ``files`` is (source path, file text, findings)."""
    rule_ids = list(RULES)
    results: list[dict[str, Any]] = []
    for source, text, findings in files:
        for finding in findings:
            region: dict[str, Any] = {"startLine": locate(text, finding.key) or 1}
            results.append(
                {
                    "ruleId": finding.rule.id,
                    "ruleIndex": rule_ids.index(finding.rule.id),
                    "level": finding.severity,
                    "message": {"text": f"{finding.message}. Fix: {finding.rule.fix}"},
                    "locations": [
                        {
                            "physicalLocation": {
                                "artifactLocation": {"uri": _uri(source)},
                                "region": region,
                            },
                            "logicalLocations": [{"name": finding.key, "kind": "member"}],
                        }
                    ],
                }
            )
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "pinwarden",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": [
                            {
                                "id": rule.id,
                                "name": rule.name,
                                "shortDescription": {"text": rule.summary},
                                "fullDescription": {"text": rule.summary},
                                "help": {"text": rule.fix},
                                "defaultConfiguration": {"level": rule.severity},
                                "properties": {"tags": ["security", "pinning"]},
                            }
                            for rule in RULES.values()
                        ],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
