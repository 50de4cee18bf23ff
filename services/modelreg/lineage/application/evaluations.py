"""The evaluation use cases: record (judged against the degradation thresholds), list, compare, and the
thresholds themselves."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from modelreg.errors import FailedPrecondition, InvalidArgument, NotFound
from modelreg.eventlog import ConsistencyToken, EventContext
from modelreg.lineage.application.ports import EvaluationCommands, EvaluationReader, VersionDirectory
from modelreg.lineage.domain import filters
from modelreg.lineage.domain.evaluations import (
    Comparison,
    Evaluation,
    RecordEvaluation,
    StoredEvaluation,
    Threshold,
    ThresholdsSet,
    check_evaluation,
    check_thresholds,
    compare,
    decide_evaluation,
)
from modelreg.names import parse_model_name, parse_version_name
from modelreg.paging import Page, page_request

DEFAULT_PAGE_SIZE = 100
ORDERS = {"": False, "evaluate_time": False, "evaluate_time asc": False, "evaluate_time desc": True}


@dataclass(frozen=True, slots=True)
class Recorded:
    evaluation: StoredEvaluation
    token: ConsistencyToken


class Evaluations:
    def __init__(
        self, reader: EvaluationReader, commands: EvaluationCommands, versions: VersionDirectory
    ) -> None:
        self._reader = reader
        self._commands = commands
        self._versions = versions

    async def record(self, parent: str, evaluation: Evaluation, context: EventContext) -> Recorded:
        version = parse_version_name(parent, "parent")
        evaluation = check_evaluation(replace(evaluation, model_version=str(version)))
        known = await self._versions.states([str(version)])
        if (
            known.get(str(version), True)
            and await self._commands.original(version.model_name, context) is None
        ):
            raise NotFound(
                f"{version} does not exist (or is deleted) in the versioning service; "
                "if it was just created, pass its consistency token"
            )
        command = RecordEvaluation(evaluation, datetime.now(UTC))
        result = await self._commands.run(
            version.model_name, context, lambda health: decide_evaluation(health, command), part=str(version)
        )
        stored = await self._reader.evaluation(result.event_id)
        if stored is None:
            raise NotFound(f"evaluation {result.event_id} is not in the read model after it was accepted")
        return Recorded(stored, result.token)

    async def list(
        self, parent: str, filter_text: str, order_by: str, page_size: int, page_token: str
    ) -> Page[StoredEvaluation]:
        """A version's evaluations, or (a model name) every version's."""
        if parent.count("/") == 5:
            version = parse_version_name(parent, "parent")
            model, one = version.model_name, str(version)
        else:
            model, one = str(parse_model_name(parent, "parent")), None
        normalized = " ".join(order_by.split()).lower()
        if normalized not in ORDERS:
            raise InvalidArgument.of(
                "order_by", f"{order_by[:80]!r} must be `evaluate_time` or `evaluate_time desc`"
            )
        descending = ORDERS[normalized]
        where = filters.parse_filter(filter_text, filters.EVALUATIONS)
        paging = page_request(
            page_size,
            page_token,
            [datetime, str],
            default_size=DEFAULT_PAGE_SIZE,
            parent=parent,
            filter=filter_text,
            order_by=normalized,
        )
        rows = await self._reader.evaluations(model, one, where, descending, paging.after, paging.fetch)
        return paging.page(rows, lambda e: (e.evaluation.evaluate_time or e.create_time, e.id))

    async def compare(self, a: str, b: str, dataset_uri: str, dataset_digest: str) -> Comparison:
        version_a = str(parse_version_name(a, "model_version_a"))
        version_b = str(parse_version_name(b, "model_version_b"))
        if not dataset_uri:
            raise InvalidArgument.of(
                "dataset.uri", "is required: the dataset both versions were evaluated on"
            )
        found = []
        for version in (version_a, version_b):
            newest = await self._reader.newest_on(version, dataset_uri, dataset_digest)
            if newest is None:
                on = dataset_uri + (f"@{dataset_digest}" if dataset_digest else "")
                raise FailedPrecondition(f"{version} has no evaluation on {on}")
            found.append(newest)
        return compare(found[0], found[1])

    async def set_thresholds(
        self, model: str, thresholds: tuple[Threshold, ...], context: EventContext
    ) -> tuple[tuple[Threshold, ...], ConsistencyToken]:
        name = str(parse_model_name(model, "thresholds.model"))
        check_thresholds(thresholds)
        result = await self._commands.append(name, context, ThresholdsSet(name, thresholds))
        return thresholds, result.token

    async def thresholds(self, model: str) -> tuple[Threshold, ...]:
        return await self._reader.thresholds(str(parse_model_name(model, "model")))
