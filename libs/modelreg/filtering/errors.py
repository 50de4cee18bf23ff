"""The one form of a filter mistake: the 0-based position, what was expected, what was found."""

from __future__ import annotations

from modelreg.errors import FieldViolation, InvalidArgument


class ParseError(InvalidArgument):
    def __init__(self, position: int, expected: str, found: str, field: str = "filter") -> None:
        super().__init__(FieldViolation(field, f"at position {position}: expected {expected}, found {found}"))
        self.position = position
        self.expected = expected
        self.found = found
