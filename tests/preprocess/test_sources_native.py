"""The build's packed fast paths read exactly what the reference readers read.

- JSON Lines: the native scanner (`shardstore._native._jsonl`) packs the lines it accepts and hands every other line to
  the per-line reference path. Whatever the mix of lines, block size and ranges, the documents, their records and the
  skip counts equal those of the reference path alone (the scanner switched off).
- Parquet string columns go out as `PackedDocs` over the Arrow buffers: nulls, empty strings, row-group and batch
  boundaries, large_string and sliced arrays keep the per-row semantics and row numbers.
"""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shardstore.errors import InputError
from shardstore.preprocess import readers
from shardstore.preprocess.readers import jsonl, parquet
from shardstore.preprocess.sources import (
    PackedDocs,
    ReadOptions,
    SkipCounts,
    expand_inputs,
    iter_batches,
    iter_documents,
)

_NATIVE_SCAN = readers._native_scan


def _read(path, *, native: bool, monkeypatch, span=None, **kw):
    monkeypatch.setattr(readers, "_native_scan", _NATIVE_SCAN if native else (lambda: None))
    counts = SkipCounts()
    options = ReadOptions(**kw)
    (file,) = expand_inputs([str(path)])
    docs = [(p.text, p.record) for p in iter_documents(file, options, counts, span=span)]
    return docs, dict(counts)


_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
_SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(allow_nan=False), _TEXT
)
_VALUE = st.recursive(
    _SCALAR, lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(_TEXT, c, max_size=3)), max_leaves=6
)


@st.composite
def _line(draw) -> bytes:
    """One JSON line: mostly documents in varied spellings, and every kind of line the scanner must hand back."""
    kind = draw(st.integers(0, 24))
    text = draw(_TEXT)
    extra = draw(st.dictionaries(st.text(max_size=5).filter(lambda k: k != "text"), _VALUE, max_size=3))
    ascii_only = draw(st.booleans())
    if kind <= 9:  # a document, keys in any order, escaped or raw non-ASCII
        obj = dict(extra)
        obj["text"] = text
        items = list(obj.items())
        random.Random(draw(st.integers(0, 99))).shuffle(items)
        line = json.dumps(dict(items), ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
        pad = draw(st.sampled_from([b"", b" ", b"\t", b"\r", b" \r"]))
        return draw(st.sampled_from([b"", b" "])) + line + pad
    fixed = {
        10: b"",
        11: b"   \t",
        12: b'{"text": "a", "text": "b"}',  # duplicated field: the last one wins in both readers
        13: b'{"te\\u0078t": "escaped key"}',
        14: b'{"text": "lone \\ud800 surrogate"}',
        15: b'{"text": "low first \\udc00\\ud800"}',
        16: b'{"text": "nul \\u0000 escape"}',
        17: b'{"text": "raw \x00 nul"}',
        18: b'{"text": "bad \xff utf8"}',
        19: b'{"text": "ok", "other": "bad \xc0\xaf"}',
        20: b'{"text": NaN}',
        21: b'{"text": "x", "n": 1' + b"0" * 30 + b', "f": 1.5e999}',
        22: b'{"text": "deep", "d": ' + b"[" * 100 + b"]" * 100 + b"}",
        23: draw(
            st.sampled_from(
                [b'{"text": 01}', b'{"text": "a",}', b'["text"]', b'{"text": "a"} x', b"{", b'"s"']
            )
        ),
        24: b'{"text": "control \x01 char"}',
    }
    return fixed[kind]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(_line(), max_size=25),
    final_newline=st.booleans(),
    block=st.sampled_from([64, 200, 1 << 18]),
    pack=st.sampled_from([1, 100, 1 << 18]),
    policy=st.sampled_from(["replace", "skip"]),
)
def test_native_jsonl_equals_reference(
    tmp_path_factory, monkeypatch, lines, final_newline, block, pack, policy
):
    path = tmp_path_factory.mktemp("j") / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + (b"\n" if final_newline and lines else b""))
    monkeypatch.setattr(jsonl, "_SCAN_BLOCK", block)
    monkeypatch.setattr(jsonl, "_PACK_BYTES", pack)
    ref = _read(path, native=False, monkeypatch=monkeypatch, utf8_errors=policy)
    assert _read(path, native=True, monkeypatch=monkeypatch, utf8_errors=policy) == ref
    # Ranges partition the lines the same way on both paths (records are byte offsets there).
    size = path.stat().st_size
    cuts = sorted({0, size, size // 3, size // 2 + 1})
    spans = list(itertools.pairwise(cuts))
    for native in (False, True):
        got, counts = [], SkipCounts()
        for span in spans:
            docs, c = _read(path, native=native, monkeypatch=monkeypatch, span=span, utf8_errors=policy)
            got += docs
            counts.merge(c)
        if not native:
            ref_spans = (got, dict(counts))
        else:
            assert (got, dict(counts)) == ref_spans
    assert [t for t, _ in ref_spans[0]] == [t for t, _ in ref[0]]


def test_native_path_packs_plain_lines_and_falls_back_for_the_rest(tmp_path, monkeypatch):
    assert _NATIVE_SCAN() is not None  # the extension is built
    path = tmp_path / "mix.jsonl"
    path.write_bytes(
        b'{"text": "a\\nb\\u00e9\\ud83d\\ude00"}\n{"text": 1}\n{"id": 7, "text": "c"}\n{"text": "lone \\udc00"}\n'
    )
    (file,) = expand_inputs([str(path)])
    counts = SkipCounts()
    batches = list(iter_batches(file, ReadOptions(), counts))
    assert [type(b).__name__ for b in batches] == ["PackedDocs", "PackedDocs", "DocPiece"]
    assert [(p.text, p.record) for b in batches[:2] for p in b.pieces()] == [
        ("a\nb\u00e9\U0001f600", 0),
        ("c", 2),
    ]
    assert (batches[2].text, batches[2].record) == ("lone \ufffd", 3)
    assert dict(counts) == {"text_not_a_string": 1, "invalid_utf8_replaced": 1}


def test_fail_policy_names_the_same_record_on_both_paths(tmp_path, monkeypatch):
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"text": "ok"}\n{"text": "ok"}\n{"text": "b\xffd"}\n')
    messages = []
    for native in (False, True):
        with pytest.raises(InputError) as err:
            _read(path, native=native, monkeypatch=monkeypatch, utf8_errors="fail")
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert "record 2" in messages[0]


def test_a_line_larger_than_many_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonl, "_SCAN_BLOCK", 4096)
    big = "word " * 300_000  # 1.5 MB: the block doubles until the line fits, then reading goes on
    path = tmp_path / "big.jsonl"
    path.write_bytes(b'{"text": "a"}\n' + json.dumps({"text": big}).encode() + b'\n{"text": "z"}')
    docs, counts = _read(path, native=True, monkeypatch=monkeypatch)
    assert docs == [("a", 0), (big, 1), ("z", 2)] and counts == {}


# ----------------------------------------------------------------------------------------------- Parquet


@pytest.mark.parametrize("large", [False, True])
def test_parquet_packed_keeps_per_row_semantics(tmp_path, large):
    values = ["a", None, "", "bé", "c" * 5000, None, "", "last"] * 5
    typ = pa.large_string() if large else pa.string()
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": pa.array(values, type=typ)}), path, row_group_size=7)
    (file,) = expand_inputs([str(path)])
    counts = SkipCounts()
    batches = list(iter_batches(file, ReadOptions(), counts))
    assert batches and all(isinstance(b, PackedDocs) for b in batches)
    got = [(p.text, p.record) for b in batches for p in b.pieces()]
    assert got == [(v, i) for i, v in enumerate(values) if v]
    assert dict(counts) == {"missing_text_field": 10, "empty_document": 10}
    # A range of row groups keeps the file's row numbers.
    counts = SkipCounts()
    got = [(p.text, p.record) for p in iter_documents(file, ReadOptions(), counts, span=(2, 4))]
    assert got == [(v, i) for i, v in enumerate(values) if v and 14 <= i < 28]


def test_pack_strings_of_a_sliced_array():
    arr = pa.array(["skip", "x", None, "yz", ""])[1:]
    counts = SkipCounts()
    packed = parquet._pack_strings(arr, 100, counts)
    assert packed is not None
    assert [(p.text, p.record) for p in packed.pieces()] == [("x", 100), ("yz", 102)]
    assert packed.nbytes == 3
    assert dict(counts) == {"missing_text_field": 1, "empty_document": 1}
    assert parquet._pack_strings(pa.array([None, ""], type=pa.string()), 0, SkipCounts()) is None


def test_parquet_binary_column_takes_the_per_row_path(tmp_path):
    path = tmp_path / "b.parquet"
    pq.write_table(pa.table({"text": pa.array([b"ok", b"bad\xff", b"nul\x00"], type=pa.binary())}), path)
    (file,) = expand_inputs([str(path)])
    counts = SkipCounts()
    batches = list(iter_batches(file, ReadOptions(), counts))
    assert [(b.text, b.record) for b in batches] == [("ok", 0), ("bad\ufffd", 1)]
    assert dict(counts) == {"invalid_utf8_replaced": 1, "binary_content": 1}


def test_packed_docs_byte_count_is_utf8_bytes():
    data = bytearray("héllo wörld".encode())
    packed = PackedDocs(
        data, np.array([0, 7], np.int64), np.array([6, 13], np.int64), np.array([0, 1], np.int64)
    )
    assert len(packed) == 2 and packed.nbytes == 12
    assert [p.text for p in packed.pieces()] == ["héllo", "wörld"]


def test_scan_blocks_are_reused_only_once_nothing_holds_them(tmp_path, monkeypatch):
    """Blocks go back to a per-process spare list; one whose `PackedDocs` a caller still holds is never refilled."""
    monkeypatch.setattr(jsonl, "_SCAN_BLOCK", 1 << 12)
    monkeypatch.setattr(jsonl, "_SPARE_BLOCKS", [])
    lines = [json.dumps({"text": f"document {i} " + "x" * (i % 97)}) for i in range(400)]
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("\n".join(lines) + "\n")
    b.write_text("\n".join(reversed(lines)) + "\n")
    (fa,), (fb,) = expand_inputs([str(a)]), expand_inputs([str(b)])

    def texts(packed):
        return [p.text for p in packed.pieces()]

    held = list(iter_batches(fa, ReadOptions(), SkipCounts()))  # every block of a.jsonl stays referenced
    before = [texts(p) for p in held]
    assert sum(map(len, before)) == 400 and len({id(p.data) for p in held}) > 2
    for _ in iter_batches(fb, ReadOptions(), SkipCounts()):
        pass  # b.jsonl may only reuse blocks nobody holds
    assert [texts(p) for p in held] == before
    assert {id(p.data) for p in held}.isdisjoint(id(x) for x in jsonl._SPARE_BLOCKS)

    del held, before
    spare = {id(x) for x in jsonl._SPARE_BLOCKS}  # ids only: a reference here would pin them
    assert spare
    firsts = {id(p.data) for p in iter_batches(fb, ReadOptions(), SkipCounts())}
    assert firsts & spare  # a free block is reused, not reallocated
