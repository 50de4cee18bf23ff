from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelreg.eventlog import ConsistencyToken, InvalidToken, Position

vectors = st.dictionaries(
    st.tuples(st.sampled_from(["modelreg.catalog.v1", "x.modelreg.versioning.v1"]), st.integers(0, 63)),
    st.integers(0, 2**53),
)


@given(vectors)
def test_tokens_round_trip(required: dict[tuple[str, int], int]) -> None:
    token = ConsistencyToken(required)
    assert ConsistencyToken.decode(token.encode()).required == required


def test_token_after_a_write_requires_the_offset_past_it() -> None:
    token = ConsistencyToken.after([Position("t", 1, 41), Position("t", 1, 7), Position("u", 0, 0)])
    assert token.required == {("t", 1): 42, ("u", 0): 1}


def test_merge_keeps_the_furthest_offset_per_partition() -> None:
    a = ConsistencyToken({("t", 0): 5, ("t", 1): 9})
    b = ConsistencyToken({("t", 0): 7, ("u", 0): 1})
    assert a.merge(b).required == {("t", 0): 7, ("t", 1): 9, ("u", 0): 1}


@pytest.mark.parametrize("raw", ["", "%%%", "bm90IGpzb24", "WzFd", "eyJ0Ijp7IjAiOi0xfX0"])
def test_garbage_is_rejected(raw: str) -> None:
    with pytest.raises(InvalidToken):
        ConsistencyToken.decode(raw)
