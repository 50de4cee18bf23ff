"""Where ListLineageRecords' filter fields live in the read model: each field of
`domain.filters.FILTER` -> its SQL expression over `lineage_records`.

Strings compare in "C" (code point) order.
"""

from __future__ import annotations

FILTER = {
    "creator": 'creator COLLATE "C"',
    "reason": 'reason COLLATE "C"',
    "superseded": "(superseded_by IS NOT NULL)",
    "create_time": "create_time",
}

EVALUATIONS = {
    "kind": 'kind COLLATE "C"',
    "dataset_uri": "dataset_uri",
    "dataset_digest": "dataset_digest",
    "environment": "environment",
    "tool": "tool",
    "run": "run",
    "creator": "creator",
    "version": "version_number",
    "degraded": "(cardinality(degraded) > 0)",
    "evaluate_time": "evaluate_time",
    "create_time": "create_time",
}
"""ListEvaluations' filter fields over `evaluations`."""
