"""The sync facade's machinery: an event loop on its own thread, and descriptors that
turn an async sub-client's methods into blocking ones with the same signature.

`Blocking(CatalogClient.get_model)` on a `Facade[CatalogClient]` is typed
`(uri: str) -> RegisteredModel`: mypy checks sync callers as it checks async ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

Client = TypeVar("Client")
P = ParamSpec("P")
T = TypeVar("T")


class LoopThread:
    """Runs coroutines and async streams on one loop in a daemon thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="modelreg-client", daemon=True)
        self._thread.start()
        self._streams: set[AsyncGenerator[Any, None]] = set()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def iterate(self, stream: AsyncGenerator[T, None]) -> Generator[T, None, None]:
        """Yields the stream's items; closing the iterator (a `break` out of a `for`,
        or garbage collection) closes the stream on the loop, which cancels its call."""

        async def step() -> list[T]:
            try:
                return [await anext(stream)]
            except StopAsyncIteration:
                return []

        self._streams.add(stream)
        try:
            while True:
                pending = asyncio.run_coroutine_threadsafe(step(), self._loop)
                try:
                    batch = pending.result()
                except BaseException:
                    pending.cancel()  # e.g. Ctrl-C while waiting: the cancellation ends the stream
                    raise
                if not batch:
                    return
                yield from batch
        finally:
            self._close(stream)

    def _close(self, stream: AsyncGenerator[Any, None]) -> None:
        if stream in self._streams and self._loop.is_running():
            self._streams.discard(stream)
            # Still inside a step just cancelled: that cancellation closes it instead.
            with contextlib.suppress(RuntimeError):
                self.run(stream.aclose())

    def stop(self) -> None:
        """Closes the streams still open (an iterator never finished), then the loop."""
        for stream in list(self._streams):
            self._close(stream)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


class Facade(Generic[Client]):
    """A blocking view of an async sub-client; its methods are `Blocking`/`Streaming`."""

    def __init__(self, client: Client, loop: LoopThread) -> None:
        self._client = client
        self._loop = loop


class Blocking(Generic[Client, P, T]):
    def __init__(self, method: Callable[Concatenate[Client, P], Coroutine[Any, Any, T]]) -> None:
        self._method = method

    def __get__(self, facade: Facade[Client], owner: type | None = None) -> Callable[P, T]:
        def blocking(*args: P.args, **kwargs: P.kwargs) -> T:
            return facade._loop.run(self._method(facade._client, *args, **kwargs))

        return blocking


class Streaming(Generic[Client, P, T]):
    def __init__(self, method: Callable[Concatenate[Client, P], AsyncGenerator[T, None]]) -> None:
        self._method = method

    def __get__(
        self, facade: Facade[Client], owner: type | None = None
    ) -> Callable[P, Generator[T, None, None]]:
        def iterating(*args: P.args, **kwargs: P.kwargs) -> Generator[T, None, None]:
            return facade._loop.iterate(self._method(facade._client, *args, **kwargs))

        return iterating
