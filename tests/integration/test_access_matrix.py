"""The RBAC matrix, generated from the method -> permission table: every method of the four
services and AccessService x every principal (no grant, viewer, editor, approver, admin of the
home namespace, an admin of every namespace, and a group grant: editor through group `team`
from an API token) x the home namespace and another one, against the five services running on
Tansu, PostgreSQL and moto S3, in one stack for the module.

Also here, on the same stack: grants on the log (a grant in catalog lets a call through in
another service, a revoke stops it), reads across namespaces filtered, SDK and CLI.

A cell is as the table says: an allowed call never fails with PERMISSION_DENIED (nor
UNAUTHENTICATED, INTERNAL or UNKNOWN); a denied call gets PERMISSION_DENIED and appends
nothing but the record of its denial.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message

from modelreg.access import TABLE, Role, Scope
from modelreg.artifacts.s3 import S3BlobStore
from modelreg.audit.adapters.keys import KeyRing
from modelreg.auditlog.checkpoint import Signer
from modelreg.client import AsyncRegistry, Endpoints
from modelreg.client.errors import PermissionDenied
from modelreg.devstack.s3 import MotoS3Server
from modelreg.eventlog import TOKEN_METADATA_KEY
from modelreg.gen.audit.v1 import audit_pb2 as aud
from modelreg.gen.audit.v1 import audit_pb2_grpc
from modelreg.gen.catalog.v1 import access_pb2 as acc
from modelreg.gen.catalog.v1 import access_pb2_grpc, catalog_pb2_grpc
from modelreg.gen.catalog.v1 import catalog_pb2 as cat
from modelreg.gen.lineage.v1 import lineage_pb2 as lin
from modelreg.gen.lineage.v1 import lineage_pb2_grpc
from modelreg.gen.promotion.v1 import promotion_pb2 as pro
from modelreg.gen.promotion.v1 import promotion_pb2_grpc
from modelreg.gen.relay.v1 import webhooks_pb2 as wh
from modelreg.gen.relay.v1 import webhooks_pb2_grpc
from modelreg.gen.versioning.v1 import versioning_pb2 as ver
from modelreg.gen.versioning.v1 import versioning_pb2_grpc
from modelreg.grpcutil.tokenfile import create_token
from modelreg.runtime.host import ServiceHost
from modelreg.runtime.settings import Settings
from tests.helpers import log_envelopes, run_cli_async, unique, with_own_topics

SHA = "sha256:" + "ab" * 32
HOME_ROLES = {"viewer": Role.VIEWER, "editor": Role.EDITOR, "approver": Role.APPROVER, "admin": Role.ADMIN}
GROUPED = "grouped"
PRINCIPALS = ["nobody", *HOME_ROLES, "root", GROUPED]
NEWCOMER = "newcomer"
"""Holds no bootstrap grant: the grants on the log tests grant to it and revoke."""
"""`nobody` is authenticated and has no grant; the four roles are granted in the home
namespace only; `root` is admin of every namespace (MODELREG_ADMINS); `grouped` holds no grant
of its own, but its API token (from the token file) puts it in group `team`, editor of the home
namespace."""
API_TOKENS: dict[str, str] = {}
"""principal -> its API token from the token file (the others use MODELREG_AUTH_TOKENS)."""
SERVICES = {
    "catalog": "/modelreg.catalog.v1.CatalogService/",
    "versioning": "/modelreg.versioning.v1.VersioningService/",
    "lineage": "/modelreg.lineage.v1.LineageService/",
    "promotion": "/modelreg.promotion.v1.PromotionService/",
    "access": "/modelreg.catalog.v1.AccessService/",
    "audit": "/modelreg.audit.v1.AuditService/",
    "events": "/modelreg.relay.v1.WebhookService/",
}
TOPICS = [f"modelreg.{s}.v1" for s in ("catalog", "versioning", "lineage", "promotion", "audit", "events")]
METHODS = [m for m in TABLE if m.startswith(tuple(SERVICES.values()))]


def metadata(principal: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {API_TOKENS.get(principal, f't-{principal}')}")]


@contextmanager
def access_env(home: str, token_file: Path) -> Iterator[None]:
    roles = ",".join([*(f"{p}={p}@{home}" for p in HOME_ROLES), f"group:team=editor@{home}"])
    API_TOKENS[GROUPED], _ = create_token(token_file, GROUPED, groups=["team"])
    values = {
        "MODELREG_AUTH_TOKENS": ",".join(
            f"t-{p}={p}" for p in [*PRINCIPALS, NEWCOMER] if p not in API_TOKENS
        ),
        "MODELREG_AUTH_TOKEN_FILE": str(token_file),
        "MODELREG_ROLES": roles,
        "MODELREG_ADMINS": "root",
    }
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class Stack:
    settings: Settings
    home: str
    other: str
    channels: dict[str, grpc.aio.Channel]
    hosts: dict[str, ServiceHost]
    tokens: list[str] = field(default_factory=list)
    pending: dict[str, str] = field(default_factory=dict)
    """namespace -> a pending transition request."""
    records: dict[str, str] = field(default_factory=dict)
    """namespace -> a lineage record."""

    def stub(self, service: str) -> Any:
        channel = self.channels["catalog" if service == "access" else service]
        return {
            "access": access_pb2_grpc.AccessServiceStub,
            "catalog": catalog_pb2_grpc.CatalogServiceStub,
            "versioning": versioning_pb2_grpc.VersioningServiceStub,
            "lineage": lineage_pb2_grpc.LineageServiceStub,
            "promotion": promotion_pb2_grpc.PromotionServiceStub,
            "audit": audit_pb2_grpc.AuditServiceStub,
            "events": webhooks_pb2_grpc.WebhookServiceStub,
        }[service](channel)

    def md(self, principal: str) -> list[tuple[str, str]]:
        return metadata(principal) + [(TOKEN_METADATA_KEY, t) for t in self.tokens]

    async def setup_call(self, service: str, method: str, request: Message) -> Any:
        call = getattr(self.stub(service), method)(request, metadata=self.md("root"), timeout=30)
        response = await call
        token = dict(await call.trailing_metadata() or ()).get(TOKEN_METADATA_KEY)
        if token:
            self.tokens.append(str(token))
        return response


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoS3Server]:
    with MotoS3Server.start() as server:
        yield server


@pytest.fixture(scope="module")
async def stack(
    settings: Settings, moto: MotoS3Server, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    from modelreg.audit.main import spec as audit
    from modelreg.catalog.main import spec as catalog
    from modelreg.events.main import spec as events
    from modelreg.lineage.main import spec as lineage
    from modelreg.promotion.main import spec as promotion
    from modelreg.versioning.main import spec as versioning

    own = with_own_topics(settings, "rbac")
    suffix = uuid.uuid4().hex[:6]
    blobs = S3BlobStore(
        endpoint=moto.endpoint,
        bucket=f"rbac-{suffix}",
        access_key=moto.access_key,
        secret_key=moto.secret_key,
        region=moto.region,
        secure=False,
    )
    specs = {
        "catalog": catalog(f"rbac_catalog_{suffix}"),
        "versioning": versioning(f"rbac_versioning_{suffix}", blobs=lambda: blobs),
        "lineage": lineage(f"rbac_lineage_{suffix}"),
        "promotion": promotion(f"rbac_promotion_{suffix}"),
        # No checkpoint comes due during the module: denied calls must append only their denials.
        "audit": audit(
            f"rbac_audit_{suffix}",
            keys=KeyRing(Signer.generate()),
            checkpoint_every=10**9,
            checkpoint_interval_s=3600,
        ),
        "events": events(f"rbac_events_{suffix}"),
    }
    home, other = unique("home"), unique("other")
    hosts: dict[str, ServiceHost] = {}
    channels: dict[str, grpc.aio.Channel] = {}
    try:
        with access_env(home, tmp_path_factory.mktemp("auth") / "tokens.json"):
            for name, spec in specs.items():
                hosts[name] = ServiceHost(spec, own)
                await hosts[name].start(port=0)
        for name, host in hosts.items():
            channels[name] = grpc.aio.insecure_channel(f"127.0.0.1:{host.port}")
        stack = Stack(own, home, other, channels, hosts)
        for ns in (home, other):
            await populate(stack, ns)
        yield stack
    finally:
        for channel in channels.values():
            await channel.close()
        for host in hosts.values():
            await host.stop()


async def populate(stack: Stack, ns: str) -> None:
    """A model, a version, a lineage record, a policy, an applied and a pending transition."""
    model = f"namespaces/{ns}/models/m"
    version = f"{model}/versions/1"
    await stack.setup_call(
        "catalog",
        "CreateRegisteredModel",
        cat.CreateRegisteredModelRequest(
            parent=f"namespaces/{ns}", registered_model_id="m", registered_model=cat.RegisteredModel()
        ),
    )
    await stack.setup_call(
        "versioning",
        "CreateModelVersion",
        ver.CreateModelVersionRequest(parent=model, model_version=ver.ModelVersion(), bump=ver.BUMP_MINOR),
    )
    record = await stack.setup_call(
        "lineage",
        "RecordLineage",
        lin.RecordLineageRequest(
            parent=version, record=lin.LineageRecord(datasets=[lin.Dataset(uri="s3://d/x", digest=SHA)])
        ),
    )
    stack.records[ns] = record.name
    await stack.setup_call(
        "promotion",
        "SetPromotionPolicy",
        pro.SetPromotionPolicyRequest(
            policy=pro.PromotionPolicy(parent=model, protected=["champion"], required_approvals=1)
        ),
    )
    await stack.setup_call("promotion", "CreateTransitionRequest", transition(model, "STAGING"))
    pending = await stack.setup_call("promotion", "CreateTransitionRequest", transition(model, "champion"))
    assert pending.state == pro.TransitionRequest.STATE_PENDING
    stack.pending[ns] = pending.name


def transition(model: str, pointer: str) -> pro.CreateTransitionRequestRequest:
    return pro.CreateTransitionRequestRequest(
        parent=model,
        transition_request=pro.TransitionRequest(
            moves=[pro.PointerMove(pointer=pointer, version=1)], comment="c"
        ),
    )


def requests(stack: Stack, ns: str) -> dict[str, Callable[[], Message]]:
    """Method -> a request aimed at namespace `ns` (fresh ids for creations; destructive calls
    aim at resources that do not exist, so the matrix never removes its own fixtures)."""
    parent, model = f"namespaces/{ns}", f"namespaces/{ns}/models/m"
    version, absent = f"{model}/versions/1", f"{model}/versions/999"
    node = f"model_version:{version}"
    mask = field_mask_pb2.FieldMask(paths=["description"])
    c, v, li, p, a, au, ev = (SERVICES[s] for s in SERVICES)
    hook = f"{parent}/webhooks/absent"
    # A host that never resolves: an allowed create is INVALID_ARGUMENT and changes nothing.
    endpoint = wh.Webhook(url="https://hooks.invalid/x", secret="whsec_" + "QUJD" * 8)
    return {
        c + "CreateRegisteredModel": lambda: cat.CreateRegisteredModelRequest(
            parent=parent, registered_model_id=unique("m"), registered_model=cat.RegisteredModel()
        ),
        c + "GetRegisteredModel": lambda: cat.GetRegisteredModelRequest(name=model),
        c + "ListRegisteredModels": lambda: cat.ListRegisteredModelsRequest(parent=parent),
        c + "UpdateRegisteredModel": lambda: cat.UpdateRegisteredModelRequest(
            registered_model=cat.RegisteredModel(name=model, description=unique("d")), update_mask=mask
        ),
        c + "ArchiveRegisteredModel": lambda: cat.ArchiveRegisteredModelRequest(
            name=f"{parent}/models/absent"
        ),
        c + "RestoreRegisteredModel": lambda: cat.RestoreRegisteredModelRequest(
            name=f"{parent}/models/absent"
        ),
        c + "DeleteRegisteredModel": lambda: cat.DeleteRegisteredModelRequest(name=f"{parent}/models/absent"),
        c + "CreateNamespace": lambda: cat.CreateNamespaceRequest(namespace_id=ns, namespace=cat.Namespace()),
        c + "GetNamespace": lambda: cat.GetNamespaceRequest(name=parent),
        c + "ListNamespaces": lambda: cat.ListNamespacesRequest(),
        v + "CreateModelVersion": lambda: ver.CreateModelVersionRequest(
            parent=model, model_version=ver.ModelVersion(), bump=ver.BUMP_PIPELINE
        ),
        v + "GetModelVersion": lambda: ver.GetModelVersionRequest(name=version),
        v + "ListModelVersions": lambda: ver.ListModelVersionsRequest(parent=model),
        v + "UpdateModelVersion": lambda: ver.UpdateModelVersionRequest(
            model_version=ver.ModelVersion(name=version, description=unique("d")), update_mask=mask
        ),
        v + "PrepareUpload": lambda: ver.PrepareUploadRequest(
            name=absent, files=[ver.ArtifactFile(path="w.bin", size=1, sha256="ab" * 32)]
        ),
        v + "FinalizeModelVersion": lambda: ver.FinalizeModelVersionRequest(name=absent),
        v + "UploadArtifact": lambda: ver.UploadArtifactRequest(
            header=ver.UploadArtifactRequest.Header(name=absent, path="w.bin")
        ),
        v + "DownloadArtifact": lambda: ver.DownloadArtifactRequest(name=absent, path="w.bin"),
        v + "DeprecateModelVersion": lambda: ver.DeprecateModelVersionRequest(name=absent, reason="r"),
        v + "DeleteModelVersion": lambda: ver.DeleteModelVersionRequest(name=absent, reason="r"),
        v + "SetRetentionPolicy": lambda: ver.SetRetentionPolicyRequest(
            policy=ver.RetentionPolicy(model=model, keep_last_per_major=0)
        ),
        v + "ApplyRetentionPolicy": lambda: ver.ApplyRetentionPolicyRequest(model=model, dry_run=True),
        v + "CollectGarbage": lambda: ver.CollectGarbageRequest(dry_run=True),
        li + "RecordLineage": lambda: lin.RecordLineageRequest(
            parent=absent, record=lin.LineageRecord(datasets=[lin.Dataset(uri="s3://d/y", digest=SHA)])
        ),
        li + "SupersedeLineageRecord": lambda: lin.SupersedeLineageRecordRequest(
            name=f"{absent}/lineageRecords/r",
            record=lin.LineageRecord(datasets=[lin.Dataset(uri="s3://d/z", digest=SHA)]),
            reason="r",
        ),
        li + "GetLineageRecord": lambda: lin.GetLineageRecordRequest(name=stack.records[ns]),
        li + "ListLineageRecords": lambda: lin.ListLineageRecordsRequest(parent=version),
        li + "GetLineageSubgraph": lambda: lin.GetLineageSubgraphRequest(
            query=lin.SubgraphQuery(start_nodes=[node])
        ),
        li + "FindDownstream": lambda: lin.FindDownstreamRequest(model_version=version),
        li + "DiffLineage": lambda: lin.DiffLineageRequest(model_version_a=version, model_version_b=version),
        li + "GetReproductionInfo": lambda: lin.GetReproductionInfoRequest(model_version=version),
        li + "ExportLineage": lambda: lin.ExportLineageRequest(query=lin.SubgraphQuery(start_nodes=[node])),
        li + "RecordEvaluation": lambda: lin.RecordEvaluationRequest(
            parent=absent,
            evaluation=lin.ModelEvaluation(
                kind=lin.ModelEvaluation.KIND_OFFLINE,
                dataset=lin.Dataset(uri="s3://d/golden", digest=SHA),
                metrics={"auc": 0.9},
            ),
        ),
        li + "ListEvaluations": lambda: lin.ListEvaluationsRequest(parent=version),
        li + "CompareVersions": lambda: lin.CompareVersionsRequest(
            model_version_a=version, model_version_b=version, dataset=lin.Dataset(uri="s3://d/golden")
        ),
        li + "SetDegradationThresholds": lambda: lin.SetDegradationThresholdsRequest(
            thresholds=lin.DegradationThresholds(model=model)
        ),
        li + "GetDegradationThresholds": lambda: lin.GetDegradationThresholdsRequest(model=model),
        p + "CreateTransitionRequest": lambda: transition(model, "STAGING"),
        p + "ApproveTransitionRequest": lambda: pro.ApproveTransitionRequestRequest(name=stack.pending[ns]),
        p + "RejectTransitionRequest": lambda: pro.RejectTransitionRequestRequest(
            name=f"{model}/transitionRequests/absent"
        ),
        p + "CancelTransitionRequest": lambda: pro.CancelTransitionRequestRequest(
            name=f"{model}/transitionRequests/absent"
        ),
        p + "GetTransitionRequest": lambda: pro.GetTransitionRequestRequest(name=stack.pending[ns]),
        p + "ListTransitionRequests": lambda: pro.ListTransitionRequestsRequest(parent=model),
        p + "Rollback": lambda: pro.RollbackRequest(model=model, stage="PRODUCTION", reason="r"),
        p + "GetPointers": lambda: pro.GetPointersRequest(model=model),
        p + "ListPointerHistory": lambda: pro.ListPointerHistoryRequest(model=model),
        p + "SetPromotionPolicy": lambda: pro.SetPromotionPolicyRequest(
            policy=pro.PromotionPolicy(parent=model, protected=["champion"], required_approvals=1)
        ),
        p + "GetPromotionPolicy": lambda: pro.GetPromotionPolicyRequest(parent=model),
        p + "ListAccessDenials": lambda: pro.ListAccessDenialsRequest(parent=parent),
        p + "WatchPromotions": lambda: pro.WatchPromotionsRequest(parent=model),
        p + "GetDeployment": lambda: pro.GetDeploymentRequest(model=model, environment="prod"),
        p + "UpdateDeployment": lambda: pro.UpdateDeploymentRequest(
            model=model,
            deployment=pro.Deployment(
                environment="prod", weights=[pro.TrafficWeight(version=99, percent=100)]
            ),
            reason="r",
        ),
        p + "ListDeploymentRevisions": lambda: pro.ListDeploymentRevisionsRequest(
            model=model, environment="prod"
        ),
        p + "RollbackDeployment": lambda: pro.RollbackDeploymentRequest(
            model=model, environment="prod", reason="r"
        ),
        p + "ReportDeployment": lambda: pro.ReportDeploymentRequest(
            report=pro.DeploymentReport(
                model=model, environment="prod", revision=1, state=pro.DeploymentReport.STATE_SUCCEEDED
            )
        ),
        p + "GetDeploymentStatus": lambda: pro.GetDeploymentStatusRequest(model=model),
        a + "GrantRole": lambda: acc.GrantRoleRequest(
            parent=parent, subject=unique("s"), role=acc.ROLE_VIEWER
        ),
        a + "RevokeRole": lambda: acc.RevokeRoleRequest(
            parent=parent, subject="never-granted", role=acc.ROLE_VIEWER
        ),
        a + "ListGrants": lambda: acc.ListGrantsRequest(parent=parent),
        au + "ListAuditEvents": lambda: aud.ListAuditEventsRequest(parent=parent),
        au + "ExportAudit": lambda: aud.ExportAuditRequest(parent=parent),
        au + "ListAuditKeys": lambda: aud.ListAuditKeysRequest(),
        au + "ListCheckpoints": lambda: aud.ListCheckpointsRequest(),
        ev + "CreateWebhook": lambda: wh.CreateWebhookRequest(
            parent=parent, webhook_id=unique("w"), webhook=endpoint
        ),
        ev + "GetWebhook": lambda: wh.GetWebhookRequest(name=hook),
        ev + "ListWebhooks": lambda: wh.ListWebhooksRequest(parent=parent),
        ev + "UpdateWebhook": lambda: wh.UpdateWebhookRequest(
            webhook=wh.Webhook(name=hook, mlflow_headers=True),
            update_mask=field_mask_pb2.FieldMask(paths=["mlflow_headers"]),
        ),
        ev + "DeleteWebhook": lambda: wh.DeleteWebhookRequest(name=hook),
        ev + "TestWebhook": lambda: wh.TestWebhookRequest(name=hook),
        ev + "ListWebhookDeliveries": lambda: wh.ListWebhookDeliveriesRequest(name=hook),
        ev + "RedeliverWebhook": lambda: wh.RedeliverWebhookRequest(name=hook, from_position=1),
    }


def held(stack: Stack, principal: str, ns: str) -> Role | None:
    if principal == "root":
        return Role.ADMIN
    if principal == GROUPED:
        return Role.EDITOR if ns == stack.home else None
    return HOME_ROLES.get(principal) if ns == stack.home else None


def expected_allowed(stack: Stack, method: str, principal: str, ns: str) -> bool:
    """What the table says, from the role each principal was granted."""
    rule = TABLE[method]
    if rule.scope is Scope.STORE:
        return principal == "root"
    if rule.scope is Scope.FILTERED and not rule.fields:
        return True
    role = held(stack, principal, ns)
    return role is not None and role >= rule.role


@dataclass(frozen=True)
class Cell:
    method: str
    principal: str
    ns: str
    allowed: bool


async def outcome(stack: Stack, cell: Cell, request: Message) -> grpc.StatusCode:
    service = next(s for s, prefix in SERVICES.items() if cell.method.startswith(prefix))
    name = cell.method.rsplit("/", 1)[1]
    rpc = getattr(stack.stub(service), name)
    md = stack.md(cell.principal)
    try:
        if name == "UploadArtifact":

            async def chunks() -> AsyncIterator[Message]:
                yield request
                yield ver.UploadArtifactRequest(chunk=b"x")

            await rpc(chunks(), metadata=md, timeout=20)
        elif name in ("DownloadArtifact", "WatchPromotions", "ExportAudit"):
            # A watch follows forever: its first item (the applied STAGING move) is enough.
            call = rpc(request, metadata=md, timeout=20)
            async for _ in call:
                call.cancel()
                break
        else:
            await rpc(request, metadata=md, timeout=20)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


NEVER_WHEN_ALLOWED = {
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
}


def as_the_table_says(cell: Cell, code: grpc.StatusCode) -> bool:
    """An allowed call may fail for other reasons (a resource that does not exist), never for
    access or a bug; a denied one is PERMISSION_DENIED."""
    return code not in NEVER_WHEN_ALLOWED if cell.allowed else code == grpc.StatusCode.PERMISSION_DENIED


async def run_cells(
    stack: Stack, cells: list[Cell], *, in_flight: int = 1
) -> list[tuple[Cell, grpc.StatusCode]]:
    """Each cell's status; `in_flight` > 1 only for cells whose calls change nothing that
    another cell's call reads (the denied ones: each appends its own denial record only)."""
    by_ns = {ns: requests(stack, ns) for ns in (stack.home, stack.other)}
    slots = asyncio.Semaphore(in_flight)

    async def run(cell: Cell) -> tuple[Cell, grpc.StatusCode]:
        async with slots:
            return cell, await outcome(stack, cell, by_ns[cell.ns][cell.method]())

    return list(await asyncio.gather(*(run(cell) for cell in cells)))


async def appended(stack: Stack, before: dict[str, set[str]]) -> dict[str, list[str]]:
    """Topic -> the types of the envelopes appended since `before` (event ids per topic)."""
    out = {}
    for topic in TOPICS:
        envelopes = await log_envelopes(stack.settings.kafka, stack.settings.kafka.topic(topic))
        out[topic] = [e.type for e in envelopes if e.event_id not in before.get(topic, set())]
    return out


async def event_ids(stack: Stack) -> dict[str, set[str]]:
    return {
        topic: {
            e.event_id for e in await log_envelopes(stack.settings.kafka, stack.settings.kafka.topic(topic))
        }
        for topic in TOPICS
    }


async def test_every_cell_is_as_the_table_says(stack: Stack) -> None:
    cells = [
        Cell(method, principal, ns, expected_allowed(stack, method, principal, ns))
        for method in METHODS
        for principal in PRINCIPALS
        for ns in (stack.home, stack.other)
    ]
    assert {c.method for c in cells} == set(requests(stack, stack.home)), "a method has no request here"
    assert set(METHODS) == set(TABLE), "a method of the table is not in this matrix"

    # Denied cells first, all together: they must append nothing but denial records.
    before = await event_ids(stack)
    # Several at once: a denied call waits on nothing but its denial's append.
    denied = await run_cells(stack, [c for c in cells if not c.allowed], in_flight=8)
    new = await appended(stack, before)
    allowed = await run_cells(stack, [c for c in cells if c.allowed])

    failures = [
        f"{c.method} as {c.principal} in {'home' if c.ns == stack.home else 'other'}: expected "
        f"{'allowed' if c.allowed else 'PERMISSION_DENIED'}, got {code.name}"
        for c, code in [*denied, *allowed]
        if not as_the_table_says(c, code)
    ]
    others = {topic: [t for t in types if not t.endswith(".AccessDenied")] for topic, types in new.items()}
    histogram = Counter(code.name for _, code in [*denied, *allowed])
    total = len(cells)
    passed = total - len(failures)
    print(
        f"\nRBAC matrix: {total} cells ({len(METHODS)} methods x {len(PRINCIPALS)} principals"
        " x 2 namespaces), "
        f"{len(denied)} denied, {len(allowed)} allowed; {passed}/{total} as the table says "
        f"({100 * passed / total:.1f}%); statuses {dict(sorted(histogram.items()))}"
    )
    assert not failures, "\n".join(failures)
    assert not any(others.values()), f"denied calls appended: {others}"
    # Every denial is recorded, once, by the service that refused it, on its own topic.
    recorded = {topic: len(types) for topic, types in new.items()}
    refused = Counter(
        f"modelreg.{'catalog' if service == 'access' else service}.v1"
        for c, _ in denied
        for service, prefix in SERVICES.items()
        if c.method.startswith(prefix)
    )
    assert recorded == {topic: refused[topic] for topic in TOPICS}


# Grants on the log -------------------------------------------------------------------


async def token_of(call: Any) -> str:
    await call
    return str(dict(await call.trailing_metadata())[TOKEN_METADATA_KEY])


async def code_of(call: Any) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_a_grant_on_the_log_lets_a_call_through_in_another_service_and_a_revoke_stops_it(
    stack: Stack,
) -> None:
    access, versioning = stack.stub("access"), stack.stub("versioning")
    parent = f"namespaces/{stack.home}"
    version = ver.GetModelVersionRequest(name=f"{parent}/models/m/versions/1")
    setup = [(TOKEN_METADATA_KEY, t) for t in stack.tokens]
    assert await code_of(versioning.GetModelVersion(version, metadata=metadata(NEWCOMER) + setup)) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    # An editor of the namespace may not grant; its admin may.
    grant = acc.GrantRoleRequest(parent=parent, subject=NEWCOMER, role=acc.ROLE_VIEWER)
    assert (
        await code_of(access.GrantRole(grant, metadata=metadata("editor")))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    granted = await token_of(access.GrantRole(grant, metadata=metadata("admin")))
    assert (
        await code_of(access.GrantRole(grant, metadata=metadata("admin"))) == grpc.StatusCode.ALREADY_EXISTS
    )

    # The grant counts in versioning as soon as it has folded as far as the token says: no sleep.
    got = await versioning.GetModelVersion(
        version, metadata=metadata(NEWCOMER) + [(TOKEN_METADATA_KEY, granted)]
    )
    assert got.name == version.name
    # A viewer still may not write, nor read another namespace.
    md = metadata(NEWCOMER) + [(TOKEN_METADATA_KEY, granted)]
    write = ver.DeprecateModelVersionRequest(name=version.name, reason="r")
    assert (
        await code_of(versioning.DeprecateModelVersion(write, metadata=md))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    elsewhere = ver.GetModelVersionRequest(name=f"namespaces/{stack.other}/models/m/versions/1")
    assert (
        await code_of(versioning.GetModelVersion(elsewhere, metadata=md)) == grpc.StatusCode.PERMISSION_DENIED
    )

    listed = await access.ListGrants(acc.ListGrantsRequest(parent=parent), metadata=metadata("admin"))
    mine = [g for g in listed.grants if g.subject == NEWCOMER]
    assert [(g.role, g.granted_by, g.bootstrap) for g in mine] == [(acc.ROLE_VIEWER, "admin", False)]
    assert mine[0].grant_time.seconds > 0
    assert ("root", acc.ROLE_ADMIN, True) in [(g.subject, g.role, g.bootstrap) for g in listed.grants]

    revoke = acc.RevokeRoleRequest(parent=parent, subject=NEWCOMER, role=acc.ROLE_VIEWER)
    revoked = await token_of(access.RevokeRole(revoke, metadata=metadata("admin")))
    md = metadata(NEWCOMER) + [(TOKEN_METADATA_KEY, revoked)]
    for service, call in (
        ("versioning", lambda: versioning.GetModelVersion(version, metadata=md)),
        (
            "lineage",
            lambda: stack.stub("lineage").ListLineageRecords(
                lin.ListLineageRecordsRequest(parent=version.name), metadata=md
            ),
        ),
        (
            "promotion",
            lambda: stack.stub("promotion").GetPointers(
                pro.GetPointersRequest(model=f"{parent}/models/m"), metadata=md
            ),
        ),
        (
            "catalog",
            lambda: stack.stub("catalog").GetRegisteredModel(
                cat.GetRegisteredModelRequest(name=f"{parent}/models/m"), metadata=md
            ),
        ),
    ):
        assert await code_of(call()) == grpc.StatusCode.PERMISSION_DENIED, service
    assert await code_of(access.RevokeRole(revoke, metadata=metadata("admin"))) == grpc.StatusCode.NOT_FOUND

    # Both are facts on the catalog topic, with the granting admin as their actor.
    envelopes = await log_envelopes(stack.settings.kafka, stack.settings.kafka.topic("modelreg.catalog.v1"))
    facts = [
        (e.WhichOneof("payload"), e.actor)
        for e in envelopes
        if e.stream == f"{parent}/grants" and NEWCOMER in (e.role_granted.subject, e.role_revoked.subject)
    ]
    assert facts == [("role_granted", "admin"), ("role_revoked", "admin")]


async def test_bad_grants_are_invalid_and_append_nothing(stack: Stack) -> None:
    access = stack.stub("access")
    parent = f"namespaces/{stack.home}"
    before = await event_ids(stack)
    for request, bad in (
        (acc.GrantRoleRequest(parent=parent, subject="a=b", role=acc.ROLE_VIEWER), "subject"),
        (acc.GrantRoleRequest(parent=parent, subject="", role=acc.ROLE_VIEWER), "subject"),
        (acc.GrantRoleRequest(parent=parent, subject="x", role=acc.ROLE_UNSPECIFIED), "role"),
        (acc.GrantRoleRequest(parent=parent, subject="x", role=acc.Role.ValueType(9)), "role"),
        (acc.GrantRoleRequest(parent="namespaces/*", subject="x", role=acc.ROLE_VIEWER), "parent"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await access.GrantRole(request, metadata=metadata("root"))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        assert error.value.details().startswith(bad), error.value.details()
    assert not any((await appended(stack, before)).values())


async def test_sdk_and_cli_grant_list_and_revoke(stack: Stack) -> None:
    endpoints = Endpoints(
        catalog=f"127.0.0.1:{stack.hosts['catalog'].port}",
        versioning=f"127.0.0.1:{stack.hosts['versioning'].port}",
        lineage=f"127.0.0.1:{stack.hosts['lineage'].port}",
        promotion=f"127.0.0.1:{stack.hosts['promotion'].port}",
    )
    subject = unique("pipeline")
    async with AsyncRegistry(endpoints, bearer_token="t-admin") as admin:
        granted = await admin.access.grant(stack.home, subject, "editor")
        assert (granted.subject, granted.role, granted.granted_by) == (subject, acc.ROLE_EDITOR, "admin")
        # The SDK carries the grant's token: the next call, to any service, sees the grant.
        listed = await admin.access.list_grants(stack.home)
        assert (subject, acc.ROLE_EDITOR) in [(g.subject, g.role) for g in listed]
        with pytest.raises(PermissionDenied):
            await admin.access.grant(stack.other, subject, "editor")

    env = {
        **os.environ,
        "MODELREG_CATALOG_ADDR": endpoints.catalog,
        "MODELREG_TOKEN": "t-admin",
        "COLUMNS": "200",
    }

    async def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return await run_cli_async("access", *args, env=env, timeout=60)

    revoked = await cli("revoke", stack.home, subject, "editor", "--output", "json")
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["subject"] == subject
    listed_cli = await cli("list", stack.home, "--output", "json")
    assert listed_cli.returncode == 0, listed_cli.stderr
    rows = json.loads(listed_cli.stdout)
    assert (
        subject not in [r["subject"] for r in rows]
        and {"subject": "root"}.items() <= next(r for r in rows if r["subject"] == "root").items()
    )
    wrong = await cli("grant", stack.home, subject, "boss")
    assert wrong.returncode != 0 and "boss" in wrong.stderr


# Reads that span namespaces are filtered -----------------------------------------------


async def test_reads_across_namespaces_show_only_readable_namespaces(stack: Stack) -> None:
    catalog, lineage = stack.stub("catalog"), stack.stub("lineage")
    md = {
        p: metadata(p) + [(TOKEN_METADATA_KEY, t) for t in stack.tokens] for p in ("viewer", "root", "nobody")
    }

    async def namespaces(principal: str) -> set[str]:
        listed = await catalog.ListNamespaces(
            cat.ListNamespacesRequest(page_size=1000), metadata=md[principal]
        )
        return {n.name for n in listed.namespaces} & {f"namespaces/{stack.home}", f"namespaces/{stack.other}"}

    assert await namespaces("root") == {f"namespaces/{stack.home}", f"namespaces/{stack.other}"}
    assert await namespaces("viewer") == {f"namespaces/{stack.home}"}
    assert await namespaces("nobody") == set()

    # Both namespaces' versions were trained on the same dataset.
    dataset = f"dataset:s3://d/x@{SHA}"

    async def downstream(principal: str) -> list[str]:
        found = await lineage.FindDownstream(lin.FindDownstreamRequest(node=dataset), metadata=md[principal])
        return [v.model_version for v in found.versions if v.model_version.endswith("/models/m/versions/1")]

    home, other = (f"namespaces/{ns}/models/m/versions/1" for ns in (stack.home, stack.other))
    assert await downstream("root") == sorted([home, other])
    assert await downstream("viewer") == [home]
    assert await downstream("nobody") == []

    async def subgraph(principal: str, method: str) -> set[str]:
        query = lin.SubgraphQuery(start_nodes=[dataset], direction=lin.DIRECTION_DOWNSTREAM, max_hops=3)
        if method == "export":
            exported = await lineage.ExportLineage(
                lin.ExportLineageRequest(query=query, format=lin.EXPORT_FORMAT_JSON),
                metadata=md[principal],
            )
            return {n for n in (home, other) if n in exported.content}
        page = await lineage.GetLineageSubgraph(
            lin.GetLineageSubgraphRequest(query=query, page_size=1000), metadata=md[principal]
        )
        ids = {n.id for n in page.nodes} | {e.target for e in page.edges}
        return {n for n in (home, other) if f"model_version:{n}" in ids}

    for method in ("subgraph", "export"):
        assert await subgraph("root", method) == {home, other}, method
        assert await subgraph("viewer", method) == {home}, method
        assert await subgraph("nobody", method) == set(), method
