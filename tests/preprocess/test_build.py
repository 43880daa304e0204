"""`shardstore.build`: round trip, EOS, provenance, determinism across workers and nodes, resume rules, bad input."""

from __future__ import annotations

import gzip
import hashlib
import json
import random

import numpy as np
import pytest
from test_build_support import all_files, snapshot, text_of, train_tokenizer, write_corpus

import shardstore
from shardstore.errors import BuildError
from shardstore.preprocess.sources import ReadOptions, SkipCounts, expand_inputs, iter_documents
from shardstore.store.provenance import read_provenance
from shardstore.store.store import Store


@pytest.fixture(scope="module")
def tok_path(tmp_path_factory):
    return train_tokenizer(tmp_path_factory.mktemp("tok") / "tok.json")


@pytest.fixture(scope="module")
def tok(tok_path):
    import tokenizer

    return tokenizer.Tokenizer.load(tok_path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    texts = write_corpus(root, n_files=8, docs_per_file=20)
    return root, texts


def _build(inputs, tok_path, out, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("workers", 1)
    return shardstore.build([str(i) for i in inputs], tokenizer=tok_path, out=out, **kw)


def test_round_trip_eos_tokenizer_and_provenance(tmp_path, tok_path, tok, corpus):
    root, texts = corpus
    report = _build([root], tok_path, tmp_path / "st", max_shard_bytes=1 << 13)
    assert report.complete and not report.failed and report.num_docs == len(texts)
    store = Store.open(tmp_path / "st", verify="full")
    assert store.num_docs == len(texts)
    for i, text in enumerate(texts):
        ids = store.doc(i)
        assert ids[-1] == tok.eos_id
        assert ids[:-1].tolist() == tok.encode(text)
    assert store.num_tokens == report.num_tokens == sum(len(tok.encode(t)) + 1 for t in texts)
    assert store.tokenizer_fingerprint == tok.fingerprint and store.eos_id == tok.eos_id
    assert (tmp_path / "st" / "tokenizer.json").read_bytes() == tok_path.read_bytes()
    names = [f.name for f in store.manifest.files]
    assert names[:2] == ["tokenizer.json", "provenance/units.json"] and "build_report.json" not in names
    assert len(store.manifest.shards) > 8  # small shard limit: units roll over into several shards
    # provenance: file + record for every kind of input
    first = read_provenance(store, 0)
    assert first == {
        "doc": 0,
        "unit": 0,
        "file": f"{root}/part-000.jsonl",
        "record": 0,
        "record_kind": "line",
    }
    assert read_provenance(store, 25)["record"] == 5 and read_provenance(store, 25)["file"].endswith(
        "001.jsonl.gz"
    )
    assert read_provenance(tmp_path / "st", 65)["record_kind"] == "row"
    last = read_provenance(store, len(texts) - 1)
    assert last["file"].endswith("part-007.jsonl.zst") and last["record"] == 19
    txt = read_provenance(store, 80)
    assert txt["record_kind"] == "file" and txt["file"].endswith("part-004.txt")
    with pytest.raises(IndexError, match="outside"):
        read_provenance(store, len(texts))
    report_json = json.loads((tmp_path / "st" / "build_report.json").read_bytes())
    assert report_json["num_docs"] == len(texts) and report_json["run"]["tokens"] == store.num_tokens
    run = report_json["run"]
    assert run["text_bytes"] == sum(
        len(t.encode()) for t in texts
    )  # exact UTF-8 bytes, also through JSON escapes
    assert run["cpu_seconds"] > 0 and run["mb_per_cpu_s"] > 0
    units = [
        json.loads(p.read_bytes()) for p in sorted((tmp_path / "st" / ".build" / "units").glob("*.json"))
    ]
    assert abs(sum(u["cpu_seconds"] for u in units) - run["cpu_seconds"]) < 0.01


def test_golden_token_stream(tmp_path, tok_path, corpus):
    """Pins the token stream a fixed corpus + tokenizer + options produce: any change in reading order, EOS
    placement or skipping shows up here."""
    root, _ = corpus
    _build([root], tok_path, tmp_path / "a")
    store = Store.open(tmp_path / "a")
    digest = hashlib.sha256(store.tokens(0, store.num_tokens).tobytes()).hexdigest()
    assert (store.num_docs, store.num_tokens) == (141, GOLDEN_NUM_TOKENS)
    assert digest == GOLDEN_TOKENS_SHA256


GOLDEN_NUM_TOKENS = 26529
GOLDEN_TOKENS_SHA256 = "2fb1605c7c38cd960c34e6a7f49cf87dbf7c5ccad72a094c8fc5e07e2d1b60f5"


def test_no_eos(tmp_path, tok_path, tok, corpus):
    root, texts = corpus
    _build([root / "part-000.jsonl"], tok_path, tmp_path / "st", eos=False)
    store = Store.open(tmp_path / "st")
    assert store.doc(3).tolist() == tok.encode(texts[3])


def test_identical_bytes_with_1_2_8_workers(tmp_path, tok_path, corpus):
    root, _ = corpus
    snaps = []
    for workers in (1, 2, 8):
        _build([root], tok_path, tmp_path / f"w{workers}", workers=workers, max_shard_bytes=1 << 13)
        snaps.append(snapshot(tmp_path / f"w{workers}"))
    assert snaps[0] == snaps[1] == snaps[2]


def test_rerun_of_finished_build_writes_nothing(tmp_path, tok_path, corpus):
    root, _ = corpus
    out = tmp_path / "st"
    _build([root], tok_path, out)
    before = all_files(out)
    again = _build([root], tok_path, out)
    assert again.nothing_to_do and again.complete and "nothing to do" in again.message
    assert again.units_run == 0 and again.num_docs > 0
    assert all_files(out) == before


def test_changed_options_on_resume_are_refused(tmp_path, tok_path, corpus):
    root, _ = corpus
    out = tmp_path / "st"
    _build([root / "part-000.jsonl"], tok_path, out)
    with pytest.raises(BuildError, match=r"different build options \(text_field: \"text\" -> \"body\"\)"):
        _build([root / "part-000.jsonl"], tok_path, out, text_field="body")
    with pytest.raises(BuildError, match="eos: true -> false"):
        _build([root / "part-000.jsonl"], tok_path, out, eos=False)
    with pytest.raises(BuildError, match="inputs"):
        _build([root / "part-000.jsonl", root / "part-001.jsonl.gz"], tok_path, out)
    other = train_tokenizer(tmp_path / "other.json", vocab_size=300)
    with pytest.raises(BuildError, match="tokenizer"):
        _build([root / "part-000.jsonl"], other, out)


def test_bad_file_fails_alone_and_allow_partial(tmp_path, tok_path, corpus):
    root, _texts = corpus
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("part-000.jsonl", "part-003.parquet"):
        (inputs / name).write_bytes((root / name).read_bytes())
    blob = gzip.compress(b"".join(b'{"text": "%d words here"}\n' % i for i in range(5000)))
    (inputs / "part-001.jsonl.gz").write_bytes(blob[: len(blob) // 2])  # truncated
    out = tmp_path / "st"
    with pytest.raises(BuildError, match=r"1 of 3 input units failed .*part-001\.jsonl\.gz.*--allow-partial"):
        _build([inputs], tok_path, out, workers=2)
    assert not (out / "manifest.json").exists()
    assert sorted(p.name for p in (out / ".build" / "units").iterdir()) == [
        "unit-000000.json",
        "unit-000002.json",
    ]
    assert not list(out.glob("u000001-*"))  # the failed unit's partial shards are gone
    report = json.loads((out / "build_report.json").read_bytes())
    assert "truncated" in next(iter(report["failed"].values())) or "ended" in next(
        iter(report["failed"].values())
    )
    partial = _build([inputs], tok_path, out, allow_partial=True)
    assert partial.complete and len(partial.failed) == 1
    store = Store.open(out, verify="full")
    assert store.num_docs == 40
    assert store.manifest.provenance["failed_inputs"] == [f"{inputs}/part-001.jsonl.gz"]
    assert read_provenance(store, 20)["file"].endswith("part-003.parquet")
    store.close()
    # Changing a file whose unit is finished is refused; repairing the failed file in place finishes the store,
    # identical to a clean build of the repaired inputs.
    good = (inputs / "part-000.jsonl").read_bytes()
    (inputs / "part-000.jsonl").write_bytes(good + b'{"text": "one more"}\n')
    with pytest.raises(
        BuildError,
        match=r"input file\(s\) changed since their units were built: .*part-000\.jsonl.*--rebuild-changed",
    ):
        _build([inputs], tok_path, out)
    (inputs / "part-000.jsonl").write_bytes(good)
    (inputs / "part-001.jsonl.gz").write_bytes(blob)
    repaired = _build([inputs], tok_path, out)
    assert repaired.complete and not repaired.failed and repaired.units_run == 1 and repaired.num_docs == 5040
    _build([inputs], tok_path, tmp_path / "clean")
    assert snapshot(out) == snapshot(tmp_path / "clean")


def test_bad_records_are_counted_in_report(tmp_path, tok_path, tok):
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.jsonl").write_bytes(
        b'{"text": "good one"}\n{"text": ""}\nnot json\n{"x": 1}\n{"text": "bad \xff byte"}\n\n{"text": 7}\n'
    )
    (d / "b.txt").write_bytes(b"")
    (d / "c.txt").write_bytes(b"\x00\x01\x02binary")
    report = _build([d], tok_path, tmp_path / "st")
    assert report.skipped == {
        "binary_content": 1,
        "blank_line": 1,
        "empty_document": 2,
        "invalid_utf8_replaced": 1,
        "malformed_json": 1,
        "missing_text_field": 1,
        "text_not_a_string": 1,
    }
    store = Store.open(tmp_path / "st")
    assert store.num_docs == 2
    assert tok.decode(store.doc(1)[:-1]) == "bad \ufffd byte"
    assert read_provenance(store, 1)["record"] == 4
    skip = _build([d], tok_path, tmp_path / "st2", utf8_errors="skip")
    assert skip.skipped["invalid_utf8"] == 1 and skip.num_docs == 1
    with pytest.raises(BuildError, match=r"a\.jsonl: invalid UTF-8 in record 4"):
        _build([d], tok_path, tmp_path / "st3", utf8_errors="fail")


def test_node_slices_then_last_node_finalizes(tmp_path, tok_path, corpus):
    root, _ = corpus
    _build([root], tok_path, tmp_path / "local", workers=2)
    out = tmp_path / "nodes"
    r0 = _build([root], tok_path, out, num_nodes=3, node_rank=0)
    assert not r0.complete and "still missing" in r0.message and not (out / "manifest.json").exists()
    with pytest.raises(BuildError, match="cannot finalize"):
        _build([root], tok_path, out, finalize=True)
    r2 = _build([root], tok_path, out, num_nodes=3, node_rank=2)
    assert not r2.complete
    assert r0.units_run + r2.units_run < 8
    r1 = _build([root], tok_path, out, num_nodes=3, node_rank=1)
    assert r1.complete and r0.units_run + r1.units_run + r2.units_run == 8
    assert snapshot(out) == snapshot(tmp_path / "local")
    fin = _build([root], tok_path, out, finalize=True)  # an explicit finalize afterwards is harmless
    assert fin.complete and snapshot(out) == snapshot(tmp_path / "local")


def test_node_slice_is_a_balanced_partition():
    from shardstore.preprocess.executors import node_units

    sizes = [random.Random(i).randint(1, 1000) for i in range(50)]
    parts = [node_units(sizes, 4, r) for r in range(4)]
    assert sorted(i for p in parts for i in p) == list(range(50))
    loads = [sum(sizes[i] for i in p) for p in parts]
    assert max(loads) - min(loads) <= max(sizes)
    assert parts == [node_units(sizes, 4, r) for r in range(4)]


@pytest.mark.parametrize("pattern", ["cl100k", "gpt2"])
def test_streamed_pieces_encode_like_the_whole_document(tmp_path, pattern):
    import tokenizer

    rng = random.Random(7)
    text = "  ".join(
        text_of(rng, 50) + "\n\n" + "x" * rng.randint(0, 3) + " 9999 ünïcode" for _ in range(150)
    )
    tok = tokenizer.train([text], vocab_size=300, pattern=pattern, progress=False)
    path = tmp_path / "big.txt"
    path.write_text(text)
    pieces = list(iter_documents(expand_inputs([str(path)])[0], ReadOptions(piece_chars=1024), SkipCounts()))
    assert len(pieces) > 10
    streamed = np.concatenate([tok.encode_to_numpy(p.text) for p in pieces])
    assert streamed.tolist() == tok.encode(text)


def test_s3_inputs(tmp_path, s3_server, tok_path, tok, corpus):
    import fsspec

    root, texts = corpus
    bucket = s3_server.new_bucket()
    fs = fsspec.filesystem("s3", **s3_server.storage_options)
    for name in ("part-000.jsonl", "part-001.jsonl.gz", "part-003.parquet"):
        fs.pipe(f"{bucket}/c/{name}", (root / name).read_bytes())
    report = _build(
        [f"s3://{bucket}/c"], tok_path, tmp_path / "st", storage_options=s3_server.storage_options
    )
    assert report.num_docs == 60
    store = Store.open(tmp_path / "st")
    assert store.doc(59)[:-1].tolist() == tok.encode(texts[79])
    assert read_provenance(store, 59)["file"] == f"s3://{bucket}/c/part-003.parquet"
    local = _build([f"file://{root}"], tok_path, tmp_path / "viafile")
    assert local.num_docs == len(texts)


def test_compress_writes_zstd_copies_outside_the_manifest(tmp_path, tok_path, corpus):
    root, _ = corpus
    out = tmp_path / "st"
    _build([root / "part-000.jsonl"], tok_path, tmp_path / "plain")
    _build([root / "part-000.jsonl"], tok_path, out, compress=True)
    assert (out / "compression.json").exists() and list(out.glob("*.shard.zst"))
    assert snapshot(out) == snapshot(tmp_path / "plain")


def test_tokenizer_object_and_progress_bar(tmp_path, tok, corpus, capsys):
    root, texts = corpus
    report = shardstore.build(
        [str(root / "part-000.jsonl")], tokenizer=tok, out=tmp_path / "st", workers=2, progress=True
    )
    assert report.num_docs == 20
    err = capsys.readouterr().err
    assert "docs=20" in err and "tok=" in err and "MB/s" in err
    store = Store.open(tmp_path / "st")
    assert store.tokenizer_fingerprint == tok.fingerprint
    assert store.doc(0)[:-1].tolist() == tok.encode(texts[0])
    again = shardstore.build(
        [str(root / "part-000.jsonl")], tokenizer=tok, out=tmp_path / "st", progress=False
    )
    assert again.nothing_to_do


def test_large_files_split_into_ranges_give_the_same_documents(tmp_path, tok_path, tok):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(5)
    texts = [text_of(rng, rng.randint(3, 60)) for _ in range(400)]
    d = tmp_path / "in"
    d.mkdir()
    rows = [json.dumps({"text": t}).encode() + b"\n" for t in texts[:250]]
    (d / "a.jsonl").write_bytes(b"".join(rows))
    pq.write_table(pa.table({"text": texts[250:]}), d / "b.parquet", row_group_size=20)
    whole = _build([d], tok_path, tmp_path / "whole")
    split = _build([d], tok_path, tmp_path / "split", unit_bytes=4096, workers=2)
    assert whole.num_units == 2 and split.num_units > 6
    a, b = Store.open(tmp_path / "whole"), Store.open(tmp_path / "split")
    assert a.tokens(0, a.num_tokens).tobytes() == b.tokens(0, b.num_tokens).tobytes()
    assert b.num_docs == 400
    offsets = np.cumsum([0] + [len(r) for r in rows])
    for i in (0, 1, 77, 249):
        p = read_provenance(b, i)
        assert p["record_kind"] == "byte_offset" and p["record"] == offsets[i]
        assert read_provenance(a, i)["record"] == i
    for i in (250, 271, 399):
        assert read_provenance(b, i) == read_provenance(a, i) | {"unit": read_provenance(b, i)["unit"]}
        assert read_provenance(b, i)["record"] == i - 250


def test_provenance_absent_or_corrupt(tmp_path, tok_path, corpus):
    from shardstore.errors import FormatError

    root, _ = corpus
    out = tmp_path / "st"
    _build([root / "part-000.jsonl"], tok_path, out)
    assert read_provenance(tmp_path / "not-a-store", 0) is None
    with pytest.raises(IndexError):
        read_provenance(out, -1)
    (out / "provenance" / "units.json").write_text("{broken")
    with pytest.raises(FormatError, match="corrupt provenance index"):
        read_provenance(out, 0)


def test_tokenizer_without_eos_needs_no_eos(tmp_path, corpus):
    import tokenizer
    from shardstore.errors import ConfigError

    root, texts = corpus
    tok = tokenizer.Tokenizer.from_merges([(b"t", b"h"), (b"th", b"e")], special_tokens=())
    path = tmp_path / "noeos.json"
    tok.save(path)
    with pytest.raises(ConfigError, match="no EOS token"):
        _build([root / "part-000.jsonl"], path, tmp_path / "a")
    _build([root / "part-000.jsonl"], path, tmp_path / "b", eos=False)
    assert Store.open(tmp_path / "b").doc(0).tolist() == tok.encode(texts[0])


def test_document_streamed_in_pieces_is_stored_exactly(tmp_path, tok_path, tok, monkeypatch):
    import shardstore.preprocess.pipeline as build_module

    monkeypatch.setattr(build_module, "STREAM_PIECE_CHARS", 1024)
    rng = random.Random(9)
    text = "\n\n".join(text_of(rng, 80) + " 2026 ünï" for _ in range(120))
    (tmp_path / "long.txt").write_text(text)
    _build([tmp_path / "long.txt"], tok_path, tmp_path / "st", max_shard_bytes=1 << 13)
    store = Store.open(tmp_path / "st", verify="full")
    assert store.num_docs == 1
    assert store.doc(0).tolist() == [*tok.encode(text), tok.eos_id]


def test_store_inside_the_input_directory_is_not_read_back(tmp_path, tok_path, corpus):
    root, _ = corpus
    d = tmp_path / "data"
    d.mkdir()
    (d / "a.parquet").write_bytes((root / "part-003.parquet").read_bytes())
    first = _build([d], tok_path, d / "store")
    assert first.complete and first.num_units == 1
    again = _build([d], tok_path, d / "store")  # its provenance/*.parquet files are not inputs
    assert again.nothing_to_do
