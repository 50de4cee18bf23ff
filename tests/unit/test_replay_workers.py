"""rebuild_all's worker processes do not import again what the main module imports.

multiprocessing runs the main module again in every worker (as __mp_main__). Before the
fork server preloaded it by name, each of `python -m bench.replay`'s three workers imported
all of bench.run, ~0.8 s of CPU per rebuild, 8 us an event of a 100k-event replay."""

import os
import subprocess
import sys
from pathlib import Path

from modelreg.projections.shadow import WORKERS_FROM, workers_for

ROOT = Path(__file__).resolve().parents[2]


def test_workers_find_the_main_modules_imports_already_made(tmp_path: Path) -> None:
    marker = tmp_path / "imported-by"
    done = subprocess.run(
        [sys.executable, "-m", "tests.unit.replay_main_probe"],
        cwd=ROOT,
        env={**os.environ, "MODELREG_IMPORT_MARKER": str(marker)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    # Nor does each worker warn, as runpy does of a main module it runs again once imported.
    assert "RuntimeWarning" not in done.stderr, done.stderr
    workers = {int(pid) for pid in done.stdout.split()}
    importers = {int(pid) for pid in marker.read_text().split()}
    assert workers and not workers & importers, (workers, importers)
    # The probe itself and the fork server, once each.
    assert len(importers) == 2, importers


def test_a_build_folds_in_a_worker_per_partition_only_once_the_log_is_large() -> None:
    small = {("t", 0): 10, ("t", 1): 10, ("u", 0): 5}
    assert workers_for(small) == 1
    large = {("t", 0): WORKERS_FROM, ("t", 1): 0, ("t", 2): 7, ("u", 0): 1}
    assert workers_for(large) == 3
    assert workers_for(small, 4) == 4
    assert workers_for(large, 1) == 1
