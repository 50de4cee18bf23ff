"""Where ListModelVersions' filter fields live in the read model: each field of
`domain.filters.FILTER` -> its SQL expression over `model_versions`."""

from __future__ import annotations

FILTER = {
    "tags": "(spec->'tags')",
    "params": "(spec->'params')",
    "framework": "(spec->>'framework')",
    "state": "status",
    "semver": "(major, minor, pipeline)",
    "version": "number",
}
