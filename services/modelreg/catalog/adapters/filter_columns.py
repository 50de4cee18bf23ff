"""Where the search's filter fields live in the read model: each field of
`domain.filters.FILTER` -> its SQL expression over `registered_models m`."""

from __future__ import annotations

FILTER = {
    "name": "m.model",
    "display_name": "m.display_name",
    "state": "m.state",
    "create_time": "m.create_time",
    "update_time": "m.update_time",
    "tags": "m.tags",
    "properties": "m.properties",
    "owners": "m.owners",
    "text": "m.search",
}
