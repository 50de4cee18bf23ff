"""MLflow's client drives versions, stages, aliases, tags, search and downloads through the
gateway, on the real services; what it writes is visible through gRPC and the reverse."""

from __future__ import annotations

import base64
import io
import os
import uuid
from pathlib import Path

import pytest
import requests

from modelreg.artifacts import blob_key
from modelreg.gen.promotion.v1 import promotion_pb2
from modelreg.gen.versioning.v1 import versioning_pb2
from tests.helpers import unique
from tests.integration.gateway.conftest import NAMESPACE, Gateway
from tests.integration.promotion.conftest import auth


def model_dir(root: Path, content: bytes) -> Path:
    """A small MLflow-shaped model directory."""
    path = root / uuid.uuid4().hex
    (path / "data").mkdir(parents=True)
    (path / "MLmodel").write_text("flavors:\n  python_function: {}\n")
    (path / "data" / "model.bin").write_bytes(content)
    return path


async def set_policy(gateway: Gateway, name: str, protected: list[str]) -> None:
    """The model's promotion policy (the default protects PRODUCTION with one approval)."""
    await gateway.fleet.stubs["promotion"].SetPromotionPolicy(
        promotion_pb2.SetPromotionPolicyRequest(
            policy=promotion_pb2.PromotionPolicy(
                parent=f"namespaces/{NAMESPACE}/models/{name}", protected=protected, required_approvals=1
            ),
            request_id=str(uuid.uuid4()),
        ),
        metadata=auth("root"),
    )


async def test_versions_stages_aliases_and_downloads_through_mlflow(gateway: Gateway, tmp_path: Path) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    client = gateway.client()
    name = unique("fraud")
    await gateway.run(client.create_registered_model, name)
    await set_policy(gateway, name, ["deployments/*"])  # stages unprotected: transitions apply at once
    first = model_dir(gateway.sources, b"weights-1" * 1000)
    v1 = await gateway.run(client.create_model_version, name, str(first), run_id="run-1", tags={"owner": ""})
    assert (v1.version, v1.status, v1.source, v1.run_id) == ("1", "READY", str(first), "run-1")
    assert v1.tags["owner"] == "" and v1.tags["modelreg.semver"]
    v2 = await gateway.run(
        client.create_model_version,
        name,
        str(model_dir(gateway.sources, b"weights-2")),
        tags={"modelreg.bump": "major"},
    )
    assert v2.version == "2"
    major = lambda semver: int(semver.split(".")[0])  # noqa: E731
    assert major(v2.tags["modelreg.semver"]) == major(v1.tags["modelreg.semver"]) + 1

    # Stages: Staging, then Production; a second Production archives the first.
    staged = await gateway.run(client.transition_model_version_stage, name, "1", "Staging")
    assert staged.current_stage == "Staging"
    await gateway.run(client.transition_model_version_stage, name, "1", "production")
    moved = await gateway.run(client.transition_model_version_stage, name, "2", "Production", True)
    assert moved.current_stage == "Production"
    assert (await gateway.run(client.get_model_version, name, "1")).current_stage == "Archived"
    latest = await gateway.run(client.get_latest_versions, name, ["Production"])
    assert [v.version for v in latest] == ["2"]
    every = await gateway.run(client.get_latest_versions, name)
    assert {v.current_stage: v.version for v in every} == {"Production": "2", "Archived": "1"}
    native = await gateway.fleet.stubs["promotion"].GetPointers(
        promotion_pb2.GetPointersRequest(model=f"namespaces/{NAMESPACE}/models/{name}"), metadata=auth("root")
    )
    assert native.stages["PRODUCTION"] == 2 and list(native.archived_versions) == [1]

    # Aliases: set through MLflow, read through gRPC; set through gRPC, read through MLflow.
    await gateway.run(client.set_registered_model_alias, name, "champion", "1")
    by_alias = await gateway.fleet.stubs["versioning"].GetModelVersion(
        versioning_pb2.GetModelVersionRequest(name=f"namespaces/{NAMESPACE}/models/{name}@champion"),
        metadata=auth("root"),
    )
    assert by_alias.version == 1
    await gateway.fleet.stubs["promotion"].CreateTransitionRequest(
        promotion_pb2.CreateTransitionRequestRequest(
            parent=f"namespaces/{NAMESPACE}/models/{name}",
            transition_request=promotion_pb2.TransitionRequest(
                moves=[promotion_pb2.PointerMove(pointer="challenger", version=2)]
            ),
            request_id=str(uuid.uuid4()),
        ),
        metadata=auth("alice"),
    )
    challenger = await gateway.run(client.get_model_version_by_alias, name, "challenger")
    assert challenger.version == "2" and challenger.aliases == ["challenger"]
    model = await gateway.run(client.get_registered_model, name)
    assert model.aliases == {"champion": "1", "challenger": "2"}

    # download_artifacts by alias gets the version's bytes, through the gateway's own URL.
    uri = await gateway.run(client.get_model_version_download_uri, name, "1")
    assert uri.startswith(gateway.url + "/mlflow-artifacts/artifacts/")
    out = await gateway.run(
        mlflow.artifacts.download_artifacts,
        artifact_uri=f"models:/{name}@champion",
        dst_path=str(tmp_path / "a"),
    )
    assert (Path(out) / "data" / "model.bin").read_bytes() == b"weights-1" * 1000
    assert (Path(out) / "MLmodel").exists()

    # A corrupted blob fails the download instead of handing over the wrong bytes.
    assert gateway.fleet.blobs is not None
    blobs = gateway.fleet.blobs
    digest = next(f.sha256 for f in by_alias.files if f.path == "data/model.bin")
    bad = b"x" * (9 * 1000)
    await gateway.run(blobs.client.put_object, blobs.bucket, blob_key(digest), io.BytesIO(bad), len(bad))
    with pytest.raises(Exception) as corrupted:
        await gateway.run(
            mlflow.artifacts.download_artifacts,
            artifact_uri=f"models:/{name}@champion",
            dst_path=str(tmp_path / "b"),
        )
    assert (
        "sha256" in str(corrupted.value)
        or "DATA_LOSS" in str(corrupted.value)
        or "500" in str(corrupted.value)
    )

    # Deleting an alias, a tag, a version; numbers are never reused.
    await gateway.run(client.delete_registered_model_alias, name, "champion")
    with pytest.raises(MlflowException) as gone:
        await gateway.run(client.get_model_version_by_alias, name, "champion")
    assert gone.value.error_code == "INVALID_PARAMETER_VALUE"
    await gateway.run(client.set_model_version_tag, name, "2", "reviewed", "yes")
    await gateway.run(client.delete_model_version_tag, name, "1", "owner")
    assert "owner" not in (await gateway.run(client.get_model_version, name, "1")).tags
    assert (await gateway.run(client.get_model_version, name, "2")).tags["reviewed"] == "yes"
    await gateway.run(client.delete_model_version, name, "2")
    with pytest.raises(MlflowException) as deleted:
        await gateway.run(client.get_model_version, name, "2")
    assert deleted.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert deleted.value.message.endswith(f"Model Version (name={name}, version=2) not found")
    v3 = await gateway.run(client.create_model_version, name, str(model_dir(gateway.sources, b"w3")))
    assert v3.version == "3"
    updated = await gateway.run(client.update_model_version, name, "3", "retrained")
    assert updated.description == "retrained"

    # copy_model_version: the same files, in another model, sharing the blobs.
    target = unique("fraud-copy")
    copied = await gateway.run(client.copy_model_version, f"models:/{name}/3", target)
    assert copied.name == target and copied.version == "1" and copied.source == f"models:/{name}/3"
    out = await gateway.run(
        mlflow.artifacts.download_artifacts, artifact_uri=f"models:/{target}/1", dst_path=str(tmp_path / "c")
    )
    assert (Path(out) / "data" / "model.bin").read_bytes() == b"w3"


async def test_register_model_polls_until_ready_and_search_versions(gateway: Gateway) -> None:
    import mlflow

    name = unique("ranker")
    source = model_dir(gateway.sources, b"r")
    registered = await gateway.run(mlflow.register_model, str(source), name)
    assert registered.version == "1" and registered.status == "READY"
    client = gateway.client()
    for i in range(2, 5):
        await gateway.run(
            client.create_model_version, name, str(source), run_id=f"run-{i}", tags={"k": str(i % 2)}
        )
    found = await gateway.run(client.search_model_versions, f"name = '{name}' AND tags.k = '1'")
    assert sorted(v.version for v in found) == ["3"]
    found = await gateway.run(client.search_model_versions, f"name = '{name}' AND tags.k != '1'")
    assert sorted(v.version for v in found) == ["1", "2", "4"]  # version 1 has no tag k
    found = await gateway.run(
        client.search_model_versions, f"run_id IN ('run-2', 'run-4') AND name = '{name}'"
    )
    assert sorted(v.version for v in found) == ["2", "4"]
    found = await gateway.run(
        client.search_model_versions,
        f"name = '{name}' AND version_number >= 3",
        order_by=["version_number ASC"],
    )
    assert [v.version for v in found] == ["3", "4"]
    found = await gateway.run(
        client.search_model_versions, f"source_path LIKE '%{source.name}' AND run_id = 'run-2'"
    )
    assert [(v.name, v.version) for v in found] == [(name, "2")]
    page = await gateway.run(client.search_model_versions, f"name = '{name}'", max_results=3)
    assert len(page) == 3 and page.token
    rest = await gateway.run(
        client.search_model_versions, f"name = '{name}'", max_results=3, page_token=page.token
    )
    assert len(rest) == 1 and not rest.token
    assert {v.version for v in page} | {v.version for v in rest} == {"1", "2", "3", "4"}


async def test_auth_maps_to_principals_and_refusals_are_mlflow_errors(gateway: Gateway) -> None:
    from mlflow.exceptions import MlflowException

    url = f"{gateway.url}/api/2.0/mlflow/registered-models/create"
    basic = base64.b64encode(b"alice:t-alice").decode()
    name = unique("basic")
    answer = await gateway.run(
        requests.post, url, json={"name": name}, headers={"Authorization": f"Basic {basic}"}
    )
    assert answer.status_code == 200 and answer.json()["registered_model"]["user_id"] == "alice"
    wrong = base64.b64encode(b"bob:t-alice").decode()
    refused = await gateway.run(
        requests.post, url, json={"name": unique("b")}, headers={"Authorization": f"Basic {wrong}"}
    )
    assert refused.status_code == 401 and refused.json()["error_code"] == "UNAUTHENTICATED"

    saved = os.environ["MLFLOW_TRACKING_TOKEN"]
    os.environ["MLFLOW_TRACKING_TOKEN"] = "t-victor"  # a viewer
    try:
        with pytest.raises(MlflowException) as denied:
            await gateway.run(gateway.client().create_registered_model, unique("v"))
        assert denied.value.error_code == "PERMISSION_DENIED"
        assert denied.value.get_http_status_code() == 403
    finally:
        os.environ["MLFLOW_TRACKING_TOKEN"] = saved

    # A protected stage: transition-stage creates the request and says it awaits approval.
    client = gateway.client()
    await gateway.run(client.create_model_version, name, str(model_dir(gateway.sources, b"p")))
    await set_policy(gateway, name, ["PRODUCTION"])
    with pytest.raises(MlflowException) as pending:
        await gateway.run(client.transition_model_version_stage, name, "1", "Production")
    assert pending.value.error_code == "PERMISSION_DENIED"
    assert "needs approval" in pending.value.message and "transitionRequests/" in pending.value.message
    assert (await gateway.run(client.get_model_version, name, "1")).current_stage == "None"
