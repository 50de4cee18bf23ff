"""`modelreg dev` from the outside: start it, talk to it through gRPC reflection
only (as grpcurl would), and stop it with Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from modelreg.cli.demo import demo_tokens
from modelreg.client import Registry
from modelreg.client.connection import Endpoints
from modelreg.devstack.ports import free_port, port_is_open


def call_by_reflection(
    channel: grpc.Channel, method: str, fields: Mapping[str, object], token: str | None = None
) -> Any:
    """Looks the method up through the server's reflection service and calls it (with a bearer
    token when given; without one the caller is an anonymous viewer)."""
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
    metadata = [("authorization", f"Bearer {token}")] if token else None
    return rpc(request_class(**fields), timeout=10, metadata=metadata)


class DevStack:
    """`modelreg dev` in a process group of its own (as a terminal runs it), its output
    collected by a thread so that a test can wait for a line at any time."""

    def __init__(self, home: Path, port: int) -> None:
        self.home, self.port = home, port
        env = {**os.environ, "MODELREG_HOME": str(home), "MODELREG_LOG_FORMAT": "json"}
        env.pop("MODELREG_PG_DSN", None)  # the fresh-machine path: embedded PostgreSQL
        # The other services on free ports too (by environment, as the README documents), so a
        # developer's own `make dev` is no obstacle.
        env |= {
            f"MODELREG_{name.upper()}_PORT": str(free_port())
            for name in ("versioning", "lineage", "promotion", "audit", "gateway", "events")
        }
        self.ports = {
            "catalog": port,
            **{
                n: int(env[f"MODELREG_{n.upper()}_PORT"])
                for n in ("versioning", "lineage", "promotion", "audit", "events")
            },
        }
        self.gateway_port = int(env["MODELREG_GATEWAY_PORT"])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "modelreg.cli.main", "dev", "--catalog-port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        started = time.monotonic()
        self.wait_for_line("ready. Press Ctrl-C", timeout=120)
        print(f"dev start took {time.monotonic() - started:.1f}s", file=sys.stderr)
        assert f"127.0.0.1:{port}" in self.output

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.process.poll() is None or self._reader.is_alive(), self.output
            assert time.monotonic() < deadline, f"no line with {text!r} in:\n{self.output}"
            time.sleep(0.05)

    def ctrl_c(self) -> None:
        """SIGINT to the whole process group, as a terminal sends it."""
        started = time.monotonic()
        os.killpg(self.process.pid, signal.SIGINT)
        self.process.wait(timeout=90)
        print(f"dev stop took {time.monotonic() - started:.1f}s", file=sys.stderr)
        self._reader.join(timeout=10)
        assert self.process.returncode == 0, self.output
        assert "stopped." in self.output
        assert "Traceback" not in self.output, self.output
        assert not port_is_open("127.0.0.1", self.port)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "MODELREG_HOME": str(self.home),
            **{f"MODELREG_{name.upper()}_ADDR": f"127.0.0.1:{port}" for name, port in self.ports.items()},
        }


def start_dev(home: Path, port: int) -> DevStack:
    return DevStack(home, port)


def stop_dev(stack: DevStack) -> None:
    stack.ctrl_c()


CREATE = "modelreg.catalog.v1.CatalogService/CreateRegisteredModel"
GET = "modelreg.catalog.v1.CatalogService/GetRegisteredModel"


def run_demo(stack: DevStack, model: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "modelreg.cli.main", "demo", "--model", model],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "demo complete" in done.stdout


def snapshot(stack: DevStack, model: str, scratch: Path) -> dict[str, object]:
    """What a user sees of a model: the model, its versions with their files, each version's
    lineage, the pointers, the history, and the production artifact's bytes."""
    uri = f"demo/{model}"
    with Registry(Endpoints.from_env(stack.env())) as registry:
        registered = registry.catalog.get_model(uri)
        versions = registry.versioning.list_versions(uri)
        pointers = registry.promotion.pointers(uri)
        served = registry.versioning.download(f"{uri}@production", scratch, progress=False)
        return {
            "model": (registered.name, registered.description, dict(registered.tags)),
            "versions": [
                (v.version, v.semver, v.state, sorted((f.path, f.sha256) for f in v.files)) for v in versions
            ],
            "lineage": [
                sorted(
                    d.digest
                    for r in registry.lineage.list_lineage_records(f"{uri}/{v.version}")
                    for d in r.datasets
                )
                for v in versions
            ],
            "pointers": (dict(pointers.stages), dict(pointers.aliases)),
            "history": len(registry.promotion.history(uri)),
            "production bytes": (served / "model" / "weights.bin").read_bytes(),
        }


def pid_serving(port: int) -> int:
    """The pid of the service process started with `--port <port>`."""
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"serve" in argv and b"--port" in argv and argv[argv.index(b"--port") + 1] == str(port).encode():
            return int(entry.name)
    raise AssertionError(f"no service process serves port {port}")


def test_modelreg_dev_keeps_its_data_restarts_a_crashed_service_and_stops_cleanly(
    tmp_path: Path, pg_tmp_path: Path
) -> None:
    home, port = pg_tmp_path / "home", free_port()
    stack = start_dev(home, port)
    try:
        run_demo(stack, "keep")
        before = snapshot(stack, "keep", tmp_path / "before")

        # kill -9 of one service: make dev says so, starts it again, and calls succeed again.
        os.kill(pid_serving(port), signal.SIGKILL)
        stack.wait_for_line("catalog exited", timeout=30)
        stack.wait_for_line("catalog restarted", timeout=30)
        deadline = time.monotonic() + 60
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            while True:
                try:
                    assert call_by_reflection(channel, GET, {"name": "namespaces/demo/models/keep"}).name
                    break
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline, error
                    time.sleep(0.2)
        stack.ctrl_c()
    finally:
        stack.kill()

    stack = start_dev(home, port)
    try:
        assert "restored" in stack.output and "ahead of the archived log" not in stack.output, stack.output
        assert snapshot(stack, "keep", tmp_path / "after") == before
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:  # new writes continue
            fields = {"parent": "namespaces/demo", "registered_model_id": "later", "registered_model": {}}
            created = call_by_reflection(channel, CREATE, fields, demo_tokens(home)["alice"])
            assert created.name == "namespaces/demo/models/later"
        stack.ctrl_c()
    finally:
        stack.kill()
