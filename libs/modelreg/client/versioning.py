"""The versioning sub-client: versions, their artifacts, retention and garbage collection."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from pathlib import Path

import grpc

from modelreg.client import transfer
from modelreg.client.blocking import Blocking, Facade
from modelreg.client.connection import Connection
from modelreg.client.errors import IntegrityError, RegistryError, from_rpc_error
from modelreg.client.references import reference_name, version_name
from modelreg.client.uris import parse_uri
from modelreg.gen.common.v1 import signature_pb2
from modelreg.gen.versioning.v1 import versioning_pb2


class VersioningClient:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

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
        connection = self._connection
        meter = transfer.Meter(progress)
        # Hashing is disk- and CPU-bound: keep it off the event loop.
        files = (
            await asyncio.to_thread(transfer.scan, Path(artifacts), meter) if artifacts is not None else []
        )
        request_id = request_id or str(uuid.uuid4())
        version = await connection.call(
            connection.versioning.CreateModelVersion,
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
        return await connection.call(
            connection.versioning.FinalizeModelVersion,
            versioning_pb2.FinalizeModelVersionRequest(
                name=version.name, request_id=f"{request_id}/finalize"
            ),
        )

    async def upload(
        self, version: str, files: list[transfer.LocalFile], meter: transfer.Meter, *, direct: bool = True
    ) -> None:
        """Sends the blobs the store lacks: straight to S3 when it gives URLs (in parts for
        large files), else over gRPC."""
        connection = self._connection
        prepared = await connection.call(
            connection.versioning.PrepareUpload, versioning_pb2.PrepareUploadRequest(name=version)
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

    async def _upload_stream(self, version: str, file: transfer.LocalFile, task: transfer.Task) -> None:
        connection = self._connection
        try:
            await connection.versioning.UploadArtifact(
                transfer.stream_chunks(version, file, task), metadata=connection.metadata(), timeout=3600
            )
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None

    async def get_version(self, uri: str, *, as_of: datetime | None = None) -> versioning_pb2.ModelVersion:
        """`ns/model/3`, `ns/model@v1.2.0`, `ns/model@latest`, `ns/model@v1.latest`, or a
        stage or alias: `ns/model@production`, `ns/model@champion`.

        With `as_of` (an aware datetime), the version as it stood then (status, manifest,
        description, tags); a stage or alias is refused with it (resolve the pointer of the
        moment with `promotion.pointers(uri, as_of=...)`)."""
        connection = self._connection
        request = versioning_pb2.GetModelVersionRequest(name=reference_name(uri))
        if as_of is not None:
            request.as_of.FromDatetime(as_of)
        return await connection.call(connection.versioning.GetModelVersion, request)

    async def list_versions(
        self, uri: str, *, page_size: int = 100, filter: str = ""
    ) -> list[versioning_pb2.ModelVersion]:
        """Every version of the model (matching `filter`, e.g. `tags.stage = "eval"`), newest first."""
        connection = self._connection
        request = versioning_pb2.ListModelVersionsRequest(
            parent=parse_uri(uri).model_name, page_size=page_size, filter=filter
        )
        pages = connection.pages(connection.versioning.ListModelVersions, request)
        return [version async for page in pages for version in page.model_versions]

    async def versions_page(
        self, uri: str, *, page_size: int = 100, page_token: str = "", filter: str = ""
    ) -> versioning_pb2.ListModelVersionsResponse:
        """One page of `list_versions` (newest first); pass its next_page_token back for the next."""
        connection = self._connection
        return await connection.call(
            connection.versioning.ListModelVersions,
            versioning_pb2.ListModelVersionsRequest(
                parent=parse_uri(uri).model_name, page_size=page_size, page_token=page_token, filter=filter
            ),
        )

    async def download(self, uri: str, destination: str | Path, *, progress: bool | None = None) -> Path:
        """Downloads every file of a version under `destination`, verifying each sha256."""
        return await self.download_version(await self.get_version(uri), destination, progress=progress)

    async def download_version(
        self, version: versioning_pb2.ModelVersion, destination: str | Path, *, progress: bool | None = None
    ) -> Path:
        """Downloads every file of a version already read, verifying each sha256."""
        root = Path(destination)
        await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
        meter = transfer.Meter(progress)
        with meter.task(f"downloading {version.name}", sum(f.size for f in version.files)) as task:
            for file in version.files:
                await self._download_file(version.name, file, root, task)
        return root

    async def read_artifact(self, version: str, file: versioning_pb2.ArtifactFile) -> AsyncIterator[bytes]:
        """The bytes of one file of a version, in chunks; raises IntegrityError after the last
        chunk if they do not hash to the manifest's sha256 (so a consumer streaming them on, such
        as an HTTP download, fails instead of completing)."""
        connection = self._connection
        digest = hashlib.sha256()
        stream = connection.versioning.DownloadArtifact(
            versioning_pb2.DownloadArtifactRequest(name=version, path=file.path),
            metadata=connection.metadata(),
            timeout=3600,
        )
        try:
            async for part in stream:
                if part.WhichOneof("part") == "chunk":
                    digest.update(part.chunk)
                    yield part.chunk
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        if digest.hexdigest() != file.sha256:
            raise IntegrityError(f"{file.path}: sha256 {digest.hexdigest()} does not match {file.sha256}")

    async def _download_file(
        self, version: str, file: versioning_pb2.ArtifactFile, root: Path, task: transfer.Task
    ) -> None:
        target = transfer.safe_destination(root, file.path)
        partial = target.with_name(target.name + ".partial")
        try:
            with partial.open("wb") as handle:
                async for chunk in self.read_artifact(version, file):
                    handle.write(chunk)
                    task.advance(len(chunk))
        except RegistryError:
            partial.unlink(missing_ok=True)
            raise
        transfer.replace_atomically(partial, target)

    async def deprecate_version(self, uri: str, *, reason: str = "") -> versioning_pb2.ModelVersion:
        connection = self._connection
        return await connection.call(
            connection.versioning.DeprecateModelVersion,
            versioning_pb2.DeprecateModelVersionRequest(
                name=await version_name(connection, uri), reason=reason, request_id=str(uuid.uuid4())
            ),
        )

    async def delete_version(self, uri: str, *, reason: str) -> versioning_pb2.ModelVersion:
        """Soft delete; refused while a stage, alias or traffic split points at the version."""
        connection = self._connection
        return await connection.call(
            connection.versioning.DeleteModelVersion,
            versioning_pb2.DeleteModelVersionRequest(
                name=await version_name(connection, uri), reason=reason, request_id=str(uuid.uuid4())
            ),
        )

    async def set_retention(self, uri: str, *, keep_last_per_major: int) -> versioning_pb2.RetentionPolicy:
        connection = self._connection
        return await connection.call(
            connection.versioning.SetRetentionPolicy,
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
        connection = self._connection
        return await connection.call(
            connection.versioning.ApplyRetentionPolicy,
            versioning_pb2.ApplyRetentionPolicyRequest(model=parse_uri(uri).model_name, dry_run=dry_run),
        )

    async def collect_garbage(
        self, *, dry_run: bool = True, grace_period_seconds: int = 0
    ) -> versioning_pb2.CollectGarbageResponse:
        """Blobs no live version references, older than the grace period (only listed when dry_run)."""
        connection = self._connection
        return await connection.call(
            connection.versioning.CollectGarbage,
            versioning_pb2.CollectGarbageRequest(dry_run=dry_run, grace_period_seconds=grace_period_seconds),
        )


def _bump(kind: str | None) -> versioning_pb2.Bump.ValueType:
    kinds = {
        "major": versioning_pb2.BUMP_MAJOR,
        "minor": versioning_pb2.BUMP_MINOR,
        "pipeline": versioning_pb2.BUMP_PIPELINE,
    }
    if kind is None or kind.lower() not in kinds:
        raise ValueError(f"bump must be one of {sorted(kinds)}, not {kind!r}")
    return kinds[kind.lower()]


class SyncVersioningClient(Facade[VersioningClient]):
    versions_page = Blocking(VersioningClient.versions_page)
    create_version = Blocking(VersioningClient.create_version)
    get_version = Blocking(VersioningClient.get_version)
    list_versions = Blocking(VersioningClient.list_versions)
    download = Blocking(VersioningClient.download)
    download_version = Blocking(VersioningClient.download_version)
    deprecate_version = Blocking(VersioningClient.deprecate_version)
    delete_version = Blocking(VersioningClient.delete_version)
    set_retention = Blocking(VersioningClient.set_retention)
    apply_retention = Blocking(VersioningClient.apply_retention)
    collect_garbage = Blocking(VersioningClient.collect_garbage)
