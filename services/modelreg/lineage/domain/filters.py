"""The filter of ListLineageRecords: which fields of a record the shared language may name."""

from __future__ import annotations

from modelreg.filtering import FieldSpec, FieldType, Node, Schema, parse

FILTER = Schema(
    (
        FieldSpec("creator", FieldType.STRING),
        FieldSpec("reason", FieldType.STRING),
        FieldSpec("superseded", FieldType.BOOL),
        FieldSpec("create_time", FieldType.TIMESTAMP),
    )
)


def parse_filter(text: str) -> Node | None:
    """None for an empty filter (every record matches)."""
    return parse(text, FILTER)
