"""MLflow's webhook endpoints (mlflow/protos/webhooks.proto, MLflow 3.3+) over the events
relay's WebhookService (modelreg.relay.v1).

A subscription is the relay's, in the gateway's namespace, with MLflow's headers on
(X-MLflow-Signature, X-MLflow-Delivery-Id, X-MLflow-Timestamp). MLflow's name, description and
event list are kept in the subscription's annotations, so the gateway holds nothing itself.
MLflow's events become the registry's public types (EVENT_TYPES); the events the registry has no
counterpart for (prompts, budget policies) are refused.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import Any

from modelreg.client import errors as sdk
from modelreg.client.webhooks import WebhooksClient, new_secret
from modelreg.gateway.backend import Backend
from modelreg.gateway.mlflow.errors import MlflowError, invalid, not_found
from modelreg.gateway.mlflow.wire import millis
from modelreg.gen.relay.v1 import webhooks_pb2 as pb

EVENT_TYPES: dict[str, str] = {
    "registered_model.created": "model.created",
    "model_version.created": "version.created",
    "model_version_tag.set": "version.updated",
    "model_version_tag.deleted": "version.updated",
    "model_version_alias.created": "alias.moved",
    "model_version_alias.deleted": "alias.moved",
}
"""MLflow's webhook event (entity.action) -> the registry's public event type it is sent as."""

ENTITIES = (
    "ENTITY_UNSPECIFIED",
    "REGISTERED_MODEL",
    "MODEL_VERSION",
    "MODEL_VERSION_TAG",
    "MODEL_VERSION_ALIAS",
    "PROMPT",
    "PROMPT_VERSION",
    "PROMPT_TAG",
    "PROMPT_VERSION_TAG",
    "PROMPT_ALIAS",
    "BUDGET_POLICY",
)
ACTIONS = ("ACTION_UNSPECIFIED", "CREATED", "UPDATED", "DELETED", "SET", "EXCEEDED")
"""MLflow's WebhookEntity and WebhookAction enums, by number (a JSON body may use either)."""

NAME_KEY = "mlflow.name"
DESCRIPTION_KEY = "mlflow.description"
EVENTS_KEY = "mlflow.events"
NAME = re.compile(r"(?=.{1,63}$)[a-z0-9]([a-z0-9._-]*[a-z0-9])?", re.IGNORECASE)
MAX_RESULTS_DEFAULT = 100
MAX_RESULTS_LIMIT = 1000


def _enum(value: Any, names: tuple[str, ...], what: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < len(names):
        return names[value]
    if isinstance(value, str) and value.upper() in names[1:]:
        return value.upper()
    raise invalid(f"Invalid webhook event {what} {value!r}")


def events_of(raw: Any) -> list[str]:
    """MLflow's `events` ([{entity, action}]) as `entity.action` strings, checked."""
    if not isinstance(raw, list) or not raw:
        raise invalid(f"Webhook events must be a non-empty list of WebhookEvent objects: {raw}.")
    out: list[str] = []
    for item in raw:
        if not isinstance(item, dict):
            raise invalid(f"Invalid webhook event {item!r}: it must be an object with entity and action")
        event = (
            f"{_enum(item.get('entity'), ENTITIES, 'entity').lower()}."
            f"{_enum(item.get('action'), ACTIONS, 'action').lower()}"
        )
        if event not in EVENT_TYPES:
            raise invalid(
                f"Webhook event '{event}' is not supported by this registry; supported: "
                + ", ".join(EVENT_TYPES)
            )
        if event not in out:
            out.append(event)
    return out


def _event_json(event: str) -> dict[str, str]:
    entity, _, action = event.partition(".")
    return {"entity": entity.upper(), "action": action.upper()}


def _string(args: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = args.get(key)
    if value is None or (required and value == ""):
        if required:
            raise invalid(
                f"Missing value for required parameter '{key}'. "
                "See the API docs for more information about request parameters."
            )
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid value {value!r} for parameter '{key}' supplied.")
    return value


def _check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise invalid(
            f"Webhook name {name!r} is invalid. It must start and end with a letter or digit, "
            "be less than 63 characters long, and contain only letters, digits, dots (.), "
            "underscores (_), and hyphens (-)."
        )
    return name


def _status(args: dict[str, Any]) -> bool | None:
    """MLflow's `status` (ACTIVE or DISABLED; 0 or 1) as `active`, None when not given."""
    raw = args.get("status")
    if raw is None or raw == "":
        return None
    if raw in ("ACTIVE", 0):
        return True
    if raw in ("DISABLED", 1):
        return False
    raise invalid(f"Invalid webhook status {raw!r}: ACTIVE or DISABLED")


def webhook_json(webhook: pb.Webhook) -> dict[str, Any]:
    """MLflow's Webhook message (the secret is write-only, never returned)."""
    annotations = webhook.annotations
    events = [e for e in annotations.get(EVENTS_KEY, "").split(",") if e]
    answer: dict[str, Any] = {
        "webhook_id": webhook.name.rsplit("/", 1)[1],
        "name": annotations.get(NAME_KEY) or webhook.name.rsplit("/", 1)[1],
        "url": webhook.url,
        "events": [_event_json(e) for e in events],
        "status": "DISABLED" if webhook.state == pb.Webhook.STATE_DISABLED else "ACTIVE",
        "creation_timestamp": millis(webhook.create_time),
        "last_updated_timestamp": millis(webhook.update_time),
    }
    if annotations.get(DESCRIPTION_KEY):
        answer["description"] = annotations[DESCRIPTION_KEY]
    return answer


def _annotations(name: str, description: str, events: list[str]) -> dict[str, str]:
    out = {NAME_KEY: name, EVENTS_KEY: ",".join(events)}
    if description:
        out[DESCRIPTION_KEY] = description
    return out


def _types(events: list[str]) -> list[str]:
    return list(dict.fromkeys(EVENT_TYPES[e] for e in events))


def _page_token(raw: Any) -> str:
    if raw in (None, ""):
        return ""
    try:
        return base64.urlsafe_b64decode(str(raw).encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid(f"Invalid page token {raw!r}") from None


def _max_results(raw: Any) -> int:
    if raw in (None, "", 0, "0"):
        return MAX_RESULTS_DEFAULT
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise invalid(f"Invalid value {raw!r} for parameter 'max_results' supplied.") from None
    if not 1 <= value <= MAX_RESULTS_LIMIT:
        raise invalid(f"max_results must be between 1 and {MAX_RESULTS_LIMIT}.")
    return value


class MlflowWebhooks:
    """What each MLflow webhook call does against the relay's WebhookService."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._client = WebhooksClient(backend.connection)

    def _name(self, webhook_id: str) -> str:
        return f"namespaces/{self.backend.namespace}/webhooks/{webhook_id}"

    async def _get(self, webhook_id: str) -> pb.Webhook:
        try:
            return await self._client.get(self._name(webhook_id))
        except (sdk.NotFound, sdk.InvalidArgument):
            raise not_found(f"Webhook with ID {webhook_id} not found.") from None

    @staticmethod
    def _refusal(error: sdk.InvalidArgument) -> MlflowError:
        """The relay's INVALID_ARGUMENT on a field, in MLflow's words."""
        message = error.message
        if "webhook.url" in message:
            return invalid(f"Invalid webhook URL: {message}")
        if "webhook.secret" in message:
            # The relay signs with Standard Webhooks secrets, and X-MLflow-Signature is keyed by
            # that secret's text: an MLflow receiver verifies with exactly the string given.
            return invalid(
                f"Invalid webhook secret: {message}. This registry signs with Standard Webhooks "
                "secrets: 'whsec_' and the base64 of 24 to 64 random bytes "
                "(e.g. 'whsec_' + base64.b64encode(os.urandom(32)).decode())"
            )
        return invalid(message)

    async def create(self, args: dict[str, Any]) -> dict[str, Any]:
        name = _check_name(_string(args, "name", required=True) or "")
        url = _string(args, "url", required=True) or ""
        events = events_of(args.get("events"))
        description = _string(args, "description") or ""
        given_secret = _string(args, "secret")
        # MLflow's secret is optional; the relay always signs, so one is made (and not shown).
        secret = given_secret or new_secret()
        active = _status(args)
        webhook_id = uuid.uuid4().hex
        try:
            created = await self._client.create(
                f"{self.backend.namespace}/{webhook_id}",
                url,
                secret=secret,
                event_types=_types(events),
                mlflow_headers=True,
                annotations=_annotations(name, description, events),
            )
            if active is False:
                created = await self._client.update(created.name, active=False)
        except sdk.InvalidArgument as error:
            raise self._refusal(error) from None
        return {"webhook": webhook_json(created)}

    async def list(self, args: dict[str, Any]) -> dict[str, Any]:
        limit = _max_results(args.get("max_results"))
        after = _page_token(args.get("page_token"))
        hooks = await self._client.list_webhooks(self.backend.namespace)
        rest = [w for w in hooks if w.name > after] if after else list(hooks)
        page = rest[:limit]
        answer: dict[str, Any] = {"webhooks": [webhook_json(w) for w in page]}
        if len(rest) > limit:
            answer["next_page_token"] = base64.urlsafe_b64encode(page[-1].name.encode()).decode()
        return answer

    async def get(self, webhook_id: str) -> dict[str, Any]:
        return {"webhook": webhook_json(await self._get(webhook_id))}

    async def update(self, webhook_id: str, args: dict[str, Any]) -> dict[str, Any]:
        current = await self._get(webhook_id)
        annotations = dict(current.annotations)
        name = _string(args, "name")
        description = _string(args, "description")
        url = _string(args, "url")
        given_secret = _string(args, "secret")
        raw_events = args.get("events")
        events = events_of(raw_events) if raw_events else None
        if name:
            annotations[NAME_KEY] = _check_name(name)
        if description is not None:
            annotations[DESCRIPTION_KEY] = description
            if not description:
                del annotations[DESCRIPTION_KEY]
        if events is not None:
            annotations[EVENTS_KEY] = ",".join(events)
        try:
            updated = await self._client.update(
                current.name,
                url=url or None,
                secret=given_secret or None,
                event_types=_types(events) if events is not None else None,
                active=_status(args),
                annotations=annotations,
            )
        except sdk.NotFound:
            raise not_found(f"Webhook with ID {webhook_id} not found.") from None
        except sdk.InvalidArgument as error:
            raise self._refusal(error) from None
        return {"webhook": webhook_json(updated)}

    async def delete(self, webhook_id: str) -> dict[str, Any]:
        try:
            await self._client.delete(self._name(webhook_id))
        except (sdk.NotFound, sdk.InvalidArgument):
            raise not_found(f"Webhook with ID {webhook_id} not found.") from None
        return {}

    async def test(self, webhook_id: str, args: dict[str, Any]) -> dict[str, Any]:
        """One test request now (the relay's `io.modelreg.webhook.test.v1`, signed as every
        delivery is); MLflow's WebhookTestResult. An `event` must be one the registry knows."""
        current = await self._get(webhook_id)
        if args.get("event"):
            events_of([args["event"]])
        delivery = await self._client.test(current.name)
        result: dict[str, Any] = {"success": delivery.outcome == "delivered"}
        if delivery.status_code:
            result["response_status"] = delivery.status_code
        if delivery.error:
            result["error_message"] = delivery.error
        return {"result": result}
