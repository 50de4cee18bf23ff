"""Settings from the environment; every knob is documented in the README."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from modelreg.eventlog.integrity import LogIntegrity
from modelreg.eventlog.kafka import MAX_RECORD_BYTES, KafkaSettings
from modelreg.projections.runner import DEFAULT_FETCH_MAX_WAIT_MS


class MissingSetting(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Settings:
    kafka: KafkaSettings
    pg_dsn: str
    partitions: int = 3
    replication_factor: int = 1
    projector_group: bool = False
    fetch_max_wait_ms: int = DEFAULT_FETCH_MAX_WAIT_MS
    token_wait_s: float = 5.0
    local_fold: bool = True
    pool_size: int = 10
    metrics_port: int | None = None
    health_check_interval_s: float = 2.0
    """How often the service re-reads its quarantine for the `<service>.projection` health entry."""
    denial_summary_s: float = 10.0
    """The window over which refusals of callers with no verified identity are counted into
    one AccessDenied summary per caller address, method and reason."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        def required(name: str) -> str:
            value = environ.get(name)
            if not value:
                raise MissingSetting(f"{name} must be set")
            return value

        return cls(
            kafka=KafkaSettings(
                bootstrap_servers=required("MODELREG_KAFKA_BOOTSTRAP"),
                topic_prefix=environ.get("MODELREG_TOPIC_PREFIX", ""),
                linger_ms=int(environ.get("MODELREG_PRODUCER_LINGER_MS", "0")),
                max_record_bytes=int(environ.get("MODELREG_MAX_RECORD_BYTES", str(MAX_RECORD_BYTES))),
                integrity=LogIntegrity.from_env(environ),
            ),
            pg_dsn=required("MODELREG_PG_DSN"),
            partitions=int(environ.get("MODELREG_PARTITIONS", "3")),
            replication_factor=int(environ.get("MODELREG_REPLICATION_FACTOR", "1")),
            projector_group=environ.get("MODELREG_PROJECTOR_GROUP", "0") == "1",
            local_fold=environ.get("MODELREG_LOCAL_FOLD", "1") != "0",
            fetch_max_wait_ms=int(environ.get("MODELREG_FETCH_MAX_WAIT_MS", str(DEFAULT_FETCH_MAX_WAIT_MS))),
            token_wait_s=float(environ.get("MODELREG_TOKEN_WAIT_S", "5")),
            pool_size=int(environ.get("MODELREG_PG_POOL_SIZE", "10")),
            metrics_port=int(port) if (port := environ.get("MODELREG_METRICS_PORT")) else None,
            health_check_interval_s=float(environ.get("MODELREG_HEALTH_CHECK_INTERVAL_S", "2")),
            denial_summary_s=float(environ.get("MODELREG_DENIAL_SUMMARY_S", "10")),
        )
