"""The lineage service: api."""
