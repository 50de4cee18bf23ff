"""The filter of ListAuditEvents: which fields of an entry the shared language may name."""

from __future__ import annotations

from modelreg.filtering import FieldSpec, FieldType, Node, Schema, parse

FILTER = Schema(
    (
        FieldSpec("actor", FieldType.STRING),
        FieldSpec("action", FieldType.STRING),
        FieldSpec("model", FieldType.STRING),
        FieldSpec("resource", FieldType.STRING),
        FieldSpec("request_id", FieldType.STRING),
        FieldSpec("correlation_id", FieldType.STRING),
        FieldSpec("topic", FieldType.STRING),
        FieldSpec("occur_time", FieldType.TIMESTAMP),
    )
)


def parse_filter(text: str) -> Node | None:
    """None for an empty filter (every entry matches)."""
    return parse(text, FILTER)
