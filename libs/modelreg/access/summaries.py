"""Refusals of callers with no verified identity, recorded without letting them grow the log.

An authenticated caller's denial is one AccessDenied fact per call (the rate limit on
denials bounds it). A caller with no verified identity (anonymous, or a bad or missing
credential) could otherwise append a fact with every call it makes, so its refusals are
counted here, per caller address, method and reason, and each window ends in one summary
fact per key with its count: the log grows with time and distinct callers, never with the
number of calls. Past `max_keys` distinct keys in a window, further keys fold into one
per method with the address `*`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from modelreg.access.enforce import Denial

log = structlog.get_logger(__name__)

DEFAULT_WINDOW_S = 10.0
DEFAULT_MAX_KEYS = 1000
ANY_PEER = "*"


@dataclass(frozen=True, slots=True)
class Summary:
    denial: Denial
    peer: str
    count: int


SummaryRecorder = Callable[[Summary], Awaitable[None]]


class UnverifiedDenials:
    def __init__(
        self, record: SummaryRecorder, *, window_s: float = DEFAULT_WINDOW_S, max_keys: int = DEFAULT_MAX_KEYS
    ) -> None:
        self._record = record
        self._window_s = window_s
        self._max_keys = max_keys
        self._counts: dict[tuple[str, Denial], int] = {}
        self._task: asyncio.Task[None] | None = None

    def note(self, peer: str, denial: Denial) -> None:
        """Counts one refusal; never blocks, never appends."""
        key = (peer, denial)
        if key not in self._counts and len(self._counts) >= self._max_keys:
            key = (
                ANY_PEER,
                Denial(denial.principal, denial.action, "", "", "refusals past the per-window cap"),
            )
        self._counts[key] = self._counts.get(key, 0) + 1

    @property
    def pending(self) -> int:
        return sum(self._counts.values())

    async def flush(self) -> None:
        counts, self._counts = self._counts, {}
        for (peer, denial), count in counts.items():
            try:
                await self._record(Summary(denial, peer, count))
            except Exception:
                # The refusals themselves were answered; a lost summary is logged, not retried forever.
                log.exception("denial_summary_not_recorded", peer=peer, action=denial.action, count=count)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="unverified-denials")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._window_s)
            await self.flush()
