"""The promotion service."""
