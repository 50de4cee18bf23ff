"""Turning URIs into the version names the services take."""

from __future__ import annotations

import re

from modelreg.client.connection import Connection
from modelreg.client.errors import NotFound
from modelreg.client.uris import parse_uri
from modelreg.gen.promotion.v1 import promotion_pb2

_SEMVER_REFERENCE = re.compile(r"^v?\d+\.\d+\.\d+$|^latest$|^v\d+\.latest$")


def reference_name(uri: str) -> str:
    """The GetModelVersion name for a URI: versioning resolves numbers, semvers, latest,
    stages and aliases (from its promotion cache) itself, so a read is one call."""
    parsed = parse_uri(uri)
    if parsed.version is not None:
        return f"{parsed.model_name}/versions/{parsed.version}"
    return f"{parsed.model_name}@{parsed.reference or 'latest'}"


async def version_name(connection: Connection, uri: str) -> str:
    """A version name by number (what lineage records take): stages and aliases are
    resolved through promotion. Reads use `reference_name` instead."""
    parsed = parse_uri(uri)
    if parsed.version is not None:
        return f"{parsed.model_name}/versions/{parsed.version}"
    reference = parsed.reference or "latest"
    if _SEMVER_REFERENCE.match(reference):
        return f"{parsed.model_name}@{reference}"
    pointers = await connection.call(
        connection.promotion.GetPointers, promotion_pb2.GetPointersRequest(model=parsed.model_name)
    )
    stages = {k.lower(): v for k, v in pointers.stages.items()}
    number = pointers.aliases.get(reference) or stages.get(reference.lower())
    if not number:
        raise NotFound(f"{parsed.model_name} has no stage or alias {reference!r}")
    return f"{parsed.model_name}/versions/{number}"
