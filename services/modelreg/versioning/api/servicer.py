"""The versioning gRPC servicer: map the request, call the use case, map the result back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

from modelreg.errors import InvalidArgument
from modelreg.gen.versioning.v1 import versioning_pb2, versioning_pb2_grpc
from modelreg.grpcutil import times
from modelreg.grpcutil.context import ServicerContext as Context
from modelreg.grpcutil.context import request_context
from modelreg.grpcutil.interceptor import set_token
from modelreg.versioning.api import mapping
from modelreg.versioning.application.use_cases import DEFAULT_GRACE, Versioning, Written
from modelreg.versioning.domain.commands import Deprecate, SetRetention
from modelreg.versioning.domain.names import parse_model, parse_reference, parse_version_name
from modelreg.versioning.resources import file_to_proto, version_to_proto

MAX_GRACE_SECONDS = 10 * 365 * 86400


class VersioningServicer(versioning_pb2_grpc.VersioningServiceServicer):
    def __init__(self, versioning: Versioning) -> None:
        self._v = versioning

    def _answer(self, written: Written, context: Context) -> versioning_pb2.ModelVersion:
        set_token(context, written.token)
        return version_to_proto(written.version)

    async def CreateModelVersion(  # noqa: N802 - gRPC method name
        self, request: versioning_pb2.CreateModelVersionRequest, context: Context
    ) -> versioning_pb2.ModelVersion:
        events = request_context().event_context()
        return self._answer(await self._v.create(mapping.create_command(request), events), context)

    async def GetModelVersion(  # noqa: N802
        self, request: versioning_pb2.GetModelVersionRequest, context: Context
    ) -> versioning_pb2.ModelVersion:
        as_of = times.as_of(request.as_of, "as_of") if request.HasField("as_of") else None
        return version_to_proto(await self._v.get(parse_reference(request.name), as_of))

    async def ListModelVersions(  # noqa: N802
        self, request: versioning_pb2.ListModelVersionsRequest, context: Context
    ) -> versioning_pb2.ListModelVersionsResponse:
        versions, token = await self._v.list(
            parse_model(request.parent),
            request.page_size,
            request.page_token,
            request.show_deleted,
            request.filter,
        )
        return versioning_pb2.ListModelVersionsResponse(
            model_versions=[version_to_proto(v) for v in versions], next_page_token=token
        )

    async def UpdateModelVersion(  # noqa: N802
        self, request: versioning_pb2.UpdateModelVersionRequest, context: Context
    ) -> versioning_pb2.ModelVersion:
        events = request_context().event_context()
        model, command = mapping.update_command(request)
        return self._answer(await self._v.update(model, command, events), context)

    async def PrepareUpload(  # noqa: N802
        self, request: versioning_pb2.PrepareUploadRequest, context: Context
    ) -> versioning_pb2.PrepareUploadResponse:
        events = request_context().event_context()
        model, number = parse_version_name(request.name)
        prepared = await self._v.prepare_upload(model, number, mapping.files_of(request), events)
        if prepared.token is not None:
            set_token(context, prepared.token)
        return versioning_pb2.PrepareUploadResponse(
            model_version=version_to_proto(prepared.version),
            missing=[
                versioning_pb2.UploadTarget(
                    sha256=t.sha256,
                    size=t.size,
                    url=t.url,
                    upload_id=t.upload_id,
                    part_size=t.part_size,
                    part_urls=t.part_urls,
                )
                for t in prepared.missing
            ],
        )

    async def FinalizeModelVersion(  # noqa: N802
        self, request: versioning_pb2.FinalizeModelVersionRequest, context: Context
    ) -> versioning_pb2.ModelVersion:
        events = request_context().event_context()
        model, number = parse_version_name(request.name)
        return self._answer(await self._v.finalize(model, number, events), context)

    async def UploadArtifact(  # noqa: N802
        self, request_iterator: AsyncIterator[versioning_pb2.UploadArtifactRequest], context: Context
    ) -> versioning_pb2.UploadArtifactResponse:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidArgument.of("header", "the first message must carry the header")
        model, number = parse_version_name(first.header.name, "header.name")

        async def chunks() -> AsyncIterator[bytes]:
            async for message in request_iterator:
                if message.WhichOneof("part") != "chunk":
                    raise InvalidArgument.of("header", "only the first message may carry a header")
                yield message.chunk

        file, stored = await self._v.upload(model, number, first.header.path, chunks())
        return versioning_pb2.UploadArtifactResponse(file=file_to_proto(file), stored=stored)

    async def DownloadArtifact(  # noqa: N802
        self, request: versioning_pb2.DownloadArtifactRequest, context: Context
    ) -> AsyncIterator[versioning_pb2.DownloadArtifactResponse]:
        file, chunks = await self._v.download(parse_reference(request.name), request.path)
        yield versioning_pb2.DownloadArtifactResponse(file=file_to_proto(file))
        async for chunk in chunks:
            yield versioning_pb2.DownloadArtifactResponse(chunk=chunk)

    async def DeprecateModelVersion(  # noqa: N802
        self, request: versioning_pb2.DeprecateModelVersionRequest, context: Context
    ) -> versioning_pb2.ModelVersion:
        events = request_context().event_context()
        model, number = parse_version_name(request.name)
        return self._answer(
            await self._v.deprecate(model, Deprecate(number, request.reason), events), context
        )

    async def DeleteModelVersion(  # noqa: N802
        self, request: versioning_pb2.DeleteModelVersionRequest, context: Context
    ) -> versioning_pb2.ModelVersion:
        events = request_context().event_context()
        model, number = parse_version_name(request.name)
        return self._answer(await self._v.delete(model, number, request.reason, events), context)

    async def SetRetentionPolicy(  # noqa: N802
        self, request: versioning_pb2.SetRetentionPolicyRequest, context: Context
    ) -> versioning_pb2.RetentionPolicy:
        events = request_context().event_context()
        model = parse_model(request.policy.model, "policy.model")
        command = SetRetention(request.policy.keep_last_per_major)
        set_token(context, await self._v.set_retention(model, command, events))
        return versioning_pb2.RetentionPolicy(model=model, keep_last_per_major=command.keep_last_per_major)

    async def ApplyRetentionPolicy(  # noqa: N802
        self, request: versioning_pb2.ApplyRetentionPolicyRequest, context: Context
    ) -> versioning_pb2.ApplyRetentionPolicyResponse:
        events = request_context().event_context()
        result = await self._v.apply_retention(parse_model(request.model, "model"), request.dry_run, events)
        if result.token is not None:
            set_token(context, result.token)
        return versioning_pb2.ApplyRetentionPolicyResponse(
            deleted=[version_to_proto(v) for v in result.deleted], protected_versions=result.protected
        )

    async def CollectGarbage(  # noqa: N802
        self, request: versioning_pb2.CollectGarbageRequest, context: Context
    ) -> versioning_pb2.CollectGarbageResponse:
        seconds = request.grace_period_seconds
        if not 0 <= seconds <= MAX_GRACE_SECONDS:
            raise InvalidArgument.of("grace_period_seconds", f"must be between 0 and {MAX_GRACE_SECONDS}")
        grace = timedelta(seconds=seconds) if seconds or request.no_grace else DEFAULT_GRACE
        garbage = await self._v.collect_garbage(grace, request.dry_run)
        return versioning_pb2.CollectGarbageResponse(
            blobs=[versioning_pb2.CollectedBlob(sha256=g.sha256, size=g.size) for g in garbage],
            bytes=sum(g.size for g in garbage),
        )
