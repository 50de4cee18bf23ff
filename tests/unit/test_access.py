"""Roles and grants (MODELREG_ROLES, MODELREG_ADMINS, groups), the method -> permission
table against the service descriptors, and the enforcement's decisions."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil

import pytest

import modelreg.gen
from modelreg.access import (
    TABLE,
    AccessControl,
    Denial,
    Grant,
    Role,
    Scope,
    may_read,
    namespace_in,
    parse_grants,
)
from modelreg.errors import InvalidArgument, PermissionDenied
from modelreg.gen.catalog.v1 import catalog_pb2
from modelreg.gen.lineage.v1 import lineage_pb2
from modelreg.gen.promotion.v1 import promotion_pb2
from modelreg.gen.versioning.v1 import versioning_pb2


def every_method() -> set[str]:
    """Every gRPC method of every service in the generated protos."""
    methods = set()
    for info in pkgutil.walk_packages(modelreg.gen.__path__, "modelreg.gen."):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(info.name)
        for service in module.DESCRIPTOR.services_by_name.values():
            methods |= {f"/{service.full_name}/{m.name}" for m in service.methods}
    return methods


def test_every_method_of_every_service_has_a_table_entry() -> None:
    methods = every_method()
    assert len(methods) >= 45
    assert sorted(methods - TABLE.keys()) == [], "add these methods to modelreg.access.table.TABLE"
    assert sorted(TABLE.keys() - methods) == [], "the table names methods no proto has"


def test_table_fields_exist_in_the_request_messages() -> None:
    for info in pkgutil.walk_packages(modelreg.gen.__path__, "modelreg.gen."):
        if not info.name.endswith("_pb2"):
            continue
        for service in importlib.import_module(info.name).DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                rule = TABLE[f"/{service.full_name}/{method.name}"]
                for path in rule.fields:
                    message = method.input_type
                    for part in path.split("."):
                        assert part in message.fields_by_name, f"{method.name}: {path}"
                        field = message.fields_by_name[part]
                        message = field.message_type
                    assert field.type == field.TYPE_STRING, f"{method.name}: {path} is not a string"


def test_grants_per_namespace_wildcard_groups_and_admins() -> None:
    grants = parse_grants(
        "alice=approver@ns1, bob=admin@*, carol=viewer@ns1,carol=editor@ns1, group:ml=editor@ns2",
        "root, group:platform",
    )
    assert grants.role("alice", (), "ns1") is Role.APPROVER
    assert grants.role("alice", (), "ns2") is None
    assert grants.role("bob", (), "anything") is Role.ADMIN
    assert grants.role("carol", (), "ns1") is Role.EDITOR  # the highest grant wins
    assert grants.role("dora", ("ml",), "ns2") is Role.EDITOR
    assert grants.role("alice", ("ml",), "ns1") is Role.APPROVER
    assert grants.role("dora", ("ml",), "ns1") is None
    assert grants.role("root", (), "x") is Role.ADMIN and grants.role("eve", ("platform",), "*") is Role.ADMIN
    # Only a `*` grant holds for `*` (store-wide calls).
    assert grants.role("alice", (), "*") is None
    assert Grant("group:ml", "ns2", Role.EDITOR) in grants.all()


@pytest.mark.parametrize(
    "spec", ["alice", "alice=boss@ns", "alice=admin", "alice=admin@NS", "=admin@ns", "a b=admin@ns"]
)
def test_malformed_role_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="MODELREG_ROLES"):
        parse_grants(spec)


def test_rbac_is_off_only_when_neither_variable_is_set() -> None:
    off = AccessControl.from_env({})
    assert not off.enabled and off.role("anyone", (), "ns") is Role.ADMIN and "off" in off.describe()
    assert AccessControl.from_env({"MODELREG_ADMINS": "root"}).enabled
    on = AccessControl.from_env({"MODELREG_ROLES": "alice=viewer@ns"})
    assert on.enabled and on.role("bob", (), "ns") is None


def test_namespace_of_names_node_ids_and_bare_ids() -> None:
    assert namespace_in("namespaces/ns1/models/m") == "ns1"
    assert namespace_in("namespaces/ns1") == "ns1"
    assert namespace_in("model_version:namespaces/ns2/models/m/versions/3") == "ns2"
    assert namespace_in("dataset:s3://b/namespaces/x@sha") is None
    assert namespace_in("namespaces/NS/models/m") is None
    assert namespace_in("ns3", bare=True) == "ns3"
    assert namespace_in("ns3\n", bare=True) is None


ACCESS = AccessControl.from_env(
    {"MODELREG_ROLES": "ed=editor@ns1,ap=approver@ns1,v=viewer@*,group:g=admin@ns2"}
)
CAT = "/modelreg.catalog.v1.CatalogService/"
VER = "/modelreg.versioning.v1.VersioningService/"
LIN = "/modelreg.lineage.v1.LineageService/"
PRO = "/modelreg.promotion.v1.PromotionService/"


def test_a_role_in_the_namespace_of_the_request() -> None:
    delete = catalog_pb2.DeleteRegisteredModelRequest(name="namespaces/ns1/models/m")
    assert ACCESS.check(CAT + "DeleteRegisteredModel", delete, "ed", ()) is None
    denial = ACCESS.check(CAT + "DeleteRegisteredModel", delete, "v", ())
    assert denial is not None and denial.namespace == "ns1" and denial.resource == delete.name
    assert denial.reason == "DeleteRegisteredModel needs the editor role in namespace ns1; v has viewer"
    other = catalog_pb2.DeleteRegisteredModelRequest(name="namespaces/ns2/models/m")
    assert ACCESS.check(CAT + "DeleteRegisteredModel", other, "ed", ()) is not None
    assert ACCESS.check(CAT + "DeleteRegisteredModel", other, "anyone", ("g",)) is None
    update = catalog_pb2.UpdateRegisteredModelRequest(
        registered_model=catalog_pb2.RegisteredModel(name="namespaces/ns1/models/m")
    )
    assert ACCESS.check(CAT + "UpdateRegisteredModel", update, "ed", ()) is None
    assert ACCESS.check(CAT + "UpdateRegisteredModel", update, "nobody", ()) is not None


def test_every_named_namespace_needs_the_role() -> None:
    diff = lineage_pb2.DiffLineageRequest(
        model_version_a="namespaces/ns1/models/m/versions/1",
        model_version_b="namespaces/ns2/models/m/versions/1",
    )
    assert ACCESS.check(LIN + "DiffLineage", diff, "v", ()) is None
    denial = ACCESS.check(LIN + "DiffLineage", diff, "ed", ())
    assert denial is not None and denial.namespace == "ns2"


def test_a_missing_or_malformed_name_is_invalid_before_anything_runs() -> None:
    with pytest.raises(InvalidArgument, match="registered_model.name: is required"):
        ACCESS.check(CAT + "UpdateRegisteredModel", catalog_pb2.UpdateRegisteredModelRequest(), "ed", ())
    with pytest.raises(InvalidArgument, match="name: 'models/m' names no namespace"):
        ACCESS.check(
            CAT + "GetRegisteredModel", catalog_pb2.GetRegisteredModelRequest(name="models/m"), "ed", ()
        )
    assert (
        AccessControl.disabled().check(
            CAT + "GetRegisteredModel", catalog_pb2.GetRegisteredModelRequest(), "x", ()
        )
        is None
    )


def test_store_wide_calls_need_admin_of_every_namespace() -> None:
    assert TABLE[VER + "CollectGarbage"].scope is Scope.STORE
    gc = versioning_pb2.CollectGarbageRequest(dry_run=True)
    assert ACCESS.check(VER + "CollectGarbage", gc, "anyone", ("g",)) is not None  # admin of ns2 only
    root = AccessControl.from_env({"MODELREG_ADMINS": "root"})
    assert root.check(VER + "CollectGarbage", gc, "root", ()) is None


def test_create_namespace_needs_admin_of_that_namespace() -> None:
    create = catalog_pb2.CreateNamespaceRequest(namespace_id="ns2")
    assert ACCESS.check(CAT + "CreateNamespace", create, "x", ("g",)) is None
    assert ACCESS.check(
        CAT + "CreateNamespace", catalog_pb2.CreateNamespaceRequest(namespace_id="ns3"), "x", ("g",)
    )


def test_filtered_reads_pass_and_named_namespaces_still_count() -> None:
    assert ACCESS.check(CAT + "ListNamespaces", catalog_pb2.ListNamespacesRequest(), "nobody", ()) is None
    by_dataset = lineage_pb2.FindDownstreamRequest(node="dataset:s3://d@sha")
    assert ACCESS.check(LIN + "FindDownstream", by_dataset, "nobody", ()) is None
    by_version = lineage_pb2.FindDownstreamRequest(model_version="namespaces/ns1/models/m/versions/1")
    assert ACCESS.check(LIN + "FindDownstream", by_version, "nobody", ()) is not None
    subgraph = lineage_pb2.GetLineageSubgraphRequest(
        query=lineage_pb2.SubgraphQuery(
            start_nodes=["dataset:s3://d@sha", "model_version:namespaces/ns2/models/m/versions/1"]
        )
    )
    assert ACCESS.check(LIN + "GetLineageSubgraph", subgraph, "x", ("g",)) is None
    assert ACCESS.check(LIN + "GetLineageSubgraph", subgraph, "ed", ()) is not None


def test_an_empty_watch_parent_means_every_namespace() -> None:
    watch = promotion_pb2.WatchPromotionsRequest()
    assert ACCESS.check(PRO + "WatchPromotions", watch, "v", ()) is None
    denial = ACCESS.check(PRO + "WatchPromotions", watch, "ed", ())
    assert denial is not None and "every namespace (*)" in denial.reason


def test_an_unknown_method_is_refused() -> None:
    denial = ACCESS.check("/modelreg.x.v1.New/Thing", object(), "v", ())
    assert denial is not None and "not in the permission table" in denial.reason


async def test_denials_of_authenticated_callers_are_recorded_and_anonymous_ones_only_logged() -> None:
    recorded: list[Denial] = []

    async def recorder(denial: Denial) -> None:
        recorded.append(denial)

    access = AccessControl.from_env({"MODELREG_ROLES": "v=viewer@ns1"})
    access.on_denied(recorder)
    delete = catalog_pb2.DeleteRegisteredModelRequest(name="namespaces/ns1/models/m")
    for principal in ("v", "anonymous"):
        with pytest.raises(PermissionDenied, match="needs the editor role in namespace ns1"):
            await access.authorize(CAT + "DeleteRegisteredModel", delete, principal, ())
    assert [(d.principal, d.action, d.resource, d.namespace) for d in recorded] == [
        ("v", "DeleteRegisteredModel", delete.name, "ns1")
    ]


async def test_an_allowed_call_sets_what_the_caller_may_read() -> None:
    access = AccessControl.from_env({"MODELREG_ROLES": "v=viewer@ns1"})
    assert may_read("ns2")  # outside a call, or with RBAC off: everything

    async def call() -> tuple[bool, bool]:
        await access.authorize(CAT + "ListNamespaces", catalog_pb2.ListNamespacesRequest(), "v", ())
        return may_read("ns1"), may_read("ns2")

    assert await asyncio.create_task(call()) == (True, False)
