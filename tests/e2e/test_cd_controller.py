"""The example CD controller (examples/cd_controller.py) as a user runs it, a subprocess against
the whole registry and the events relay: it deploys what was promoted into a directory per
environment, byte for byte, acknowledges it so GetDeploymentStatus shows no drift, survives
kill -9 mid-rollout without a second acknowledgement, skips redelivered events, and does the
same following WatchPromotions."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from modelreg.client import AsyncRegistry
from modelreg.client.public_events import PublicRecord
from modelreg.gen.promotion.v1 import promotion_pb2
from tests.helpers import unique
from tests.integration.events.conftest import TOKENS, Stack, stack  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
CONTROLLER = ROOT / "examples" / "cd_controller.py"
T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 90.0, poll: float = 0.2
) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last is not None:
            return last
        await asyncio.sleep(poll)
    raise AssertionError(f"{what}: not within {timeout}s")


@contextmanager
def controller(running: Stack, out: Path, log: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_") or k == "MODELREG_LOG_FILE"}
    env |= {f"MODELREG_{name.upper()}_ADDR": f"127.0.0.1:{h.port}" for name, h in running.hosts.items()}
    env |= {"MODELREG_TOKEN": TOKENS["alice"], "MODELREG_HOME": str(out.parent / "no-dev-home")}
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, str(CONTROLLER), "--out", str(out), "-v", *args],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(30)


def write_artifacts(root: Path, seed: str, big: int = 0) -> Path:
    (root / "weights").mkdir(parents=True)
    (root / "MLmodel").write_text(f"flavor: example\nseed: {seed}\n")
    (root / "weights" / "model.bin").write_bytes(os.urandom(4096) + seed.encode())
    if big:
        (root / "weights" / "big.bin").write_bytes(os.urandom(big))
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


async def promote(alice: AsyncRegistry, bob: AsyncRegistry, uri: str, version: int) -> None:
    request = await alice.promotion.request_promotion(
        uri, {"PRODUCTION": version}, deployments={"prod": {version: 100}}
    )
    if request.state != promotion_pb2.TransitionRequest.State.STATE_APPLIED:
        await bob.promotion.approve(request.name, comment="ship it")


async def in_step(alice: AsyncRegistry, uri: str, version: int) -> int | None:
    """The desired revision of prod once it is all `version` and acknowledged as SUCCEEDED."""
    status = await alice.promotion.deployment_status(uri)
    for env in status.environments:
        if env.environment != "prod" or [(w.version, w.percent) for w in env.desired.weights] != [
            (version, 100)
        ]:
            continue
        ack = env.acknowledged
        if ack.revision == env.desired.revision and ack.state == ack.State.STATE_SUCCEEDED:
            assert not env.drift, env.drift_reason
            return env.desired.revision
    return None


def reports(records: list[PublicRecord], model: str) -> dict[str, tuple[int, str]]:
    return {
        r.id: (int(r.data["revision"]), r.data["state"])
        for r in records
        if r.subject == model and r.type == "io.modelreg.deployment.reported.v1"
    }


async def test_the_controller_deploys_acknowledges_and_survives_kill_9(
    stack: Stack,  # noqa: F811
    tmp_path: Path,
) -> None:
    ns = unique("cd")
    uri, model = f"{ns}/churn", f"namespaces/{ns}/models/churn"
    alice, bob = stack.client("alice"), stack.client("bob")
    out, log = tmp_path / "deployed", tmp_path / "controller.log"
    follow = ("--environment", "prod", "--stage", "PRODUCTION=prod", "--namespace", ns)
    topic = ("--bootstrap", stack.settings.kafka.bootstrap_servers, "--topic", stack.public_topic)
    args = (*topic, "--group", unique("cd-group"), *follow)
    try:
        await alice.catalog.register_model(uri)
        sources = [
            write_artifacts(tmp_path / f"v{i}", f"v{i}", big=(48 << 20) if i == 2 else 0) for i in (1, 2, 3)
        ]
        for source in sources:
            await alice.versioning.create_version(uri, artifacts=source, progress=False)

        with controller(stack, out, log, *args) as process:
            await promote(alice, bob, uri, 1)
            first = await eventually(lambda: in_step(alice, uri, 1), "revision of v1 acknowledged")
            assert tree(out / "prod" / ns / "churn") == tree(sources[0])

            # The next promotion, and kill -9 as soon as its rollout is under way.
            await promote(alice, bob, uri, 2)

            # Its 48 MiB download is the window; polled closely to land kill -9 in it.
            async def rolling() -> bool | None:
                status = await alice.promotion.deployment_status(uri)
                return True if any(e.acknowledged.revision > first for e in status.environments) else None

            await eventually(rolling, "the second rollout started", poll=0.01)
            process.send_signal(signal.SIGKILL)
            process.wait(30)
            interrupted = "is version 2" not in log.read_text()

        with controller(stack, out, log, *args):
            second = await eventually(lambda: in_step(alice, uri, 2), "revision of v2 acknowledged")
            assert tree(out / "prod" / ns / "churn") == tree(sources[1])

        # A new consumer group re-reads the whole topic: the same event ids, nothing done again.
        again = (*topic, "--group", unique("cd-replay"), *follow)
        replay_log = tmp_path / "replay.log"
        with controller(stack, out, replay_log, *again):
            await eventually(
                lambda: _seen(replay_log, "already handled", 2), "the replay skipped both events"
            )
            assert _count(replay_log, "already handled") == 2, replay_log.read_text()[-4000:]

        records = await stack.public_records(
            lambda rs: sorted(reports(rs, model).values()).count((second, "SUCCEEDED")) >= 1
        )
        # Each revision acknowledged once: IN_PROGRESS then SUCCEEDED, whatever kill -9 interrupted.
        assert sorted(reports(records, model).values()) == [
            (first, "IN_PROGRESS"),
            (first, "SUCCEEDED"),
            (second, "IN_PROGRESS"),
            (second, "SUCCEEDED"),
        ], log.read_text()[-4000:]
        assert tree(out / "prod" / ns / "churn") == tree(sources[1])
        assert not list((out / ".releases").rglob(".tmp-*"))
        print(f"kill -9 landed {'mid-rollout' if interrupted else 'after the rollout'}")

        # The alternative source: WatchPromotions from the start, into another directory.
        watched = tmp_path / "watched"
        with controller(stack, watched, tmp_path / "watch.log", "--source", "watch", *follow):
            await eventually(
                lambda: _exists(watched / "prod" / ns / "churn" / "weights" / "big.bin"),
                "the watch replayed to v2",
            )
            await promote(alice, bob, uri, 3)
            await eventually(lambda: in_step(alice, uri, 3), "revision of v3 acknowledged")
            assert tree(watched / "prod" / ns / "churn") == tree(sources[2])
    finally:
        await alice.close()
        await bob.close()


async def _exists(path: Path) -> bool | None:
    return True if await asyncio.to_thread(path.exists) else None


async def _seen(log: Path, text: str, times: int) -> bool | None:
    return True if await asyncio.to_thread(_count, log, text) >= times else None


def _count(log: Path, text: str) -> int:
    return log.read_text().count(text) if log.exists() else 0
