"""The lineage gRPC servicer: map the request, call the use case, map the result back."""

from __future__ import annotations

from modelreg.gen.lineage.v1 import lineage_pb2 as pb
from modelreg.gen.lineage.v1 import lineage_pb2_grpc
from modelreg.grpcutil import times
from modelreg.grpcutil.context import ServicerContext as Context
from modelreg.grpcutil.context import request_context
from modelreg.grpcutil.interceptor import set_token
from modelreg.lineage import resources
from modelreg.lineage.api import mapping
from modelreg.lineage.application.evaluations import Evaluations
from modelreg.lineage.application.use_cases import Lineage, Written
from modelreg.lineage.domain.names import parse_record_name
from modelreg.lineage.domain.queries import to_dot, to_json


class LineageServicer(lineage_pb2_grpc.LineageServiceServicer):
    def __init__(self, lineage: Lineage, evaluations: Evaluations) -> None:
        self._lineage = lineage
        self._evaluations = evaluations

    def _answer(self, written: Written, context: Context) -> pb.LineageRecord:
        set_token(context, written.token)
        return mapping.record_out(written.record)

    async def RecordLineage(  # noqa: N802 - gRPC method name
        self, request: pb.RecordLineageRequest, context: Context
    ) -> pb.LineageRecord:
        events = request_context().event_context()
        record = mapping.record_in(request.record, request.parent, request.HasField("record"))
        return self._answer(await self._lineage.record(request.parent, record, events), context)

    async def SupersedeLineageRecord(  # noqa: N802
        self, request: pb.SupersedeLineageRecordRequest, context: Context
    ) -> pb.LineageRecord:
        events = request_context().event_context()
        version, _ = parse_record_name(request.name)
        record = mapping.record_in(request.record, str(version), request.HasField("record"))
        return self._answer(
            await self._lineage.supersede(request.name, record, request.reason, events), context
        )

    async def GetLineageRecord(  # noqa: N802
        self, request: pb.GetLineageRecordRequest, context: Context
    ) -> pb.LineageRecord:
        return mapping.record_out(await self._lineage.get_record(request.name))

    async def ListLineageRecords(  # noqa: N802
        self, request: pb.ListLineageRecordsRequest, context: Context
    ) -> pb.ListLineageRecordsResponse:
        page = await self._lineage.list_records(
            request.parent, request.show_superseded, request.page_size, request.page_token, request.filter
        )
        return pb.ListLineageRecordsResponse(
            records=[mapping.record_out(r) for r in page.items], next_page_token=page.next_page_token
        )

    async def GetLineageSubgraph(  # noqa: N802
        self, request: pb.GetLineageSubgraphRequest, context: Context
    ) -> pb.GetLineageSubgraphResponse:
        query = mapping.query_in(request.query, request.HasField("query"))
        as_of = times.as_of(request.as_of, "as_of") if request.HasField("as_of") else None
        page = await self._lineage.subgraph(query, request.page_size, request.page_token, as_of)
        return mapping.subgraph_out(page)

    async def FindDownstream(  # noqa: N802
        self, request: pb.FindDownstreamRequest, context: Context
    ) -> pb.FindDownstreamResponse:
        affected = await self._lineage.downstream(
            mapping.downstream_target(request), list(request.stages), request.max_hops
        )
        return mapping.downstream_out(affected)

    async def DiffLineage(  # noqa: N802
        self, request: pb.DiffLineageRequest, context: Context
    ) -> pb.DiffLineageResponse:
        return mapping.diff_out(await self._lineage.diff(request.model_version_a, request.model_version_b))

    async def GetReproductionInfo(  # noqa: N802
        self, request: pb.GetReproductionInfoRequest, context: Context
    ) -> pb.ReproductionInfo:
        return mapping.reproduction_out(await self._lineage.reproduction(request.model_version))

    async def ExportLineage(  # noqa: N802
        self, request: pb.ExportLineageRequest, context: Context
    ) -> pb.ExportLineageResponse:
        graph = await self._lineage.export(mapping.query_in(request.query, request.HasField("query")))
        if request.format == pb.EXPORT_FORMAT_DOT:
            return pb.ExportLineageResponse(
                content_type="text/vnd.graphviz", content=to_dot(graph.nodes, graph.edges)
            )
        return pb.ExportLineageResponse(
            content_type="application/json", content=to_json(graph.nodes, graph.edges)
        )

    # -- evaluations ---------------------------------------------------------------------------------

    async def RecordEvaluation(  # noqa: N802
        self, request: pb.RecordEvaluationRequest, context: Context
    ) -> pb.ModelEvaluation:
        events = request_context().event_context()
        evaluation = resources.evaluation_from_proto(request.evaluation, request.parent)
        recorded = await self._evaluations.record(request.parent, evaluation, events)
        set_token(context, recorded.token)
        return resources.stored_to_proto(recorded.evaluation)

    async def ListEvaluations(  # noqa: N802
        self, request: pb.ListEvaluationsRequest, context: Context
    ) -> pb.ListEvaluationsResponse:
        page = await self._evaluations.list(
            request.parent, request.filter, request.order_by, request.page_size, request.page_token
        )
        return pb.ListEvaluationsResponse(
            evaluations=[resources.stored_to_proto(e) for e in page.items],
            next_page_token=page.next_page_token,
        )

    async def CompareVersions(  # noqa: N802
        self, request: pb.CompareVersionsRequest, context: Context
    ) -> pb.CompareVersionsResponse:
        found = await self._evaluations.compare(
            request.model_version_a, request.model_version_b, request.dataset.uri, request.dataset.digest
        )
        return pb.CompareVersionsResponse(
            evaluation_a=resources.stored_to_proto(found.a),
            evaluation_b=resources.stored_to_proto(found.b),
            metrics=[
                pb.MetricComparison(metric=m.metric, a=m.a, b=m.b, delta=m.delta) for m in found.metrics
            ],
        )

    async def SetDegradationThresholds(  # noqa: N802
        self, request: pb.SetDegradationThresholdsRequest, context: Context
    ) -> pb.DegradationThresholds:
        events = request_context().event_context()
        thresholds = tuple(resources.threshold_from_proto(t) for t in request.thresholds.thresholds)
        saved, token = await self._evaluations.set_thresholds(request.thresholds.model, thresholds, events)
        set_token(context, token)
        return resources.thresholds_to_proto(request.thresholds.model, saved)

    async def GetDegradationThresholds(  # noqa: N802
        self, request: pb.GetDegradationThresholdsRequest, context: Context
    ) -> pb.DegradationThresholds:
        return resources.thresholds_to_proto(request.model, await self._evaluations.thresholds(request.model))
