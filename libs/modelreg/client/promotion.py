"""The promotion sub-client: stages, aliases and traffic splits under policy, and the watch."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Mapping
from datetime import datetime

import grpc

from modelreg.client.blocking import Blocking, Facade, Streaming
from modelreg.client.connection import Connection
from modelreg.client.errors import from_rpc_error
from modelreg.client.uris import parse_uri
from modelreg.gen.promotion.v1 import promotion_pb2


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
    watch_promotions = Streaming(PromotionClient.watch_promotions)
