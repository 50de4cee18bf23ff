"""The versioning service: domain."""
