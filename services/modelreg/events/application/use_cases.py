"""The webhook use cases: validate, seal the secret, record the command, read back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from modelreg.commands.contracts import CommandResult
from modelreg.errors import InvalidArgument, NotFound
from modelreg.eventlog import ConsistencyToken, EventContext
from modelreg.events.application.ports import (
    AddressGuard,
    SecretSealer,
    WebhookCommands,
    WebhookStore,
    WebhookTester,
)
from modelreg.events.domain import signing
from modelreg.events.domain.webhooks import (
    UPDATABLE,
    Create,
    Delete,
    DeliveryRecord,
    Disable,
    State,
    Update,
    Webhook,
    check_annotations,
    check_model,
    check_types,
    check_url,
    decide,
    parse_webhook_name,
    webhook_name,
)
from modelreg.names import parse_parent

MAX_DELIVERIES = 1000


@dataclass(frozen=True, slots=True)
class Written:
    webhook: Webhook
    cursor: int
    token: ConsistencyToken


@dataclass(frozen=True, slots=True)
class Given:
    """A subscription as a request states it."""

    url: str = ""
    event_types: Sequence[str] = ()
    model: str = ""
    secret: str = ""
    mlflow_headers: bool = False
    state: State = State.ACTIVE
    annotations: Mapping[str, str] = field(default_factory=dict)


class Webhooks:
    def __init__(
        self,
        store: WebhookStore,
        commands: WebhookCommands,
        sealer: SecretSealer,
        guard: AddressGuard,
        tester: WebhookTester,
    ) -> None:
        self._store = store
        self._commands = commands
        self._sealer = sealer
        self._guard = guard
        self._tester = tester

    async def _check_reachable(self, url: str, field_name: str) -> None:
        refusal = await self._guard.refusal(url)
        if refusal is not None:
            raise InvalidArgument.of(field_name, f"is refused: {refusal}")

    async def create(self, parent: str, webhook_id: str, given: Given, context: EventContext) -> Written:
        name = webhook_name(parent, webhook_id)
        namespace = parse_parent(parent)
        url = check_url(given.url)
        webhook = Webhook(
            name=name,
            url=url,
            event_types=check_types(given.event_types),
            model=check_model(given.model, namespace),
            mlflow_headers=given.mlflow_headers,
            annotations=check_annotations(given.annotations),
        )
        if not given.secret:
            raise InvalidArgument.of(
                "webhook.secret", "is required: 'whsec_' and base64 of 24 to 64 random bytes"
            )
        signing.key_of(given.secret)
        if await self._commands.original(name, context) is None:
            await self._check_reachable(url, "webhook.url")
        command = Create(webhook, await self._sealer.seal(given.secret, name))
        result = await self._commands.run(name, context, lambda state: decide(state, command))
        # From now on: the subscription gets the events folded after it was created. The
        # interceptor has waited for the creator's token (the relay folds every internal topic),
        # so whatever the creator had seen is in the outbox, published or not, and skipped.
        await self._store.start_cursor(name)
        return await self._read_back(name, result)

    async def update(self, name: str, given: Given, mask: Sequence[str], context: EventContext) -> Written:
        parse_webhook_name(name, "webhook.name")
        namespace = name.split("/")[1]
        paths = tuple(dict.fromkeys(mask))
        unknown = [p for p in paths if p not in UPDATABLE]
        if not paths or unknown:
            raise InvalidArgument.of(
                "update_mask", f"must name some of {', '.join(UPDATABLE)}; not {unknown}"
            )
        changes = Webhook(
            name=name,
            url=check_url(given.url) if "url" in paths else "",
            event_types=check_types(given.event_types) if "event_types" in paths else (),
            model=check_model(given.model, namespace) if "model" in paths else "",
            mlflow_headers=given.mlflow_headers,
            state=given.state,
            annotations=check_annotations(given.annotations) if "annotations" in paths else (),
        )
        sealed = b""
        if "secret" in paths:
            if not given.secret:
                raise InvalidArgument.of("webhook.secret", "is required when update_mask names it")
            signing.key_of(given.secret)
            sealed = await self._sealer.seal(given.secret, name)
        if "url" in paths and await self._commands.original(name, context) is None:
            await self._check_reachable(changes.url, "webhook.url")
        command = Update(name, changes, paths, sealed)
        result = await self._commands.run(name, context, lambda state: decide(state, command))
        return await self._read_back(name, result)

    async def delete(self, name: str, context: EventContext) -> Written:
        parse_webhook_name(name)
        before = await self.get(name) if await self._commands.original(name, context) is None else None
        cursor = await self.cursor(name)  # read first: a deleted subscription has none
        result = await self._commands.run(name, context, lambda state: decide(state, Delete(name)))
        webhook = before or Webhook(name=name, url="")
        return Written(webhook, cursor, result.token)

    async def disable(self, name: str, reason: str, context: EventContext) -> None:
        """The dispatcher's command when an endpoint answers 410 Gone."""
        await self._commands.run(name, context, lambda state: decide(state, Disable(name, reason)))

    async def get(self, name: str) -> Webhook:
        parse_webhook_name(name)
        webhook = await self._store.get(name)
        if webhook is None:
            raise NotFound(f"{name} not found")
        return webhook

    async def cursor(self, name: str) -> int:
        return max(0, await self._store.cursor(name))

    async def list(self, parent: str) -> Sequence[Webhook]:
        return await self._store.list(parse_parent(parent))

    async def test(self, name: str) -> DeliveryRecord:
        return await self._tester.test(await self.get(name))

    async def deliveries(self, name: str, *, dead_only: bool, page_size: int) -> Sequence[DeliveryRecord]:
        await self.get(name)
        if page_size < 0 or page_size > MAX_DELIVERIES:
            raise InvalidArgument.of("page_size", f"must be 0 to {MAX_DELIVERIES}")
        return await self._store.deliveries(name, dead_only=dead_only, limit=page_size or 100)

    async def redeliver(self, name: str, *, from_position: int | None, from_time: datetime | None) -> int:
        await self.get(name)
        if from_position is None and from_time is None:
            raise InvalidArgument.of("from", "give from_position or from_time")
        if from_position is not None and from_position < 0:
            raise InvalidArgument.of("from_position", "must be 0 or more")
        return await self._store.rewind(name, from_position=from_position, from_time=from_time)

    async def _read_back(self, name: str, result: CommandResult) -> Written:
        webhook = await self.get(name)
        return Written(webhook, await self.cursor(name), result.token)
