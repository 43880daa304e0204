"""Input readers: formats, expansion order, URLs (file:// and S3 on moto), and every bad-input policy."""

from __future__ import annotations

import gzip
import itertools
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from shardstore.errors import ConfigError, InputError
from shardstore.preprocess.readers import streams as readers
from shardstore.preprocess.sources import (
    ReadOptions,
    SkipCounts,
    expand_inputs,
    iter_documents,
    iter_texts,
)


def _jsonl(rows: list[object]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def _docs(path: str, **kw: object) -> tuple[list[tuple[str, int]], dict[str, int]]:
    counts = SkipCounts()
    options = ReadOptions(**kw)  # type: ignore[arg-type]
    out = []
    for f in expand_inputs([path]):
        out.extend((p.text, p.record) for p in iter_documents(f, options, counts))
    return out, dict(counts)


@pytest.fixture
def corpus(tmp_path):
    d = tmp_path / "corpus"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("whole file one")
    (d / "b.jsonl").write_bytes(_jsonl([{"text": "j0"}, {"text": "j1", "x": 1}]))
    (d / "c.jsonl.gz").write_bytes(gzip.compress(_jsonl([{"text": "g0"}])))
    (d / "sub" / "d.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(_jsonl([{"text": "z0"}])))
    pq.write_table(pa.table({"text": ["p0", "p1"], "n": [1, 2]}), d / "e.parquet")
    (d / "README.md").write_text("not an input")
    (d / ".hidden.txt").write_text("hidden files are ignored")
    return d


def test_directory_expansion_order_and_all_formats(corpus):
    files = expand_inputs([str(corpus)])
    names = [os.path.relpath(f.url, corpus) for f in files]
    assert names == ["a.txt", "b.jsonl", "c.jsonl.gz", "e.parquet", "sub/d.jsonl.zst"]
    assert list(iter_texts([str(corpus)])) == ["whole file one", "j0", "j1", "g0", "p0", "p1", "z0"]


def test_glob_and_duplicates_keep_first_position(corpus):
    files = expand_inputs([str(corpus / "*.jsonl*"), str(corpus / "b.jsonl"), str(corpus / "a.txt")])
    assert [os.path.basename(f.url) for f in files] == ["b.jsonl", "c.jsonl.gz", "a.txt"]


def test_missing_and_unsupported_inputs_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        expand_inputs([str(tmp_path / "nope.jsonl")])
    (tmp_path / "x.csv").write_text("a,b")
    with pytest.raises(InputError, match="unsupported suffix"):
        expand_inputs([str(tmp_path / "x.csv")])
    with pytest.raises(InputError, match="matches no supported file"):
        expand_inputs([str(tmp_path / "*.jsonl")])
    with pytest.raises(ConfigError, match="utf8_errors"):
        ReadOptions(utf8_errors="ignore")  # type: ignore[arg-type]


def test_text_field_and_parquet_column(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_bytes(_jsonl([{"body": "b0"}, {"text": "t1"}]))
    assert _docs(str(p), text_field="body") == ([("b0", 0)], {"missing_text_field": 1})
    q = tmp_path / "a.parquet"
    pq.write_table(pa.table({"content": ["c0", None, ""], "other": [1, 2, 3]}), q)
    assert _docs(str(q), text_field="content") == (
        [("c0", 0)],
        {"missing_text_field": 1, "empty_document": 1},
    )
    with pytest.raises(InputError, match=r"no column 'text'.*content"):
        _docs(str(q))


def test_split_on_records_parts(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("one\n\ntwo\n\n\n\nfour\n\n")
    assert _docs(str(p), split_on="\n\n") == ([("one", 0), ("two", 1), ("four", 3)], {"empty_document": 1})


def test_bad_json_lines_are_counted_not_fatal(tmp_path):
    p = tmp_path / "bad.jsonl"
    lines = [
        b'{"text": "ok0"}',
        b"",
        b"{not json",
        b'{"other": 1}',
        b'{"text": ""}',
        b'{"text": 5}',
        b"[1, 2]",
        b'{"text": "nul\x00byte"}',
        b'{"text": "ok8"}',
    ]
    p.write_bytes(b"\n".join(lines) + b"\n")
    docs, counts = _docs(str(p))
    assert docs == [("ok0", 0), ("ok8", 8)]
    assert counts == {
        "blank_line": 1,
        "malformed_json": 1,
        "missing_text_field": 1,
        "empty_document": 1,
        "text_not_a_string": 1,
        "json_not_an_object": 1,
        "binary_content": 1,
    }


@pytest.mark.parametrize(
    ("policy", "expected_docs", "expected_counts"),
    [
        ("replace", [("a\ufffdb", 0), ("ok", 1), ("\ufffd lone", 2)], {"invalid_utf8_replaced": 2}),
        ("skip", [("ok", 1)], {"invalid_utf8": 2}),
    ],
)
def test_invalid_utf8_policies_jsonl(tmp_path, policy, expected_docs, expected_counts):
    p = tmp_path / "u.jsonl"
    p.write_bytes(b'{"text": "a\xffb"}\n{"text": "ok"}\n{"text": "\\ud800 lone"}\n')
    assert _docs(str(p), utf8_errors=policy) == (expected_docs, expected_counts)


def test_invalid_utf8_fail_names_file_and_offset(tmp_path):
    p = tmp_path / "u.txt"
    p.write_bytes(b"fine text \xc3\x28 more")
    with pytest.raises(InputError, match=r"u\.txt: invalid UTF-8 in record 0 at byte 10"):
        _docs(str(p), utf8_errors="fail")
    assert _docs(str(p)) == ([("fine text \ufffd( more", 0)], {"invalid_utf8_replaced": 1})
    assert _docs(str(p), utf8_errors="skip") == ([], {"invalid_utf8": 1})


def test_real_replacement_characters_are_not_counted_as_invalid(tmp_path):
    p = tmp_path / "r.txt"
    p.write_text("already \ufffd replaced", encoding="utf-8")
    assert _docs(str(p)) == ([("already \ufffd replaced", 0)], {})


def test_binary_junk_and_empty_files(tmp_path):
    (tmp_path / "junk.txt").write_bytes(bytes(range(256)) * 10)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "junk.jsonl").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe garbage\n")
    docs, counts = _docs(str(tmp_path))
    assert docs == []
    assert counts == {"empty_document": 1, "binary_content": 1, "malformed_json": 3}
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 definitely not parquet")
    with pytest.raises(InputError, match=r"junk\.parquet: not a readable Parquet file"):
        _docs(str(tmp_path / "junk.parquet"))


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst"])
def test_truncated_compressed_file_raises_naming_it(tmp_path, suffix):
    data = _jsonl([{"text": f"document number {i} " * 20} for i in range(40_000)])  # several read blocks
    blob = gzip.compress(data) if suffix.endswith("gz") else zstandard.ZstdCompressor().compress(data)
    p = tmp_path / f"t{suffix}"
    p.write_bytes(blob[: len(blob) // 2])
    got = []
    with pytest.raises(InputError, match=rf"t{suffix.replace('.', '[.]')}: .*(truncated|ended)"):
        for piece in iter_documents(expand_inputs([str(p)])[0], ReadOptions(), SkipCounts()):
            got.append(piece.text)
    assert 0 < len(got) < 40_000


@pytest.fixture(params=["isal", "stdlib"])
def gzip_impl(request, monkeypatch):
    """Both gzip decoders: ISA-L's (`isal.igzip`, installed with shardstore) and the standard library's fallback."""
    if request.param == "stdlib":
        monkeypatch.setattr(readers, "_gzip_module", lambda: gzip)
    assert readers._gzip_module().__name__ == {"isal": "isal.igzip", "stdlib": "gzip"}[request.param]
    return request.param


def test_gzip_decoders_read_the_same_and_reject_the_same(tmp_path, gzip_impl):
    docs = [{"text": f"document {i} " * (i % 50 + 1)} for i in range(30_000)]
    whole = gzip.compress(_jsonl(docs[:20_000]), mtime=0) + gzip.compress(_jsonl(docs[20_000:]), mtime=0)
    good = tmp_path / "good.jsonl.gz"
    good.write_bytes(whole)  # two members, several read blocks
    assert list(iter_texts([str(good)])) == [d["text"] for d in docs]

    def read(name, blob):
        p = tmp_path / name
        p.write_bytes(blob)
        got = []
        with pytest.raises(InputError) as err:
            for piece in iter_documents(expand_inputs([str(p)])[0], ReadOptions(), SkipCounts()):
                got.append(piece.text)
        assert name in str(err.value)
        return str(err.value), got

    message, got = read("cut.jsonl.gz", whole[: len(whole) // 2])
    assert "ended" in message and 0 < len(got) < 30_000 and got == [d["text"] for d in docs[: len(got)]]
    deflate = bytearray(whole)
    deflate[10] = 0xFF  # the first deflate block header: an invalid block type
    message, got = read("deflate.jsonl.gz", bytes(deflate))
    assert "cannot read to the end" in message and got == []
    crc = bytearray(whole)
    crc[-6] ^= 1  # the second member's CRC-32
    message, got = read("crc.jsonl.gz", bytes(crc))
    assert "CRC" in message and len(got) >= 20_000


def test_zstd_multiple_frames(tmp_path):
    c = zstandard.ZstdCompressor()
    p = tmp_path / "m.jsonl.zst"
    p.write_bytes(c.compress(_jsonl([{"text": "f0"}])) + c.compress(_jsonl([{"text": "f1"}])))
    assert list(iter_texts([str(p)])) == ["f0", "f1"]


def test_huge_text_is_streamed_in_safe_pieces(tmp_path):
    text = ("Alpha beta, gamma  delta!\n 12345 épsilon's  " * 400).strip()
    p = tmp_path / "big.txt"
    p.write_text(text)
    pieces = list(iter_documents(expand_inputs([str(p)])[0], ReadOptions(piece_chars=1024), SkipCounts()))
    assert len(pieces) > 5
    assert [x.last for x in pieces] == [False] * (len(pieces) - 1) + [True]
    assert "".join(x.text for x in pieces) == text
    for a, b in itertools.pairwise(pieces):
        assert a.text[-1].isascii() and a.text[-1].isalpha()
        assert b.text[0] == " " and b.text[1].isascii() and b.text[1].isalpha()
    assert list(iter_texts([str(p)])) == [text]


def test_file_url_input(corpus):
    url = f"file://{corpus}"
    files = expand_inputs([url])
    assert all(f.url.startswith("file://") for f in files)
    assert list(iter_texts([url])) == ["whole file one", "j0", "j1", "g0", "p0", "p1", "z0"]


def test_s3_url_input(s3_server, corpus):
    import fsspec

    bucket = s3_server.new_bucket()
    opts = s3_server.storage_options
    fs = fsspec.filesystem("s3", **opts)
    for name in ("b.jsonl", "c.jsonl.gz", "e.parquet", "a.txt"):
        fs.pipe(f"{bucket}/data/{name}", (corpus / name).read_bytes())
    texts = list(iter_texts([f"s3://{bucket}/data"], storage_options=opts))
    assert texts == ["whole file one", "j0", "j1", "g0", "p0", "p1"]
    files = expand_inputs([f"s3://{bucket}/data/*.jsonl*"], storage_options=opts)
    assert [f.url for f in files] == [f"s3://{bucket}/data/b.jsonl", f"s3://{bucket}/data/c.jsonl.gz"]


def test_split_on_separator_straddling_read_blocks(tmp_path):
    block = 1 << 20  # the readers' block size
    first = b"a" * (block - 1)
    p = tmp_path / "s.txt"
    p.write_bytes(first + b"\n\n" + b"b" * (3 * block) + b"\n\nc")
    docs, counts = _docs(str(p), split_on="\n\n")
    assert [(len(t), r) for t, r in docs] == [(block - 1, 0), (3 * block, 1), (1, 2)] and counts == {}
