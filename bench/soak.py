"""The soak run (issue 13): the fault suite's workload, without faults, at a steady rate for a
long time, on a private stack of real processes (tests/faults/harness.py).

    make soak                                   # 30 minutes
    MODELREG_SOAK_MINUTES=3 make soak           # a short proof run

Reports, per minute: operations, latency p50/p95/p99 (ms) and errors by status; per process:
RSS sampled every MODELREG_SOAK_SAMPLE_S seconds and its least-squares slope after a warm-up
(a third of the run, at most 5 minutes), which must stay under MODELREG_SOAK_RSS_SLOPE_MB_PER_MIN
(default 1.0 MB/min, i.e. 60 MB an hour: a leak of a few KB per request breaks it). At the end
the fault suite's invariants: nothing lost, nothing doubled, read models equal a clean replay.
Writes bench/out/soak-<time>.json; exits 1 if a bound or an invariant fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from bench.common import percentiles
from tests.faults.harness import Ledger, Stack, check, running_stack, workload_running

OUT = Path(__file__).parent / "out"


@dataclass(frozen=True)
class Options:
    minutes: float
    rate: float
    """Operations per second the workers aim at, together."""
    workers: int
    sample_s: float
    slope_bound_mb_per_min: float

    @classmethod
    def from_env(cls) -> Options:
        env = os.environ
        return cls(
            minutes=float(env.get("MODELREG_SOAK_MINUTES", "30")),
            rate=float(env.get("MODELREG_SOAK_RATE", "8")),
            workers=int(env.get("MODELREG_SOAK_WORKERS", "4")),
            sample_s=float(env.get("MODELREG_SOAK_SAMPLE_S", "10")),
            slope_bound_mb_per_min=float(env.get("MODELREG_SOAK_RSS_SLOPE_MB_PER_MIN", "1.0")),
        )


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per minute."""
    n = len(samples)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    if not spread:
        return 0.0
    return sum((t - mean_t) * (m - mean_m) for t, m in samples) / spread * 60


def rss_mb(pid: int) -> float | None:
    try:
        return psutil.Process(pid).memory_info().rss / 1e6
    except psutil.Error:
        return None


@dataclass
class SoakResult:
    minutes: float
    rate_target: float
    operations: int
    acknowledged: int
    retries: int
    errors: dict[str, int]
    stale_reads: int
    lost: int
    duplicated: int
    replay_mismatches: list[str]
    per_minute: list[dict[str, object]]
    rss: dict[str, dict[str, float]]
    rss_slope_bound_mb_per_min: float
    rss_warm_up_s: float

    def report(self) -> list[str]:
        lines = ["minute  ops   p50ms   p95ms   p99ms  errors"]
        for m in self.per_minute:
            lines.append(
                f"{m['minute']:>6} {m['operations']:>4} {m['p50_ms']:>7} {m['p95_ms']:>7} {m['p99_ms']:>7}"
                f"  {m['errors'] or '-'}"
            )
        lines.append(
            f"RSS (slope after {self.rss_warm_up_s:.0f}s warm-up;"
            f" bound {self.rss_slope_bound_mb_per_min} MB/min):"
        )
        for name, r in self.rss.items():
            lines.append(
                f"  {name:<18} {r['start_mb']:>7} -> {r['end_mb']:>7} MB"
                f"  slope {r['slope_mb_per_min']:+.3f} MB/min"
            )
        lines.append(
            f"soak: operations={self.operations} acknowledged={self.acknowledged} retries={self.retries}"
            f" errors={self.errors or 0} stale={self.stale_reads} lost={self.lost}"
            f" duplicated={self.duplicated} replay_mismatches={len(self.replay_mismatches)}"
        )
        return lines

    def failures(self) -> list[str]:
        bound = self.rss_slope_bound_mb_per_min
        found = [
            f"{name} RSS grows {r['slope_mb_per_min']} MB/min (bound {bound})"
            for name, r in self.rss.items()
            if r["slope_mb_per_min"] > bound
        ]
        found += [f"{key}: {n}" for key, n in [("lost", self.lost), ("duplicated", self.duplicated)] if n]
        if self.stale_reads:
            found.append(f"stale reads: {self.stale_reads}")
        if self.replay_mismatches:
            found.append(f"replay mismatches: {self.replay_mismatches}")
        return found


async def soak(stack: Stack, options: Options) -> SoakResult:
    ledger = Ledger()
    started = time.time()
    duration = options.minutes * 60
    pids = {**stack.pids(), "tansu": stack.broker.process.pid}
    rss: dict[str, list[tuple[float, float]]] = defaultdict(list)
    errors_by_minute: dict[int, Counter[str]] = defaultdict(Counter)
    seen_errors: Counter[str] = Counter()
    async with workload_running(
        stack.endpoints, ledger, workers=options.workers, pause_s=options.workers / options.rate
    ):
        while (now := time.time()) - started < duration:
            for name, pid in pids.items():
                if (mb := rss_mb(pid)) is not None:
                    rss[name].append((now - started, mb))
            minute = int((now - started) // 60)
            errors_by_minute[minute].update(ledger.errors - seen_errors)
            seen_errors = Counter(ledger.errors)
            await asyncio.sleep(min(options.sample_s, max(0.1, duration - (now - started))))
    by_minute: dict[int, list[float]] = defaultdict(list)
    for at, _, seconds in ledger.latencies:
        by_minute[int((at - started) // 60)].append(seconds)
    minutes: list[dict[str, object]] = [
        {
            "minute": m,
            "operations": len(values),
            **{k: round(v, 1) for k, v in percentiles(values).items() if k != "n"},
            "errors": dict(errors_by_minute.get(m, {})),
        }
        for m, values in sorted(by_minute.items())
        if values
    ]
    warm_up = min(300.0, duration / 3)
    memory = {
        name: {
            "start_mb": round(samples[0][1], 1),
            "end_mb": round(samples[-1][1], 1),
            "slope_mb_per_min": round(slope_per_minute([s for s in samples if s[0] >= warm_up]), 3),
        }
        for name, samples in rss.items()
        if samples
    }
    verdict = await check(stack, ledger)
    return SoakResult(
        minutes=options.minutes,
        rate_target=options.rate,
        operations=ledger.operations,
        acknowledged=len(ledger.acknowledged),
        retries=ledger.retries,
        errors=dict(ledger.errors),
        stale_reads=len(ledger.stale_reads),
        lost=len(verdict.lost),
        duplicated=len(verdict.duplicated),
        replay_mismatches=verdict.digest_mismatches,
        per_minute=minutes,
        rss=memory,
        rss_slope_bound_mb_per_min=options.slope_bound_mb_per_min,
        rss_warm_up_s=warm_up,
    )


def main() -> None:
    options = Options.from_env()
    print(f"soak: {options.minutes:g} min at {options.rate:g} ops/s, {options.workers} workers", flush=True)
    with running_stack() as stack:
        result = asyncio.run(soak(stack, options))
    OUT.mkdir(exist_ok=True)
    path = OUT / f"soak-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(asdict(result), indent=2))
    for line in result.report():
        print(line)
    print(f"written to {path}")
    problems = result.failures()
    for problem in problems:
        print(f"FAIL: {problem}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
