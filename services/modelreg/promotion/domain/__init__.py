"""The promotion service: domain."""
