"""Run as `python -m tests.unit.replay_main_probe`: a main module with an import to watch
(replay_main_marker) that starts three of rebuild_all's workers and prints their pids."""

import os
from concurrent.futures import ProcessPoolExecutor

import tests.unit.replay_main_marker  # noqa: F401  (the import to watch)
from modelreg.projections.replay import _worker_context


def worker_pid(_: int) -> int:
    return os.getpid()


if __name__ == "__main__":
    with ProcessPoolExecutor(3, mp_context=_worker_context([])) as pool:
        print(" ".join(str(pid) for pid in sorted(set(pool.map(worker_pid, range(30))))))
