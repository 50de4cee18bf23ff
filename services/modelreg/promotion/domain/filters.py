"""The filters of promotion's List calls: which fields each listed resource lets a filter name.

Each alias (`requested_by`, `applied_time`) is a second name of the same field.
"""

from __future__ import annotations

from modelreg.filtering import FieldSpec, FieldType, Node, Schema, parse
from modelreg.promotion.domain.values import RequestState

REQUESTS = Schema(
    (
        FieldSpec(
            "state",
            FieldType.ENUM,
            values={s.name: s.value for s in RequestState},
            enum_prefix="STATE_",
        ),
        FieldSpec("requester", FieldType.STRING),
        FieldSpec("requested_by", FieldType.STRING),
        FieldSpec("decided_by", FieldType.STRING),
        FieldSpec("rollback", FieldType.BOOL),
        FieldSpec("emergency", FieldType.BOOL),
        FieldSpec("create_time", FieldType.TIMESTAMP),
        FieldSpec("update_time", FieldType.TIMESTAMP, nullable=True),
    )
)

HISTORY = Schema(
    (
        FieldSpec("pointer", FieldType.STRING_ARRAY),
        FieldSpec("transition_request", FieldType.STRING),
        FieldSpec("apply_time", FieldType.TIMESTAMP),
        FieldSpec("applied_time", FieldType.TIMESTAMP),
    )
)

DENIALS = Schema(
    (
        FieldSpec("principal", FieldType.STRING),
        FieldSpec("action", FieldType.STRING),
        FieldSpec("resource", FieldType.STRING),
        FieldSpec("reason", FieldType.STRING),
        FieldSpec("deny_time", FieldType.TIMESTAMP),
    )
)


def parse_filter(text: str, schema: Schema) -> Node | None:
    """None for an empty filter (everything matches)."""
    return parse(text, schema)
