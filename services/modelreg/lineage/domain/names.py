"""Lineage resource names: a record under a version (the shared grammar is modelreg.names)."""

from __future__ import annotations

import re

from modelreg.errors import InvalidArgument
from modelreg.names import VersionName, parse_version_name

RECORD_ID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def parse_record_name(value: str, field_name: str = "name") -> tuple[VersionName, str]:
    """`.../versions/{n}/lineageRecords/{id}` -> (version, record id)."""
    head, sep, record_id = value.rpartition("/lineageRecords/")
    if not sep or not RECORD_ID_PATTERN.fullmatch(record_id):
        raise InvalidArgument.of(
            field_name, f"{value[:300]!r} is not of the form .../versions/{{n}}/lineageRecords/{{uuid}}"
        )
    return parse_version_name(head, field_name), record_id


def record_name(version: str, record_id: str) -> str:
    return f"{version}/lineageRecords/{record_id}"
