"""Imported by replay_main_probe: records the pid of each process that imports it, standing
for a main module's costly imports (test_replay_workers)."""

import os

with open(os.environ["MODELREG_IMPORT_MARKER"], "a", encoding="utf-8") as marker:
    marker.write(f"{os.getpid()}\n")
