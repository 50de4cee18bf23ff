"""The replay rate alone: `make bench`'s replay section without the rest of the workload.

    python -m bench.replay --events 100000 [--repeat 3]

On a fresh local stack (Tansu, PostgreSQL) produces bench.run's synthetic registry log once
(`produce_registry`) and rebuilds it `--repeat` times with bench.run's `measure_replay_on`
(versioning's own fold and both reference caches, a worker process per partition), printing
each run's events/s, CPU per event of the workers (this process and its descendants),
PostgreSQL (the postmaster and its backends) and Tansu, and the load average when it ended.
Everything it starts is stopped.

CPU is polled every 0.1 s (one reading of /proc per poll) by (pid, start time), keeping each
process's last reading, so workers and backends that exit before the end still count, less
their last <= 0.1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
import time
import uuid
from typing import Any

from bench import common
from bench.common import tree_cpu_seconds
from bench.run import measure_replay_on, produce_registry
from modelreg.devstack import LocalStack
from modelreg.eventlog.kafka import KafkaSettings


class CpuPoller:
    """CPU seconds per group over a run, polled, so processes that exit in between count."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots
        self.first: dict[str, dict[tuple[int, int], float]] = {name: {} for name in roots}
        self.last: dict[str, dict[tuple[int, int], float]] = {name: {} for name in roots}
        self.stopping = threading.Event()
        self.poll()
        self.first = {name: dict(seen) for name, seen in self.last.items()}
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def poll(self) -> None:
        for name, tree in tree_cpu_seconds(self.roots).items():
            self.last[name].update(tree)

    def run(self) -> None:
        while not self.stopping.wait(0.1):
            self.poll()

    def stop(self) -> dict[str, float]:
        self.stopping.set()
        self.thread.join()
        self.poll()
        # The servers are this process's descendants too: "workers" is what is left of its
        # tree without them and without this process ("bench process": the orchestration,
        # the fork server's start, this poller's own readings).
        servers = {key for name in self.roots if name != "workers" for key in self.last[name]}
        me = os.getpid()
        spent = {
            name: sum(
                s - self.first[name].get(key, 0.0)
                for key, s in self.last[name].items()
                if name != "workers" or (key not in servers and key[0] != me)
            )
            for name in self.roots
        }
        spent["bench process"] = sum(
            s - self.first["workers"].get(key, 0.0) for key, s in self.last["workers"].items() if key[0] == me
        )
        return spent


async def measure(
    kafka_servers: str, dsn: str, events: int, repeat: int, servers: dict[str, int]
) -> list[dict[str, Any]]:
    per_model = 20
    kafka = KafkaSettings(kafka_servers, f"replay{uuid.uuid4().hex[:6]}.", linger_ms=5)
    started = time.perf_counter()
    produced, topics = await produce_registry(kafka, -(-events // (per_model + 2)), per_model)
    print(f"produced {produced} events in {time.perf_counter() - started:.1f} s", flush=True)
    runs = []
    for _ in range(repeat):
        poller = CpuPoller({"workers": os.getpid(), **servers})
        result = await measure_replay_on(kafka, dsn, topics)
        cpu = poller.stop()
        result["cpu_us_per_event"] = {name: s * 1e6 / result["events"] for name, s in cpu.items()}
        result["load_average"] = os.getloadavg()
        runs.append(result)
        print(
            f"replay: {result['events']} events in {result['seconds']:.2f} s,"
            f" {result['events_per_second']:,.0f} events/s"
            f" (load average {' '.join(f'{x:.2f}' for x in result['load_average'])});"
            " CPU per event: "
            + ", ".join(f"{name} {us:.1f} us" for name, us in result["cpu_us_per_event"].items()),
            flush=True,
        )
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    with LocalStack.start() as stack, common.scratch_database(stack, "modelreg_replay_bench") as dsn:
        servers = stack.server_pids()
        asyncio.run(measure(stack.kafka.bootstrap_servers, dsn, args.events, args.repeat, servers))


if __name__ == "__main__":
    main()
