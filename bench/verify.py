"""What signed envelopes cost (issue 12 item 6): the screen of one event, and replay.

    .venv/bin/python -m bench.verify [--events 30000] [--samples 20000]

1. Per event, in this process: `screen` (eventlog/integrity.py: partition, event id, hash,
   and with keys the Ed25519 verify) with verification off and on, on versioning events as
   `bench/run.py` produces them; and signing (`seal`) on the write path.
2. Replay: the same synthetic log (catalog + versioning + promotion, 20 versions a model)
   produced twice, unsigned and signed, each rebuilt by `rebuild_all` exactly as
   `measure_replay` in bench/run.py does (a worker process per partition), first with
   verification off, then with it on. Tansu and PostgreSQL are started here and stopped.

Prints a table and writes bench/out/verify.json. No timed assertion anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import replace
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import common
from bench.run import measure_replay_on, produce_registry
from modelreg.devstack import LocalStack
from modelreg.eventlog import GENESIS_HASH, EventContext, build_envelope
from modelreg.eventlog.integrity import NO_INTEGRITY, LogIntegrity, screen
from modelreg.eventlog.kafka import KafkaSettings
from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.versioning.adapters import codec
from modelreg.versioning.domain.events import VersionCreated
from modelreg.versioning.domain.values import SemVer, VersionSpec


def sample_events(n: int) -> list[Envelope]:
    model = "namespaces/bench/models/m"
    out = []
    prev = GENESIS_HASH
    for j in range(n):
        spec = VersionSpec(
            description=f"v{j}",
            tags={f"k{t}": f"v{j % 7}" for t in range(5)},
            params={"source_uri": f"s3://d/m/{j}"},
        )
        field, payload = codec.encode(model, VersionCreated(j + 1, SemVer(1, j, 0), spec))
        e = build_envelope(
            stream=model,
            payload_field=field,
            payload=payload,
            expected_revision=j,
            prev_hash=prev,
            source="bench",
            context=EventContext(actor="bench"),
        )
        prev = e.hash
        out.append(e)
    return out


def per_event_us(samples: int) -> dict[str, float]:
    events = sample_events(samples)
    keys = LogIntegrity.generated("bench")
    unsigned = [Envelope() for _ in events]
    for copy, e in zip(unsigned, events, strict=True):
        copy.CopyFrom(e)
        NO_INTEGRITY.seal(copy, 1)
    started = time.perf_counter()
    for e in events:
        keys.seal(e, 1)
    seal_us = (time.perf_counter() - started) / samples * 1e6
    results = {"seal_sign_us": seal_us}
    for name, integrity, batch in (("screen_off_us", NO_INTEGRITY, unsigned), ("screen_on_us", keys, events)):
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            for e in batch:
                if screen(e, 1, integrity):
                    raise AssertionError("a genuine event was rejected")
            best = min(best, (time.perf_counter() - started) / samples * 1e6)
        results[name] = best
    results["verify_cost_us"] = results["screen_on_us"] - results["screen_off_us"]
    return results


async def replay_rates(bootstrap: str, dsn: str, events: int) -> dict[str, Any]:
    per_model = 20
    models = -(-events // (per_model + 2))
    keys = LogIntegrity.generated("bench")
    out: dict[str, Any] = {}
    for name, integrity in (("unsigned_unverified", NO_INTEGRITY), ("signed_verified", keys)):
        kafka = KafkaSettings(bootstrap, f"verify{name[:1]}{time.time_ns() % 10**8}.", integrity=integrity)
        produced, topics = await produce_registry(kafka, models, per_model)
        run = await measure_replay_on(kafka, dsn, topics)
        out[name] = {"produced": produced, **run}
        if name == "signed_verified":
            # The signed log once more with verification off: the verify's share alone.
            again = await measure_replay_on(replace(kafka, integrity=NO_INTEGRITY), dsn, topics)
            out["signed_unverified"] = {"produced": produced, **again}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=30_000, help="events in each replayed log")
    parser.add_argument("--samples", type=int, default=20_000, help="events for the per-event timing")
    args = parser.parse_args()
    console = Console()
    per_event = per_event_us(args.samples)
    with LocalStack.start() as stack, common.scratch_database(stack, "verify") as dsn:
        replay = asyncio.run(replay_rates(stack.kafka.bootstrap_servers, dsn, args.events))
    table = Table(title="signed envelopes")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in per_event.items():
        table.add_row(key, f"{value:.1f} us")
    for key, value in replay.items():
        table.add_row(
            f"replay {key}", f"{value['events_per_second']:,.0f} events/s ({value['events']:,} events)"
        )
    console.print(table)
    path = common.write_results(
        {**common.meta(events=args.events, samples=args.samples), "per_event": per_event, "replay": replay},
        common.OUT / "verify.json",
    )
    console.print(f"written to {path}")


if __name__ == "__main__":
    main()
