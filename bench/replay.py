"""The replay rate alone: `make bench`'s replay section without the rest of the workload.

    python -m bench.replay --events 100000 [--repeat 3]

On a fresh local stack (Tansu, PostgreSQL) produces bench.run's synthetic registry log once
(`produce_registry`) and rebuilds it `--repeat` times with bench.run's `measure_replay_on`
(versioning's own fold and both reference caches, a worker process per partition), printing
each run's events/s and the load average when it ended. Everything it starts is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from typing import Any

from bench import common
from bench.run import measure_replay_on, produce_registry
from modelreg.devstack import LocalStack
from modelreg.eventlog.kafka import KafkaSettings


async def measure(kafka_servers: str, dsn: str, events: int, repeat: int) -> list[dict[str, Any]]:
    per_model = 20
    kafka = KafkaSettings(kafka_servers, f"replay{uuid.uuid4().hex[:6]}.", linger_ms=5)
    started = time.perf_counter()
    produced, topics = await produce_registry(kafka, -(-events // (per_model + 2)), per_model)
    print(f"produced {produced} events in {time.perf_counter() - started:.1f} s", flush=True)
    runs = []
    for _ in range(repeat):
        result = await measure_replay_on(kafka, dsn, topics)
        result["load_average"] = os.getloadavg()
        runs.append(result)
        print(
            f"replay: {result['events']} events in {result['seconds']:.2f} s,"
            f" {result['events_per_second']:,.0f} events/s"
            f" (load average {' '.join(f'{x:.2f}' for x in result['load_average'])})",
            flush=True,
        )
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    with LocalStack.start() as stack, common.scratch_database(stack, "modelreg_replay_bench") as dsn:
        asyncio.run(measure(stack.kafka.bootstrap_servers, dsn, args.events, args.repeat))


if __name__ == "__main__":
    main()
