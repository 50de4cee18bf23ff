"""The lineage sub-client: what versions were made from, and what was made from them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from modelreg.client.blocking import Blocking, Facade
from modelreg.client.connection import Connection
from modelreg.client.references import reference_name, version_name
from modelreg.client.uris import parse_uri
from modelreg.gen.lineage.v1 import lineage_pb2
from modelreg.gen.versioning.v1 import versioning_pb2

_DIRECTIONS = {
    "up": lineage_pb2.DIRECTION_UPSTREAM,
    "down": lineage_pb2.DIRECTION_DOWNSTREAM,
    "both": lineage_pb2.DIRECTION_BIDIRECTIONAL,
}
_FORMATS = {"dot": lineage_pb2.EXPORT_FORMAT_DOT, "json": lineage_pb2.EXPORT_FORMAT_JSON}


class LineageClient:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def record_lineage(
        self, uri: str, record: lineage_pb2.LineageRecord, *, request_id: str | None = None
    ) -> lineage_pb2.LineageRecord:
        """Records what a version was made from (datasets, code, config, run, parents...)."""
        connection = self._connection
        version = await version_name(connection, uri)
        return await connection.call(
            connection.lineage.RecordLineage,
            lineage_pb2.RecordLineageRequest(
                parent=version, record=record, request_id=request_id or str(uuid.uuid4())
            ),
        )

    async def list_lineage_records(
        self, uri: str, *, show_superseded: bool = False, filter: str = "", page_size: int = 200
    ) -> list[lineage_pb2.LineageRecord]:
        """The lineage records of a version (matching `filter`, e.g.
        `creator = "ci" AND create_time >= "2026-01-01T00:00:00Z"`), in recording order,
        all pages; `show_superseded` includes the corrected ones."""
        connection = self._connection
        request = lineage_pb2.ListLineageRecordsRequest(
            parent=await version_name(connection, uri),
            show_superseded=show_superseded,
            filter=filter,
            page_size=page_size,
        )
        pages = connection.pages(connection.lineage.ListLineageRecords, request)
        return [record async for page in pages for record in page.records]

    async def lineage_subgraph(
        self, uri: str, *, direction: str = "up", max_hops: int = 3, as_of: datetime | None = None
    ) -> lineage_pb2.GetLineageSubgraphResponse:
        """The lineage around a version, all pages merged into one response; with `as_of` (an
        aware datetime), the graph as it stood then (records recorded by then and not yet
        superseded by a correction recorded by then, and evaluations recorded by then)."""
        connection = self._connection
        lookup = versioning_pb2.GetModelVersionRequest(name=reference_name(uri))
        if as_of is not None:
            lookup.as_of.FromDatetime(as_of)
        version = await connection.call(connection.versioning.GetModelVersion, lookup)
        query = lineage_pb2.SubgraphQuery(
            start_nodes=[f"model_version:{version.name}"], direction=_DIRECTIONS[direction], max_hops=max_hops
        )
        merged = lineage_pb2.GetLineageSubgraphResponse()
        request = lineage_pb2.GetLineageSubgraphRequest(query=query, page_size=1000)
        if as_of is not None:
            request.as_of.FromDatetime(as_of)
        async for page in connection.pages(connection.lineage.GetLineageSubgraph, request):
            merged.nodes.extend(page.nodes)
            merged.edges.extend(page.edges)
        return merged

    async def find_downstream(
        self,
        *,
        dataset_uri: str = "",
        dataset_digest: str = "",
        version: str = "",
        stages: list[str] | None = None,
    ) -> list[lineage_pb2.AffectedVersion]:
        """The impact query: which versions were made from this dataset (or version), optionally
        only those a stage or alias points to."""
        connection = self._connection
        request = lineage_pb2.FindDownstreamRequest(stages=stages or [])
        if version:
            request.model_version = await version_name(connection, version)
        else:
            request.dataset.CopyFrom(lineage_pb2.Dataset(uri=dataset_uri, digest=dataset_digest))
        return list((await connection.call(connection.lineage.FindDownstream, request)).versions)

    async def diff_lineage(self, a: str, b: str) -> lineage_pb2.DiffLineageResponse:
        """What changed in data, code, config and environment between two versions."""
        connection = self._connection
        return await connection.call(
            connection.lineage.DiffLineage,
            lineage_pb2.DiffLineageRequest(
                model_version_a=await version_name(connection, a),
                model_version_b=await version_name(connection, b),
            ),
        )

    async def reproduction_info(self, uri: str) -> lineage_pb2.ReproductionInfo:
        connection = self._connection
        return await connection.call(
            connection.lineage.GetReproductionInfo,
            lineage_pb2.GetReproductionInfoRequest(model_version=await version_name(connection, uri)),
        )

    async def export_lineage(self, uri: str, *, fmt: str = "dot", max_hops: int = 3) -> str:
        """The lineage around a version as Graphviz DOT or JSON text."""
        connection = self._connection
        version = await version_name(connection, uri)
        response = await connection.call(
            connection.lineage.ExportLineage,
            lineage_pb2.ExportLineageRequest(
                query=lineage_pb2.SubgraphQuery(
                    start_nodes=[f"model_version:{version}"],
                    direction=lineage_pb2.DIRECTION_BIDIRECTIONAL,
                    max_hops=max_hops,
                ),
                format=_FORMATS[fmt],
            ),
        )
        return str(response.content)

    # -- evaluations ---------------------------------------------------------------------------------

    async def record_evaluation(
        self,
        uri: str,
        metrics: Mapping[str, float],
        *,
        kind: str = "OFFLINE",
        dataset: tuple[str, str] | None = None,
        window: tuple[datetime, datetime] | None = None,
        environment: str = "",
        evaluate_time: datetime | None = None,
        tool: str = "",
        run: str = "",
        request_id: str | None = None,
    ) -> lineage_pb2.ModelEvaluation:
        """Records how a version performed: `kind` OFFLINE (on `dataset` = (uri, digest)), SHADOW or
        PRODUCTION (on a traffic `window` = (start, end) of `environment`, or a dataset). A PRODUCTION
        result that crosses a degradation threshold lists the metric in `degraded_metrics`."""
        evaluation = lineage_pb2.ModelEvaluation(
            kind=lineage_pb2.ModelEvaluation.Kind.Value(f"KIND_{kind.upper()}"), tool=tool, run=run
        )
        evaluation.metrics.update(dict(metrics))
        if dataset is not None:
            evaluation.dataset.CopyFrom(lineage_pb2.Dataset(uri=dataset[0], digest=dataset[1]))
        if window is not None:
            evaluation.window.environment = environment
            evaluation.window.start_time.FromDatetime(window[0])
            evaluation.window.end_time.FromDatetime(window[1])
        if evaluate_time is not None:
            evaluation.evaluate_time.FromDatetime(evaluate_time)
        connection = self._connection
        return await connection.call(
            connection.lineage.RecordEvaluation,
            lineage_pb2.RecordEvaluationRequest(
                parent=await version_name(connection, uri),
                evaluation=evaluation,
                request_id=request_id or str(uuid.uuid4()),
            ),
        )

    async def list_evaluations(
        self,
        uri: str,
        *,
        filter: str = "",
        newest_first: bool = False,
        page_size: int = 500,
        limit: int | None = None,
    ) -> list[lineage_pb2.ModelEvaluation]:
        """The evaluations of a version (`ns/m/3`, `ns/m@production`) or of every version of a model
        (`ns/m`), by evaluation time, all pages (or the first `limit`); `filter` e.g.
        `kind = "PRODUCTION"`."""
        connection = self._connection
        parsed = parse_uri(uri)
        parent = (
            parsed.model_name
            if parsed.version is None and parsed.reference is None
            else await version_name(connection, uri)
        )
        request = lineage_pb2.ListEvaluationsRequest(
            parent=parent,
            filter=filter,
            order_by="evaluate_time desc" if newest_first else "evaluate_time",
            page_size=page_size if limit is None else min(page_size, limit),
        )
        return await connection.collect(
            connection.lineage.ListEvaluations, request, lambda page: page.evaluations, limit
        )

    async def compare_versions(
        self, a: str, b: str, dataset_uri: str, dataset_digest: str = ""
    ) -> lineage_pb2.CompareVersionsResponse:
        """Each metric of the two versions' newest evaluations on the dataset, with b - a."""
        connection = self._connection
        return await connection.call(
            connection.lineage.CompareVersions,
            lineage_pb2.CompareVersionsRequest(
                model_version_a=await version_name(connection, a),
                model_version_b=await version_name(connection, b),
                dataset=lineage_pb2.Dataset(uri=dataset_uri, digest=dataset_digest),
            ),
        )

    async def set_degradation_thresholds(
        self, uri: str, thresholds: Mapping[str, tuple[str, float]], *, request_id: str | None = None
    ) -> lineage_pb2.DegradationThresholds:
        """`{"auc": (">=", 0.85), "latency_ms": ("<", 50)}`: the healthy side of each metric; a
        PRODUCTION evaluation past one records a `version degraded` crossing, once per crossing."""
        numbers = {
            ">=": lineage_pb2.DegradationThreshold.COMPARISON_GREATER_OR_EQUAL,
            ">": lineage_pb2.DegradationThreshold.COMPARISON_GREATER,
            "<=": lineage_pb2.DegradationThreshold.COMPARISON_LESS_OR_EQUAL,
            "<": lineage_pb2.DegradationThreshold.COMPARISON_LESS,
        }
        for metric, (comparison, _) in thresholds.items():
            if comparison not in numbers:
                raise ValueError(f"{metric}: comparison must be one of {', '.join(numbers)}")
        connection = self._connection
        return await connection.call(
            connection.lineage.SetDegradationThresholds,
            lineage_pb2.SetDegradationThresholdsRequest(
                thresholds=lineage_pb2.DegradationThresholds(
                    model=parse_uri(uri).model_name,
                    thresholds=[
                        lineage_pb2.DegradationThreshold(metric=m, comparison=numbers[c], threshold=t)
                        for m, (c, t) in sorted(thresholds.items())
                    ],
                ),
                request_id=request_id or str(uuid.uuid4()),
            ),
        )

    async def degradation_thresholds(self, uri: str) -> lineage_pb2.DegradationThresholds:
        connection = self._connection
        return await connection.call(
            connection.lineage.GetDegradationThresholds,
            lineage_pb2.GetDegradationThresholdsRequest(model=parse_uri(uri).model_name),
        )


class SyncLineageClient(Facade[LineageClient]):
    record_lineage = Blocking(LineageClient.record_lineage)
    list_lineage_records = Blocking(LineageClient.list_lineage_records)
    lineage_subgraph = Blocking(LineageClient.lineage_subgraph)
    find_downstream = Blocking(LineageClient.find_downstream)
    diff_lineage = Blocking(LineageClient.diff_lineage)
    reproduction_info = Blocking(LineageClient.reproduction_info)
    export_lineage = Blocking(LineageClient.export_lineage)
    record_evaluation = Blocking(LineageClient.record_evaluation)
    list_evaluations = Blocking(LineageClient.list_evaluations)
    compare_versions = Blocking(LineageClient.compare_versions)
    set_degradation_thresholds = Blocking(LineageClient.set_degradation_thresholds)
    degradation_thresholds = Blocking(LineageClient.degradation_thresholds)
