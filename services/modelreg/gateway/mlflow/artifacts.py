"""A version's files over HTTP, in the shape of MLflow's artifact proxy
(`/mlflow-artifacts/artifacts`), which MLflow's HttpArtifactRepository speaks:

    GET /mlflow-artifacts/artifacts?path=modelreg/<model>/<version>[/dir]  -> {"files": [...]}
    GET /mlflow-artifacts/artifacts/modelreg/<model>/<version>/<file>      -> the bytes

The bytes come from versioning's DownloadArtifact and are checked against the manifest's
sha256 before they are answered (a file up to BUFFER_LIMIT is answered only once verified,
so a corrupted blob is a DATA_LOSS error; a larger one is streamed, with its Content-Length,
and the connection is cut if the digest does not match, so the client never keeps it).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
from fastapi import Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from modelreg.client import errors as sdk
from modelreg.gateway.mlflow.errors import MlflowError, invalid, not_found
from modelreg.gateway.mlflow.service import MlflowRegistry
from modelreg.gen.versioning.v1 import versioning_pb2

BUFFER_LIMIT = 64 * 1024 * 1024
ROOT = "modelreg"


def _split(path: str) -> tuple[str, int, str]:
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) < 3 or parts[0] != ROOT or not parts[2].isdigit():
        raise not_found(f"No artifacts at {path!r}: expected {ROOT}/<model>/<version>[/<path>]")
    if any(p in (".", "..") for p in parts):
        raise invalid(f"Invalid path {path!r}")
    return parts[1], int(parts[2]), "/".join(parts[3:])


async def _files(registry: MlflowRegistry, model_id: str, number: int) -> versioning_pb2.ModelVersion:
    return await registry.version_by_model_id(model_id, number)


async def list_artifacts(registry: MlflowRegistry, path: str) -> dict[str, Any]:
    model, number, inner = _split(path)
    version = await _files(registry, model, number)
    prefix = f"{inner}/" if inner else ""
    entries: dict[str, dict[str, Any]] = {}
    for file in version.files:
        if inner and file.path == inner:
            return {"files": [{"path": inner.rsplit("/", 1)[-1], "is_dir": False, "file_size": file.size}]}
        if not file.path.startswith(prefix):
            continue
        rest = file.path[len(prefix) :]
        head, slash, _ = rest.partition("/")
        if slash:
            entries.setdefault(head, {"path": head, "is_dir": True})
        else:
            entries[head] = {"path": head, "is_dir": False, "file_size": file.size}
    return {"files": [entries[k] for k in sorted(entries)]}


async def download(registry: MlflowRegistry, path: str) -> Response:
    model, number, inner = _split(path)
    version = await _files(registry, model, number)
    file = next((f for f in version.files if f.path == inner), None)
    if file is None:
        raise not_found(f"No artifact {inner!r} in version {number} of {model}")
    connection = registry.backend.connection
    stream = connection.versioning.DownloadArtifact(
        versioning_pb2.DownloadArtifactRequest(name=version.name, path=file.path),
        metadata=connection.metadata(),
        timeout=3600,
    )

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for part in stream:
                if part.WhichOneof("part") == "chunk":
                    yield part.chunk
        except grpc.aio.AioRpcError as error:
            raise sdk.from_rpc_error(error) from None

    mismatch = f"{file.path}: the stored bytes do not match the manifest's sha256 {file.sha256}"
    if file.size <= BUFFER_LIMIT:
        digest = hashlib.sha256()
        body = bytearray()
        async for chunk in chunks():
            digest.update(chunk)
            body += chunk
        if digest.hexdigest() != file.sha256 or len(body) != file.size:
            raise MlflowError("DATA_LOSS", mismatch)
        return Response(
            bytes(body), media_type=file.media_type or "application/octet-stream", headers=_headers(file)
        )

    async def verified() -> AsyncIterator[bytes]:
        digest = hashlib.sha256()
        async for chunk in chunks():
            digest.update(chunk)
            yield chunk
        if digest.hexdigest() != file.sha256:
            raise MlflowError("DATA_LOSS", mismatch)  # cuts the response short: the client fails

    return StreamingResponse(
        verified(), media_type=file.media_type or "application/octet-stream", headers=_headers(file)
    )


def _headers(file: versioning_pb2.ArtifactFile) -> dict[str, str]:
    return {"Content-Length": str(file.size), "X-Modelreg-Sha256": file.sha256}


def artifact_response(payload: dict[str, Any]) -> JSONResponse:
    return JSONResponse(payload)


def base_url(request: Request, public_url: str) -> str:
    return public_url or str(request.base_url).rstrip("/")
