"""What each page shows, gathered from the services through the SDK: plain values for the
templates, so the routes stay thin and the rendering has no gRPC in it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from google.protobuf.timestamp_pb2 import Timestamp

from modelreg.client.audit import AuditClient
from modelreg.client.catalog import CatalogClient
from modelreg.client.errors import NotFound, RegistryError
from modelreg.client.lineage import LineageClient
from modelreg.client.promotion import PromotionClient
from modelreg.client.versioning import VersioningClient
from modelreg.gateway.ui.graph import GraphEdge, GraphNode, render_svg
from modelreg.gen.catalog.v1 import catalog_pb2
from modelreg.gen.lineage.v1 import lineage_pb2
from modelreg.gen.promotion.v1 import promotion_pb2
from modelreg.gen.versioning.v1 import versioning_pb2

MODELS_PAGE_SIZE = 25
VERSIONS_SHOWN = 200


class Services(Protocol):
    catalog: CatalogClient
    versioning: VersioningClient
    lineage: LineageClient
    promotion: PromotionClient
    audit: AuditClient


def when(stamp: Timestamp) -> str:
    if not stamp.seconds and not stamp.nanos:
        return ""
    return stamp.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def state_label(enum: Any, value: int) -> str:
    return str(enum.Name(value)).removeprefix("STATE_").replace("_", " ").lower()


def model_path(name: str) -> str:
    """`namespaces/ns/models/m` → `/models/ns/m`."""
    parts = name.split("/")
    return f"/models/{parts[1]}/{parts[3]}"


def version_path(name: str) -> str:
    parts = name.split("/")
    return f"/models/{parts[1]}/{parts[3]}/versions/{parts[5]}"


def pointers_by_version(pointers: promotion_pb2.Pointers) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for stage, version in sorted(pointers.stages.items()):
        found.setdefault(version, []).append(stage)
    for alias, version in sorted(pointers.aliases.items()):
        found.setdefault(version, []).append(f"@{alias}")
    return found


@dataclass
class ModelRow:
    name: str
    href: str
    description: str
    latest_semver: str
    pointers: list[tuple[str, int]]
    owners: list[str]
    updated: str
    updated_by: str


@dataclass
class ModelsPage:
    namespaces: list[str]
    namespace: str
    filter: str
    rows: list[ModelRow]
    next_page_token: str
    error: str = ""


async def models_page(services: Services, namespace: str, filter: str, page_token: str) -> ModelsPage:
    namespaces = sorted(n.name.removeprefix("namespaces/") for n in await services.catalog.list_namespaces())
    namespace = namespace or (namespaces[0] if namespaces else "")
    page = ModelsPage(namespaces, namespace, filter, [], "")
    if not namespace:
        return page
    try:
        response = await services.catalog.models_page(
            namespace, filter=filter, page_size=MODELS_PAGE_SIZE, page_token=page_token
        )
    except RegistryError as error:
        # A filter the service refuses is shown next to the box, in the service's words.
        page.error = str(error)
        return page
    page.next_page_token = response.next_page_token
    models = list(response.registered_models)

    async def summary(model: catalog_pb2.RegisteredModel) -> ModelRow:
        uri = model.name.removeprefix("namespaces/").replace("/models/", "/", 1)
        latest, pointers = await asyncio.gather(
            services.versioning.versions_page(uri, page_size=1), services.promotion.pointers(uri)
        )
        moved = sorted(pointers.stages.items()) + [(f"@{a}", v) for a, v in sorted(pointers.aliases.items())]
        return ModelRow(
            name=uri,
            href=model_path(model.name),
            description=_excerpt(model.description),
            latest_semver=latest.model_versions[0].semver if latest.model_versions else "",
            pointers=moved,
            owners=list(model.owners),
            updated=when(model.update_time),
            updated_by=model.updated_by,
        )

    page.rows = list(await asyncio.gather(*(summary(m) for m in models)))
    return page


def _excerpt(text: str, limit: int = 140) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass
class VersionRow:
    number: int
    semver: str
    state: str
    created_by: str
    created: str
    tags: dict[str, str]
    pointers: list[str]
    href: str


@dataclass
class TimelineEntry:
    time: str
    changes: list[str]
    requester: str
    approvers: list[str]
    applied_by: str
    comment: str
    rollback: bool
    rollback_reason: str


@dataclass
class PendingRequest:
    name: str
    id: str
    moves: list[str]
    requester: str
    comment: str
    approvals: list[str]
    required: int
    created: str


@dataclass
class EnvironmentRow:
    environment: str
    desired_revision: int
    desired_split: str
    serving_code: str
    acknowledged: str
    """e.g. `succeeded: revision 3 (v2) by cd-bot at ...`, or "" when nothing was reported."""
    drift: bool
    drift_reason: str


def _split(deployment: promotion_pb2.Deployment) -> str:
    return ", ".join(f"v{w.version} {w.percent}%" for w in deployment.weights)


def _serving_code(code: promotion_pb2.ServingCode) -> str:
    if code.image:
        return code.image
    if code.repository:
        return f"{code.repository}@{code.commit[:12]}"
    return ""


def environment_rows(status: promotion_pb2.DeploymentStatus) -> list[EnvironmentRow]:
    rows = []
    for env in status.environments:
        report = env.acknowledged
        acknowledged = ""
        if report.state:
            state = promotion_pb2.DeploymentReport.State.Name(report.state).removeprefix("STATE_").lower()
            target = f"revision {report.revision}" if report.revision else ""
            if report.version:
                target = f"{target} (v{report.version})".strip()
            acknowledged = (
                f"{state.replace('_', ' ')}: {target} by {report.reporter} at {when(report.report_time)}"
            )
            if report.detail:
                acknowledged += f" — {report.detail}"
        rows.append(
            EnvironmentRow(
                environment=env.environment,
                desired_revision=env.desired.revision,
                desired_split=_split(env.desired),
                serving_code=short_ref(_serving_code(env.desired.serving_code)),
                acknowledged=acknowledged,
                drift=env.drift,
                drift_reason=env.drift_reason,
            )
        )
    return rows


@dataclass
class ModelPage:
    uri: str
    model: catalog_pb2.RegisteredModel
    state: str
    versions: list[VersionRow]
    version_count_shown: int
    more_versions: bool
    stages: list[tuple[str, int]]
    aliases: list[tuple[str, int]]
    deployments: list[tuple[str, list[tuple[int, int]]]]
    timeline: list[TimelineEntry]
    pending: list[PendingRequest]
    policy: dict[str, Any]
    created: str
    updated: str
    environments: list[EnvironmentRow] = field(default_factory=list)


def describe_deployment(deployment: promotion_pb2.Deployment) -> str:
    parts = [_split(deployment)]
    code = _serving_code(deployment.serving_code)
    if code:
        parts.append(f"serving code {short_ref(code)}")
    if deployment.runtime_config:
        parts.append("runtime config set")
    revision = f" revision {deployment.revision}" if deployment.revision else ""
    if deployment.restored_revision:
        revision += f" (restores revision {deployment.restored_revision})"
    return f"deployments/{deployment.environment}{revision}: " + "; ".join(p for p in parts if p)


def short_ref(reference: str) -> str:
    """An image digest shortened for reading: `repo@sha256:0123456789ab…`."""
    if "@sha256:" in reference:
        head, digest = reference.split("@sha256:", 1)
        return f"{head}@sha256:{digest[:12]}…" if len(digest) > 12 else reference
    return reference


def short_digest(digest: str) -> str:
    """`sha256:0123456789ab…`: enough to tell digests apart on a page."""
    algorithm, _, value = digest.rpartition(":")
    return f"{algorithm}:{value[:12]}…" if algorithm and len(value) > 12 else digest


def describe_change(change: promotion_pb2.PointerChange) -> str:
    before = f"v{change.previous}" if change.previous else "nothing"
    after = f"v{change.version}" if change.version else "removed"
    return f"{change.pointer}: {before} → {after}"


async def model_page(services: Services, uri: str) -> ModelPage:
    status = asyncio.ensure_future(services.promotion.deployment_status(uri))
    try:
        model, versions, pointers, history, pending, policy = await asyncio.gather(
            services.catalog.get_model(uri),
            services.versioning.versions_page(uri, page_size=VERSIONS_SHOWN),
            services.promotion.pointers(uri),
            services.promotion.history(uri, page_size=200),
            services.promotion.list_transition_requests(uri, filter='state = "PENDING"'),
            services.promotion.get_promotion_policy(uri),
        )
    except BaseException:
        status.cancel()
        raise
    deployments = await status
    on = pointers_by_version(pointers)
    rows = [
        VersionRow(
            number=v.version,
            semver=v.semver,
            state=state_label(versioning_pb2.ModelVersion.State, v.state),
            created_by=v.created_by,
            created=when(v.create_time),
            tags=dict(sorted(v.tags.items())),
            pointers=on.get(v.version, []),
            href=version_path(v.name),
        )
        for v in versions.model_versions
    ]
    timeline = [
        TimelineEntry(
            time=when(entry.apply_time),
            changes=[describe_change(c) for c in entry.changes]
            + [describe_deployment(d) for d in entry.deployments],
            requester=entry.requester,
            approvers=[a.approver for a in entry.approvals],
            applied_by=entry.applied_by,
            comment=entry.comment,
            rollback=entry.rollback,
            rollback_reason=entry.rollback_reason,
        )
        for entry in history
    ]
    waiting = [
        PendingRequest(
            name=t.name,
            id=t.name.rsplit("/", 1)[-1],
            moves=[f"{m.pointer} → v{m.version}" for m in t.moves]
            + [describe_deployment(d) for d in t.deployments],
            requester=t.requester,
            comment=t.comment,
            approvals=[a.approver for a in t.approvals],
            required=t.required_approvals,
            created=when(t.create_time),
        )
        for t in pending
    ]
    return ModelPage(
        uri=uri,
        model=model,
        state=state_label(catalog_pb2.RegisteredModel.State, model.state),
        versions=rows,
        version_count_shown=len(rows),
        more_versions=bool(versions.next_page_token),
        stages=sorted(pointers.stages.items()),
        aliases=sorted(pointers.aliases.items()),
        deployments=[
            (d.environment, [(w.version, w.percent) for w in d.weights]) for d in pointers.deployments
        ],
        timeline=timeline,
        pending=waiting,
        policy=_policy_view(policy),
        created=when(model.create_time),
        updated=when(model.update_time),
        environments=environment_rows(deployments),
    )


def _policy_view(policy: promotion_pb2.PromotionPolicy) -> dict[str, Any]:
    checks = []
    for check in policy.required_checks:
        kind = (
            promotion_pb2.RequiredCheck.Kind.Name(check.kind).removeprefix("KIND_").replace("_", " ").lower()
        )
        if check.metric:
            comparison = {1: "≥", 2: ">", 3: "≤", 4: "<"}.get(check.comparison, "?")
            kind = f"{kind}: {check.metric} {comparison} {check.threshold:g}"
        checks.append(kind)
    return {
        "protected": list(policy.protected),
        "required_approvals": policy.required_approvals,
        "separation_of_duties": policy.separation_of_duties,
        "checks": checks,
        "emergency_rollback": policy.emergency_rollback,
        "default": policy.default,
    }


@dataclass
class VersionPage:
    uri: str
    version: versioning_pb2.ModelVersion
    state: str
    created: str
    pointers: list[str]
    graph_svg: str
    graph_nodes: int
    signature: str
    diff: list[tuple[str, str, str]] | None
    diff_with: int | None
    other_versions: list[int]
    evaluations: list[EvaluationRow]


EVALUATIONS_SHOWN = 50


@dataclass
class EvaluationRow:
    time: str
    kind: str
    data: str
    metrics: list[tuple[str, str, bool]]  # (metric, value, crossed a degradation threshold)
    source: str
    creator: str


def evaluation_row(evaluation: lineage_pb2.ModelEvaluation) -> EvaluationRow:
    if evaluation.HasField("window"):
        window = evaluation.window
        data = f"{window.environment or 'traffic'} {when(window.start_time)} to {when(window.end_time)}"
    else:
        digest = evaluation.dataset.digest
        data = evaluation.dataset.uri + (f" @{short_digest(digest)}" if digest else "")
    degraded = set(evaluation.degraded_metrics)
    return EvaluationRow(
        time=when(evaluation.evaluate_time),
        kind=lineage_pb2.ModelEvaluation.Kind.Name(evaluation.kind).removeprefix("KIND_"),
        data=data,
        metrics=[(k, f"{v:g}", k in degraded) for k, v in sorted(evaluation.metrics.items())],
        source=" · ".join(part for part in (evaluation.tool, evaluation.run) if part),
        creator=evaluation.creator,
    )


NODE_KINDS = {
    lineage_pb2.NODE_TYPE_DATASET: "dataset",
    lineage_pb2.NODE_TYPE_PREPROCESSING: "preprocessing",
    lineage_pb2.NODE_TYPE_CODE: "code",
    lineage_pb2.NODE_TYPE_CONFIG: "config",
    lineage_pb2.NODE_TYPE_ENVIRONMENT: "environment",
    lineage_pb2.NODE_TYPE_TRAINING_RUN: "training_run",
    lineage_pb2.NODE_TYPE_MODEL_VERSION: "model_version",
    lineage_pb2.NODE_TYPE_EVALUATION: "evaluation",
}
EVALUATION_NODES_SHOWN = 8


def merge_subgraphs(
    upstream: lineage_pb2.GetLineageSubgraphResponse, downstream: lineage_pb2.GetLineageSubgraphResponse
) -> lineage_pb2.GetLineageSubgraphResponse:
    """What a version was made from and what hangs off it (its evaluations, its children), each
    node and edge once; only the newest evaluations are drawn (the table lists more)."""
    merged = lineage_pb2.GetLineageSubgraphResponse()
    nodes = {node.id: node for node in [*upstream.nodes, *downstream.nodes]}
    evaluations = sorted(
        (n for n in nodes.values() if n.type == lineage_pb2.NODE_TYPE_EVALUATION),
        key=lambda n: n.attributes.get("evaluate_time", ""),
        reverse=True,
    )
    for dropped in evaluations[EVALUATION_NODES_SHOWN:]:
        del nodes[dropped.id]
    merged.nodes.extend(nodes.values())
    seen: set[tuple[str, str, str]] = set()
    for edge in [*upstream.edges, *downstream.edges]:
        key = (edge.source, edge.target, edge.relation)
        if key not in seen and edge.source in nodes and edge.target in nodes:
            seen.add(key)
            merged.edges.append(edge)
    return merged


def graph_of(subgraph: lineage_pb2.GetLineageSubgraphResponse, current: str) -> tuple[str, int]:
    nodes = []
    for node in subgraph.nodes:
        kind = NODE_KINDS.get(
            node.type, lineage_pb2.NodeType.Name(node.type).removeprefix("NODE_TYPE_").lower()
        )
        attributes = dict(node.attributes)
        label, href = _node_label(kind, node.id, attributes)
        detail = ", ".join(f"{k}={v}" for k, v in sorted(attributes.items()))
        nodes.append(GraphNode(node.id, kind, label, detail, href, current=node.id == current))
    edges = [GraphEdge(e.source, e.target, e.relation) for e in subgraph.edges]
    return render_svg(nodes, edges, title="Lineage graph"), len(nodes)


def _node_label(kind: str, node_id: str, attributes: dict[str, str]) -> tuple[str, str]:
    identity = node_id.split(":", 1)[-1]
    if kind == "evaluation":
        return f"{attributes.get('kind', '').lower()} {attributes.get('metrics', '')}".strip(), ""
    if kind == "model_version" and identity.startswith("namespaces/"):
        parts = identity.split("/")
        return f"{parts[3]} v{parts[5]}", version_path(identity)
    for key in ("uri", "name", "repo", "run_id"):
        if attributes.get(key):
            text = attributes[key]
            if key == "repo" and attributes.get("commit"):
                text = f"{text}@{attributes['commit'][:10]}"
            return text, ""
    return identity, ""


def _version_facts(version: versioning_pb2.ModelVersion) -> dict[str, str]:
    facts = {"semver": version.semver, "state": state_label(versioning_pb2.ModelVersion.State, version.state)}
    facts |= {f"metrics.{k}": f"{v:g}" for k, v in version.metrics.items()}
    facts |= {f"params.{k}": v for k, v in version.params.items()}
    facts |= {f"tags.{k}": v for k, v in version.tags.items()}
    if version.code.repo:
        facts["code"] = f"{version.code.repo}@{version.code.commit}"
    if version.environment.python_version:
        facts["python"] = version.environment.python_version
    if version.environment.lock_digest:
        facts["lock digest"] = version.environment.lock_digest
    facts |= {f"file {f.path}": f.sha256 for f in version.files}
    return facts


def diff_versions(
    a: versioning_pb2.ModelVersion, b: versioning_pb2.ModelVersion
) -> list[tuple[str, str, str]]:
    """Every fact that differs, side by side: (fact, in a, in b)."""
    left, right = _version_facts(a), _version_facts(b)
    return [
        (key, left.get(key, "—"), right.get(key, "—"))
        for key in sorted(left.keys() | right.keys())
        if left.get(key) != right.get(key)
    ]


async def version_page(services: Services, uri: str, number: int, diff_with: int | None) -> VersionPage:
    reference = f"{uri}/{number}"
    version, pointers, versions, evaluations = await asyncio.gather(
        services.versioning.get_version(reference),
        services.promotion.pointers(uri),
        services.versioning.versions_page(uri, page_size=VERSIONS_SHOWN),
        services.lineage.list_evaluations(reference, newest_first=True, limit=EVALUATIONS_SHOWN),
    )
    try:
        upstream, downstream = await asyncio.gather(
            services.lineage.lineage_subgraph(reference, direction="up", max_hops=3),
            services.lineage.lineage_subgraph(reference, direction="down", max_hops=1),
        )
        graph_svg, graph_nodes = graph_of(
            merge_subgraphs(upstream, downstream), f"model_version:{version.name}"
        )
    except NotFound:
        graph_svg, graph_nodes = "", 0
    diff = None
    if diff_with is not None:
        diff = diff_versions(version, await services.versioning.get_version(f"{uri}/{diff_with}"))
    return VersionPage(
        uri=uri,
        version=version,
        state=state_label(versioning_pb2.ModelVersion.State, version.state),
        created=when(version.create_time),
        pointers=pointers_by_version(pointers).get(version.version, []),
        graph_svg=graph_svg,
        graph_nodes=graph_nodes,
        signature=_signature_text(version),
        diff=diff,
        diff_with=diff_with,
        other_versions=[v.version for v in versions.model_versions if v.version != number],
        evaluations=[evaluation_row(e) for e in evaluations],
    )


def _signature_text(version: versioning_pb2.ModelVersion) -> str:
    from google.protobuf.json_format import MessageToDict

    if not version.HasField("signature"):
        return ""
    return json.dumps(MessageToDict(version.signature), indent=2)


@dataclass
class AuditRow:
    time: str
    actor: str
    action: str
    resource: str
    comment: str
    changes: str


async def audit_page(services: Services, uri: str, limit: int = 500) -> list[AuditRow]:
    events = await services.audit.list_audit_events(model=uri, limit=limit)
    return [
        AuditRow(when(e.occur_time), e.actor, e.action, e.resource, e.comment, e.changes)
        for e in reversed(events)
    ]


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
