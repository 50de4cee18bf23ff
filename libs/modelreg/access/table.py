"""The one method -> permission table: for every gRPC method of the registry, the role
it needs and where the namespace is found in its request.

Scopes:
- NAMESPACE: the role in the namespace of each named field (a resource name
  `namespaces/{ns}/...`, a lineage node id `model_version:namespaces/{ns}/...`, or, for
  CreateNamespace, the bare namespace id); every field must name one, or the call is
  INVALID_ARGUMENT before anything runs. With `empty_means_all`, an empty field means
  every namespace, and only a `*` grant holds there.
- STORE: store-wide calls. CollectGarbage deletes content-addressed blobs that any
  namespace may have written, so it touches every namespace: admin of `*` only.
- FILTERED: reads that span namespaces (ListNamespaces, lineage traversals, impact):
  any caller may ask, fields that do name a namespace still need the role there,
  and the results show only the namespaces the caller may read.

A test walks the service descriptors and fails when a method has no entry here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from modelreg.access.roles import Role


class Scope(StrEnum):
    NAMESPACE = "namespace"
    STORE = "store"
    FILTERED = "filtered"


@dataclass(frozen=True, slots=True)
class Permission:
    role: Role
    scope: Scope = Scope.NAMESPACE
    fields: tuple[str, ...] = ()
    """Dotted paths into the request (a repeated field counts each element)."""
    empty_means_all: bool = False
    bare_namespace: bool = False
    """The field holds the namespace id itself (CreateNamespace)."""

    def describe(self) -> str:
        where = {
            Scope.STORE: "every namespace (*)",
            Scope.FILTERED: "results filtered to readable namespaces",
            Scope.NAMESPACE: "namespace of " + ", ".join(self.fields),
        }[self.scope]
        if self.scope is Scope.FILTERED and self.fields:
            where += "; namespace of " + ", ".join(self.fields)
        return f"{self.role.label}: {where}"


V, E, A, ADM = Role.VIEWER, Role.EDITOR, Role.APPROVER, Role.ADMIN


def _ns(role: Role, *fields: str, empty_means_all: bool = False) -> Permission:
    return Permission(role, Scope.NAMESPACE, fields, empty_means_all=empty_means_all)


def _filtered(*fields: str) -> Permission:
    return Permission(V, Scope.FILTERED, fields)


CATALOG = "/modelreg.catalog.v1.CatalogService/"
VERSIONING = "/modelreg.versioning.v1.VersioningService/"
LINEAGE = "/modelreg.lineage.v1.LineageService/"
PROMOTION = "/modelreg.promotion.v1.PromotionService/"
ACCESS = "/modelreg.catalog.v1.AccessService/"
AUDIT = "/modelreg.audit.v1.AuditService/"
WEBHOOKS = "/modelreg.relay.v1.WebhookService/"

TABLE: Mapping[str, Permission] = {
    # catalog
    CATALOG + "CreateRegisteredModel": _ns(E, "parent"),
    CATALOG + "GetRegisteredModel": _ns(V, "name"),
    CATALOG + "ListRegisteredModels": _ns(V, "parent"),
    CATALOG + "UpdateRegisteredModel": _ns(E, "registered_model.name"),
    CATALOG + "ArchiveRegisteredModel": _ns(E, "name"),
    CATALOG + "RestoreRegisteredModel": _ns(E, "name"),
    CATALOG + "DeleteRegisteredModel": _ns(E, "name"),
    CATALOG + "CreateNamespace": Permission(ADM, Scope.NAMESPACE, ("namespace_id",), bare_namespace=True),
    CATALOG + "GetNamespace": _ns(V, "name"),
    CATALOG + "ListNamespaces": _filtered(),
    # versioning
    VERSIONING + "CreateModelVersion": _ns(E, "parent"),
    VERSIONING + "GetModelVersion": _ns(V, "name"),
    VERSIONING + "ListModelVersions": _ns(V, "parent"),
    VERSIONING + "UpdateModelVersion": _ns(E, "model_version.name"),
    VERSIONING + "PrepareUpload": _ns(E, "name"),
    VERSIONING + "FinalizeModelVersion": _ns(E, "name"),
    VERSIONING + "UploadArtifact": _ns(E, "header.name"),
    VERSIONING + "DownloadArtifact": _ns(V, "name"),
    VERSIONING + "DeprecateModelVersion": _ns(E, "name"),
    VERSIONING + "DeleteModelVersion": _ns(E, "name"),
    VERSIONING + "SetRetentionPolicy": _ns(ADM, "policy.model"),
    VERSIONING + "ApplyRetentionPolicy": _ns(ADM, "model"),
    VERSIONING + "CollectGarbage": Permission(ADM, Scope.STORE),
    # lineage
    LINEAGE + "RecordLineage": _ns(E, "parent"),
    LINEAGE + "SupersedeLineageRecord": _ns(E, "name"),
    LINEAGE + "GetLineageRecord": _ns(V, "name"),
    LINEAGE + "ListLineageRecords": _ns(V, "parent"),
    LINEAGE + "GetLineageSubgraph": _filtered("query.start_nodes"),
    LINEAGE + "FindDownstream": _filtered("model_version", "node"),
    LINEAGE + "DiffLineage": _ns(V, "model_version_a", "model_version_b"),
    LINEAGE + "GetReproductionInfo": _ns(V, "model_version"),
    LINEAGE + "ExportLineage": _filtered("query.start_nodes"),
    LINEAGE + "RecordEvaluation": _ns(E, "parent"),
    LINEAGE + "ListEvaluations": _ns(V, "parent"),
    LINEAGE + "CompareVersions": _ns(V, "model_version_a", "model_version_b"),
    LINEAGE + "SetDegradationThresholds": _ns(E, "thresholds.model"),
    LINEAGE + "GetDegradationThresholds": _ns(V, "model"),
    # promotion: protected stages and aliases move only when approvers approve
    PROMOTION + "CreateTransitionRequest": _ns(E, "parent"),
    PROMOTION + "ApproveTransitionRequest": _ns(A, "name"),
    PROMOTION + "RejectTransitionRequest": _ns(A, "name"),
    PROMOTION + "CancelTransitionRequest": _ns(E, "name"),
    PROMOTION + "GetTransitionRequest": _ns(V, "name"),
    PROMOTION + "ListTransitionRequests": _ns(V, "parent"),
    PROMOTION + "Rollback": _ns(E, "model"),
    PROMOTION + "GetPointers": _ns(V, "model"),
    PROMOTION + "ListPointerHistory": _ns(V, "model"),
    PROMOTION + "SetPromotionPolicy": _ns(ADM, "policy.parent"),
    PROMOTION + "GetPromotionPolicy": _ns(V, "parent"),
    PROMOTION + "ListAccessDenials": _ns(ADM, "parent"),
    PROMOTION + "WatchPromotions": _ns(V, "parent", empty_means_all=True),
    # deployments: a change is a transition request (governed by the policy); a CD system reports as editor
    PROMOTION + "GetDeployment": _ns(V, "model"),
    PROMOTION + "UpdateDeployment": _ns(E, "model"),
    PROMOTION + "ListDeploymentRevisions": _ns(V, "model"),
    PROMOTION + "RollbackDeployment": _ns(E, "model"),
    PROMOTION + "ReportDeployment": _ns(E, "report.model"),
    PROMOTION + "GetDeploymentStatus": _ns(V, "model"),
    # audit: the trail of a namespace, or (empty parent) of every namespace
    AUDIT + "ListAuditEvents": _ns(V, "parent", empty_means_all=True),
    # the public keys and the newest signed checkpoints hold no namespace's data
    AUDIT + "ListAuditKeys": _filtered(),
    AUDIT + "ListCheckpoints": _filtered(),
    AUDIT + "ExportAudit": _ns(V, "parent", empty_means_all=True),
    # webhooks (served by the events relay): they send a namespace's events out, admin only
    WEBHOOKS + "CreateWebhook": _ns(ADM, "parent"),
    WEBHOOKS + "GetWebhook": _ns(ADM, "name"),
    WEBHOOKS + "ListWebhooks": _ns(ADM, "parent"),
    WEBHOOKS + "UpdateWebhook": _ns(ADM, "webhook.name"),
    WEBHOOKS + "DeleteWebhook": _ns(ADM, "name"),
    WEBHOOKS + "TestWebhook": _ns(ADM, "name"),
    WEBHOOKS + "ListWebhookDeliveries": _ns(ADM, "name"),
    WEBHOOKS + "RedeliverWebhook": _ns(ADM, "name"),
    # access (served by catalog): grants are admin only
    ACCESS + "GrantRole": _ns(ADM, "parent"),
    ACCESS + "RevokeRole": _ns(ADM, "parent"),
    ACCESS + "ListGrants": _ns(ADM, "parent"),
}
"""Full gRPC method path -> permission."""


def permission(method: str) -> Permission | None:
    return TABLE.get(method)


def action_of(method: str) -> str:
    """`/pkg.Service/Method` -> `Method`, the action a denial records."""
    return method.rsplit("/", 1)[-1]
