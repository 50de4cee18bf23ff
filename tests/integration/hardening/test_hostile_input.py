"""Every hostile input of issue 12 (and issue 13's projector wedge) against the running
services: each is INVALID_ARGUMENT naming the field, and changes nothing: the log ends,
every table's row count and the checkpoints are the same before and after."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from modelreg.eventlog import TOKEN_METADATA_KEY
from modelreg.gen.catalog.v1 import catalog_pb2 as cat
from modelreg.gen.lineage.v1 import lineage_pb2 as lin
from modelreg.gen.promotion.v1 import promotion_pb2 as pro
from modelreg.gen.versioning.v1 import versioning_pb2 as ver
from tests.fleet import ADMIN, Fleet
from tests.helpers import unique, violations

Code = grpc.StatusCode
MB = 1024 * 1024


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture(scope="module")
async def model(fleet: Fleet) -> dict[str, str]:
    """A model with one version, so that each hostile request is otherwise valid."""
    ns, name = unique("ns"), unique("m")
    created = fleet.stubs["catalog"].CreateRegisteredModel(
        cat.CreateRegisteredModelRequest(
            parent=f"namespaces/{ns}", registered_model_id=name, registered_model=cat.RegisteredModel()
        ),
        metadata=ADMIN,
    )
    registered = await created
    token = dict(await created.trailing_metadata())[TOKEN_METADATA_KEY]
    version = await fleet.stubs["versioning"].CreateModelVersion(
        ver.CreateModelVersionRequest(
            parent=registered.name, model_version=ver.ModelVersion(), bump=ver.BUMP_MAJOR
        ),
        metadata=[*ADMIN, (TOKEN_METADATA_KEY, token)],
    )
    return {"ns": ns, "model": registered.name, "version": version.name}


async def refused(
    fleet: Fleet,
    service: str,
    method: str,
    request: Message,
    field: str,
    metadata: list[tuple[str, str]] | None = None,
    code: grpc.StatusCode = Code.INVALID_ARGUMENT,
) -> None:
    before = await fleet.snapshot()
    call = getattr(fleet.stubs[service], method)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        result = call(request, metadata=[*ADMIN, *(metadata or [])], timeout=30)
        if hasattr(result, "__aiter__"):
            async for _ in result:
                pass
        else:
            await result
    assert error.value.code() == code, error.value.details()
    if code == Code.INVALID_ARGUMENT:
        assert any(field in v for v in violations(error.value)), (violations(error.value), field)
    assert await fleet.snapshot() == before
    assert await fleet.quarantined() == 0


Case = Callable[[dict[str, str]], tuple[str, str, Message, str]]

NUL_CASES: dict[str, Case] = {
    # issue 13: a NUL in free text was accepted, appended, and wedged the projector.
    "catalog description": lambda m: (
        "catalog",
        "CreateRegisteredModel",
        cat.CreateRegisteredModelRequest(
            parent=f"namespaces/{m['ns']}",
            registered_model_id=unique("m"),
            registered_model=cat.RegisteredModel(description="a\x00b"),
        ),
        "registered_model.description",
    ),
    "catalog tag value": lambda m: (
        "catalog",
        "CreateRegisteredModel",
        cat.CreateRegisteredModelRequest(
            parent=f"namespaces/{m['ns']}",
            registered_model_id=unique("m"),
            registered_model=cat.RegisteredModel(tags={"k": "v\x00"}),
        ),
        "registered_model.tags",
    ),
    "versioning description": lambda m: (
        "versioning",
        "CreateModelVersion",
        ver.CreateModelVersionRequest(
            parent=m["model"], model_version=ver.ModelVersion(description="x\x00"), bump=ver.BUMP_MINOR
        ),
        "model_version.description",
    ),
    "versioning metric name": lambda m: (
        "versioning",
        "CreateModelVersion",
        ver.CreateModelVersionRequest(
            parent=m["model"], model_version=ver.ModelVersion(metrics={"acc\x00": 1.0}), bump=ver.BUMP_MINOR
        ),
        "model_version.metrics",
    ),
    "request_id": lambda m: (
        "catalog",
        "CreateRegisteredModel",
        cat.CreateRegisteredModelRequest(
            parent=f"namespaces/{m['ns']}",
            registered_model_id=unique("m"),
            registered_model=cat.RegisteredModel(),
            request_id="r\x00",
        ),
        "request_id",
    ),
    "catalog filter": lambda m: (
        "catalog",
        "ListRegisteredModels",
        cat.ListRegisteredModelsRequest(parent=f"namespaces/{m['ns']}", filter='name = "a\x00"'),
        "filter",
    ),
    "lineage filter": lambda m: (
        "lineage",
        "ListLineageRecords",
        lin.ListLineageRecordsRequest(parent=m["version"], filter='creator = "\x00"'),
        "filter",
    ),
    "pointer name": lambda m: (
        "promotion",
        "CreateTransitionRequest",
        pro.CreateTransitionRequestRequest(
            parent=m["model"],
            transition_request=pro.TransitionRequest(moves=[pro.PointerMove(pointer="champ\x00", version=1)]),
        ),
        "pointer",
    ),
    "promotion comment": lambda m: (
        "promotion",
        "CreateTransitionRequest",
        pro.CreateTransitionRequestRequest(
            parent=m["model"],
            transition_request=pro.TransitionRequest(
                moves=[pro.PointerMove(pointer="champion", version=1)], comment="ok\x00"
            ),
        ),
        "comment",
    ),
}


@pytest.mark.parametrize("case", list(NUL_CASES), ids=list(NUL_CASES))
async def test_a_nul_byte_is_refused_and_changes_nothing(
    fleet: Fleet, model: dict[str, str], case: str
) -> None:
    await refused(fleet, *NUL_CASES[case](model))


async def test_a_trailing_newline_does_not_make_a_second_name(fleet: Fleet, model: dict[str, str]) -> None:
    """`dup\\n` passed `^...$` (Python's `$` matches before a final newline)."""
    await refused(
        fleet,
        "catalog",
        "CreateRegisteredModel",
        cat.CreateRegisteredModelRequest(
            parent=f"namespaces/{model['ns']}",
            registered_model_id="dup\n",
            registered_model=cat.RegisteredModel(),
        ),
        "registered_model_id",
    )
    await refused(
        fleet,
        "catalog",
        "GetRegisteredModel",
        cat.GetRegisteredModelRequest(name=model["model"] + "\n"),
        "name",
    )


@pytest.mark.parametrize("digits", ["١", "²", "１"])
async def test_unicode_digits_are_not_version_numbers(
    fleet: Fleet, model: dict[str, str], digits: str
) -> None:
    version = model["version"].rsplit("/", 1)[0] + "/" + digits
    await refused(
        fleet,
        "lineage",
        "RecordLineage",
        lin.RecordLineageRequest(parent=version, record=lin.LineageRecord()),
        "parent",
    )
    await refused(
        fleet, "lineage", "ListLineageRecords", lin.ListLineageRecordsRequest(parent=version), "parent"
    )


async def test_an_out_of_range_timestamp_names_the_field(fleet: Fleet, model: dict[str, str]) -> None:
    for seconds, nanos in ((253402300800, 0), (-62135596801, 0), (0, -1), (0, 1_000_000_000)):
        await refused(
            fleet,
            "promotion",
            "GetPointers",
            pro.GetPointersRequest(model=model["model"], as_of=Timestamp(seconds=seconds, nanos=nanos)),
            "as_of",
        )


async def test_a_5_mb_metric_name_in_a_policy_is_refused(fleet: Fleet, model: dict[str, str]) -> None:
    metric = pro.RequiredCheck(
        kind=pro.RequiredCheck.KIND_METRIC_THRESHOLD,
        metric="m" * (5 * MB),
        comparison=pro.RequiredCheck.COMPARISON_GREATER,
        threshold=0.5,
    )
    policy = pro.PromotionPolicy(parent=model["model"], required_approvals=1, required_checks=[metric])
    await refused(
        fleet,
        "promotion",
        "SetPromotionPolicy",
        pro.SetPromotionPolicyRequest(policy=policy),
        "policy.required_checks[0].metric",
    )
    # Short of the generic limit, the policy's own limit on a metric name holds.
    metric.metric = "m" * 4096
    await refused(
        fleet,
        "promotion",
        "SetPromotionPolicy",
        pro.SetPromotionPolicyRequest(policy=policy),
        "policy.required_checks[0].metric",
    )


async def test_an_event_over_the_record_limit_is_refused_before_append(
    fleet: Fleet, model: dict[str, str]
) -> None:
    """Each param is within its limit; together they make an event larger than the broker takes."""
    params = {f"p{i}": "v" * 4000 for i in range(256)}
    await refused(
        fleet,
        "versioning",
        "CreateModelVersion",
        ver.CreateModelVersionRequest(
            parent=model["model"], model_version=ver.ModelVersion(params=params), bump=ver.BUMP_MINOR
        ),
        "request",
    )


HOSTILE_TOKENS = {
    "1e400": b64(b'{"t":{"0":1e400}}'),
    "20 digits": b64(b'{"t":{"0":99999999999999999999}}'),
    "NaN": b64(b'{"t":{"0":NaN}}'),
    "negative": b64(b'{"t":{"0":-1}}'),
    "string offset": b64(b'{"t":{"0":"1"}}'),
    "2500 deep": b64(b"[" * 2500 + b"]" * 2500),
    "2500 deep object": b64(b'{"a":' * 2500 + b"1" + b"}" * 2500),
    "lone surrogate": b64(b'{"\\ud800":{"0":1}}'),
    "not base64": "%%%",
    "huge": "A" * 60_000,
}


# gRPC itself refuses metadata over 16 KiB (RESOURCE_EXHAUSTED) before any handler, and
# between 8 and 16 KiB at random: in metadata, the deep and the huge token stay below 8 KiB
# (and above the token's own depth limit).
METADATA_TOKENS = {
    **HOSTILE_TOKENS,
    "2500 deep object": b64(b'{"a":' * 500 + b"1" + b"}" * 500),
    "huge": "A" * 5000,
}


@pytest.mark.parametrize("token", list(METADATA_TOKENS), ids=list(METADATA_TOKENS))
async def test_hostile_consistency_tokens(fleet: Fleet, model: dict[str, str], token: str) -> None:
    metadata = [(TOKEN_METADATA_KEY, METADATA_TOKENS[token])]
    for service, method, request in (
        ("catalog", "GetRegisteredModel", cat.GetRegisteredModelRequest(name=model["model"])),
        ("versioning", "GetModelVersion", ver.GetModelVersionRequest(name=model["version"])),
        ("lineage", "ListLineageRecords", lin.ListLineageRecordsRequest(parent=model["version"])),
        ("promotion", "GetPointers", pro.GetPointersRequest(model=model["model"])),
    ):
        await refused(fleet, service, method, request, TOKEN_METADATA_KEY, metadata)


@pytest.mark.parametrize("token", list(HOSTILE_TOKENS), ids=list(HOSTILE_TOKENS))
async def test_hostile_page_and_resume_tokens(fleet: Fleet, model: dict[str, str], token: str) -> None:
    bad = HOSTILE_TOKENS[token]
    for service, method, request, field in (
        (
            "catalog",
            "ListRegisteredModels",
            cat.ListRegisteredModelsRequest(parent=f"namespaces/{model['ns']}", page_token=bad),
            "page_token",
        ),
        (
            "versioning",
            "ListModelVersions",
            ver.ListModelVersionsRequest(parent=model["model"], page_token=bad),
            "page_token",
        ),
        (
            "promotion",
            "WatchPromotions",
            pro.WatchPromotionsRequest(parent=model["model"], resume_token=bad),
            "resume_token",
        ),
    ):
        await refused(fleet, service, method, request, field)


async def test_a_20_digit_page_token(fleet: Fleet, model: dict[str, str]) -> None:
    await refused(
        fleet,
        "catalog",
        "ListRegisteredModels",
        cat.ListRegisteredModelsRequest(
            parent=f"namespaces/{model['ns']}", page_token="99999999999999999999"
        ),
        "page_token",
    )


def raw_method(channel: grpc.aio.Channel, path: str, kind: str) -> Any:
    identity = {"request_serializer": None, "response_deserializer": None}
    return getattr(channel, kind)(path, **identity)


UNDECODABLE = [b"\x0a\x05ab", b"\x0a\x02\xff\xfe", b"\xff" * 8, b"\x08" + b"\xff" * 11, b"\x0b" * 3]


@pytest.mark.parametrize("data", UNDECODABLE, ids=range(len(UNDECODABLE)))
async def test_undecodable_bytes_on_every_kind_of_method(fleet: Fleet, data: bytes) -> None:
    before = await fleet.snapshot()
    calls = [
        ("catalog", "/modelreg.catalog.v1.CatalogService/CreateRegisteredModel", "unary_unary"),
        ("lineage", "/modelreg.lineage.v1.LineageService/GetLineageSubgraph", "unary_unary"),
        ("versioning", "/modelreg.versioning.v1.VersioningService/DownloadArtifact", "unary_stream"),
        ("promotion", "/modelreg.promotion.v1.PromotionService/WatchPromotions", "unary_stream"),
        ("versioning", "/modelreg.versioning.v1.VersioningService/UploadArtifact", "stream_unary"),
    ]
    for service, path, kind in calls:
        method = raw_method(fleet.channels[service], path, kind)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            if kind == "unary_unary":
                await method(data, metadata=ADMIN, timeout=30)
            elif kind == "unary_stream":
                async for _ in method(data, metadata=ADMIN, timeout=30):
                    pass
            else:

                async def requests() -> Any:
                    yield data

                await method(requests(), metadata=ADMIN, timeout=30)
        assert error.value.code() == Code.INVALID_ARGUMENT, (path, error.value.code(), error.value.details())
        assert violations(error.value) == ["request"]
    assert await fleet.snapshot() == before


async def test_a_real_token_beside_a_garbage_one(fleet: Fleet, model: dict[str, str]) -> None:
    """Found by the fuzz suite (reported as a hang on a loaded machine): a real consistency
    token and an undecodable one on the same call."""
    created = fleet.stubs["catalog"].CreateRegisteredModel(
        cat.CreateRegisteredModelRequest(
            parent=f"namespaces/{model['ns']}",
            registered_model_id=unique("m"),
            registered_model=cat.RegisteredModel(),
        ),
        metadata=ADMIN,
    )
    await created
    real = dict(await created.trailing_metadata())[TOKEN_METADATA_KEY]
    for request in (cat.CreateRegisteredModelRequest(), cat.GetRegisteredModelRequest(name=model["model"])):
        method = (
            "CreateRegisteredModel"
            if isinstance(request, cat.CreateRegisteredModelRequest)
            else "GetRegisteredModel"
        )
        await refused(
            fleet,
            "catalog",
            method,
            request,
            TOKEN_METADATA_KEY,
            [(TOKEN_METADATA_KEY, real), (TOKEN_METADATA_KEY, "BnD6L2Vt2V8")],
        )
