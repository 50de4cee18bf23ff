"""The internal -> public mapping: every public type has a checked-in, versioned schema,
and the events the table makes validate against them (the integration test checks the
ones a real workload publishes)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from modelreg.events.adapters.codec import dataschema
from modelreg.events.domain.public import RULES, Internal, ce_type, public_events, public_types

SCHEMAS = Path(__file__).resolve().parents[2] / "services" / "modelreg" / "events" / "schemas"
MODEL = "namespaces/ns/models/m"
TR = f"{MODEL}/transitionRequests/t1"


def schema_of(short: str) -> dict[str, object]:
    return dict(json.loads((SCHEMAS / f"{short}.v1.json").read_text()))


def test_every_public_type_has_exactly_one_checked_in_schema() -> None:
    files = sorted(p.name for p in SCHEMAS.glob("*.json"))
    assert files == sorted(f"{t}.v1.json" for t in public_types())
    for short in public_types():
        schema = schema_of(short)
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$id"] == dataschema(ce_type(short)) and schema["title"] == ce_type(short)


CASES: dict[str, dict[str, object]] = {
    "transition_approved": {"name": TR, "approval": {"approver": "bob", "comment": "ok"}},
    "transition_cancelled": {"name": TR, "comment": "changed my mind"},
    "model_version_finalized": {"name": f"{MODEL}/versions/3"},
    "lineage_record_superseded": {"superseded_record": "r1", "record": {"name": "r2"}, "reason": "typo"},
    "registered_model_deleted": {"name": MODEL, "reason": "gone"},
    "deployment_reported": {
        "report": {
            "model": MODEL,
            "environment": "prod",
            "revision": "3",
            "state": "STATE_FAILED",
            "detail": "x",
        }
    },
}


@pytest.mark.parametrize("field", sorted(CASES))
def test_a_mapped_event_validates_and_keeps_the_internal_id(field: str) -> None:
    [event] = public_events(Internal("0190-id", MODEL, "alice", field, CASES[field]))
    assert event.id == "0190-id" and event.subject == MODEL
    jsonschema.validate(event.data, schema_of(event.type))


def test_an_applied_transition_also_publishes_each_stage_alias_and_split_it_moved() -> None:
    payload = {
        "transition_request": {"name": TR, "rollback": True, "rollback_reason": "slow"},
        "moved": [
            {"model": MODEL, "pointer": "PRODUCTION", "version": "5", "previous": "7"},
            {"model": MODEL, "pointer": "champion", "version": "5"},
        ],
        "removed": [{"model": MODEL, "pointer": "STAGING", "previous": "5"}],
        "deployments": [
            {
                "environment": "prod",
                "weights": [{"version": "5", "percent": 100}],
                "serving_code": {"image": "reg/serve@sha256:" + "1" * 64},
                "runtime_config": '{"batch_size":8}',
                "revision": "4",
                "restored_revision": "2",
            }
        ],
        "archived": ["7"],
    }
    events = public_events(Internal("e1", MODEL, "alice", "transition_applied", payload))
    assert [(e.id, e.type) for e in events] == [
        ("e1", "rollback.applied"),
        ("e1/stage.moved/PRODUCTION", "stage.moved"),
        ("e1/alias.moved/champion", "alias.moved"),
        ("e1/stage.moved/STAGING", "stage.moved"),
        ("e1/traffic_split.changed/prod", "traffic_split.changed"),
        ("e1/deployment.revised/prod", "deployment.revised"),
    ]
    assert (events[5].data["revision"], events[5].data["restored_revision"]) == (4, 2)
    assert events[5].data["serving_code"] == {"image": "reg/serve@sha256:" + "1" * 64}
    assert events[3].data["version"] == 0 and events[3].data["previous"] == 5
    assert events[4].data["weights"] == [{"version": 5, "percent": 100}]
    for event in events:
        jsonschema.validate(event.data, schema_of(event.type))


def test_internal_only_events_are_not_published() -> None:
    for field in (
        "namespace_created",
        "role_granted",
        "access_refused",
        "promotion_policy_set",
        "degradation_thresholds_set",
    ):
        assert field not in RULES
        assert public_events(Internal("e", MODEL, "a", field, {})) == []


def test_an_evaluation_that_crossed_a_threshold_also_publishes_version_degraded() -> None:
    version = f"{MODEL}/versions/3"
    payload = {
        "evaluation": {
            "model_version": version,
            "kind": "KIND_PRODUCTION",
            "metrics": {"auc": 0.8, "latency_ms": 70.0},
            "evaluate_time": "2026-12-01T00:00:00Z",
            "window": {
                "environment": "prod",
                "start_time": "2026-11-30T00:00:00Z",
                "end_time": "2026-12-01T00:00:00Z",
            },
        },
        "judged": ["auc", "latency_ms"],
        "breaching": ["auc", "latency_ms"],
        "degraded": [
            {"model_version": version, "metric": "auc", "value": 0.8,
             "threshold": {"metric": "auc", "comparison": "COMPARISON_GREATER_OR_EQUAL", "threshold": 0.85}},
            {"model_version": version, "metric": "latency_ms", "value": 70.0,
             "threshold": {"metric": "latency_ms", "comparison": "COMPARISON_LESS", "threshold": 50.0}},
        ],
    }  # fmt: skip
    events = public_events(Internal("e9", MODEL, "monitor", "evaluation_recorded", payload))
    assert [(e.id, e.type) for e in events] == [
        ("e9", "evaluation.recorded"),
        ("e9/version.degraded/auc", "version.degraded"),
        ("e9/version.degraded/latency_ms", "version.degraded"),
    ]
    assert events[0].data["degraded"] == ["auc", "latency_ms"] and events[0].data["kind"] == "PRODUCTION"
    assert (events[1].data["comparison"], events[1].data["threshold"]) == ("GREATER_OR_EQUAL", 0.85)
    assert events[1].data["evaluation"] == f"{version}/evaluations/e9"
    for event in events:
        jsonschema.validate(event.data, schema_of(event.type))
