"""A model's input/output signature, one definition for the catalog and versioning domains.

Pure: no protos (the mapping is modelreg.signatures_proto, for adapters and APIs
only). A dtype is its lower-case name (`float32`), which is what the read models
store and what error messages say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelreg.errors import InvalidArgument

# In the order of the proto enum TensorSpec.DataType (DATA_TYPE_<NAME>).
DATA_TYPES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "string",
    "bytes",
)
TENSOR_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:/-]{0,127}$")
MAX_SIGNATURE_FIELDS = 256
MAX_SHAPE_DIMS = 32


@dataclass(frozen=True, slots=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Signature:
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()


def check_signature(signature: Signature, field: str) -> None:
    """Raises InvalidArgument naming the first bad entry, e.g. `{field}.inputs[2].dtype`."""
    for side, specs in (("inputs", signature.inputs), ("outputs", signature.outputs)):
        where = f"{field}.{side}"
        if len(specs) > MAX_SIGNATURE_FIELDS:
            raise InvalidArgument.of(where, f"has {len(specs)} entries, at most {MAX_SIGNATURE_FIELDS}")
        seen: set[str] = set()
        for i, spec in enumerate(specs):
            if not TENSOR_NAME_PATTERN.fullmatch(spec.name):
                raise InvalidArgument.of(f"{where}[{i}].name", f"must match {TENSOR_NAME_PATTERN.pattern}")
            if spec.name in seen:
                raise InvalidArgument.of(f"{where}[{i}].name", f"{spec.name!r} appears twice")
            seen.add(spec.name)
            if not spec.dtype:
                raise InvalidArgument.of(f"{where}[{i}].dtype", "is required")
            if spec.dtype not in DATA_TYPES:
                raise InvalidArgument.of(f"{where}[{i}].dtype", f"must be one of {', '.join(DATA_TYPES)}")
            if len(spec.shape) > MAX_SHAPE_DIMS or any(d < -1 for d in spec.shape):
                raise InvalidArgument.of(
                    f"{where}[{i}].shape", f"needs at most {MAX_SHAPE_DIMS} dimensions, each >= -1"
                )
