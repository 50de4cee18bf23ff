"""Signature <-> modelreg.common.v1, the one mapping for both services' event codecs and API mappings.

Domain packages must not import this module: it imports the generated protos,
which the purity contract in pyproject.toml keeps out of every domain.
"""

from __future__ import annotations

from modelreg.gen.common.v1 import signature_pb2
from modelreg.signatures import DATA_TYPES, Signature, TensorSpec

_DTYPE_TO_PROTO = {
    name: signature_pb2.TensorSpec.DataType.Value(f"DATA_TYPE_{name.upper()}") for name in DATA_TYPES
}
_DTYPE_FROM_PROTO: dict[int, str] = {number: name for name, number in _DTYPE_TO_PROTO.items()}


def signature_to_proto(signature: Signature) -> signature_pb2.Signature:
    def spec(s: TensorSpec) -> signature_pb2.TensorSpec:
        return signature_pb2.TensorSpec(name=s.name, dtype=_DTYPE_TO_PROTO[s.dtype], shape=list(s.shape))

    return signature_pb2.Signature(
        inputs=[spec(s) for s in signature.inputs], outputs=[spec(s) for s in signature.outputs]
    )


def signature_from_proto(message: signature_pb2.Signature) -> Signature:
    def spec(s: signature_pb2.TensorSpec) -> TensorSpec:
        return TensorSpec(s.name, _dtype_name(s.dtype), tuple(s.shape))

    return Signature(tuple(spec(s) for s in message.inputs), tuple(spec(s) for s in message.outputs))


def _dtype_name(number: int) -> str:
    # UNSPECIFIED becomes "" (refused as required); a number this build does not
    # know (sent by a newer client) keeps its digits, so the refusal names it.
    if number == signature_pb2.TensorSpec.DATA_TYPE_UNSPECIFIED:
        return ""
    return _DTYPE_FROM_PROTO.get(number, str(number))
