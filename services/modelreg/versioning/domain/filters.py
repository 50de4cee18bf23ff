"""The filter of ListModelVersions: which fields of a version the shared language may name.

One model's versions are few, so tags and params take equality, IN, LIKE and
presence (no ordering: their values are free text), and semver and version
take ordered comparisons. `tags.k != "v"` also matches versions without the key.
"""

from __future__ import annotations

import re

from modelreg.filtering import FieldSpec, FieldType, Node, Schema, parse
from modelreg.versioning.domain.values import SEMVER_PATTERN, Status

_KEY = re.compile(r"^[A-Za-z0-9_.]{1,128}$")
_MAP_OPS = ("=", "!=", "in", "like", ":")


def _semver(text: str) -> tuple[int, ...] | None:
    match = SEMVER_PATTERN.fullmatch(text)
    return tuple(int(g) for g in match.groups()) if match else None


FILTER = Schema(
    (
        FieldSpec("tags", FieldType.STRING_MAP, _MAP_OPS, key_pattern=_KEY, absent_is_unequal=True),
        FieldSpec("params", FieldType.STRING_MAP, _MAP_OPS, key_pattern=_KEY, absent_is_unequal=True),
        FieldSpec("framework", FieldType.STRING, ("=", "!=", "in", "like"), nullable=True),
        FieldSpec("state", FieldType.ENUM, values={s.name: s.value for s in Status}, enum_prefix="STATE_"),
        FieldSpec(
            "semver",
            FieldType.ROW,
            parse_row=_semver,
            row_description="a semver MAJOR.MINOR.PIPELINE such as 1.2.0",
        ),
        FieldSpec("version", FieldType.INT, minimum=0),
    ),
    max_chars=2048,
    max_depth=16,
)


def parse_filter(text: str) -> Node | None:
    """None for an empty filter (everything matches)."""
    return parse(text, FILTER)
