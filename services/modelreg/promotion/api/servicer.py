"""The promotion gRPC servicer: map the request, call the use case, map the result back."""

from __future__ import annotations

from collections.abc import AsyncIterator

from modelreg.eventlog import EventContext
from modelreg.gen.promotion.v1 import promotion_pb2 as pb
from modelreg.gen.promotion.v1 import promotion_pb2_grpc
from modelreg.grpcutil import times
from modelreg.grpcutil.context import ServicerContext as Context
from modelreg.grpcutil.context import request_context
from modelreg.grpcutil.interceptor import set_token
from modelreg.promotion import resources
from modelreg.promotion.api import mapping
from modelreg.promotion.application.use_cases import Promotion, Written


def _events() -> EventContext:
    return request_context().event_context()


class PromotionServicer(promotion_pb2_grpc.PromotionServiceServicer):
    def __init__(self, promotion: Promotion) -> None:
        self._promotion = promotion

    def _answer(self, written: Written, context: Context) -> pb.TransitionRequest:
        set_token(context, written.token)
        return resources.request_to_proto(written.request)

    async def CreateTransitionRequest(  # noqa: N802 - gRPC method name
        self, request: pb.CreateTransitionRequestRequest, context: Context
    ) -> pb.TransitionRequest:
        model = mapping.model_name(request.parent, "parent")
        body = request.transition_request
        written = await self._promotion.create(
            model,
            mapping.moves(body, "transition_request"),
            mapping.deployments(body, "transition_request"),
            mapping.comment(body.comment, "transition_request.comment"),
            body.etag,
            _events(),
        )
        return self._answer(written, context)

    async def ApproveTransitionRequest(  # noqa: N802
        self, request: pb.ApproveTransitionRequestRequest, context: Context
    ) -> pb.TransitionRequest:
        name = mapping.request_name(request.name)
        comment = mapping.comment(request.comment, "comment")
        return self._answer(await self._promotion.approve(name, comment, _events()), context)

    async def RejectTransitionRequest(  # noqa: N802
        self, request: pb.RejectTransitionRequestRequest, context: Context
    ) -> pb.TransitionRequest:
        name = mapping.request_name(request.name)
        comment = mapping.comment(request.comment, "comment")
        return self._answer(await self._promotion.reject(name, comment, _events()), context)

    async def CancelTransitionRequest(  # noqa: N802
        self, request: pb.CancelTransitionRequestRequest, context: Context
    ) -> pb.TransitionRequest:
        name = mapping.request_name(request.name)
        comment = mapping.comment(request.comment, "comment")
        return self._answer(await self._promotion.cancel(name, comment, _events()), context)

    async def GetTransitionRequest(  # noqa: N802
        self, request: pb.GetTransitionRequestRequest, context: Context
    ) -> pb.TransitionRequest:
        name = mapping.request_name(request.name)
        return resources.request_to_proto(await self._promotion.get_request(name, _events()))

    async def ListTransitionRequests(  # noqa: N802
        self, request: pb.ListTransitionRequestsRequest, context: Context
    ) -> pb.ListTransitionRequestsResponse:
        model = mapping.model_name(request.parent, "parent")
        state = resources.STATE_FROM_PROTO.get(request.state)
        requests, token = await self._promotion.list_requests(
            model,
            state.value if state else None,
            request.page_size,
            request.page_token,
            _events(),
            request.filter,
        )
        return pb.ListTransitionRequestsResponse(
            transition_requests=[resources.request_to_proto(r) for r in requests], next_page_token=token
        )

    async def Rollback(self, request: pb.RollbackRequest, context: Context) -> pb.TransitionRequest:  # noqa: N802
        model = mapping.model_name(request.model, "model")
        written = await self._promotion.rollback(
            model,
            request.stage,
            mapping.comment(request.reason, "reason"),
            request.emergency,
            request.etag,
            _events(),
        )
        return self._answer(written, context)

    async def GetPointers(self, request: pb.GetPointersRequest, context: Context) -> pb.Pointers:  # noqa: N802
        model = mapping.model_name(request.model, "model")
        as_of = times.as_of(request.as_of, "as_of") if request.HasField("as_of") else None
        return mapping.pointers_to_proto(await self._promotion.pointers(model, _events(), as_of))

    async def ListPointerHistory(  # noqa: N802
        self, request: pb.ListPointerHistoryRequest, context: Context
    ) -> pb.ListPointerHistoryResponse:
        model = mapping.model_name(request.model, "model")
        entries, token = await self._promotion.history(
            model, request.pointer, request.page_size, request.page_token, _events(), request.filter
        )
        return pb.ListPointerHistoryResponse(
            entries=[resources.history_entry_to_proto(e) for e in entries], next_page_token=token
        )

    async def SetPromotionPolicy(  # noqa: N802
        self, request: pb.SetPromotionPolicyRequest, context: Context
    ) -> pb.PromotionPolicy:
        parent = mapping.policy_parent(request.policy.parent, "policy.parent")
        policy, token = await self._promotion.set_policy(parent, mapping.policy(request.policy), _events())
        set_token(context, token)
        return resources.policy_to_proto(parent, policy)

    async def GetPromotionPolicy(  # noqa: N802
        self, request: pb.GetPromotionPolicyRequest, context: Context
    ) -> pb.PromotionPolicy:
        parent = mapping.policy_parent(request.parent, "parent")
        source, policy, default = await self._promotion.get_policy(parent, _events())
        return resources.policy_to_proto(source, policy, default=default)

    async def ListAccessDenials(  # noqa: N802
        self, request: pb.ListAccessDenialsRequest, context: Context
    ) -> pb.ListAccessDenialsResponse:
        namespace = mapping.namespace_name(request.parent, "parent").split("/")[1]
        denials, token = await self._promotion.denials(
            namespace, request.page_size, request.page_token, _events(), request.filter
        )
        return pb.ListAccessDenialsResponse(
            denials=[resources.denial_to_proto(d, at) for d, at in denials], next_page_token=token
        )

    async def WatchPromotions(  # noqa: N802
        self, request: pb.WatchPromotionsRequest, context: Context
    ) -> AsyncIterator[pb.WatchPromotionsResponse]:
        parent = mapping.watch_parent(request.parent)
        async for entry, token in self._promotion.watch(parent, request.resume_token, _events()):
            yield pb.WatchPromotionsResponse(
                entry=resources.history_entry_to_proto(entry), resume_token=token
            )

    # Deployments ---------------------------------------------------------------------------------------

    async def GetDeployment(  # noqa: N802
        self, request: pb.GetDeploymentRequest, context: Context
    ) -> pb.Deployment:
        model = mapping.model_name(request.model, "model")
        environment = mapping.environment(request.environment, "environment")
        return resources.deployment_to_proto(
            await self._promotion.get_deployment(model, environment, _events())
        )

    async def UpdateDeployment(  # noqa: N802
        self, request: pb.UpdateDeploymentRequest, context: Context
    ) -> pb.TransitionRequest:
        model = mapping.model_name(request.model, "model")
        written = await self._promotion.update_deployment(
            model,
            mapping.deployment(request.deployment, "deployment"),
            mapping.deployment_fields(list(request.update_mask.paths), "update_mask"),
            mapping.comment(request.reason, "reason"),
            request.etag,
            _events(),
        )
        return self._answer(written, context)

    async def ListDeploymentRevisions(  # noqa: N802
        self, request: pb.ListDeploymentRevisionsRequest, context: Context
    ) -> pb.ListDeploymentRevisionsResponse:
        model = mapping.model_name(request.model, "model")
        environment = mapping.environment(request.environment, "environment")
        revisions, token = await self._promotion.deployment_revisions(
            model, environment, request.page_size, request.page_token, _events()
        )
        return pb.ListDeploymentRevisionsResponse(
            revisions=[mapping.revision_to_proto(r) for r in revisions], next_page_token=token
        )

    async def RollbackDeployment(  # noqa: N802
        self, request: pb.RollbackDeploymentRequest, context: Context
    ) -> pb.TransitionRequest:
        model = mapping.model_name(request.model, "model")
        written = await self._promotion.rollback_deployment(
            model,
            mapping.environment(request.environment, "environment"),
            request.revision,
            mapping.comment(request.reason, "reason"),
            request.etag,
            _events(),
        )
        return self._answer(written, context)

    async def ReportDeployment(  # noqa: N802
        self, request: pb.ReportDeploymentRequest, context: Context
    ) -> pb.DeploymentReport:
        report, token = await self._promotion.report_deployment(
            mapping.report(request.report, "report"), _events()
        )
        set_token(context, token)
        return resources.report_to_proto(report)

    async def GetDeploymentStatus(  # noqa: N802
        self, request: pb.GetDeploymentStatusRequest, context: Context
    ) -> pb.DeploymentStatus:
        model = mapping.model_name(request.model, "model")
        return mapping.status_to_proto(model, await self._promotion.deployment_status(model, _events()))
