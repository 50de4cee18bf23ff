"""Pure: what an audit entry is and what a query may filter on."""
