"""The promotion service: application."""
