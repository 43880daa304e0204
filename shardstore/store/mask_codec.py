"""The bytes of a mask file (layout in `shardstore.store.mask` and docs/masks.md): encode, and decode with every
check done before anything is used. Pure functions over bytes and numpy arrays; `Mask` is built on them."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import xxhash

from shardstore.errors import MaskError
from shardstore.util.sealed import seal, unseal

__all__ = [
    "MASK_MAGIC",
    "MASK_VERSION",
    "MAX_DOCS",
    "Decoded",
    "decode",
    "encode",
    "id_width",
    "reason_width",
]

MASK_MAGIC = b"SSMASK\x00\x01"
MASK_VERSION = 1
MAX_DOCS = 1 << 62
PREFIX = struct.Struct("<8sI")
_MAX_HEADER = 64 << 20
_HEADER_KEYS = {
    "version",
    "store_fingerprint",
    "num_docs",
    "num_excluded",
    "encoding",
    "id_width",
    "reasons",
    "reason_width",
    "body_bytes",
    "body_xxh3",
}


def reason_width(n: int) -> int:
    """Bytes per document of the reason index for a table of `n` reasons (0: one reason for the whole mask)."""
    return 0 if n <= 1 else 1 if n <= 1 << 8 else 2 if n <= 1 << 16 else 4


def id_width(num_docs: int) -> int:
    """Bytes per stored document id: 4 below 2**32 documents, else 8."""
    return 4 if num_docs <= 1 << 32 else 8


def uint(width: int) -> np.dtype:
    return np.dtype(f"<u{width}")


@dataclass(frozen=True, slots=True)
class Decoded:
    """A verified mask file: its header fields and its arrays (`ids` or `bitmap`, and `reason_index` or None)."""

    store_fingerprint: str
    num_docs: int
    num_excluded: int
    reasons: tuple[str, ...]
    ids: np.ndarray | None
    bitmap: np.ndarray | None
    reason_index: np.ndarray | None


def encode(
    *,
    store_fingerprint: str,
    num_docs: int,
    num_excluded: int,
    reasons: tuple[str, ...],
    ids: np.ndarray | None,
    bitmap: np.ndarray | None,
    reason_index: np.ndarray | None,
) -> bytes:
    """The file bytes of a mask held as sorted `ids` or a packed `bitmap` (exactly one of them)."""
    if bitmap is not None:
        body = [bitmap.astype(np.uint8, copy=False).tobytes()]
    elif ids is not None:
        body = [ids.astype(uint(id_width(num_docs))).tobytes()]
    else:
        raise ValueError("encode needs ids or a bitmap")
    rw = reason_width(len(reasons))
    if rw:
        if reason_index is None:
            raise ValueError(f"{len(reasons)} reasons need a reason index")
        body.append(reason_index.astype(uint(rw)).tobytes())
    payload = b"".join(body)
    header = seal(
        {
            "version": MASK_VERSION,
            "store_fingerprint": store_fingerprint,
            "num_docs": num_docs,
            "num_excluded": num_excluded,
            "encoding": "ids" if bitmap is None else "bitmap",
            "id_width": id_width(num_docs),
            "reasons": list(reasons),
            "reason_width": rw,
            "body_bytes": len(payload),
            "body_xxh3": xxhash.xxh3_64_hexdigest(payload),
        }
    )
    return PREFIX.pack(MASK_MAGIC, len(header)) + header + payload


def decode(data: bytes, source: str) -> Decoded:
    """Decode and verify a mask file's bytes; `MaskError` naming `source` on any defect."""
    header, body = _split(data, source)
    n, k = header["num_docs"], header["num_excluded"]
    table = tuple(header["reasons"])
    rw = header["reason_width"]
    iw = header["id_width"]
    want = (k * iw if header["encoding"] == "ids" else (n + 7) // 8) + k * rw
    if header["body_bytes"] != want or len(body) != want:
        raise MaskError(f"{source}: body of {len(body)} bytes, the header's counts need {want}")
    ids = bitmap = None
    if header["encoding"] == "ids":
        ids = np.frombuffer(body, dtype=uint(iw), count=k).copy()
        if k and (int(ids[-1]) >= n or np.any(ids[1:] <= ids[:-1])):
            bad = np.flatnonzero(ids >= n)
            if bad.size:
                raise MaskError(f"{source}: document id {int(ids[bad[0]])} is outside the store's [0, {n})")
            raise MaskError(f"{source}: document ids are not sorted and unique")
        rest = body[k * iw :]
    else:
        nb = (n + 7) // 8
        bitmap = np.frombuffer(body, dtype=np.uint8, count=nb).copy()
        if n % 8 and int(bitmap[-1]) >> (n % 8):
            raise MaskError(f"{source}: bits are set for documents past the store's {n} documents")
        count = int(np.unpackbits(bitmap).sum()) if nb else 0
        if count != k:
            raise MaskError(f"{source}: the bitmap holds {count} documents, the header says {k}")
        rest = body[nb:]
    index = None
    if rw:
        index = np.frombuffer(rest, dtype=uint(rw), count=k).copy()
        if k and int(index.max()) >= len(table):
            raise MaskError(
                f"{source}: a reason index {int(index.max())} is outside the table of {len(table)}"
            )
    return Decoded(header["store_fingerprint"], n, k, table, ids, bitmap, index)


def _split(data: bytes, source: str) -> tuple[dict[str, Any], bytes]:
    """(validated header, body) of a mask file's bytes."""
    if len(data) < PREFIX.size:
        raise MaskError(f"{source}: {len(data)} bytes is too short for a mask file (truncated?)")
    magic, hlen = PREFIX.unpack_from(data)
    if magic != MASK_MAGIC:
        raise MaskError(f"{source}: not a shardstore mask (magic {magic!r}, expected {MASK_MAGIC!r})")
    if hlen > _MAX_HEADER or PREFIX.size + hlen > len(data):
        raise MaskError(
            f"{source}: header of {hlen} bytes does not fit in the file of {len(data)} (truncated?)"
        )
    header = unseal(bytes(data[PREFIX.size : PREFIX.size + hlen]))
    if header is None:
        raise MaskError(f"{source}: the mask header's checksum does not match (corrupt or edited)")
    _check_header(header, source)
    body = bytes(data[PREFIX.size + hlen :])
    if len(body) != header["body_bytes"]:
        raise MaskError(
            f"{source}: body of {len(body)} bytes, the header says {header['body_bytes']} (truncated or extended)"
        )
    if xxhash.xxh3_64_hexdigest(body) != header["body_xxh3"]:
        raise MaskError(f"{source}: the mask body's checksum does not match (corrupt)")
    return header, body


def _check_header(h: dict[str, Any], source: str) -> None:
    if set(h) != _HEADER_KEYS:
        raise MaskError(f"{source}: header keys {sorted(h)} differ from {sorted(_HEADER_KEYS)}")
    if h["version"] != MASK_VERSION:
        raise MaskError(
            f"{source}: mask format version {h['version']!r}; this shardstore reads {MASK_VERSION}"
        )

    def count(name: str, hi: int) -> int:
        v = h[name]
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= hi:
            raise MaskError(f"{source}: header {name}={v!r} is not an integer in [0, {hi}]")
        return v

    n = count("num_docs", MAX_DOCS)
    count("num_excluded", n)
    count("body_bytes", 1 << 62)
    if not isinstance(h["store_fingerprint"], str) or not h["store_fingerprint"]:
        raise MaskError(
            f"{source}: header store_fingerprint={h['store_fingerprint']!r} is not a non-empty string"
        )
    if h["encoding"] not in ("ids", "bitmap"):
        raise MaskError(f"{source}: header encoding={h['encoding']!r}, expected 'ids' or 'bitmap'")
    if h["id_width"] != id_width(n):
        raise MaskError(f"{source}: header id_width={h['id_width']!r} does not fit num_docs={n}")
    reasons = h["reasons"]
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise MaskError(f"{source}: header reasons must be a list of strings")
    if len(set(reasons)) != len(reasons) or (h["num_excluded"] > 0) != bool(reasons):
        raise MaskError(f"{source}: header reasons must be distinct, and present exactly when documents are")
    if h["reason_width"] != reason_width(len(reasons)):
        raise MaskError(
            f"{source}: header reason_width={h['reason_width']!r} does not fit {len(reasons)} reasons"
        )
    if not isinstance(h["body_xxh3"], str):
        raise MaskError(f"{source}: header body_xxh3 must be a string")
