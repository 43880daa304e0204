"""Issue 17 case 4: inputs are identified by content, not size. Each unit records the xxh3-64 of the bytes it read
(computed while reading); a re-run over an input edited in place without changing its size (a real `sed -i`)
refuses and lists the file, or with `rebuild_changed` rebuilds exactly the changed units; a size change is named
as a changed input, not as "different build options"; report and manifest provenance carry the fingerprints."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import xxhash
from test_build_support import snapshot, text_of, train_tokenizer, write_corpus

import shardstore
from shardstore import Store
from shardstore.errors import BuildError
from shardstore.util.sealed import canonical_json


def _build(inputs, tok, out, **kw):
    kw.setdefault("workers", 1)
    return shardstore.build([str(inputs)], tokenizer=tok, out=out, progress=False, **kw)


@pytest.fixture
def setup(tmp_path):
    tok = train_tokenizer(tmp_path / "tok.json")
    inputs = tmp_path / "in"
    write_corpus(inputs, n_files=5, docs_per_file=30)
    return tok, inputs


def test_fingerprints_are_recorded_in_journal_units_report_and_manifest(setup, tmp_path):
    tok, inputs = setup
    out = tmp_path / "st"
    report = _build(inputs, tok, out)
    units = json.loads((out / "provenance" / "units.json").read_bytes())["units"]
    for entry in units:
        raw = Path(entry["url"]).read_bytes()
        assert entry["input"] == {
            "url": entry["url"],
            "size": len(raw),
            "range": [0, len(raw)],
            "span": None,
            "xxh3_64": xxhash.xxh3_64_hexdigest(raw),  # the raw (still compressed) bytes, parquet included
        }
    assert report.inputs == [u["input"] for u in units]
    assert json.loads((out / "build_report.json").read_bytes())["inputs"] == report.inputs
    with Store.open(out) as store:
        digest = store.manifest.provenance["inputs_xxh3_64"]
    assert digest == xxhash.xxh3_64_hexdigest(canonical_json([u["input"] for u in units]))


def test_same_size_edit_is_refused_then_rebuilt_exactly(setup, tmp_path):
    tok, inputs = setup
    out = tmp_path / "st"
    _build(inputs, tok, out)
    target = inputs / "part-000.jsonl"
    size = target.stat().st_size
    subprocess.run(["sed", "-i", "s/the/THE/g", str(target)], check=True)  # same size, new bytes
    assert target.stat().st_size == size
    cmd = [sys.executable, "-m", "shardstore", "build", str(inputs), "--tokenizer", str(tok), "--out", str(out),
           "--workers", "1", "--no-progress"]  # fmt: skip
    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
    assert "1 input file(s) changed since their units were built" in refused.stderr
    assert str(target) in refused.stderr and "--rebuild-changed" in refused.stderr
    rebuilt = subprocess.run([*cmd, "--rebuild-changed"], capture_output=True, text=True, timeout=120)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "(1 of 5 units run now" in rebuilt.stdout
    _build(inputs, tok, tmp_path / "clean")
    assert snapshot(out) == snapshot(tmp_path / "clean")
    assert _build(inputs, tok, out).nothing_to_do


def test_touch_without_change_is_not_a_change(setup, tmp_path):
    tok, inputs = setup
    out = tmp_path / "st"
    _build(inputs, tok, out)
    os.utime(inputs / "part-001.jsonl.gz", ns=(1, 1))  # stat differs: the range is hashed again, and matches
    assert _build(inputs, tok, out).nothing_to_do


def test_size_change_is_named_as_a_changed_input(setup, tmp_path):
    tok, inputs = setup
    out = tmp_path / "st"
    _build(inputs, tok, out)
    with open(inputs / "part-004.txt", "a") as f:
        f.write(" and more")
    with pytest.raises(BuildError, match=r"input file\(s\) changed .*part-004\.txt") as info:
        _build(inputs, tok, out)
    assert "different build options" not in str(info.value)
    assert _build(inputs, tok, out, rebuild_changed=True).units_run == 1
    _build(inputs, tok, tmp_path / "clean")
    assert snapshot(out) == snapshot(tmp_path / "clean")


def test_byte_ranges_of_one_file_rebuild_only_the_edited_range(tmp_path):
    """A JSON Lines file cut into 16 KiB ranges: a same-size edit inside one range changes that unit only
    (the fingerprint stops at the end of the range's last line, not at the reader's read-ahead)."""
    tok = train_tokenizer(tmp_path / "tok.json")
    rng = random.Random(3)
    inputs = tmp_path / "in"
    inputs.mkdir()
    lines = [json.dumps({"text": text_of(rng, rng.randint(10, 60))}) + "\n" for _ in range(1200)]
    (inputs / "big.jsonl").write_text("".join(lines))
    out = tmp_path / "st"
    first = _build(inputs, tok, out, unit_bytes=16 << 10)
    assert first.num_units >= 8
    data = bytearray((inputs / "big.jsonl").read_bytes())
    mid = 5 * (16 << 10) + (8 << 10)  # the middle of unit 5
    pos = data.index(b'"text": "', mid) + 9
    data[pos] = ord("X") if data[pos] != ord("X") else ord("Y")
    (inputs / "big.jsonl").write_bytes(bytes(data))
    with pytest.raises(BuildError, match=r"big\.jsonl \(1 units\)"):
        _build(inputs, tok, out, unit_bytes=16 << 10)
    again = _build(inputs, tok, out, unit_bytes=16 << 10, rebuild_changed=True)
    assert again.units_run == 1
    _build(inputs, tok, tmp_path / "clean", unit_bytes=16 << 10)
    assert snapshot(out) == snapshot(tmp_path / "clean")


def test_s3_input_edited_in_place_is_found_by_its_etag(tmp_path, s3_server, setup):
    import fsspec

    tok, inputs = setup
    bucket = s3_server.new_bucket()
    fs = fsspec.filesystem("s3", **s3_server.storage_options)
    data = (inputs / "part-000.jsonl").read_bytes()
    fs.pipe(f"{bucket}/c/a.jsonl", data)
    url, opts = f"s3://{bucket}/c", s3_server.storage_options
    out = tmp_path / "st"
    _build(url, tok, out, storage_options=opts)
    assert _build(url, tok, out, storage_options=opts).nothing_to_do  # same ETag: nothing fetched again
    fs.pipe(f"{bucket}/c/a.jsonl", data.replace(b"the", b"THE"))  # same size, new bytes, new ETag
    with pytest.raises(BuildError, match=r"changed since their units were built: s3://.*/a\.jsonl"):
        _build(url, tok, out, storage_options=opts)
    assert _build(url, tok, out, storage_options=opts, rebuild_changed=True).units_run == 1
