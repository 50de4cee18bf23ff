"""The versioning use cases: validate, decide through the log, move blobs, read back."""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from modelreg.artifacts import BlobMismatch, BlobStore, Check, put_stream, verify
from modelreg.commands.contracts import CommandResult
from modelreg.errors import DataLoss, FailedPrecondition, InvalidArgument, NotFound
from modelreg.eventlog import ConsistencyToken, EventContext
from modelreg.paging import page_request
from modelreg.versioning.application.ports import VersionCommands, VersionReader
from modelreg.versioning.domain import filters
from modelreg.versioning.domain.commands import (
    Command,
    CreateVersion,
    DeclareManifest,
    Delete,
    Deprecate,
    Finalize,
    SetRetention,
    UpdateVersion,
)
from modelreg.versioning.domain.decide import decide
from modelreg.versioning.domain.queries import Reference, resolve, retention_plan
from modelreg.versioning.domain.state import ModelVersion, ModelVersions
from modelreg.versioning.domain.values import ArtifactFile, Status

PRESIGN_EXPIRY = timedelta(hours=1)
DEFAULT_GRACE = timedelta(days=1)
MAX_CHUNK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Written:
    version: ModelVersion
    token: ConsistencyToken


@dataclass(frozen=True, slots=True)
class UploadTarget:
    sha256: str
    size: int
    url: str
    upload_id: str = ""
    part_size: int = 0
    part_urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Prepared:
    version: ModelVersion
    missing: list[UploadTarget]
    token: ConsistencyToken | None


@dataclass(frozen=True, slots=True)
class RetentionResult:
    deleted: list[ModelVersion]
    protected: list[int]
    token: ConsistencyToken | None


@dataclass(frozen=True, slots=True)
class Garbage:
    sha256: str
    size: int


class Versioning:
    def __init__(self, reader: VersionReader, commands: VersionCommands, blobs: BlobStore) -> None:
        self._reader = reader
        self._commands = commands
        self._blobs = blobs

    # Writes -----------------------------------------------------------------

    async def create(self, command: CreateVersion, context: EventContext) -> Written:
        # The catalog cache answers; the interceptor has already waited for the
        # caller's catalog token, so a model created just before is seen.
        try:
            match await self._reader.model_state(command.model):
                case None | "deleted":
                    raise NotFound(
                        f"{command.model} does not exist in the catalog (if it was just created, "
                        "pass the catalog's consistency token)"
                    )
                case "archived":
                    raise FailedPrecondition(f"{command.model} is archived; restore it to add versions")
            result = await self._run(command.model, context, command)
        except (NotFound, FailedPrecondition):
            # A retry of a create that was carried out before the model was archived or deleted.
            done = await self._commands.original(command.model, context)
            if done is None:
                raise
            result = done
        # The revision identifies the version, for a replayed request_id too.
        version = await self._reader.version(command.model, revision=result.revision)
        if version is None:
            raise NotFound(f"the version created at revision {result.revision} is not in the read model")
        return Written(version, result.token)

    async def _run(self, model: str, context: EventContext, command: Command) -> CommandResult:
        # Only what the command needs is read (see the reader's load_for): the version it
        # names, or for a create the few versions its number and semver depend on.
        part = command.semver if isinstance(command, CreateVersion) else getattr(command, "number", None)
        return await self._commands.run(model, context, lambda state: decide(state, command), part=part)

    async def _write(self, model: str, number: int, command: Command, context: EventContext) -> Written:
        result = await self._run(model, context, command)
        version = await self._reader.version(model, number=number)
        if version is None:
            raise NotFound(f"{model}/versions/{number} is not in the read model after its write was accepted")
        return Written(version, result.token)

    async def update(self, model: str, command: UpdateVersion, context: EventContext) -> Written:
        return await self._write(model, command.number, command, context)

    async def deprecate(self, model: str, command: Deprecate, context: EventContext) -> Written:
        return await self._write(model, command.number, command, context)

    async def delete(self, model: str, number: int, reason: str, context: EventContext) -> Written:
        pointers = await self._reader.pointers(model)
        protected_by = tuple(p for p, n in pointers.items() if n == number)
        return await self._write(model, number, Delete(number, reason, protected_by), context)

    async def set_retention(
        self, model: str, command: SetRetention, context: EventContext
    ) -> ConsistencyToken:
        return (await self._run(model, context, command)).token

    # Artifacts --------------------------------------------------------------

    async def prepare_upload(
        self, model: str, number: int, files: tuple[ArtifactFile, ...] | None, context: EventContext
    ) -> Prepared:
        token = None
        replayed = False
        if files is not None:
            result = await self._run(model, context, DeclareManifest(number, files))
            token, replayed = result.token, result.replayed
        version = await self.get(Reference(model, number=number))
        if replayed and version.status is not Status.PENDING_UPLOAD:
            # A retry of a declaration whose version has been finalized since: nothing left to upload.
            return Prepared(version, [], token)
        _pending(version)
        missing = []
        seen: set[str] = set()
        for f in version.spec.files:
            if f.sha256 in seen:
                continue
            seen.add(f.sha256)
            info = await self._blobs.stat(f.sha256)
            if info is None or info.size != f.size:
                parts = await self._blobs.presigned_parts(f.sha256, f.size, PRESIGN_EXPIRY)
                if parts is not None:
                    missing.append(
                        UploadTarget(
                            f.sha256, f.size, "", parts.upload_id, parts.part_size, tuple(parts.urls)
                        )
                    )
                else:
                    url = await self._blobs.presigned_put(f.sha256, PRESIGN_EXPIRY)
                    missing.append(UploadTarget(f.sha256, f.size, url))
        return Prepared(version, missing, token)

    async def finalize(self, model: str, number: int, context: EventContext) -> Written:
        try:
            return await self._finalize(model, number, context)
        except (NotFound, FailedPrecondition):
            # A retry of a finalize that was carried out finds the version READY already.
            done = await self._commands.original(model, context)
            if done is None:
                raise
            version = await self.get(Reference(model, number=number))
            return Written(version, done.token)

    async def _finalize(self, model: str, number: int, context: EventContext) -> Written:
        version = await self.get(Reference(model, number=number))
        _pending(version)
        problems = []
        checked: dict[str, Check] = {}
        for f in version.spec.files:
            if f.sha256 not in checked:
                checked[f.sha256] = await verify(self._blobs, f.sha256, f.size)
            if checked[f.sha256] is not Check.OK:
                problems.append(f"{f.path}: {checked[f.sha256].value.replace('_', ' ')}")
        if problems:
            raise FailedPrecondition(
                f"{version.name} stays PENDING_UPLOAD; upload these again: " + "; ".join(problems)
            )
        return await self._write(model, number, Finalize(number, True, version.spec.files), context)

    async def upload(
        self, model: str, number: int, path: str, chunks: AsyncIterable[bytes]
    ) -> tuple[ArtifactFile, bool]:
        version = await self.get(Reference(model, number=number))
        _pending(version)
        file = _file(version, path)

        async def bounded() -> AsyncIterator[bytes]:
            received = 0
            async for chunk in chunks:
                received += len(chunk)
                if len(chunk) > MAX_CHUNK_BYTES or received > file.size:
                    raise InvalidArgument.of("chunk", f"more content than the manifest's {file.size} bytes")
                yield chunk

        try:
            stored = await put_stream(
                self._blobs,
                bounded(),
                expected_sha256=file.sha256,
                expected_size=file.size,
            )
        except BlobMismatch as error:
            raise InvalidArgument.of("chunk", f"{path}: {error}") from None
        return file, stored

    async def download(self, reference: Reference, path: str) -> tuple[ArtifactFile, AsyncIterator[bytes]]:
        version = await self.get(reference)
        if version.status is Status.DELETED:
            raise NotFound(f"{version.name} was deleted; its artifacts may be gone")
        file = _file(version, path)
        if await self._blobs.stat(file.sha256) is None:
            raise FailedPrecondition(f"{version.name}: {path} has not been uploaded")

        async def verified() -> AsyncIterator[bytes]:
            hasher = hashlib.sha256()
            async for chunk in self._blobs.read(file.sha256):
                hasher.update(chunk)
                yield chunk
            if hasher.hexdigest() != file.sha256:
                # Corruption at rest: fail the stream rather than end it cleanly.
                raise DataLoss(
                    f"{version.name}: {path} is corrupted in the store: "
                    f"blob {file.sha256} does not match its digest"
                )

        return file, verified()

    # Reads ------------------------------------------------------------------

    async def _state(self, model: str) -> ModelVersions:
        return (await self._reader.load(model)).state

    async def get(self, reference: Reference, as_of: datetime | None = None) -> ModelVersion:
        if as_of is not None:
            return await self._get_as_of(reference, as_of)
        if reference.number is not None:  # the common case needs one row, not the aggregate
            version = await self._reader.version(reference.model, number=reference.number)
            if version is None:
                raise NotFound(f"{reference.model}/versions/{reference.number} does not exist")
            return version
        if reference.pointer is not None:
            # One indexed lookup in the promotion cache, joined to the version row.
            version = await self._reader.version(reference.model, pointer=reference.pointer)
            if version is None:
                raise NotFound(
                    f"{reference.model} has no stage or alias {reference.pointer!r} (if it was just "
                    "moved, pass the promotion's consistency token)"
                )
            return version
        return resolve(await self._state(reference.model), reference)

    async def _get_as_of(self, reference: Reference, as_of: datetime) -> ModelVersion:
        if reference.pointer is not None:
            raise InvalidArgument.of(
                "as_of",
                "a stage or alias is resolved now, not then: read the pointers as of that moment"
                " (GetPointers.as_of) and ask for the version by number",
            )
        state = await self._reader.versions_as_of(reference.model, as_of, reference.number)
        if reference.number is not None and reference.number not in state.versions:
            raise NotFound(
                f"{reference.model}/versions/{reference.number} did not exist at {as_of.isoformat()}"
            )
        return resolve(state, reference)

    async def list(
        self, model: str, page_size: int, page_token: str, show_deleted: bool, filter_text: str = ""
    ) -> tuple[list[ModelVersion], str]:
        where = filters.parse_filter(filter_text)
        paging = page_request(
            page_size, page_token, [int], parent=model, filter=filter_text, show_deleted=show_deleted
        )
        versions = await self._reader.list_versions(
            model,
            after=paging.after,
            limit=paging.fetch,
            show_deleted=show_deleted,
            where=where,
        )
        page = paging.page(versions, lambda version: (version.number,))
        return page.items, page.next_page_token

    # Retention and GC -------------------------------------------------------

    async def apply_retention(self, model: str, dry_run: bool, context: EventContext) -> RetentionResult:
        pointers = await self._reader.pointers(model)
        plan = retention_plan(await self._state(model), frozenset(pointers.values()))
        if dry_run:
            return RetentionResult(list(plan.delete), list(plan.protected), None)
        token: ConsistencyToken | None = None
        deleted = []
        reason = "retention policy: beyond keep_last_per_major"
        for version in plan.delete:
            # A pointer may have moved since the plan: Delete re-checks at decide time.
            pointers = await self._reader.pointers(model)
            protected_by = tuple(p for p, n in pointers.items() if n == version.number)
            # One request deletes several versions: each deletion gets its own request_id, or
            # the fold would take the second for a retry of the first.
            one = replace(
                context,
                request_id=f"{context.request_id}/delete/{version.number}" if context.request_id else "",
            )
            written = await self._write(
                model, version.number, Delete(version.number, reason, protected_by), one
            )
            token = written.token if token is None else token.merge(written.token)
            deleted.append(written.version)
        return RetentionResult(deleted, list(plan.protected), token)

    async def collect_garbage(
        self, grace: timedelta, dry_run: bool, now: datetime | None = None
    ) -> builtins.list[Garbage]:  # `list` is the method above
        cutoff = (now or datetime.now(UTC)) - grace
        blobs = await self._blobs.list_blobs()
        # Read references after listing: a blob uploaded and referenced in between
        # is either too young for the cutoff or seen as referenced.
        referenced = await self._reader.referenced_blobs()
        garbage = [b for b in blobs if b.sha256 not in referenced and b.modified <= cutoff]
        if not dry_run:
            for blob in garbage:
                await self._blobs.delete(blob.sha256)
        return [Garbage(b.sha256, b.size) for b in garbage]


def _pending(version: ModelVersion) -> None:
    if version.status is not Status.PENDING_UPLOAD:
        raise FailedPrecondition(
            f"{version.name} is {version.status.value.upper()}: its artifacts and manifest are immutable"
        )


def _file(version: ModelVersion, path: str) -> ArtifactFile:
    for f in version.spec.files:
        if f.path == path:
            return f
    raise NotFound(f"{version.name} has no file {path[:512]!r} in its manifest")
