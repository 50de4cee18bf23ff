"""The webhook tables: subscriptions (a fold of the relay's own topic), and the
dispatcher's operational state, which is not derived from the log: each subscription's
cursor and the delivery log (one row per attempt; dead letters are rows with outcome
`dead` or `failed`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from modelreg.commands.contracts import Loaded
from modelreg.eventlog.fold import EMPTY_HEAD, head_of
from modelreg.events.adapters import webhook_codec
from modelreg.events.domain.webhooks import DeliveryRecord, Published, State, Webhook, evolve
from modelreg.projections.batch import AcceptedEvent
from modelreg.projections.schema import quote_schema


def webhook_tables(schema: str) -> str:
    s = quote_schema(schema)
    return f"""
CREATE TABLE IF NOT EXISTS {s}.webhooks (
    name            text PRIMARY KEY,
    namespace       text NOT NULL,
    url             text NOT NULL,
    event_types     text[] NOT NULL,
    model           text NOT NULL,
    mlflow_headers  boolean NOT NULL,
    state           text NOT NULL,
    disabled_reason text NOT NULL,
    sealed_secrets  bytea[] NOT NULL,
    rotated_at      timestamptz,
    create_time     timestamptz NOT NULL,
    update_time     timestamptz NOT NULL,
    annotations     jsonb NOT NULL DEFAULT '{{}}'
);
ALTER TABLE {s}.webhooks ADD COLUMN IF NOT EXISTS annotations jsonb NOT NULL DEFAULT '{{}}';
CREATE TABLE IF NOT EXISTS {s}.webhook_cursors (
    name     text PRIMARY KEY,
    position bigint NOT NULL,
    skipped  bigint[] NOT NULL DEFAULT '{{}}',
    created  timestamptz
);
ALTER TABLE {s}.webhook_cursors ADD COLUMN IF NOT EXISTS skipped bigint[] NOT NULL DEFAULT '{{}}';
ALTER TABLE {s}.webhook_cursors ADD COLUMN IF NOT EXISTS created timestamptz;
UPDATE {s}.webhook_cursors c SET created = w.create_time FROM {s}.webhooks w
 WHERE c.created IS NULL AND w.name = c.name;
CREATE TABLE IF NOT EXISTS {s}.webhook_deliveries (
    id           bigserial PRIMARY KEY,
    webhook      text NOT NULL,
    event_id     text NOT NULL,
    event_type   text NOT NULL,
    position     bigint NOT NULL,
    attempt      integer NOT NULL,
    status_code  integer NOT NULL,
    latency_ms   double precision NOT NULL,
    error        text NOT NULL,
    outcome      text NOT NULL,
    attempt_time timestamptz NOT NULL DEFAULT now(),
    -- Which subscription of that name made the attempt (its create_time): a webhook deleted
    -- and created again under the same name starts with an empty log. NULL in rows written
    -- before the column existed.
    webhook_created timestamptz
);
ALTER TABLE {s}.webhook_deliveries ADD COLUMN IF NOT EXISTS webhook_created timestamptz;
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_webhook ON {s}.webhook_deliveries (webhook, id DESC);
"""


def published_channel(schema: str) -> str:
    """The NOTIFY channel on which the publisher (and a redelivery) wake the dispatcher."""
    quote_schema(schema)
    return f"modelreg_published_{schema}"


def _row(webhook: Webhook) -> tuple[object, ...]:
    return (
        webhook.name,
        webhook.namespace,
        webhook.url,
        list(webhook.event_types),
        webhook.model,
        webhook.mlflow_headers,
        webhook.state.value,
        webhook.disabled_reason,
        list(webhook.sealed_secrets),
        webhook.rotated_at,
        webhook.create_time,
        webhook.update_time,
        json.dumps(dict(webhook.annotations)),
    )


def webhook_of(row: asyncpg.Record) -> Webhook:
    return Webhook(
        name=row["name"],
        url=row["url"],
        event_types=tuple(row["event_types"]),
        model=row["model"],
        mlflow_headers=row["mlflow_headers"],
        state=State(row["state"]),
        disabled_reason=row["disabled_reason"],
        sealed_secrets=tuple(bytes(b) for b in row["sealed_secrets"]),
        rotated_at=row["rotated_at"],
        create_time=row["create_time"],
        update_time=row["update_time"],
        annotations=tuple(sorted(json.loads(row["annotations"]).items())),
    )


COLUMNS = (
    "name, namespace, url, event_types, model, mlflow_headers, state, disabled_reason,"
    " sealed_secrets, rotated_at, create_time, update_time, annotations"
)


class WebhookProjection:
    """Folds the relay's own topic into `webhooks`."""

    name = "events-webhooks"
    read_model_tables = ("webhooks",)
    stream_scope = ""

    def ddl(self, schema: str) -> str:
        return webhook_tables(schema)

    async def apply(self, conn: asyncpg.Connection, schema: str, events: Sequence[AcceptedEvent]) -> None:
        s = quote_schema(schema)
        for accepted in events:
            event = webhook_codec.decode(accepted.envelope)
            if event is None:
                continue
            stream = accepted.envelope.stream
            row = await conn.fetchrow(f"SELECT {COLUMNS} FROM {s}.webhooks WHERE name = $1", stream)
            state = webhook_of(row) if row else None
            after = evolve(state, event, accepted.envelope.occurred_at.ToDatetime(tzinfo=UTC))
            if after is None:
                await conn.execute(f"DELETE FROM {s}.webhooks WHERE name = $1", stream)
                continue
            await conn.execute(
                f"INSERT INTO {s}.webhooks ({COLUMNS})"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb)"
                " ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, event_types = EXCLUDED.event_types,"
                " model = EXCLUDED.model, mlflow_headers = EXCLUDED.mlflow_headers, state = EXCLUDED.state,"
                " disabled_reason = EXCLUDED.disabled_reason, sealed_secrets = EXCLUDED.sealed_secrets,"
                " rotated_at = EXCLUDED.rotated_at, update_time = EXCLUDED.update_time,"
                " annotations = EXCLUDED.annotations",
                *_row(after),
            )


class PostgresWebhooks:
    """Reads the subscriptions and keeps the dispatcher's cursors and delivery log."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self._pool = pool
        self._s = quote_schema(schema)
        self.channel = published_channel(schema)

    async def load(self, stream: str) -> Loaded[Webhook | None]:
        s = self._s
        row = await self._pool.fetchrow(
            f"SELECT h.revision AS head_revision, h.hash AS head_hash, w.*"
            f" FROM (SELECT $1::text AS stream) AS wanted"
            f" LEFT JOIN {s}.stream_heads h ON h.stream = wanted.stream"
            f" LEFT JOIN {s}.webhooks w ON w.name = wanted.stream",
            stream,
        )
        assert row is not None
        head = (
            head_of(row["head_revision"], row["head_hash"])
            if row["head_revision"] is not None
            else EMPTY_HEAD
        )
        return Loaded(webhook_of(row) if row["name"] else None, head)

    async def get(self, name: str) -> Webhook | None:
        row = await self._pool.fetchrow(f"SELECT {COLUMNS} FROM {self._s}.webhooks WHERE name = $1", name)
        return webhook_of(row) if row else None

    async def list(self, namespace: str) -> Sequence[Webhook]:
        rows = await self._pool.fetch(
            f"SELECT {COLUMNS} FROM {self._s}.webhooks WHERE namespace = $1 ORDER BY name", namespace
        )
        return [webhook_of(r) for r in rows]

    async def active(self) -> Sequence[Webhook]:
        rows = await self._pool.fetch(f"SELECT {COLUMNS} FROM {self._s}.webhooks WHERE state = 'active'")
        return [webhook_of(r) for r in rows]

    async def cursor(self, name: str) -> int:
        """-1 when the subscription has none: never started, or the cursor is a deleted
        subscription's of the same name (`created`, its create_time, differs)."""
        s = self._s
        value = await self._pool.fetchval(
            f"SELECT c.position FROM {s}.webhook_cursors c JOIN {s}.webhooks w"
            " ON w.name = c.name AND w.create_time = c.created WHERE c.name = $1",
            name,
        )
        return int(value) if value is not None else -1

    async def start_cursor(self, name: str) -> int:
        """A new subscription gets the events folded into the outbox from now on.

        The cursor counts in publish positions, but the outbox holds events that are folded and
        not yet published (numbered): those precede the subscription (its creator's consistency
        token may have waited for exactly them), yet will be published after the newest position.
        So the cursor starts at the newest position and remembers those rows (`skipped`, by
        `seq`; the publisher's backlog, usually empty), which the subscription never gets. One
        statement, so one snapshot for both.

        A cursor of the same subscription (a retried create, or the dispatcher's worker) is
        kept; one left by a deleted subscription of the same name is replaced.
        """
        s = self._s
        await self._pool.execute(
            f"INSERT INTO {s}.webhook_cursors (name, position, skipped, created)"
            f" SELECT $1, (SELECT coalesce(max(position), 0) FROM {s}.outbox),"
            f" ARRAY(SELECT seq FROM {s}.outbox WHERE position IS NULL ORDER BY seq),"
            f" (SELECT create_time FROM {s}.webhooks WHERE name = $1)"
            " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, skipped = EXCLUDED.skipped,"
            " created = EXCLUDED.created WHERE webhook_cursors.created IS DISTINCT FROM EXCLUDED.created",
            name,
        )
        return await self.cursor(name)

    async def advance(self, name: str, expected: int, position: int) -> bool:
        """Compare-and-set: False when a redelivery moved the cursor meanwhile. Skipped rows the
        cursor has passed are forgotten."""
        s = self._s
        done = await self._pool.execute(
            f"UPDATE {s}.webhook_cursors c SET position = $3, skipped = CASE WHEN cardinality(skipped) = 0"
            f" THEN skipped ELSE ARRAY(SELECT k FROM unnest(c.skipped) AS k WHERE NOT EXISTS"
            f" (SELECT 1 FROM {s}.outbox o WHERE o.seq = k AND o.position <= $3) ORDER BY k) END"
            " WHERE name = $1 AND position = $2",
            name,
            expected,
            position,
        )
        return str(done).endswith(" 1")

    async def rewind(self, name: str, *, from_position: int | None, from_time: datetime | None) -> int:
        """Moves the cursor to just before the first event at or after the position or time."""
        s = self._s
        if from_time is not None:
            first = await self._pool.fetchval(
                f"SELECT min(position) FROM {s}.outbox WHERE published_at >= $1", from_time
            )
        else:
            first = await self._pool.fetchval(
                f"SELECT min(position) FROM {s}.outbox WHERE position >= $1", max(1, from_position or 1)
            )
        if first is None:
            first = int(await self._pool.fetchval(f"SELECT coalesce(max(position), 0) FROM {s}.outbox")) + 1
        async with self._pool.acquire() as conn, conn.transaction():
            # A redelivery is explicit: from there on, nothing is skipped.
            await conn.execute(
                f"INSERT INTO {s}.webhook_cursors (name, position, created)"
                f" VALUES ($1, $2, (SELECT create_time FROM {s}.webhooks WHERE name = $1))"
                " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, skipped = '{}',"
                " created = EXCLUDED.created",
                name,
                int(first) - 1,
            )
            await conn.execute("SELECT pg_notify($1, $2)", self.channel, name)
        return int(first) - 1

    async def next_events(self, webhook: Webhook, after: int, limit: int = 100) -> Sequence[Published]:
        """Published events past the cursor that the subscription wants, in publish order;
        never the ones its cursor skips (start_cursor)."""
        prefix = webhook.model if webhook.model else f"namespaces/{webhook.namespace}/models/"
        subject_sql = "subject = $2" if webhook.model else "starts_with(subject, $2)"
        types = list(webhook.event_types)
        rows = await self._pool.fetch(
            f"SELECT position, event_id, type, subject, occurred_at, data FROM {self._s}.outbox o"
            f" WHERE position > $1 AND {subject_sql}"
            " AND (cardinality($3::text[]) = 0 OR type = ANY($3::text[]))"
            f" AND NOT EXISTS (SELECT 1 FROM {self._s}.webhook_cursors c"
            "  WHERE c.name = $4 AND o.seq = ANY(c.skipped))"
            f" ORDER BY position LIMIT {int(limit)}",
            after,
            prefix,
            types,
            webhook.name,
        )
        return [
            Published(r["position"], r["event_id"], r["type"], r["subject"], r["occurred_at"], r["data"])
            for r in rows
        ]

    async def record(self, delivery: DeliveryRecord, webhook_created: datetime | None) -> None:
        """Logs an attempt of the subscription created at `webhook_created`."""
        await self._pool.execute(
            f"INSERT INTO {self._s}.webhook_deliveries (webhook, event_id, event_type, position, attempt,"
            " status_code, latency_ms, error, outcome, attempt_time, webhook_created)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            delivery.webhook,
            delivery.event_id,
            delivery.event_type,
            delivery.position,
            delivery.attempt,
            delivery.status_code,
            delivery.latency_ms,
            delivery.error,
            delivery.outcome,
            delivery.attempt_time,
            webhook_created,
        )

    async def deliveries(self, name: str, *, dead_only: bool, limit: int) -> Sequence[DeliveryRecord]:
        """The newest attempts of the subscription now named `name` (not of an earlier one of
        the same name; an attempt logged before the log knew its subscription counts if it
        came after this one's creation)."""
        where = " AND d.outcome IN ('dead', 'failed')" if dead_only else ""
        rows = await self._pool.fetch(
            "SELECT d.webhook, d.event_id, d.event_type, d.position, d.attempt, d.status_code,"
            " d.latency_ms, d.error, d.outcome, d.attempt_time"
            f" FROM {self._s}.webhook_deliveries d JOIN {self._s}.webhooks w ON w.name = d.webhook"
            " WHERE d.webhook = $1 AND (d.webhook_created = w.create_time"
            f" OR (d.webhook_created IS NULL AND d.attempt_time >= w.create_time)){where}"
            f" ORDER BY d.id DESC LIMIT {int(limit)}",
            name,
        )
        return [DeliveryRecord(*r.values()) for r in rows]
