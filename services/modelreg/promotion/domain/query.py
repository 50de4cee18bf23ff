"""The filters of promotion's List calls: which fields each listed resource lets a filter name.

Column names are those of the read model's tables (requests, transitions,
access_denials). Each alias (`requested_by`, `applied_time`) is a second name
of the same column.
"""

from __future__ import annotations

from modelreg.filtering import FieldSpec, FieldType, Node, Schema, parse
from modelreg.promotion.domain.model import RequestState

REQUESTS = Schema(
    (
        FieldSpec(
            "state",
            FieldType.ENUM,
            "state",
            values={s.name: s.value for s in RequestState},
            enum_prefix="STATE_",
        ),
        FieldSpec("requester", FieldType.STRING, "requester"),
        FieldSpec("requested_by", FieldType.STRING, "requester"),
        FieldSpec("decided_by", FieldType.STRING, "decided_by"),
        FieldSpec("rollback", FieldType.BOOL, "rollback"),
        FieldSpec("emergency", FieldType.BOOL, "emergency"),
        FieldSpec("create_time", FieldType.TIMESTAMP, "create_time"),
        FieldSpec("update_time", FieldType.TIMESTAMP, "update_time", nullable=True),
    )
)

HISTORY = Schema(
    (
        FieldSpec("pointer", FieldType.STRING_ARRAY, "targets"),
        FieldSpec("transition_request", FieldType.STRING, "request"),
        FieldSpec("apply_time", FieldType.TIMESTAMP, "apply_time"),
        FieldSpec("applied_time", FieldType.TIMESTAMP, "apply_time"),
    )
)

DENIALS = Schema(
    (
        FieldSpec("principal", FieldType.STRING, "principal"),
        FieldSpec("action", FieldType.STRING, "action"),
        FieldSpec("resource", FieldType.STRING, "resource"),
        FieldSpec("reason", FieldType.STRING, "reason"),
        FieldSpec("deny_time", FieldType.TIMESTAMP, "deny_time"),
    )
)


def parse_filter(text: str, schema: Schema) -> Node | None:
    """None for an empty filter (everything matches)."""
    return parse(text, schema)
