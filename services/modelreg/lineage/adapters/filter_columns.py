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
