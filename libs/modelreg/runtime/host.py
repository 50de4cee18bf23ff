"""Runs one service: bootstraps its topic and schema, projects, and serves gRPC.

The same host runs the projector alone (`project`), the API alone
(`serve --no-projector`) or both, so a projector can be scaled, or killed in a
fault test, on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import grpc
import structlog
from aiokafka.errors import KafkaError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from modelreg.access import AccessControl
from modelreg.access.log import GRANTS_TOPIC, DenialLog, LogGrants, folds_grants
from modelreg.access.summaries import UnverifiedDenials
from modelreg.commands.executor import CommandExecutor, OutcomeStore
from modelreg.errors import FailedPrecondition
from modelreg.eventlog import Position
from modelreg.eventlog.integrity import warn_if_unsigned
from modelreg.eventlog.kafka import KafkaEventLog
from modelreg.eventlog.topics import ensure_topics as create_topics
from modelreg.gen.events.v1.envelope_pb2 import Envelope
from modelreg.grpcutil.auth import AUTH_HEALTH_SERVICE, Authenticator
from modelreg.grpcutil.context import current_request
from modelreg.grpcutil.interceptor import ServiceInterceptor
from modelreg.grpcutil.ratelimit import RateLimiter
from modelreg.projections.batch import ProjectionHandler
from modelreg.projections.progress import ProgressListener
from modelreg.projections.quarantine import PROJECTION_HEALTH_SUFFIX, quarantined_count
from modelreg.projections.runner import Projector, ProjectorSettings
from modelreg.projections.schema import bookkeeping_ddl
from modelreg.runtime.settings import Settings
from modelreg.runtime.tls import ServerTls

log = structlog.get_logger(__name__)

RBAC_HEALTH_SUFFIX = ".rbac"

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    KafkaError,
    # The server is unreachable, gone mid-query, or refusing connections while it shuts
    # down, restarts or is full: answered UNAVAILABLE, which clients retry.
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    # A pooled connection the server dropped mid-operation (a restart) can be handed out
    # before the pool notices: "cannot switch to state 11; another operation is in progress".
    asyncpg.exceptions.InternalClientError,
)
"""Infrastructure trouble, not a bug: the interceptor answers these with UNAVAILABLE."""


@dataclass(frozen=True, slots=True)
class Runtime:
    """What a service's wiring gets to build its use cases from."""

    settings: Settings
    pool: asyncpg.Pool
    schema: str
    executor: CommandExecutor
    progress: ProgressListener | None = None
    """The process's one LISTEN connection, for handlers that follow projection progress (watches)."""
    access: AccessControl = field(default_factory=AccessControl.disabled)
    """RBAC: the interceptor enforces it; a service adds its denial recorder and grant cache."""


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    schema: str
    own_topic: str
    """Logical topic, e.g. `modelreg.catalog.v1`; prefixed per settings."""
    projections: Sequence[tuple[str, ProjectionHandler]]
    """(logical topic, handler): the service's own fold plus any reference caches."""
    register: Callable[[Runtime, grpc.aio.Server], Sequence[str]]
    """Adds the servicers and returns their full service names (for reflection)."""
    extra_topics: Sequence[str] = field(default_factory=tuple)
    background: Callable[[Runtime], Coroutine[Any, Any, None]] | None = None
    """A task the serving process runs until it stops (e.g. audit's checkpoint writer); not
    run read-only."""


async def ensure_topics(settings: Settings, logical_topics: Sequence[str]) -> None:
    await create_topics(
        settings.kafka.bootstrap_servers,
        {settings.kafka.topic(t): settings.partitions for t in logical_topics},
        settings.replication_factor,
    )


async def ensure_schema(pool: asyncpg.Pool, schema: str, handlers: Sequence[ProjectionHandler]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        # Several processes of one service may start together; DDL runs once.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"modelreg-schema-{schema}")
        await conn.execute(bookkeeping_ddl(schema))
        for handler in handlers:
            await conn.execute(handler.ddl(schema))


class ServiceHost:
    def __init__(self, spec: ServiceSpec, settings: Settings) -> None:
        self.spec = spec
        self.settings = settings
        self.pool: asyncpg.Pool | None = None
        self.log: KafkaEventLog | None = None
        self.progress: ProgressListener | None = None
        self.projector: Projector | None = None
        self.server: grpc.aio.Server | None = None
        self.port: int | None = None
        self.read_only = False
        self._health_task: asyncio.Task[None] | None = None
        self._background: asyncio.Task[None] | None = None
        self._unverified: UnverifiedDenials | None = None

    def topic(self, logical: str) -> str:
        return self.settings.kafka.topic(logical)

    async def start(
        self,
        *,
        serve: bool = True,
        project: bool = True,
        port: int = 0,
        host: str = "127.0.0.1",
        read_only: bool = False,
    ) -> None:
        """`read_only` serves a schema as it stands (e.g. one `modelreg ops replay --as-of`
        built): no projector, and every write is refused with FAILED_PRECONDITION."""
        spec, settings = self.spec, self.settings
        self.read_only = read_only
        project = project and not read_only
        if settings.metrics_port is not None:
            start_http_server(settings.metrics_port, addr=host)
        warn_if_unsigned(settings.kafka.integrity, spec.name)
        await ensure_topics(settings, [spec.own_topic, *[t for t, _ in spec.projections], *spec.extra_topics])
        self.pool = await asyncpg.create_pool(
            settings.pg_dsn,
            min_size=2,
            max_size=settings.pool_size,
            server_settings={"application_name": f"modelreg-{spec.name}"},
            # asyncpg's default release runs `RESET ALL; UNLISTEN *; CLOSE ALL; SELECT
            # pg_advisory_unlock_all()`: one more round trip on every pooled call. Nothing here
            # leaves session state on a pooled connection (settings are SET LOCAL, LISTEN has
            # its own connection, no advisory locks or cursors); an open transaction is still
            # rolled back by asyncpg before this hook runs.
            reset=_keep_session,
        )
        await ensure_schema(self.pool, spec.schema, [h for _, h in spec.projections])
        if project:
            self.projector = Projector(
                pool=self.pool,
                schema=spec.schema,
                routes={self.topic(logical): handler for logical, handler in spec.projections},
                kafka=settings.kafka,
                name=spec.name,
                settings=ProjectorSettings(
                    fetch_max_wait_ms=settings.fetch_max_wait_ms,
                    # The topic prefix keeps registries that share a cluster in groups of their own
                    # (a group over another prefix's topics would stall this one's rebalances).
                    group_id=(
                        f"{settings.kafka.topic_prefix}modelreg-{spec.name}-projector"
                        if settings.projector_group
                        else None
                    ),
                ),
            )
            await self.projector.start()
        if serve:
            await self._serve(port, host)

    async def _serve(self, port: int, host: str) -> None:
        spec, settings = self.spec, self.settings
        assert self.pool is not None
        self.progress = ProgressListener(
            settings.pg_dsn, spec.schema, {self.topic(t) for t, _ in spec.projections}
        )
        await self.progress.start()
        self.log = ReadOnlyEventLog(settings.kafka) if self.read_only else KafkaEventLog(settings.kafka)
        await self.log.start()
        executor = CommandExecutor(
            log=self.log,
            outcomes=OutcomeStore(self.pool, spec.schema),
            progress=self.progress,
            topic=self.topic(spec.own_topic),
            source=f"modelreg/{spec.name}",
            # The fetch wait (Tansu answers a fetch only when its wait ends) is then off the
            # write path. MODELREG_LOCAL_FOLD=0 makes a command wait for the fetch instead.
            local_fold=self.projector.fold_appended if self.projector and settings.local_fold else None,
        )
        access = AccessControl.from_env()
        if access.enabled and folds_grants(spec.projections):
            access.follow(
                LogGrants(
                    self.pool, spec.schema, self.progress, self.topic(GRANTS_TOPIC), settings.partitions
                )
            )
        # Every service records denials on its own topic; a service may register its own recorder.
        denials = DenialLog(executor, self.pool, spec.schema)
        access.on_denied(lambda denial: denials.record(denial, current_request.get().event_context()))
        # Callers with no verified identity: counted, and one summary per window (access/summaries.py).
        unverified = self._unverified = UnverifiedDenials(
            denials.record_summary, window_s=settings.denial_summary_s
        )
        access.on_unverified_denied(lambda denial: unverified.note(current_request.get().peer, denial))
        runtime = Runtime(settings, self.pool, spec.schema, executor, self.progress, access)
        authenticator = Authenticator.from_env()
        tls = ServerTls.from_env()
        if authenticator.open:
            log.warning(
                "auth_disabled",
                state=authenticator.describe(),
                hint="MODELREG_AUTH=none: calls without credentials run as 'anonymous'; "
                "set MODELREG_AUTH=required with a token file, JWT keys or mTLS",
            )
        else:
            log.info("auth", state=authenticator.describe(), tls="mtls" if tls and tls.mutual else bool(tls))
        (log.info if access.enabled else log.warning)("rbac", state=access.describe())
        server = grpc.aio.server(
            interceptors=[
                ServiceInterceptor(
                    authenticator,
                    self.progress,
                    settings.token_wait_s,
                    transient_errors=TRANSIENT_ERRORS,
                    access=access,
                    limiter=RateLimiter.from_env(),
                    unverified=unverified,
                )
            ],
            options=[("grpc.max_receive_message_length", 8 * 1024 * 1024)],
        )
        names = list(spec.register(runtime, server))
        if spec.background is not None and not self.read_only:
            self._background = asyncio.create_task(spec.background(runtime))
        if not self.read_only:
            self._unverified.start()
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
            server,
        )
        address = f"{host}:{port}"
        self.port = (
            server.add_secure_port(address, tls.credentials()) if tls else server.add_insecure_port(address)
        )
        await server.start()
        for name in ["", *names]:
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        # Authentication off (MODELREG_AUTH=none) is explicit in health: `modelreg.auth` NOT_SERVING.
        await health_servicer.set(
            AUTH_HEALTH_SERVICE,
            health_pb2.HealthCheckResponse.NOT_SERVING
            if authenticator.open
            else health_pb2.HealthCheckResponse.SERVING,
        )
        # RBAC off is explicit in health too: `<service>.rbac` is NOT_SERVING then.
        await health_servicer.set(
            spec.name + RBAC_HEALTH_SUFFIX,
            health_pb2.HealthCheckResponse.SERVING
            if access.enabled
            else health_pb2.HealthCheckResponse.NOT_SERVING,
        )
        # Checked once before the service counts as started, so `<service>.projection`
        # is never NOT_FOUND to a health client that asks right away.
        await self._check_quarantine(health_servicer)
        self._health_task = asyncio.create_task(self._watch_quarantine(health_servicer))
        self.server = server
        log.info("service_started", service=spec.name, address=f"{host}:{self.port}")

    async def _watch_quarantine(self, health_servicer: health.aio.HealthServicer) -> None:
        """Keeps `<service>.projection` NOT_SERVING while the read model has quarantined
        events. Read from the table, not told by the projector: the projector may run in
        another process, and the quarantine outlives restarts."""
        while True:
            await asyncio.sleep(self.settings.health_check_interval_s)
            await self._check_quarantine(health_servicer)

    async def _check_quarantine(self, health_servicer: health.aio.HealthServicer) -> None:
        assert self.pool is not None
        try:
            async with self.pool.acquire() as conn:
                degraded = await quarantined_count(conn, self.spec.schema) > 0
            await health_servicer.set(
                self.spec.name + PROJECTION_HEALTH_SUFFIX,
                health_pb2.HealthCheckResponse.NOT_SERVING
                if degraded
                else health_pb2.HealthCheckResponse.SERVING,
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("quarantine_check_failed", error=str(exc))

    async def stop(self, grace: float = 2.0) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
        if self._background is not None:
            self._background.cancel()
            await asyncio.gather(self._background, return_exceptions=True)
        if self.server is not None:
            await self.server.stop(grace)
        if self._unverified is not None and not self.read_only:
            await self._unverified.stop()  # the last window's summaries, while the log is open
        if self.projector is not None:
            await self.projector.stop()
        if self.log is not None:
            await self.log.stop()
        if self.progress is not None:
            await self.progress.stop()
        if self.pool is not None:
            await self.pool.close()

    async def wait(self) -> None:
        if self.server is not None:
            await self.server.wait_for_termination()
        else:
            await asyncio.Event().wait()


class ReadOnlyEventLog(KafkaEventLog):
    """The log of a read-only service: nothing is ever appended."""

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def append_record(self, topic: str, envelope: Envelope) -> tuple[Position, bytes]:
        # KafkaEventLog.append goes through here too.
        raise FailedPrecondition("this service is read-only (started with --read-only): it accepts no writes")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release hook: nothing to reset (see ServiceHost.start)."""
