"""`make bench-mlflow`: one MlflowClient workload against MLflow's own server and against the
modelreg gateway, in the same run, on the same embedded PostgreSQL server.

MLflow's server (`mlflow==3.17.2` and `psycopg2-binary`) lives in a venv of its own,
`.venv-bench-mlflow`, made here on first use with pip (never in the project's venv or
constraints). It runs as `mlflow server --workers 1` on a fresh database; the registry runs as
its processes (catalog, versioning, lineage, promotion) on another fresh database of the same
server, with the gateway in front. Both are driven by the project's MlflowClient (mlflow-skinny
3.17.2, the same version), with 1 and then 8 client threads:

    create models, create versions, set aliases, get by alias, get version, search by tag,
    paged listing, set tag

For each workload and client count it prints the p50 latency and throughput on each side, and
the ratio (modelreg / MLflow: throughput above 1 and p50 below 1 favour modelreg). Small counts
by default (MODELREG_BENCH_MLFLOW_MODELS, default 10 models per client count: about five
minutes on a loaded 2-core VM); results go to
bench/out/mlflow_side_by_side.json. Not part of `make test`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import common
from modelreg.cli.dev import stop_processes, wait_until_http_serving
from modelreg.devstack import LocalStack
from modelreg.devstack.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
BENCH_VENV = ROOT / ".venv-bench-mlflow"
MLFLOW_PIN = "mlflow==3.17.2"
WORKLOADS = (
    "create models",
    "create versions",
    "set aliases",
    "get by alias",
    "get version",
    "search by tag",
    "paged listing",
    "set tag",
)
CLIENTS = (1, 8)
PAGE = 10
"""Models per page in the paged listing."""
OUT = common.OUT / "mlflow_side_by_side.json"
TELEMETRY_OFF = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
"""MLflow 3 reports usage over the network unless told not to; a benchmark sends nothing."""


def ensure_bench_venv(console: Console) -> Path:
    """`.venv-bench-mlflow/bin/mlflow`, installed with pip on first use."""
    mlflow = BENCH_VENV / "bin" / "mlflow"
    if mlflow.exists():
        return mlflow
    console.print(f"making {BENCH_VENV} with {MLFLOW_PIN} and psycopg2-binary (once)")
    subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    subprocess.run(
        [str(BENCH_VENV / "bin" / "pip"), "install", "-q", MLFLOW_PIN, "psycopg2-binary"], check=True
    )
    return mlflow


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f}s")


def wait_until_idle(pid: int, timeout: float = 90.0, busy_cores: float = 0.05) -> None:
    """Until the process tree of `pid` uses under `busy_cores` of CPU for two seconds running.

    MLflow 3's server answers /health while its job runner and seven huey consumer processes
    are still importing (seconds of CPU each on this machine); measured then, its first
    workloads would pay for its start."""

    def spent() -> float:
        return sum(common.process_cpu_seconds(pid, with_children=True).values())

    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 2 and time.monotonic() < deadline:
        before = spent()
        time.sleep(1.0)
        quiet = quiet + 1 if spent() - before < busy_cores else 0


@contextmanager
def mlflow_server(mlflow: Path, dsn: str, work: Path) -> Iterator[str]:
    """MLflow's server, one worker, on `dsn` (psycopg2's URL form)."""
    port = free_port()
    uri = dsn.replace("postgresql://", "postgresql+psycopg2://", 1)
    log = (work / "mlflow-server.log").open("wb")
    process = subprocess.Popen(
        [
            str(mlflow),
            "server",
            "--workers",
            "1",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            uri,
            "--artifacts-destination",
            str(work / "mlflow-artifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}, **TELEMETRY_OFF},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", process)
        wait_until_idle(process.pid)
        yield url
    finally:
        stop_processes([process])
        log.close()


@contextmanager
def modelreg_gateway(stack: LocalStack, dsn: str, work: Path) -> Iterator[str]:
    """The registry's services on `dsn` and the gateway in front of them."""
    env = common.service_env(stack, dsn, f"mlbench-{uuid.uuid4().hex[:6]}.", MODELREG_HOME=str(work / "home"))
    with common.services(["catalog", "versioning", "lineage", "promotion"], env) as ports:
        port = free_port()
        gateway_env = {
            **env,
            **{f"MODELREG_{name.upper()}_ADDR": f"127.0.0.1:{p}" for name, p in ports.items()},
            "MODELREG_GATEWAY_NAMESPACE": "mlflow",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "modelreg.gateway", "serve", "--port", str(port)], env=gateway_env
        )
        try:
            wait_until_http_serving(port, process)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop_processes([process])


def client_for(url: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=url, registry_uri=url)


def run_workloads(url: str, models: int, clients: int, tag: str) -> dict[str, dict[str, float]]:
    """Each workload's calls spread over `clients` threads (one MlflowClient each); the p50 of
    every call and the throughput (calls / wall time)."""
    names = [f"bench-{tag}-c{clients}-{i}" for i in range(models)]
    teams = 4
    pool = [client_for(url) for _ in range(clients)]

    def spread(calls: list[Callable[[Any], object]]) -> dict[str, float]:
        latencies: list[float] = []

        def worker(k: int) -> None:
            client = pool[k]
            for call in calls[k::clients]:
                started = time.perf_counter()
                call(client)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as executor:
            for future in [executor.submit(worker, k) for k in range(clients)]:
                future.result()
        wall = time.perf_counter() - started
        return {**common.percentiles(latencies), "ops_per_s": len(latencies) / wall}

    def listing(client: Any) -> None:
        token = None
        for _ in range(models // PAGE + 2):
            page = client.search_registered_models(
                filter_string=f"name LIKE 'bench-{tag}-c{clients}-%'", max_results=PAGE, page_token=token
            )
            assert page, "an empty page"
            token = page.token
            if not token:
                return

    source = "s3://bench-models/model"
    like = f"name LIKE 'bench-{tag}-c{clients}-%'"

    def create_model(i: int, client: Any) -> None:
        client.create_registered_model(names[i], tags={"team": f"t{i % teams}"})

    def create_version(i: int, client: Any) -> None:
        client.create_model_version(names[i], source)

    def set_alias(i: int, client: Any) -> None:
        client.set_registered_model_alias(names[i], "champion", "1")

    def get_by_alias(i: int, client: Any) -> None:
        client.get_model_version_by_alias(names[i], "champion")

    def get_version(i: int, client: Any) -> None:
        client.get_model_version(names[i], "1")

    def search_by_tag(i: int, client: Any) -> None:
        client.search_registered_models(
            filter_string=f"tags.team = 't{i % teams}' AND {like}", max_results=100
        )

    def set_tag(i: int, client: Any) -> None:
        client.set_registered_model_tag(names[i], "stage", "bench")

    def calls(op: Callable[[int, Any], None], count: int = models) -> list[Callable[[Any], object]]:
        return [partial(op, i) for i in range(count)]

    workloads: dict[str, list[Callable[[Any], object]]] = {
        "create models": calls(create_model),
        "create versions": calls(create_version),
        "set aliases": calls(set_alias),
        "get by alias": calls(get_by_alias),
        "get version": calls(get_version),
        "search by tag": calls(search_by_tag),
        "paged listing": [listing] * max(clients, models // PAGE),
        "set tag": calls(set_tag),
    }
    return {name: spread(workloads[name]) for name in WORKLOADS}


def table(results: dict[str, Any]) -> Table:
    out = Table(title="MlflowClient workload: MLflow's server vs the modelreg gateway")
    for column in (
        "workload",
        "clients",
        "mlflow p50 ms",
        "mlflow ops/s",
        "modelreg p50 ms",
        "modelreg ops/s",
        "ops/s ratio",
        "p50 ratio",
    ):
        out.add_column(column, justify="left" if column == "workload" else "right")
    for clients in CLIENTS:
        for name in WORKLOADS:
            m = results["mlflow"][str(clients)][name]
            r = results["modelreg"][str(clients)][name]
            out.add_row(
                name,
                str(clients),
                f"{m['p50_ms']:.1f}",
                f"{m['ops_per_s']:.1f}",
                f"{r['p50_ms']:.1f}",
                f"{r['ops_per_s']:.1f}",
                f"{r['ops_per_s'] / m['ops_per_s']:.2f}",
                f"{r['p50_ms'] / m['p50_ms']:.2f}",
            )
    return out


def main() -> None:
    console = Console(width=150)
    models = int(os.environ.get("MODELREG_BENCH_MLFLOW_MODELS", "10"))
    mlflow = ensure_bench_venv(console)
    tag = uuid.uuid4().hex[:6]
    results: dict[str, Any] = {
        "meta": common.meta(models=models, clients=list(CLIENTS), mlflow=MLFLOW_PIN),
        "mlflow": {},
        "modelreg": {},
    }
    # MLflow's client retries 5xx answers with backoff; a benchmark wants the first answer.
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "60"
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as scratch, LocalStack.start() as stack:
        work = Path(scratch)
        for side, serve in (
            ("mlflow", lambda dsn: mlflow_server(mlflow, dsn, work)),
            ("modelreg", lambda dsn: modelreg_gateway(stack, dsn, work)),
        ):
            with common.scratch_database(stack, f"bench_{side}") as dsn, serve(dsn) as url:
                console.print(f"{side}: {url}")
                for clients in CLIENTS:
                    results[side][str(clients)] = run_workloads(url, models, clients, tag)
    console.print(table(results))
    console.print(f"results: {common.write_results(results, OUT)}")


if __name__ == "__main__":
    main()
