"""The example CD controller's rules, without a server: which rollouts an applied transition
asks for, and which version a split serves (the e2e test runs the whole controller)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

PATH = Path(__file__).resolve().parents[2] / "examples" / "cd_controller.py"


@pytest.fixture(scope="module")
def cd() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cd_controller", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cd_controller"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


M = "namespaces/ns/models/m"


def test_the_served_version_has_the_most_traffic_and_the_higher_number_on_a_tie(cd: ModuleType) -> None:
    assert cd.served_version([(1, 90), (2, 10)]) == 1
    assert cd.served_version([(1, 50), (2, 50)]) == 2
    assert cd.served_version([]) == 0


def test_a_revised_environment_wins_over_the_stage_mapped_to_it(cd: ModuleType) -> None:
    data = {
        "model": M,
        "moved": [
            {"pointer": "PRODUCTION", "version": "2", "previous": "1"},
            {"pointer": "champion", "version": "2"},
        ],
        "deployments": [
            {"environment": "prod", "revision": "4", "weights": [{"version": "2", "percent": 100}]}
        ],
    }
    targets = cd.plan_of_cloudevent(data, frozenset({"prod"}), {"PRODUCTION": "prod"})
    assert targets == [cd.Target(M, "prod", 2, 4)]


def test_a_stage_alone_deploys_its_version_and_a_cleared_one_undeploys(cd: ModuleType) -> None:
    stages = cd.parse_stages(["PRODUCTION", "STAGING=qa"])
    assert stages == {"PRODUCTION": "production", "STAGING": "qa"}
    data = {
        "model": M,
        "moved": [{"pointer": "STAGING", "version": "3"}],
        "removed": [{"pointer": "PRODUCTION"}],
    }
    assert cd.plan_of_cloudevent(data, frozenset(), stages) == [
        cd.Target(M, "qa", 3, 0),
        cd.Target(M, "production", 0, 0),
    ]
    assert cd.parse_stages(["none"]) == {}


def test_environments_not_followed_are_left_alone(cd: ModuleType) -> None:
    data = {
        "model": M,
        "deployments": [
            {"environment": "prod", "revision": "2", "weights": [{"version": "1", "percent": 100}]},
            {"environment": "canary", "revision": "7", "weights": []},
        ],
    }
    assert cd.plan_of_cloudevent(data, frozenset({"canary"}), {}) == [cd.Target(M, "canary", 0, 7)]
    assert len(cd.plan_of_cloudevent(data, frozenset(), {})) == 2  # none named: every one
