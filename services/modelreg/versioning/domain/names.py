"""Resource names and references of versions."""

from __future__ import annotations

import re

from modelreg.errors import InvalidArgument
from modelreg.names import ID_PATTERN
from modelreg.versioning.domain.queries import Reference
from modelreg.versioning.domain.values import SemVer

_MODEL = r"namespaces/([^/@]+)/models/([^/@]+)"
_VERSION = re.compile(rf"^{_MODEL}/versions/([1-9][0-9]{{0,17}})$")
_AT = re.compile(rf"^{_MODEL}@(.+)$")
_LATEST_MAJOR = re.compile(r"^v?(0|[1-9][0-9]{0,8})\.latest$")
# Promotion's stage pointers (upper case in its events); anything else that is a
# valid name is an alias.
STAGE_POINTERS = ("STAGING", "PRODUCTION")
_VERSION_LIKE = re.compile(r"^v?[0-9]+\.")


def parse_model(name: str, field_name: str = "parent") -> str:
    match = re.fullmatch(_MODEL, name)
    if not match:
        raise InvalidArgument.of(field_name, "must be namespaces/{namespace}/models/{model}")
    for part in match.groups():
        if not ID_PATTERN.fullmatch(part):
            raise InvalidArgument.of(field_name, f"{part[:140]!r} must match {ID_PATTERN.pattern}")
    return name


def parse_reference(name: str, field_name: str = "name") -> Reference:
    if len(name) > 600:
        raise InvalidArgument.of(field_name, "is too long")
    if match := _VERSION.fullmatch(name):
        model = parse_model(name.rsplit("/versions/", 1)[0], field_name)
        return Reference(model, number=int(match.group(3)))
    if match := _AT.fullmatch(name):
        model = parse_model(name.split("@", 1)[0], field_name)
        ref = match.group(3)
        if ref == "latest":
            return Reference(model, latest=True)
        if latest := _LATEST_MAJOR.fullmatch(ref):
            return Reference(model, latest_major=int(latest.group(1)))
        if _VERSION_LIKE.match(ref):  # a malformed semver is a mistake, not an alias name
            return Reference(model, semver=SemVer.parse(ref, field_name))
        if ref.upper() in STAGE_POINTERS:
            return Reference(model, pointer=ref.upper())
        if ID_PATTERN.fullmatch(ref):
            return Reference(model, pointer=ref)
        raise InvalidArgument.of(
            field_name, f"{ref[:140]!r} is not a semantic version, latest, v<N>.latest, a stage or an alias"
        )
    raise InvalidArgument.of(
        field_name,
        "must be namespaces/{ns}/models/{model}/versions/{n} or namespaces/{ns}/models/{model}@"
        "{v1.2.0|latest|v1.latest|stage|alias}",
    )


def parse_version_name(name: str, field_name: str = "name") -> tuple[str, int]:
    """A version by number only (writes address exact versions)."""
    ref = parse_reference(name, field_name)
    if ref.number is None:
        raise InvalidArgument.of(field_name, "must name a version by number: .../versions/{n}")
    return ref.model, ref.number
