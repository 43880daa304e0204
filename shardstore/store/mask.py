"""Document masks: a small file that excludes documents of one store from training, without rewriting a shard.

A mask names one store (its fingerprint and document count) and a set of its documents, each with a reason
(``duplicate of store S doc D``, ``contains 13-grams of eval E item I``, ``held out``), or one reason for all.

File layout (little-endian; docs/masks.md has it byte by byte):

    magic     8 bytes   b"SSMASK\\x00\\x01"
    hlen      u32       length of the header
    header    hlen      sealed canonical JSON (`shardstore.util.sealed`: a flipped bit or a non-canonical edit
                        breaks the seal): format version, store_fingerprint, num_docs, num_excluded, encoding,
                        id_width, reasons (the reason table), reason_width, body_bytes, body_xxh3
    body      ids or bitmap, then the per-document reason indexes (absent when the table has one reason)

Encoding: the sorted unique excluded ids (u32 when the store has < 2**32 documents, else u64) or a bitmap of
``ceil(num_docs / 8)`` bytes (bit ``i % 8`` of byte ``i // 8``), whichever is smaller (ties: ids). So a mask costs
``min(K * 4, N / 8)`` bytes for K of N documents: 12.5 MB for 10% of 10**8 documents (0.125 byte per document),
400 KB for 10**5 of them. Reasons are a table of distinct strings plus, when there is more than one, an index per
excluded document (u8/u16/u32, in id order). The writer is deterministic, so equal masks are equal bytes, and the
mask's `fingerprint` is the sha256 of those bytes.

Reading verifies every byte before anything is used (the whole file is small): magic, header seal, exact file size
(truncation), the body's xxh3-64 (bit flips), ids sorted, unique and below ``num_docs``, no bit set past
``num_docs``, reason indexes inside the table. Each failure is a `MaskError` naming the file; a mask of another
store is a `MismatchError`.

MASKDIR: a folder holding at most one mask per store, named ``<store fingerprint>.mask`` (`mask_file_name`); a
mixture source's ``exclude = ["MASKDIR"]`` applies the mask of each of its stores found there (`find_masks`), and
a store with none there has nothing excluded. A mask file (path or URL) can be named directly too.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shardstore.errors import ConfigError, MaskError, MismatchError
from shardstore.store import mask_codec as codec
from shardstore.store.mask_codec import MASK_MAGIC, MASK_VERSION
from shardstore.util.durable import atomic_write
from shardstore.util.fsurl import is_url, url_to_fs

__all__ = [
    "MASK_MAGIC",
    "MASK_SUFFIX",
    "MASK_VERSION",
    "Mask",
    "find_masks",
    "is_mask_dir",
    "mask_file_name",
    "read_mask",
    "verify_masks",
    "write_mask",
]

MASK_SUFFIX = ".mask"
_MAX_REASON_CHARS = 4096


def _present(arr: np.ndarray | None) -> np.ndarray:
    """`arr`, known to be set by the mask's encoding (a Mask always holds its ids or its bitmap)."""
    if arr is None:
        raise RuntimeError("internal: a mask holds neither ids nor a bitmap")
    return arr


@dataclass(frozen=True, slots=True, eq=False)
class Mask:
    """The excluded documents of one store. Build one with `Mask.build`, read one with `read_mask`.

    Attributes:
        store_fingerprint: the fingerprint of the store the ids refer to.
        num_docs: that store's document count (ids are below it).
        reasons: the reason table (distinct strings, in first-use order); empty only for an empty mask.
    """

    store_fingerprint: str
    num_docs: int
    reasons: tuple[str, ...]
    _ids: np.ndarray | None = field(
        repr=False
    )  # sorted unique u32/u64 (the file width), or None when the bitmap holds them
    _bitmap: np.ndarray | None = field(repr=False)  # packed uint8, little bit order
    _reason_index: np.ndarray | None = field(repr=False)  # per excluded id (id order), or None: one reason
    num_excluded: int = 0
    _bytes: list[bytes] = field(default_factory=list, repr=False)  # the encoded file, computed once

    # -- construction ---------------------------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        *,
        store_fingerprint: str,
        num_docs: int,
        ids: np.ndarray | Sequence[int],
        reasons: Sequence[str] | str,
    ) -> Mask:
        """A mask excluding documents `ids` of the store `store_fingerprint` (of `num_docs` documents).

        Args:
            ids: document ids in any order; repeats are allowed (the first occurrence's reason is kept).
            reasons: one reason for every id (a string), or one per id, aligned with `ids`.
        """
        if not isinstance(store_fingerprint, str) or not store_fingerprint:
            raise ConfigError(f"store_fingerprint must be a non-empty string, got {store_fingerprint!r}")
        if (
            isinstance(num_docs, bool)
            or not isinstance(num_docs, int | np.integer)
            or not 0 <= num_docs < codec.MAX_DOCS
        ):
            raise ConfigError(f"num_docs must be an integer in [0, 2**62), got {num_docs!r}")
        num_docs = int(num_docs)
        arr = np.asarray(ids)
        if arr.size == 0:
            arr = arr.reshape(0).astype(np.int64)
        if arr.ndim != 1 or arr.dtype.kind not in "iu":
            raise ConfigError(
                f"ids must be a 1-D sequence of integers, got dtype={arr.dtype} ndim={arr.ndim}"
            )
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= num_docs):
            bad = int(arr.min()) if int(arr.min()) < 0 else int(arr.max())
            raise ConfigError(f"document id {bad} is outside the store's [0, {num_docs})")
        arr = arr.astype(np.int64, copy=False)
        order = np.argsort(arr, kind="stable")
        sorted_ids = arr[order]
        first = np.ones(sorted_ids.size, dtype=bool)
        first[1:] = sorted_ids[1:] != sorted_ids[:-1]
        uniq = sorted_ids[first]
        if isinstance(reasons, str):
            table: tuple[str, ...] = (reasons,) if uniq.size else ()
            index = None
        else:
            per_id = list(reasons)
            if len(per_id) != arr.size:
                raise ConfigError(f"{len(per_id)} reasons for {arr.size} ids; pass one per id or one string")
            table_d: dict[str, int] = {}
            for r in per_id:
                if not isinstance(r, str):
                    raise ConfigError(f"a reason must be a string, got {r!r}")
                table_d.setdefault(r, len(table_d))
            codes = np.fromiter((table_d[r] for r in per_id), dtype=np.int64, count=len(per_id))
            kept_codes = codes[order][first]
            # the table lists only reasons some kept id uses, in first-use order (deterministic for equal input)
            used = np.unique(kept_codes)
            names = list(table_d)
            used_sorted = sorted(used.tolist())
            table = tuple(names[c] for c in used_sorted)
            remap = np.zeros(len(names), dtype=np.int64)
            remap[np.array(used_sorted, dtype=np.int64)] = np.arange(len(used_sorted))
            index = remap[kept_codes] if len(table) > 1 else None
        for r in table:
            if len(r) > _MAX_REASON_CHARS:
                raise ConfigError(
                    f"a reason of {len(r)} characters exceeds {_MAX_REASON_CHARS}: {r[:60]!r}..."
                )
        return cls._from_sorted(store_fingerprint, num_docs, uniq, table, index)

    @classmethod
    def _from_sorted(
        cls,
        store_fingerprint: str,
        num_docs: int,
        uniq: np.ndarray,
        table: tuple[str, ...],
        index: np.ndarray | None,
    ) -> Mask:
        ids_bytes = uniq.size * codec.id_width(num_docs)
        bitmap_bytes = (num_docs + 7) // 8
        if ids_bytes <= bitmap_bytes:
            held = uniq.astype(codec.uint(codec.id_width(num_docs)))
            return cls(store_fingerprint, num_docs, table, held, None, index, int(uniq.size))
        bits = np.zeros(bitmap_bytes * 8, dtype=bool)
        bits[uniq] = True
        bitmap = np.packbits(bits, bitorder="little")
        return cls(store_fingerprint, num_docs, table, None, bitmap, index, int(uniq.size))

    @classmethod
    def union(cls, masks: Sequence[Mask]) -> Mask:
        """One mask excluding what any of `masks` (all of one store) excludes; a document excluded by several
        keeps the reason of the first mask that names it."""
        if not masks:
            raise ConfigError("Mask.union needs at least one mask")
        fp, n = masks[0].store_fingerprint, masks[0].num_docs
        for m in masks[1:]:
            if (m.store_fingerprint, m.num_docs) != (fp, n):
                raise MismatchError(
                    f"cannot unite masks of different stores: {fp} ({n} docs) and "
                    f"{m.store_fingerprint} ({m.num_docs} docs)"
                )
        if len(masks) == 1:
            return masks[0]
        ids = np.concatenate([m.excluded_ids() for m in masks])
        reasons: list[str] = []
        for m in masks:
            reasons.extend(m.reasons_of_excluded())
        return cls.build(store_fingerprint=fp, num_docs=n, ids=ids, reasons=reasons)

    # -- queries --------------------------------------------------------------------------------------------------

    @property
    def encoding(self) -> str:
        """``"ids"`` or ``"bitmap"``: how the file (and the memory) holds the set."""
        return "ids" if self._bitmap is None else "bitmap"

    @property
    def nbytes(self) -> int:
        """Memory held by the set and the reason indexes (what the file's body holds)."""
        held = (
            self._bitmap.nbytes
            if self._bitmap is not None
            else self.num_excluded * codec.id_width(self.num_docs)
        )
        return held + self.num_excluded * codec.reason_width(len(self.reasons))

    def excluded_ids(self) -> np.ndarray:
        """The excluded document ids, sorted, as int64 (a new array)."""
        if self._ids is not None:
            return self._ids.astype(np.int64, copy=True)
        bits = np.unpackbits(_present(self._bitmap), bitorder="little", count=self.num_docs)
        return np.flatnonzero(bits).astype(np.int64)

    def is_excluded(self, doc: int) -> bool:
        """Whether document `doc` is excluded."""
        doc = int(doc)
        if not 0 <= doc < self.num_docs:
            raise IndexError(f"document {doc} is outside the store's [0, {self.num_docs})")
        if self._bitmap is not None:
            return bool((int(self._bitmap[doc >> 3]) >> (doc & 7)) & 1)
        ids = _present(self._ids)
        i = int(np.searchsorted(ids, doc))
        return i < ids.size and int(ids[i]) == doc

    def reason(self, doc: int) -> str | None:
        """Why document `doc` is excluded, or None if it is kept."""
        if not self.is_excluded(doc):
            return None
        if self._reason_index is None:
            return self.reasons[0]
        rank = self._rank(doc)
        return self.reasons[int(self._reason_index[rank])]

    def _rank(self, doc: int) -> int:
        if self._ids is not None:
            return int(np.searchsorted(self._ids, doc))
        bits = np.unpackbits(_present(self._bitmap)[: (doc >> 3) + 1], bitorder="little")
        return int(bits[:doc].sum())

    def reasons_of_excluded(self) -> list[str]:
        """The reason of every excluded document, in id order."""
        if self._reason_index is None:
            return [self.reasons[0]] * self.num_excluded if self.reasons else []
        return [self.reasons[i] for i in self._reason_index.tolist()]

    def reason_counts(self) -> dict[str, int]:
        """Excluded documents per reason."""
        if self._reason_index is None:
            return {self.reasons[0]: self.num_excluded} if self.reasons else {}
        counts = np.bincount(self._reason_index, minlength=len(self.reasons)).tolist()
        return dict(zip(self.reasons, counts, strict=True))

    @property
    def fingerprint(self) -> str:
        """sha256 of the mask's file bytes (the writer is deterministic: equal masks, equal fingerprints)."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def summary(self) -> dict[str, Any]:
        """A JSON-safe summary: fingerprints, counts, encoding, bytes, excluded documents per reason."""
        return {
            "fingerprint": self.fingerprint,
            "store_fingerprint": self.store_fingerprint,
            "num_docs": self.num_docs,
            "num_excluded": self.num_excluded,
            "encoding": self.encoding,
            "bytes": len(self.to_bytes()),
            "reasons": self.reason_counts(),
        }

    def check_store(self, store_fingerprint: str, num_docs: int, *, source: str = "mask") -> None:
        """Raise `MismatchError` unless this mask was made for that store."""
        if self.store_fingerprint != store_fingerprint or self.num_docs != num_docs:
            raise MismatchError(
                f"{source}: the mask is for store {self.store_fingerprint} ({self.num_docs} docs), not for store "
                f"{store_fingerprint} ({num_docs} docs); write the mask against this store or drop it"
            )

    # -- bytes ----------------------------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The file's bytes (see the module docstring)."""
        if not self._bytes:
            self._bytes.append(
                codec.encode(
                    store_fingerprint=self.store_fingerprint,
                    num_docs=self.num_docs,
                    num_excluded=self.num_excluded,
                    reasons=self.reasons,
                    ids=self._ids,
                    bitmap=self._bitmap,
                    reason_index=self._reason_index,
                )
            )
        return self._bytes[0]

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "mask") -> Mask:
        """Decode and verify a mask file's bytes; `MaskError` naming `source` on any defect."""
        d = codec.decode(data, source)
        mask = cls(
            d.store_fingerprint, d.num_docs, d.reasons, d.ids, d.bitmap, d.reason_index, d.num_excluded
        )
        mask._bytes.append(bytes(data))
        return mask


def mask_file_name(store_fingerprint: str) -> str:
    """The name of a store's mask inside a MASKDIR: ``<store fingerprint>.mask``."""
    return f"{store_fingerprint}{MASK_SUFFIX}"


def write_mask(path: str | os.PathLike[str], mask: Mask) -> None:
    """Write `mask` durably to the local `path` (temp file, fsync, atomic rename, folder fsync)."""
    atomic_write(path, mask.to_bytes())


def _read_bytes(path_or_url: str, storage_options: dict[str, Any] | None) -> bytes:
    try:
        if is_url(path_or_url) and not path_or_url.startswith("file://"):
            fs, inner = url_to_fs(path_or_url, storage_options)
            with fs.open(inner, "rb") as f:
                return bytes(f.read())
        local = path_or_url[len("file://") :] if path_or_url.startswith("file://") else path_or_url
        with open(local, "rb") as f:
            return f.read()
    except FileNotFoundError as exc:
        raise ConfigError(f"{path_or_url}: no such mask file") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path_or_url}: is a folder; a MASKDIR is read with find_masks") from exc


def read_mask(
    path_or_url: str | os.PathLike[str],
    *,
    store_fingerprint: str | None = None,
    num_docs: int | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Mask:
    """Read and verify a mask file (local path, ``file://`` or any fsspec URL).

    With `store_fingerprint` (and `num_docs`), a mask made for another store is refused with `MismatchError`.
    """
    source = os.fspath(path_or_url)
    mask = Mask.from_bytes(_read_bytes(source, storage_options), source=source)
    if store_fingerprint is not None:
        mask.check_store(store_fingerprint, mask.num_docs if num_docs is None else num_docs, source=source)
    return mask


def _fs_of(path_or_url: str, storage_options: dict[str, Any] | None) -> tuple[Any, str]:
    if is_url(path_or_url):
        return url_to_fs(path_or_url, storage_options)
    import fsspec.implementations.local

    return fsspec.implementations.local.LocalFileSystem(), path_or_url


def is_mask_dir(path_or_url: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> bool:
    """Whether `path_or_url` is a folder (a MASKDIR) rather than a mask file."""
    fs, inner = _fs_of(os.fspath(path_or_url), storage_options)
    return bool(fs.isdir(inner))


def find_masks(
    path_or_url: str | os.PathLike[str],
    store_fingerprint: str,
    num_docs: int,
    *,
    storage_options: dict[str, Any] | None = None,
) -> list[tuple[str, Mask]]:
    """The masks for one store named by an ``exclude`` entry, as (path or URL, verified mask) pairs.

    A folder (MASKDIR) gives the store's ``<fingerprint>.mask`` if it is there, and nothing otherwise. A file gives
    itself, and must be for this store: `MismatchError` naming the file if not (`ConfigError` if it is missing).
    """
    source = os.fspath(path_or_url)
    fs, inner = _fs_of(source, storage_options)
    if fs.isdir(inner):
        name = mask_file_name(store_fingerprint)
        if not fs.isfile(posixpath.join(inner, name)):
            return []
        source = source.rstrip("/") + "/" + name
    elif not fs.exists(inner):
        raise ConfigError(f"{source}: no such mask file or MASKDIR folder")
    mask = read_mask(source, storage_options=storage_options)
    mask.check_store(store_fingerprint, num_docs, source=source)
    return [(source, mask)]


def verify_masks(
    path_or_url: str | os.PathLike[str], *, storage_options: dict[str, Any] | None = None
) -> list[tuple[str, Mask | None, str | None]]:
    """Verify a mask file, or every ``*.mask`` of a MASKDIR: (path, the mask or None, the error or None) each.

    Verification is what reading does (magic, header seal, size, body checksum, ids, reasons); `verify` uses it
    so that a mask that went bad is named before a loader meets it."""
    source = os.fspath(path_or_url)
    fs, inner = _fs_of(source, storage_options)
    if fs.isdir(inner):
        names = sorted(
            posixpath.basename(p) for p in fs.ls(inner, detail=False) if str(p).endswith(MASK_SUFFIX)
        )
        paths = [source.rstrip("/") + "/" + n for n in names]
    else:
        paths = [source]
    out: list[tuple[str, Mask | None, str | None]] = []
    for p in paths:
        try:
            out.append((p, read_mask(p, storage_options=storage_options), None))
        except (MaskError, ConfigError) as exc:
            out.append((p, None, str(exc)))
    return out
