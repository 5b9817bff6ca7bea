"""Tokens of the C-family source pinwarden reads back (OkHttp's Kotlin and Java, TrustKit's
Swift): names, punctuation, string literals and comments, with line numbers, and a
cursor over them that reports what it expected where.

Hand-written: no maintained Python library parses Kotlin, Java or Swift, and only the
shapes pinwarden itself writes are accepted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pinwarden.apps.formats._common import fail

__all__ = ["Lexer", "Token", "TokenReader", "token_pattern"]


@dataclass(frozen=True)
class Token:
    kind: str
    """``ident``, ``punct`` or ``string``."""
    value: str
    line: int


def token_pattern(punctuation: str) -> re.Pattern[str]:
    """The token pattern of a C-family language whose punctuation is ``punctuation``
    (the characters, unescaped)."""
    return re.compile(
        r"(?P<space>[ \t\r\f\v]+)"
        r"|(?P<newline>\n)"
        r"|(?P<line_comment>//[^\n]*)"
        r"|(?P<block_comment>/\*)"
        r'|(?P<string>")'
        r"|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)"
        rf"|(?P<punct>[{re.escape(punctuation)}])"
    )


@dataclass(frozen=True)
class Lexer:
    """A language's token pattern (groups ``space``, ``newline``, ``line_comment``,
    ``block_comment``, ``string``, ``ident``, ``punct``), the body of its string literals
    and their escapes."""

    token: re.Pattern[str]
    string_body: re.Pattern[str]
    escapes: Mapping[str, str]

    def tokens(self, text: str, source: str) -> list[Token]:
        tokens: list[Token] = []
        pos, line = 0, 1
        while pos < len(text):
            match = self.token.match(text, pos)
            if match is None:
                raise fail(source, f"line {line}", f"unexpected {text[pos]!r}")
            kind = match.lastgroup or ""
            if kind == "newline":
                line += 1
            elif kind == "block_comment":
                end = text.find("*/", match.end())
                if end < 0:
                    raise fail(source, f"line {line}", "unterminated /* comment")
                line += text.count("\n", pos, end)
                pos = end + 2
                continue
            elif kind == "string":
                if text.startswith('"""', pos):
                    raise fail(
                        source, f"line {line}", 'multi-line strings ("""...""") are not read'
                    )
                body = self.string_body.match(text, pos + 1)
                end = body.end() if body else pos + 1
                if end >= len(text) or text[end] != '"':
                    raise fail(source, f"line {line}", "unterminated or unreadable string literal")
                raw = text[pos + 1 : end]
                value = re.sub(r"\\(.)", lambda m: self.escapes[m.group(1)], raw)
                tokens.append(Token("string", value, line))
                pos = end + 1
                continue
            elif kind in ("ident", "punct"):
                tokens.append(Token(kind, match.group(), line))
            pos = match.end()
        return tokens


class TokenReader:
    """A cursor over tokens whose errors name the file, the line, what was expected and
    what was found."""

    def __init__(self, tokens: list[Token], source: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.source = source

    def peek(self, offset: int = 0) -> Token | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def error(self, expected: str) -> Exception:
        token = self.peek()
        if token is None:
            last = self.tokens[-1].line if self.tokens else 1
            return fail(self.source, f"line {last}", f"expected {expected}, found the end")
        shown = f'"{token.value}"' if token.kind == "string" else repr(token.value)
        return fail(self.source, f"line {token.line}", f"expected {expected}, found {shown}")

    def at(self, *values: str) -> bool:
        token = self.peek()
        return token is not None and token.kind != "string" and token.value in values

    def accept(self, value: str) -> bool:
        if self.at(value):
            self.pos += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.accept(value):
            raise self.error(repr(value))

    def ident(self) -> str:
        token = self.peek()
        if token is None or token.kind != "ident":
            raise self.error("a name")
        self.pos += 1
        return token.value

    def string(self) -> Token:
        token = self.peek()
        if token is None or token.kind != "string":
            raise self.error("a string")
        self.pos += 1
        return token
