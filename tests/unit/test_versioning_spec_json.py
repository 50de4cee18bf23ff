"""The read model's spec JSON is spelled out for speed; it must stay byte-equal to asdict's,
less the optional members at their default (the compact form)."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg.gen.common.v1 import signature_pb2
from modelreg.gen.versioning.v1 import versioning_pb2
from modelreg.signatures import Signature, TensorSpec
from modelreg.versioning.adapters.schema import spec_from_json, spec_json_of_message, spec_to_json
from modelreg.versioning.domain.values import ArtifactFile, CodeReference, Environment, VersionSpec
from modelreg.versioning.main import spec_form
from modelreg.versioning.resources import spec_from_proto

# Written out here rather than taken from the module, so the test does not share its rule.
_LEFT_OUT_WHEN = {
    "code": asdict(CodeReference()),
    "environment": asdict(Environment()),
    "files": (),
    "metrics": {},
    "signature": None,
}


def full_form(spec: VersionSpec) -> str:
    """How every spec was stored before the compact form (and old rows still are)."""
    return json.dumps(asdict(spec), sort_keys=True, separators=(",", ":"))


def reference(spec: VersionSpec) -> str:
    data = {k: v for k, v in asdict(spec).items() if not (k in _LEFT_OUT_WHEN and v == _LEFT_OUT_WHEN[k])}
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def test_a_spec_at_its_defaults_stores_only_what_filters_read() -> None:
    assert spec_to_json(VersionSpec()) == (
        '{"description":"","flavor":"","framework":"","params":{},"tags":{}}'
    )
    assert spec_to_json(VersionSpec(tags={"k": "v"}, code=CodeReference(commit="abc"))) == (
        '{"code":{"commit":"abc","dirty":false,"repo":""},"description":"","flavor":"",'
        '"framework":"","params":{},"tags":{"k":"v"}}'
    )


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
        # Rows written before the compact form read back the same, and the full form is
        # still written on request (a rolling upgrade from such a release).
        assert spec_from_json(full_form(spec)) == spec
        assert spec_to_json(spec, compact=False) == full_form(spec)


_text = st.text(max_size=12)
_maps = st.dictionaries(_text, _text, max_size=4)


@settings(max_examples=300, deadline=None)
@given(
    description=_text,
    tags=_maps,
    params=_maps,
    packages=_maps,
    repo=_text,
    dirty=st.booleans(),
    metrics=st.dictionaries(_text, st.floats(allow_nan=True, allow_infinity=True), max_size=3),
    with_files=st.booleans(),
)
def test_the_text_path_writes_what_the_encoder_writes(
    description: str,
    tags: dict[str, str],
    params: dict[str, str],
    packages: dict[str, str],
    repo: str,
    dirty: bool,
    metrics: dict[str, float],
    with_files: bool,
) -> None:
    spec = VersionSpec(
        description=description,
        tags=tags,
        metrics=metrics,
        params=params,
        code=CodeReference(repo, "c\u00e9\n", dirty),
        environment=Environment("3.11", packages, "sha256:\x00"),
        files=(ArtifactFile("m\u2028.pt", 3, "a" * 64),) if with_files else (),
    )
    assert spec_to_json(spec) == reference(spec)
    assert spec_to_json(spec, compact=False) == full_form(spec)


def test_values_of_other_types_than_declared_go_through_the_encoder() -> None:
    odd = [
        VersionSpec(tags={"n": 1}),  # type: ignore[dict-item]
        VersionSpec(params={2: "x"}),  # type: ignore[dict-item]
        VersionSpec(code=CodeReference(dirty=1)),  # type: ignore[arg-type]
        VersionSpec(description=None),  # type: ignore[arg-type]
    ]
    for spec in odd:
        assert spec_to_json(spec) == reference(spec)
        assert spec_to_json(spec, compact=False) == full_form(spec)


_files = st.lists(
    st.builds(
        versioning_pb2.ArtifactFile,
        path=_text,
        size=st.integers(0, 2**40),
        sha256=_text,
        media_type=st.sampled_from(["", "application/json", "text/plain\u00e9"]),
    ),
    max_size=3,
)
_tensors = st.lists(
    st.builds(
        signature_pb2.TensorSpec,
        name=_text,
        dtype=st.integers(0, 20),
        shape=st.lists(st.integers(-1, 2**31), max_size=3),
    ),
    max_size=2,
)


@settings(max_examples=300, deadline=None)
@given(
    description=_text,
    tags=_maps,
    params=_maps,
    packages=_maps,
    code=st.builds(versioning_pb2.CodeReference, repo=_text, commit=_text, dirty=st.booleans()),
    framework=_text,
    flavor=_text,
    metrics=st.dictionaries(_text, st.floats(allow_nan=True, allow_infinity=True), max_size=3),
    files=_files,
    signature=st.none() | st.builds(signature_pb2.Signature, inputs=_tensors, outputs=_tensors),
    lock_digest=st.sampled_from(["", "\x00", "sha256:1"]),
)
def test_a_replay_writes_a_created_versions_spec_as_the_domain_would(
    description: str,
    tags: dict[str, str],
    params: dict[str, str],
    packages: dict[str, str],
    code: versioning_pb2.CodeReference,
    framework: str,
    flavor: str,
    metrics: dict[str, float],
    files: list[versioning_pb2.ArtifactFile],
    signature: signature_pb2.Signature | None,
    lock_digest: str,
) -> None:
    """A replay writes the spec of a created version from the event's message
    (spec_json_of_message), the live fold from the domain's VersionSpec: the same bytes."""
    message = versioning_pb2.ModelVersion(
        description=description,
        tags=tags,
        params=params,
        metrics=metrics,
        code=code,
        environment=versioning_pb2.Environment(packages=packages, lock_digest=lock_digest),
        framework=framework,
        flavor=flavor,
        files=files,
    )
    if signature is not None:
        message.signature.CopyFrom(signature)
    assert spec_json_of_message(message) == spec_to_json(spec_from_proto(message))
    assert spec_json_of_message(message, compact=False) == spec_to_json(
        spec_from_proto(message), compact=False
    )


def test_the_spec_form_is_a_setting_of_two_values() -> None:
    assert spec_form({}) == "compact"
    assert spec_form({"MODELREG_VERSION_SPEC_FORM": "full"}) == "full"
    with pytest.raises(ValueError, match="compact or full"):
        spec_form({"MODELREG_VERSION_SPEC_FORM": "short"})
