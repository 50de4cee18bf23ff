"""The typed Python SDK: one `Registry` (sync) / `AsyncRegistry` (async) over the services.

It threads consistency tokens between calls by itself: every write's token is
merged into the client's, and every later call, to any service, carries it, so
a pipeline always reads its own writes. Writes carry a request_id, and on
UNAVAILABLE or DEADLINE_EXCEEDED are retried with the same one, so a retry never
has a second effect.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import re
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from modelreg.client import transfer
from modelreg.client.errors import (
    DeadlineExceeded,
    IntegrityError,
    RegistryError,
    Unavailable,
    from_rpc_error,
)
from modelreg.client.errors import NotFound as NotFoundError
from modelreg.client.uris import parse_uri
from modelreg.eventlog.positions import TOKEN_METADATA_KEY, ConsistencyToken
from modelreg.gen.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from modelreg.gen.common.v1 import signature_pb2
from modelreg.gen.lineage.v1 import lineage_pb2, lineage_pb2_grpc
from modelreg.gen.promotion.v1 import promotion_pb2, promotion_pb2_grpc
from modelreg.gen.versioning.v1 import versioning_pb2, versioning_pb2_grpc

T = TypeVar("T")

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


@dataclass(frozen=True, slots=True)
class Endpoints:
    catalog: str = "127.0.0.1:50051"
    versioning: str = "127.0.0.1:50052"
    lineage: str = "127.0.0.1:50053"
    promotion: str = "127.0.0.1:50054"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Endpoints:
        """MODELREG_<SERVICE>_ADDR wins; else the endpoints `modelreg dev` wrote; else defaults."""
        found: dict[str, str] = {}
        home = Path(environ.get("MODELREG_HOME", Path.home() / ".modelreg" / "dev"))
        written = home / "endpoints.json"
        if written.exists():
            found.update(
                {k: v for k, v in json.loads(written.read_text()).items() if k in cls.__annotations__}
            )
        for service in cls.__annotations__:
            address = environ.get(f"MODELREG_{service.upper()}_ADDR")
            if address:
                found[service] = address
        return cls(**found)


class AsyncRegistry:
    def __init__(
        self,
        endpoints: Endpoints | None = None,
        *,
        bearer_token: str | None = None,
        timeout: float = 30.0,
        retries: int = 4,
    ) -> None:
        self.endpoints = endpoints or Endpoints.from_env()
        self._bearer = bearer_token if bearer_token is not None else os.environ.get("MODELREG_TOKEN")
        self._timeout = timeout
        self._retries = retries
        self._token = ConsistencyToken({})
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._catalog: catalog_pb2_grpc.CatalogServiceStub | None = None
        self._versioning: versioning_pb2_grpc.VersioningServiceStub | None = None
        self._promotion: promotion_pb2_grpc.PromotionServiceStub | None = None
        self._lineage: lineage_pb2_grpc.LineageServiceStub | None = None

    @property
    def consistency_token(self) -> str:
        """The token of every write this client has seen; hand it to another process to share."""
        return self._token.encode()

    def observe(self, token: str) -> None:
        """Adopts a token obtained elsewhere (e.g. from an upstream pipeline step)."""
        self._token = self._token.merge(ConsistencyToken.decode(token))

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    async def __aenter__(self) -> AsyncRegistry:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def _channel(self, address: str) -> grpc.aio.Channel:
        # One channel per service for the client's lifetime: no per-call connection cost.
        if address not in self._channels:
            self._channels[address] = grpc.aio.insecure_channel(address)
        return self._channels[address]

    @property
    def catalog(self) -> catalog_pb2_grpc.CatalogServiceStub:
        if self._catalog is None:
            self._catalog = catalog_pb2_grpc.CatalogServiceStub(self._channel(self.endpoints.catalog))
        return self._catalog

    @property
    def versioning(self) -> versioning_pb2_grpc.VersioningServiceStub:
        if self._versioning is None:
            self._versioning = versioning_pb2_grpc.VersioningServiceStub(
                self._channel(self.endpoints.versioning)
            )
        return self._versioning

    @property
    def promotion(self) -> promotion_pb2_grpc.PromotionServiceStub:
        if self._promotion is None:
            self._promotion = promotion_pb2_grpc.PromotionServiceStub(self._channel(self.endpoints.promotion))
        return self._promotion

    @property
    def lineage(self) -> lineage_pb2_grpc.LineageServiceStub:
        if self._lineage is None:
            self._lineage = lineage_pb2_grpc.LineageServiceStub(self._channel(self.endpoints.lineage))
        return self._lineage

    def _metadata(self) -> list[tuple[str, str]]:
        metadata = []
        if self._token.required:
            metadata.append((TOKEN_METADATA_KEY, self._token.encode()))
        if self._bearer:
            metadata.append(("authorization", f"Bearer {self._bearer}"))
        return metadata

    async def _call(self, method: Callable[..., Any], request: Any) -> Any:
        delay = 0.1
        for attempt in range(self._retries + 1):
            call = method(request, metadata=self._metadata(), timeout=self._timeout)
            try:
                response = await call
            except grpc.aio.AioRpcError as error:
                if error.code() in RETRYABLE and attempt < self._retries:
                    await asyncio.sleep(delay * (1 + random.random()))
                    delay = min(delay * 2, 2.0)
                    continue
                raise from_rpc_error(error) from None
            for key, value in await call.trailing_metadata() or ():
                if key == TOKEN_METADATA_KEY:
                    self.observe(value)
            return response
        raise AssertionError("unreachable")

    # Catalog -------------------------------------------------------------

    async def register_model(
        self,
        uri: str,
        *,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> catalog_pb2.RegisteredModel:
        """Registers `ns/model` (or `modelreg://ns/model`)."""
        parsed = parse_uri(uri)
        return await self._call(
            self.catalog.CreateRegisteredModel,
            catalog_pb2.CreateRegisteredModelRequest(
                parent=parsed.parent,
                registered_model_id=parsed.model,
                registered_model=catalog_pb2.RegisteredModel(description=description, tags=tags or {}),
                request_id=request_id or str(uuid.uuid4()),
            ),
        )

    async def get_model(self, uri: str) -> catalog_pb2.RegisteredModel:
        return await self._call(
            self.catalog.GetRegisteredModel,
            catalog_pb2.GetRegisteredModelRequest(name=parse_uri(uri).model_name),
        )

    async def list_models(self, namespace: str, *, page_size: int = 100) -> list[catalog_pb2.RegisteredModel]:
        """Every model of a namespace, following the pages."""
        return await self.search_models(namespace, page_size=page_size)

    async def search_models(
        self, namespace: str, *, filter: str = "", order_by: str = "", page_size: int = 100
    ) -> list[catalog_pb2.RegisteredModel]:
        """Models of a namespace matching `filter` (AND/OR/NOT, comparisons, LIKE, IN over
        name, tags.k, properties.k, create_time, update_time, state), all pages."""
        models: list[catalog_pb2.RegisteredModel] = []
        token = ""
        while True:
            page = await self._call(
                self.catalog.ListRegisteredModels,
                catalog_pb2.ListRegisteredModelsRequest(
                    parent=f"namespaces/{namespace}",
                    page_size=page_size,
                    page_token=token,
                    filter=filter,
                    order_by=order_by,
                ),
            )
            models.extend(page.registered_models)
            token = page.next_page_token
            if not token:
                return models

    async def create_namespace(self, namespace: str, *, description: str = "") -> catalog_pb2.Namespace:
        return await self._call(
            self.catalog.CreateNamespace,
            catalog_pb2.CreateNamespaceRequest(
                namespace_id=namespace,
                namespace=catalog_pb2.Namespace(description=description),
                request_id=str(uuid.uuid4()),
            ),
        )

    async def list_namespaces(self) -> list[catalog_pb2.Namespace]:
        namespaces: list[catalog_pb2.Namespace] = []
        token = ""
        while True:
            page = await self._call(
                self.catalog.ListNamespaces,
                catalog_pb2.ListNamespacesRequest(page_size=500, page_token=token),
            )
            namespaces.extend(page.namespaces)
            token = page.next_page_token
            if not token:
                return namespaces

    async def update_model(
        self,
        uri: str,
        *,
        description: str | None = None,
        annotations: str | None = None,
        tags: Mapping[str, str] | None = None,
        owners: list[str] | None = None,
        etag: str = "",
    ) -> catalog_pb2.RegisteredModel:
        """Changes only the fields given (an update_mask of them); `etag` guards against lost updates."""
        model = catalog_pb2.RegisteredModel(name=parse_uri(uri).model_name, etag=etag)
        paths = []
        for field, value in (("description", description), ("annotations", annotations)):
            if value is not None:
                setattr(model, field, value)
                paths.append(field)
        if tags is not None:
            model.tags.update(tags)
            paths.append("tags")
        if owners is not None:
            model.owners.extend(owners)
            paths.append("owners")
        request = catalog_pb2.UpdateRegisteredModelRequest(
            registered_model=model, request_id=str(uuid.uuid4())
        )
        request.update_mask.paths.extend(paths)
        return await self._call(self.catalog.UpdateRegisteredModel, request)

    async def archive_model(self, uri: str, *, etag: str = "") -> catalog_pb2.RegisteredModel:
        return await self._call(
            self.catalog.ArchiveRegisteredModel,
            catalog_pb2.ArchiveRegisteredModelRequest(
                name=parse_uri(uri).model_name, etag=etag, request_id=str(uuid.uuid4())
            ),
        )

    async def restore_model(self, uri: str, *, etag: str = "") -> catalog_pb2.RegisteredModel:
        return await self._call(
            self.catalog.RestoreRegisteredModel,
            catalog_pb2.RestoreRegisteredModelRequest(
                name=parse_uri(uri).model_name, etag=etag, request_id=str(uuid.uuid4())
            ),
        )

    async def delete_model(
        self, uri: str, *, reason: str = "", etag: str = ""
    ) -> catalog_pb2.RegisteredModel:
        """Soft delete: the model is hidden and its name stays reserved."""
        return await self._call(
            self.catalog.DeleteRegisteredModel,
            catalog_pb2.DeleteRegisteredModelRequest(
                name=parse_uri(uri).model_name, reason=reason, etag=etag, request_id=str(uuid.uuid4())
            ),
        )

    # Versioning ----------------------------------------------------------

    async def create_version(
        self,
        uri: str,
        *,
        bump: str | None = "minor",
        semver: str | None = None,
        artifacts: str | Path | None = None,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, str] | None = None,
        framework: str = "",
        flavor: str = "",
        code: versioning_pb2.CodeReference | None = None,
        environment: versioning_pb2.Environment | None = None,
        signature: signature_pb2.Signature | None = None,
        progress: bool | None = None,
        direct_upload: bool = True,
        request_id: str | None = None,
    ) -> versioning_pb2.ModelVersion:
        """Creates a version of `ns/model`, uploads `artifacts` (a file or a directory) and
        finalises it, so it comes back READY. `bump` is major, minor or pipeline; or give
        an explicit `semver` instead. `direct_upload=False` sends the bytes through the
        service (gRPC streaming) for clients that cannot reach the object store."""
        parsed = parse_uri(uri)
        meter = transfer.Meter(progress)
        # Hashing is disk- and CPU-bound: keep it off the event loop.
        files = (
            await asyncio.to_thread(transfer.scan, Path(artifacts), meter) if artifacts is not None else []
        )
        request_id = request_id or str(uuid.uuid4())
        version = await self._call(
            self.versioning.CreateModelVersion,
            versioning_pb2.CreateModelVersionRequest(
                parent=parsed.model_name,
                model_version=versioning_pb2.ModelVersion(
                    description=description,
                    tags=tags or {},
                    metrics=metrics or {},
                    params=params or {},
                    framework=framework,
                    flavor=flavor,
                    code=code,
                    environment=environment,
                    signature=signature,
                    files=[f.manifest_entry() for f in files],
                ),
                bump=_bump(bump) if semver is None else versioning_pb2.BUMP_UNSPECIFIED,
                semver=semver or "",
                request_id=request_id,
            ),
        )
        if version.state != versioning_pb2.ModelVersion.STATE_PENDING_UPLOAD:
            return version  # a retried request that had already been finalised
        await self.upload(version.name, files, meter, direct=direct_upload)
        return await self._call(
            self.versioning.FinalizeModelVersion,
            versioning_pb2.FinalizeModelVersionRequest(
                name=version.name, request_id=f"{request_id}/finalize"
            ),
        )

    async def upload(
        self, version: str, files: list[transfer.LocalFile], meter: transfer.Meter, *, direct: bool = True
    ) -> None:
        """Sends the blobs the store lacks: straight to S3 when it gives URLs (in parts for
        large files), else over gRPC."""
        prepared = await self._call(
            self.versioning.PrepareUpload, versioning_pb2.PrepareUploadRequest(name=version)
        )
        by_digest = {f.sha256: f for f in files}
        missing = [(target, by_digest[target.sha256]) for target in prepared.missing]
        with meter.task(f"uploading {len(missing)} blobs", sum(f.size for _, f in missing)) as task:
            for target, file in missing:
                if direct and target.part_urls:
                    await asyncio.to_thread(
                        transfer.put_presigned_parts, list(target.part_urls), target.part_size, file, task
                    )
                elif direct and target.url:
                    await asyncio.to_thread(transfer.put_presigned, target.url, file, task)
                else:
                    await self._upload_stream(version, file, task)

    async def _upload_stream(self, version: str, file: transfer.LocalFile, task: Any) -> None:
        try:
            await self.versioning.UploadArtifact(
                transfer.stream_chunks(version, file, task), metadata=self._metadata(), timeout=3600
            )
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None

    async def get_version(self, uri: str) -> versioning_pb2.ModelVersion:
        """`ns/model/3`, `ns/model@v1.2.0`, `ns/model@latest`, `ns/model@v1.latest`, or a
        stage or alias: `ns/model@production`, `ns/model@champion`."""
        return await self._call(
            self.versioning.GetModelVersion,
            versioning_pb2.GetModelVersionRequest(name=_reference_name(uri)),
        )

    async def _version_name(self, uri: str) -> str:
        """A version name by number (what lineage records take): stages and aliases are
        resolved through promotion. Reads use `_reference_name` instead."""
        parsed = parse_uri(uri)
        if parsed.version is not None:
            return f"{parsed.model_name}/versions/{parsed.version}"
        reference = parsed.reference or "latest"
        if _is_version_reference(reference):
            return f"{parsed.model_name}@{reference}"
        pointers = await self._call(
            self.promotion.GetPointers, promotion_pb2.GetPointersRequest(model=parsed.model_name)
        )
        stages = {k.lower(): v for k, v in pointers.stages.items()}
        number = pointers.aliases.get(reference) or stages.get(reference.lower())
        if not number:
            raise NotFoundError(f"{parsed.model_name} has no stage or alias {reference!r}")
        return f"{parsed.model_name}/versions/{number}"

    async def list_versions(
        self, uri: str, *, page_size: int = 100, filter: str = ""
    ) -> list[versioning_pb2.ModelVersion]:
        """Every version of the model (matching `filter`, e.g. `tags.stage = "eval"`), newest first."""
        parent = parse_uri(uri).model_name
        versions: list[versioning_pb2.ModelVersion] = []
        token = ""
        while True:
            page = await self._call(
                self.versioning.ListModelVersions,
                versioning_pb2.ListModelVersionsRequest(
                    parent=parent, page_size=page_size, page_token=token, filter=filter
                ),
            )
            versions.extend(page.model_versions)
            token = page.next_page_token
            if not token:
                return versions

    async def download(self, uri: str, destination: str | Path, *, progress: bool | None = None) -> Path:
        """Downloads every file of a version under `destination`, verifying each sha256."""
        version = await self.get_version(uri)
        root = Path(destination)
        await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
        meter = transfer.Meter(progress)
        with meter.task(f"downloading {version.name}", sum(f.size for f in version.files)) as task:
            for file in version.files:
                await self._download_file(version.name, file, root, task)
        return root

    async def _download_file(
        self, version: str, file: versioning_pb2.ArtifactFile, root: Path, task: Any
    ) -> None:
        target = transfer.safe_destination(root, file.path)
        partial = target.with_name(target.name + ".partial")
        digest = hashlib.sha256()
        try:
            stream = self.versioning.DownloadArtifact(
                versioning_pb2.DownloadArtifactRequest(name=version, path=file.path),
                metadata=self._metadata(),
                timeout=3600,
            )
            with partial.open("wb") as handle:
                async for part in stream:
                    if part.WhichOneof("part") == "chunk":
                        digest.update(part.chunk)
                        handle.write(part.chunk)
                        task.advance(len(part.chunk))
        except grpc.aio.AioRpcError as error:
            partial.unlink(missing_ok=True)
            raise from_rpc_error(error) from None
        if digest.hexdigest() != file.sha256:
            partial.unlink(missing_ok=True)
            raise IntegrityError(f"{file.path}: sha256 {digest.hexdigest()} does not match {file.sha256}")
        transfer.replace_atomically(partial, target)

    async def deprecate_version(self, uri: str, *, reason: str = "") -> versioning_pb2.ModelVersion:
        return await self._call(
            self.versioning.DeprecateModelVersion,
            versioning_pb2.DeprecateModelVersionRequest(
                name=await self._version_name(uri), reason=reason, request_id=str(uuid.uuid4())
            ),
        )

    async def delete_version(self, uri: str, *, reason: str) -> versioning_pb2.ModelVersion:
        """Soft delete; refused while a stage, alias or traffic split points at the version."""
        return await self._call(
            self.versioning.DeleteModelVersion,
            versioning_pb2.DeleteModelVersionRequest(
                name=await self._version_name(uri), reason=reason, request_id=str(uuid.uuid4())
            ),
        )

    async def set_retention(self, uri: str, *, keep_last_per_major: int) -> versioning_pb2.RetentionPolicy:
        return await self._call(
            self.versioning.SetRetentionPolicy,
            versioning_pb2.SetRetentionPolicyRequest(
                policy=versioning_pb2.RetentionPolicy(
                    model=parse_uri(uri).model_name, keep_last_per_major=keep_last_per_major
                ),
                request_id=str(uuid.uuid4()),
            ),
        )

    async def apply_retention(
        self, uri: str, *, dry_run: bool = True
    ) -> versioning_pb2.ApplyRetentionPolicyResponse:
        """What the model's retention policy deletes (only listed when dry_run)."""
        return await self._call(
            self.versioning.ApplyRetentionPolicy,
            versioning_pb2.ApplyRetentionPolicyRequest(model=parse_uri(uri).model_name, dry_run=dry_run),
        )

    async def collect_garbage(
        self, *, dry_run: bool = True, grace_period_seconds: int = 0
    ) -> versioning_pb2.CollectGarbageResponse:
        """Blobs no live version references, older than the grace period (only listed when dry_run)."""
        return await self._call(
            self.versioning.CollectGarbage,
            versioning_pb2.CollectGarbageRequest(dry_run=dry_run, grace_period_seconds=grace_period_seconds),
        )

    # Lineage -------------------------------------------------------------

    async def record_lineage(
        self, uri: str, record: lineage_pb2.LineageRecord, *, request_id: str | None = None
    ) -> lineage_pb2.LineageRecord:
        """Records what a version was made from (datasets, code, config, run, parents...)."""
        version = await self._version_name(uri)
        return await self._call(
            self.lineage.RecordLineage,
            lineage_pb2.RecordLineageRequest(
                parent=version, record=record, request_id=request_id or str(uuid.uuid4())
            ),
        )

    async def lineage_subgraph(
        self, uri: str, *, direction: str = "up", max_hops: int = 3
    ) -> lineage_pb2.GetLineageSubgraphResponse:
        """The lineage around a version, all pages merged into one response."""
        version = await self.get_version(uri)
        directions = {
            "up": lineage_pb2.DIRECTION_UPSTREAM,
            "down": lineage_pb2.DIRECTION_DOWNSTREAM,
            "both": lineage_pb2.DIRECTION_BIDIRECTIONAL,
        }
        query = lineage_pb2.SubgraphQuery(
            start_nodes=[f"model_version:{version.name}"], direction=directions[direction], max_hops=max_hops
        )
        merged = lineage_pb2.GetLineageSubgraphResponse()
        token = ""
        while True:
            page = await self._call(
                self.lineage.GetLineageSubgraph,
                lineage_pb2.GetLineageSubgraphRequest(query=query, page_size=1000, page_token=token),
            )
            merged.nodes.extend(page.nodes)
            merged.edges.extend(page.edges)
            token = page.next_page_token
            if not token:
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
        request = lineage_pb2.FindDownstreamRequest(stages=stages or [])
        if version:
            request.model_version = await self._version_name(version)
        else:
            request.dataset.CopyFrom(lineage_pb2.Dataset(uri=dataset_uri, digest=dataset_digest))
        return list((await self._call(self.lineage.FindDownstream, request)).versions)

    async def diff_lineage(self, a: str, b: str) -> lineage_pb2.DiffLineageResponse:
        """What changed in data, code, config and environment between two versions."""
        return await self._call(
            self.lineage.DiffLineage,
            lineage_pb2.DiffLineageRequest(
                model_version_a=await self._version_name(a), model_version_b=await self._version_name(b)
            ),
        )

    async def reproduction_info(self, uri: str) -> lineage_pb2.ReproductionInfo:
        return await self._call(
            self.lineage.GetReproductionInfo,
            lineage_pb2.GetReproductionInfoRequest(model_version=await self._version_name(uri)),
        )

    async def export_lineage(self, uri: str, *, fmt: str = "dot", max_hops: int = 3) -> str:
        """The lineage around a version as Graphviz DOT or JSON text."""
        formats = {"dot": lineage_pb2.EXPORT_FORMAT_DOT, "json": lineage_pb2.EXPORT_FORMAT_JSON}
        version = await self._version_name(uri)
        response = await self._call(
            self.lineage.ExportLineage,
            lineage_pb2.ExportLineageRequest(
                query=lineage_pb2.SubgraphQuery(
                    start_nodes=[f"model_version:{version}"],
                    direction=lineage_pb2.DIRECTION_BIDIRECTIONAL,
                    max_hops=max_hops,
                ),
                format=formats[fmt],
            ),
        )
        return response.content

    # Promotion -----------------------------------------------------------

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
        parsed = parse_uri(uri)
        return await self._call(
            self.promotion.CreateTransitionRequest,
            promotion_pb2.CreateTransitionRequestRequest(
                parent=parsed.model_name,
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
        return await self._call(
            self.promotion.ApproveTransitionRequest,
            promotion_pb2.ApproveTransitionRequestRequest(
                name=transition, comment=comment, request_id=str(uuid.uuid4())
            ),
        )

    async def reject(self, transition: str, *, comment: str = "") -> promotion_pb2.TransitionRequest:
        return await self._call(
            self.promotion.RejectTransitionRequest,
            promotion_pb2.RejectTransitionRequestRequest(
                name=transition, comment=comment, request_id=str(uuid.uuid4())
            ),
        )

    async def rollback(
        self, uri: str, stage: str = "PRODUCTION", *, reason: str, emergency: bool = False
    ) -> promotion_pb2.TransitionRequest:
        return await self._call(
            self.promotion.Rollback,
            promotion_pb2.RollbackRequest(
                model=parse_uri(uri).model_name,
                stage=stage.upper(),
                reason=reason,
                emergency=emergency,
                request_id=str(uuid.uuid4()),
            ),
        )

    async def pointers(self, uri: str) -> promotion_pb2.Pointers:
        return await self._call(
            self.promotion.GetPointers, promotion_pb2.GetPointersRequest(model=parse_uri(uri).model_name)
        )

    async def history(self, uri: str, *, pointer: str = "") -> list[promotion_pb2.PointerHistoryEntry]:
        """Every applied transition of a model (or of one pointer), newest first."""
        model = parse_uri(uri).model_name
        entries: list[promotion_pb2.PointerHistoryEntry] = []
        token = ""
        while True:
            page = await self._call(
                self.promotion.ListPointerHistory,
                promotion_pb2.ListPointerHistoryRequest(
                    model=model, pointer=pointer, page_size=200, page_token=token
                ),
            )
            entries.extend(page.entries)
            token = page.next_page_token
            if not token:
                return entries

    async def set_promotion_policy(
        self, policy: promotion_pb2.PromotionPolicy
    ) -> promotion_pb2.PromotionPolicy:
        return await self._call(
            self.promotion.SetPromotionPolicy,
            promotion_pb2.SetPromotionPolicyRequest(policy=policy, request_id=str(uuid.uuid4())),
        )

    async def watch_promotions(
        self, parent: str = "", *, resume_token: str = ""
    ) -> AsyncIterator[promotion_pb2.WatchPromotionsResponse]:
        """Applied transitions, in order and without gaps, from `resume_token` on, then live.
        Keep each item's `resume_token` to continue after a restart. `parent`: a namespace or model."""
        stream = self.promotion.WatchPromotions(
            promotion_pb2.WatchPromotionsRequest(parent=parent, resume_token=resume_token),
            metadata=self._metadata(),
        )
        try:
            async for item in stream:
                yield item
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None


_SEMVER_REFERENCE = re.compile(r"^v?\d+\.\d+\.\d+$|^latest$|^v\d+\.latest$")


def _reference_name(uri: str) -> str:
    """The GetModelVersion name for a URI: versioning resolves numbers, semvers, latest,
    stages and aliases (from its promotion cache) itself, so a read is one call."""
    parsed = parse_uri(uri)
    if parsed.version is not None:
        return f"{parsed.model_name}/versions/{parsed.version}"
    return f"{parsed.model_name}@{parsed.reference or 'latest'}"


def _is_version_reference(reference: str) -> bool:
    return bool(_SEMVER_REFERENCE.match(reference))


def _bump(kind: str | None) -> int:
    kinds = {
        "major": versioning_pb2.BUMP_MAJOR,
        "minor": versioning_pb2.BUMP_MINOR,
        "pipeline": versioning_pb2.BUMP_PIPELINE,
    }
    if kind is None or kind.lower() not in kinds:
        raise ValueError(f"bump must be one of {sorted(kinds)}, not {kind!r}")
    return kinds[kind.lower()]


class Registry:
    """The synchronous face of AsyncRegistry: same methods, blocking."""

    def __init__(self, endpoints: Endpoints | None = None, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="modelreg-client", daemon=True)
        self._thread.start()
        self._async = self._run(_build(endpoints, options))

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._async, name)
        if not callable(attribute):
            return attribute

        def blocking(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            return self._run(result) if isinstance(result, Awaitable) else result

        return blocking

    def close(self) -> None:
        self._run(self._async.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


async def _build(endpoints: Endpoints | None, options: dict[str, Any]) -> AsyncRegistry:
    # Channels must be created on the loop that will use them.
    return AsyncRegistry(endpoints, **options)


__all__ = ["AsyncRegistry", "DeadlineExceeded", "Endpoints", "Registry", "RegistryError", "Unavailable"]
