"""Resource names every service shares, and their grammar (google.aip.dev/122).

Pure: no gRPC, database, Kafka, S3 or generated protos (domain code imports it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelreg.errors import InvalidArgument
from modelreg.limits import check_pattern

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
"""A namespace, model, alias, tag or property key: lower case, at most 128 characters.
Always matched with fullmatch (`$` would accept a trailing newline)."""


@dataclass(frozen=True, slots=True, order=True)
class ModelName:
    namespace: str
    model: str

    def __str__(self) -> str:
        return f"namespaces/{self.namespace}/models/{self.model}"

    @property
    def parent(self) -> str:
        return f"namespaces/{self.namespace}"


@dataclass(frozen=True, slots=True, order=True)
class VersionName:
    namespace: str
    model: str
    number: int

    @property
    def model_name(self) -> str:
        """The model's resource name (the stream, and Kafka key, of its events)."""
        return f"namespaces/{self.namespace}/models/{self.model}"

    def __str__(self) -> str:
        return f"{self.model_name}/versions/{self.number}"


def check_id(value: str, field: str) -> str:
    return check_pattern(value, ID_PATTERN, field)


def parse_parent(parent: str, field: str = "parent") -> str:
    """`namespaces/{ns}` -> ns."""
    if not parent:
        raise InvalidArgument.of(field, "is required")
    parts = parent.split("/")
    if len(parts) != 2 or parts[0] != "namespaces":
        raise InvalidArgument.of(field, f"{parent[:200]!r} is not of the form namespaces/{{namespace}}")
    return check_id(parts[1], field)


def parse_model_name(name: str, field: str = "name") -> ModelName:
    if not name:
        raise InvalidArgument.of(field, "is required")
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "namespaces" or parts[2] != "models":
        raise InvalidArgument.of(
            field, f"{name[:300]!r} is not of the form namespaces/{{namespace}}/models/{{model}}"
        )
    return ModelName(check_id(parts[1], field), check_id(parts[3], field))


def parse_version_name(value: str, field: str) -> VersionName:
    """`namespaces/{ns}/models/{model}/versions/{n}`, n >= 1: a version by number only."""
    if not value:
        raise InvalidArgument.of(field, "is required")
    parts = value.split("/")
    if (
        len(parts) != 6
        or parts[0] != "namespaces"
        or parts[2] != "models"
        or parts[4] != "versions"
        or not ID_PATTERN.fullmatch(parts[1])
        or not ID_PATTERN.fullmatch(parts[3])
        or not (parts[5].isascii() and parts[5].isdigit())  # isdigit alone accepts '١٢' and '²'
        or parts[5].startswith("0")
        or len(parts[5]) > 18
    ):
        raise InvalidArgument.of(
            field,
            f"{value[:300]!r} is not of the form namespaces/{{ns}}/models/{{model}}/versions/{{n}} (n >= 1)",
        )
    return VersionName(parts[1], parts[3], int(parts[5]))
