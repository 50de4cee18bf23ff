"""Where ListAuditEvents' filter fields live: each field of `domain.filters.FILTER` -> its SQL
expression over `audit_events`. Strings compare in "C" (code point) order."""

from __future__ import annotations

FILTER = {
    "actor": 'actor COLLATE "C"',
    "action": 'action COLLATE "C"',
    "model": 'model COLLATE "C"',
    "resource": 'resource COLLATE "C"',
    "request_id": 'request_id COLLATE "C"',
    "correlation_id": 'correlation_id COLLATE "C"',
    "topic": 'topic COLLATE "C"',
    "occur_time": "occurred_at",
}
