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


EVALUATIONS = Schema(
    (
        FieldSpec("kind", FieldType.STRING),
        FieldSpec("dataset_uri", FieldType.STRING),
        FieldSpec("dataset_digest", FieldType.STRING),
        FieldSpec("environment", FieldType.STRING),
        FieldSpec("tool", FieldType.STRING),
        FieldSpec("run", FieldType.STRING),
        FieldSpec("creator", FieldType.STRING),
        FieldSpec("version", FieldType.INT),
        FieldSpec("degraded", FieldType.BOOL),
        FieldSpec("evaluate_time", FieldType.TIMESTAMP),
        FieldSpec("create_time", FieldType.TIMESTAMP),
    )
)
"""The filter of ListEvaluations."""


def parse_filter(text: str, schema: Schema = FILTER) -> Node | None:
    """None for an empty filter (every item matches)."""
    return parse(text, schema)
