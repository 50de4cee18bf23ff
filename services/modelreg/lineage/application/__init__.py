"""The lineage service: application."""
