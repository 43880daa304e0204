"""Document text sizes in the provenance (`text_bytes`): exact at build time, shown by `info`, refused when edited.

The expected sizes are computed here from the input files themselves (json / gzip / pyarrow / the raw file), not
from anything the build produced; non-ASCII text and JSON escapes make bytes differ from characters and from the
size of the line on disk.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from storeutil import text_store
from test_build_support import train_tokenizer

import shardstore
from shardstore.cli import main
from shardstore.errors import FormatError
from shardstore.store.manifest import file_info, read_manifest, write_manifest
from shardstore.store.provenance import TEXT_BYTES_COLUMN, read_text_bytes, read_units
from shardstore.store.store import Store

TEXTS = [
    "plain ascii words",
    "café crème brûlée",
    "中文文本，还有标点。",
    'emoji 🙂 and "quotes" and a\ttab',
    "line one\nline two\n",
    "x",
]


@pytest.fixture(scope="module")
def tok_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tokenizer(tmp_path_factory.mktemp("tok") / "tok.json")


def _corpus(root: Path) -> None:
    root.mkdir()
    lines = [json.dumps({"text": t * (1 + i % 3), "id": i}) for i, t in enumerate(TEXTS)]
    (root / "a.jsonl").write_text("\n".join(lines) + "\n")  # json.dumps escapes non-ASCII: \u00e9 on disk
    (root / "b.jsonl.gz").write_bytes(gzip.compress("".join(line + "\n" for line in lines[::-1]).encode()))
    pq.write_table(pa.table({"text": [t + " ünï" for t in TEXTS]}), root / "c.parquet")
    (root / "d.txt").write_text("a whole file is one document: ℝ³ → ∞\n", encoding="utf-8")


def _expected_sizes(root: Path) -> list[int]:
    """Each document's text size in UTF-8 bytes, read from the input files in build order (sorted names)."""
    sizes: list[int] = []
    for path in sorted(root.iterdir()):
        if path.name.endswith(".jsonl"):
            rows = path.read_text().splitlines()
        elif path.name.endswith(".jsonl.gz"):
            rows = gzip.decompress(path.read_bytes()).decode().splitlines()
        elif path.suffix == ".parquet":
            sizes += [len(t.encode("utf-8")) for t in pq.read_table(path).column("text").to_pylist()]
            continue
        else:
            sizes.append(path.stat().st_size)
            continue
        sizes += [len(json.loads(r)["text"].encode("utf-8")) for r in rows]
    return sizes


def _nearest_rank(values: list[int], p: int) -> int:
    ordered = sorted(values)
    return ordered[math.ceil(p / 100 * len(ordered)) - 1]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tok_path: Path) -> tuple[Path, list[int]]:
    root = tmp_path_factory.mktemp("prov")
    _corpus(root / "in")
    out = root / "st"
    shardstore.build([str(root / "in")], tokenizer=tok_path, out=out, workers=1, progress=False)
    return out, _expected_sizes(root / "in")


def _info(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["info", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_text_sizes_are_exact_and_info_shows_them(built, capsys: pytest.CaptureFixture[str]) -> None:
    out, expected = built
    store = Store.open(out)
    assert len(expected) == store.num_docs == 19
    assert read_text_bytes(store).tolist() == expected
    tok = store.tokenizer  # and each document decodes back to that many bytes (its EOS left out)
    assert [len(tok.decode_bytes(store.doc(i)[:-1].tolist())) for i in range(store.num_docs)] == expected

    code, text, _ = _info([str(out), "--json"], capsys)
    assert code == 0
    info = json.loads(text)
    b = info["doc_bytes"]
    assert (b["count"], b["total"], b["min"], b["max"]) == (19, sum(expected), min(expected), max(expected))
    assert b["mean"] == sum(expected) / 19
    assert [b["p50"], b["p90"], b["p99"]] == [_nearest_rank(expected, p) for p in (50, 90, 99)]
    assert info["bytes_per_token"] == sum(expected) / (store.num_tokens - store.num_docs)
    assert info["doc_bytes_missing"] is None

    code, text, _ = _info([str(out)], capsys)
    line = [ln for ln in text.splitlines() if ln.startswith("document bytes:")]
    assert line == [
        f"document bytes: mean {sum(expected) / 19:.1f}  p50 {b['p50']}  p90 {b['p90']}  p99 {b['p99']}  "
        f"min {min(expected)}  max {max(expected)}  total {sum(expected)} B  "
        f"({info['bytes_per_token']:.2f} bytes per token)"
    ]
    assert text.index("document tokens:") < text.index("document bytes:")


def test_streamed_document_sums_its_pieces(tmp_path: Path, tok_path: Path, monkeypatch) -> None:
    import shardstore.preprocess.pipeline as pipeline

    monkeypatch.setattr(pipeline, "STREAM_PIECE_CHARS", 1024)
    text = "\n\n".join(f"paragraph {i} ünïcödé ∑ text goes on and on" for i in range(400))
    (tmp_path / "long.txt").write_text(text, encoding="utf-8")
    (tmp_path / "short.txt").write_text("tiny ü", encoding="utf-8")
    shardstore.build([str(tmp_path / "long.txt"), str(tmp_path / "short.txt")], tokenizer=tok_path,
                     out=tmp_path / "st", workers=1, progress=False)  # fmt: skip
    sizes = read_text_bytes(Store.open(tmp_path / "st"))
    assert sizes.tolist() == [len(text.encode("utf-8")), len("tiny ü".encode())]
    assert sizes[0] > 8 * 1024  # it did arrive in several pieces


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _unit_file(store: Path) -> Path:
    found = read_units(str(store))
    assert found is not None
    name = next(u.file for u in found[1] if u.file is not None)
    return store / name


def _rewrite(path: Path, table: pa.Table, *, reseal: bool) -> None:
    """Replace a provenance file (as a hand edit would); with `reseal`, update its manifest entry to match."""
    pq.write_table(table, path, compression="zstd", write_statistics=False)
    if reseal:
        store = path.parents[1]
        m = read_manifest(store)
        name = f"provenance/{path.name}"
        files = tuple(file_info(path, name=name) if f.name == name else f for f in m.files)
        write_manifest(store, dataclasses.replace(m, files=files))


def test_store_built_before_text_sizes_says_so(built, tmp_path: Path, capsys) -> None:
    old = _copy(built[0], tmp_path / "old")
    found = read_units(str(old))
    assert found is not None
    for u in found[1]:  # what the build wrote before this column existed: `record` alone
        path = old / str(u.file)
        _rewrite(path, pq.read_table(path).drop_columns([TEXT_BYTES_COLUMN]), reseal=True)
    assert main(["verify", str(old)]) == 0  # a valid store
    capsys.readouterr()
    assert read_text_bytes(Store.open(old)) is None
    code, text, _ = _info([str(old)], capsys)
    assert code == 0
    assert [ln for ln in text.splitlines() if ln.startswith("document bytes")] == [
        "document bytes: not recorded (the store was built before shardstore recorded text sizes; rebuild it "
        "to get them)"
    ]
    info = json.loads(_info([str(old), "--json"], capsys)[1])
    assert info["doc_bytes"] is None and info["bytes_per_token"] is None
    assert info["doc_bytes_missing"].startswith("the store was built before")
    assert info["doc_lengths"]["count"] == 19  # the token statistics are still there


def test_store_without_provenance_says_so(tmp_path: Path, capsys) -> None:
    text_store(tmp_path / "st", ["one", "two"])
    code, text, _ = _info([str(tmp_path / "st")], capsys)
    assert code == 0 and "document bytes: not recorded (the store has no provenance)" in text


def _refused(store: Path, capsys, *needles: str) -> None:
    code, _, err = _info([str(store)], capsys)
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    for needle in needles:
        assert needle in err
    with pytest.raises(FormatError):
        from shardstore.store.stats import doc_lengths, text_byte_stats

        s = Store.open(store)
        text_byte_stats(s, doc_lengths(s))


def _with_sizes(table: pa.Table, sizes: np.ndarray) -> pa.Table:
    """`table` (its first len(sizes) rows) with `sizes` as its text-size column, typed as the array is."""
    column = pa.array(sizes, type=pa.int64() if sizes.dtype == np.int64 else pa.uint64())
    return table.slice(0, sizes.size).set_column(1, TEXT_BYTES_COLUMN, column)


def test_flipped_byte_is_refused(built, tmp_path: Path, capsys) -> None:
    store = _copy(built[0], tmp_path / "st")
    path = _unit_file(store)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    _refused(store, capsys, path.name, "checksum")


def test_hand_edited_sizes_are_refused(built, tmp_path: Path, capsys) -> None:
    store = _copy(built[0], tmp_path / "st")
    path = _unit_file(store)
    sizes = pq.read_table(path).column(TEXT_BYTES_COLUMN).to_numpy().copy()
    sizes[0] += 1
    _rewrite(path, _with_sizes(pq.read_table(path), sizes), reseal=False)
    _refused(store, capsys, path.name, "checksum")


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda s: s[:-1], "text sizes for the"),  # a row dropped
        (lambda s: np.where(np.arange(s.size) == 0, np.uint64(1), s), "sizes do not belong"),
        (lambda s: s.astype(np.int64), "expected uint64"),
    ],
)
def test_resealed_edits_that_cannot_be_true_are_refused(built, tmp_path: Path, capsys, edit, needle) -> None:
    """An edit that also fixes the manifest checksum passes the integrity check; the sizes must still fit."""
    store = _copy(built[0], tmp_path / "st")
    path = _unit_file(store)
    table = pq.read_table(path)
    _rewrite(path, _with_sizes(table, edit(table.column(TEXT_BYTES_COLUMN).to_numpy())), reseal=True)
    _refused(store, capsys, needle)


def test_invalid_utf8_counts_the_text_as_stored(tmp_path: Path, tok_path: Path) -> None:
    raw = b'{"text": "ok \xff\xfe end"}\n{"text": "fine"}\n'  # replaced by U+FFFD (3 bytes each) by default
    (tmp_path / "bad.jsonl").write_bytes(raw)
    shardstore.build([str(tmp_path / "bad.jsonl")], tokenizer=tok_path, out=tmp_path / "st", workers=1,
                     progress=False)  # fmt: skip
    expected = [
        len(json.loads(line.decode("utf-8", "replace"))["text"].encode()) for line in raw.splitlines()
    ]
    assert read_text_bytes(Store.open(tmp_path / "st")).tolist() == expected == [13, 4]
