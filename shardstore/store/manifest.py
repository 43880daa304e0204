"""The store manifest: `manifest.json`, the list of everything in a store and its commit point.

Design:
- The JSON is canonical (sorted keys, fixed separators, UTF-8, trailing newline) and contains no wall-clock time, so
  two builds of the same data produce byte-identical manifests. `manifest_checksum` (xxh3_64 of the canonical JSON
  without that key) detects any flipped bit; a reader also insists the file *is* the canonical serialization.
- The store `fingerprint` is sha256 over (format version, dtype, tokenizer fingerprint, and every shard's checksum,
  token and document counts, in order): equal shard bytes <=> equal fingerprint, whatever the shard names.
- Validation is total and happens before anything is read or allocated: names are plain relative paths inside the
  store (no `..`, no absolute paths, no backslashes, no duplicates), counts are non-negative ints below sane bounds
  and agree with sizes and totals, types are exact (a bool is not an int). Hostile input raises ManifestError.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shardstore.errors import FormatError, ManifestError
from shardstore.store import format as fmt
from shardstore.store.canonjson import canonical as _canonical
from shardstore.store.canonjson import check_json_value, strict_loads
from shardstore.store.manifest_index import INDEX_NAME, ShardTable, index_bytes, open_index
from shardstore.store.manifest_rules import HEX16 as _HEX16
from shardstore.store.manifest_rules import check_name
from shardstore.store.manifest_rules import exact_keys as _keys
from shardstore.store.manifest_rules import fail as _fail
from shardstore.store.manifest_rules import hex_field as _hex
from shardstore.store.manifest_rules import int_field as _int
from shardstore.store.rawmap import map_readonly
from shardstore.util.durable import atomic_write

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "FileInfo",
    "Manifest",
    "ShardInfo",
    "TokenizerInfo",
    "file_info",
    "open_manifest",
    "read_manifest",
    "read_shard_info",
    "write_manifest",
]

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = (
    2  # v2 adds each shard's header checksum (binds its bytes to this manifest); v1 still reads
)
READABLE_VERSIONS = (1, 2)
MAX_MANIFEST_BYTES = 1 << 30
MAX_FILE_BYTES = 1 << 50
_DTYPES = ("uint16", "uint32")
_SHARD_KEYS = frozenset({"name", "num_tokens", "num_docs", "size", "checksum"})


@dataclass(frozen=True, slots=True)
class ShardInfo:
    """One shard as the manifest lists it: `checksum` is the whole-file xxh3_64 (16 hex digits);
    `header_checksum` (manifest v2) is the checksum stored in the shard's header, which covers its counts and the
    checksums of its document index and block table: a reader compares it when it maps the shard, so every token
    it returns is bound to this manifest at O(1) cost per mapping. None in v1 manifests."""

    name: str
    num_tokens: int
    num_docs: int
    size: int
    checksum: str
    header_checksum: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "num_tokens": self.num_tokens,
            "num_docs": self.num_docs,
            "size": self.size,
            "checksum": self.checksum,
        }
        if self.header_checksum is not None:
            d["header_checksum"] = self.header_checksum
        return d

    @classmethod
    def from_dict(cls, d: object, *, source: str, token_bytes: int) -> ShardInfo:
        d = _keys(d, _SHARD_KEYS, {"header_checksum"}, source=source, what="shard entry")
        name = check_name(d["name"], source=source, what="shard name")
        head = d.get("header_checksum")
        if head is not None and (type(head) is not str or not _HEX16.fullmatch(head)):
            raise _fail(source, f"{name}: header_checksum must be 16 lowercase hex digits, got {head!r}")
        nt, nd, size, checksum = d["num_tokens"], d["num_docs"], d["size"], d["checksum"]
        if not (
            type(nt) is int
            and type(nd) is int
            and type(size) is int
            and 0 <= nt <= fmt.MAX_TOKENS
            and 0 <= nd <= fmt.MAX_TOKENS
            and 0 <= size <= MAX_FILE_BYTES
        ):  # slow path only to name the offending field
            _int(nt, source=source, what=f"{name}: num_tokens")
            _int(nd, source=source, what=f"{name}: num_docs")
            _int(size, source=source, what=f"{name}: size", hi=MAX_FILE_BYTES)
        if type(checksum) is not str or not _HEX16.fullmatch(checksum):
            raise _fail(source, f"{name}: checksum must be 16 lowercase hex digits, got {checksum!r}")
        # The size is a function of the counts and the block size (4 KiB..64 MiB): bound it both ways.
        payload = nt * token_bytes
        base = ((fmt.HEADER_SIZE + payload + 7) & ~7) + (nd + 1) * 8
        lo = base + -(-payload // fmt.MAX_BLOCK_SIZE) * 8
        hi = base + -(-payload // fmt.MIN_BLOCK_SIZE) * 8
        if not lo <= size <= hi:
            raise _fail(
                source,
                f"shard {name}: size {size} is impossible for {nt} tokens and {nd} documents (expected {lo}..{hi})",
            )
        return cls(name=name, num_tokens=nt, num_docs=nd, size=size, checksum=checksum, header_checksum=head)


@dataclass(frozen=True, slots=True)
class FileInfo:
    """An auxiliary file of the store (tokenizer.json, provenance, build report) with its size and checksum."""

    name: str
    size: int
    checksum: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "checksum": self.checksum}

    @classmethod
    def from_dict(cls, d: object, *, source: str) -> FileInfo:
        d = _keys(d, {"name", "size", "checksum"}, set(), source=source, what="file entry")
        name = check_name(d["name"], source=source)
        return cls(
            name=name,
            size=_int(d["size"], source=source, what=f"{name}: size", hi=MAX_FILE_BYTES),
            checksum=_hex(d["checksum"], _HEX16, source=source, what=f"{name}: checksum"),
        )


@dataclass(frozen=True, slots=True)
class TokenizerInfo:
    """What binds the data to its tokenizer: fingerprint, vocabulary size, special token ids."""

    fingerprint: str
    vocab_size: int | None = None
    special_ids: Mapping[str, int] = field(default_factory=dict)
    eos_id: int | None = None

    @classmethod
    def from_tokenizer(cls, tok: Any) -> TokenizerInfo:
        """From a `tokenizer.Tokenizer` (fingerprint, vocab_size, special_tokens, eos_id)."""
        return cls(
            fingerprint=str(tok.fingerprint),
            vocab_size=int(tok.vocab_size),
            special_ids={str(k): int(v) for k, v in dict(tok.special_tokens).items()},
            eos_id=None if tok.eos_id is None else int(tok.eos_id),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "vocab_size": self.vocab_size,
            "special_ids": dict(sorted(self.special_ids.items())),
            "eos_id": self.eos_id,
        }

    @classmethod
    def from_dict(cls, d: object, *, source: str) -> TokenizerInfo:
        d = _keys(
            d, {"fingerprint", "vocab_size", "special_ids", "eos_id"}, set(), source=source, what="tokenizer"
        )
        fp = d["fingerprint"]
        if not isinstance(fp, str) or not 0 < len(fp) <= 256:
            raise _fail(source, f"tokenizer fingerprint must be a non-empty string, got {fp!r}")
        vocab = d["vocab_size"]
        hi = 1 << 32
        vocab = None if vocab is None else _int(vocab, source=source, what="tokenizer vocab_size", hi=hi)
        specials = d["special_ids"]
        if not isinstance(specials, dict) or len(specials) > 100_000:
            raise _fail(source, "tokenizer special_ids must be an object of name -> id")
        ids = {str(k): _int(v, source=source, what=f"special id {k!r}", hi=hi) for k, v in specials.items()}
        eos = d["eos_id"]
        eos = None if eos is None else _int(eos, source=source, what="eos_id", hi=hi)
        return cls(fingerprint=fp, vocab_size=vocab, special_ids=ids, eos_id=eos)


@dataclass(frozen=True, slots=True)
class Manifest:
    """A store's table of contents. Construct with keyword arguments; it validates itself."""

    dtype: str
    shards: tuple[ShardInfo, ...]
    files: tuple[FileInfo, ...] = ()
    tokenizer: TokenizerInfo | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)
    format_version: int = (
        0  # 0: the newest version the shard entries allow (v2 when each has a header checksum)
    )
    _fingerprint: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "dtype", np.dtype(self.dtype).name)
        except TypeError:
            raise ManifestError(f"dtype {self.dtype!r} must be one of {_DTYPES}") from None
        object.__setattr__(self, "shards", tuple(self.shards))
        object.__setattr__(self, "files", tuple(self.files))
        if not self.format_version:
            bound = all(s.header_checksum is not None for s in self.shards)
            object.__setattr__(self, "format_version", MANIFEST_VERSION if bound else 1)
        # Round-trip through the validating parser so a constructed manifest obeys the same rules as a read one.
        object.__setattr__(self, "_fingerprint", self._compute_fingerprint())
        Manifest._validate(self._body(), source="<new manifest>")

    @property
    def num_tokens(self) -> int:
        return int(self.shard_counts()[0].sum())

    @property
    def num_docs(self) -> int:
        return int(self.shard_counts()[1].sum())

    def shard_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """(tokens, documents) per shard as int64 arrays; from the index's columns when opened through it."""
        shards = self.shards
        if isinstance(shards, ShardTable):
            return shards.num_tokens.astype(np.int64), shards.num_docs.astype(np.int64)
        n = len(shards)
        return (
            np.fromiter((x.num_tokens for x in shards), dtype=np.int64, count=n),
            np.fromiter((x.num_docs for x in shards), dtype=np.int64, count=n),
        )

    def shard_sizes(self) -> np.ndarray:
        """File size of each shard as an int64 array (from the index's column when opened through it)."""
        shards = self.shards
        if isinstance(shards, ShardTable):
            return shards.sizes.astype(np.int64)
        return np.fromiter((x.size for x in shards), dtype=np.int64, count=len(shards))

    def index_meta(self) -> dict[str, Any]:
        """Everything of the manifest but its shard list (what `manifest.idx` stores as JSON)."""
        body = self._body()
        del body["shards"]
        return body

    @classmethod
    def from_index(cls, meta: dict[str, Any], table: ShardTable, *, source: str) -> Manifest:
        """A manifest over an index's shard table (already bound by checksum to the manifest.json bytes)."""
        manifest = cls.__new__(cls)
        tok = meta["tokenizer"]
        fields: dict[str, Any] = {
            "dtype": meta["dtype"],
            "shards": table,
            "files": tuple(FileInfo.from_dict(f, source=source) for f in meta["files"]),
            "tokenizer": None if tok is None else TokenizerInfo.from_dict(tok, source=source),
            "provenance": meta["provenance"],
            "format_version": meta["format_version"],
            "_fingerprint": meta["fingerprint"],
        }
        for name, value in fields.items():
            object.__setattr__(manifest, name, value)
        return manifest

    @property
    def token_bytes(self) -> int:
        return 2 if self.dtype == "uint16" else 4

    @property
    def fingerprint(self) -> str:
        """sha256 over format version, dtype, tokenizer fingerprint and the shards' checksums and counts."""
        return self._fingerprint

    def _compute_fingerprint(self) -> str:
        h = hashlib.sha256()
        tok = self.tokenizer.fingerprint if self.tokenizer else ""
        h.update(f"shardstore-v{fmt.FORMAT_VERSION}|{self.dtype}|{tok}|{len(self.shards)}\n".encode())
        for s in self.shards:
            h.update(f"{s.checksum}:{s.num_tokens}:{s.num_docs}\n".encode())
        return h.hexdigest()

    def file(self, name: str) -> FileInfo | None:
        """The auxiliary file entry of that name, or None."""
        return next((f for f in self.files if f.name == name), None)

    def _body(self) -> dict[str, Any]:
        return {
            "format": "shardstore",
            "format_version": self.format_version,
            "dtype": self.dtype,
            "num_tokens": self.num_tokens,
            "num_docs": self.num_docs,
            "num_shards": len(self.shards),
            "tokenizer": self.tokenizer.to_dict() if self.tokenizer else None,
            "shards": [s.to_dict() for s in self.shards]
            if self.format_version >= 2
            else [ShardInfo.to_dict(_unbound(s)) for s in self.shards],
            "files": [f.to_dict() for f in self.files],
            "provenance": dict(self.provenance),
            "fingerprint": self.fingerprint,
        }

    def to_json_bytes(self) -> bytes:
        """The canonical, byte-deterministic JSON of this manifest, `manifest_checksum` included."""
        body = self._body()
        body["manifest_checksum"] = f"{fmt.checksum_bytes(_canonical(body)):016x}"
        return _canonical(body)

    @classmethod
    def from_json_bytes(cls, data: bytes, *, source: str) -> Manifest:
        """Parse and validate; any hostile, corrupt or non-canonical input raises ManifestError naming `source`."""
        if len(data) > MAX_MANIFEST_BYTES:
            raise _fail(source, f"manifest is {len(data)} bytes, over the {MAX_MANIFEST_BYTES}-byte limit")
        try:
            obj = strict_loads(data)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise _fail(source, f"not valid JSON ({exc}); the manifest is corrupt") from None
        if not isinstance(obj, dict):
            raise _fail(source, "manifest must be a JSON object")
        stored = obj.get("manifest_checksum")
        if not isinstance(stored, str) or not _HEX16.fullmatch(stored):
            raise _fail(
                source, f"manifest_checksum {stored!r} is missing or not 16 hex digits: corrupt manifest"
            )
        if _canonical(obj) != data:
            raise _fail(
                source,
                "manifest is not in canonical form (corrupt, or edited by hand?); rewrite it with write_manifest",
            )
        # The checksum covers the canonical JSON without its own line; that line is a top-level key, never the
        # last one, and a raw newline cannot occur inside a JSON string, so removing it is exact.
        line = f'\n "manifest_checksum": "{stored}",\n'.encode()
        body = data.replace(line, b"\n", 1)
        actual = f"{fmt.checksum_bytes(body):016x}"
        if stored != actual:
            raise _fail(source, f"manifest_checksum {stored} != computed {actual}: the manifest is corrupt")
        del obj["manifest_checksum"]
        return cls._validate(obj, source=source)

    @classmethod
    def _validate(cls, obj: dict[str, Any], *, source: str) -> Manifest:
        keys = {"format", "format_version", "dtype", "num_tokens", "num_docs", "num_shards", "tokenizer"}
        keys |= {"shards", "files", "provenance", "fingerprint"}
        obj = _keys(obj, keys, set(), source=source, what="manifest")
        version = obj["format_version"]
        if obj["format"] != "shardstore" or type(version) is not int or version not in READABLE_VERSIONS:
            raise _fail(
                source,
                f"format {obj['format']!r} version {version!r} is not a shardstore manifest of versions "
                f"{READABLE_VERSIONS}; upgrade shardstore or rebuild the store",
            )
        if obj["dtype"] not in _DTYPES:
            raise _fail(source, f"dtype {obj['dtype']!r} must be one of {_DTYPES}")
        token_bytes = 2 if obj["dtype"] == "uint16" else 4
        shards, files = obj["shards"], obj["files"]
        if not isinstance(shards, list) or not isinstance(files, list):
            raise _fail(source, "shards and files must be JSON lists")
        tok = obj["tokenizer"]
        tokenizer = None if tok is None else TokenizerInfo.from_dict(tok, source=source)
        prov = obj["provenance"]
        if not isinstance(prov, dict):
            raise _fail(source, "provenance must be a JSON object")
        check_json_value(prov, source=source, fail=_fail)
        shard_infos = tuple(ShardInfo.from_dict(s, source=source, token_bytes=token_bytes) for s in shards)
        file_infos = tuple(FileInfo.from_dict(f, source=source) for f in files)
        unbound = sum(s.header_checksum is None for s in shard_infos)
        if (version >= 2 and unbound) or (version == 1 and unbound != len(shard_infos)):
            raise _fail(
                source,
                f"a v{version} manifest must list header_checksum for {'every' if version >= 2 else 'no'} shard",
            )
        names = [s.name for s in shard_infos] + [f.name for f in file_infos]
        if len(set(names)) != len(names) or MANIFEST_NAME in names:
            dup = sorted({n for n, c in Counter(names).items() if c > 1 or n == MANIFEST_NAME})
            raise _fail(source, f"duplicate or reserved file names {dup}")
        counts = {
            "num_tokens": sum(s.num_tokens for s in shard_infos),
            "num_docs": sum(s.num_docs for s in shard_infos),
            "num_shards": len(shard_infos),
        }
        for key, value in counts.items():
            if _int(obj[key], source=source, what=key, hi=1 << 62) != value:
                raise _fail(source, f"{key}={obj[key]} disagrees with the shard list (sum {value})")
        manifest = cls.__new__(cls)
        fields: dict[str, Any] = {
            "dtype": obj["dtype"],
            "shards": shard_infos,
            "files": file_infos,
            "tokenizer": tokenizer,
            "provenance": prov,
            "format_version": version,
        }
        for name, value in fields.items():
            object.__setattr__(manifest, name, value)
        object.__setattr__(manifest, "_fingerprint", manifest._compute_fingerprint())
        if obj["fingerprint"] != manifest.fingerprint:
            raise _fail(source, f"fingerprint {obj['fingerprint']!r} != computed {manifest.fingerprint}")
        return manifest


def _unbound(s: ShardInfo) -> ShardInfo:
    """The v1 form of an entry (no header checksum)."""
    return ShardInfo(s.name, s.num_tokens, s.num_docs, s.size, s.checksum)


def write_manifest(directory: str | os.PathLike[str], manifest: Manifest) -> str:
    """Atomically write `manifest.idx` then `manifest.json` (the commit point of a store); returns its path."""
    path = os.path.join(os.fspath(directory), MANIFEST_NAME)
    data = manifest.to_json_bytes()
    atomic_write(os.path.join(os.fspath(directory), INDEX_NAME), index_bytes(manifest, data))
    atomic_write(path, data)
    return path


def open_manifest(directory: str | os.PathLike[str]) -> Manifest:
    """The manifest of a local store: through `manifest.idx` when it matches `manifest.json` byte for byte
    (O(1) Python, shared pages), else `read_manifest` (parse and validate the JSON)."""
    directory = os.fspath(directory)
    path = os.path.join(directory, MANIFEST_NAME)
    try:
        with fmt.open_regular(path) as f:
            view, fid = map_readonly(f.fileno(), source=path)
    except (OSError, FormatError):
        return read_manifest(directory)
    if fid.size > MAX_MANIFEST_BYTES:
        raise _fail(path, f"manifest is {fid.size} bytes, over the {MAX_MANIFEST_BYTES}-byte limit")
    found = open_index(directory, view, ShardInfo)
    if found is None:
        return Manifest.from_json_bytes(bytes(view), source=path)
    meta, table = found
    return Manifest.from_index(meta, table, source=path)


def read_manifest(directory: str | os.PathLike[str]) -> Manifest:
    """Read and validate `directory/manifest.json`."""
    path = os.path.join(os.fspath(directory), MANIFEST_NAME)
    try:
        with fmt.open_regular(path) as f:
            data = _read_sized(f, path)
    except FileNotFoundError:
        raise ManifestError(
            f"{path}: no manifest: not a shardstore store, or its build never finished"
        ) from None
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read manifest: {exc}") from exc
    return Manifest.from_json_bytes(data, source=path)


def _read_sized(f: Any, path: str) -> bytes:
    """The whole file, reading by its size (never reserving MAX_MANIFEST_BYTES for a small one)."""
    size = os.fstat(f.fileno()).st_size
    if size > MAX_MANIFEST_BYTES:
        raise _fail(path, f"manifest is {size} bytes, over the {MAX_MANIFEST_BYTES}-byte limit")
    data = f.read(size)
    if len(data) != size or f.read(1):
        raise _fail(path, "manifest changed size while it was read; retry once the writer finished")
    return bytes(data)


def file_info(path: str | os.PathLike[str], *, name: str | None = None) -> FileInfo:
    """The manifest entry of an auxiliary file: its name (default: basename), size and xxh3_64."""
    path = os.fspath(path)
    name = check_name(name or os.path.basename(path), source=path)
    return FileInfo(name=name, size=os.path.getsize(path), checksum=fmt.file_checksum(path))


def read_shard_info(path: str | os.PathLike[str], *, name: str | None = None) -> ShardInfo:
    """The manifest entry of a shard file, from its validated header and its whole-file checksum."""
    path = os.fspath(path)
    with fmt.open_regular(path) as f:
        head = f.read(fmt.HEADER_SIZE)
        size = os.fstat(f.fileno()).st_size
    header = fmt.parse_header(head, source=path)
    if size != header.layout.file_size:
        raise FormatError(
            f"{path}: file is {size} bytes, its header says {header.layout.file_size} (truncated?)"
        )
    return ShardInfo(
        name=check_name(name or os.path.basename(path), source=path, what="shard name"),
        num_tokens=header.num_tokens,
        num_docs=header.num_docs,
        size=size,
        checksum=fmt.file_checksum(path),
        header_checksum=f"{fmt.stored_header_checksum(head):016x}",
    )
