"""Masks and held-out splits through the mixture and the loaders, against a brute-force model of the documents.

Every document's tokens are unique to it (copies share them), so a token names its document: a window holding a
token of an excluded document is caught by value.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from storeutil import write_store
from test_torch import run_ranks

from shardstore.errors import MaskError, MismatchError, StateError
from shardstore.loader.batches import BatchReader
from shardstore.loader.kept import KeptStore
from shardstore.loader.mixture import Mixture
from shardstore.mix.interleave import Interleave
from shardstore.mix.keep import heldout_scores
from shardstore.mix.sampling import num_windows, permutation
from shardstore.store.docarrays import content_hashes
from shardstore.store.mask import Mask, mask_file_name, write_mask
from shardstore.store.store import Store
from shardstore.torch import make_dataloader

SEQ = 8
SEED = 5


def _docs(rng: np.random.Generator, n: int, counter: list[int]) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        k = int(rng.integers(1, 14))
        out.append(np.arange(counter[0], counter[0] + k, dtype=np.uint16))
        counter[0] += k
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Stores a (source a), b and c (source b); b holds 40 exact copies of documents of a."""
    d = tmp_path_factory.mktemp("masks")
    rng = np.random.default_rng(3)
    counter = [1]
    docs_a = _docs(rng, 300, counter)
    docs_b = _docs(rng, 80, counter)
    shared = rng.choice(300, size=40, replace=False)
    for j, i in enumerate(shared.tolist()):
        docs_b.insert(2 * j, docs_a[i])
    docs_c = _docs(rng, 60, counter)
    for name, docs in (("a", docs_a), ("b", docs_b), ("c", docs_c)):
        write_store(d / name, docs, max_shard_bytes=4096 + 1024)
    stores = {name: Store.open(d / name) for name in "abc"}
    (d / "maskdir").mkdir()
    mask_a = Mask.build(
        store_fingerprint=stores["a"].fingerprint,
        num_docs=300,
        ids=np.arange(0, 300, 5),
        reasons=[f"dup {i}" for i in range(0, 300, 5)],
    )
    write_mask(d / "maskdir" / mask_file_name(stores["a"].fingerprint), mask_a)
    mask_c = Mask.build(
        store_fingerprint=stores["c"].fingerprint, num_docs=60, ids=[0, 1, 2, 30], reasons="bad"
    )
    write_mask(d / "c.mask", mask_c)
    return {
        "dir": d,
        "docs": {"a": docs_a, "b": docs_b, "c": docs_c},
        "stores": stores,
        "excluded": {"a": set(range(0, 300, 5)), "b": set(), "c": {0, 1, 2, 30}},
    }


def _mix_text(heldout_b: str = "", weights=(2, 1), exclude_c: str = '"c.mask"') -> str:
    return f"""
seq_len = {SEQ}
seed = {SEED}

[[sources]]
name = "a"
store = "a"
weight = {weights[0]}
exclude = ["maskdir"]
heldout = 0.1

[[sources]]
name = "b"
store = ["b", "c"]
weight = {weights[1]}
exclude = ["maskdir", {exclude_c}]
{heldout_b}
"""


def _mixture(world: dict, name: str = "mix.toml", **kw) -> Mixture:
    path = world["dir"] / name
    path.write_text(_mix_text(**kw))
    return Mixture.from_file(path)


@pytest.fixture(scope="module")
def mix(world: dict) -> Mixture:
    return _mixture(world)


def _model(world: dict, heldout: dict[str, float]) -> dict:
    """Brute force: held-out and training documents of every store from the definition."""
    docs, stores = world["docs"], world["stores"]
    scores = {n: heldout_scores(content_hashes(stores[n]), SEED) for n in "abc"}
    held = {}
    source_of = {"a": "a", "b": "b", "c": "b"}
    for n in "abc":
        f = heldout.get(source_of[n], 0.0)
        held[n] = {i for i in range(len(docs[n])) if scores[n][i] < f and i not in world["excluded"][n]}
    held_content = {docs[n][i].tobytes() for n in "abc" for i in held[n]}
    train = {
        n: [
            i
            for i in range(len(docs[n]))
            if i not in world["excluded"][n] and i not in held[n] and docs[n][i].tobytes() not in held_content
        ]
        for n in "abc"
    }
    return {"held": held, "train": train, "held_content": held_content}


def _stream(world: dict, names: str, ids: dict) -> np.ndarray:
    parts = [world["docs"][n][i] for n in names for i in sorted(ids[n])]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def test_kept_and_excluded_tokens_are_exact_at_every_prefix(world: dict, mix: Mixture) -> None:
    model = _model(world, {"a": 0.1})
    opened = mix.open_sources()
    for src, names in zip(opened, ("a", "bc"), strict=True):
        ref = _stream(world, names, model["train"])
        assert src.offsets[-1] == ref.size and src.num_windows == num_windows(ref.size, SEQ)
        for k, store in enumerate(src.stores):
            assert isinstance(store, KeptStore)
            n = names[k]
            mine = _stream(world, n, model["train"])
            got = np.zeros(store.num_tokens, dtype=np.int64)
            store.read_into(0, got)
            assert np.array_equal(got, mine)
            for stop in range(0, store.num_tokens + 1, 3):  # every prefix: kept / excluded tokens before it
                pieces = store.index.pieces(0, stop)
                flat = np.concatenate([np.arange(a, a + m) for a, m, _ in pieces] or [np.zeros(0)]).astype(
                    int
                )
                assert flat.size == stop
                skipped = (flat[-1] + 1 - stop) if stop else 0
                total = np.concatenate(world["docs"][n]).astype(np.int64)
                assert np.array_equal(total[flat], mine[:stop]) and skipped >= 0
        c = src.counts
        held = sum(world["docs"][n][i].size for n in names for i in model["held"][n])
        total = sum(world["docs"][n][i].size for n in names for i in range(len(world["docs"][n])))
        assert (c.kept_tokens, c.heldout_tokens) == (ref.size, held)
        assert c.kept_tokens + c.excluded_tokens + c.heldout_tokens == total


def test_windows_never_hold_an_excluded_token(world: dict, mix: Mixture) -> None:
    model = _model(world, {"a": 0.1})
    allowed = set(_stream(world, "abc", model["train"]).tolist())
    every = set(_stream(world, "abc", {n: range(len(world["docs"][n])) for n in "abc"}).tolist())
    reader = BatchReader(mix, doc_info="both")
    il = mix.interleave
    position = 0
    counts = [0, 0]
    for _ in range(40):
        batch = reader.read(position, counts, 16)
        toks = set(batch["input_ids"].ravel().tolist()) | set(batch["labels"].ravel().tolist())
        assert toks <= allowed and toks < every
        # document starts: where a token begins a kept document (documents are runs of consecutive ids)
        starts = {int(world["docs"][n][i][0]) for n in "abc" for i in model["train"][n]}
        ids, pos = batch["input_ids"], batch["position_ids"]
        for row_ids, row_pos in zip(ids, pos, strict=True):
            expect, p = [], 0
            for j, t in enumerate(row_ids.tolist()):
                p = 0 if j == 0 or t in starts else p + 1
                expect.append(p)
            assert row_pos.tolist() == expect
        counts = list(il.advance(position, counts, 16))
        position += 16


def test_plan_counts_kept_excluded_and_heldout(world: dict, mix: Mixture) -> None:
    plan = mix.plan(10_000).to_dict()
    for row, src in zip(plan["sources"], mix.open_sources(), strict=True):
        assert row["kept_tokens"] == src.counts.kept_tokens == src.offsets[-1]
        assert row["excluded_tokens"] == src.counts.excluded_tokens > 0
        assert row["heldout_tokens"] == src.counts.heldout_tokens
        assert row["tokens_available"] == src.num_windows * SEQ
    assert plan["sources"][0]["heldout_tokens"] > 0 and plan["sources"][1]["heldout_tokens"] == 0
    # per mask: what each removes (issue 21's "tokens removed per source by each mask")
    docs = world["docs"]
    [mask_a] = plan["sources"][0]["masks"]
    assert mask_a["mask"].endswith(mask_file_name(world["stores"]["a"].fingerprint))
    assert mask_a["docs"] == 60 and mask_a["tokens"] == sum(docs["a"][i].size for i in world["excluded"]["a"])
    assert (
        mask_a["tokens"] == plan["sources"][0]["excluded_tokens"]
    )  # source a has no copies of held-out docs
    [mask_c] = plan["sources"][1]["masks"]  # the MASKDIR has nothing for b or c; c.mask is c's
    assert mask_c["mask"].endswith("c.mask") and mask_c["docs"] == 4
    assert mask_c["tokens"] == sum(docs["c"][i].size for i in world["excluded"]["c"])


def _reference(world: dict, mix: Mixture, n: int) -> np.ndarray:
    """Global order over the model's kept streams: interleave -> epoch -> keyed permutation -> window."""
    model = _model(world, {"a": 0.1})
    streams = [_stream(world, "a", model["train"]), _stream(world, "bc", model["train"])]
    il = Interleave(mix.interleave.schedule)
    src, ordinal = il.assign(0, [0, 0], n)
    out = np.empty((n, SEQ), dtype=np.int64)
    for i, (s, k) in enumerate(zip(src.tolist(), ordinal.tolist(), strict=True)):
        windows = num_windows(streams[s].size, SEQ)
        w = int(permutation(SEED, "ab"[s], k // windows, windows)(k % windows))
        out[i] = streams[s][w * SEQ : w * SEQ + SEQ]
    return out


@pytest.mark.parametrize(
    ("batch_size", "world_size", "workers"), [(3, 1, 0), (2, 2, 0), (1, 4, 0), (2, 1, 2)]
)
def test_resume_at_every_step_with_masks_and_heldout(world, mix, batch_size, world_size, workers) -> None:
    steps = 10
    batches, states = run_ranks(
        mix, batch_size=batch_size, world_size=world_size, steps=steps, num_workers=workers
    )
    gbs = batch_size * world_size
    assert np.array_equal(np.concatenate(batches), _reference(world, mix, steps * gbs))
    for k, state in enumerate(states[:-1], start=1):
        assert state["fingerprints"]["masks"] == states[0]["fingerprints"]["masks"]
        other_ws = gbs if world_size == 1 else 1  # resume elsewhere: another world size and micro-batch
        rest, _ = run_ranks(
            mix, batch_size=gbs // other_ws, world_size=other_ws, steps=steps - k, state=state
        )
        assert np.array_equal(np.concatenate(rest), np.concatenate(batches[k:])), f"resume after step {k}"


def test_resume_with_other_masks_is_refused_naming_the_mask(world: dict, mix: Mixture) -> None:
    loader = make_dataloader(mix, batch_size=2, max_steps=3)
    list(loader)
    state = json.loads(json.dumps(loader.state_dict()))
    no_c = _mixture(world, "mix-no-c.toml", exclude_c="")
    with pytest.raises(StateError, match=r"masks .*maskdir/[0-9a-f]+\.mask"):
        make_dataloader(no_c, batch_size=2).load_state_dict(state)
    loose = make_dataloader(no_c, batch_size=2, max_steps=1)
    loose.load_state_dict(state, strict=False)  # continues from the saved counters
    assert loose.state_dict()["position"] == 6
    plain = Mixture.from_dict(
        {
            "seq_len": SEQ,
            "seed": SEED,
            "sources": [{"name": "a", "store": "a"}, {"name": "b", "store": ["b", "c"]}],
        },
        base_dir=str(world["dir"]),
    )
    with pytest.raises(StateError, match="masks"):  # dropping every mask is refused too
        make_dataloader(plain, batch_size=2).load_state_dict(state)


def test_shared_documents_land_on_the_same_side(world: dict) -> None:
    both = _mixture(world, "mix-both.toml", heldout_b="heldout = 0.1")
    model = _model(world, {"a": 0.1, "b": 0.1})
    a_kept, b_kept = both.open_sources()[0].stores[0], both.open_sources()[1].stores[0]
    docs_a, docs_b = world["docs"]["a"], world["docs"]["b"]
    index_a = {d.tobytes(): i for i, d in enumerate(docs_a)}
    shared = [(index_a[d.tobytes()], j) for j, d in enumerate(docs_b) if d.tobytes() in index_a]
    assert len(shared) == 40
    held_a, held_b = set(a_kept.heldout_docs.tolist()), set(b_kept.heldout_docs.tolist())
    assert held_a == model["held"]["a"] and held_b == model["held"]["b"]
    sides = [(i in held_a) == (j in held_b) for i, j in shared if i not in world["excluded"]["a"]]
    assert all(sides) and any(i in held_a for i, _ in shared)
    # and with a held-out split only in a, b still never trains on a's held-out content
    stream_b = set(_stream(world, "b", _model(world, {"a": 0.1})["train"]).tolist())
    single = _mixture(world, "mix-one.toml").open_sources()[1].stores[0]
    got = np.zeros(single.num_tokens, dtype=np.int64)
    single.read_into(0, got)
    assert set(got.tolist()) == stream_b
    assert not any(set(docs_a[i].tolist()) <= stream_b for i in held_a)


def test_heldout_does_not_depend_on_weights_or_schedule(world: dict, mix: Mixture) -> None:
    other = _mixture(world, "mix-weights.toml", weights=(1, 7))
    mine = [st.heldout_docs.tolist() for src in mix.open_sources() for st in src.stores]
    theirs = [st.heldout_docs.tolist() for src in other.open_sources() for st in src.stores]
    assert mine == theirs


def test_masks_are_verified_on_first_use(world: dict, tmp_path: Path) -> None:
    d = tmp_path / "w"
    shutil.copytree(world["dir"], d, ignore=shutil.ignore_patterns("*.toml"))
    (d / "mix.toml").write_text(_mix_text())
    data = bytearray((d / "c.mask").read_bytes())
    data[-1] ^= 0x10
    (d / "c.mask").write_bytes(bytes(data))
    with pytest.raises(MaskError, match=r"c\.mask"):
        Mixture.from_file(d / "mix.toml").open_sources()
    write_mask(d / "c.mask", Mask.build(store_fingerprint="f" * 64, num_docs=60, ids=[1], reasons="x"))
    with pytest.raises(MismatchError, match=r"c\.mask.*not one of the source's stores"):
        Mixture.from_file(d / "mix.toml").open_sources()


# -- the evaluation loader --------------------------------------------------------------------------------------


def _heldout_streams(world: dict) -> list[np.ndarray]:
    model = _model(world, {"a": 0.1, "b": 0.1})
    return [_stream(world, "a", model["held"]), _stream(world, "bc", model["held"])]


@pytest.mark.parametrize(("world_size", "workers"), [(1, 0), (2, 0), (4, 0), (2, 2)])
def test_eval_loader_covers_each_heldout_document_once(world: dict, world_size: int, workers: int) -> None:
    both = _mixture(world, "mix-eval.toml", heldout_b="heldout = 0.1")
    loaders = [
        make_dataloader(
            both, split="heldout", batch_size=3, rank=r, world_size=world_size, num_workers=workers
        )
        for r in range(world_size)
    ]
    steps = {len(loader) for loader in loaders}
    assert len(steps) == 1  # every rank runs the same number of steps
    streams = _heldout_streams(world)
    windows = [max(0, -(-(s.size - 1) // SEQ)) for s in streams]
    assert steps == {-(-sum(windows) // (3 * world_size))}
    rows: list[tuple[int, np.ndarray, np.ndarray]] = []  # (source, labels, input_ids) in global sample order
    per_rank = [list(loader) for loader in loaders]
    for step in range(len(loaders[0])):
        for r in range(world_size):
            b = per_rank[r][step]
            assert b["input_ids"].shape == (3, SEQ) and b["loss_mask"].dtype == torch.bool
            for i in range(3):
                rows.append(
                    (
                        int(b["source_ids"][i]),
                        b["labels"][i].numpy(),
                        b["loss_mask"][i].numpy(),
                        b["input_ids"][i].numpy(),
                    )
                )
    real = [r for r in rows if r[0] >= 0]
    assert len(real) == sum(windows) and all(r[0] < 0 for r in rows[len(real) :])  # padding only at the end
    for s, stream in enumerate(streams):
        mine = [r for r in real if r[0] == s]
        labels = np.concatenate([lab[m] for _, lab, m, _ in mine])
        assert np.array_equal(labels, stream[1:])  # every held-out token after the first, once, in order
        inputs = np.concatenate([ids[m] for _, _, m, ids in mine])
        assert np.array_equal(inputs, stream[:-1])
        assert all((lab[~m] == -100).all() for _, lab, m, _ in mine)
    assert list(loaders[0]) and all(  # a second pass is identical
        torch.equal(a["input_ids"], b["input_ids"])
        for a, b in zip(per_rank[0], list(loaders[0]), strict=True)
    )


def test_peek_goes_through_the_kept_stream(world: dict, mix: Mixture) -> None:
    from shardstore.loader.peek import peek_rows

    model = _model(world, {"a": 0.1})
    by_root = {str(world["stores"][n].root): n for n in "abc"}
    for step in (0, 3, 17):
        for row in peek_rows(mix, step=step, batch_size=4):
            n = by_root[row["store"]]
            doc = row["doc"]
            assert doc in model["train"][n]  # never an excluded or held-out document
            assert (
                row["input_ids"][0] in world["docs"][n][doc].tolist()
            )  # the window starts inside that document


def test_heldout_does_not_depend_on_the_shard_layout(world: dict, tmp_path: Path) -> None:
    held = []
    for k, shard_bytes in enumerate((4096 + 1024, 64 << 10)):
        write_store(tmp_path / f"s{k}", world["docs"]["a"], max_shard_bytes=shard_bytes)
        text = f'seq_len = {SEQ}\nseed = {SEED}\n[[sources]]\nname = "a"\nstore = "s{k}"\nheldout = 0.1\n'
        (tmp_path / f"m{k}.toml").write_text(text)
        src = Mixture.from_file(tmp_path / f"m{k}.toml").open_sources()[0]
        held.append(src.stores[0].heldout_docs.tolist())
    assert Store.open(tmp_path / "s0").num_shards != Store.open(tmp_path / "s1").num_shards
    assert held[0] == held[1] and len(held[0]) > 10


def test_loader_state_machine_with_masks_and_heldout(world: dict, mix: Mixture) -> None:
    """test_torch_statemachine's machine (next / save / load / change world size, against the pure global-order
    model) over the masked mixture: every restore continues the model's stream of kept windows."""
    from hypothesis import settings
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

    limit = 240
    expected = _reference(world, mix, limit)

    class MaskedMachine(RuleBasedStateMachine):
        @initialize(world_size=st.sampled_from([1, 2, 4]), batch=st.integers(1, 3))
        def start(self, world_size: int, batch: int) -> None:
            self.position = 0
            self.saved: list[tuple[int, dict]] = []
            self._build(world_size, batch, None)

        def _build(self, world_size: int, batch: int, state: dict | None) -> None:
            self.world, self.batch = world_size, batch
            self.loaders = [
                make_dataloader(mix, batch_size=batch, rank=r, world_size=world_size)
                for r in range(world_size)
            ]
            for loader in self.loaders if state is not None else []:
                loader.load_state_dict(state)
            self.iters = [iter(loader) for loader in self.loaders]

        @precondition(lambda self: self.position + 12 <= limit)
        @rule()
        def next_step(self) -> None:
            got = torch.cat([next(it)["input_ids"] for it in self.iters]).numpy()
            n = self.world * self.batch
            assert np.array_equal(got, expected[self.position : self.position + n])
            self.position += n

        @rule()
        def save(self) -> None:
            self.saved.append((self.position, json.loads(json.dumps(self.loaders[0].state_dict()))))

        @precondition(lambda self: self.saved)
        @rule(data=st.data())
        def load(self, data: st.DataObject) -> None:
            self.position, state = data.draw(st.sampled_from(self.saved))
            self._build(self.world, self.batch, state)

        @rule(world_size=st.sampled_from([1, 2, 4]), batch=st.integers(1, 3))
        def change_world_size(self, world_size: int, batch: int) -> None:
            self._build(world_size, batch, self.loaders[0].state_dict())

        @invariant()
        def state_tracks_model(self) -> None:
            assert self.loaders[0].state_dict()["position"] == self.position

    MaskedMachine.TestCase.settings = settings(max_examples=15, stateful_step_count=20, deadline=None)
    MaskedMachine.TestCase().runTest()


def test_forked_workers_reuse_the_exclusions(world: dict, tmp_path: Path, monkeypatch) -> None:
    """Workers re-open their stores but not the held-out hashing (a full pass over every token)."""
    from shardstore.loader import exclusions

    log = tmp_path / "calls"
    real = exclusions.document_hashes

    def counted(store):
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        return real(store)

    monkeypatch.setattr(exclusions, "document_hashes", counted)
    fresh = _mixture(world, "mix-fork.toml")
    loader = make_dataloader(fresh, batch_size=2, num_workers=2, max_steps=4, multiprocessing_context="fork")
    got = torch.cat([b["input_ids"] for b in loader]).numpy()
    assert np.array_equal(got, _reference(world, fresh, 8))
    pids = log.read_text().split()
    assert len(pids) == 3 and set(pids) == {str(os.getpid())}  # 3 stores, hashed once, in this process


def test_masks_by_url(world: dict, mix: Mixture) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    fp_a = world["stores"]["a"].fingerprint
    fs.pipe(
        f"/urlmasks/{mask_file_name(fp_a)}", (world["dir"] / "maskdir" / mask_file_name(fp_a)).read_bytes()
    )
    fs.pipe("/urlmasks/c-file.mask", (world["dir"] / "c.mask").read_bytes())
    text = _mix_text(exclude_c='"memory://urlmasks/c-file.mask"').replace('"maskdir"', '"memory://urlmasks"')
    (world["dir"] / "mix-url.toml").write_text(text)
    by_url = Mixture.from_file(world["dir"] / "mix-url.toml")
    mine = [
        (st.num_tokens, st.masks[0][1] if st.masks else None) for s in mix.open_sources() for st in s.stores
    ]
    theirs = [
        (st.num_tokens, st.masks[0][1] if st.masks else None)
        for s in by_url.open_sources()
        for st in s.stores
    ]
    assert mine == theirs and by_url.fingerprints()["masks"] == mix.fingerprints()["masks"]
    assert any(
        path.startswith("memory://") for s in by_url.open_sources() for st in s.stores for path, _ in st.masks
    )


def test_the_persisted_hash_index_gives_the_same_split_and_state(world: dict, monkeypatch) -> None:
    """First open (hashes every token, writes `.hashidx/`), second open (reads it, hashes nothing) and an open over
    a damaged index (recomputed) give the same stream and the same state dict."""
    from shardstore.store import docarrays
    from shardstore.store.hash_index import INDEX_DIR

    for n in "abc":
        shutil.rmtree(world["dir"] / n / INDEX_DIR, ignore_errors=True)

    def run() -> tuple[np.ndarray, dict]:
        loader = make_dataloader(_mixture(world, "mix-hidx.toml"), batch_size=2, max_steps=4)
        got = torch.cat([b["input_ids"] for b in loader]).numpy()
        return got, loader.state_dict()

    first, state = run()
    assert np.array_equal(first, _reference(world, _mixture(world, "mix-hidx.toml"), 8))
    indexes = {n: list((world["dir"] / n / INDEX_DIR).glob("*.hidx")) for n in "abc"}
    assert all(len(v) == 1 for v in indexes.values())
    real = docarrays.content_hashes

    def refuse(store):
        raise AssertionError("hashed the tokens although the index is sound")

    monkeypatch.setattr(docarrays, "content_hashes", refuse)
    second, state2 = run()
    assert np.array_equal(second, first) and state2 == state
    data = bytearray(indexes["b"][0].read_bytes())
    data[-3] ^= 0x10
    indexes["b"][0].write_bytes(bytes(data))
    with pytest.raises(AssertionError, match="hashed the tokens"):
        run()  # a damaged index is not used
    monkeypatch.setattr(docarrays, "content_hashes", real)
    third, state3 = run()
    assert np.array_equal(third, first) and state3 == state
