"""CacheDir alone (no network): LRU order, pinned files skipped, dead downloads' reservations reclaimed."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from shardstore.remote.cachedir import CacheDir, flat_name, flock


def _put(cache: CacheDir, name: str, size: int, mtime: float) -> None:
    path = cache.data_path(name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"x" * size)
    os.utime(path, (mtime, mtime))


def test_reserve_evicts_least_recently_used_unpinned_files(tmp_path: Any) -> None:
    cache = CacheDir(str(tmp_path), "k")
    for i, name in enumerate(["a", "b", "sub/c", "d"]):
        _put(cache, name, 100, mtime=1000 + i)
    pin = cache.pin("a")  # oldest, but in use
    lock = flock(os.path.join(cache.dir, "locks", "e.lock"))  # as the downloader of e holds it
    try:
        got = cache.reserve("e", 150, limit=400, demand=False)
        assert got.part is not None and os.path.basename(got.part).startswith("e.150.")
        # 400 used + 150 > 400: evict b (a is pinned), then sub/c; d stays.
        assert sorted(os.path.relpath(os.path.join(dp, f), cache.data_path("")) for dp, _, fs in
                      os.walk(cache.data_path("")) for f in fs) == ["a", "d"]  # fmt: skip
        assert cache.usage().total == 200 + 150  # files + the live reservation
    finally:
        os.close(pin)
        os.close(lock)
    assert cache.usage().total == 200  # a reservation whose download lock is free belongs to a dead process


def test_a_prefetch_never_overshoots_and_a_demand_read_overshoots_by_at_most_itself(tmp_path: Any) -> None:
    cache = CacheDir(str(tmp_path), "k")
    _put(cache, "a", 300, mtime=1)
    pin = cache.pin("a")
    try:
        lock = flock(os.path.join(cache.dir, "locks", "b.lock"))  # b's download is alive while we hold this
        first = cache.reserve("b", 100, limit=350, demand=False)
        assert first.part is None and first.pinned == ((cache.dir, "a"),)
        demand = cache.reserve("b", 100, limit=350, demand=True)  # 300 <= 350: may overshoot by this file
        assert demand.part is not None
        other = cache.reserve("c", 100, limit=350, demand=True)  # 300 + 100 reserved > 350: must wait
        assert other.part is None and other.reserved == 100
        os.close(lock)  # b's downloader "dies": its reservation no longer counts, and is deleted
        again = cache.reserve("c", 100, limit=350, demand=True)
        assert again.part is not None and not os.path.exists(demand.part)
    finally:
        os.close(pin)


_NAME = st.lists(st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._+=-]{0,12}", fullmatch=True), min_size=1, max_size=3)


@given(_NAME, _NAME)
def test_flat_names_are_single_components_and_injective(a: list[str], b: list[str]) -> None:
    x, y = "/".join(a), "/".join(b)
    assert "/" not in flat_name(x) and flat_name(x) not in (".", "..")
    assert (flat_name(x) == flat_name(y)) == (x == y)
