"""encode_batch's native path (issue 23 follow-up): work split into chunks of consecutive texts of about equal
bytes over the threads, ids gathered per chunk, lists built after the join with the cyclic GC paused. The ids must
equal one ``encode`` per text whatever the split, and the GC's state must come back as it was."""

from __future__ import annotations

import gc
import random

import pytest
from vocab_fixtures import PROSE, imported, reference


def _docs() -> list[str]:
    rng = random.Random(7)
    prose = list(PROSE.values())
    docs = []
    for _ in range(3000):
        text = rng.choice(prose)
        a = rng.randrange(len(text))
        docs.append(text[a : a + rng.choice([0, 1, 5, 40, 300])])
    docs.insert(1234, "".join(prose) * 20)  # one document much larger than a chunk
    return docs


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_batch_equals_one_encode_per_text_for_any_thread_count(threads):
    tok = imported("cl100k_base")
    docs = _docs()
    want = reference("cl100k_base").encode_ordinary_batch(docs, num_threads=1)
    assert tok.encode_batch(docs, num_threads=threads) == want
    got = tok.encode_batch_to_numpy(docs, num_threads=threads, dtype="uint32")
    assert [a.tolist() for a in got] == want


def test_no_collection_runs_while_the_lists_are_built_and_gc_state_is_restored():
    tok = imported("cl100k_base")
    docs = ["短文本，" + str(i) for i in range(30000)]
    seen: list[str] = []
    inside = [False]

    def callback(phase: str, info: dict) -> None:
        if inside[0] and phase == "start":
            seen.append(phase)

    # Start from empty generations: the few containers made before the pause (the argument list, the result list)
    # must not set off a collection that earlier allocations had nearly due; 30000 lists built unpaused would.
    gc.collect()
    gc.callbacks.append(callback)
    try:
        inside[0] = True
        out = tok.encode_batch(docs, num_threads=2)
        inside[0] = False
    finally:
        gc.callbacks.remove(callback)
    assert len(out) == 30000 and out[0] == reference("cl100k_base").encode_ordinary(docs[0])
    assert seen == [], f"{len(seen)} collections during encode_batch"
    assert gc.isenabled()
    gc.disable()
    try:
        tok.encode_batch(docs[:10], num_threads=2)
        assert not gc.isenabled()
    finally:
        gc.enable()
