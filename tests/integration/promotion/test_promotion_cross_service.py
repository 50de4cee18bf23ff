"""Promotion against the real versioning service: the facts its reference cache
folds come from versioning's own events, and a versioning write's consistency
token makes promotion wait until its cache has them (read-your-writes across
services)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from modelreg.eventlog import TOKEN_METADATA_KEY
from modelreg.gen.catalog.v1 import catalog_pb2
from modelreg.gen.common.v1.signature_pb2 import Signature, TensorSpec
from modelreg.gen.promotion.v1 import promotion_pb2 as pb
from modelreg.gen.promotion.v1 import promotion_pb2_grpc
from modelreg.gen.versioning.v1 import versioning_pb2 as vpb
from modelreg.gen.versioning.v1 import versioning_pb2_grpc
from modelreg.runtime.host import ServiceHost
from modelreg.runtime.settings import Settings
from tests.helpers import unique
from tests.integration.promotion.conftest import auth, start_promotion
from tests.integration.promotion.test_promotion_service import rpc_error, set_policy


@pytest.fixture(scope="module")
def xsettings(settings: Settings) -> Settings:
    """Topics of this module alone: real services only, no hand-made facts on them."""
    kafka = settings.kafka
    return replace(settings, kafka=replace(kafka, topic_prefix=f"xs-{uuid.uuid4().hex[:8]}."))


@pytest.fixture(scope="module")
async def promotion_stub(xsettings: Settings) -> AsyncIterator[object]:
    """Overrides the package's promotion_stub: a promotion service on this module's topics."""
    host = await start_promotion(xsettings, schema="promotion_xs")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        yield promotion_pb2_grpc.PromotionServiceStub(channel)
    await host.stop()


@pytest.fixture(scope="module")
async def catalog(xsettings: Settings) -> AsyncIterator[object]:
    """A catalog service on the promotion tests' topics (versioning validates models against it)."""
    from modelreg.catalog.main import spec
    from modelreg.gen.catalog.v1 import catalog_pb2_grpc

    host = ServiceHost(spec("catalog_for_promotion"), xsettings)
    await host.start(port=0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        yield catalog_pb2_grpc.CatalogServiceStub(channel)
    await host.stop()


@pytest.fixture(scope="module")
async def versioning(
    xsettings: Settings, catalog: object, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[object]:
    from modelreg.artifacts.fs import FilesystemBlobStore
    from modelreg.versioning.main import spec

    root = Path(tmp_path_factory.mktemp("blobs"))
    # Its own schema, so it never shares a checkpoint with the versioning tests' host.
    host = ServiceHost(spec("versioning_for_promotion", blobs=lambda: FilesystemBlobStore(root)), xsettings)
    await host.start(port=0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
        yield versioning_pb2_grpc.VersioningServiceStub(channel)
    await host.stop()


async def with_token(call):
    response = await call
    return response, dict(await call.trailing_metadata())[TOKEN_METADATA_KEY]


async def create_model(catalog):
    """A new model and the catalog's token, which versioning needs to see it at once."""
    model, token = await with_token(
        catalog.CreateRegisteredModel(
            catalog_pb2.CreateRegisteredModelRequest(
                parent=f"namespaces/{unique('ns')}",
                registered_model_id=unique("m"),
                registered_model=catalog_pb2.RegisteredModel(),
            )
        )
    )
    return model, [(TOKEN_METADATA_KEY, token)]


async def test_checks_use_facts_recorded_by_the_versioning_service(
    catalog, versioning, promotion_stub
) -> None:
    model, catalog_token = await create_model(catalog)
    signature = Signature(
        inputs=[TensorSpec(name="x", dtype=TensorSpec.DATA_TYPE_FLOAT32, shape=[-1])],
        outputs=[TensorSpec(name="p", dtype=TensorSpec.DATA_TYPE_FLOAT64, shape=[-1])],
    )
    good = await versioning.CreateModelVersion(
        vpb.CreateModelVersionRequest(
            parent=model.name,
            model_version=vpb.ModelVersion(metrics={"auc": 0.97}, signature=signature),
            bump=vpb.BUMP_MINOR,
        ),
        metadata=catalog_token,
    )
    good, _ = await with_token(
        versioning.FinalizeModelVersion(vpb.FinalizeModelVersionRequest(name=good.name))
    )
    weak, token = await with_token(
        versioning.CreateModelVersion(
            vpb.CreateModelVersionRequest(
                parent=model.name,
                model_version=vpb.ModelVersion(metrics={"auc": 0.91}, signature=signature),
                bump=vpb.BUMP_MINOR,
            ),
            metadata=catalog_token,
        )
    )
    await set_policy(
        promotion_stub,
        model.name,
        required_checks=[
            pb.RequiredCheck(kind=pb.RequiredCheck.KIND_VERSION_READY),
            pb.RequiredCheck(kind=pb.RequiredCheck.KIND_SIGNATURE_PRESENT),
            pb.RequiredCheck(
                kind=pb.RequiredCheck.KIND_METRIC_THRESHOLD,
                metric="auc",
                comparison=pb.RequiredCheck.COMPARISON_GREATER_OR_EQUAL,
                threshold=0.95,
            ),
        ],
    )
    metadata = [*auth("alice"), (TOKEN_METADATA_KEY, token)]

    def promote(version: int):
        return promotion_stub.CreateTransitionRequest(
            pb.CreateTransitionRequestRequest(
                parent=model.name,
                transition_request=pb.TransitionRequest(
                    moves=[pb.PointerMove(pointer="PRODUCTION", version=version)]
                ),
            ),
            metadata=metadata,
        )

    # The weak version was written a moment ago: the token makes promotion see it.
    error = await rpc_error(promote(weak.version))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"VERSION_READY failed for version {weak.version}: status is PENDING_UPLOAD" in error.details()
    assert f"metrics.auc >= 0.95 failed for version {weak.version}: auc = 0.91" in error.details()
    created = await promote(good.version)
    assert created.state == pb.TransitionRequest.STATE_PENDING
    applied = await promotion_stub.ApproveTransitionRequest(
        pb.ApproveTransitionRequestRequest(name=created.name), metadata=auth("bob")
    )
    assert applied.state == pb.TransitionRequest.STATE_APPLIED

    _, token = await with_token(
        versioning.DeleteModelVersion(vpb.DeleteModelVersionRequest(name=weak.name, reason="superseded"))
    )
    error = await rpc_error(
        promotion_stub.CreateTransitionRequest(
            pb.CreateTransitionRequestRequest(
                parent=model.name,
                transition_request=pb.TransitionRequest(
                    moves=[pb.PointerMove(pointer="champion", version=weak.version)]
                ),
            ),
            metadata=[*auth("alice"), (TOKEN_METADATA_KEY, token)],
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "is deleted" in error.details()


async def test_versioning_refuses_to_delete_what_a_pointer_names(catalog, versioning, promotion_stub) -> None:
    """Promotion records moves nested in TransitionApplied; versioning's pointer cache reads them."""
    model, catalog_token = await create_model(catalog)
    version, token = await with_token(
        versioning.CreateModelVersion(
            vpb.CreateModelVersionRequest(
                parent=model.name, model_version=vpb.ModelVersion(), bump=vpb.BUMP_MINOR
            ),
            metadata=catalog_token,
        )
    )
    moved, token = await with_token(
        promotion_stub.CreateTransitionRequest(
            pb.CreateTransitionRequestRequest(
                parent=model.name,
                transition_request=pb.TransitionRequest(
                    moves=[pb.PointerMove(pointer="champion", version=version.version)]
                ),
            ),
            metadata=[*auth("alice"), (TOKEN_METADATA_KEY, token)],
        )
    )
    assert moved.state == pb.TransitionRequest.STATE_APPLIED
    error = await rpc_error(
        versioning.DeleteModelVersion(
            vpb.DeleteModelVersionRequest(name=version.name), metadata=[(TOKEN_METADATA_KEY, token)]
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "champion" in error.details()


async def test_versions_in_a_traffic_split_are_kept_by_versioning(
    catalog, versioning, promotion_stub
) -> None:
    model, catalog_token = await create_model(catalog)
    numbers = []
    for _ in range(2):
        created = await versioning.CreateModelVersion(
            vpb.CreateModelVersionRequest(
                parent=model.name, model_version=vpb.ModelVersion(), bump=vpb.BUMP_MINOR
            ),
            metadata=catalog_token,
        )
        ready, token = await with_token(
            versioning.FinalizeModelVersion(vpb.FinalizeModelVersionRequest(name=created.name))
        )
        numbers.append(ready)
    split = pb.Deployment(
        environment="prod",
        weights=[
            pb.TrafficWeight(version=numbers[0].version, percent=90),
            pb.TrafficWeight(version=numbers[1].version, percent=10),
        ],
    )
    requested = await promotion_stub.CreateTransitionRequest(
        pb.CreateTransitionRequestRequest(
            parent=model.name, transition_request=pb.TransitionRequest(deployments=[split])
        ),
        metadata=[*auth("alice"), (TOKEN_METADATA_KEY, token)],
    )
    applied, token = await with_token(
        promotion_stub.ApproveTransitionRequest(
            pb.ApproveTransitionRequestRequest(name=requested.name), metadata=auth("bob")
        )
    )
    assert applied.state == pb.TransitionRequest.STATE_APPLIED
    error = await rpc_error(
        versioning.DeleteModelVersion(
            vpb.DeleteModelVersionRequest(name=numbers[1].name), metadata=[(TOKEN_METADATA_KEY, token)]
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "prod" in error.details()
