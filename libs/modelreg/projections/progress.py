"""How far a schema's projectors have got, pushed by LISTEN/NOTIFY.

One LISTEN connection per process. Waiters are keyed by (topic, partition) and
the offset they need; a notification wakes exactly the ones it satisfies. No
polling: after a timeout the checkpoint table is read once, which covers
notifications missed while the connection was being re-established.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Mapping

import asyncpg
import structlog

from modelreg.projections.schema import progress_channel, quote_schema

log = structlog.get_logger(__name__)

TopicPartition = tuple[str, int]


class ProgressListener:
    def __init__(self, dsn: str, schema: str, consumed_topics: set[str]) -> None:
        self._dsn = dsn
        self._schema = schema
        self._channel = progress_channel(schema)
        self.consumed_topics = consumed_topics
        self._positions: dict[TopicPartition, int] = {}
        self._waiters: defaultdict[TopicPartition, list[tuple[int, asyncio.Future[None]]]] = defaultdict(list)
        self._conn: asyncpg.Connection | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._refreshing: asyncio.Future[None] | None = None
        self._query_lock = asyncio.Lock()
        self._closed = False

    async def start(self) -> None:
        await self._connect()

    async def stop(self) -> None:
        self._closed = True
        if self._reconnect_task:
            self._reconnect_task.cancel()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        for waiters in self._waiters.values():
            for _, future in waiters:
                future.cancel()

    def position(self, topic: str, partition: int) -> int:
        return self._positions.get((topic, partition), 0)

    async def wait_for(self, required: Mapping[TopicPartition, int], timeout: float) -> bool:
        """True once every consumed (topic, partition) is projected up to its offset.

        Positions on topics this service does not fold are ignored: a token carries the writes of
        every service the client used, and only the ones this service reads matter here. A
        partition nobody projects (a made-up one) is simply never reached: False at the timeout.
        """
        relevant = {tp: o for tp, o in required.items() if tp[0] in self.consumed_topics}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for tp, offset in relevant.items():
            if self._positions.get(tp, 0) >= offset:
                continue
            future: asyncio.Future[None] = loop.create_future()
            self._waiters[tp].append((offset, future))
            try:
                await asyncio.wait_for(future, max(0.0, deadline - loop.time()))
            except TimeoutError:
                await self._refresh_once()
                if self._positions.get(tp, 0) < offset:
                    return False
            finally:
                self._forget(tp, offset, future)
        return True

    def _forget(self, tp: TopicPartition, offset: int, future: asyncio.Future[None]) -> None:
        # Dropped with its last waiter: a token naming invented partitions leaves nothing behind.
        waiters = self._waiters.get(tp)
        if waiters is None:
            return
        with contextlib.suppress(ValueError):
            waiters.remove((offset, future))
        if not waiters:
            del self._waiters[tp]

    async def _refresh_once(self) -> None:
        """One checkpoint read for all the waiters that time out together (the LISTEN connection
        runs one query at a time); a failed read leaves the positions as the notifications set them."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._refresh())
        try:
            await asyncio.shield(self._refreshing)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("progress_refresh_failed", schema=self._schema, error=repr(error))

    def advance(self, topic: str, partition: int, next_offset: int) -> None:
        """This process has itself committed the partition's fold up to `next_offset`.

        Only ever forward: the NOTIFY of that commit, or of an earlier one, may still
        be on its way, and a lower figure here would read as a reset.
        """
        if next_offset > self._positions.get((topic, partition), 0):
            self._advance((topic, partition), next_offset)

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self._dsn)
        await conn.add_listener(self._channel, self._on_notify)
        conn.add_termination_listener(self._on_terminated)
        self._conn = conn
        # Listening before reading means no notification can fall in between.
        await self._refresh()

    async def _refresh(self) -> None:
        if self._conn is None or self._conn.is_closed():
            return
        async with self._query_lock:  # the connection's listener may be reading at start-up
            rows = await self._conn.fetch(
                f"SELECT topic, partition, next_offset FROM {quote_schema(self._schema)}.checkpoints"
            )
        for row in rows:
            self._advance((row["topic"], row["partition"]), row["next_offset"])

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        partition, next_offset, topic = payload.split(":", 2)
        self._advance((topic, int(partition)), int(next_offset))

    def _advance(self, tp: TopicPartition, next_offset: int) -> None:
        if next_offset < self._positions.get(tp, 0):
            # The checkpoint went back: a replay reset the schema. Trust the table.
            self._positions[tp] = next_offset
            return
        self._positions[tp] = next_offset
        for offset, future in self._waiters.get(tp, []):
            if offset <= next_offset and not future.done():
                future.set_result(None)

    def _on_terminated(self, _conn: object) -> None:
        if not self._closed:
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.1
        while not self._closed:
            try:
                await self._connect()
                log.info("progress_listener_reconnected", schema=self._schema)
                return
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("progress_listener_reconnect_failed", error=str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
