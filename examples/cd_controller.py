"""An example CD controller: it follows the registry and "deploys" what was promoted.

    python examples/cd_controller.py --out ./deployed --environment prod --stage PRODUCTION=prod

It follows the public topic `modelreg.public.v1` (a Kafka consumer group; CloudEvents parsed
with the `cloudevents` SDK's Kafka binding), or with `--source watch` promotion's
WatchPromotions stream through the SDK. For every applied transition (and rollback) it
deploys, per environment it is configured for:

- a new deployment revision of the environment (`--environment`, default every one): the
  version with the most traffic;
- a move of a stage (`--stage PRODUCTION=prod`: PRODUCTION into environment prod; default
  PRODUCTION into `production`) when the same transition did not revise that environment.

"Deploying" writes the version's artifact files (downloaded through the SDK, each sha256
verified) into `<out>/<environment>/<ns>/<model>/`: a fresh directory under
`<out>/.releases/` made under a temporary name and renamed into place, then the symlink
`<out>/<environment>/<ns>/<model>` swapped to it by a rename, so a reader sees the old files
or the new ones, never a mix. Each rollout is acknowledged back with ReportDeployment:
IN_PROGRESS, then SUCCEEDED or FAILED with the error.

Idempotent: what it handled (event ids), what it deployed and the stream position are kept
in `<out>/.cd-controller/state.json` (replaced atomically). A redelivered event is skipped; a
restart after kill -9 redoes only the unfinished event, and its acknowledgements carry
request ids made from the event id and state, so the registry records each once. The Kafka
offset is committed only after the event's work is done.

The registry's address comes from MODELREG_<SERVICE>_ADDR or what `modelreg dev` wrote;
the bearer token from MODELREG_TOKEN (it needs the deployer or admin role).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat

from modelreg.client import AsyncRegistry
from modelreg.client.errors import DeadlineExceeded, FailedPrecondition, RegistryError, Unavailable

log = logging.getLogger("cd-controller")

APPLIED = ("io.modelreg.transition.applied.v1", "io.modelreg.rollback.applied.v1")
ACK_NAMESPACE = uuid.UUID("6f1c2a52-6c0e-4a53-9a53-2f3d7d1f0c11")
KEEP_HANDLED = 10_000
TRANSIENT = (Unavailable, DeadlineExceeded, OSError)


@dataclass(frozen=True, slots=True)
class Target:
    """One rollout an event asks for: `version` into `environment` (0: undeploy)."""

    model: str  # namespaces/{ns}/models/{m}
    environment: str
    version: int
    revision: int  # the deployment revision; 0 for a stage move


@dataclass
class State:
    handled: list[str] = field(default_factory=list)
    deployed: dict[str, dict[str, Any]] = field(default_factory=dict)
    resume_token: str = ""


class Ledger:
    """The controller's memory, one JSON file replaced atomically (write, fsync, rename)."""

    def __init__(self, out: Path) -> None:
        self.path = out / ".cd-controller" / "state.json"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        raw = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.state = State(**raw)
        self._handled = set(self.state.handled)

    def seen(self, event_id: str) -> bool:
        return event_id in self._handled

    def deployed(self, target: Target) -> dict[str, Any] | None:
        return self.state.deployed.get(f"{target.environment}|{target.model}")

    def record_deployed(self, target: Target, event_id: str, files: dict[str, str]) -> None:
        self.state.deployed[f"{target.environment}|{target.model}"] = {
            "version": target.version,
            "revision": target.revision,
            "event": event_id,
            "files": files,
        }
        self.save()

    def mark_handled(self, event_id: str, resume_token: str = "") -> None:
        self.state.handled = [*self.state.handled, event_id][-KEEP_HANDLED:]
        self._handled = set(self.state.handled)
        if resume_token:
            self.state.resume_token = resume_token
        self.save()

    def save(self) -> None:
        partial = self.path.with_name(f"state.{os.getpid()}.partial")
        with partial.open("w") as handle:
            json.dump(asdict(self.state), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, self.path)


def _int(value: object) -> int:
    return int(str(value or 0))


def served_version(weights: Iterable[tuple[int, int]]) -> int:
    """The version with the most traffic (the higher one on a tie); 0 for an empty split."""
    ranked = sorted(((pct, v) for v, pct in weights), reverse=True)
    return ranked[0][1] if ranked else 0


def plan(
    model: str,
    moved: Iterable[tuple[str, int]],
    deployments: Iterable[tuple[str, int, list[tuple[int, int]]]],
    environments: frozenset[str],
    stages: Mapping[str, str],
) -> list[Target]:
    """The rollouts one applied transition asks of this controller: each revised environment it
    follows, and each stage it follows whose environment the transition did not revise."""
    targets = [
        Target(model, env, served_version(weights), revision)
        for env, revision, weights in deployments
        if not environments or env in environments
    ]
    revised = {t.environment for t in targets} | {env for env, _, _ in deployments}
    targets += [
        Target(model, stages[pointer], version, 0)
        for pointer, version in moved
        if pointer in stages and stages[pointer] not in revised
    ]
    return targets


def plan_of_cloudevent(
    data: Mapping[str, Any], environments: frozenset[str], stages: Mapping[str, str]
) -> list[Target]:
    """From the `data` of transition.applied / rollback.applied (proto3 JSON inside)."""
    moved = [(str(m.get("pointer", "")), _int(m.get("version"))) for m in data.get("moved", [])]
    moved += [(str(m.get("pointer", "")), 0) for m in data.get("removed", [])]
    deployments = [
        (
            str(d.get("environment", "")),
            _int(d.get("revision")),
            [(_int(w.get("version")), _int(w.get("percent"))) for w in d.get("weights", [])],
        )
        for d in data.get("deployments", [])
    ]
    return plan(str(data["model"]), moved, deployments, environments, stages)


class Controller:
    def __init__(
        self,
        registry: AsyncRegistry,
        out: Path,
        environments: frozenset[str],
        stages: Mapping[str, str],
        namespace: str = "",
    ) -> None:
        self.registry = registry
        self.out = out
        self.environments = environments
        self.stages = dict(stages)
        self.namespace = namespace
        self.ledger = Ledger(out)
        self._clean_leftovers()

    def wants(self, model: str) -> bool:
        return not self.namespace or model.startswith(f"namespaces/{self.namespace}/")

    async def handle(self, event_id: str, targets: list[Target], resume_token: str = "") -> None:
        """Rolls out every target of one event and acknowledges each; a redelivery is a no-op."""
        if self.ledger.seen(event_id):
            log.info("event %s: already handled", event_id)
            return
        for target in targets:
            await self.roll_out(event_id, target)
        self.ledger.mark_handled(event_id, resume_token)

    async def roll_out(self, event_id: str, target: Target) -> None:
        uri = _uri(target.model)
        where = f"{target.environment}/{uri}"
        if target.version == 0 and target.revision == 0:
            self._undeploy(target)  # a stage cleared: nothing to acknowledge against
            log.info("event %s: %s undeployed", event_id, where)
            return
        await self._report(event_id, target, "IN_PROGRESS", f"deploying version {target.version}")
        try:
            files = await self._deploy(event_id, target)
        except TRANSIENT:
            raise  # not handled: retried (the same request ids) after a pause
        except (RegistryError, ValueError) as error:
            log.warning("event %s: %s failed: %s", event_id, where, error)
            await self._report(event_id, target, "FAILED", f"{type(error).__name__}: {error}")
            return
        await self._report(event_id, target, "SUCCEEDED", f"{len(files)} files of version {target.version}")
        log.info("event %s: %s is version %d (revision %d)", event_id, where, target.version, target.revision)

    async def _deploy(self, event_id: str, target: Target) -> dict[str, str]:
        done = self.ledger.deployed(target)
        if done is not None and done["event"] == event_id:
            return dict(done["files"])  # deployed before a restart, not yet acknowledged
        if target.version == 0:
            self._undeploy(target)
            self.ledger.record_deployed(target, event_id, {})
            return {}
        version = await self.registry.versioning.get_version(f"{_uri(target.model)}/{target.version}")
        releases = self.out / ".releases" / target.environment / _uri(target.model)
        releases.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=".tmp-", dir=releases))
        try:
            await self.registry.versioning.download_version(version, partial, progress=False)
            release = releases / f"v{target.version}-{event_id.replace('/', '_')}"
            shutil.rmtree(release, ignore_errors=True)
            os.rename(partial, release)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        await asyncio.to_thread(point, self._link(target), release)
        files = {f.path: f.sha256 for f in version.files}
        self.ledger.record_deployed(target, event_id, files)
        self._prune(releases, keep=release)
        return files

    def _link(self, target: Target) -> Path:
        return self.out / target.environment / _uri(target.model)

    def _undeploy(self, target: Target) -> None:
        self._link(target).unlink(missing_ok=True)

    def _prune(self, releases: Path, keep: Path) -> None:
        """Keeps the live release and the one before it (for a reader still in it)."""
        old = sorted((p for p in releases.iterdir() if p != keep and not p.name.startswith(".")),
                     key=lambda p: p.stat().st_mtime)  # fmt: skip
        for path in old[:-1]:
            shutil.rmtree(path, ignore_errors=True)

    def _clean_leftovers(self) -> None:
        """A kill -9 mid-download leaves a temporary directory: remove it."""
        releases = self.out / ".releases"
        if releases.exists():
            for partial in releases.rglob(".tmp-*"):
                shutil.rmtree(partial, ignore_errors=True)

    async def _report(self, event_id: str, target: Target, state: str, detail: str) -> None:
        # The same event and state always give the same request id: a repeat after a restart
        # is recognised by the registry instead of recorded twice.
        key = f"{event_id}|{target.environment}|{state}"
        try:
            await self.registry.promotion.report_deployment(
                _uri(target.model),
                target.environment,
                state,
                revision=target.revision,
                version=0 if target.revision else target.version,
                detail=detail[:4000],
                request_id=str(uuid.uuid5(ACK_NAMESPACE, key)),
            )
        except FailedPrecondition as error:
            if target.revision:
                raise
            # A stage deployed into an environment the registry has no deployment of: there is
            # nothing to acknowledge against (give the transition a split for it to track drift).
            log.warning("event %s: %s not acknowledged: %s", event_id, state, error)


def point(link: Path, release: Path) -> None:
    """`link` now names `release`: a new symlink renamed over the old one, atomically."""
    link.parent.mkdir(parents=True, exist_ok=True)
    swap = link.with_name(f".{link.name}.{os.getpid()}.swap")
    swap.unlink(missing_ok=True)
    swap.symlink_to(os.path.relpath(release, link.parent))
    os.replace(swap, link)


def _uri(model: str) -> str:
    """namespaces/ns/models/m -> ns/m"""
    parts = model.split("/")
    return f"{parts[1]}/{parts[3]}"


async def with_retries(controller: Controller, event_id: str, targets: list[Target], token: str = "") -> None:
    """Transient failures (the registry unreachable, a full disk) are retried, bounded per attempt."""
    delay = 0.5
    while True:
        try:
            await controller.handle(event_id, targets, token)
            return
        except TRANSIENT as error:
            log.warning("event %s: %s; retrying in %.1fs", event_id, error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


async def follow_topic(controller: Controller, bootstrap: str, topic: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    log.info("following %s as group %s", topic, group)
    try:
        async for record in consumer:
            headers = {k: bytes(v) for k, v in record.headers or []}
            message = KafkaMessage(headers=headers, key=record.key, value=record.value or b"")
            event = from_binary(message, JSONFormat())
            data = event.get_data()
            if (
                event.get_type() in APPLIED
                and isinstance(data, dict)
                and controller.wants(str(data["model"]))
            ):
                targets = plan_of_cloudevent(data, controller.environments, controller.stages)
                await with_retries(controller, str(event.get_id()), targets)
            # Only now is the record done: a crash before this line gets it redelivered.
            await consumer.commit({TopicPartition(record.topic, record.partition): record.offset + 1})
    finally:
        await consumer.stop()


async def follow_watch(controller: Controller, parent: str) -> None:
    """WatchPromotions is gap-free from a resume token: keep the last one handled."""
    while True:
        try:
            stream = controller.registry.promotion.watch_promotions(
                parent, resume_token=controller.ledger.state.resume_token
            )
            async for item in _items(stream):
                entry = item.entry
                if not controller.wants(entry.model):
                    controller.ledger.mark_handled(f"watch:{entry.transition_request}", item.resume_token)
                    continue
                moved = [(c.pointer, c.version) for c in entry.changes]
                deployments = [
                    (d.environment, d.revision, [(w.version, w.percent) for w in d.weights])
                    for d in entry.deployments
                ]
                targets = plan(entry.model, moved, deployments, controller.environments, controller.stages)
                await with_retries(
                    controller, f"watch:{entry.transition_request}", targets, item.resume_token
                )
        except (Unavailable, DeadlineExceeded) as error:
            log.warning("the watch ended (%s); resuming", error)
            await asyncio.sleep(1.0)


async def _items(stream: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async with contextlib.aclosing(stream):  # type: ignore[type-var]
        async for item in stream:
            yield item


def parse_stages(values: list[str]) -> dict[str, str]:
    """PRODUCTION -> {PRODUCTION: production}; PRODUCTION=prod -> {PRODUCTION: prod}; none -> {}."""
    stages = {}
    for value in values:
        if value.lower() == "none":
            continue
        stage, _, environment = value.partition("=")
        stages[stage.upper()] = environment or stage.lower()
    return stages


def dev_bootstrap() -> str:
    """The broker `modelreg dev` started (its endpoints.json), else 127.0.0.1:9092."""
    written = Path(os.environ.get("MODELREG_HOME", Path.home() / ".modelreg" / "dev")) / "endpoints.json"
    if written.exists():
        return str(json.loads(written.read_text()).get("kafka") or "127.0.0.1:9092")
    return "127.0.0.1:9092"


app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])


@app.command()
def main(
    out: Annotated[Path, typer.Option(help="Where to deploy: <out>/<environment>/<ns>/<model>/.")],
    source: Annotated[
        str, typer.Option(help="kafka (the public topic) or watch (WatchPromotions).")
    ] = "kafka",
    bootstrap: Annotated[
        str, typer.Option(envvar="MODELREG_KAFKA_BOOTSTRAP", help="Default: what `modelreg dev` wrote.")
    ] = "",
    topic: Annotated[str, typer.Option(help="The public topic.")] = "modelreg.public.v1",
    group: Annotated[str, typer.Option(help="The Kafka consumer group.")] = "modelreg-cd-controller",
    environment: Annotated[
        list[str] | None, typer.Option(help="A deployment environment to follow (repeat); default: all.")
    ] = None,
    stage: Annotated[
        list[str] | None,
        typer.Option(help="STAGE or STAGE=ENVIRONMENT to follow (repeat); `none`: no stage."),
    ] = None,
    namespace: Annotated[str, typer.Option(help="Only this namespace's models.")] = "",
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Follow the registry and deploy what was promoted into OUT, acknowledging each rollout."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(name)s %(message)s"
    )
    if source not in ("kafka", "watch"):
        raise typer.BadParameter("kafka or watch", param_hint="--source")
    stages = parse_stages(stage if stage is not None else ["PRODUCTION"])
    bootstrap = bootstrap or dev_bootstrap()

    async def run() -> None:
        async with AsyncRegistry() as registry:
            controller = Controller(registry, out, frozenset(environment or ()), stages, namespace)
            if source == "kafka":
                await follow_topic(controller, bootstrap, topic, group)
            else:
                await follow_watch(controller, f"namespaces/{namespace}" if namespace else "")

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    app()
