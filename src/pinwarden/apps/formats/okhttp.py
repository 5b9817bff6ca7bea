"""``okhttp-kotlin`` and ``okhttp-java``: an OkHttp ``CertificatePinner.Builder()`` with
one ``add(pattern, pins...)`` per host pattern.

OkHttp patterns: ``host``, ``*.host`` (exactly one label) and ``**.host`` (host and
every name under it) map one to one onto pinwarden's kinds. What OkHttp lacks: expiry,
report-only mode, reports, ``exclude`` and IP addresses. And OkHttp applies the *union*
of the pins of every pattern that matches a host, where pinwarden applies the most
specific rule: overlapping patterns of rules with different pins are a loss.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pinwarden.apps.formats import Exported, ExportOptions
from pinwarden.apps.formats._common import (
    Abilities,
    Entry,
    Imported,
    build_policy,
    check_size,
    fail,
    is_ip,
    name_notes,
    overlap,
    pattern_text,
    rule_label,
    unsupported,
)
from pinwarden.apps.formats._lexer import Lexer, Token, TokenReader, token_pattern
from pinwarden.errors import PinFormatError
from pinwarden.hosts import PatternKind
from pinwarden.pins import Pin
from pinwarden.policy import Policy

__all__ = ["FORMATS", "OkHttpFormat"]

Language = Literal["kotlin", "java"]
_CAN = Abilities("OkHttp", sha1=True)


@dataclass(frozen=True)
class _Written:
    kind: PatternKind
    base: str
    pins: tuple[Pin, ...]
    index: int


def _patterns(policy: Policy, losses: list[str], notes: list[str]) -> list[_Written]:
    written: list[_Written] = []
    for index, rule in enumerate(policy.rules):
        label = rule_label(index, rule)
        losses.extend(unsupported(index, rule, _CAN))
        legacy = [str(p) for p in rule.pins if p.legacy]
        if legacy:
            notes.append(
                f"{label}: {', '.join(legacy)}: sha1/ pins are OkHttp 3's legacy form; "
                "prefer sha256/"
            )
        seen: set[tuple[PatternKind, str]] = set()
        for pattern in rule.hosts:
            if is_ip(pattern.base):
                losses.append(
                    f"{label}: {pattern.text}: OkHttp pins host names, not IP addresses; left out"
                )
                continue
            kind = pattern.kind
            if (
                kind == "subtree"
                and not pattern.include_base
                and not any(p.base == pattern.base and p.include_base for p in rule.hosts)
            ):
                losses.append(
                    f"{label}: {pattern.text} with include_subdomains covers the names "
                    f"under {pattern.base} but not {pattern.base} itself; OkHttp's "
                    f"**.{pattern.base} pins {pattern.base} too"
                )
            if (kind, pattern.base) not in seen:
                seen.add((kind, pattern.base))
                written.append(_Written(kind, pattern.base, rule.pins, index))
    return written


def _union_losses(policy: Policy, written: list[_Written]) -> list[str]:
    losses: list[str] = []
    for i, a in enumerate(written):
        for b in written[i + 1 :]:
            if a.index == b.index or set(a.pins) == set(b.pins):
                continue
            both = overlap((a.kind, a.base), (b.kind, b.base))
            if both is None:
                continue
            losses.append(
                f"{pattern_text(a.kind, a.base)} of "
                f"{rule_label(a.index, policy.rules[a.index])} and "
                f"{pattern_text(b.kind, b.base)} of "
                f"{rule_label(b.index, policy.rules[b.index])} both match {both}: "
                "OkHttp accepts the pins of both there, pinwarden only those of the more "
                "specific rule"
            )
    return losses


def _render(written: list[_Written], language: Language) -> str:
    lines = (
        [
            "import okhttp3.CertificatePinner",
            "",
            "val certificatePinner = CertificatePinner.Builder()",
        ]
        if language == "kotlin"
        else [
            "import okhttp3.CertificatePinner;",
            "",
            "CertificatePinner certificatePinner = new CertificatePinner.Builder()",
        ]
    )
    for w in written:
        args = [pattern_text(w.kind, w.base), *(str(p) for p in w.pins)]
        lines.append("    .add(")
        lines.extend(
            f'        "{arg}"' + ("," if n < len(args) - 1 else "") for n, arg in enumerate(args)
        )
        lines.append("    )")
    lines.append("    .build()" + (";" if language == "java" else ""))
    return "\n".join(lines) + "\n"


# -- reading ---------------------------------------------------------------------------
# A small hand-written reader: no maintained Python library parses Kotlin or Java, and
# only the one statement shape we write is accepted.

_TOKEN = token_pattern("().,=;:")
_STRING_BODY = re.compile(r'(?:[^"\\\n]|\\["\\$nt\'])*')
_ESCAPES = {'"': '"', "\\": "\\", "$": "$", "n": "\n", "t": "\t", "'": "'"}
_MODIFIERS = {"private", "public", "internal", "protected", "static", "final"}


_LEXER = Lexer(_TOKEN, _STRING_BODY, _ESCAPES)


class _Reader(TokenReader):
    def __init__(self, tokens: list[Token], source: str) -> None:
        super().__init__(tokens, source)
        self.adds: list[tuple[str, list[str], int]] = []

    def qualified(self) -> list[str]:
        parts = [self.ident()]
        while self.accept("."):
            parts.append(self.ident())
        return parts

    def document(self) -> None:
        while self.at("import", "package"):
            self.pos += 1
            self.qualified()
            self.accept(";")
        if self.peek() is None:
            raise self.error("CertificatePinner.Builder()")
        while self.peek() is not None:
            self.statement()

    def statement(self) -> None:
        while self.at(*_MODIFIERS):
            self.pos += 1
        if self.accept("val") or self.accept("var"):
            self.ident()
            if self.accept(":"):
                self.qualified()
            self.expect("=")
        elif not self.at("new"):
            # Java declares "CertificatePinner certificatePinner = ...": a type, a name.
            start = self.pos
            self.qualified()
            token = self.peek()
            if token is not None and token.kind == "ident":
                self.pos += 1
                self.expect("=")
            else:
                self.pos = start
        self.builder()
        self.accept(";")

    def builder(self) -> None:
        self.accept("new")
        start = self.peek()
        name = self.qualified()
        if name[-2:] != ["CertificatePinner", "Builder"]:
            raise fail(
                self.source,
                f"line {start.line if start else 1}",
                f"expected CertificatePinner.Builder(), found {'.'.join(name)}",
            )
        self.expect("(")
        self.expect(")")
        while True:
            self.expect(".")
            method = self.peek()
            if self.accept("build"):
                self.expect("(")
                self.expect(")")
                return
            if not self.accept("add"):
                raise self.error("add(...) or build()")
            self.expect("(")
            pattern = self.string()
            pins: list[str] = []
            while self.accept(","):
                if self.at(")"):
                    break  # Kotlin's trailing comma
                pins.append(self.string().value)
            self.expect(")")
            if not pins:
                raise fail(
                    self.source,
                    f"line {pattern.line}",
                    f'add("{pattern.value}") has no pins',
                )
            self.adds.append((pattern.value, pins, method.line if method else pattern.line))


def _entry(pattern: str, pins: list[str], line: int, source: str) -> Entry:
    where = f"line {line}"
    text = pattern.strip()
    kind: PatternKind
    if text.startswith("**."):
        kind, host = "subtree", text[3:]
    elif text.startswith("*."):
        kind, host = "one-label", text[2:]
    else:
        kind, host = "exact", text
    parsed: list[Pin] = []
    for value in pins:
        if not value.startswith(("sha256/", "sha1/")):
            raise fail(
                source, where, f"pin {value[:60]!r}: OkHttp pins start with sha256/ or sha1/"
            )
        try:
            parsed.append(Pin.parse(value))
        except PinFormatError as exc:
            raise fail(source, where, str(exc)) from None
    return Entry(host, kind, tuple(parsed), where)


def _union_notes(imported: Imported) -> list[str]:
    notes: list[str] = []
    rules = imported.policy.rules
    for i, a in enumerate(rules):
        for b in rules[i + 1 :]:
            for pa in a.hosts:
                for pb in b.hosts:
                    both = overlap((pa.kind, pa.base), (pb.kind, pb.base))
                    if both is not None:
                        notes.append(
                            f"{pa.text} and {pb.text} both match {both} with different "
                            "pins: OkHttp accepted the pins of both there, pinwarden takes "
                            "those of the more specific pattern only"
                        )
    return notes


class OkHttpFormat:
    """OkHttp ``CertificatePinner`` code, in Kotlin or Java."""

    importable = True

    def __init__(self, language: Language) -> None:
        self.language: Language = language
        self.name = f"okhttp-{language}"
        self.summary = f"OkHttp CertificatePinner.Builder() code ({language.title()})"
        self.suffix = ".kt" if language == "kotlin" else ".java"

    def export(self, policy: Policy, options: ExportOptions) -> Exported:
        losses: list[str] = []
        notes: list[str] = []
        written = _patterns(policy, losses, notes)
        losses.extend(_union_losses(policy, written))
        notes.extend(name_notes(policy, "OkHttp"))
        return Exported(_render(written, self.language), tuple(losses), tuple(notes))

    def read(self, data: bytes, source: str) -> Imported:
        check_size(data, source)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise fail(source, None, f"not UTF-8 text (byte {exc.start})") from None
        reader = _Reader(_LEXER.tokens(text, source), source)
        reader.document()
        entries = [_entry(p, pins, line, source) for p, pins, line in reader.adds]
        imported = build_policy(entries, source, merge_same_pattern=True)
        notes = (*imported.notes, *_union_notes(imported))
        return Imported(imported.policy, notes)

    def parse(self, data: bytes, source: str) -> Policy:
        return self.read(data, source).policy


FORMATS = {"okhttp-kotlin": OkHttpFormat("kotlin"), "okhttp-java": OkHttpFormat("java")}
