"""Public-event latency (issue 16): from a command's acknowledgement to its record on
`modelreg.public.v1`, and to the webhook request arriving at a local HTTP receiver.

    python -m bench.events [--commands 200]

Also part of `make bench` (results["events"]). Starts the catalog service and the events
relay as their own processes on the given stack, subscribes a webhook (model.updated) to a
receiver on 127.0.0.1 (allow-listed with MODELREG_WEBHOOK_ALLOW_HOSTS), then makes
`commands` UpdateRegisteredModel calls one after another, each with a unique description.
The clock starts when the call is answered (the command accepted and projected) and stops
when this process reads the CloudEvent from the broker, and when the receiver gets the
signed request. Each command waits for both before the next, so the figures are per-event
latency, not queueing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import common
from modelreg.client import AsyncRegistry, Endpoints
from modelreg.client.public_events import follow
from modelreg.devstack import LocalStack

UPDATED = "io.modelreg.model.updated.v1"
WAIT_S = 60.0


class Arrivals:
    """When each marker (a description) arrived, per channel; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._at: dict[tuple[str, str], float] = {}

    def record(self, channel: str, marker: str) -> None:
        now = time.perf_counter()
        with self._lock:
            self._at.setdefault((channel, marker), now)

    def get(self, channel: str, marker: str) -> float | None:
        with self._lock:
            return self._at.get((channel, marker))


def description_of(data: Any) -> str:
    model = data.get("registered_model", {}) if isinstance(data, dict) else {}
    return str(model.get("description", "")) if isinstance(model, dict) else ""


@contextlib.contextmanager
def receiver(arrivals: Arrivals) -> Iterator[int]:
    """An HTTP server on 127.0.0.1 (a port it chose) answering 200 to every webhook request."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with contextlib.suppress(ValueError):
                payload = json.loads(body)
                if payload.get("type") == UPDATED:
                    arrivals.record("webhook", description_of(payload.get("data")))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


async def measure(
    arrivals: Arrivals, endpoints: Endpoints, bootstrap: str, topic: str, port: int, commands: int
) -> dict[str, Any]:
    """`port`: the receiver's, which records into `arrivals`."""
    ns = f"bench{uuid.uuid4().hex[:6]}"
    model = f"{ns}/latency"

    async def consume() -> None:
        async for record in follow(bootstrap, topic):
            if record.type == UPDATED:
                arrivals.record("topic", description_of(record.data))

    async def arrived(channel: str, marker: str) -> float:
        deadline = time.monotonic() + WAIT_S
        while (at := arrivals.get(channel, marker)) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{marker} never reached the {channel} in {WAIT_S:.0f}s")
            await asyncio.sleep(0.001)
        return at

    public: list[float] = []
    webhook: list[float] = []
    async with AsyncRegistry(endpoints) as registry:
        await registry.catalog.register_model(model)
        secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        url = f"http://127.0.0.1:{port}/hook"
        await registry.webhooks.create(
            f"{ns}/bench", url, secret=secret, event_types=["model.updated"], model=model
        )
        consumer = asyncio.create_task(consume())
        try:
            for i in range(-5, commands):  # five to warm up, not counted
                marker = f"bench-{i}-{uuid.uuid4().hex[:6]}"
                await registry.catalog.update_model(model, description=marker)
                acked = time.perf_counter()
                to_topic = await arrived("topic", marker) - acked
                to_webhook = await arrived("webhook", marker) - acked
                if i >= 0:
                    public.append(to_topic)
                    webhook.append(to_webhook)
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
    return {
        "commands": commands,
        "to_public_topic": common.percentiles(public),
        "to_webhook": common.percentiles(webhook),
    }


def run_on(stack: LocalStack, home: str, commands: int) -> dict[str, Any]:
    arrivals = Arrivals()
    with common.scratch_database(stack, "modelreg_events_bench") as dsn, receiver(arrivals) as port:
        prefix = f"ev{uuid.uuid4().hex[:6]}."
        env = common.service_env(
            stack,
            dsn,
            prefix,
            MODELREG_HOME=home,
            MODELREG_WEBHOOK_ALLOW_HOSTS="127.0.0.1",
            MODELREG_WEBHOOK_BACKOFF_S="0.05",
        )
        with common.services(["catalog", "events"], env) as ports:
            endpoints = Endpoints(
                catalog=f"127.0.0.1:{ports['catalog']}", events=f"127.0.0.1:{ports['events']}"
            )
            topic = f"{prefix}modelreg.public.v1"
            bootstrap = stack.kafka.bootstrap_servers
            return asyncio.run(measure(arrivals, endpoints, bootstrap, topic, port, commands))


def report(results: dict[str, Any], console: Console) -> None:
    table = Table(title=f"public events: command acknowledged -> delivered ({results['commands']} commands)")
    for column in ("to", "p50 ms", "p95 ms", "p99 ms", "n"):
        table.add_column(column)
    for label, key in (
        ("modelreg.public.v1 (read back)", "to_public_topic"),
        ("webhook receiver", "to_webhook"),
    ):
        figures = results[key]
        table.add_row(
            label,
            f"{figures['p50_ms']:.1f}",
            f"{figures['p95_ms']:.1f}",
            f"{figures['p99_ms']:.1f}",
            str(figures["n"]),
        )
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=200)
    args = parser.parse_args(argv)
    with LocalStack.start() as stack, tempfile.TemporaryDirectory(prefix="modelreg-bench-") as home:
        results = run_on(stack, home, args.commands)
    report(results, Console())
    common.write_results({"events": results, "meta": common.meta()}, common.OUT / "events.json")


if __name__ == "__main__":
    main()
