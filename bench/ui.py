"""The web UI's pages at scale (issue 18): a model with 1,000 versions, its model page, its
newest version's page and the models list, timed through the gateway.

    python -m bench.ui [--versions 1000] [--requests 50]

Also part of `make bench` (results["ui"]). The figure is the server's own time (the
`Server-Timing` header the UI sends: the gRPC calls and the rendering), beside the time the
HTTP client saw; the target is a model page in under 300 ms of server time.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from bench import common
from modelreg.devstack import LocalStack
from modelreg.devstack.ports import free_port
from modelreg.eventlog.kafka import KafkaSettings

SERVICES = ["catalog", "versioning", "lineage", "promotion", "audit"]
TARGET_MS = 300.0


def server_ms(response: httpx.Response) -> float:
    timing = response.headers.get("server-timing", "")
    return float(timing.split("dur=", 1)[1]) if "dur=" in timing else float("nan")


async def measure(base: str, versions: int, requests: int) -> dict[str, Any]:
    pages = {
        "model page": "/models/replay/m0",
        "version page": f"/models/replay/m0/versions/{versions}",
        "models list": "/?ns=replay",
    }
    results: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        deadline = time.monotonic() + 180
        while True:  # until the services have folded the loaded log
            answer = await http.get(pages["version page"])
            if answer.status_code == 200 and "m0" in answer.text:
                break
            assert time.monotonic() < deadline, f"the loaded version never showed: {answer.status_code}"
            await asyncio.sleep(0.5)
        for label, path in pages.items():
            for _ in range(5):  # warm-up
                (await http.get(path)).raise_for_status()
            server, client = [], []
            for _ in range(requests):
                started = time.perf_counter()
                answer = await http.get(path)
                client.append(time.perf_counter() - started)
                answer.raise_for_status()
                server.append(server_ms(answer) / 1000)
            results[label] = {"server": common.percentiles(server), "client": common.percentiles(client)}
    return results


def run_on(stack: LocalStack, home: str, versions: int, requests: int) -> dict[str, Any]:
    from bench.run import load_scale
    from modelreg.cli.dev import wait_until_http_serving

    with common.scratch_database(stack, "modelreg_ui") as dsn:
        prefix = f"ui{uuid.uuid4().hex[:6]}."
        kafka = KafkaSettings(stack.kafka.bootstrap_servers, prefix, linger_ms=5)
        asyncio.run(load_scale(kafka, dsn, versions, versions))
        env = common.service_env(stack, dsn, prefix, MODELREG_HOME=home)
        with common.services(SERVICES, env) as ports:
            port = free_port()
            addresses = {f"MODELREG_{s.upper()}_ADDR": f"127.0.0.1:{p}" for s, p in ports.items()}
            gateway_env = {**env, **addresses}
            gateway = subprocess.Popen(
                [sys.executable, "-m", "modelreg.gateway", "serve", "--port", str(port)], env=gateway_env
            )
            try:
                wait_until_http_serving(port, gateway)
                measured = asyncio.run(measure(f"http://127.0.0.1:{port}", versions, requests))
            finally:
                gateway.terminate()
                gateway.wait(timeout=30)
    return {"versions": versions, "target_ms": TARGET_MS, "pages": measured}


def report(results: dict[str, Any], console: Console) -> None:
    table = Table(title=f"web UI pages, a model with {results['versions']:,} versions (server time)")
    for column in ("page", "server p50 ms", "server p95 ms", "client p50 ms", "n"):
        table.add_column(column)
    for label, figures in results["pages"].items():
        server, client = figures["server"], figures["client"]
        table.add_row(
            label,
            f"{server['p50_ms']:.1f}",
            f"{server['p95_ms']:.1f}",
            f"{client['p50_ms']:.1f}",
            str(server["n"]),
        )
    console.print(table)
    model = results["pages"]["model page"]["server"]["p95_ms"]
    verdict = "meets" if model < results["target_ms"] else "MISSES"
    console.print(f"model page p95 {model:.1f} ms {verdict} the {results['target_ms']:.0f} ms target")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args(argv)
    with LocalStack.start() as stack, tempfile.TemporaryDirectory(prefix="modelreg-bench-") as home:
        results = run_on(stack, home, args.versions, args.requests)
    report(results, Console())
    common.write_results({"ui": results, "meta": common.meta()}, common.OUT / "ui.json")


if __name__ == "__main__":
    main()
