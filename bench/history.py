"""Write cost against a model's history (issue 13): CreateModelVersion on a model with no
versions and on one with 10,000, interleaved so both see the same machine.

    python -m bench.history [--versions 10000] [--creates 200]

Also part of `make bench` (results["history"]). The deep model's versions are produced
onto the topic and folded by the live projector's code before the services start (as
`bench.run.load_scale` does), so the figure is the write path alone.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from typing import Any

import grpc
from rich.console import Console
from rich.table import Table

from bench import common
from modelreg.devstack import LocalStack
from modelreg.eventlog import TOKEN_METADATA_KEY
from modelreg.eventlog.kafka import KafkaSettings
from modelreg.gen.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from modelreg.gen.versioning.v1 import versioning_pb2 as pb
from modelreg.gen.versioning.v1 import versioning_pb2_grpc

DEEP_MODEL = "namespaces/replay/models/m0"


async def measure_creates(ports: dict[str, int], deep_versions: int, creates: int) -> dict[str, Any]:
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{ports['catalog']}") as cat_ch,
        grpc.aio.insecure_channel(f"127.0.0.1:{ports['versioning']}") as ver_ch,
    ):
        catalog = catalog_pb2_grpc.CatalogServiceStub(cat_ch)
        versioning = versioning_pb2_grpc.VersioningServiceStub(ver_ch)
        call = catalog.CreateRegisteredModel(
            catalog_pb2.CreateRegisteredModelRequest(
                parent="namespaces/replay",
                registered_model_id="fresh",
                registered_model=catalog_pb2.RegisteredModel(),
            )
        )
        await call
        token = dict(await call.trailing_metadata())[TOKEN_METADATA_KEY]
        fresh = "namespaces/replay/models/fresh"
        # The deep model's last version must be readable before its creates are timed.
        await _until_readable(versioning, f"{DEEP_MODEL}/versions/{deep_versions}")

        def create(model: str, metadata: Any = None) -> Any:
            return versioning.CreateModelVersion(
                pb.CreateModelVersionRequest(
                    parent=model,
                    bump=pb.BUMP_MINOR,
                    model_version=pb.ModelVersion(description="history bench", tags={"k": "v"}),
                ),
                metadata=metadata,
            )

        await create(fresh, [(TOKEN_METADATA_KEY, token)])
        await common.timed(20, lambda i: create(DEEP_MODEL))  # warm-up
        samples: dict[str, list[float]] = {"fresh": [], "deep": []}
        for _ in range(creates):
            for key, model in (("fresh", fresh), ("deep", DEEP_MODEL)):
                started = time.perf_counter()
                await create(model)
                samples[key].append(time.perf_counter() - started)
        last = await versioning.GetModelVersion(
            pb.GetModelVersionRequest(name=f"{DEEP_MODEL}/versions/{deep_versions + 20 + creates}")
        )
    fresh_p = common.percentiles(samples["fresh"])
    deep_p = common.percentiles(samples["deep"])
    return {
        "deep_versions_at_start": deep_versions,
        "deep_versions_at_end": last.version,
        "fresh": fresh_p,
        "deep": deep_p,
        "p50_ratio": deep_p["p50_ms"] / fresh_p["p50_ms"],
    }


async def _until_readable(versioning: Any, name: str, timeout_s: float = 120.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await versioning.GetModelVersion(pb.GetModelVersionRequest(name=name))
            return
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND or asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(0.2)


def run(deep_versions: int, creates: int) -> dict[str, Any]:
    with LocalStack.start() as stack, tempfile.TemporaryDirectory(prefix="modelreg-bench-") as home:
        return run_on(stack, home, deep_versions, creates)


def run_on(stack: LocalStack, home: str, deep_versions: int, creates: int) -> dict[str, Any]:
    from bench.run import load_scale

    with common.scratch_database(stack, "modelreg_history") as dsn:
        prefix = f"history{uuid.uuid4().hex[:6]}."
        kafka = KafkaSettings(stack.kafka.bootstrap_servers, prefix, linger_ms=5)
        loaded = asyncio.run(load_scale(kafka, dsn, deep_versions, deep_versions))
        env = common.service_env(stack, dsn, prefix, MODELREG_HOME=home)
        with common.services(["catalog", "versioning"], env) as ports:
            measured = asyncio.run(measure_creates(ports, deep_versions, creates))
    return {"load_seconds": loaded["produce_seconds"] + loaded["fold_seconds"], **measured}


def report(results: dict[str, Any], console: Console) -> None:
    table = Table(title="CreateModelVersion against history (interleaved, one client)")
    for column in ("model", "versions", "p50 ms", "p95 ms", "p99 ms", "n"):
        table.add_column(column)
    for key, versions in (("fresh", "1.."), ("deep", f"{results['deep_versions_at_start']:,}..")):
        f = results[key]
        table.add_row(
            key, versions, f"{f['p50_ms']:.2f}", f"{f['p95_ms']:.2f}", f"{f['p99_ms']:.2f}", str(f["n"])
        )
    console.print(table)
    console.print(f"deep/fresh p50 ratio: {results['p50_ratio']:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--creates", type=int, default=200)
    args = parser.parse_args(argv)
    results = run(args.versions, args.creates)
    report(results, Console())
    common.write_results({"history": results, "meta": common.meta()}, common.OUT / "history.json")


if __name__ == "__main__":
    main()
