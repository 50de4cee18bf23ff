"""`make bench-peer` (issue 19): `make bench`'s workload against MLflow's own server and against
modelreg, one after the other, in one table with the ratio per workload.

    make bench-peer       # python3 scripts/run.py bench-peer [--models 200 --versions-per-model 20 ...]

MLflow's side: MLflow 3.17.2's server (`.venv-bench-mlflow`, made with pip on first use, as
`make bench-mlflow` does), `mlflow server --workers 1` with its SQL store on a fresh database of
an embedded PostgreSQL server, telemetry off, driven by MlflowClient (mlflow-skinny 3.17.2) over
HTTP. The workload has bench.run's shape: W1 create models, W2 create versions (round-robin over
the models), W3 set alias, W4 get by alias, W5 get by number, W6 search a model's versions by
tag, W7 list a model's versions in pages of 10, W8 set a version tag; W2, W4, W5 again with 8
client threads (thread c owns models c, c + 8, ...). Its floor: an HTTP GET of `/health` through
MLflow's own request helper (the client's pooled keep-alive session).

modelreg's side: `bench.run.measure_live` on a fresh stack (Tansu, embedded PostgreSQL, the
catalog, versioning and promotion services over native gRPC), the same counts; its floor is
the gRPC health Check. bench.run's other sections (replay, archive, audit, history, UI, events)
are not run here.

Counts default to the issue's (200 models x 20 versions); flags, or MODELREG_BENCH_PEER_MODELS
and MODELREG_BENCH_PEER_VERSIONS, make smaller runs. `--sides modelreg` runs modelreg's side alone
(no MLflow venv needed; the MLflow columns say "not run"). Results: bench/out/peer.json.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import common
from bench.mlflow_side_by_side import MLFLOW_PIN, TELEMETRY_OFF, client_for, ensure_bench_venv, mlflow_server
from bench.run import (
    LIST_PAGE,
    Workload,
    live_measures,
    measure_live,
    report_cpu_and_targets,
    version_tags,
)
from modelreg.devstack import LocalStack

OUT = common.OUT / "peer.json"
SIDES = ("mlflow", "modelreg")
COUNTS = (
    "models",
    "versions_per_model",
    "alias_gets",
    "gets",
    "searches",
    "listings",
    "tag_sets",
    "clients",
    "floor_calls",
)
"""The Workload fields this harness uses; the others belong to sections it skips."""


def threaded_rate(calls: int, make_call: Callable[[int], object], clients: int = 1) -> dict[str, float]:
    """bench.run.rate for blocking clients: thread c makes calls c, c + clients, ..."""
    latencies: list[list[float]] = [[] for _ in range(clients)]

    def worker(c: int) -> None:
        for k in range(c, calls, clients):
            started = time.perf_counter()
            make_call(k)
            latencies[c].append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as executor:
        for future in [executor.submit(worker, c) for c in range(clients)]:
            future.result()
    elapsed = time.perf_counter() - started
    flat = [s for samples in latencies for s in samples]
    return {**common.percentiles(flat), "per_second": len(flat) / elapsed, "clients": clients}


def health_floor(url: str, calls: int) -> dict[str, float]:
    """p50 of GET /health through the request helper MlflowClient's own calls go through."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    creds = get_default_host_creds(url)
    for _ in range(50):  # warm-up: the pooled connection, the server's first requests
        http_request(creds, "/health", "GET")
    return threaded_rate(calls, lambda k: http_request(creds, "/health", "GET"))


def measure_mlflow(url: str, w: Workload) -> dict[str, Any]:
    """bench.run.measure_workload's calls, made with MlflowClient against MLflow's server."""
    rng = random.Random(8)  # bench.run's seed: the same picks
    clients = [client_for(url) for _ in range(w.clients)]
    one = clients[0]
    models = [f"m{i}" for i in range(w.models)]
    per_model = w.versions_per_model
    results: dict[str, Any] = {"floor_health_get": health_floor(url, max(w.floor_calls // 3, 10))}

    def create_model(i: int) -> None:
        one.create_registered_model(
            models[i], tags={"k1": "v1", "k2": "v2", "k3": "v3"}, description="benchmark model"
        )

    results["W1_create_model"] = threaded_rate(w.models, create_model)

    def create_version(client: Any, model: str, j: int) -> None:
        client.create_model_version(
            model,
            f"s3://bench-data/{model}/run-{j}",
            tags=version_tags(j),
            description=f"bench version {j}",
        )

    results["W2_create_version"] = threaded_rate(
        w.models * per_model, lambda k: create_version(one, models[k % w.models], k // w.models)
    )

    def set_alias(i: int) -> None:
        one.set_registered_model_alias(models[i], "champion", str(per_model))

    results["W3_set_alias"] = threaded_rate(w.models, set_alias)
    picks = [rng.randrange(w.models) for _ in range(max(w.alias_gets, w.gets, w.tag_sets))]
    numbers = [1 + rng.randrange(per_model) for _ in range(len(picks))]

    def get_alias(client: Any, k: int) -> None:
        version = client.get_model_version_by_alias(models[picks[k]], "champion")
        assert int(version.version) == per_model, version

    def get_number(client: Any, k: int) -> None:
        client.get_model_version(models[picks[k]], str(numbers[k]))

    results["W4_get_by_alias"] = threaded_rate(w.alias_gets, lambda k: get_alias(one, k))
    results["W5_get_by_number"] = threaded_rate(w.gets, lambda k: get_number(one, k))

    def search(k: int) -> None:
        found = one.search_model_versions(
            filter_string=f"name = '{models[picks[k]]}' AND tags.k1 = 'v3'", max_results=100
        )
        assert len(found) == len(range(3, per_model, 5)), len(found)

    results["W6_search_tag"] = threaded_rate(w.searches, search)

    def list_all(k: int) -> None:
        token, seen = None, 0
        while True:
            page = one.search_model_versions(
                filter_string=f"name = '{models[picks[k]]}'", max_results=LIST_PAGE, page_token=token
            )
            seen += len(page)
            token = page.token
            if not token:
                break
        assert seen == per_model, seen

    results["W7_list_all_paged"] = threaded_rate(w.listings, list_all)

    def set_tag(k: int) -> None:
        one.set_model_version_tag(models[picks[k]], str(numbers[k]), "note", f"n{k}")

    results["W8_set_tag"] = threaded_rate(w.tag_sets, set_tag)

    # Thread c makes calls c, c + clients, ... so, as in bench.run, it alone writes its models.
    c = w.clients
    results[f"W2_create_version_{c}c"] = threaded_rate(
        w.models * per_model,
        lambda k: create_version(clients[k % c], models[k % w.models], per_model + k // w.models),
        clients=c,
    )
    results[f"W4_get_by_alias_{c}c"] = threaded_rate(
        w.alias_gets, lambda k: get_alias(clients[k % c], k), clients=c
    )
    results[f"W5_get_by_number_{c}c"] = threaded_rate(
        w.gets, lambda k: get_number(clients[k % c], k), clients=c
    )
    return results


def run_mlflow(w: Workload, console: Console) -> dict[str, Any]:
    mlflow = ensure_bench_venv(console)
    # The client's side: no retries of a 5xx (a benchmark wants the first answer), no telemetry.
    os.environ.update(TELEMETRY_OFF, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="60")
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as scratch, LocalStack.start() as stack:
        with (
            common.scratch_database(stack, "bench_peer_mlflow") as dsn,
            mlflow_server(mlflow, dsn, Path(scratch)) as url,
        ):
            console.print(f"MLflow {MLFLOW_PIN.split('==')[1]} server at {url}: running the workload")
            return measure_mlflow(url, w)


def run_modelreg(w: Workload, console: Console) -> dict[str, Any]:
    console.print("modelreg (native gRPC) on a fresh stack: running the workload")
    with LocalStack.start() as stack, tempfile.TemporaryDirectory(prefix="bench-peer-") as home:
        with common.scratch_database(stack, "bench_peer_modelreg") as dsn:
            return measure_live(stack, dsn, home, w)


def measures(w: Workload) -> list[str]:
    return live_measures(w.clients)


def ratios(results: dict[str, Any], w: Workload) -> dict[str, dict[str, float]]:
    """Per workload, both in modelreg's favour above 1: rate ratio (modelreg / MLflow calls/s)
    and p50 ratio (MLflow p50 / modelreg p50)."""
    if "mlflow" not in results:
        return {}
    m, r = results["mlflow"], results["modelreg"]
    return {
        name: {
            "rate": r[name]["per_second"] / m[name]["per_second"],
            "p50": m[name]["p50_ms"] / r[name]["p50_ms"],
        }
        for name in measures(w)
    }


def report(results: dict[str, Any], w: Workload, console: Console) -> None:
    meta = results["meta"]
    m, r = results.get("mlflow"), results["modelreg"]
    floors = (
        f"MLflow GET /health p50 {m['floor_health_get']['p50_ms']:.2f} ms" if m else "MLflow not run"
    ) + f", modelreg gRPC health Check p50 {r['floor_health_check']['p50_ms']:.2f} ms"
    table = Table(
        title=f"bench-peer: {MLFLOW_PIN} server (--workers 1) vs modelreg, {w.models} models x "
        f"{w.versions_per_model} versions",
        caption=(
            f"{meta['date']}; {meta['cpu_model']}, {meta['cores']} cores, {meta['ram_gib']} GiB RAM, "
            f"kernel {meta['kernel']}; 1-min load average at the start and end of each side: "
            f"{load_text(meta['load_average_1min_at_start_and_end'])}\nfloors: {floors}; "
            "ratios favour modelreg above 1 (rate: modelreg/MLflow, p50: MLflow/modelreg)"
        ),
    )
    for column in (
        "workload",
        "n",
        "MLflow p50 ms",
        "MLflow rate",
        "modelreg p50 ms",
        "modelreg rate",
        "rate ratio",
        "p50 ratio",
    ):
        table.add_column(column, justify="left" if column == "workload" else "right")
    ratio = results["ratios"]
    for name in measures(w):
        table.add_row(
            name,
            str(r[name]["n"]),
            f"{m[name]['p50_ms']:.2f}" if m else "not run",
            f"{m[name]['per_second']:,.0f}/s" if m else "not run",
            f"{r[name]['p50_ms']:.2f}",
            f"{r[name]['per_second']:,.0f}/s",
            f"{ratio[name]['rate']:.2f}x" if ratio else "",
            f"{ratio[name]['p50']:.2f}x" if ratio else "",
        )
    console.print(table)
    mlflow_writes = m[f"W2_create_version_{w.clients}c"]["per_second"] if m else None
    report_cpu_and_targets(r, console, mlflow_writes)


def load_text(load: dict[str, list[float]]) -> str:
    return ", ".join(f"{side} {start} -> {end}" for side, (start, end) in load.items())


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def workload_from(args: argparse.Namespace) -> Workload:
    return Workload(**{name: getattr(args, name) for name in COUNTS})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = asdict(Workload())
    env = {"models": "MODELREG_BENCH_PEER_MODELS", "versions_per_model": "MODELREG_BENCH_PEER_VERSIONS"}
    for name in COUNTS:
        default = int(os.environ.get(env.get(name, ""), defaults[name]))
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    parser.add_argument("--sides", choices=("both", "modelreg"), default="both")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    w = workload_from(args)
    console = Console(width=max(Console().width, 130))
    results: dict[str, Any] = {}
    # The two sides run one after the other; on a shared machine the load may differ.
    load: dict[str, list[float]] = {}
    for side, run_side in (("mlflow", run_mlflow), ("modelreg", run_modelreg)):
        if side == "mlflow" and args.sides == "modelreg":
            continue
        start = load_average()
        results[side] = run_side(w, console)
        load[side] = [start, load_average()]
    results["ratios"] = ratios(results, w)
    results["meta"] = common.meta(
        workload={name: value for name, value in asdict(w).items() if name in COUNTS},
        mlflow=MLFLOW_PIN if args.sides == "both" else "not run",
        load_average_1min_at_start_and_end=load,
    )
    common.write_results(results, args.out)
    report(results, w, console)
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
