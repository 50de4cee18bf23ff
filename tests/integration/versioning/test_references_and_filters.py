"""GetModelVersion by stage and alias (versioning's promotion cache, one call) and
ListModelVersions' filter, against the real service."""

from __future__ import annotations

import grpc

from modelreg.gen.promotion.v1 import events_pb2 as promotion
from modelreg.gen.versioning.v1 import versioning_pb2 as pb
from tests.integration.versioning.helpers import create_version, expect, metadata, ready_version
from tests.integration.versioning.test_retention_and_replay import append_promotion, move_pointer

Code = grpc.StatusCode


async def test_stage_and_alias_resolve_in_one_call_after_the_promotion_token(
    versioning_stub, versioning_host, create_model
) -> None:
    model, token = await create_model()
    for _ in range(3):
        await ready_version(versioning_stub, model, token)
    await move_pointer(versioning_host, model, "champion", 2)
    moved = promotion.TransitionApplied(
        moved=[promotion.PointerMoved(model=model, pointer="PRODUCTION", version=3)]
    )
    promotion_token = await append_promotion(versioning_host, model, "transition_applied", moved)

    def get(ref: str):
        return versioning_stub.GetModelVersion(
            pb.GetModelVersionRequest(name=f"{model}@{ref}"), metadata=metadata(promotion_token)
        )

    assert (await get("champion")).version == 2
    assert (await get("production")).version == 3  # stages in any letter case
    assert (await get("PRODUCTION")).version == 3
    assert (await get("latest")).version == 3  # the reserved references still win
    await expect(Code.NOT_FOUND, get("challenger"))
    await expect(Code.NOT_FOUND, get("staging"))
    error = await expect(Code.INVALID_ARGUMENT, get("Not An Alias"))
    assert "name" in error.details()

    cleared = await append_promotion(
        versioning_host, model, "pointer_removed", promotion.PointerRemoved(model=model, pointer="champion")
    )
    await expect(
        Code.NOT_FOUND,
        versioning_stub.GetModelVersion(
            pb.GetModelVersionRequest(name=f"{model}@champion"), metadata=metadata(cleared)
        ),
    )


async def test_list_filter_on_tags_state_semver_and_version(versioning_stub, create_model) -> None:
    model, token = await create_model()
    for i in range(6):
        tags = {"k1": f"v{i % 3}", "team": "a" if i < 3 else "b"}
        if i % 2:
            await ready_version(versioning_stub, model, token, tags=tags, framework="torch")
        else:
            await create_version(versioning_stub, model, token, tags=tags, params={"lr": "0.1"})

    async def numbers(text: str, page_size: int = 0) -> list[int]:
        found: list[int] = []
        page_token = ""
        while True:
            page = await versioning_stub.ListModelVersions(
                pb.ListModelVersionsRequest(
                    parent=model, filter=text, page_size=page_size, page_token=page_token
                )
            )
            found += [v.version for v in page.model_versions]
            page_token = page.next_page_token
            if not page_token:
                return found

    # Versions 1..6: semvers 1.0.0 .. 1.5.0 (minor bumps), k1 = v0, v1, v2, v0, v1, v2, team a for
    # 1-3, even numbers READY with framework torch, odd ones PENDING_UPLOAD with params.lr.
    assert await numbers('tags.k1 = "v0"') == [4, 1]
    assert await numbers("tags.k1 = v1 AND state = READY") == [2]
    assert await numbers('tags.team = "a" OR NOT tags.k1 = "v2"') == [5, 4, 3, 2, 1]
    assert await numbers('semver >= "1.2.0" AND semver < "v1.4.0"') == [4, 3]
    assert await numbers("version > 4 OR (state = PENDING_UPLOAD AND params.lr:*)") == [6, 5, 3, 1]
    assert await numbers('framework = "torch" AND -tags.team = "b"') == [2]
    assert await numbers('tags.k1 != "v0"', page_size=1) == [6, 5, 3, 2]
    assert await numbers('tags.absent = "x"') == []

    for bad in ('tags.k1 = "v0" AND', "colour = red", "state = SHINY", 'semver > "one"', "tags.k1 < x"):
        error = await expect(
            Code.INVALID_ARGUMENT,
            versioning_stub.ListModelVersions(pb.ListModelVersionsRequest(parent=model, filter=bad)),
        )
        assert "filter" in error.details(), bad
