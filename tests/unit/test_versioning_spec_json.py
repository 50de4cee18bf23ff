"""The read model's spec JSON is spelled out for speed; it must stay byte-equal to asdict's."""

from __future__ import annotations

import json
from dataclasses import asdict

from modelreg.signatures import Signature, TensorSpec
from modelreg.versioning.adapters.schema import spec_from_json, spec_to_json
from modelreg.versioning.domain.values import ArtifactFile, CodeReference, Environment, VersionSpec


def reference(spec: VersionSpec) -> str:
    return json.dumps(asdict(spec), sort_keys=True, separators=(",", ":"))


def test_spec_json_equals_asdict_and_round_trips() -> None:
    full = VersionSpec(
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
    for spec in (VersionSpec(), full):
        assert spec_to_json(spec) == reference(spec)
        assert spec_from_json(spec_to_json(spec)) == spec
