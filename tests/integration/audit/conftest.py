"""The whole registry on its own topics: the four services plus audit, on Tansu, PostgreSQL
and a filesystem blob store, with bearer tokens and roles (alice and bob edit, carol views)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelreg.audit.adapters.keys import KeyRing
from modelreg.auditlog.checkpoint import Signer
from modelreg.client import AsyncRegistry, Endpoints
from modelreg.runtime.host import ServiceHost
from modelreg.runtime.settings import Settings
from tests.helpers import environment, serving, with_own_topics

TOKENS = {"alice": "t-alice", "bob": "t-bob", "carol": "t-carol", "dave": "t-dave"}
"""dave is authenticated and holds no role anywhere."""
ROLES = "alice=admin@*,bob=editor@*,carol=viewer@*"


AUTH = {
    "MODELREG_AUTH_TOKENS": ",".join(f"{t}={p}" for p, t in TOKENS.items()),
    "MODELREG_ROLES": ROLES,
}


@dataclass
class Stack:
    settings: Settings
    hosts: dict[str, ServiceHost]
    signer: Signer
    retired: Signer

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints(**{name: f"127.0.0.1:{host.port}" for name, host in self.hosts.items()})

    def client(self, principal: str) -> AsyncRegistry:
        return AsyncRegistry(self.endpoints, bearer_token=TOKENS[principal])

    @property
    def audit(self) -> ServiceHost:
        return self.hosts["audit"]


@pytest.fixture(scope="module")
async def stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    from modelreg.artifacts.fs import FilesystemBlobStore
    from modelreg.audit.main import spec as audit
    from modelreg.catalog.main import spec as catalog
    from modelreg.lineage.main import spec as lineage
    from modelreg.promotion.main import spec as promotion
    from modelreg.versioning.main import spec as versioning

    own = with_own_topics(settings, "audit")
    signer, retired = Signer.generate(), Signer.generate()
    suffix = uuid.uuid4().hex[:6]
    root = Path(tmp_path_factory.mktemp("audit-blobs"))
    specs = {
        "catalog": catalog(f"audit_catalog_{suffix}"),
        "versioning": versioning(f"audit_versioning_{suffix}", blobs=lambda: FilesystemBlobStore(root)),
        "lineage": lineage(f"audit_lineage_{suffix}"),
        "promotion": promotion(f"audit_promotion_{suffix}"),
        "audit": audit(
            f"audit_{suffix}",
            keys=KeyRing(signer, {retired.key_id: retired.public_key}),
            checkpoint_every=4,
            checkpoint_interval_s=0.5,
        ),
    }
    async with AsyncExitStack() as stack_:
        hosts = {}
        with environment(AUTH):
            for name, spec in specs.items():
                hosts[name] = await stack_.enter_async_context(serving(spec, own))
        yield Stack(own, hosts, signer, retired)
