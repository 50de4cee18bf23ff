"""The promotion service: adapters."""
