"""Issue 16.3: bit flips in the build journal (and every other state file a build writes) are never trusted and never
leave the build stuck: a property over random bit positions, for a build killed before its manifest and for the
journal a multi-node `--finalize` reads; and `verify` covers that state in a finished store."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
from pathlib import Path

import pytest
from test_build_support import snapshot, train_tokenizer, write_corpus

import shardstore
from shardstore import Store
from shardstore.errors import BuildError
from shardstore.store.verify import verify_store
from shardstore.util.sealed import read_sealed, seal, unseal


def test_every_single_bit_flip_of_a_sealed_file_is_caught():
    data = seal({"index": 1, "num_docs": 30, "shards": [{"name": "u000001-000000.shard", "size": 8192}]})
    assert unseal(data) is not None and json.loads(data)["seal"].startswith("xxh3-64:")
    for pos in range(len(data)):
        for bit in range(8):
            flipped = bytearray(data)
            flipped[pos] ^= 1 << bit
            assert unseal(bytes(flipped)) is None, (pos, bit)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("journal")
    tok = train_tokenizer(root / "tok.json")
    inputs = root / "in"
    write_corpus(inputs, n_files=5, docs_per_file=30)
    ref = root / "ref"
    _build(inputs, tok, ref)
    return root, tok, inputs, ref


def _build(inputs, tok, out, **kw):
    kw.setdefault("workers", 1)
    return shardstore.build(
        [str(inputs)], tokenizer=tok, out=out, progress=False, max_shard_bytes=1 << 13, **kw
    )


def _state_files(out: Path, *, store_files: bool = False) -> list[Path]:
    """The build's state files; with `store_files`, also the non-shard files a killed build has already written
    (tokenizer copy, provenance index and per-unit provenance), which a resume must not commit unchecked."""
    files = [out / "build_report.json", out / ".build" / "options.json"]
    files += sorted((out / ".build" / "units").glob("*.json"))
    if store_files:
        files += [out / "tokenizer.json", *sorted((out / "provenance").iterdir())]
    return [f for f in files if f.exists()]


def _flip(rng: random.Random, files: list[Path]) -> str:
    path = rng.choice(files)
    data = bytearray(path.read_bytes())
    pos, bit = rng.randrange(len(data)), rng.randrange(8)
    data[pos] ^= 1 << bit
    path.write_bytes(bytes(data))
    return f"{path.name}@{pos}.{bit}"


def test_bit_flips_in_a_killed_builds_journal_are_redone(setup, tmp_path):
    """40 random single-bit flips in the state of a build killed before its manifest: the resumed build commits
    exactly the clean store (corrupt entries are moved aside and their units redone), never anything else."""
    _root, tok, inputs, ref = setup
    template = tmp_path / "killed"
    shutil.copytree(ref, template)
    (template / "manifest.json").unlink()  # killed after the last unit, before the commit point
    rng = random.Random(16_3)
    redone = 0
    for trial in range(48):
        out = tmp_path / f"t{trial}"
        shutil.copytree(template, out)
        where = _flip(rng, _state_files(out, store_files=True))
        report = _build(inputs, tok, out)
        assert report.complete, where
        assert snapshot(out) == snapshot(ref), where
        redone += report.units_run
        assert _build(inputs, tok, out).nothing_to_do, where
        shutil.rmtree(out)
    assert redone >= 10  # most flips hit unit entries, whose units ran again


def test_unit_index_flip_does_not_leave_the_build_stuck(setup, tmp_path):
    """The reported case: `index` 1 -> 5 in unit 1's entry used to make every re-run wait for "units of other
    nodes" forever. Even with a valid seal recomputed over the edit, an entry must name its own unit."""
    _root, tok, inputs, ref = setup
    out = tmp_path / "st"
    shutil.copytree(ref, out)
    (out / "manifest.json").unlink()
    entry = out / ".build" / "units" / "unit-000001.json"
    obj = read_sealed(entry)[1]
    obj["index"] = 5
    entry.write_bytes(seal(obj))  # a forged but well-sealed entry
    report = _build(inputs, tok, out)
    assert report.complete and report.units_run == 1
    assert snapshot(out) == snapshot(ref)
    assert list((out / ".build" / "corrupt").iterdir())


def test_bit_flips_in_the_journal_a_finalize_reads(setup, tmp_path):
    """Multi-node: both nodes done, the manifest not yet written; a flip in the journal that `--finalize` reads
    either finalizes the clean store or fails with one line naming the node rank to re-run; re-running that rank
    (which then finalizes itself) recovers the clean store."""
    _root, tok, inputs, ref = setup
    template = tmp_path / "nodes"
    for rank in (0, 1):
        _build(inputs, tok, template, num_nodes=2, node_rank=rank)
    assert snapshot(template) == snapshot(ref)
    (template / "manifest.json").unlink()
    rng = random.Random(16_31)
    failures = 0
    for trial in range(16):
        out = tmp_path / f"f{trial}"
        shutil.copytree(template, out)
        where = _flip(rng, _state_files(out))
        try:
            _build(inputs, tok, out, num_nodes=2, finalize=True)
        except BuildError as exc:
            failures += 1
            message = str(exc)
            assert "\n" not in message and "re-run node rank(s)" in message, where
            ranks = [int(r) for r in message.split("re-run node rank(s) ")[1].split(",")[0].split()[:1]]
            for rank in (0, 1):
                _build(inputs, tok, out, num_nodes=2, node_rank=rank)
            assert ranks
        assert snapshot(out) == snapshot(ref), where
        shutil.rmtree(out)
    assert failures >= 3


def test_verify_covers_the_build_state_of_a_finished_store(setup, tmp_path):
    """12 flips each in `build_report.json` and in `.build/`: `verify` names every one; a re-run repairs them."""
    _root, tok, inputs, ref = setup
    clean = verify_store(Store.open(ref))
    assert clean.ok
    assert all(name.split(os.sep)[1] == "locks" for name in clean.not_covered), clean.not_covered
    rng = random.Random(16_32)
    for target in ("report", "journal"):
        for trial in range(12):
            out = tmp_path / f"{target}{trial}"
            shutil.copytree(ref, out)
            state = _state_files(out)
            files = state[:1] if target == "report" else state[1:]
            where = _flip(rng, files)
            with Store.open(out) as store:
                report = verify_store(store)
            assert not report.ok and "corrupt" in report.problems[0].message, where
            _build(inputs, tok, out)  # re-running the build command rewrites the state
            with Store.open(out) as store:
                assert verify_store(store).ok, where
            assert snapshot(out) == snapshot(ref), where
            shutil.rmtree(out)


def test_commit_is_create_if_absent_also_without_hard_links(tmp_path, monkeypatch):
    """Two writers of one unit: the first claim commits, the second is told so. Also where `link(2)` is not
    supported (some FUSE mounts): O_EXCL creation instead, with the same outcome."""
    from shardstore.preprocess.journal import Journal, UnitResult

    journal = Journal(tmp_path / "st")
    journal.create()
    first = UnitResult(index=3, url="a.jsonl", num_docs=1)
    assert journal.claim(first) and not journal.claim(UnitResult(index=3, url="a.jsonl", num_docs=2))

    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    assert journal.claim(UnitResult(index=4, url="b.jsonl", num_docs=1))
    assert not journal.claim(UnitResult(index=4, url="b.jsonl", num_docs=2))
    got = journal.finished(token_bytes=2)
    assert {i: r.num_docs for i, r in got.items()} == {3: 1, 4: 1}
    assert sorted(os.listdir(journal.units_dir)) == ["unit-000003.json", "unit-000004.json"]  # no temp left
