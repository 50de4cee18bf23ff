"""The whole registry plus the events relay on its own topics: Tansu, PostgreSQL and a
filesystem blob store, with bearer tokens and roles (alice admin, bob approver)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelreg.client import AsyncRegistry, Endpoints
from modelreg.client.public_events import PublicRecord, follow
from modelreg.runtime.host import ServiceHost
from modelreg.runtime.settings import Settings
from tests.helpers import environment, serving, with_own_topics

TOKENS = {"alice": "t-alice", "bob": "t-bob", "carol": "t-carol"}
ROLES = "alice=admin@*,bob=approver@*,carol=viewer@*"
AUTH = {
    "MODELREG_AUTH_TOKENS": ",".join(f"{t}={p}" for p, t in TOKENS.items()),
    "MODELREG_ROLES": ROLES,
}
WEBHOOKS = {
    # The tests' receivers listen on 127.0.0.1: allowed explicitly, nothing else private is.
    "MODELREG_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
    "MODELREG_WEBHOOK_MAX_ATTEMPTS": "3",
    "MODELREG_WEBHOOK_BACKOFF_S": "0.05",
    "MODELREG_WEBHOOK_TIMEOUT_S": "3",
}


@dataclass
class Stack:
    settings: Settings
    hosts: dict[str, ServiceHost]

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints(**{name: f"127.0.0.1:{h.port}" for name, h in self.hosts.items()})

    def client(self, principal: str) -> AsyncRegistry:
        return AsyncRegistry(self.endpoints, bearer_token=TOKENS[principal])

    @property
    def public_topic(self) -> str:
        return self.settings.kafka.topic("modelreg.public.v1")

    async def public_records(
        self, until: Callable[[list[PublicRecord]], bool], timeout: float = 60.0
    ) -> list[PublicRecord]:
        """The public topic from the beginning, read until `until(records)` holds."""
        return await read_public(self.settings, until, timeout)


async def read_public(
    settings: Settings, until: Callable[[list[PublicRecord]], bool], timeout: float = 60.0
) -> list[PublicRecord]:
    records: list[PublicRecord] = []
    deadline = time.monotonic() + timeout

    async def collect() -> None:
        async for record in follow(
            settings.kafka.bootstrap_servers, settings.kafka.topic("modelreg.public.v1")
        ):
            records.append(record)
            if until(records):
                return

    try:
        await asyncio.wait_for(collect(), max(1.0, deadline - time.monotonic()))
    except TimeoutError:
        raise AssertionError(
            f"the public topic did not get there in {timeout}s: {len(records)} records"
        ) from None
    return records


def registry_specs(suffix: str, root: Path) -> dict[str, object]:
    from modelreg.artifacts.fs import FilesystemBlobStore
    from modelreg.catalog.main import spec as catalog
    from modelreg.lineage.main import spec as lineage
    from modelreg.promotion.main import spec as promotion
    from modelreg.versioning.main import spec as versioning

    return {
        "catalog": catalog(f"ev_catalog_{suffix}"),
        "versioning": versioning(f"ev_versioning_{suffix}", blobs=lambda: FilesystemBlobStore(root)),
        "lineage": lineage(f"ev_lineage_{suffix}"),
        "promotion": promotion(f"ev_promotion_{suffix}"),
    }


@pytest.fixture(scope="module")
async def stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    from modelreg.events.main import spec as events

    own = with_own_topics(settings, "events")
    suffix = uuid.uuid4().hex[:6]
    async with AsyncExitStack() as stack_:
        hosts = {}
        with environment({**AUTH, **WEBHOOKS}):
            specs = {
                **registry_specs(suffix, Path(tmp_path_factory.mktemp("ev-blobs"))),
                "events": events(f"ev_{suffix}"),
            }
            for name, spec in specs.items():
                hosts[name] = await stack_.enter_async_context(serving(spec, own))  # type: ignore[arg-type]
        yield Stack(own, hosts)
