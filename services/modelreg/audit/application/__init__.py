"""The audit use cases and their ports."""
