"""Prometheus metrics shared by the services: latency, projector lag, conflicts."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RPC_LATENCY = Histogram(
    "modelreg_rpc_duration_seconds",
    "Server-side RPC latency",
    ["method", "code"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RPC_ERRORS = Counter("modelreg_rpc_errors_total", "RPCs that ended in an error", ["method", "code"])
PROJECTOR_LAG = Gauge(
    "modelreg_projector_lag_records",
    "Records between a projector's checkpoint and the partition's high watermark",
    ["projection", "topic", "partition"],
)
PROJECTED_RECORDS = Counter(
    "modelreg_projected_records_total", "Records folded by a projector", ["projection", "topic"]
)
COMMAND_CONFLICTS = Counter(
    "modelreg_command_conflicts_total", "Commands whose event lost a race and was decided again", ["topic"]
)
COMMAND_ABORTS = Counter(
    "modelreg_command_aborts_total", "Commands that gave up after repeated conflicts", ["topic"]
)
QUARANTINED_EVENTS = Counter(
    "modelreg_quarantined_events_total",
    "Events a projection could not apply and quarantined (DESIGN.md rule 11)",
    ["projection", "topic"],
)
REJECTED_RECORDS = Counter(
    "modelreg_rejected_records_total",
    "Records a fold rejected: unsigned, untrusted, tampered, undecodable or on another partition",
    ["projection", "topic"],
)
