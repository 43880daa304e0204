"""Input readers: files, directories, globs and fsspec URLs -> documents, with an explicit bad-input policy.

Design:
- `expand_inputs` turns the user's INPUT arguments into an ordered list of `InputFile`s. Order is the argument order,
  and inside a directory or glob the lexicographic order of the paths, so the list (and therefore every work unit
  index and every output byte) depends only on the arguments. Duplicates keep their first position.
- `iter_documents(file, options, counts)` yields `DocPiece`s. A document normally arrives as one piece; a huge
  plain-text document is streamed in pieces of about `piece_chars` characters, cut only between an ASCII letter and a
  space followed by an ASCII letter. For the built-in byte-level BPE pre-tokenizers (cl100k and gpt2 patterns) no
  pre-token crosses such a cut and no pre-token match looks past it, so encoding the pieces one by one gives exactly
  the ids of encoding the whole text, while memory stays bounded by the piece size (not the document size).
- Bad input is handled by policy and counted per reason in a `SkipCounts` (a plain dict subclass): invalid UTF-8
  (replace / skip / fail; default replace), malformed JSON lines, missing or non-string text fields, empty
  documents, documents containing NUL bytes (binary junk). Damage that makes the rest of a file unreadable
  (truncated .gz/.zst, a broken Parquet footer, a missing column) raises `InputError` naming the file: the caller
  fails that one work unit and keeps the others.
- Compressed streams are decoded here (gzip, zstd) rather than by fsspec so that truncation is detected: the zstd
  stream reader of `zstandard` silently stops at a truncated frame, ours raises.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import os
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Any, cast

from shardstore.errors import ConfigError, InputError

__all__ = [
    "DocPiece",
    "InputFile",
    "InputFormat",
    "ReadOptions",
    "SkipCounts",
    "SkipReason",
    "Utf8Policy",
    "expand_inputs",
    "iter_documents",
    "iter_texts",
]

_BLOCK = 1 << 20
_GLOB_CHARS = frozenset("*?[")


class InputFormat(StrEnum):
    TXT = "txt"
    JSONL = "jsonl"
    PARQUET = "parquet"


class Compression(StrEnum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


class Utf8Policy(StrEnum):
    """What to do with a document whose bytes are not valid UTF-8."""

    REPLACE = "replace"  # decode with U+FFFD for each bad sequence; counted as `invalid_utf8_replaced`
    SKIP = "skip"  # drop the document; counted as `invalid_utf8`
    FAIL = "fail"  # raise InputError naming file and byte offset: the work unit fails


class SkipReason(StrEnum):
    """Reasons a record of input did not become a document (or was altered), as counted in reports."""

    EMPTY = "empty_document"
    BLANK_LINE = "blank_line"
    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "json_not_an_object"
    MISSING_FIELD = "missing_text_field"
    NOT_A_STRING = "text_not_a_string"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_UTF8_REPLACED = "invalid_utf8_replaced"  # kept, with replacement characters
    BINARY = "binary_content"


class SkipCounts(dict[str, int]):
    """Per-reason counters (reason value -> count)."""

    def add(self, reason: SkipReason, n: int = 1) -> None:
        self[reason.value] = self.get(reason.value, 0) + n

    def merge(self, other: Mapping[str, int]) -> None:
        for key, value in other.items():
            self[key] = self.get(key, 0) + int(value)


_SUFFIXES: tuple[tuple[str, InputFormat, Compression], ...] = (
    (".jsonl.zst", InputFormat.JSONL, Compression.ZSTD),
    (".jsonl.zstd", InputFormat.JSONL, Compression.ZSTD),
    (".jsonl.gz", InputFormat.JSONL, Compression.GZIP),
    (".jsonl", InputFormat.JSONL, Compression.NONE),
    (".ndjson", InputFormat.JSONL, Compression.NONE),
    (".txt.zst", InputFormat.TXT, Compression.ZSTD),
    (".txt.gz", InputFormat.TXT, Compression.GZIP),
    (".txt", InputFormat.TXT, Compression.NONE),
    (".parquet", InputFormat.PARQUET, Compression.NONE),
)


def detect_format(path: str) -> tuple[InputFormat, Compression] | None:
    """(format, compression) from the file name suffix, or None if the suffix is not a supported input."""
    lower = path.lower()
    for suffix, fmt, comp in _SUFFIXES:
        if lower.endswith(suffix):
            return fmt, comp
    return None


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input file: its URL or path (as spelled by the user's argument), size in bytes and format."""

    url: str
    size: int
    format: InputFormat
    compression: Compression


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How to read inputs. `storage_options` go to fsspec for URLs (e.g. s3fs credentials and endpoint)."""

    text_field: str = "text"
    split_on: str | None = None
    utf8_errors: Utf8Policy = Utf8Policy.REPLACE
    piece_chars: int = 8 << 20
    storage_options: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.text_field:
            raise ConfigError("text_field must be a non-empty column/field name, got ''")
        if self.split_on == "":
            raise ConfigError("split_on must be a non-empty separator or None (whole file = one document)")
        try:
            object.__setattr__(self, "utf8_errors", Utf8Policy(self.utf8_errors))
        except ValueError:
            raise ConfigError(
                f"utf8_errors={self.utf8_errors!r} is not one of {[p.value for p in Utf8Policy]}"
            ) from None
        if self.piece_chars < 1024:
            raise ConfigError(f"piece_chars={self.piece_chars} is too small; use at least 1024")


@dataclass(frozen=True, slots=True)
class DocPiece:
    """Text of (part of) a document. `record` is the 0-based line / row / piece index inside its file."""

    text: str
    record: int
    last: bool = True  # False while more pieces of the same document follow


# ----------------------------------------------------------------------------------------------- expansion


def _is_url(path: str) -> bool:
    return "://" in path


def _fs_for(url: str, storage_options: Mapping[str, Any] | None) -> tuple[Any, str]:
    import fsspec.core

    try:
        return fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise InputError(
            f"cannot open {url!r}: {exc} (is the fsspec backend for this protocol installed?)"
        ) from exc


def expand_inputs(
    inputs: Sequence[str] | str, *, storage_options: Mapping[str, Any] | None = None
) -> list[InputFile]:
    """Resolve files, directories (recursive), globs and fsspec URLs into an ordered, de-duplicated file list.

    Raises:
        InputError: an argument matches nothing, or names a file whose suffix is not a supported format.
    """
    if isinstance(inputs, str | os.PathLike):
        inputs = [os.fspath(inputs)]
    out: list[InputFile] = []
    seen: set[str] = set()
    for arg in inputs:
        arg = os.fspath(arg)
        found = _expand_one(arg, storage_options)
        if not found:
            raise InputError(f"input {arg!r} matches no supported file (.txt, .jsonl[.gz|.zst], .parquet)")
        for item in found:
            if item.url not in seen:
                seen.add(item.url)
                out.append(item)
    return out


def _expand_one(arg: str, storage_options: Mapping[str, Any] | None) -> list[InputFile]:
    if _is_url(arg):
        fs, path = _fs_for(arg, storage_options)
        protocol = arg.split("://", 1)[0]

        def unstrip(p: str) -> str:
            return p if "://" in p else f"{protocol}://{p.lstrip('/') if protocol != 'file' else p}"

        # One listing call with sizes (`detail=True`), not one request per file: object stores list in pages.
        if any(c in path for c in _GLOB_CHARS):
            listing = fs.glob(path, detail=True)
        elif fs.isdir(path):
            root = path.rstrip("/")
            listing = {p: i for p, i in fs.find(path, detail=True).items() if not _hidden(p[len(root) :])}
        elif fs.exists(path):
            return [_explicit_file(unstrip(path), int(fs.size(path) or 0))]
        else:
            raise InputError(f"input {arg!r} does not exist")
        found = [
            _make_file(unstrip(p), int(info.get("size") or 0), explicit=False)
            for p, info in sorted(listing.items())
            if info.get("type", "file") == "file"
        ]
        return [f for f in found if f is not None]
    if any(c in arg for c in _GLOB_CHARS):
        import glob

        paths = sorted(p for p in glob.glob(arg, recursive=True) if os.path.isfile(p))
    elif os.path.isdir(arg):
        paths = sorted(p for p in _walk(arg) if not _hidden(p[len(arg) :]))
    elif os.path.isfile(arg):
        return [_explicit_file(arg, os.path.getsize(arg))]
    else:
        raise InputError(f"input {arg!r} does not exist (expected a file, directory, glob or fsspec URL)")
    files = [_make_file(p, os.path.getsize(p), explicit=False) for p in paths]
    return [f for f in files if f is not None]


def _walk(top: str) -> Iterator[str]:
    for root, _dirs, names in os.walk(top):
        for name in names:
            yield os.path.join(root, name)


def _hidden(relative: str) -> bool:
    """Hidden files and folders (a part starting with '.') inside a directory input are not inputs."""
    return any(part.startswith(".") for part in relative.replace(os.sep, "/").split("/") if part)


def _explicit_file(url: str, size: int) -> InputFile:
    """A file named by the user: an unsupported suffix is an error (not silently ignored)."""
    found = _make_file(url, size, explicit=True)
    if found is None:  # pragma: no cover - _make_file raises for explicit files
        raise InputError(f"input {url!r} has an unsupported suffix")
    return found


def _make_file(url: str, size: int, *, explicit: bool) -> InputFile | None:
    detected = detect_format(url)
    if detected is None:
        if explicit:
            raise InputError(
                f"input {url!r} has an unsupported suffix; expected .txt, .jsonl, .jsonl.gz, .jsonl.zst or .parquet"
            )
        return None  # directories and globs silently ignore other files (READMEs, checksums, ...)
    return InputFile(url=url, size=size, format=detected[0], compression=detected[1])


# ----------------------------------------------------------------------------------------------- byte streams


class _ZstdReader(io.RawIOBase):
    """Streaming zstd decoder over possibly several concatenated frames that raises on truncation."""

    def __init__(self, raw: IO[bytes], name: str) -> None:
        import zstandard

        self._raw = raw
        self._name = name
        self._zstd = zstandard
        self._dec = zstandard.ZstdDecompressor().decompressobj()
        self._pending = b""
        self._pos = 0  # read position in _pending (no re-slicing: that would copy the rest each call)
        self._in_frame = False
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while self._pos >= len(self._pending) and not self._done:
            chunk = self._raw.read(_BLOCK // 4)
            if not chunk:
                if self._in_frame:
                    raise InputError(f"{self._name}: truncated zstd stream (the last frame never ends)")
                self._done = True
                break
            self._pending, self._pos = self._decompress(chunk), 0
        n = min(len(view), len(self._pending) - self._pos)
        view[:n] = memoryview(self._pending)[self._pos : self._pos + n]
        self._pos += n
        return n

    def _decompress(self, chunk: bytes) -> bytes:
        out = []
        while chunk:
            try:
                self._in_frame = True
                out.append(self._dec.decompress(chunk))
            except self._zstd.ZstdError as exc:
                raise InputError(f"{self._name}: corrupt zstd data: {exc}") from exc
            if self._dec.eof:
                self._in_frame = False
                chunk = self._dec.unused_data
                self._dec = self._zstd.ZstdDecompressor().decompressobj()
            else:
                chunk = b""
        return b"".join(out)


def _open_raw(file: InputFile, options: ReadOptions) -> IO[bytes]:
    if _is_url(file.url):
        fs, path = _fs_for(file.url, options.storage_options)
        try:
            return fs.open(path, "rb")
        except OSError as exc:
            raise InputError(f"cannot open {file.url!r}: {exc}") from exc
    try:
        return open(file.url, "rb")
    except OSError as exc:
        raise InputError(f"cannot open {file.url!r}: {exc}") from exc


def _open_stream(file: InputFile, raw: IO[bytes]) -> IO[bytes]:
    if file.compression is Compression.GZIP:
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    if file.compression is Compression.ZSTD:
        return io.BufferedReader(_ZstdReader(raw, file.url), buffer_size=_BLOCK)
    return raw


# ----------------------------------------------------------------------------------------------- decoding


class _Utf8Checker:
    """Decodes blocks of one document with 'replace' and tells whether any byte sequence was invalid.

    A replacement character in the output is a real U+FFFD of the input unless the output has more of them than
    the input has encoded U+FFFD sequences (EF BF BD), which is counted across block boundaries.
    """

    __slots__ = ("_dec", "_fffd_in", "_fffd_out", "_tail", "bad_offset", "offset")

    def __init__(self) -> None:
        self._dec = codecs.getincrementaldecoder("utf-8")("replace")
        self._tail = b""
        self._fffd_in = 0
        self._fffd_out = 0
        self.offset = 0
        self.bad_offset: int | None = None

    def decode(self, data: bytes, final: bool = False) -> str:
        text = self._dec.decode(data, final)
        n_out = text.count("\ufffd")
        if n_out:
            self._fffd_out += n_out
            self._fffd_in += (self._tail + data).count(b"\xef\xbf\xbd")
            if self.bad_offset is None and self._fffd_out > self._fffd_in:
                self.bad_offset = self.offset + _first_invalid(data)
        self._tail = data[-2:]
        self.offset += len(data)
        return text

    @property
    def invalid(self) -> bool:
        return self._fffd_out > self._fffd_in


def _first_invalid(data: bytes) -> int:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return 0


def _decode_whole(
    data: bytes, file: InputFile, record: int, options: ReadOptions, counts: SkipCounts
) -> str | None:
    """Decode one record's bytes by the UTF-8 policy; None means the record is skipped (and counted)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if _keep_bad_utf8(file, record, exc.start, options, counts):
            return data.decode("utf-8", "replace")
        return None


def _keep_bad_utf8(
    file: InputFile, record: int, offset: int, options: ReadOptions, counts: SkipCounts
) -> bool:
    """Apply the UTF-8 policy to a record with invalid bytes: True = keep it with U+FFFD, False = skip it."""
    policy = options.utf8_errors
    if policy is Utf8Policy.FAIL:
        raise InputError(
            f"{file.url}: invalid UTF-8 in record {record} at byte {offset} of the record "
            "(use utf8_errors='replace' or 'skip' to keep going)"
        )
    if policy is Utf8Policy.SKIP:
        counts.add(SkipReason.INVALID_UTF8)
        return False
    counts.add(SkipReason.INVALID_UTF8_REPLACED)
    return True


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# ----------------------------------------------------------------------------------------------- readers


def iter_documents(file: InputFile, options: ReadOptions, counts: SkipCounts) -> Iterator[DocPiece]:
    """Yield the documents of one input file as `DocPiece`s, counting skipped records in `counts`.

    Raises:
        InputError: the file cannot be read to its end (truncated or corrupt compressed stream, broken Parquet,
            missing column, invalid UTF-8 under the 'fail' policy). Pieces yielded before remain valid.
    """
    raw = _open_raw(file, options)
    try:
        if file.format is InputFormat.PARQUET:
            yield from _read_parquet(file, raw, options, counts)
            return
        stream = _open_stream(file, raw)
        try:
            if file.format is InputFormat.JSONL:
                yield from _read_jsonl(file, stream, options, counts)
            elif options.split_on is not None:
                yield from _read_txt_split(file, stream, options, counts)
            else:
                yield from _read_txt_whole(file, stream, options, counts)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{file.url}: cannot read to the end ({type(exc).__name__}: {exc})") from exc
        finally:
            if stream is not raw:
                stream.close()
    finally:
        raw.close()


_NO_VALUE = object()


def _fast_json_loads() -> Any:
    """`orjson.loads` when installed (about 2x faster here), else None. It rejects invalid UTF-8 and lone
    surrogates, which then take the `json` path, so results are identical with or without it."""
    try:
        import orjson
    except ImportError:
        return None
    return orjson.loads


def _read_jsonl(
    file: InputFile, stream: IO[bytes], options: ReadOptions, counts: SkipCounts
) -> Iterator[DocPiece]:
    field_name = options.text_field
    fast = _fast_json_loads()
    for lineno, line in enumerate(stream):
        if b"\x00" in line:
            counts.add(SkipReason.BINARY)
            continue
        bad_at = -1
        decoded = ""
        obj: Any = _NO_VALUE
        if fast is not None:
            try:  # strict UTF-8, no lone surrogates: anything unusual falls back to the exact slow path below
                obj = fast(line)
            except ValueError:
                obj = _NO_VALUE
        if obj is _NO_VALUE:
            if not line or line.isspace():
                counts.add(SkipReason.BLANK_LINE)
                continue
            try:
                decoded = line.decode("utf-8")
            except UnicodeDecodeError as exc:  # the policy applies only if the record is otherwise a document
                decoded, bad_at = line.decode("utf-8", "replace"), exc.start
            try:
                obj = json.loads(decoded)
            except ValueError:
                counts.add(SkipReason.MALFORMED_JSON)
                continue
        if not isinstance(obj, dict):
            counts.add(SkipReason.NOT_AN_OBJECT)
            continue
        if field_name not in obj:
            counts.add(SkipReason.MISSING_FIELD)
            continue
        text = obj[field_name]
        if not isinstance(text, str):
            counts.add(SkipReason.NOT_A_STRING)
            continue
        if bad_at >= 0 and "\ufffd" in text:
            if not _keep_bad_utf8(file, lineno, bad_at, options, counts):
                continue
        elif "\\u" in decoded and _has_lone_surrogate(text):  # JSON escapes can encode invalid UTF-16
            if not _keep_bad_utf8(file, lineno, 0, options, counts):
                continue
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        if not text:
            counts.add(SkipReason.EMPTY)
            continue
        yield DocPiece(text, lineno)


def _read_parquet(
    file: InputFile, raw: IO[bytes], options: ReadOptions, counts: SkipCounts
) -> Iterator[DocPiece]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    column = options.text_field
    try:
        pf = pq.ParquetFile(raw)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"{file.url}: not a readable Parquet file ({exc})") from exc
    names = pf.schema_arrow.names
    if column not in names:
        raise InputError(
            f"{file.url}: no column {column!r} (columns: {names}); pass text_field=/--text-field"
        )
    row = 0
    try:
        for batch in pf.iter_batches(columns=[column], batch_size=4096):
            for value in batch.column(0).to_pylist():
                record = row
                row += 1
                if value is None:
                    counts.add(SkipReason.MISSING_FIELD)
                    continue
                if isinstance(value, bytes):
                    if b"\x00" in value:
                        counts.add(SkipReason.BINARY)
                        continue
                    value = _decode_whole(value, file, record, options, counts)
                    if value is None:
                        continue
                elif not isinstance(value, str):
                    counts.add(SkipReason.NOT_A_STRING)
                    continue
                if not value:
                    counts.add(SkipReason.EMPTY)
                    continue
                yield DocPiece(value, record)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{file.url}: Parquet read failed after row {row} ({exc})") from exc


def _read_txt_whole(
    file: InputFile, stream: IO[bytes], options: ReadOptions, counts: SkipCounts
) -> Iterator[DocPiece]:
    """A whole file is one document; streamed in safe pieces when larger than `options.piece_chars`.

    A NUL byte (binary content) or invalid UTF-8 under the skip policy drops the document when found before the
    first piece was handed out; in a streamed document found later it raises `InputError` (the unit fails), since
    pieces already handed out cannot be taken back.
    """
    checker = _Utf8Checker()
    buf = ""
    pending: str | None = None  # a piece held back until we know whether it is the last one
    streamed = False
    while True:
        data = stream.read(_BLOCK)
        final = not data
        if b"\x00" in data:
            if streamed:
                raise InputError(
                    f"{file.url}: NUL byte near byte {checker.offset}: binary content in a text file"
                )
            counts.add(SkipReason.BINARY)
            return
        buf += checker.decode(data, final)
        if checker.invalid and options.utf8_errors is not Utf8Policy.REPLACE:
            if streamed and options.utf8_errors is Utf8Policy.SKIP:
                raise InputError(
                    f"{file.url}: invalid UTF-8 at byte {checker.bad_offset} of a document streamed in pieces; "
                    "it cannot be skipped any more (use utf8_errors='replace')"
                )
            _keep_bad_utf8(file, 0, checker.bad_offset or 0, options, counts)
            return
        while len(buf) > options.piece_chars:
            cut = _safe_cut(buf, options.piece_chars)
            if cut is None:
                break
            if pending is not None:
                streamed = True
                yield DocPiece(pending, 0, last=False)
            pending, buf = buf[:cut], buf[cut:]
        if final:
            break
    if checker.invalid:
        counts.add(SkipReason.INVALID_UTF8_REPLACED)
    if pending is not None:
        yield DocPiece(pending, 0, last=False)
    elif not buf:
        counts.add(SkipReason.EMPTY)
        return
    yield DocPiece(buf, 0, last=True)


def _is_ascii_letter(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def _safe_cut(buf: str, target: int) -> int | None:
    """Largest index i <= target with buf[i-1], buf[i+1] ASCII letters and buf[i] == ' ', or None."""
    end = min(target, len(buf) - 2)
    while True:
        i = buf.rfind(" ", 1, end + 1)
        if i <= 0:
            return None
        if _is_ascii_letter(buf[i - 1]) and _is_ascii_letter(buf[i + 1]):
            return i
        end = i - 1


def _read_txt_split(
    file: InputFile, stream: IO[bytes], options: ReadOptions, counts: SkipCounts
) -> Iterator[DocPiece]:
    """`--split-on SEP`: each separator-delimited part is a document (record = part index)."""
    sep = options.split_on
    if sep is None:  # pragma: no cover - dispatch guarantees it
        raise ConfigError("split_on is required here")
    sep_bytes = sep.encode("utf-8")
    buf = b""
    record = 0
    eof = False
    while not eof:
        data = stream.read(_BLOCK)
        eof = not data
        parts = (buf + data).split(sep_bytes)
        buf = b"" if eof else parts.pop()
        if eof and parts and not parts[-1]:
            parts.pop()  # a separator at the very end does not start another (empty) document
        for part in parts:
            doc = _txt_part(part, file, record, options, counts)
            record += 1
            if doc is not None:
                yield doc


def _txt_part(
    data: bytes, file: InputFile, record: int, options: ReadOptions, counts: SkipCounts
) -> DocPiece | None:
    if not data:
        counts.add(SkipReason.EMPTY)
        return None
    if b"\x00" in data:
        counts.add(SkipReason.BINARY)
        return None
    text = _decode_whole(data, file, record, options, counts)
    if text is None:
        return None
    return DocPiece(text, record)


# ----------------------------------------------------------------------------------------------- convenience


def iter_texts(
    inputs: Sequence[str] | str,
    *,
    text_field: str = "text",
    split_on: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Iterator[str]:
    """Every document text of the inputs, in deterministic order, with the default bad-input policy.

    Unreadable files (truncated compressed streams, broken Parquet) raise `InputError` naming the file.
    """
    options = ReadOptions(text_field=text_field, split_on=split_on, storage_options=storage_options)
    counts = SkipCounts()
    for file in expand_inputs(inputs, storage_options=storage_options):
        parts: list[str] = []
        for piece in iter_documents(file, options, counts):
            if piece.last and not parts:
                yield piece.text
            elif piece.last:
                parts.append(piece.text)
                yield "".join(parts)
                parts = []
            else:
                parts.append(piece.text)
