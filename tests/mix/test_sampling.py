"""Packing windows, doc-boundary arrays and the keyed Feistel shuffle (pure index math)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marks_reference import cu_seqlens_from_marks, position_ids_from_marks

from shardstore.errors import ConfigError
from shardstore.mix.sampling import num_windows, permutation


def test_golden_order_is_pinned() -> None:
    # Changing these changes every user's data order: only with a format/version bump.
    assert permutation(0, "web", 0, 1000)(np.arange(12)).tolist() == [
        837, 815, 51, 812, 244, 872, 746, 710, 851, 719, 288, 819,
    ]  # fmt: skip
    assert permutation(1234, "code", 3, 10**9)(np.arange(6)).tolist() == [
        153861031, 317559795, 244949765, 633499594, 189874198, 778867140,
    ]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 3000), seed=st.integers(-(2**63), 2**63), epoch=st.integers(0, 10**6))
def test_permutation_is_a_bijection(size: int, seed: int, epoch: int) -> None:
    out = permutation(seed, "s", epoch, size)(np.arange(size))
    assert out.dtype == np.int64
    assert sorted(out.tolist()) == list(range(size))


@settings(max_examples=30, deadline=None)
@given(size=st.integers(2, 10**12), data=st.data())
def test_permutation_random_access_matches_full_and_stays_in_range(size: int, data: st.DataObject) -> None:
    perm = permutation(7, "src", 2, size)
    a = data.draw(st.integers(0, size - 1))
    b = data.draw(st.integers(a, min(size, a + 50)))
    chunk = perm(np.arange(a, b))
    assert [int(perm(i)) for i in range(a, b)] == chunk.tolist()
    assert ((chunk >= 0) & (chunk < size)).all()
    assert len(set(chunk.tolist())) == len(chunk)


def test_epochs_sources_and_seeds_give_different_orders() -> None:
    base = permutation(1, "a", 0, 500)(np.arange(500)).tolist()
    assert permutation(1, "a", 1, 500)(np.arange(500)).tolist() != base
    assert permutation(1, "b", 0, 500)(np.arange(500)).tolist() != base
    assert permutation(2, "a", 0, 500)(np.arange(500)).tolist() != base
    assert permutation(1, "a", 0, 500)(np.arange(500)).tolist() == base  # a pure function


def test_permutation_rejects_bad_input() -> None:
    with pytest.raises(ConfigError):
        permutation(0, "a", 0, 0)
    with pytest.raises(ConfigError):
        permutation(0, "a", -1, 10)
    with pytest.raises(ConfigError, match="out of range"):
        permutation(0, "a", 0, 10)(np.array([10]))
    assert permutation(0, "a", 0, 1)(np.zeros(3, dtype=np.int64)).tolist() == [0, 0, 0]


def test_num_windows() -> None:
    # windows of seq_len + 1 tokens at stride seq_len: tokens [0, 5), [4, 9), ... for seq_len 4
    assert num_windows(0, 4) == 0
    assert num_windows(4, 4) == 0
    assert num_windows(5, 4) == 1
    assert num_windows(8, 4) == 1
    assert num_windows(9, 4) == 2
    with pytest.raises(ConfigError):
        num_windows(10, 0)


def test_position_ids_and_cu_seqlens_definition() -> None:
    marks = np.zeros((2, 6), dtype=bool)
    marks[0, [2, 5]] = True  # row 0: docs begin at input positions 2 and 5 (row starts mid-document)
    marks[1, 0] = True  # row 1 begins exactly at a document start: same as no mark
    assert position_ids_from_marks(marks).tolist() == [[0, 1, 0, 1, 2, 0], [0, 1, 2, 3, 4, 5]]
    cu = cu_seqlens_from_marks(marks)
    assert cu.dtype == np.int32
    assert cu.tolist() == [0, 2, 5, 6, 12]
