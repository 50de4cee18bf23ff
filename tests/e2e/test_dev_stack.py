"""`modelreg dev` from the outside: start it, talk to it through gRPC reflection
only (as grpcurl would), and stop it with Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from modelreg.devstack.ports import free_port, port_is_open


def call_by_reflection(channel: grpc.Channel, method: str, fields: Mapping[str, object]) -> Any:
    """Looks the method up through the server's reflection service and calls it."""
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    service_name, method_name = method.rsplit("/", 1)
    descriptor = pool.FindServiceByName(service_name).FindMethodByName(method_name)
    request_class = message_factory.GetMessageClass(descriptor.input_type)
    response_class = message_factory.GetMessageClass(descriptor.output_type)
    rpc = channel.unary_unary(
        f"/{service_name}/{method_name}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    return rpc(request_class(**fields), timeout=10)


def start_dev(home: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "MODELREG_HOME": str(home), "MODELREG_LOG_FORMAT": "json"}
    env.pop("MODELREG_PG_DSN", None)  # the fresh-machine path: embedded PostgreSQL
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelreg.cli.main",
            "dev",
            "--catalog-port",
            str(port),
            # The other services on free ports too, so a developer's own `make dev` is no obstacle.
            "--versioning-port",
            str(free_port()),
            "--lineage-port",
            str(free_port()),
            "--promotion-port",
            str(free_port()),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = []
    deadline = time.monotonic() + 90
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        if "ready" in line:
            break
        assert time.monotonic() < deadline, "".join(output)
    assert process.poll() is None, "".join(output)
    assert f"127.0.0.1:{port}" in "".join(output)
    return process


def stop_dev(process: subprocess.Popen[str], port: int) -> None:
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0, rest
    assert "stopped." in rest
    assert not port_is_open("127.0.0.1", port)


CREATE = "modelreg.catalog.v1.CatalogService/CreateRegisteredModel"
GET = "modelreg.catalog.v1.CatalogService/GetRegisteredModel"


def test_modelreg_dev_serves_a_reflection_client_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    process = start_dev(tmp_path / "home", port)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            fields = {
                "parent": "namespaces/e2e",
                "registered_model_id": "fraud",
                "registered_model": {"description": "x"},
            }
            created = call_by_reflection(channel, CREATE, fields)
            assert created.name == "namespaces/e2e/models/fraud"
            assert call_by_reflection(channel, GET, {"name": created.name}).description == "x"
    finally:
        stop_dev(process, port)

    # Tansu's log is gone after a restart: the read models must not outlive it.
    process = start_dev(tmp_path / "home", port)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            try:
                call_by_reflection(channel, GET, {"name": created.name})
                raise AssertionError("a model from the previous log survived the restart")
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.NOT_FOUND
            assert call_by_reflection(channel, CREATE, fields).name == created.name
    finally:
        stop_dev(process, port)
