"""The benches' CPU readings: a process that ran for less than one /proc clock tick (10 ms)
still reads as having run. test_bench_smoke once saw PostgreSQL at 0.0 ms for 20 creates
spread over its pooled backends."""

import subprocess
import sys

from bench.common import tree_cpu_seconds

# Spins for 3 ms of CPU each time it reads a line.
SPIN_ON_EACH_LINE = (
    "import sys, time\n"
    "for _ in sys.stdin:\n"
    "    end = time.process_time() + 0.003\n"
    "    while time.process_time() < end: pass\n"
    "    print('spun', flush=True)\n"
)


def test_a_spin_under_one_tick_reads_as_its_own_length() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", SPIN_ON_EACH_LINE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    stdin, stdout = child.stdin, child.stdout
    assert stdin is not None and stdout is not None

    def spin() -> None:
        stdin.write("go\n")
        stdin.flush()
        assert stdout.readline() == "spun\n"

    def cpu_seconds() -> float:
        (seconds,) = tree_cpu_seconds({"child": child.pid})["child"].values()
        return seconds

    try:
        spin()  # the interpreter's start-up is behind us
        before = cpu_seconds()
        spin()
        spent = cpu_seconds() - before
        # Tick-rounded, this reads 0 or 10 ms.
        assert 0.0029 < spent < 0.009, spent
    finally:
        child.communicate("", timeout=10)
