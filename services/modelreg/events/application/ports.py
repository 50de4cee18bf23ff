"""What the webhook use cases need from the outside world."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from modelreg.commands.contracts import Commands
from modelreg.events.domain.webhooks import DeliveryRecord, Event, Webhook


class WebhookStore(Protocol):
    async def get(self, name: str) -> Webhook | None: ...

    async def list(self, namespace: str) -> Sequence[Webhook]: ...

    async def cursor(self, name: str) -> int:
        """-1 when the subscription has no cursor yet (a deleted namesake's does not count)."""

    async def start_cursor(self, name: str) -> int:
        """Creates the cursor, if it has none, past every event already in the outbox: the
        published ones and those folded but not yet published. A deleted namesake's cursor
        is replaced."""

    async def rewind(self, name: str, *, from_position: int | None, from_time: datetime | None) -> int:
        """Moves the cursor to just before the first event at or after the position or time."""

    async def deliveries(self, name: str, *, dead_only: bool, limit: int) -> Sequence[DeliveryRecord]: ...


class SecretSealer(Protocol):
    async def seal(self, secret: str, name: str) -> bytes: ...


class AddressGuard(Protocol):
    async def refusal(self, url: str) -> str | None:
        """None when the URL may be called; else why not (SSRF protection)."""


class WebhookTester(Protocol):
    async def test(self, webhook: Webhook) -> DeliveryRecord: ...


WebhookCommands = Commands[Webhook | None, Event]
