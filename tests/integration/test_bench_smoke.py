"""The benchmark harness (`make bench`) with tiny counts, so it cannot silently rot.

It starts its own stack and services, as `make bench` does; only the shape of the
results is checked here, never the figures.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from bench import peer
from bench.run import Workload

ROOT = Path(__file__).resolve().parents[2]
SMALL = {
    "models": 4,
    "versions-per-model": 5,
    "alias-gets": 10,
    "gets": 10,
    "searches": 5,
    "listings": 5,
    "tag-sets": 5,
    "clients": 2,
    "replay-events": 300,
    "scale-versions": 100,
    "scale-versions-per-model": 10,
    "scale-creates": 6,
    "scale-create-models": 3,
    "scale-gets": 10,
    "floor-calls": 10,
    "history-versions": 50,
    "history-creates": 5,
    "audit-events": 300,
    "ui-versions": 20,
    "event-commands": 10,
}

# W1..W8, then W2/W4/W5 with SMALL's 2 clients.
LIVE_MEASURES = (
    "W1_create_model",
    "W2_create_version",
    "W3_set_alias",
    "W4_get_by_alias",
    "W5_get_by_number",
    "W6_search_tag",
    "W7_list_all_paged",
    "W8_set_tag",
    "W2_create_version_2c",
    "W4_get_by_alias_2c",
    "W5_get_by_number_2c",
)


def test_bench_runs_every_workload_and_reports_targets(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    args = [f"--{k}={v}" for k, v in SMALL.items()]
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", *args, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # every section starts its own services: over 4 minutes at load 13
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["ui"]["pages"]["model page"]["server"]["p50_ms"] > 0
    events = results["events"]
    assert events["to_public_topic"]["n"] == events["to_webhook"]["n"] == 10
    assert 0 < events["to_public_topic"]["p50_ms"] and 0 < events["to_webhook"]["p50_ms"]
    for name in ("floor_health_check", *LIVE_MEASURES):
        assert results[name]["p50_ms"] > 0, name
    assert results["W2_create_version"]["n"] == 20
    assert results["replay"]["events"] >= 300
    assert results["scale"]["versions"] == 100
    assert results["history"]["deep_versions_at_start"] == 50
    assert results["history"]["deep"]["n"] == 5
    assert results["audit"]["events"] >= 300 and results["audit"]["verify_events_per_second"] > 0
    assert results["scale"]["W2_create_version"]["n"] == 6
    assert results["scale"]["W5_get_by_number"]["n"] == results["scale"]["W5_get_by_number_2c"]["n"] == 10
    for when in ("at_start", "after_load"):
        assert results["scale"]["rss_mb"][when]["versioning"] > 10, when
    assert set(results["rss_idle_mb"]) == {"catalog", "versioning", "promotion"}
    assert_cpu_per_write(
        results["cpu_per_write"],
        writes={"W2_create_version": 20, "W2_create_version_2c": 20},
        idle=results["cpu_idle_ms_per_s"],
    )
    assert "CPU ms per acknowledged write" in done.stdout and "service RSS" in done.stdout
    assert_targets_printed(done.stdout)


def assert_cpu_per_write(
    cpu: dict[str, dict[str, float]], writes: dict[str, int], idle: dict[str, float]
) -> None:
    """Every process of the stack spent CPU on the writes, and the groups add up; idle, the
    stack spends some too (the projectors poll the broker)."""
    assert idle["seconds"] > 0 and idle["broker"] > 0 and idle["total"] > 0
    assert set(cpu) == set(writes)
    for run, figures in cpu.items():
        assert figures["writes"] == writes[run], run
        for group in ("catalog", "versioning", "promotion", "broker", "postgres", "bench client"):
            assert figures[group] >= 0, (run, group)
        # A create is decided by versioning, appended to the broker and folded into PostgreSQL.
        for group in ("versioning", "broker", "postgres", "bench client"):
            assert figures[group] > 0, (run, group)
        parts = sum(v for k, v in figures.items() if k not in ("services", "total", "writes"))
        assert abs(figures["total"] - parts) < 1e-6, run


def assert_targets_printed(stdout: str) -> None:
    """Issue 19's targets, each with a verdict (a section the run skipped says so)."""
    assert "gap to target" in stdout
    for target in (
        "versions/s",
        "W1_create_model p50 <= 4.5 ms",
        "W8_set_tag p50 <= 4.5 ms",
        "within 10% of the first",
        "clients >= 2,000/s",
        "W5_get_by_number p50 <= floor + 0.5 ms",
        "replay >= 50k events/s",
        "search p99 <= 20 ms",
    ):
        assert target in stdout, target
    verdicts = [
        line for line in stdout.splitlines() if re.search(r"│ (met|MISSED|n/a \(make [a-z-]+\)) +│$", line)
    ]
    assert len(verdicts) >= 12, verdicts


# The counts bench.peer takes (its workload is W1..W8 and the concurrent runs).
PEER_SMALL = {k: v for k, v in SMALL.items() if k.replace("-", "_") in peer.COUNTS}


def test_bench_peer_runs_modelreg_side_and_reports_ratios(tmp_path: Path) -> None:
    """`make bench-peer`'s modelreg half and its report, with tiny counts. Its MLflow half needs
    `.venv-bench-mlflow` (mlflow 3.17.2 from PyPI, made on first use), so it stays out of
    `make test`: `--sides modelreg` skips it and the MLflow columns say "not run"."""
    out = tmp_path / "peer.json"
    args = [f"--{k}={v}" for k, v in PEER_SMALL.items()]
    done = subprocess.run(
        [sys.executable, "-m", "bench.peer", "--sides", "modelreg", *args, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert "mlflow" not in results and results["ratios"] == {}
    modelreg = results["modelreg"]
    for name in LIVE_MEASURES:
        assert modelreg[name]["p50_ms"] > 0 and modelreg[name]["per_second"] > 0, name
    # bench.run's sections outside the peer workload are not run.
    assert not {"replay", "archive", "audit", "history", "ui", "events", "scale"} & set(modelreg)
    assert_cpu_per_write(
        modelreg["cpu_per_write"],
        writes={"W2_create_version": 20, "W2_create_version_2c": 20},
        idle=modelreg["cpu_idle_ms_per_s"],
    )
    meta = results["meta"]
    assert list(meta["load_average_1min_at_start_and_end"]) == ["modelreg"]
    assert meta["cores"] >= 1 and meta["ram_gib"] > 0 and meta["kernel"] and meta["cpu_model"]
    assert "not run" in done.stdout and "modelreg gRPC health Check p50" in done.stdout
    assert_targets_printed(done.stdout)

    # Both columns and the ratios, with modelreg's figures standing in for MLflow's: every
    # ratio is then exactly 1.
    w = Workload(**{k.replace("-", "_"): v for k, v in PEER_SMALL.items()})
    both = {**results, "mlflow": {**modelreg, "floor_health_get": modelreg["floor_health_check"]}}
    both["ratios"] = peer.ratios(both, w)
    assert list(both["ratios"]) == list(LIVE_MEASURES)
    assert all(r == {"rate": 1.0, "p50": 1.0} for r in both["ratios"].values())
    console = Console(record=True, width=200)
    peer.report(both, w, console)
    text = console.export_text()
    assert "1.00x" in text and "5x MLflow's" in text and "not run" not in text.split("CPU ms")[0]
