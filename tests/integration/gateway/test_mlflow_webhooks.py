"""MLflow's webhook endpoints through the gateway, driven by MLflow's own client, over the
events relay's subscriptions: a real fleet, the events service and a local HTTP receiver."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import requests

from modelreg.devstack import LocalStack
from modelreg.gen.relay.v1 import webhooks_pb2, webhooks_pb2_grpc
from modelreg.runtime.settings import Settings
from tests.fleet import running_fleet
from tests.helpers import environment, serving, unique
from tests.integration.events.conftest import WEBHOOKS
from tests.integration.events.receiver import Receiver, receiving
from tests.integration.gateway.conftest import MLFLOW_ENV, NAMESPACE, Gateway, serving_gateway
from tests.integration.promotion.conftest import ROLES, TOKENS, auth

ROOT = {"Authorization": "Bearer t-root"}


def secret() -> str:
    from modelreg.client.webhooks import new_secret

    return new_secret()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


@pytest.fixture(scope="module")
async def hooks_gateway(
    local_stack: LocalStack, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    """The fleet, the events relay over the fleet's topics, and the gateway; MLflow's client
    as root, the namespace's admin (webhooks are an admin's)."""
    from modelreg.events.main import spec as events_spec

    sources = tmp_path_factory.mktemp("mlflow-sources").resolve()
    with environment({**MLFLOW_ENV, "MLFLOW_TRACKING_TOKEN": "t-root"}):
        async with running_fleet(local_stack, settings) as fleet:
            with environment({"MODELREG_AUTH_TOKENS": TOKENS, "MODELREG_ROLES": ROLES, **WEBHOOKS}):
                spec = events_spec(f"gw_events_{uuid.uuid4().hex[:8]}")
                async with serving(spec, fleet.settings) as events:
                    async with serving_gateway(fleet, sources, events) as gateway:
                        yield gateway


async def _native(gateway: Gateway, webhook_id: str) -> webhooks_pb2.Webhook:
    """The relay's own view of the subscription, over gRPC."""
    import grpc

    async with grpc.aio.insecure_channel(gateway.settings.endpoints.events) as channel:
        stub = webhooks_pb2_grpc.WebhookServiceStub(channel)
        name = f"namespaces/{NAMESPACE}/webhooks/{webhook_id}"
        webhook: webhooks_pb2.Webhook = await stub.GetWebhook(
            webhooks_pb2.GetWebhookRequest(name=name), metadata=auth("root")
        )
        return webhook


async def test_create_get_list_update_delete_with_mlflows_client(
    hooks_gateway: Gateway, receiver: Receiver
) -> None:
    from mlflow.entities.webhook import WebhookEvent, WebhookStatus
    from mlflow.exceptions import MlflowException

    gateway = hooks_gateway
    client = gateway.client()
    name = unique("deploy-hook")
    created = await gateway.run(
        client.create_webhook,
        name=name,
        url=receiver.url("/lifecycle"),
        events=["model_version.created", "registered_model.created"],
        description="tell CI",
        secret=secret(),
    )
    assert created.name == name and created.description == "tell CI"
    assert created.url == receiver.url("/lifecycle") and created.status == WebhookStatus.ACTIVE
    assert [str(e) for e in created.events] == ["model_version.created", "registered_model.created"]
    assert created.creation_timestamp > 0 and created.secret is None

    # The relay's subscription: MLflow's headers on, MLflow's events as public types.
    native = await _native(gateway, created.webhook_id)
    assert native.mlflow_headers and native.has_secret
    assert list(native.event_types) == ["io.modelreg.version.created.v1", "io.modelreg.model.created.v1"]

    got = await gateway.run(client.get_webhook, created.webhook_id)
    assert (got.webhook_id, got.name, got.url) == (created.webhook_id, name, created.url)

    other = await gateway.run(
        client.create_webhook,
        name=unique("other"),
        url=receiver.url("/other"),
        events=["model_version_tag.set"],
    )
    seen: list[str] = []
    token = None
    for _ in range(10):
        page = await gateway.run(client.list_webhooks, max_results=1, page_token=token)
        assert len(page) <= 1
        seen.extend(w.webhook_id for w in page)
        token = page.token
        if not token:
            break
    assert {created.webhook_id, other.webhook_id} <= set(seen) and len(seen) == len(set(seen))

    updated = await gateway.run(
        client.update_webhook,
        created.webhook_id,
        name=f"{name}-2",
        description="",
        events=["model_version_alias.created"],
        status="DISABLED",
    )
    assert updated.name == f"{name}-2" and updated.description is None
    assert updated.status == WebhookStatus.DISABLED
    assert updated.events == [WebhookEvent("model_version_alias", "created")]
    assert updated.url == created.url and updated.last_updated_timestamp >= created.last_updated_timestamp
    again = await gateway.run(client.get_webhook, created.webhook_id)
    assert again.name == f"{name}-2" and again.status == WebhookStatus.DISABLED
    native = await _native(gateway, created.webhook_id)
    assert native.state == webhooks_pb2.Webhook.STATE_DISABLED
    assert list(native.event_types) == ["io.modelreg.alias.moved.v1"]

    await gateway.run(client.delete_webhook, created.webhook_id)
    await gateway.run(client.delete_webhook, other.webhook_id)
    with pytest.raises(MlflowException) as gone:
        await gateway.run(client.get_webhook, created.webhook_id)
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert gone.value.message.endswith(f"Webhook with ID {created.webhook_id} not found.")


async def test_a_delivery_verifies_with_mlflows_signature_algorithm(
    hooks_gateway: Gateway, receiver: Receiver
) -> None:
    from mlflow.webhooks.delivery import _generate_hmac_signature

    gateway = hooks_gateway
    client = gateway.client()
    key = secret()
    hook = await gateway.run(
        client.create_webhook,
        name=unique("signed"),
        url=receiver.url("/signed"),
        events=["registered_model.created"],
        secret=key,
    )
    model = unique("Churn Model")
    await gateway.run(client.create_registered_model, model)

    def delivered() -> list[Any]:
        return [
            r
            for r in receiver.at("/signed")
            if json.loads(r.body).get("type") == "io.modelreg.model.created.v1"
        ]

    await receiver.wait_for(lambda: bool(delivered()), 60.0, "the model.created delivery")
    request = delivered()[0]
    headers = request.headers
    assert headers["x-mlflow-signature"] == _generate_hmac_signature(
        key, headers["x-mlflow-delivery-id"], headers["x-mlflow-timestamp"], request.body.decode()
    )
    assert headers["x-mlflow-signature"] != _generate_hmac_signature(
        secret(), headers["x-mlflow-delivery-id"], headers["x-mlflow-timestamp"], request.body.decode()
    )
    assert json.loads(request.body)["data"]["actor"] == "root"

    result = await gateway.run(client.test_webhook, hook.webhook_id)
    assert result.success and result.response_status == 200 and result.error_message is None
    tests = [
        r for r in receiver.at("/signed") if json.loads(r.body).get("type") == "io.modelreg.webhook.test.v1"
    ]
    assert len(tests) == 1
    test = tests[0]
    assert test.headers["x-mlflow-signature"] == _generate_hmac_signature(
        key, test.headers["x-mlflow-delivery-id"], test.headers["x-mlflow-timestamp"], test.body.decode()
    )
    await gateway.run(client.delete_webhook, hook.webhook_id)


async def test_errors_in_mlflows_codes(hooks_gateway: Gateway, receiver: Receiver) -> None:
    from mlflow.exceptions import MlflowException

    gateway = hooks_gateway
    client = gateway.client()
    for method, args in (
        (client.get_webhook, ()),
        (client.delete_webhook, ()),
        (client.test_webhook, ()),
    ):
        with pytest.raises(MlflowException) as missing:
            await gateway.run(method, "0123abcd", *args)
        assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
        assert missing.value.message.endswith("Webhook with ID 0123abcd not found.")
    with pytest.raises(MlflowException) as missing_update:
        await gateway.run(client.update_webhook, "0123abcd", name="x")
    assert missing_update.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    base = f"{gateway.url}/api/2.0/mlflow/webhooks"
    good_events = [{"entity": "MODEL_VERSION", "action": "CREATED"}]
    refused: list[tuple[dict[str, Any], str]] = [
        ({"name": "a", "url": "ftp://example.com/x", "events": good_events}, "webhook URL"),
        ({"name": "a", "url": "not a url", "events": good_events}, "webhook URL"),
        # Private addresses are refused unless MODELREG_WEBHOOK_ALLOW_HOSTS names them.
        ({"name": "a", "url": "http://10.1.2.3/hook", "events": good_events}, "webhook URL"),
        ({"name": "a", "url": receiver.url("/x"), "events": []}, "events"),
        (
            {"name": "a", "url": receiver.url("/x"), "events": [{"entity": "PROMPT", "action": "CREATED"}]},
            "not supported",
        ),
        ({"name": "bad name!", "url": receiver.url("/x"), "events": good_events}, "Webhook name"),
        ({"name": "a", "url": receiver.url("/x"), "events": good_events, "secret": "hunter2"}, "secret"),
        ({"url": receiver.url("/x"), "events": good_events}, "'name'"),
    ]
    for body, words in refused:
        answer = await gateway.run(requests.post, base, json=body, headers=ROOT)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE" and words in answer.json()["message"]

    with pytest.raises(MlflowException) as bad_url:
        await gateway.run(
            client.create_webhook, name="a", url="ftp://example.com/x", events=["model_version.created"]
        )
    assert bad_url.value.error_code == "INVALID_PARAMETER_VALUE"

    page = await gateway.run(requests.get, base, params={"max_results": 0 - 1}, headers=ROOT)
    assert page.status_code == 400 and page.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    # Webhooks are the namespace admin's: alice, an editor, is refused.
    denied = await gateway.run(
        requests.post,
        base,
        json={"name": "a", "url": receiver.url("/x"), "events": good_events},
        headers={"Authorization": "Bearer t-alice"},
    )
    assert denied.status_code == 403 and denied.json()["error_code"] == "PERMISSION_DENIED"


async def test_the_ajax_prefix_serves_the_same_webhooks(hooks_gateway: Gateway, receiver: Receiver) -> None:
    gateway = hooks_gateway
    created = await gateway.run(
        requests.post,
        f"{gateway.url}/ajax-api/2.0/mlflow/webhooks",
        json={
            "name": "ajax-hook",
            "url": receiver.url("/ajax"),
            "events": [{"entity": "MODEL_VERSION_TAG", "action": "SET"}],
            "status": "ACTIVE",
        },
        headers=ROOT,
    )
    assert created.status_code == 200, created.text
    webhook = created.json()["webhook"]
    assert "secret" not in webhook and webhook["status"] == "ACTIVE"
    assert isinstance(webhook["creation_timestamp"], int)
    got = await gateway.run(
        requests.get, f"{gateway.url}/api/2.0/mlflow/webhooks/{webhook['webhook_id']}", headers=ROOT
    )
    assert got.status_code == 200 and got.json()["webhook"] == webhook
    deleted = await gateway.run(
        requests.delete, f"{gateway.url}/ajax-api/2.0/mlflow/webhooks/{webhook['webhook_id']}", headers=ROOT
    )
    assert deleted.status_code == 200 and deleted.json() == {}
