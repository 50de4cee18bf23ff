"""The filter of ListLineageRecords: which fields of a record the shared language may name.

Strings compare in "C" (code point) order.
"""

from __future__ import annotations

from modelreg.filtering import FieldSpec, FieldType, Node, Schema, parse

FILTER = Schema(
    (
        FieldSpec("creator", FieldType.STRING, 'creator COLLATE "C"'),
        FieldSpec("reason", FieldType.STRING, 'reason COLLATE "C"'),
        FieldSpec("superseded", FieldType.BOOL, "(superseded_by IS NOT NULL)"),
        FieldSpec("create_time", FieldType.TIMESTAMP, "create_time"),
    )
)


def parse_filter(text: str) -> Node | None:
    """None for an empty filter (every record matches)."""
    return parse(text, FILTER)
