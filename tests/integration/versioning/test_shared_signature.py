"""One Signature type for the catalog and versioning: what a client sets on a model and on
one of its versions comes back identically from both services, and is recorded identically."""

from __future__ import annotations

import grpc

from modelreg.gen.catalog.v1 import catalog_pb2
from modelreg.gen.common.v1.signature_pb2 import Signature, TensorSpec
from modelreg.gen.versioning.v1 import versioning_pb2 as pb
from modelreg.runtime.host import ServiceHost
from tests.helpers import log_envelopes, unique
from tests.integration.versioning.helpers import call, create_version, expect

Code = grpc.StatusCode
EVERY_DTYPE = [value for value in TensorSpec.DataType.values() if value != TensorSpec.DATA_TYPE_UNSPECIFIED]


def every_dtype_signature() -> Signature:
    inputs = [
        TensorSpec(name=f"in_{TensorSpec.DataType.Name(dtype).lower()}", dtype=dtype, shape=[-1, i])
        for i, dtype in enumerate(EVERY_DTYPE)
    ]
    scalar = TensorSpec(name="score", dtype=TensorSpec.DATA_TYPE_FLOAT64)
    return Signature(
        inputs=inputs, outputs=[scalar, TensorSpec(name="mask", dtype=TensorSpec.DATA_TYPE_BOOL)]
    )


async def test_a_signature_round_trips_identically_through_catalog_and_versioning(
    catalog_stub, catalog_host: ServiceHost, versioning_stub, versioning_host: ServiceHost
) -> None:
    sent = every_dtype_signature()
    model, token = await call(
        catalog_stub.CreateRegisteredModel,
        catalog_pb2.CreateRegisteredModelRequest(
            parent=f"namespaces/{unique('ns')}",
            registered_model_id=unique("m"),
            registered_model=catalog_pb2.RegisteredModel(signature=sent),
        ),
    )
    version = await create_version(versioning_stub, model.name, token, signature=sent)
    fetched_model = await catalog_stub.GetRegisteredModel(
        catalog_pb2.GetRegisteredModelRequest(name=model.name)
    )
    fetched_version = await versioning_stub.GetModelVersion(pb.GetModelVersionRequest(name=version.name))
    for returned in (model.signature, version.signature, fetched_model.signature, fetched_version.signature):
        assert returned == sent
    assert sorted({s.dtype for s in fetched_version.signature.inputs}) == sorted(EVERY_DTYPE)

    # The facts on both topics carry the same bytes, so any reader of either log decodes the same types.
    catalog_log = await log_envelopes(catalog_host.settings.kafka, catalog_host.topic("modelreg.catalog.v1"))
    versioning_log = await log_envelopes(
        versioning_host.settings.kafka, versioning_host.topic("modelreg.versioning.v1")
    )
    [created_model] = [e for e in catalog_log if e.stream == model.name]
    [created_version] = [e for e in versioning_log if e.stream == model.name]
    recorded = (
        created_model.registered_model_created.registered_model.signature,
        created_version.model_version_created.model_version.signature,
    )
    assert {s.SerializeToString(deterministic=True) for s in recorded} == {
        sent.SerializeToString(deterministic=True)
    }


async def test_both_services_refuse_a_bad_signature_with_the_same_words(
    catalog_stub, versioning_stub, create_model
) -> None:
    model, token = await create_model()
    untyped = Signature(inputs=[TensorSpec(name="x")])
    catalog_error = await expect(
        Code.INVALID_ARGUMENT,
        catalog_stub.CreateRegisteredModel(
            catalog_pb2.CreateRegisteredModelRequest(
                parent=f"namespaces/{unique('ns')}",
                registered_model_id=unique("m"),
                registered_model=catalog_pb2.RegisteredModel(signature=untyped),
            )
        ),
    )
    versioning_error = await expect(
        Code.INVALID_ARGUMENT, create_version(versioning_stub, model, token, signature=untyped)
    )
    assert "registered_model.signature.inputs[0].dtype" in catalog_error.details()
    assert "model_version.signature.inputs[0].dtype" in versioning_error.details()
    assert "is required" in catalog_error.details() and "is required" in versioning_error.details()
