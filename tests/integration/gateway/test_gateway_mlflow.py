"""MLflow's own client against the gateway, over HTTP, on the real services."""

from __future__ import annotations

import pytest
import requests

from modelreg.gen.catalog.v1 import catalog_pb2
from tests.helpers import unique
from tests.integration.gateway.conftest import NAMESPACE, Gateway
from tests.integration.promotion.conftest import auth

ALICE = {"Authorization": "Bearer t-alice"}


async def test_a_model_created_through_mlflow_is_in_the_catalog_with_alice_as_its_actor(
    gateway: Gateway,
) -> None:
    from mlflow.exceptions import MlflowException

    client = gateway.client()
    name = unique("churn")
    created = await gateway.run(
        client.create_registered_model, name, tags={"team": "growth"}, description="d"
    )
    assert created.name == name and created.tags == {"team": "growth"} and created.description == "d"

    got = await gateway.run(client.get_registered_model, name)
    assert got.name == name and got.creation_timestamp > 0

    native = await gateway.fleet.stubs["catalog"].GetRegisteredModel(
        catalog_pb2.GetRegisteredModelRequest(name=f"namespaces/{NAMESPACE}/models/{name}"),
        metadata=auth("root"),
    )
    assert native.created_by == "alice" and native.tags["team"] == "growth"

    with pytest.raises(MlflowException) as missing:
        await gateway.run(client.get_registered_model, unique("absent"))
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "not found" in missing.value.message

    with pytest.raises(MlflowException) as taken:
        await gateway.run(client.create_registered_model, name)
    assert taken.value.error_code == "RESOURCE_ALREADY_EXISTS"


async def test_both_prefixes_answer_and_errors_are_mlflow_json(gateway: Gateway) -> None:
    anonymous = await gateway.run(
        requests.get, f"{gateway.url}/api/2.0/mlflow/registered-models/get", params={"name": "nope"}
    )
    assert anonymous.status_code == 401 and anonymous.json()["error_code"] == "UNAUTHENTICATED"
    answer = await gateway.run(
        requests.get,
        f"{gateway.url}/ajax-api/2.0/mlflow/registered-models/get",
        params={"name": "nope"},
        headers=ALICE,
    )
    assert answer.status_code == 404
    assert answer.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "Registered Model with name=nope not found",
    }
    missing = await gateway.run(
        requests.post, f"{gateway.url}/api/2.0/mlflow/registered-models/create", json={}, headers=ALICE
    )
    assert missing.status_code == 400 and missing.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    docs = await gateway.run(requests.get, f"{gateway.url}/openapi.json")
    assert "/api/2.0/mlflow/registered-models/create" in docs.json()["paths"]


async def test_free_form_names_are_display_names_renamable_and_reusable_after_delete(
    gateway: Gateway,
) -> None:
    from mlflow.exceptions import MlflowException

    client = gateway.client()
    name = f"Churn Model {unique('x')}"  # spaces and capitals: not a resource id
    await gateway.run(client.create_registered_model, name, description="first")
    native = await gateway.fleet.stubs["catalog"].ListRegisteredModels(
        catalog_pb2.ListRegisteredModelsRequest(
            parent=f"namespaces/{NAMESPACE}", filter=f'display_name = "{name}"'
        ),
        metadata=auth("root"),
    )
    [model] = native.registered_models
    assert model.display_name == name and model.name.startswith(f"namespaces/{NAMESPACE}/models/churn-model-")

    other = f"Other {unique('y')}"
    await gateway.run(client.create_registered_model, other)
    with pytest.raises(MlflowException) as taken:
        await gateway.run(client.rename_registered_model, name, other)
    assert taken.value.error_code == "RESOURCE_ALREADY_EXISTS"

    renamed = f"Renamed {unique('z')}"
    await gateway.run(client.rename_registered_model, name, renamed)
    assert (await gateway.run(client.get_registered_model, renamed)).description == "first"
    with pytest.raises(MlflowException) as old:
        await gateway.run(client.get_registered_model, name)
    assert old.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert old.value.message.endswith(f"Registered Model with name={name} not found")
    # The old name is free again, and a deleted model's name can be registered anew (under a new id).
    again = await gateway.run(client.create_registered_model, name)
    assert again.name == name
    await gateway.run(client.delete_registered_model, renamed)
    fresh = await gateway.run(client.create_registered_model, renamed, description="second")
    assert fresh.description == "second"
    assert (await gateway.run(client.get_registered_model, renamed)).description == "second"
    assert name in [m.name for m in await gateway.run(client.search_registered_models, f"name = '{name}'")]
