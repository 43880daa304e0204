"""Document masks: encoding, reasons, fingerprints, MASKDIR lookup, and refusal of every hostile file."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardstore.errors import ConfigError, MaskError, MismatchError, ShardStoreError
from shardstore.store.mask import (
    MASK_MAGIC,
    Mask,
    find_masks,
    is_mask_dir,
    mask_file_name,
    read_mask,
    write_mask,
)
from shardstore.util.sealed import seal, unseal

FP = "a" * 64


def _mask(ids, n=1000, reasons="held out", fp=FP) -> Mask:
    return Mask.build(store_fingerprint=fp, num_docs=n, ids=ids, reasons=reasons)


def test_roundtrip_ids_encoding(tmp_path):
    m = _mask([5, 1, 900, 5], reasons="duplicate")
    assert m.encoding == "ids" and m.num_excluded == 3
    assert m.excluded_ids().tolist() == [1, 5, 900]
    write_mask(tmp_path / "m.mask", m)
    back = read_mask(tmp_path / "m.mask")
    assert back.excluded_ids().tolist() == [1, 5, 900]
    assert back.fingerprint == m.fingerprint and back.reason(5) == "duplicate" and back.reason(6) is None
    assert back.store_fingerprint == FP and back.num_docs == 1000


def test_smaller_encoding_is_chosen():
    n = 10_000
    few = _mask(np.arange(0, n, 100), n=n)  # 100 ids x 4 bytes = 400 < 1250 bitmap bytes
    many = _mask(np.arange(0, n, 3), n=n)  # 3334 x 4 > 1250
    assert few.encoding == "ids" and few.nbytes == 400
    assert many.encoding == "bitmap" and many.nbytes == (n + 7) // 8
    assert read_mask_bytes(many).excluded_ids().tolist() == list(range(0, n, 3))
    assert all(many.is_excluded(i) == (i % 3 == 0) for i in range(0, n, 7))


def read_mask_bytes(m: Mask) -> Mask:
    return Mask.from_bytes(m.to_bytes(), source="test")


def test_per_document_reasons():
    m = _mask([7, 3, 9, 3], reasons=["dup of S doc 1", "eval E item 2", "dup of S doc 1", "ignored repeat"])
    back = read_mask_bytes(m)
    assert back.reason(3) == "eval E item 2"  # the first occurrence of an id keeps its reason
    assert back.reason(7) == "dup of S doc 1" and back.reason(9) == "dup of S doc 1"
    assert back.reasons == ("dup of S doc 1", "eval E item 2")  # "ignored repeat" is used by no kept id
    assert back.reason_counts() == {"dup of S doc 1": 2, "eval E item 2": 1}
    assert back.reasons_of_excluded() == ["eval E item 2", "dup of S doc 1", "dup of S doc 1"]


def test_per_document_reasons_in_a_bitmap():
    n = 64
    ids = list(range(0, n, 2))
    reasons = [f"r{i % 3}" for i in ids]
    back = read_mask_bytes(_mask(ids, n=n, reasons=reasons))
    assert back.encoding == "bitmap"
    assert [back.reason(i) for i in ids] == reasons


def test_fingerprint_is_content():
    a = _mask([1, 2, 3])
    assert a.fingerprint == _mask([3, 2, 1, 1]).fingerprint
    assert a.fingerprint != _mask([1, 2, 4]).fingerprint
    assert a.fingerprint != _mask([1, 2, 3], reasons="other").fingerprint
    assert a.fingerprint != _mask([1, 2, 3], fp="b" * 64).fingerprint
    assert a.fingerprint != _mask([1, 2, 3], n=1001).fingerprint


def test_empty_mask():
    m = read_mask_bytes(_mask([], reasons="none"))
    assert m.num_excluded == 0 and m.reasons == () and m.excluded_ids().size == 0


def test_union_keeps_first_reason():
    u = Mask.union([_mask([1, 2], reasons="first"), _mask([2, 3], reasons="second")])
    assert u.excluded_ids().tolist() == [1, 2, 3]
    assert [u.reason(i) for i in (1, 2, 3)] == ["first", "first", "second"]
    with pytest.raises(MismatchError):
        Mask.union([_mask([1]), _mask([1], fp="b" * 64)])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ids": [1000]}, "outside"),
        ({"ids": [-1]}, "outside"),
        ({"ids": [1.5]}, "integers"),
        ({"ids": [1, 2], "reasons": ["a"]}, "2 ids"),
        ({"store_fingerprint": ""}, "store_fingerprint"),
        ({"num_docs": -1}, "num_docs"),
    ],
)
def test_build_refuses_bad_arguments(kwargs, match):
    args = {"store_fingerprint": FP, "num_docs": 1000, "ids": [1], "reasons": "r"} | kwargs
    with pytest.raises(ConfigError, match=match):
        Mask.build(**args)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3000), st.data())
def test_roundtrip_property(n, data):
    ids = data.draw(st.lists(st.integers(0, n - 1), max_size=400))
    per_doc = data.draw(st.booleans())
    reasons = [f"r{i % 5}" for i in ids] if per_doc else "one"
    m = _mask(ids, n=n, reasons=reasons)
    back = read_mask_bytes(m)
    assert back.excluded_ids().tolist() == sorted(set(ids))
    assert back.to_bytes() == m.to_bytes()
    first = {}
    for i, r in zip(ids, reasons if per_doc else ["one"] * len(ids), strict=True):
        first.setdefault(i, r)
    assert {i: back.reason(i) for i in first} == first
    assert back.nbytes <= min(len(set(ids)) * 4, (n + 7) // 8) + len(set(ids)) * (1 if per_doc else 0)


# -- hostile files --------------------------------------------------------------------------------------------------


def _forge(header_changes: dict, body: bytes | None = None, base: Mask | None = None) -> bytes:
    """A mask file whose header is changed and re-sealed (checksums valid): only validation can refuse it."""
    import xxhash

    data = (base or _mask([1, 5, 9])).to_bytes()
    _, hlen = struct.unpack_from("<8sI", data)
    header = unseal(data[12 : 12 + hlen])
    old_body = data[12 + hlen :]
    body = old_body if body is None else body
    header = (
        dict(header) | {"body_bytes": len(body), "body_xxh3": xxhash.xxh3_64_hexdigest(body)} | header_changes
    )
    new = seal(header)
    return MASK_MAGIC + struct.pack("<I", len(new)) + new + body


def test_every_truncation_is_refused():
    data = _mask([1, 5, 9], reasons=["a", "b", "a"]).to_bytes()
    for cut in range(len(data)):
        with pytest.raises(MaskError):
            Mask.from_bytes(data[:cut])
    with pytest.raises(MaskError, match="body"):
        Mask.from_bytes(data + b"\x00")


def test_every_bit_flip_is_refused():
    for m in (_mask([1, 5, 9], reasons=["a", "b", "a"]), _mask(range(0, 64, 2), n=64)):
        data = m.to_bytes()
        for pos in range(len(data)):
            for bit in range(8):
                bad = bytearray(data)
                bad[pos] ^= 1 << bit
                with pytest.raises(MaskError):
                    Mask.from_bytes(bytes(bad))


def test_out_of_range_ids_with_valid_checksums_are_refused():
    body = struct.pack("<3I", 1, 5, 1000)
    with pytest.raises(MaskError, match="1000 is outside"):
        Mask.from_bytes(_forge({}, body))
    with pytest.raises(MaskError, match="sorted"):
        Mask.from_bytes(_forge({}, struct.pack("<3I", 5, 1, 9)))
    with pytest.raises(MaskError, match="sorted"):
        Mask.from_bytes(_forge({}, struct.pack("<3I", 1, 1, 9)))


def test_hostile_headers_are_refused():
    cases = [
        ({"num_excluded": 2}, "need"),
        ({"num_excluded": 5000}, "num_excluded"),
        ({"num_docs": 5}, "outside"),
        ({"num_docs": -1}, "num_docs"),
        ({"num_docs": True}, "num_docs"),
        ({"encoding": "rle"}, "encoding"),
        ({"id_width": 8}, "id_width"),
        ({"version": 2}, "version"),
        ({"reasons": ["a", "a"]}, "distinct"),
        ({"reasons": []}, "present"),
        ({"store_fingerprint": 3}, "store_fingerprint"),
        ({"extra": 1}, "keys"),
    ]
    for change, match in cases:
        with pytest.raises(MaskError, match=match):
            Mask.from_bytes(_forge(change))


def test_bitmap_bits_past_the_store_are_refused():
    base = _mask(range(0, 12, 2), n=12)  # bitmap of 2 bytes, bits 12..15 unused
    assert base.encoding == "bitmap"
    body = bytearray(base.to_bytes()[-2:])
    body[1] |= 0x80
    with pytest.raises(MaskError, match="past"):
        Mask.from_bytes(_forge({"num_excluded": 7}, bytes(body), base=base))
    with pytest.raises(MaskError, match="holds 6"):
        Mask.from_bytes(_forge({"num_excluded": 5}, base=base))


def test_reason_index_outside_the_table_is_refused():
    base = _mask([1, 2], reasons=["a", "b"])
    body = base.to_bytes()[-10:-2] + bytes([0, 7])
    with pytest.raises(MaskError, match="reason index"):
        Mask.from_bytes(_forge({}, body, base=base))


def test_not_a_mask():
    with pytest.raises(MaskError, match="magic"):
        Mask.from_bytes(b"PK\x03\x04" + b"\x00" * 100)


def test_wrong_store_is_refused(tmp_path):
    write_mask(tmp_path / "m.mask", _mask([1]))
    with pytest.raises(MismatchError, match=r"m\.mask"):
        read_mask(tmp_path / "m.mask", store_fingerprint="b" * 64)
    with pytest.raises(MismatchError, match="1001 docs"):
        read_mask(tmp_path / "m.mask", store_fingerprint=FP, num_docs=1001)
    assert issubclass(MaskError, ShardStoreError)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such mask"):
        read_mask(tmp_path / "nope.mask")


# -- MASKDIR and URLs -----------------------------------------------------------------------------------------------


def test_maskdir_picks_the_store_mask(tmp_path):
    d = tmp_path / "masks"
    d.mkdir()
    a, b = _mask([1], fp="a" * 64), _mask([2, 3], fp="b" * 64)
    write_mask(d / mask_file_name("a" * 64), a)
    write_mask(d / mask_file_name("b" * 64), b)
    assert is_mask_dir(d) and not is_mask_dir(d / mask_file_name("a" * 64))
    [(path, got)] = find_masks(d, "b" * 64, 1000)
    assert path.endswith("b" * 64 + ".mask") and got.excluded_ids().tolist() == [2, 3]
    assert find_masks(d, "c" * 64, 1000) == []  # nothing excluded for a store without a mask there
    [(_, direct)] = find_masks(d / mask_file_name("a" * 64), "a" * 64, 1000)
    assert direct.fingerprint == a.fingerprint
    with pytest.raises(MismatchError):
        find_masks(d / mask_file_name("a" * 64), "b" * 64, 1000)
    with pytest.raises(ConfigError, match="no such"):
        find_masks(tmp_path / "missing", "a" * 64, 1000)


def test_read_by_url(tmp_path):
    import fsspec

    m = _mask([4, 2])
    write_mask(tmp_path / "m.mask", m)
    assert read_mask(f"file://{tmp_path}/m.mask").fingerprint == m.fingerprint
    fs = fsspec.filesystem("memory")
    fs.pipe("/maskdir/" + mask_file_name(FP), m.to_bytes())
    [(url, got)] = find_masks("memory://maskdir", FP, 1000)
    assert url == "memory://maskdir/" + mask_file_name(FP) and got.fingerprint == m.fingerprint
    fs.pipe("/maskdir/bad.mask", m.to_bytes()[:-1])
    with pytest.raises(MaskError, match=r"memory://maskdir/bad\.mask"):
        read_mask("memory://maskdir/bad.mask")
