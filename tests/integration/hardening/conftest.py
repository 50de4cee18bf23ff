"""The four services on a private database and topic prefix (tests.fleet)."""

from tests.fleet import fleet

__all__ = ["fleet"]
