"""The promotion use cases: authorize, validate, decide through the log, read back.

Roles are checked once, by the interceptor, against the shared method ->
permission table (modelreg.access). The decisions that need more than a role
(separation of duties, cancelling someone else's request, which needs admin)
are made here; every denial, the interceptor's included (record_denial), is
appended as an AccessDenied fact on `namespaces/{ns}/access-denials` before the
error reaches the caller, so the audit trail lives in the log like everything
else.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar

from modelreg.access import Denial
from modelreg.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from modelreg.eventlog import ConsistencyToken, EventContext, InvalidToken
from modelreg.paging import Keyset, page_request
from modelreg.promotion.application.ports import (
    Progress,
    PromotionCommands,
    PromotionReader,
    VersionFactsReader,
)
from modelreg.promotion.domain import filters
from modelreg.promotion.domain.commands import (
    ApproveTransition,
    CancelTransition,
    Command,
    CreateTransition,
    RejectTransition,
    ReportDeployment,
    SetPolicy,
)
from modelreg.promotion.domain.decide import decide, rollback_moves
from modelreg.promotion.domain.events import AccessDenied, Event
from modelreg.promotion.domain.queries import (
    DeploymentRevision,
    EnvironmentStatus,
    HistoryEntry,
    deployment_revision,
    deployment_status,
    merge_deployment,
    referenced_versions,
)
from modelreg.promotion.domain.state import Aggregate, Pointers, Request
from modelreg.promotion.domain.values import (
    DEFAULT_POLICY,
    DEPLOYMENT_PREFIX,
    Deployment,
    Move,
    Policy,
    Report,
    RequestState,
    VersionFacts,
    check_deployment,
    check_moves,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Written:
    request: Request
    token: ConsistencyToken


def namespace_of(name: str) -> str:
    return name.split("/")[1]


def model_of_request(name: str) -> str:
    return name.rsplit("/transitionRequests/", 1)[0]


def _revision(row: tuple[int, *tuple[object, ...]]) -> Keyset:
    """Rows are listed newest first by stream revision, which is unique within the listed stream(s)."""
    return (row[0],)


class Promotion:
    def __init__(
        self,
        *,
        reader: PromotionReader,
        facts: VersionFactsReader,
        commands: PromotionCommands,
        is_admin: Callable[[str, str], bool],
        progress: Progress | None,
        topic: str,
        partitions: int,
        watch_idle_s: float = 30.0,
    ) -> None:
        self._reader = reader
        self._facts = facts
        self._commands = commands
        self._is_admin = is_admin
        """(actor, namespace) -> whether the actor is an admin there (from modelreg.access)."""
        self._progress = progress
        self._topic = topic
        self._partitions = partitions
        self._watch_idle_s = watch_idle_s

    # Access ------------------------------------------------------------------

    async def _deny(
        self, context: EventContext, namespace: str, action: str, resource: str, reason: str
    ) -> None:
        # The denial is its own fact, not part of the client's request: no
        # request_id, so a retried request that is denied again is recorded again.
        denial = EventContext(
            actor=context.actor, correlation_id=context.correlation_id, causation_id=context.causation_id
        )
        await self._commands.append(
            f"namespaces/{namespace}/access-denials",
            denial,
            AccessDenied(context.actor, action, resource, reason),
        )

    async def record_denial(self, denial: Denial, context: EventContext) -> None:
        """Records a denial made by the interceptor's role check."""
        await self._deny(context, denial.namespace, denial.action, denial.resource, denial.reason)

    async def _recording_denials(
        self, context: EventContext, action: str, resource: str, run: Callable[[], Awaitable[T]]
    ) -> T:
        try:
            return await run()
        except PermissionDenied as denied:
            await self._deny(context, namespace_of(resource), action, resource, str(denied))
            raise

    # Commands ----------------------------------------------------------------

    async def _policy(self, model: str) -> Policy:
        _, policy = await self._reader.effective_policy(model)
        return policy or DEFAULT_POLICY

    async def _read_back(self, event_id: str, token: ConsistencyToken) -> Written:
        request = await self._reader.request_by_event(event_id)
        if request is None:
            raise NotFound(f"the request of event {event_id} is not in the read model after it was accepted")
        return Written(request, token)

    async def create(
        self,
        model: str,
        moves: Sequence[Move],
        deployments: Sequence[Deployment],
        comment: str,
        etag: str,
        context: EventContext,
    ) -> Written:
        check_moves(moves, deployments, "transition_request")
        # Independent reads: in parallel, on two pooled connections.
        policy, facts = await asyncio.gather(
            self._policy(model), self._facts.facts(model, sorted(referenced_versions(moves, deployments)))
        )
        command = CreateTransition(
            f"{model}/transitionRequests/{uuid.uuid4().hex}",
            tuple(moves),
            tuple(deployments),
            comment,
            context.actor,
            datetime.now(UTC),
            etag=etag,
            policy=policy,
            facts=facts,
        )
        result = await self._commands.run(model, context, lambda state: decide(state, command))
        return await self._read_back(result.event_id, result.token)

    async def rollback(
        self, model: str, stage: str, reason: str, emergency: bool, etag: str, context: EventContext
    ) -> Written:
        if not reason.strip():
            raise InvalidArgument.of("reason", "a rollback needs a reason")
        policy = await self._policy(model)
        current = Aggregate(await self._reader.pointers(model))
        try:
            target = rollback_moves(current, stage)
        except FailedPrecondition:
            # A retry of a rollback that was carried out may find nothing left to roll back.
            done = await self._commands.original(model, context)
            if done is None:
                raise
            return await self._read_back(done.event_id, done.token)
        facts = await self._facts.facts(model, [m.version for m in target])
        command = CreateTransition(
            f"{model}/transitionRequests/{uuid.uuid4().hex}",
            (),
            (),
            reason,
            context.actor,
            datetime.now(UTC),
            etag=etag,
            rollback=True,
            rollback_reason=reason,
            emergency=emergency,
            policy=policy,
            facts=facts,
        )
        # The previous version is read again from the state the decision is made on.
        result = await self._commands.run(
            model, context, lambda state: decide(state, replace(command, moves=rollback_moves(state, stage)))
        )
        return await self._read_back(result.event_id, result.token)

    async def _decide(
        self,
        action: str,
        name: str,
        context: EventContext,
        command_for: Callable[[Mapping[int, VersionFacts], bool], Command],
    ) -> Written:
        """Approve, reject or cancel: `command_for(facts, is_admin)` is the command, given what the caches
        know of the request's versions and whether the actor is an admin of its namespace."""
        model = model_of_request(name)
        namespace = namespace_of(model)
        request = await self._reader.request(name)
        if request is None or request.state is not RequestState.PENDING:
            # A retry of a decision that was carried out finds the request decided already.
            done = await self._commands.original(model, context)
            if done is not None and (decided := await self._reader.request(name)) is not None:
                return Written(decided, done.token)
            if request is None:
                raise NotFound(f"{name} does not exist")
            raise FailedPrecondition(f"{name} is {request.state.value}, not PENDING")
        facts = await self._facts.facts(
            model, sorted(referenced_versions(request.moves, request.deployments))
        )
        command = command_for(facts, self._is_admin(context.actor, namespace))

        async def run() -> Written:
            result = await self._commands.run(model, context, lambda state: decide(state, command))
            written = await self._reader.request(name)
            assert written is not None
            return Written(written, result.token)

        return await self._recording_denials(context, action, name, run)

    async def approve(self, name: str, comment: str, context: EventContext) -> Written:
        return await self._decide(
            "ApproveTransitionRequest",
            name,
            context,
            lambda facts, _: ApproveTransition(name, comment, context.actor, datetime.now(UTC), facts),
        )

    async def reject(self, name: str, comment: str, context: EventContext) -> Written:
        return await self._decide(
            "RejectTransitionRequest",
            name,
            context,
            lambda _, __: RejectTransition(name, comment, context.actor, datetime.now(UTC)),
        )

    async def cancel(self, name: str, comment: str, context: EventContext) -> Written:
        return await self._decide(
            "CancelTransitionRequest",
            name,
            context,
            lambda _, is_admin: CancelTransition(name, comment, context.actor, datetime.now(UTC), is_admin),
        )

    async def set_policy(
        self, parent: str, policy: Policy, context: EventContext
    ) -> tuple[Policy, ConsistencyToken]:
        # A policy replaces the previous one whatever it was: an append-only fact, decided on no state.
        # Pending requests keep the policy they were created under.
        result = await self._commands.append(parent, context, decide(None, SetPolicy(parent, policy)))
        return policy, result.token

    # Deployments -------------------------------------------------------------

    async def update_deployment(
        self,
        model: str,
        change: Deployment,
        fields: frozenset[str],
        reason: str,
        etag: str,
        context: EventContext,
    ) -> Written:
        """A new revision of one environment: the named fields replace the current revision's, the
        others stay. The merge is made again on the state the decision is made on."""
        if not reason.strip():
            raise InvalidArgument.of("reason", "a deployment change needs a reason")
        current = (await self._reader.pointers(model)).deployments.get(change.environment)
        merged = merge_deployment(current, change, fields)
        if not merged.weights and "weights" not in fields:
            raise FailedPrecondition(
                f"deployment {change.environment} of {model} has no traffic split: set its weights first"
            )
        check_deployment(merged, "deployment")
        command = await self._deployment_transition(model, merged, reason, etag, context)

        def decide_merged(state: Aggregate) -> Event:
            again = merge_deployment(state.pointers.deployments.get(change.environment), change, fields)
            if again != merged:
                check_deployment(again, "deployment")
            return decide(state, replace(command, deployments=(again,)))

        result = await self._commands.run(model, context, decide_merged)
        return await self._read_back(result.event_id, result.token)

    async def _deployment_transition(
        self,
        model: str,
        spec: Deployment,
        reason: str,
        etag: str,
        context: EventContext,
        *,
        rollback: bool = False,
    ) -> CreateTransition:
        """The transition request that makes `spec` the environment's next revision, under the model's
        policy and with the facts of the versions it serves."""
        policy, facts = await asyncio.gather(
            self._policy(model), self._facts.facts(model, sorted(referenced_versions((), (spec,))))
        )
        return CreateTransition(
            f"{model}/transitionRequests/{uuid.uuid4().hex}",
            (),
            (spec,),
            reason,
            context.actor,
            datetime.now(UTC),
            etag=etag,
            rollback=rollback,
            rollback_reason=reason if rollback else "",
            policy=policy,
            facts=facts,
        )

    async def rollback_deployment(
        self, model: str, environment: str, revision: int, reason: str, etag: str, context: EventContext
    ) -> Written:
        """A new revision equal to an earlier one (0: the one before the current revision)."""
        if not reason.strip():
            raise InvalidArgument.of("reason", "a rollback needs a reason")
        if revision < 0:
            raise InvalidArgument.of("revision", "must be >= 0")
        current = (await self._reader.pointers(model)).deployments.get(environment)
        if current is None:
            raise NotFound(f"{model} has no deployment {environment}")
        target = revision or current.revision - 1
        if target < 1 or target > current.revision:
            raise FailedPrecondition(
                f"deployment {environment} of {model} has revisions 1-{current.revision}; "
                f"there is no revision {target} to return to"
            )
        earlier = await self._reader.deployment_revision(model, environment, target)
        if earlier is None:
            raise NotFound(f"revision {target} of deployment {environment} of {model} is not in the history")
        spec = replace(earlier.deployment, revision=0, restored=target)
        command = await self._deployment_transition(model, spec, reason, etag, context, rollback=True)
        result = await self._commands.run(model, context, lambda state: decide(state, command))
        return await self._read_back(result.event_id, result.token)

    async def get_deployment(self, model: str, environment: str, context: EventContext) -> Deployment:
        deployment = (await self._reader.pointers(model)).live_deployments.get(environment)
        if deployment is None:
            raise NotFound(f"{model} has no deployment {environment}")
        return deployment

    async def deployment_revisions(
        self, model: str, environment: str, page_size: int, page_token: str, context: EventContext
    ) -> tuple[list[DeploymentRevision], str]:
        paging = page_request(page_size, page_token, [int], model=model, environment=environment)
        rows = await self._reader.history(model, DEPLOYMENT_PREFIX + environment, paging.after, paging.fetch)
        page = paging.page(rows, _revision)
        revisions = [deployment_revision(entry, environment) for _, entry in page.items]
        return [r for r in revisions if r is not None], page.next_page_token

    async def report_deployment(
        self, report: Report, context: EventContext
    ) -> tuple[Report, ConsistencyToken]:
        """Records a CD system's acknowledgement on the model's stream."""
        if report.revision < 0 or report.version < 0:
            raise InvalidArgument.of("report.revision", "revision and version must be >= 0")
        if not report.revision and not report.version:
            raise InvalidArgument.of("report.revision", "name the revision (or the version) rolled out")
        command = ReportDeployment(replace(report, reporter=context.actor, time=datetime.now(UTC)))
        result = await self._commands.run(report.model, context, lambda state: decide(state, command))
        reports = await self._reader.reports(report.model)
        return reports.get(report.environment, command.report), result.token

    async def deployment_status(self, model: str, context: EventContext) -> list[EnvironmentStatus]:
        pointers, reports = await asyncio.gather(self._reader.pointers(model), self._reader.reports(model))
        return deployment_status(pointers, reports)

    # Queries -----------------------------------------------------------------

    async def get_policy(self, parent: str, context: EventContext) -> tuple[str, Policy, bool]:
        if parent.count("/") == 3:
            source, policy = await self._reader.effective_policy(parent)
        else:
            source, policy = parent, await self._reader.policy(parent)
        return source, policy or DEFAULT_POLICY, policy is None

    async def pointers(self, model: str, context: EventContext, as_of: datetime | None = None) -> Pointers:
        if as_of is not None:
            return await self._reader.pointers_as_of(model, as_of)
        return await self._reader.pointers(model)

    async def get_request(self, name: str, context: EventContext) -> Request:
        request = await self._reader.request(name)
        if request is None:
            raise NotFound(f"{name} does not exist")
        return request

    async def list_requests(
        self,
        model: str,
        state: str | None,
        page_size: int,
        page_token: str,
        context: EventContext,
        filter_text: str = "",
    ) -> tuple[list[Request], str]:
        where = filters.parse_filter(filter_text, filters.REQUESTS)
        paging = page_request(page_size, page_token, [int], parent=model, state=state, filter=filter_text)
        rows = await self._reader.requests(model, state, paging.after, paging.fetch, where)
        page = paging.page(rows, _revision)
        return [r for _, r in page.items], page.next_page_token

    async def history(
        self,
        model: str,
        pointer: str,
        page_size: int,
        page_token: str,
        context: EventContext,
        filter_text: str = "",
    ) -> tuple[list[HistoryEntry], str]:
        where = filters.parse_filter(filter_text, filters.HISTORY)
        paging = page_request(page_size, page_token, [int], model=model, pointer=pointer, filter=filter_text)
        rows = await self._reader.history(model, pointer or None, paging.after, paging.fetch, where)
        page = paging.page(rows, _revision)
        return [entry for _, entry in page.items], page.next_page_token

    async def denials(
        self, namespace: str, page_size: int, page_token: str, context: EventContext, filter_text: str = ""
    ) -> tuple[list[tuple[AccessDenied, datetime]], str]:
        where = filters.parse_filter(filter_text, filters.DENIALS)
        paging = page_request(
            page_size, page_token, [int], parent=f"namespaces/{namespace}", filter=filter_text
        )
        page = paging.page(
            await self._reader.denials(namespace, paging.after, paging.fetch, where), _revision
        )
        return [(d, at) for _, d, at in page.items], page.next_page_token

    # Watch -------------------------------------------------------------------

    def _decode_token(self, token: str) -> dict[int, int]:
        if not token:
            return {}
        try:
            required = ConsistencyToken.decode(token).required
        except InvalidToken:
            raise InvalidArgument.of("resume_token", "is not a token from WatchPromotions") from None
        if any(topic != self._topic for topic, _ in required):
            raise InvalidArgument.of("resume_token", "is not a token from WatchPromotions of this registry")
        return {partition: offset for (_, partition), offset in required.items()}

    def _encode_token(self, delivered: dict[int, int]) -> str:
        return ConsistencyToken({(self._topic, p): o for p, o in delivered.items()}).encode()

    async def watch(
        self, parent: str, resume_token: str, context: EventContext
    ) -> AsyncIterator[tuple[HistoryEntry, str]]:
        """Applied transitions from the token on, then live ones, without gaps or repeats.

        The token is the next offset to deliver per partition of the promotion
        topic. Rows and checkpoints commit in one transaction, so every
        transition below a committed checkpoint is already readable: reading
        [delivered, checkpoint) per partition, then waiting for a checkpoint to
        move (LISTEN/NOTIFY, no polling), never skips one. Offsets survive
        restarts and replays, so a token stays valid across both.
        """
        delivered = self._decode_token(resume_token)
        while True:
            checkpoints = await self._reader.checkpoints(self._topic)
            ranges = {
                p: (delivered.get(p, 0), hi) for p, hi in checkpoints.items() if hi > delivered.get(p, 0)
            }
            for partition, offset, entry in await self._reader.transitions_between(
                self._topic, parent, ranges
            ):
                delivered[partition] = offset + 1
                yield entry, self._encode_token(delivered)
            for partition, hi in checkpoints.items():
                delivered[partition] = max(delivered.get(partition, 0), hi)
            await self._wait_for_progress(delivered)

    async def _wait_for_progress(self, delivered: dict[int, int]) -> None:
        if self._progress is None:
            raise FailedPrecondition("this process does not follow projection progress")
        progress = self._progress
        waits = [
            asyncio.ensure_future(
                progress.wait_for({(self._topic, p): delivered.get(p, 0) + 1}, self._watch_idle_s)
            )
            for p in sorted(set(range(self._partitions)) | set(delivered))
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            for wait in waits:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await wait
