"""The versioning service through gRPC, against Tansu, PostgreSQL, moto S3 and the real catalog."""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from modelreg.gen.catalog.v1 import catalog_pb2
from modelreg.gen.common.v1.signature_pb2 import Signature, TensorSpec
from modelreg.gen.versioning.v1 import versioning_pb2 as pb
from tests.helpers import log_envelopes
from tests.integration.versioning.helpers import (
    artifact,
    call,
    create_version,
    expect,
    http_put,
    ready_version,
    sha,
    upload_requests,
)

Code = grpc.StatusCode


async def test_eight_concurrent_bumps_get_distinct_consecutive_versions(
    versioning_stub, create_model
) -> None:
    model, token = await create_model()
    created = await asyncio.gather(
        *[create_version(versioning_stub, model, token, bump=pb.BUMP_MINOR) for _ in range(8)]
    )
    assert sorted(v.version for v in created) == list(range(1, 9))
    # Each create saw every earlier one: the first is 1.0.0, each later one bumps MINOR.
    by_number = {v.version: v.semver for v in created}
    assert [by_number[n] for n in range(1, 9)] == ["1.0.0", *[f"1.{m}.0" for m in range(1, 8)]]
    listed = await versioning_stub.ListModelVersions(pb.ListModelVersionsRequest(parent=model))
    assert [v.version for v in listed.model_versions] == list(range(8, 0, -1))


async def test_explicit_versions_and_bumps(versioning_stub, create_model) -> None:
    model, token = await create_model()

    async def semver_of(**kwargs):
        return (await create_version(versioning_stub, model, token, **kwargs)).semver

    assert await semver_of(bump=pb.BUMP_PIPELINE) == "1.0.0"  # the first version is 1.0.0
    assert await semver_of(semver="v1.2.0") == "1.2.0"
    error = await expect(Code.ALREADY_EXISTS, create_version(versioning_stub, model, semver="1.2.0"))
    assert "1.2.0" in error.details()
    error = await expect(Code.FAILED_PRECONDITION, create_version(versioning_stub, model, semver="1.1.5"))
    assert "1.2.0 exists" in error.details()
    assert await semver_of(semver="0.9.0") == "0.9.0"  # a new (lower) MAJOR line is fine
    assert await semver_of(semver="3.0.0") == "3.0.0"
    assert await semver_of(semver="1.2.1") == "1.2.1"  # a fix on an older line
    assert await semver_of(bump=pb.BUMP_MINOR) == "3.1.0"  # bumps from the greatest
    assert await semver_of(bump=pb.BUMP_MAJOR) == "4.0.0"
    assert await semver_of(bump=pb.BUMP_PIPELINE) == "4.0.1"
    await expect(Code.INVALID_ARGUMENT, create_version(versioning_stub, model, semver="1.2"))
    await expect(
        Code.INVALID_ARGUMENT,
        versioning_stub.CreateModelVersion(
            pb.CreateModelVersionRequest(parent=model, bump=pb.BUMP_MAJOR, semver="5.0.0")
        ),
    )
    await expect(
        Code.INVALID_ARGUMENT, versioning_stub.CreateModelVersion(pb.CreateModelVersionRequest(parent=model))
    )
    listed = await versioning_stub.ListModelVersions(pb.ListModelVersionsRequest(parent=model))
    assert len(listed.model_versions) == 8


async def test_references(versioning_stub, create_model) -> None:
    model, token = await create_model()
    for semver in ("1.0.0", "1.1.0", "2.0.0", "1.2.0"):
        await create_version(versioning_stub, model, token, semver=semver)

    async def number(name: str) -> int:
        return (await versioning_stub.GetModelVersion(pb.GetModelVersionRequest(name=name))).version

    assert await number(f"{model}/versions/2") == 2
    assert await number(f"{model}@v1.1.0") == 2
    assert await number(f"{model}@2.0.0") == 3
    assert await number(f"{model}@latest") == 4
    assert await number(f"{model}@v1.latest") == 4
    assert await number(f"{model}@v2.latest") == 3
    await expect(
        Code.NOT_FOUND, versioning_stub.GetModelVersion(pb.GetModelVersionRequest(name=f"{model}@v7.latest"))
    )
    await expect(
        Code.NOT_FOUND, versioning_stub.GetModelVersion(pb.GetModelVersionRequest(name=f"{model}/versions/9"))
    )
    await expect(
        Code.INVALID_ARGUMENT,
        versioning_stub.GetModelVersion(pb.GetModelVersionRequest(name=f"{model}@v1.x")),
    )


def signature(*inputs: tuple[str, str, list[int]], output: str = "float64") -> Signature:
    def dtype(name: str) -> TensorSpec.DataType.ValueType:
        return TensorSpec.DataType.Value(f"DATA_TYPE_{name.upper()}")

    return Signature(
        inputs=[TensorSpec(name=n, dtype=dtype(d), shape=s) for n, d, s in inputs],
        outputs=[TensorSpec(name="p", dtype=dtype(output), shape=[-1])],
    )


async def test_signature_must_stay_compatible_within_a_major_line(versioning_stub, create_model) -> None:
    model, token = await create_model()
    base = signature(("x", "float32", [-1, 3]), ("y", "int64", [-1]))
    await create_version(versioning_stub, model, token, signature=base)
    added = signature(("x", "float32", [-1, 3]), ("y", "int64", [-1]), ("z", "string", [-1]))
    assert (await create_version(versioning_stub, model, signature=added)).semver == "1.1.0"
    broken = signature(("x", "float64", [-1, 3]), output="float32")
    error = await expect(Code.FAILED_PRECONDITION, create_version(versioning_stub, model, signature=broken))
    for difference in ("input 'x' changed", "input 'y' removed", "output 'p' changed"):
        assert difference in error.details()
    assert (
        await create_version(versioning_stub, model, signature=broken, bump=pb.BUMP_MAJOR)
    ).semver == "2.0.0"


async def test_model_must_exist_in_the_catalog(versioning_stub, catalog_stub, create_model) -> None:
    await expect(Code.NOT_FOUND, create_version(versioning_stub, "namespaces/nobody/models/nothing"))
    for _ in range(5):  # with the catalog's token, a just-created model is always seen
        model, token = await create_model()
        assert (await create_version(versioning_stub, model, token)).version == 1
    _, archive_token = await call(
        catalog_stub.ArchiveRegisteredModel, catalog_pb2.ArchiveRegisteredModelRequest(name=model)
    )
    error = await expect(Code.FAILED_PRECONDITION, create_version(versioning_stub, model, archive_token))
    assert "archived" in error.details()


async def test_bad_input_names_the_field_and_appends_nothing(
    versioning_stub, versioning_host, create_model
) -> None:
    model, token = await create_model()
    cases: dict[str, dict[str, Any]] = {
        "model_version.tags": dict(tags={"Bad Key": "v"}),
        "model_version.metrics": dict(metrics={"nan": float("nan")}),
        "model_version.files[0].sha256": dict(files=[pb.ArtifactFile(path="a", size=1, sha256="xyz")]),
        "model_version.files[0].path": dict(files=[pb.ArtifactFile(path="../etc", size=1, sha256="0" * 64)]),
        "model_version.signature.inputs[0].dtype": dict(
            # A dtype number this build does not know, as a newer client could send.
            signature=Signature(inputs=[TensorSpec(name="x", dtype=TensorSpec.DataType.ValueType(99))])
        ),
        "model_version.description": dict(description="x" * 20_000),
    }
    for field, fields in cases.items():
        error = await expect(Code.INVALID_ARGUMENT, create_version(versioning_stub, model, token, **fields))
        assert field in error.details()
    await expect(Code.INVALID_ARGUMENT, create_version(versioning_stub, "namespaces/x/models/Bad!"))
    envelopes = await log_envelopes(
        versioning_host.settings.kafka, versioning_host.topic("modelreg.versioning.v1")
    )
    assert not [e for e in envelopes if e.stream == model]


async def test_update_tags_and_description_after_ready(versioning_stub, create_model) -> None:
    model, token = await create_model()
    version = await ready_version(versioning_stub, model, token, description="v1", tags={"a": "1"})
    assert version.state == pb.ModelVersion.STATE_READY
    body = pb.ModelVersion(name=version.name, description="better", tags={"b": "2"})
    updated = await versioning_stub.UpdateModelVersion(
        pb.UpdateModelVersionRequest(model_version=body, update_mask=FieldMask(paths=["tags"]))
    )
    assert dict(updated.tags) == {"b": "2"} and updated.description == "v1"
    await expect(
        Code.INVALID_ARGUMENT,
        versioning_stub.UpdateModelVersion(
            pb.UpdateModelVersionRequest(model_version=body, update_mask=FieldMask(paths=["files"]))
        ),
    )
    deprecated = await versioning_stub.DeprecateModelVersion(
        pb.DeprecateModelVersionRequest(name=version.name, reason="old")
    )
    assert deprecated.state == pb.ModelVersion.STATE_DEPRECATED and deprecated.state_reason == "old"


async def test_identical_files_are_stored_once(versioning_stub, versioning_blobs, create_model) -> None:
    model, token = await create_model()
    shared, first_only, second_only = os.urandom(2048), os.urandom(100), os.urandom(300)
    files_1 = [
        artifact("weights.bin", shared),
        artifact("a.json", first_only),
        artifact("copy/weights.bin", shared),
    ]
    v1 = await create_version(versioning_stub, model, token, files=files_1)
    prepared = await versioning_stub.PrepareUpload(pb.PrepareUploadRequest(name=v1.name))
    assert sorted(m.sha256 for m in prepared.missing) == sorted({sha(shared), sha(first_only)})
    content = {sha(shared): shared, sha(first_only): first_only}
    for target in prepared.missing:
        assert await http_put(target.url, content[target.sha256]) == 200
    assert (
        await versioning_stub.FinalizeModelVersion(pb.FinalizeModelVersionRequest(name=v1.name))
    ).state == pb.ModelVersion.STATE_READY

    v2 = await create_version(versioning_stub, model)
    # The manifest may also be declared at PrepareUpload.
    prepared = await versioning_stub.PrepareUpload(
        pb.PrepareUploadRequest(
            name=v2.name, files=[artifact("weights.bin", shared), artifact("b.json", second_only)]
        )
    )
    assert [m.sha256 for m in prepared.missing] == [sha(second_only)]
    assert await http_put(prepared.missing[0].url, second_only) == 200
    await versioning_stub.FinalizeModelVersion(pb.FinalizeModelVersionRequest(name=v2.name))

    mine = {sha(shared), sha(first_only), sha(second_only)}
    stored = [b for b in await versioning_blobs.list_blobs() if b.sha256 in mine]
    assert len(stored) == 3
    keys = [
        o.object_name
        for o in versioning_blobs.client.list_objects(
            versioning_blobs.bucket, prefix="blobs/", recursive=True
        )
        if o.object_name.rsplit("/", 1)[-1] in mine
    ]
    digest = sha(shared)
    assert f"blobs/sha256/{digest[:2]}/{digest[2:4]}/{digest}" in keys and len(keys) == 3


async def test_finalize_verifies_every_blob_and_ready_is_immutable(versioning_stub, create_model) -> None:
    model, token = await create_model()
    good, other = os.urandom(1000), os.urandom(1000)
    version = await create_version(versioning_stub, model, token, files=[artifact("m.bin", good)])
    finalize = pb.FinalizeModelVersionRequest(name=version.name)
    prepared = await versioning_stub.PrepareUpload(pb.PrepareUploadRequest(name=version.name))
    url = prepared.missing[0].url

    error = await expect(Code.FAILED_PRECONDITION, versioning_stub.FinalizeModelVersion(finalize))
    assert "m.bin: missing" in error.details()
    await http_put(url, good[:999])
    error = await expect(Code.FAILED_PRECONDITION, versioning_stub.FinalizeModelVersion(finalize))
    assert "m.bin: wrong size" in error.details()
    await http_put(url, other)  # right size, wrong content
    error = await expect(Code.FAILED_PRECONDITION, versioning_stub.FinalizeModelVersion(finalize))
    assert "m.bin: wrong sha256" in error.details()
    got = await versioning_stub.GetModelVersion(pb.GetModelVersionRequest(name=version.name))
    assert got.state == pb.ModelVersion.STATE_PENDING_UPLOAD

    await http_put(url, good)
    ready = await versioning_stub.FinalizeModelVersion(finalize)
    assert ready.state == pb.ModelVersion.STATE_READY
    for refused in (
        versioning_stub.FinalizeModelVersion(finalize),
        versioning_stub.PrepareUpload(
            pb.PrepareUploadRequest(name=version.name, files=[artifact("x", other)])
        ),
        versioning_stub.UploadArtifact(upload_requests(version.name, "m.bin", good)),
    ):
        error = await expect(Code.FAILED_PRECONDITION, refused)
        assert "immutable" in error.details()


async def test_streaming_upload_and_download_round_trip(versioning_stub, create_model) -> None:
    model, token = await create_model()
    content = os.urandom(300_000)
    version = await create_version(versioning_stub, model, token, files=[artifact("model/w.bin", content)])
    error = await expect(
        Code.INVALID_ARGUMENT,
        versioning_stub.UploadArtifact(upload_requests(version.name, "model/w.bin", os.urandom(300_000))),
    )
    assert "sha256" in error.details()
    await expect(
        Code.NOT_FOUND, versioning_stub.UploadArtifact(upload_requests(version.name, "other.bin", content))
    )
    uploaded = await versioning_stub.UploadArtifact(upload_requests(version.name, "model/w.bin", content))
    assert uploaded.stored and uploaded.file.sha256 == sha(content)
    again = await versioning_stub.UploadArtifact(upload_requests(version.name, "model/w.bin", content))
    assert not again.stored
    await versioning_stub.FinalizeModelVersion(pb.FinalizeModelVersionRequest(name=version.name))

    received = bytearray()
    header = None
    async for message in versioning_stub.DownloadArtifact(
        pb.DownloadArtifactRequest(name=f"{model}@latest", path="model/w.bin")
    ):
        if message.WhichOneof("part") == "file":
            header = message.file
        else:
            received.extend(message.chunk)
    assert header is not None and header.size == len(content)
    assert hashlib.sha256(received).hexdigest() == header.sha256 == sha(content)
    assert bytes(received) == content


async def test_a_retried_create_returns_the_original_version(versioning_stub, create_model) -> None:
    model, token = await create_model()
    request = pb.CreateModelVersionRequest(
        parent=model, model_version=pb.ModelVersion(), bump=pb.BUMP_MINOR, request_id="req-1"
    )
    first, _ = await call(versioning_stub.CreateModelVersion, request, token)
    second = await versioning_stub.CreateModelVersion(request)
    assert (second.version, second.semver) == (first.version, first.semver) == (1, "1.0.0")
    listed = await versioning_stub.ListModelVersions(pb.ListModelVersionsRequest(parent=model))
    assert len(listed.model_versions) == 1


async def test_a_model_deleted_in_the_catalog_takes_no_new_versions(
    versioning_stub, catalog_stub, create_model
) -> None:
    model, token = await create_model()
    await create_version(versioning_stub, model, token)
    _, deleted_token = await call(
        catalog_stub.DeleteRegisteredModel, catalog_pb2.DeleteRegisteredModelRequest(name=model)
    )
    error = await expect(Code.NOT_FOUND, create_version(versioning_stub, model, deleted_token))
    assert "does not exist in the catalog" in error.details()


async def test_large_file_through_presigned_parts(versioning_stub, create_model) -> None:
    model, token = await create_model()
    content = os.urandom(6 * 1024 * 1024 + 10)
    version = await create_version(versioning_stub, model, token, files=[artifact("big.bin", content)])
    prepared = await versioning_stub.PrepareUpload(pb.PrepareUploadRequest(name=version.name))
    (target,) = prepared.missing
    assert target.url == "" and target.upload_id and len(target.part_urls) == 2
    size = target.part_size
    await http_put(target.part_urls[0], content[:size])
    error = await expect(
        Code.FAILED_PRECONDITION,
        versioning_stub.FinalizeModelVersion(pb.FinalizeModelVersionRequest(name=version.name)),
    )
    assert "big.bin: wrong size" in error.details()  # one part of two: completed, found short, removed
    prepared = await versioning_stub.PrepareUpload(pb.PrepareUploadRequest(name=version.name))
    (target,) = prepared.missing
    for i, url in enumerate(target.part_urls):
        await http_put(url, content[i * size : (i + 1) * size])
    ready = await versioning_stub.FinalizeModelVersion(pb.FinalizeModelVersionRequest(name=version.name))
    assert ready.state == pb.ModelVersion.STATE_READY
    received = bytearray()
    async for message in versioning_stub.DownloadArtifact(
        pb.DownloadArtifactRequest(name=version.name, path="big.bin")
    ):
        received.extend(message.chunk)
    assert bytes(received) == content
