"""The read model's spec JSON is spelled out for speed; it must stay byte-equal to asdict's,
and equal whether written from a VersionSpec or from the event's message."""

from __future__ import annotations

import json
from dataclasses import asdict

from modelreg.gen.versioning.v1 import versioning_pb2
from modelreg.signatures import Signature, TensorSpec
from modelreg.versioning.adapters.schema import spec_from_json, spec_json_from_proto, spec_to_json
from modelreg.versioning.domain.values import ArtifactFile, CodeReference, Environment, VersionSpec
from modelreg.versioning.resources import spec_from_proto, spec_into_proto

FULL = VersionSpec(
    description="d",
    tags={"k1": "v1", "b": "2"},
    metrics={"acc": 0.9},
    params={"source_uri": "s3://x"},
    code=CodeReference("git@x", "abc", True),
    environment=Environment("3.11", {"torch": "2.3"}, "sha256:1"),
    framework="torch",
    flavor="pytorch",
    signature=Signature((TensorSpec("x", "float32", (-1, 3)),), (TensorSpec("y", "int64"),)),
    files=(
        ArtifactFile("model.pt", 3, "a" * 64),
        ArtifactFile("c.json", 1, "b" * 64, "application/json"),
    ),
)


def reference(spec: VersionSpec) -> str:
    return json.dumps(asdict(spec), sort_keys=True, separators=(",", ":"))


def test_spec_json_equals_asdict_and_round_trips() -> None:
    for spec in (VersionSpec(), FULL):
        assert spec_to_json(spec) == reference(spec)
        assert spec_from_json(spec_to_json(spec)) == spec


def test_spec_json_from_the_message_equals_the_specs() -> None:
    """A replay writes a created version's spec straight from its event's message."""
    for spec in (VersionSpec(), FULL, VersionSpec(signature=Signature())):
        message = spec_into_proto(spec, versioning_pb2.ModelVersion(name="m/versions/1", version=1))
        assert spec_json_from_proto(message) == spec_to_json(spec_from_proto(message)) == spec_to_json(spec)
    # A file without a media type is stored with the default, as spec_from_proto reads it.
    bare = versioning_pb2.ModelVersion(files=[versioning_pb2.ArtifactFile(path="f", size=1, sha256="c" * 64)])
    assert spec_json_from_proto(bare) == spec_to_json(spec_from_proto(bare))
