"""The promotion service: api."""
