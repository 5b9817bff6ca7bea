"""A reader of the Swift dictionary and array literals pinwarden writes (TrustKit's
configuration): strings, booleans, nested literals and named constants.

Hand-written: no maintained Python library parses Swift. Anything outside that small
grammar is a :class:`~pinwarden.errors.FormatError` naming the line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pinwarden.apps.formats._common import fail
from pinwarden.apps.formats._lexer import Lexer, Token, TokenReader, token_pattern

__all__ = ["read_swift_literal"]

# A small hand-written reader of the Swift literal we write: no maintained Python library
# parses Swift, and only dictionary/array literals of strings, booleans and TrustKit's
# constants are accepted.
_SWIFT_TOKEN = token_pattern("[]:,=;.")
_SWIFT_BODY = re.compile(r'(?:[^"\\\n]|\\["\\ntr0\'])*')
_SWIFT_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "0": "\0", "'": "'"}
_MAX_DEPTH = 16


_LEXER = Lexer(_SWIFT_TOKEN, _SWIFT_BODY, _SWIFT_ESCAPES)


class _SwiftReader(TokenReader):
    def __init__(
        self, tokens: list[Token], source: str, keys: Mapping[str, str], values: Mapping[str, str]
    ) -> None:
        super().__init__(tokens, source)
        self.keys = keys
        self.values = values

    def document(self) -> object:
        while self.accept("import"):
            self.ident()
            while self.accept("."):
                self.ident()
        while self.at("private") or self.at("public") or self.at("internal") or self.at("static"):
            self.pos += 1
        if not (self.accept("let") or self.accept("var")):
            raise self.error("let trustKitConfig: [String: Any] = [...]")
        self.ident()
        if self.accept(":"):
            self.expect("[")
            self.ident()
            self.expect(":")
            self.ident()
            self.expect("]")
        self.expect("=")
        value = self.value(0)
        self.accept(";")
        if self.peek() is not None:
            raise self.error("the end of the configuration")
        return value

    def key(self) -> str:
        token = self.peek()
        if token is not None and token.kind == "string":
            self.pos += 1
            return token.value
        name = self.ident()
        if name not in self.keys:
            raise fail(
                self.source,
                f"line {self.tokens[self.pos - 1].line}",
                f"{name} is not a TrustKit configuration key (kTSK...)",
            )
        return self.keys[name]

    def value(self, depth: int) -> object:
        if depth > _MAX_DEPTH:
            raise self.error(f"at most {_MAX_DEPTH} nested literals")
        token = self.peek()
        if token is None:
            raise self.error("a value")
        if token.kind == "string":
            self.pos += 1
            return token.value
        if self.accept("true"):
            return True
        if self.accept("false"):
            return False
        if token.kind == "ident" and token.value in self.values:
            self.pos += 1
            return self.values[token.value]
        if not self.accept("["):
            raise self.error("a string, true, false, [array] or [dictionary]")
        if self.accept("]"):
            return []
        if self.accept(":"):
            self.expect("]")
            return {}
        # A dictionary if the first element is followed by ':'.
        start = self.pos
        first = self.peek()
        is_dict = False
        if first is not None and first.kind in ("string", "ident"):
            self.pos += 1
            is_dict = self.at(":")
        self.pos = start
        if is_dict:
            out: dict[str, object] = {}
            while not self.accept("]"):
                where = self.peek()
                key = self.key()
                if key in out:
                    line = where.line if where else 1
                    raise fail(self.source, f"line {line}", f"key {key!r} is given twice")
                self.expect(":")
                out[key] = self.value(depth + 1)
                if not self.accept(","):
                    self.expect("]")
                    break
            return out
        items: list[object] = []
        while not self.accept("]"):
            items.append(self.value(depth + 1))
            if not self.accept(","):
                self.expect("]")
                break
        return items


def read_swift_literal(
    text: str, source: str, *, keys: Mapping[str, str], values: Mapping[str, str]
) -> object:
    """The value of the one literal in ``text`` (an optional ``let name: T =`` before it).
    Identifiers are allowed as dictionary keys when ``keys`` maps them, and as values
    when ``values`` does; each stands for the string it maps to."""
    return _SwiftReader(_LEXER.tokens(text, source), source, keys, values).document()
