"""The versioning service."""
