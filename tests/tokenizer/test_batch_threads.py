"""encode_batch's native path (issue 23 follow-up): work split into chunks of consecutive texts of about equal
bytes over the threads, ids gathered per chunk, lists built after the join with the cyclic GC paused. The ids must
equal one ``encode`` per text whatever the split, and the GC's state must come back as it was. The threads are a
process-wide pool (worker_pool.h): kept from call to call, replaced in a forked child, shared by one call at a
time (a concurrent call starts its own)."""

from __future__ import annotations

import gc
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from vocab_fixtures import PROSE, imported, reference

HERE = Path(__file__).resolve().parent


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


def _run_fresh(code: str) -> str:
    """`code` in a new interpreter (a process with no pool yet), with this directory importable; its stdout."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(HERE), str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")]),
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


POOL_SCRIPT = """
import os
from vocab_fixtures import PROSE, imported
enc = imported("cl100k_base")._encoder()
docs = [p[i:i + 200] for p in PROSE.values() for i in range(0, len(p), 50)] * 20
tasks = lambda: len(os.listdir("/proc/self/task"))
want = [enc.count(d) for d in docs]
t0 = tasks()
assert enc.count_batch(docs, 4) == want
t1 = tasks()
for n in (4, 2, 3, 4):
    assert enc.count_batch(docs, n) == want
t2 = tasks()
assert enc.count_batch(docs, 6) == want
print(t0, t1, t2, tasks())
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through Linux's /proc")
def test_batch_threads_are_a_pool_that_outlives_each_call_and_grows_to_the_most_asked():
    # Threads started per call died with the call, and each started with a cold 3.25 MiB piece cache.
    t0, t1, t2, t3 = map(int, _run_fresh(POOL_SCRIPT).split())
    assert (t1 - t0, t2 - t1, t3 - t2) == (3, 0, 2)


FORK_SCRIPT = """
import os, time
from vocab_fixtures import PROSE, imported
enc = imported("cl100k_base")._encoder()
docs = [p[i:i + 300] for p in PROSE.values() for i in range(0, len(p), 70)] * 10
want = enc.encode_batch(docs, 1, 0)
assert enc.encode_batch(docs, 4, 0) == want  # the parent's pool is running
pid = os.fork()
if pid == 0:  # the child has none of the pool's threads: it must start its own, not wait on the parent's
    os._exit(0 if enc.encode_batch(docs, 4, 0) == want and enc.count_batch(docs, 3) == [len(w) for w in want] else 1)
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        print("exit", os.waitstatus_to_exitcode(status))
        break
    time.sleep(0.05)
else:
    os.kill(pid, 9)
    print("hung")
assert enc.encode_batch(docs, 4, 0) == want  # and the parent's pool still works
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_its_own_pool_instead_of_waiting_on_the_parents_threads():
    assert _run_fresh(FORK_SCRIPT).split() == ["exit", "0"]


def test_batches_from_several_python_threads_at_once_each_get_their_own_exact_ids():
    # One call holds the pool; the others start threads of their own (the GIL is released during the work).
    tok = imported("cl100k_base")
    docs = _docs()[:1500]
    want = reference("cl100k_base").encode_ordinary_batch(docs, num_threads=1)
    errors: list[str] = []

    def worker(k: int) -> None:
        for n in (3, 2, 4):
            if tok.encode_batch(docs, num_threads=n) != want:
                errors.append(f"thread {k}, {n} threads")
            if tok.count_tokens_batch(docs, num_threads=n) != [len(w) for w in want]:
                errors.append(f"thread {k}, count, {n} threads")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors and not any(t.is_alive() for t in threads)
