"""What an operator sees of a running service: JSON logs bound to the correlation id,
Prometheus metrics, gRPC health."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelreg.cli.dev import wait_until_serving
from modelreg.devstack.ports import free_port
from modelreg.gen.catalog.v1 import catalog_pb2 as pb
from modelreg.gen.catalog.v1 import catalog_pb2_grpc
from modelreg.runtime.settings import Settings
from tests.helpers import unique


async def test_logs_metrics_and_health_of_a_service_process(settings: Settings, tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    log_path = tmp_path / "catalog.log"
    env = {
        **os.environ,
        "MODELREG_KAFKA_BOOTSTRAP": settings.kafka.bootstrap_servers,
        "MODELREG_TOPIC_PREFIX": settings.kafka.topic_prefix,
        "MODELREG_PG_DSN": settings.pg_dsn,
        "MODELREG_METRICS_PORT": str(metrics_port),
        "MODELREG_LOG_FORMAT": "json",
    }
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: ASYNC220 - Popen does not wait for the child
            [
                sys.executable,
                "-m",
                "modelreg.catalog",
                "serve",
                "--port",
                str(port),
                "--schema",
                unique("obs_"),
            ],
            env=env,
            stdout=log_file,
            stderr=log_file,
        )
    try:
        await asyncio.to_thread(wait_until_serving, port, process)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="modelreg.catalog.v1.CatalogService")
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            stub = catalog_pb2_grpc.CatalogServiceStub(channel)
            await stub.CreateRegisteredModel(
                pb.CreateRegisteredModelRequest(
                    parent=f"namespaces/{unique('obs')}",
                    registered_model_id="m",
                    registered_model=pb.RegisteredModel(),
                )
            )
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.GetRegisteredModel(
                    pb.GetRegisteredModelRequest(name="namespaces/obs/models/absent"),
                    metadata=[("x-correlation-id", "corr-4242")],
                )
        scraped = await asyncio.to_thread(
            lambda: (
                urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
            )
        )
        assert (
            'modelreg_rpc_duration_seconds_count{code="OK",method="/modelreg.catalog.v1.CatalogService/CreateRegisteredModel"}'
            in scraped
        )
        assert 'modelreg_rpc_errors_total{code="NOT_FOUND"' in scraped
        assert "modelreg_projected_records_total" in scraped
        assert "modelreg_projector_lag_records" in scraped
    finally:
        process.terminate()
        process.wait(10)
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    failed = [line for line in lines if line.get("event") == "rpc_failed"]
    assert any(
        line["correlation_id"] == "corr-4242" and line["code"] == "NOT_FOUND" and line["service"] == "catalog"
        for line in failed
    ), lines
