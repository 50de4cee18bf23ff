"""The versioning aggregate, pure: semver resolution, signatures, retention, references."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelreg.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from modelreg.eventmeta import EventMeta
from modelreg.signatures import Signature, TensorSpec
from modelreg.versioning.domain.commands import Command, CreateVersion, Delete, Finalize
from modelreg.versioning.domain.decide import decide
from modelreg.versioning.domain.evolve import evolve
from modelreg.versioning.domain.names import parse_reference
from modelreg.versioning.domain.queries import Reference, resolve, retention_plan
from modelreg.versioning.domain.state import ModelVersions
from modelreg.versioning.domain.values import Bump, SemVer, Status, VersionSpec, signature_differences

MODEL = "namespaces/ns/models/m"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def apply(state: ModelVersions, command: Command) -> ModelVersions:
    event = decide(state, command)
    return evolve(state, event, EventMeta(MODEL, T0, "tester", len(state.versions) + 1))


def create(state: ModelVersions, **kwargs: Any) -> ModelVersions:
    return apply(state, CreateVersion(MODEL, kwargs.pop("spec", VersionSpec()), **kwargs))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(list(Bump)), min_size=1, max_size=25))
def test_bumps_give_unique_increasing_semvers(bumps: list[Bump]) -> None:
    state = ModelVersions(MODEL)
    for bump in bumps:
        state = create(state, bump=bump)
    numbers = sorted(state.versions)
    assert numbers == list(range(1, len(bumps) + 1))
    semvers = [state.versions[n].semver for n in numbers]
    assert semvers[0] == SemVer(1, 0, 0)
    assert semvers == sorted(semvers) and len(set(semvers)) == len(semvers)


def test_explicit_versions() -> None:
    state = create(ModelVersions(MODEL), semver=SemVer(1, 1, 0))
    with pytest.raises(AlreadyExists):
        create(state, semver=SemVer(1, 1, 0))
    with pytest.raises(FailedPrecondition, match="1.1.0 exists"):
        create(state, semver=SemVer(1, 0, 9))
    state = create(state, semver=SemVer(0, 3, 0))
    state = create(state, bump=Bump.PIPELINE)
    assert state.versions[3].semver == SemVer(1, 1, 1)
    with pytest.raises(InvalidArgument):
        CreateVersion(MODEL, VersionSpec())
    with pytest.raises(InvalidArgument, match="semver"):
        SemVer.parse("1.02.0")


def sig(inputs: dict[str, str], outputs: dict[str, str]) -> Signature:
    return Signature(
        tuple(TensorSpec(n, d, (-1,)) for n, d in inputs.items()),
        tuple(TensorSpec(n, d, (-1,)) for n, d in outputs.items()),
    )


def test_signature_differences() -> None:
    old = sig({"a": "float32", "b": "int64"}, {"p": "float64"})
    assert (
        signature_differences(old, sig({"a": "float32", "b": "int64", "c": "bool"}, {"p": "float64"})) == []
    )
    diffs = signature_differences(old, sig({"a": "float64"}, {"p": "float64", "q": "bool"}))
    assert diffs == [
        "input 'a' changed from float32[-1] to float64[-1]",
        "input 'b' removed",
        "output 'q' added",
    ]
    state = create(ModelVersions(MODEL), bump=Bump.MINOR, spec=VersionSpec(signature=old))
    with pytest.raises(FailedPrecondition, match="input 'b' removed"):
        create(state, bump=Bump.MINOR, spec=VersionSpec(signature=sig({"a": "float32"}, {"p": "float64"})))
    state = create(
        state, bump=Bump.MAJOR, spec=VersionSpec(signature=sig({"a": "float32"}, {"p": "float64"}))
    )
    assert state.versions[2].semver == SemVer(2, 0, 0)


def test_retention_plan_keeps_last_n_per_line_and_pointed_versions() -> None:
    state = ModelVersions(MODEL)
    for semver in [(1, 0, 0), (1, 1, 0), (1, 2, 0), (2, 0, 0), (2, 0, 1)]:
        state = create(state, semver=SemVer(*semver))
        state = apply(state, Finalize(state.latest_number, True, ()))
    state = create(state, semver=SemVer(1, 3, 0))  # pending: never retained away
    state = ModelVersions(MODEL, state.versions, keep_last_per_major=1)
    plan = retention_plan(state, frozenset({2}))
    assert [v.number for v in plan.delete] == [1, 4]
    assert plan.protected == (2,)
    assert retention_plan(ModelVersions(MODEL, state.versions, 0), frozenset()).delete == ()


def test_pointed_version_cannot_be_deleted_and_ready_is_immutable() -> None:
    state = create(ModelVersions(MODEL), bump=Bump.MINOR)
    with pytest.raises(FailedPrecondition, match="production"):
        decide(state, Delete(1, "", ("production",)))
    state = apply(state, Finalize(1, True, ()))
    assert state.versions[1].status is Status.READY
    with pytest.raises(FailedPrecondition, match="immutable"):
        decide(state, Finalize(1, True, ()))
    state = apply(state, Delete(1, "gone"))
    with pytest.raises(NotFound):
        decide(state, Delete(1, ""))


def test_references() -> None:
    assert parse_reference(f"{MODEL}/versions/3") == Reference(MODEL, number=3)
    assert parse_reference(f"{MODEL}@v1.2.0") == Reference(MODEL, semver=SemVer(1, 2, 0))
    assert parse_reference(f"{MODEL}@latest") == Reference(MODEL, latest=True)
    assert parse_reference(f"{MODEL}@v2.latest") == Reference(MODEL, latest_major=2)
    for bad in (f"{MODEL}/versions/0", f"{MODEL}@", "namespaces/NS/models/m/versions/1", MODEL):
        with pytest.raises(InvalidArgument):
            parse_reference(bad)
    state = ModelVersions(MODEL)
    for semver in [(1, 0, 0), (2, 0, 0), (1, 1, 0)]:
        state = create(state, semver=SemVer(*semver))
    assert resolve(state, Reference(MODEL, latest=True)).number == 3
    assert resolve(state, Reference(MODEL, latest_major=1)).semver == SemVer(1, 1, 0)
    with pytest.raises(NotFound):
        resolve(state, Reference(MODEL, semver=SemVer(9, 9, 9)))


def test_events_that_do_not_fit_are_recognised() -> None:
    from modelreg.versioning.domain.events import VersionCreated, VersionFinalized
    from modelreg.versioning.domain.evolve import can_evolve

    state = create(ModelVersions(MODEL), bump=Bump.MINOR)
    assert can_evolve(state, VersionCreated(2, SemVer(1, 1, 0), VersionSpec()))
    assert not can_evolve(state, VersionCreated(1, SemVer(9, 0, 0), VersionSpec()))  # number taken
    assert not can_evolve(state, VersionCreated(2, SemVer(1, 0, 0), VersionSpec()))  # semver taken
    assert not can_evolve(state, VersionFinalized(7))  # no such version


def test_can_evolve_agrees_with_a_scan_of_the_versions_however_the_state_was_built() -> None:
    from modelreg.versioning.domain.events import RetentionSet, VersionCreated
    from modelreg.versioning.domain.evolve import can_evolve

    def scan(state: ModelVersions, semver: SemVer) -> bool:
        return all(v.semver != semver for v in state.versions.values())

    state = ModelVersions(MODEL)
    for i in range(6):
        state = create(state, bump=Bump.MINOR if i % 3 else Bump.MAJOR)
    state = evolve(state, RetentionSet(2), EventMeta(MODEL, T0, "tester", 7))
    # As the read model does: a state constructed empty, then filled.
    filled = ModelVersions(MODEL)
    candidates = [SemVer(a, b, 0) for a in range(1, 4) for b in range(4)]
    assert all(can_evolve(filled, VersionCreated(9, s, VersionSpec())) for s in candidates)
    filled.versions.update(state.versions)
    for s in [*candidates, *(v.semver for v in state.versions.values())]:
        for candidate in (state, filled):
            assert can_evolve(candidate, VersionCreated(9, s, VersionSpec())) == scan(candidate, s)
    # Evolving must not leak the new semver into the parent's index.
    parent = state
    child = evolve(parent, VersionCreated(8, SemVer(7, 0, 0), VersionSpec()), EventMeta(MODEL, T0, "t", 8))
    assert not can_evolve(child, VersionCreated(9, SemVer(7, 0, 0), VersionSpec()))
    assert can_evolve(parent, VersionCreated(9, SemVer(7, 0, 0), VersionSpec()))
    assert child == ModelVersions(MODEL, child.versions, 2)  # the index takes no part in equality
