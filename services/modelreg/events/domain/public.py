"""Internal events -> public events: the one table of what a CD system gets to see.

Pure: an internal payload arrives as its proto3 JSON mapping (a dict, field names as in
the .proto), and each rule turns it into zero or more public events. One internal event
gives one public event whose id is the internal event id (consumers deduplicate on it);
a transition that was applied also gives one event per moved stage or alias and per
changed traffic split, each with the id `{event id}/{type}/{what}`, deterministic too.

A new internal event type is one more entry in RULES (and a JSON Schema in
schemas/events/ for each new public type; a test checks every type has one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TYPE_PREFIX = "io.modelreg."
SCHEMA_VERSION = "v1"
STAGES = frozenset({"STAGING", "PRODUCTION", "ARCHIVED"})
"""Pointers that are stages; every other pointer is an alias."""

Data = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Internal:
    """What a rule reads of one accepted internal event."""

    event_id: str
    stream: str
    """The model resource name `namespaces/{ns}/models/{m}` (every mapped event's stream)."""
    actor: str
    payload_field: str
    payload: Mapping[str, Any]
    """The payload in proto3 JSON (preserving field names; int64 as strings)."""


@dataclass(frozen=True, slots=True)
class PublicEvent:
    id: str
    type: str
    """Short type, e.g. `model.created`; the CloudEvents type is TYPE_PREFIX + type + `.v1`."""
    subject: str
    data: Data = field(default_factory=dict)

    @property
    def ce_type(self) -> str:
        return ce_type(self.type)


def ce_type(short: str) -> str:
    return f"{TYPE_PREFIX}{short}.{SCHEMA_VERSION}"


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _version_of(name: object) -> int:
    """`namespaces/ns/models/m/versions/3` -> 3."""
    text = str(name or "")
    head, _, tail = text.rpartition("/versions/")
    return _int(tail) if head else 0


def _base(event: Internal) -> Data:
    return {"model": event.stream, "actor": event.actor}


def _copy(*names: str) -> Callable[[Internal], Data]:
    def extract(event: Internal) -> Data:
        data = _base(event)
        for name in names:
            if name in event.payload:
                data[name] = event.payload[name]
        return data

    return extract


def _model_version(event: Internal) -> Data:
    data = _copy("model_version", "update_mask")(event)
    version = event.payload.get("model_version", {})
    data["version_name"] = str(version.get("name", ""))
    data["version"] = _int(version.get("version", 0)) or _version_of(version.get("name"))
    return data


def _version_named(event: Internal) -> Data:
    data = _base(event)
    data["version_name"] = str(event.payload.get("name", ""))
    data["version"] = _version_of(event.payload.get("name"))
    if event.payload.get("reason"):
        data["reason"] = event.payload["reason"]
    return data


def _reason(event: Internal) -> Data:
    data = _base(event)
    if event.payload.get("reason"):
        data["reason"] = event.payload["reason"]
    return data


def _transition_of(event: Internal) -> Data:
    """Requested and applied carry the request; approved, rejected, cancelled its name."""
    data = _base(event)
    request = event.payload.get("transition_request")
    if request is not None:
        data["transition_request"] = str(request.get("name", ""))
        data["transition"] = request
    else:
        data["transition_request"] = str(event.payload.get("name", ""))
    for name in ("comment", "approval", "required_checks"):
        if name in event.payload:
            data[name] = event.payload[name]
    return data


def _applied(event: Internal) -> Data:
    data = _transition_of(event)
    for name in ("moved", "removed", "deployments", "superseded"):
        if name in event.payload:
            data[name] = event.payload[name]
    for name in ("archived", "unarchived"):
        if name in event.payload:
            data[name] = [_int(v) for v in event.payload[name]]
    return data


def _applied_type(event: Internal) -> str:
    request = event.payload.get("transition_request", {})
    return "rollback.applied" if request.get("rollback") else "transition.applied"


def _derived_of_applied(event: Internal) -> list[PublicEvent]:
    """One event per stage or alias moved or removed, and per environment changed: its traffic split
    and its whole new deployment revision (split, serving code, runtime config)."""
    request = str(event.payload.get("transition_request", {}).get("name", ""))
    derived = []
    moves = [(m, _int(m.get("version", 0))) for m in event.payload.get("moved", [])]
    moves += [(m, 0) for m in event.payload.get("removed", [])]
    for move, version in moves:
        pointer = str(move.get("pointer", ""))
        kind = "stage.moved" if pointer in STAGES else "alias.moved"
        data = _base(event) | {
            "pointer": pointer,
            "version": version,
            "previous": _int(move.get("previous", 0)),
            "transition_request": request,
        }
        derived.append(PublicEvent(f"{event.event_id}/{kind}/{pointer}", kind, event.stream, data))
    for deployment in event.payload.get("deployments", []):
        environment = str(deployment.get("environment", ""))
        weights = [
            {"version": _int(w.get("version", 0)), "percent": int(w.get("percent", 0))}
            for w in deployment.get("weights", [])
        ]
        data = _base(event) | {
            "environment": environment,
            "weights": weights,
            "transition_request": request,
        }
        kind = "traffic_split.changed"
        derived.append(PublicEvent(f"{event.event_id}/{kind}/{environment}", kind, event.stream, data))
        revised = data | {
            "revision": _int(deployment.get("revision", 0)),
            "restored_revision": _int(deployment.get("restored_revision", 0)),
            "serving_code": dict(deployment.get("serving_code", {})),
            "runtime_config": str(deployment.get("runtime_config", "")),
            "config_schema": str(deployment.get("config_schema", "")),
        }
        kind = "deployment.revised"
        derived.append(PublicEvent(f"{event.event_id}/{kind}/{environment}", kind, event.stream, revised))
    return derived


def _report(event: Internal) -> Data:
    report = event.payload.get("report", {})
    data = _base(event) | {
        "environment": str(report.get("environment", "")),
        "revision": _int(report.get("revision", 0)),
        "version": _int(report.get("version", 0)),
        "state": str(report.get("state", "")).removeprefix("STATE_"),
    }
    if report.get("detail"):
        data["detail"] = report["detail"]
    return data


def _evaluation(event: Internal) -> Data:
    evaluation = dict(event.payload.get("evaluation", {}))
    version = str(evaluation.get("model_version", ""))
    data = _base(event) | {
        "evaluation": f"{version}/evaluations/{event.event_id}",
        "version_name": version,
        "version": _version_of(version),
        "kind": str(evaluation.get("kind", "")).removeprefix("KIND_"),
        "metrics": {str(k): float(v) for k, v in dict(evaluation.get("metrics", {})).items()},
        "evaluate_time": str(evaluation.get("evaluate_time", "")),
        "degraded": [str(d.get("metric", "")) for d in event.payload.get("degraded", [])],
    }
    for name in ("dataset", "window", "tool", "run"):
        if name in evaluation:
            data[name] = evaluation[name]
    return data


def _derived_of_evaluation(event: Internal) -> list[PublicEvent]:
    """One `version.degraded` per degradation threshold the evaluation crossed."""
    version = str(dict(event.payload.get("evaluation", {})).get("model_version", ""))
    derived = []
    for crossing in event.payload.get("degraded", []):
        metric = str(crossing.get("metric", ""))
        threshold = dict(crossing.get("threshold", {}))
        data = _base(event) | {
            "version_name": version,
            "version": _version_of(version),
            "metric": metric,
            "value": float(crossing.get("value", 0.0)),
            "comparison": str(threshold.get("comparison", "")).removeprefix("COMPARISON_"),
            "threshold": float(threshold.get("threshold", 0.0)),
            "evaluation": f"{version}/evaluations/{event.event_id}",
        }
        kind = "version.degraded"
        derived.append(PublicEvent(f"{event.event_id}/{kind}/{metric}", kind, event.stream, data))
    return derived


@dataclass(frozen=True, slots=True)
class Rule:
    type: str | Callable[[Internal], str]
    extract: Callable[[Internal], Data]
    derive: Callable[[Internal], list[PublicEvent]] | None = None


RULES: Mapping[str, Rule] = {
    # catalog
    "registered_model_created": Rule("model.created", _copy("registered_model")),
    "registered_model_updated": Rule("model.updated", _copy("registered_model", "update_mask")),
    "registered_model_archived": Rule("model.archived", _base),
    "registered_model_restored": Rule("model.restored", _base),
    "registered_model_deleted": Rule("model.deleted", _reason),
    # versioning
    "model_version_created": Rule("version.created", _model_version),
    "model_version_finalized": Rule("version.ready", _version_named),
    "model_version_updated": Rule("version.updated", _model_version),
    "model_version_deprecated": Rule("version.deprecated", _version_named),
    "model_version_deleted": Rule("version.deleted", _version_named),
    # lineage
    "lineage_recorded": Rule("lineage.recorded", _copy("record")),
    "lineage_record_superseded": Rule("lineage.superseded", _copy("record", "superseded_record", "reason")),
    "evaluation_recorded": Rule("evaluation.recorded", _evaluation, _derived_of_evaluation),
    # promotion
    "transition_requested": Rule("transition.requested", _transition_of),
    "transition_approved": Rule("transition.approved", _transition_of),
    "transition_rejected": Rule("transition.rejected", _transition_of),
    "transition_cancelled": Rule("transition.cancelled", _transition_of),
    "transition_applied": Rule(_applied_type, _applied, _derived_of_applied),
    "deployment_reported": Rule("deployment.reported", _report),
}
"""Internal payload field (the envelope's oneof) -> rule. Fields not listed (namespaces,
grants, manifests, retention and promotion policies, denials, checkpoints) stay internal."""

DERIVED_TYPES = (
    "stage.moved",
    "alias.moved",
    "traffic_split.changed",
    "deployment.revised",
    "version.degraded",
)
CHOSEN_TYPES = ("transition.applied", "rollback.applied")
"""The types a rule with a chosen type (transition_applied) picks from."""


def public_types() -> Sequence[str]:
    """Every public type the relay can publish, short names."""
    types = [r.type for r in RULES.values() if isinstance(r.type, str)]
    return sorted({*types, *CHOSEN_TYPES, *DERIVED_TYPES})


def public_events(event: Internal) -> list[PublicEvent]:
    """The public events of one accepted internal event, in the order they are published."""
    rule = RULES.get(event.payload_field)
    if rule is None:
        return []
    kind = rule.type if isinstance(rule.type, str) else rule.type(event)
    events = [PublicEvent(event.event_id, kind, event.stream, rule.extract(event))]
    if rule.derive is not None:
        events += rule.derive(event)
    return events
