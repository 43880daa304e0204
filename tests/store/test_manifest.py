"""Manifest: canonical bytes, fingerprint, and rejection of hostile or corrupt manifests before anything is read."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from test_store_util import write_store

from shardstore.errors import ManifestError
from shardstore.store import format as fmt
from shardstore.store.manifest import Manifest, ShardInfo, TokenizerInfo, _canonical, read_manifest
from shardstore.store.store import Store

TOK = TokenizerInfo(
    fingerprint="tok-fp-1", vocab_size=50_000, special_ids={"<|endoftext|>": 49_999}, eos_id=49_999
)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("m")
    docs = [np.arange(n, dtype=np.uint16) for n in (300, 0, 5000, 17, 2500)]
    write_store(root, docs, max_shard_bytes=8192, tokenizer=TOK, aux_files={"notes.txt": b"hello"})
    return root


def _obj(store_dir) -> dict:
    return json.loads((store_dir / "manifest.json").read_bytes())


def _seal(obj: dict) -> bytes:
    """Canonical bytes with a correct manifest_checksum, so only the validation rules can reject `obj`."""
    obj = {k: v for k, v in obj.items() if k != "manifest_checksum"}
    obj["manifest_checksum"] = f"{fmt.checksum_bytes(_canonical(obj)):016x}"
    return _canonical(obj)


def test_roundtrip_and_golden_fingerprint(store_dir):
    data = (store_dir / "manifest.json").read_bytes()
    m = Manifest.from_json_bytes(data, source="m")
    assert m.to_json_bytes() == data and read_manifest(store_dir) == m
    assert (m.num_tokens, m.num_docs, len(m.shards)) == (7817, 5, 4)
    assert m.tokenizer == TOK and m.file("notes.txt").size == 5
    assert m.fingerprint == "dfd43c47d26fe3b1891987b7264902ef636ca33c07634eb1756ff0bf41202d0e"
    # manifest v2 (header_checksum per shard): new bytes, the same fingerprint as v1 (139fc0d7cb1065bc)
    assert hashlib.sha256(data).hexdigest()[:16] == "e51cdeff1b9e6bcf"


def test_byte_identical_across_builds(tmp_path):
    docs = [np.arange(n, dtype=np.uint16) for n in (10, 20, 30)]
    write_store(tmp_path / "a", docs, provenance={"inputs": ["x.txt"], "options": {"k": 1}})
    write_store(tmp_path / "b", docs, provenance={"options": {"k": 1}, "inputs": ["x.txt"]})
    assert (tmp_path / "a/manifest.json").read_bytes() == (tmp_path / "b/manifest.json").read_bytes()


def test_fingerprint_follows_bytes_not_names(tmp_path):
    docs = [np.arange(n, dtype=np.uint16) for n in (10, 20, 30)]
    a = write_store(tmp_path / "a", docs, name_prefix="a-")
    b = write_store(tmp_path / "b", docs, name_prefix="b-")
    c = write_store(tmp_path / "c", [*docs[:2], np.arange(1, 31, dtype=np.uint16)])
    d = write_store(tmp_path / "d", docs, tokenizer=TOK)
    assert a.fingerprint == b.fingerprint
    assert len({a.fingerprint, c.fingerprint, d.fingerprint}) == 3


def test_every_bit_flip_in_the_manifest_is_rejected(store_dir):
    data = (store_dir / "manifest.json").read_bytes()
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ManifestError, match=r"where.json"):
            Manifest.from_json_bytes(bytes(flipped), source="where.json")


def _shard(obj, **kw):
    obj["shards"][0].update(kw)
    return obj


HOSTILE = {
    "dotdot": (lambda o: _shard(o, name="../escape.shard"), "not allowed"),
    "dotdot-inner": (lambda o: _shard(o, name="a/../../b.shard"), "not allowed"),
    "absolute": (lambda o: _shard(o, name="/etc/passwd"), "not allowed"),
    "backslash": (lambda o: _shard(o, name="..\\x.shard"), "not allowed"),
    "empty-name": (lambda o: _shard(o, name=""), "not allowed"),
    "hidden": (lambda o: _shard(o, name=".x"), "not allowed"),
    "name-type": (lambda o: _shard(o, name=7), "must be a string"),
    "negative": (lambda o: _shard(o, num_tokens=-1), "outside"),
    "absurd": (lambda o: _shard(o, num_tokens=10**15), "outside"),
    "float": (lambda o: _shard(o, num_docs=2.0), "must be an integer"),
    "bool": (lambda o: _shard(o, num_docs=True), "must be an integer"),
    "string-count": (lambda o: _shard(o, num_tokens="5"), "must be an integer"),
    "size-mismatch": (lambda o: _shard(o, size=o["shards"][0]["size"] * 1000), "impossible"),
    "checksum": (lambda o: _shard(o, checksum="XYZ"), "hex"),
    "extra-key": (lambda o: _shard(o, evil=1), "unknown keys"),
    "duplicate": (lambda o: o["shards"].append(dict(o["shards"][0])) or o, "duplicate"),
    "reserved": (lambda o: _shard(o, name="manifest.json"), "reserved"),
    "totals": (lambda o: o.update(num_tokens=o["num_tokens"] + 1) or o, "disagrees"),
    "shards-type": (lambda o: o.update(shards={"a": 1}) or o, "must be JSON lists"),
    "dtype": (lambda o: o.update(dtype="int64") or o, "dtype"),
    "version": (lambda o: o.update(format_version=99) or o, "version"),
    "missing": (lambda o: o.pop("dtype") and o, "missing keys"),
    "file-dotdot": (lambda o: o["files"][0].update(name="../../x") or o, "not allowed"),
    "fingerprint": (lambda o: o.update(fingerprint="0" * 64) or o, "fingerprint"),
    "special-type": (lambda o: o["tokenizer"].update(special_ids=[1]) or o, "special_ids"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_manifest_is_rejected_before_reading_shards(store_dir, tmp_path, case):
    mutate, match = HOSTILE[case]
    data = _seal(mutate(_obj(store_dir)))
    with pytest.raises(ManifestError, match=match):
        Manifest.from_json_bytes(data, source="m.json")
    (tmp_path / "manifest.json").write_bytes(data)  # no shard files at all: nothing may be read
    with pytest.raises(ManifestError, match=r"manifest.json"):
        Store.open(tmp_path)


@pytest.mark.parametrize(
    "data",
    [b"", b"[]", b"\xff\xfe", b'{"a": NaN}', b"[" * 100_000, b'{"manifest_checksum": "0"}'],
    ids=["empty", "list", "binary", "nan", "deep", "bare"],
)
def test_garbage_is_a_manifest_error(data):
    with pytest.raises(ManifestError, match=r"g.json"):
        Manifest.from_json_bytes(data, source="g.json")


def test_non_canonical_manifest_is_rejected(store_dir):
    obj = _obj(store_dir)
    data = (json.dumps(obj, sort_keys=True, indent=1) + "\n").encode()
    with pytest.raises(ManifestError, match="canonical"):
        Manifest.from_json_bytes(data, source="m.json")


def test_constructor_validates():
    good = ShardInfo(name="a.shard", num_tokens=1, num_docs=1, size=4096 + 2 + 6 + 16 + 8, checksum="0" * 16)
    Manifest(dtype="uint16", shards=[good])
    Manifest(dtype=np.uint16, shards=[good])
    with pytest.raises(ManifestError):
        Manifest(dtype="uint16", shards=[good, good])
    with pytest.raises(ManifestError):
        Manifest(dtype="float32", shards=[good])
    with pytest.raises(ManifestError):
        Manifest(dtype="uint16", shards=[good], provenance={"t": float("nan")})
