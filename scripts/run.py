"""The fresh-machine entry point: needs only Python 3.11+.

    python3 scripts/run.py dev    # install if needed, then start the whole registry
    python3 scripts/run.py test   # install if needed, then run the test suite
    python3 scripts/run.py lint | typecheck | gen | bench | bench-audit | bench-mlflow | bench-peer | soak

It creates .venv beside the checkout and installs the project (with its test
tools) into it; later runs reinstall only when pyproject.toml changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("MODELREG_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".modelreg-installed"


def ensure_installed() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs on the system Python
        sys.exit(f"modelreg needs Python 3.11 or newer, this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating {VENV}", flush=True)
        try:
            venv.create(VENV, with_pip=True)
        except Exception as exc:  # e.g. Debian without python3-venv
            sys.exit(f"could not create a virtualenv ({exc}); on Debian/Ubuntu: apt-get install python3-venv")
    wanted = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + (ROOT / "constraints.txt").read_bytes()
    ).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    print("installing modelreg and its tools into .venv (first run only)", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    # constraints.txt pins the versions the suite last passed with (make lock refreshes it).
    subprocess.run([*pip, "-c", str(ROOT / "constraints.txt"), "-e", f"{ROOT}[dev]"], check=True, cwd=ROOT)
    STAMP.write_text(wanted)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    command, args = sys.argv[1], sys.argv[2:]
    ensure_installed()
    os.chdir(ROOT)
    argv = [str(a) for a in COMMANDS[command]] + args
    if command == "lint":
        for step in LINT_STEPS:
            if subprocess.run([str(a) for a in step]).returncode != 0:
                sys.exit(f"lint failed: {' '.join(str(a) for a in step)}")
        return
    os.execv(argv[0], argv)


COMMANDS: dict[str, list[object]] = {
    "dev": [BIN / "modelreg", "dev"],
    "test": [PYTHON, "-m", "pytest"],
    "gen": [PYTHON, "scripts/genproto.py"],
    "bench": [PYTHON, "-m", "bench.run"],
    # Audit export and verify rates at 100k events (bench/audit.py).
    "bench-audit": [PYTHON, "-m", "bench.audit"],
    # MLflow's server and the gateway under one MlflowClient workload (bench/mlflow_side_by_side.py).
    "bench-mlflow": [PYTHON, "-m", "bench.mlflow_side_by_side"],
    # bench.run's workload through MlflowClient against MLflow's server, then against modelreg
    # over gRPC, with the ratio per workload (bench/peer.py).
    "bench-peer": [PYTHON, "-m", "bench.peer"],
    # The fault suite's workload for MODELREG_SOAK_MINUTES (default 30): latency, RSS slope, errors.
    "soak": [PYTHON, "-m", "bench.soak"],
    # mypy over libs, services, tests and bench ([tool.mypy] in pyproject.toml).
    "typecheck": [BIN / "mypy"],
    "lint": [],
}
LINT_STEPS: list[list[object]] = [
    [BIN / "buf", "lint"],
    # Published events and APIs only evolve compatibly; the baseline moves on release.
    [BIN / "buf", "breaking", "--against", "protos/api-baseline.binpb"],
    [PYTHON, "scripts/genproto.py", "--check"],
    [BIN / "ruff", "check", "."],
    [BIN / "ruff", "format", "--check", "."],
    [BIN / "lint-imports"],
    # The ports (typing.Protocol) are contracts only if a type checker holds the adapters to them.
    [BIN / "mypy"],
]

if __name__ == "__main__":
    main()
