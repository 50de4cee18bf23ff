"""A retried FinalizeModelVersion or CreateModelVersion with the same request_id gets the original
answer, not FAILED_PRECONDITION, after the original was applied or while it is in flight."""

from __future__ import annotations

import asyncio
import uuid

from modelreg.gen.versioning.v1 import versioning_pb2 as pb
from tests.helpers import count_rows
from tests.integration.versioning.helpers import call, create_version


async def accepted_with(dsn: str, model: str, request_id: str) -> int:
    return await count_rows(
        dsn,
        "SELECT count(*) FROM versioning.event_outcomes WHERE stream = $1 AND request_id = $2 "
        "AND verdict = 'accepted'",
        model,
        request_id,
    )


async def test_a_retried_finalize_gets_the_original_answer(versioning_stub, create_model, settings) -> None:
    model, token = await create_model()
    version = await create_version(versioning_stub, model, token)
    finalize = pb.FinalizeModelVersionRequest(name=version.name, request_id=f"fin-{uuid.uuid4()}")
    first = await versioning_stub.FinalizeModelVersion(finalize)
    again = await versioning_stub.FinalizeModelVersion(finalize)
    assert first.state == again.state == pb.ModelVersion.STATE_READY
    assert again == first
    assert await accepted_with(settings.pg_dsn, model, finalize.request_id) == 1


async def test_concurrent_finalizes_with_one_request_id_have_one_effect(
    versioning_stub, create_model, settings
) -> None:
    model, token = await create_model()
    version = await create_version(versioning_stub, model, token)
    finalize = pb.FinalizeModelVersionRequest(name=version.name, request_id=f"fin-{uuid.uuid4()}")
    answers = await asyncio.gather(*(versioning_stub.FinalizeModelVersion(finalize) for _ in range(4)))
    assert all(answer == answers[0] for answer in answers)
    assert answers[0].state == pb.ModelVersion.STATE_READY
    assert await accepted_with(settings.pg_dsn, model, finalize.request_id) == 1


async def test_concurrent_creates_with_one_request_id_create_one_version(
    versioning_stub, create_model, settings
) -> None:
    model, token = await create_model()
    create = pb.CreateModelVersionRequest(
        parent=model, model_version=pb.ModelVersion(), bump=pb.BUMP_MINOR, request_id=f"c-{uuid.uuid4()}"
    )
    answers = [
        response
        for response, _ in await asyncio.gather(
            *(call(versioning_stub.CreateModelVersion, create, token) for _ in range(4))
        )
    ]
    assert {a.name for a in answers} == {answers[0].name}
    assert await accepted_with(settings.pg_dsn, model, create.request_id) == 1
    listed = await versioning_stub.ListModelVersions(pb.ListModelVersionsRequest(parent=model))
    assert len(listed.model_versions) == 1
