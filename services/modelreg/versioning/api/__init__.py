"""The versioning service: api."""
