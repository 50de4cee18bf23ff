"""The README's quickstart: `modelreg dev`, then `modelreg demo`, in under a minute."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from modelreg.devstack.ports import free_port
from tests.e2e.test_dev_stack import start_dev, stop_dev


def test_demo_runs_against_modelreg_dev(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    process = start_dev(home, port)
    try:
        started = time.monotonic()
        env = {**os.environ, "MODELREG_HOME": str(home), "COLUMNS": "160"}
        for key in [k for k in env if k.endswith("_ADDR") and k.startswith("MODELREG_")]:
            del env[key]  # the demo must find the services through what `modelreg dev` wrote
        demo = subprocess.run(
            [sys.executable, "-m", "modelreg.cli.main", "demo", "--model", "churn"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        elapsed = time.monotonic() - started
    finally:
        stop_dev(process, port)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    out = demo.stdout
    assert "version 1 = v1.0.0" in out and "version 2 = v1.1.0" in out
    assert "rolled PRODUCTION back to version 1" in out
    assert "rollback: latency regression" in out  # the history table
    assert "demo complete" in out
    assert elapsed < 60, f"the demo took {elapsed:.1f}s"
