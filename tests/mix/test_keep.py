"""Kept-token index math against a brute-force model: positions, pieces and counts at every prefix."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstore.errors import ConfigError
from shardstore.mix.keep import KeptIndex, heldout_scores, threshold_for_fraction, threshold_for_tokens


def _model(lengths: list[int], excluded: set[int]) -> tuple[np.ndarray, KeptIndex]:
    """(store position of every kept token, the index) for documents of `lengths` with `excluded` left out."""
    offs = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    kept_pos = np.concatenate(
        [np.arange(offs[i], offs[i + 1]) for i in range(len(lengths)) if i not in excluded] or [np.zeros(0)]
    ).astype(np.int64)
    ids = np.array(sorted(excluded), dtype=np.int64)
    index = KeptIndex.from_excluded_spans(int(offs[-1]), offs[ids], offs[ids + 1])
    return kept_pos, index


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=1, max_size=60), st.data())
def test_positions_and_counts_are_exact_at_every_prefix(lengths, data):
    excluded = set(data.draw(st.lists(st.integers(0, len(lengths) - 1), max_size=len(lengths))))
    kept_pos, index = _model(lengths, excluded)
    assert index.kept_tokens == kept_pos.size
    assert index.excluded_tokens == sum(lengths[i] for i in excluded)
    if kept_pos.size:
        assert np.array_equal(index.to_store(np.arange(kept_pos.size)), kept_pos)
    for stop in range(kept_pos.size + 1):  # every prefix: its pieces cover exactly the kept tokens before it
        pieces = index.pieces(0, stop)
        flat = np.concatenate([np.arange(lo, lo + n) for lo, n, _ in pieces] or [np.zeros(0)]).astype(
            np.int64
        )
        assert np.array_equal(flat, kept_pos[:stop])
        assert [at for _, _, at in pieces] == np.cumsum([0] + [n for _, n, _ in pieces])[:-1].tolist()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=1, max_size=60), st.integers(1, 9), st.data())
def test_rows_split_windows_at_gaps(lengths, length, data):
    excluded = set(data.draw(st.lists(st.integers(0, len(lengths) - 1), max_size=len(lengths))))
    kept_pos, index = _model(lengths, excluded)
    if kept_pos.size < length:
        return
    starts = np.arange(0, kept_pos.size - length + 1)
    store_starts, _, inside = index.rows(starts, length)
    for s, a, g in zip(starts.tolist(), store_starts.tolist(), inside.tolist(), strict=True):
        window = kept_pos[s : s + length]
        contiguous = bool(np.all(np.diff(window) == 1))
        assert a == window[0]
        assert (g == 0) == contiguous  # a window is one store span exactly when no gap sits inside it
        assert len(index.pieces(s, s + length)) == g + 1


def test_two_level_skips_beyond_256_gaps():
    lengths = [3, 5] * 2000
    excluded = set(range(0, 4000, 2))
    kept_pos, index = _model(lengths, excluded)
    assert index.num_gaps == 2000 and index.skip_base.size == (2001 + 255) // 256
    assert index.gap_base.size == (2000 + 255) // 256
    assert index.skip_delta.dtype == index.gap_delta.dtype == np.uint32
    assert np.array_equal(index.to_store(np.arange(kept_pos.size)), kept_pos)
    assert index.nbytes == 2000 * 4 + 2001 * 4 + 8 * (8 + 8)  # ~8 bytes per gap


def test_wide_offsets_fall_back_to_int64():
    lengths = [1 << 31, 1, 1 << 31, 1] * 3  # 256 gaps never span 2**32 here, but one block's skips do
    kept_pos_n = sum(lengths[i] for i in range(len(lengths)) if i % 2)
    starts = np.cumsum([0, *lengths])[:-1][::2]
    index = KeptIndex.from_excluded_spans(sum(lengths), starts, starts + (1 << 31))
    assert index.skip_delta.dtype == np.int64 and index.kept_tokens == kept_pos_n
    assert index.to_store(np.arange(kept_pos_n)).tolist() == [
        (k + 1) * (1 << 31) + k for k in range(kept_pos_n)
    ]


def test_adjacent_excluded_documents_make_one_gap():
    _, index = _model([4, 4, 0, 4, 4], {1, 2, 3})
    assert index.num_gaps == 1 and index.excluded_tokens == 8


def test_whole_and_bad_spans():
    index = KeptIndex.whole(100)
    assert index.kept_tokens == 100 and index.num_gaps == 0 and index.nbytes < 64
    with pytest.raises(ConfigError):
        KeptIndex.from_excluded_spans(10, np.array([5, 2]), np.array([7, 4]))
    with pytest.raises(ConfigError):
        KeptIndex.from_excluded_spans(10, np.array([5]), np.array([11]))


def test_scores_are_a_function_of_content_and_seed():
    h = np.arange(10_000, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    a, b = heldout_scores(h, 7), heldout_scores(h, 8)
    assert np.array_equal(a, heldout_scores(h.copy(), 7))  # pure
    assert not np.array_equal(a, b)  # keyed by the seed
    assert a.min() >= 0 and a.max() < 1 and abs(float((a < 0.1).mean()) - 0.1) < 0.02  # ~uniform
    dup = heldout_scores(np.array([h[5], h[5]]), 7)
    assert dup[0] == dup[1] == a[5]


def test_thresholds():
    assert threshold_for_fraction(0.25) == 0.25
    with pytest.raises(ConfigError):
        threshold_for_fraction(1.0)
    scores = np.array([0.5, 0.1, 0.3, 0.3, 0.9])
    lengths = np.array([10, 4, 5, 5, 1])
    t = threshold_for_tokens(scores, lengths, 6)  # 0.1 (4 tokens) then both 0.3 copies together
    assert ((scores < t) * lengths).sum() == 14 and (scores < t).sum() == 3
    with pytest.raises(ConfigError, match="more than"):
        threshold_for_tokens(scores, lengths, 26)
