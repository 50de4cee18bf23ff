"""The versioning service: adapters."""
