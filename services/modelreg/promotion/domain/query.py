"""The filters of promotion's List calls: which fields each listed resource lets a filter name.

Columns are those of the read model's tables (requests, transitions,
access_denials); strings compare in "C" (code point) order. Each alias
(`requested_by`, `applied_time`) is a second name of the same column.
"""

from __future__ import annotations

from modelreg.filtering import FieldSpec, FieldType, Node, Schema, parse
from modelreg.promotion.domain.values import RequestState

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
        FieldSpec("transition_request", FieldType.STRING, 'request COLLATE "C"'),
        FieldSpec("apply_time", FieldType.TIMESTAMP, "apply_time"),
        FieldSpec("applied_time", FieldType.TIMESTAMP, "apply_time"),
    )
)

DENIALS = Schema(
    (
        FieldSpec("principal", FieldType.STRING, 'principal COLLATE "C"'),
        FieldSpec("action", FieldType.STRING, 'action COLLATE "C"'),
        FieldSpec("resource", FieldType.STRING, 'resource COLLATE "C"'),
        FieldSpec("reason", FieldType.STRING, 'reason COLLATE "C"'),
        FieldSpec("deny_time", FieldType.TIMESTAMP, "deny_time"),
    )
)


def parse_filter(text: str, schema: Schema) -> Node | None:
    """None for an empty filter (everything matches)."""
    return parse(text, schema)
