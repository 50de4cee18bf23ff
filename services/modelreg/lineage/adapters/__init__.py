"""The lineage service: adapters."""
