"""The four services on a private database and topic prefix (tests.fleet)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from modelreg.devstack import LocalStack
from modelreg.runtime.settings import Settings
from tests.fleet import Fleet, running_fleet


@pytest.fixture(scope="session")
async def fleet(local_stack: LocalStack, settings: Settings) -> AsyncIterator[Fleet]:
    async with running_fleet(local_stack, settings) as running:
        yield running
