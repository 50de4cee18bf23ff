"""The tokens of the filter syntax (AIP-160 style, with the catalog's and versioning's extensions)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from modelreg.filtering.errors import ParseError

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<timestamp>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2}))
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z0-9_.]))
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op><=|>=|!=|=|<|>|:)
  | (?P<punct>[(),*\-])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.\-]*)
  | (?P<word>[0-9][A-Za-z0-9_.\-]*)
    """,
    re.VERBOSE | re.DOTALL | re.ASCII,  # ASCII: \d and \s are not every Unicode digit and space
)
KEYWORDS = {"and", "or", "not", "in", "like", "ilike", "true", "false"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # timestamp number string op punct ident word keyword end
    text: str
    position: int

    def describe(self) -> str:
        return "end of filter" if self.kind == "end" else repr(self.text)

    def is_punct(self, char: str) -> bool:
        return self.kind == "punct" and self.text == char


def tokenize(text: str) -> list[Token]:
    """The tokens of `text`, ending with an `end` token; `-` directly before a digit is a sign."""
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            if text[position] in "\"'":
                raise ParseError(position, f"a closing {text[position]} for the string", "end of filter")
            raise ParseError(position, "a field, value, operator or parenthesis", repr(text[position]))
        kind = match.lastgroup
        assert kind is not None
        if kind != "ws":
            value = match.group()
            if kind == "ident" and value.lower() in KEYWORDS:
                kind = "keyword"
            tokens.append(Token(kind, value, position))
        position = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def unquote(token: Token) -> str:
    body = token.text[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1]
            if nxt not in _ESCAPES:
                raise ParseError(token.position + i + 1, "one of \\\" \\' \\\\ \\n \\t \\r", repr("\\" + nxt))
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_timestamp(text: str) -> datetime | None:
    """RFC 3339 with a mandatory offset; fractions beyond microseconds are truncated."""
    match = re.fullmatch(
        r"(\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})", text, re.ASCII
    )
    if match is None:
        return None
    base, fraction, offset = match.groups()
    micros = (fraction or "").ljust(6, "0")[:6]
    try:
        parsed = datetime.fromisoformat(f"{base.upper()}.{micros}{'+00:00' if offset in 'Zz' else offset}")
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # 0001-01-01T00:00:00+01:00 is before datetime.min
        return None
