"""The lineage service: domain."""
