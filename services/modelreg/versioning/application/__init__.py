"""The versioning service: application."""
