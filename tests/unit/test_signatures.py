"""The one signature validation and proto mapping that catalog and versioning share."""

from __future__ import annotations

import pytest

from modelreg.catalog.domain.commands import CreateRegisteredModel
from modelreg.catalog.domain.values import ModelFields
from modelreg.errors import InvalidArgument
from modelreg.gen.common.v1 import signature_pb2
from modelreg.names import ModelName
from modelreg.signatures import DATA_TYPES, Signature, TensorSpec, check_signature
from modelreg.signatures_proto import signature_from_proto, signature_to_proto
from modelreg.versioning.domain.commands import CreateVersion
from modelreg.versioning.domain.values import Bump, VersionSpec

x = TensorSpec("x", "float32", (-1, 3))
BAD = [
    (
        Signature((TensorSpec("1x", "float32"),)),
        "s.inputs[0].name",
        "must match ^[A-Za-z_][A-Za-z0-9_.:/-]{0,127}$",
    ),
    (Signature((TensorSpec("n" * 129, "float32"),)), "s.inputs[0].name", "must match"),
    (Signature((x, TensorSpec("x", "int64"))), "s.inputs[1].name", "'x' appears twice"),
    (Signature((), (TensorSpec("y", ""),)), "s.outputs[0].dtype", "is required"),
    (Signature((TensorSpec("y", "double"),)), "s.inputs[0].dtype", "must be one of bool, int8, int16"),
    (
        Signature((TensorSpec("y", "int64", (-2,)),)),
        "s.inputs[0].shape",
        "needs at most 32 dimensions, each >= -1",
    ),
    (Signature((TensorSpec("y", "int64", (1,) * 33),)), "s.inputs[0].shape", "needs at most 32 dimensions"),
    (
        Signature(tuple(TensorSpec(f"t{i}", "bool") for i in range(257))),
        "s.inputs",
        "has 257 entries, at most 256",
    ),
]


@pytest.mark.parametrize(("signature", "field", "words"), BAD, ids=[f for _, f, _ in BAD])
def test_a_bad_signature_names_the_field_and_says_why(signature: Signature, field: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        check_signature(signature, "s")
    [violation] = error.value.violations
    assert violation.field == field
    assert words in violation.description


def test_limits_are_inclusive() -> None:
    widest = Signature(
        tuple(TensorSpec(f"t{i}", DATA_TYPES[i % len(DATA_TYPES)], (-1,) * 32) for i in range(256)),
        (TensorSpec("A" + "z" * 127, "bytes"), TensorSpec("_a.b:c/d-e", "string", ())),
    )
    check_signature(widest, "s")


def test_catalog_and_versioning_refuse_a_signature_in_the_same_words() -> None:
    bad = Signature((TensorSpec("x", "float32", (-2,)),))
    with pytest.raises(InvalidArgument) as catalog:
        CreateRegisteredModel(ModelName("ns", "m"), ModelFields(signature=bad))
    with pytest.raises(InvalidArgument) as versioning:
        CreateVersion("namespaces/ns/models/m", VersionSpec(signature=bad), bump=Bump.MINOR)
    [c], [v] = catalog.value.violations, versioning.value.violations
    assert (c.field, v.field) == (
        "registered_model.signature.inputs[0].shape",
        "model_version.signature.inputs[0].shape",
    )
    assert c.description == v.description


def test_every_dtype_maps_to_its_enum_value_and_back() -> None:
    signature = Signature(
        tuple(TensorSpec(f"t_{d}", d, (-1, 2)) for d in DATA_TYPES), (TensorSpec("s", "string"),)
    )
    message = signature_to_proto(signature)
    assert [signature_pb2.TensorSpec.DataType.Name(s.dtype) for s in message.inputs] == [
        f"DATA_TYPE_{d.upper()}" for d in DATA_TYPES
    ]
    assert signature_from_proto(message) == signature
    assert len(DATA_TYPES) == len(signature_pb2.TensorSpec.DataType.values()) - 1  # all but UNSPECIFIED


def test_an_unset_or_unknown_dtype_is_refused_not_guessed() -> None:
    message = signature_pb2.Signature(
        inputs=[
            signature_pb2.TensorSpec(name="a"),
            signature_pb2.TensorSpec(name="b", dtype=signature_pb2.TensorSpec.DataType.ValueType(99)),
        ]
    )
    decoded = signature_from_proto(message)
    assert [s.dtype for s in decoded.inputs] == ["", "99"]
    with pytest.raises(InvalidArgument, match=r"s.inputs\[0\].dtype: is required"):
        check_signature(decoded, "s")
    with pytest.raises(InvalidArgument, match=r"s.inputs\[0\].dtype: must be one of"):
        check_signature(Signature(decoded.inputs[1:]), "s")
