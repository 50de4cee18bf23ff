"""The webhook dispatcher: one worker per active subscription, each with its own cursor
over the relay's published events, so one slow or dead endpoint never delays another.

Each event is POSTed as Standard Webhooks 1.0 (`webhook-id` = the event id, the same on
every retry and redelivery; `webhook-timestamp`; `webhook-signature`), body
`{"type", "timestamp", "data"}`. 429, 5xx, 408 and timeouts are retried with exponential
backoff and jitter (a Retry-After that asks for longer wins), up to the attempt limit,
then the event is a dead letter and the cursor moves on; any other 4xx is not retried;
410 disables the subscription (a command on the relay's topic). Every attempt is logged.

One dispatcher per schema at a time (a session advisory lock, like the publisher).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import structlog

from modelreg.events.adapters.guard import ResolvingGuard
from modelreg.events.adapters.secrets import SecretBox
from modelreg.events.adapters.webhook_store import PostgresWebhooks
from modelreg.events.domain import signing
from modelreg.events.domain.webhooks import (
    TEST_TYPE,
    Attempt,
    DeliveryRecord,
    Outcome,
    Published,
    RetryPolicy,
    State,
    Webhook,
)

log = structlog.get_logger(__name__)

Disable = Callable[[str, str, str], Awaitable[None]]
"""(webhook name, reason, event id) -> records WebhookDisabled."""


def body_of(event_type: str, occurred_at: datetime, data: str) -> bytes:
    timestamp = occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return (
        '{"type":'
        + json.dumps(event_type)
        + ',"timestamp":'
        + json.dumps(timestamp)
        + ',"data":'
        + data
        + "}"
    ).encode()


def retry_after_s(value: str | None, now: float) -> float | None:
    """Retry-After as seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class Sender:
    """Makes one signed request and says how it went."""

    def __init__(self, box: SecretBox, guard: ResolvingGuard, *, timeout_s: float, rotation_s: float) -> None:
        self._box = box
        self._guard = guard
        self._timeout_s = timeout_s
        self._rotation_s = rotation_s
        self._client = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)

    async def close(self) -> None:
        await self._client.aclose()

    def _secrets(self, webhook: Webhook) -> list[str]:
        secrets = [self._box.unseal(s, webhook.name) for s in webhook.sealed_secrets]
        rotating = webhook.rotated_at is not None and datetime.now(UTC) - webhook.rotated_at < timedelta(
            seconds=self._rotation_s
        )
        return secrets if rotating else secrets[:1]

    async def send(self, webhook: Webhook, message_id: str, body: bytes) -> tuple[Attempt, float]:
        refusal = await self._guard.refusal(webhook.url)
        if refusal is not None:
            return Attempt(0, f"refused: {refusal}"), 0.0
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": "modelreg-webhooks/1",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
        }
        secrets = self._secrets(webhook)
        if secrets:
            keys = [signing.key_of(s) for s in secrets]
            headers["webhook-signature"] = signing.signature_header(keys, message_id, timestamp, body)
            if webhook.mlflow_headers:
                headers["X-MLflow-Signature"] = signing.mlflow_signature(
                    secrets[0], message_id, timestamp, body
                )
        if webhook.mlflow_headers:
            headers["X-MLflow-Delivery-Id"] = message_id
            headers["X-MLflow-Timestamp"] = str(timestamp)
        started = time.perf_counter()
        try:
            response = await self._client.post(webhook.url, content=body, headers=headers)
        except httpx.TimeoutException:
            return Attempt(0, f"timed out after {self._timeout_s:g}s"), (time.perf_counter() - started) * 1000
        except httpx.HTTPError as exc:
            return Attempt(0, f"{type(exc).__name__}: {exc}"[:500]), (time.perf_counter() - started) * 1000
        latency_ms = (time.perf_counter() - started) * 1000
        error = "" if response.is_success else f"HTTP {response.status_code}"
        return Attempt(
            response.status_code, error, retry_after_s(response.headers.get("retry-after"), time.time())
        ), latency_ms


class WebhookDispatcher:
    def __init__(
        self,
        dsn: str,
        schema: str,
        store: PostgresWebhooks,
        sender: Sender,
        disable: Disable,
        *,
        policy: RetryPolicy,
        poll_s: float = 1.0,
    ) -> None:
        self._dsn = dsn
        self._schema = schema
        self._store = store
        self._sender = sender
        self._disable = disable
        self._policy = policy
        self._poll_s = poll_s
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._tick = asyncio.Event()

    def _notified(self, *_: object) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    async def run(self) -> None:
        while True:
            try:
                await self._run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("webhook_dispatcher_restarting", error=str(exc), error_type=type(exc).__name__)
                await asyncio.sleep(1.0)
            finally:
                for task in self._workers.values():
                    task.cancel()
                await asyncio.gather(*self._workers.values(), return_exceptions=True)
                self._workers.clear()

    async def _run_once(self) -> None:
        conn = await asyncpg.connect(
            self._dsn, server_settings={"application_name": "modelreg-events-webhooks"}
        )
        try:
            lock = f"modelreg-webhook-dispatcher-{self._schema}"
            while not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", lock):  # noqa: ASYNC110
                await asyncio.sleep(1.0)  # another replica dispatches
            await conn.add_listener(self._store.channel, self._notified)
            log.info("webhook_dispatcher_started")
            while True:
                tick = self._tick
                active = {w.name for w in await self._store.active()}
                for name in list(self._workers):
                    if name not in active or self._workers[name].done():
                        self._workers.pop(name).cancel()
                for name in active - set(self._workers):
                    self._workers[name] = asyncio.create_task(self._worker(name), name=f"webhook {name}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(tick.wait(), self._poll_s)
        finally:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _worker(self, name: str) -> None:
        try:
            while True:
                tick = self._tick
                webhook = await self._store.get(name)
                if webhook is None or webhook.state is not State.ACTIVE:
                    return
                # None yet (or a deleted namesake's): started here if CreateWebhook has not yet.
                cursor = await self._store.cursor(name)
                if cursor < 0 and (cursor := await self._store.start_cursor(name)) < 0:
                    return  # deleted meanwhile
                batch = await self._store.next_events(webhook, cursor)
                if not batch:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(tick.wait(), self._poll_s)
                    continue
                for event in batch:
                    outcome = await self._deliver(webhook, event)
                    if outcome is None:  # disabled, deleted or changed while retrying
                        break
                    if outcome is Outcome.DISABLED:
                        await self._disable(
                            name, f"the endpoint answered 410 Gone to {event.event_id}", event.event_id
                        )
                        return
                    if not await self._store.advance(name, cursor, event.position):
                        break  # a redelivery moved the cursor: start again from there
                    cursor = event.position
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the worker is started again by the next round
            log.warning("webhook_worker_failed", webhook=name, error=str(exc), error_type=type(exc).__name__)

    async def _deliver(self, webhook: Webhook, event: Published) -> Outcome | None:
        body = body_of(event.type, event.occurred_at, event.data)
        attempt_number = 1
        while True:
            attempt, latency_ms = await self._sender.send(webhook, event.event_id, body)
            outcome = self._policy.outcome(attempt_number, attempt)
            if attempt.error.startswith("refused: "):
                outcome = Outcome.FAILED  # an address the guard refuses is not retried
            await self._store.record(
                DeliveryRecord(
                    webhook.name,
                    event.event_id,
                    event.type,
                    event.position,
                    attempt_number,
                    attempt.status_code,
                    round(latency_ms, 3),
                    attempt.error,
                    outcome.value,
                    datetime.now(UTC),
                ),
                webhook.create_time,
            )
            if outcome is not Outcome.RETRYING:
                return outcome
            await asyncio.sleep(self._policy.delay_s(attempt_number, attempt, random.random()))
            attempt_number += 1
            current = await self._store.get(webhook.name)
            # Deleted, disabled or paused, or deleted and created again meanwhile: stop.
            if (
                current is None
                or current.state is not State.ACTIVE
                or current.create_time != webhook.create_time
            ):
                return None
            webhook = current


async def send_test(store: PostgresWebhooks, sender: Sender, webhook: Webhook) -> DeliveryRecord:
    """One `io.modelreg.webhook.test.v1` request now, logged like any attempt (position 0)."""
    message_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    data = json.dumps({"webhook": webhook.name, "model": webhook.model})
    attempt, latency_ms = await sender.send(webhook, message_id, body_of(TEST_TYPE, now, data))
    outcome = Outcome.DELIVERED if 200 <= attempt.status_code < 300 else Outcome.FAILED
    record = DeliveryRecord(
        webhook.name,
        message_id,
        TEST_TYPE,
        0,
        1,
        attempt.status_code,
        round(latency_ms, 3),
        attempt.error,
        outcome.value,
        now,
    )
    await store.record(record, webhook.create_time)
    return record
