"""Projections: folding topics into Postgres read models exactly once."""
