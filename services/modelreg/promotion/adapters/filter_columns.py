"""Where promotion's filter fields live in the read model: each field of the
schemas in `domain.filters` -> its SQL expression over the table listed
(requests, transitions, access_denials).

Strings compare in "C" (code point) order; an alias maps to its field's column.
"""

from __future__ import annotations

REQUESTS = {
    "state": "state",
    "requester": "requester",
    "requested_by": "requester",
    "decided_by": "decided_by",
    "rollback": "rollback",
    "emergency": "emergency",
    "create_time": "create_time",
    "update_time": "update_time",
}

HISTORY = {
    "pointer": "targets",
    "transition_request": 'request COLLATE "C"',
    "apply_time": "apply_time",
    "applied_time": "apply_time",
}

DENIALS = {
    "principal": 'principal COLLATE "C"',
    "action": 'action COLLATE "C"',
    "resource": 'resource COLLATE "C"',
    "reason": 'reason COLLATE "C"',
    "deny_time": "deny_time",
}
