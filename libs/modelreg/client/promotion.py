"""The promotion sub-client: stages, aliases and traffic splits under policy, and the watch."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator, Mapping
from datetime import datetime

import grpc
from google.protobuf import field_mask_pb2

from modelreg.client.blocking import Blocking, Facade, Streaming
from modelreg.client.connection import Connection
from modelreg.client.errors import from_rpc_error
from modelreg.client.uris import parse_uri
from modelreg.gen.promotion.v1 import promotion_pb2

REPORT_STATES = ("IN_PROGRESS", "SUCCEEDED", "FAILED")


class PromotionClient:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def request_promotion(
        self,
        uri: str,
        moves: Mapping[str, int],
        *,
        comment: str = "",
        deployments: Mapping[str, Mapping[int, int]] | None = None,
        etag: str = "",
        request_id: str | None = None,
    ) -> promotion_pb2.TransitionRequest:
        """Asks to move pointers of `ns/model` at once, e.g. {"PRODUCTION": 7, "champion": 7};
        `deployments` sets traffic splits: {"prod": {7: 90, 8: 10}}."""
        connection = self._connection
        return await connection.call(
            connection.promotion.CreateTransitionRequest,
            promotion_pb2.CreateTransitionRequestRequest(
                parent=parse_uri(uri).model_name,
                transition_request=promotion_pb2.TransitionRequest(
                    moves=[promotion_pb2.PointerMove(pointer=p, version=v) for p, v in moves.items()],
                    deployments=[
                        promotion_pb2.Deployment(
                            environment=env,
                            weights=[
                                promotion_pb2.TrafficWeight(version=v, percent=pct)
                                for v, pct in split.items()
                            ],
                        )
                        for env, split in (deployments or {}).items()
                    ],
                    comment=comment,
                    etag=etag,
                ),
                request_id=request_id or str(uuid.uuid4()),
            ),
        )

    async def set_alias(
        self, uri: str, alias: str, version: int, *, comment: str = ""
    ) -> promotion_pb2.TransitionRequest:
        """Points `alias` at `version`; applied at once unless the alias is protected."""
        return await self.request_promotion(uri, {alias: version}, comment=comment)

    async def approve(self, transition: str, *, comment: str = "") -> promotion_pb2.TransitionRequest:
        connection = self._connection
        return await connection.call(
            connection.promotion.ApproveTransitionRequest,
            promotion_pb2.ApproveTransitionRequestRequest(
                name=transition, comment=comment, request_id=str(uuid.uuid4())
            ),
        )

    async def reject(self, transition: str, *, comment: str = "") -> promotion_pb2.TransitionRequest:
        connection = self._connection
        return await connection.call(
            connection.promotion.RejectTransitionRequest,
            promotion_pb2.RejectTransitionRequestRequest(
                name=transition, comment=comment, request_id=str(uuid.uuid4())
            ),
        )

    async def rollback(
        self, uri: str, stage: str = "PRODUCTION", *, reason: str, emergency: bool = False
    ) -> promotion_pb2.TransitionRequest:
        connection = self._connection
        return await connection.call(
            connection.promotion.Rollback,
            promotion_pb2.RollbackRequest(
                model=parse_uri(uri).model_name,
                stage=stage.upper(),
                reason=reason,
                emergency=emergency,
                request_id=str(uuid.uuid4()),
            ),
        )

    async def pointers(self, uri: str, *, as_of: datetime | None = None) -> promotion_pb2.Pointers:
        """The model's pointers now, or as they stood at `as_of` (an aware datetime)."""
        connection = self._connection
        request = promotion_pb2.GetPointersRequest(model=parse_uri(uri).model_name)
        if as_of is not None:
            request.as_of.FromDatetime(as_of)
        return await connection.call(connection.promotion.GetPointers, request)

    async def list_transition_requests(
        self, uri: str, *, filter: str = "", page_size: int = 200
    ) -> list[promotion_pb2.TransitionRequest]:
        """The transition requests of `ns/model` (matching `filter`, e.g.
        `state = "PENDING" AND requested_by = "alice"`), newest first, all pages."""
        connection = self._connection
        request = promotion_pb2.ListTransitionRequestsRequest(
            parent=parse_uri(uri).model_name, filter=filter, page_size=page_size
        )
        pages = connection.pages(connection.promotion.ListTransitionRequests, request)
        return [transition async for page in pages for transition in page.transition_requests]

    async def history(
        self, uri: str, *, pointer: str = "", filter: str = "", page_size: int = 200
    ) -> list[promotion_pb2.PointerHistoryEntry]:
        """Every applied transition of a model (or of one pointer, or matching `filter`, e.g.
        `pointer = "PRODUCTION" AND applied_time >= "2026-01-01T00:00:00Z"`), newest first."""
        connection = self._connection
        request = promotion_pb2.ListPointerHistoryRequest(
            model=parse_uri(uri).model_name, pointer=pointer, filter=filter, page_size=page_size
        )
        pages = connection.pages(connection.promotion.ListPointerHistory, request)
        return [entry async for page in pages for entry in page.entries]

    async def list_access_denials(
        self, namespace: str, *, filter: str = "", page_size: int = 200
    ) -> list[promotion_pb2.AccessDenial]:
        """The refused promotion calls in a namespace (matching `filter`, e.g.
        `principal = "mallory" AND deny_time >= "2026-01-01T00:00:00Z"`), newest first, all pages."""
        connection = self._connection
        request = promotion_pb2.ListAccessDenialsRequest(
            parent=f"namespaces/{namespace}", filter=filter, page_size=page_size
        )
        pages = connection.pages(connection.promotion.ListAccessDenials, request)
        return [denial async for page in pages for denial in page.denials]

    async def set_promotion_policy(
        self, policy: promotion_pb2.PromotionPolicy
    ) -> promotion_pb2.PromotionPolicy:
        connection = self._connection
        return await connection.call(
            connection.promotion.SetPromotionPolicy,
            promotion_pb2.SetPromotionPolicyRequest(policy=policy, request_id=str(uuid.uuid4())),
        )

    async def get_promotion_policy(self, uri: str) -> promotion_pb2.PromotionPolicy:
        """The policy that governs `ns/model`: its own, its namespace's, or the default."""
        connection = self._connection
        return await connection.call(
            connection.promotion.GetPromotionPolicy,
            promotion_pb2.GetPromotionPolicyRequest(parent=parse_uri(uri).model_name),
        )

    async def watch_promotions(
        self, parent: str = "", *, resume_token: str = ""
    ) -> AsyncGenerator[promotion_pb2.WatchPromotionsResponse, None]:
        """Applied transitions, in order and without gaps, from `resume_token` on, then live.
        Keep each item's `resume_token` to continue after a restart. `parent`: a namespace or model.
        Closing the generator (or leaving an `async for`) cancels the stream."""
        connection = self._connection
        stream = connection.promotion.WatchPromotions(
            promotion_pb2.WatchPromotionsRequest(parent=parent, resume_token=resume_token),
            metadata=connection.metadata(),
        )
        try:
            async for item in stream:
                yield item
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        finally:
            stream.cancel()

    # Deployments ---------------------------------------------------------------------------------------

    async def deployment(self, uri: str, environment: str) -> promotion_pb2.Deployment:
        """The current revision of one environment: split, serving code, runtime config and schema."""
        connection = self._connection
        return await connection.call(
            connection.promotion.GetDeployment,
            promotion_pb2.GetDeploymentRequest(model=parse_uri(uri).model_name, environment=environment),
        )

    async def update_deployment(
        self,
        uri: str,
        environment: str,
        *,
        reason: str,
        weights: Mapping[int, int] | None = None,
        image: str | None = None,
        repository: str | None = None,
        commit: str | None = None,
        config: Mapping[str, object] | str | None = None,
        config_schema: Mapping[str, object] | str | None = None,
        etag: str = "",
        request_id: str | None = None,
    ) -> promotion_pb2.TransitionRequest:
        """Requests a new revision of `environment` changing only what is given, e.g.
        `update_deployment("ns/m", "prod", image="reg/serve@sha256:...", reason="fix")` changes the
        serving code and leaves the split and the config; no model version is made. Governed like
        any transition: PENDING until approved when `deployments/{env}` is protected."""
        deployment = promotion_pb2.Deployment(environment=environment)
        paths: list[str] = []
        if weights is not None:
            paths.append("weights")
            deployment.weights.extend(
                promotion_pb2.TrafficWeight(version=v, percent=pct) for v, pct in weights.items()
            )
        if image is not None or repository is not None or commit is not None:
            paths.append("serving_code")
            deployment.serving_code.CopyFrom(
                promotion_pb2.ServingCode(image=image or "", repository=repository or "", commit=commit or "")
            )
        if config is not None:
            paths.append("runtime_config")
            deployment.runtime_config = config if isinstance(config, str) else json.dumps(config)
        if config_schema is not None:
            paths.append("config_schema")
            deployment.config_schema = (
                config_schema if isinstance(config_schema, str) else json.dumps(config_schema)
            )
        if not paths:
            raise ValueError("give at least one of weights, image, repository/commit, config, config_schema")
        connection = self._connection
        return await connection.call(
            connection.promotion.UpdateDeployment,
            promotion_pb2.UpdateDeploymentRequest(
                model=parse_uri(uri).model_name,
                deployment=deployment,
                update_mask=field_mask_pb2.FieldMask(paths=paths),
                reason=reason,
                etag=etag,
                request_id=request_id or str(uuid.uuid4()),
            ),
        )

    async def deployment_history(
        self, uri: str, environment: str, *, page_size: int = 200
    ) -> list[promotion_pb2.DeploymentRevision]:
        """Every applied revision of `environment`, newest first, with who, why and when."""
        connection = self._connection
        request = promotion_pb2.ListDeploymentRevisionsRequest(
            model=parse_uri(uri).model_name, environment=environment, page_size=page_size
        )
        pages = connection.pages(connection.promotion.ListDeploymentRevisions, request)
        return [revision async for page in pages for revision in page.revisions]

    async def rollback_deployment(
        self, uri: str, environment: str, *, reason: str, revision: int = 0, request_id: str | None = None
    ) -> promotion_pb2.TransitionRequest:
        """Requests a new revision equal to `revision` (0: the one before the current one)."""
        connection = self._connection
        return await connection.call(
            connection.promotion.RollbackDeployment,
            promotion_pb2.RollbackDeploymentRequest(
                model=parse_uri(uri).model_name,
                environment=environment,
                revision=revision,
                reason=reason,
                request_id=request_id or str(uuid.uuid4()),
            ),
        )

    async def report_deployment(
        self,
        uri: str,
        environment: str,
        state: str,
        *,
        revision: int = 0,
        version: int = 0,
        detail: str = "",
        request_id: str | None = None,
    ) -> promotion_pb2.DeploymentReport:
        """Acknowledges a rollout (for CD systems): `state` is IN_PROGRESS, SUCCEEDED or FAILED."""
        if state.upper() not in REPORT_STATES:
            raise ValueError(f"state must be one of {', '.join(REPORT_STATES)}, not {state!r}")
        connection = self._connection
        return await connection.call(
            connection.promotion.ReportDeployment,
            promotion_pb2.ReportDeploymentRequest(
                report=promotion_pb2.DeploymentReport(
                    model=parse_uri(uri).model_name,
                    environment=environment,
                    revision=revision,
                    version=version,
                    state=promotion_pb2.DeploymentReport.State.Value(f"STATE_{state.upper()}"),
                    detail=detail,
                ),
                request_id=request_id or str(uuid.uuid4()),
            ),
        )

    async def deployment_status(self, uri: str) -> promotion_pb2.DeploymentStatus:
        """Per environment: the desired revision against the acknowledged one, and drift."""
        connection = self._connection
        return await connection.call(
            connection.promotion.GetDeploymentStatus,
            promotion_pb2.GetDeploymentStatusRequest(model=parse_uri(uri).model_name),
        )


class SyncPromotionClient(Facade[PromotionClient]):
    request_promotion = Blocking(PromotionClient.request_promotion)
    set_alias = Blocking(PromotionClient.set_alias)
    approve = Blocking(PromotionClient.approve)
    reject = Blocking(PromotionClient.reject)
    rollback = Blocking(PromotionClient.rollback)
    pointers = Blocking(PromotionClient.pointers)
    list_transition_requests = Blocking(PromotionClient.list_transition_requests)
    history = Blocking(PromotionClient.history)
    list_access_denials = Blocking(PromotionClient.list_access_denials)
    set_promotion_policy = Blocking(PromotionClient.set_promotion_policy)
    get_promotion_policy = Blocking(PromotionClient.get_promotion_policy)
    watch_promotions = Streaming(PromotionClient.watch_promotions)
    deployment = Blocking(PromotionClient.deployment)
    update_deployment = Blocking(PromotionClient.update_deployment)
    deployment_history = Blocking(PromotionClient.deployment_history)
    rollback_deployment = Blocking(PromotionClient.rollback_deployment)
    report_deployment = Blocking(PromotionClient.report_deployment)
    deployment_status = Blocking(PromotionClient.deployment_status)
