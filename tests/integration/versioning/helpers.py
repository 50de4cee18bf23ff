"""Small helpers for the versioning tests (no fakes)."""

from __future__ import annotations

import asyncio
import hashlib
import urllib.request
from collections.abc import Awaitable
from typing import Any

import grpc
import pytest

from modelreg.eventlog import TOKEN_METADATA_KEY
from modelreg.gen.versioning.v1 import versioning_pb2 as pb


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def artifact(path: str, content: bytes) -> pb.ArtifactFile:
    return pb.ArtifactFile(
        path=path, size=len(content), sha256=sha(content), media_type="application/octet-stream"
    )


def metadata(token: str | None) -> list[tuple[str, str]] | None:
    return [(TOKEN_METADATA_KEY, token)] if token else None


async def call(method: Any, request: Any, token: str | None = None) -> tuple[Any, str | None]:
    """Calls a unary RPC and returns (response, consistency token of the answer)."""
    pending = method(request, metadata=metadata(token))
    response = await pending
    return response, dict(await pending.trailing_metadata()).get(TOKEN_METADATA_KEY)


async def create_version(
    stub: Any,
    model: str,
    token: str | None = None,
    *,
    bump: pb.Bump.ValueType = pb.BUMP_MINOR,
    semver: str = "",
    **fields: Any,
) -> pb.ModelVersion:
    request = pb.CreateModelVersionRequest(
        parent=model,
        model_version=pb.ModelVersion(**fields),
        bump=pb.BUMP_UNSPECIFIED if semver else bump,
        semver=semver,
    )
    response, _ = await call(stub.CreateModelVersion, request, token)
    return response


async def ready_version(stub: Any, model: str, token: str | None = None, **kwargs: Any) -> pb.ModelVersion:
    """A version with no files, finalized straight away."""
    version = await create_version(stub, model, token, **kwargs)
    return await stub.FinalizeModelVersion(pb.FinalizeModelVersionRequest(name=version.name))


async def expect(code: grpc.StatusCode, pending: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await pending
    assert error.value.code() == code, error.value.details()
    return error.value


async def http_put(url: str, content: bytes) -> int:
    def put() -> int:
        request = urllib.request.Request(
            url, data=content, method="PUT", headers={"Content-Type": "application/octet-stream"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)

    return await asyncio.to_thread(put)


def upload_requests(name: str, path: str, content: bytes, chunk: int = 64 * 1024):
    yield pb.UploadArtifactRequest(header=pb.UploadArtifactRequest.Header(name=name, path=path))
    for i in range(0, len(content), chunk):
        yield pb.UploadArtifactRequest(chunk=content[i : i + chunk])
