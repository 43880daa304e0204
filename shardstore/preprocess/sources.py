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
- `iter_batches` is the build's entry point: the same documents, but where a reader holds many texts side by side in
  one UTF-8 buffer (JSON Lines scanned natively, Parquet string columns) they come as one `PackedDocs` (buffer +
  spans + records) that the tokenizer encodes without a Python object per document. `iter_documents` is
  `iter_batches` with every `PackedDocs` unpacked into `DocPiece`s.
- The per-format readers live in `shardstore.preprocess.readers` (one module per format), the types in
  `shardstore.preprocess.inputs`; this module holds the expansion and the entry points.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shardstore.errors import InputError
from shardstore.preprocess.inputs import (  # re-exported: the types belong to this module's entry points
    Compression,
    DocPiece,
    InputFile,
    InputFormat,
    PackedDocs,
    ReadOptions,
    SkipCounts,
    SkipReason,
    Utf8Policy,
    detect_format,
)
from shardstore.preprocess.modes import DEFAULT_MAX_SKIPPED_FRACTION
from shardstore.util.fsurl import is_url, url_to_fs

__all__ = [
    "Compression",
    "DocPiece",
    "Expansion",
    "InputFile",
    "InputFormat",
    "PackedDocs",
    "ReadOptions",
    "SkipCounts",
    "SkipReason",
    "Utf8Policy",
    "detect_format",
    "expand_inputs",
    "iter_batches",
    "iter_documents",
    "iter_texts",
    "walk_inputs",
]

_GLOB_CHARS = frozenset("*?[")


# ----------------------------------------------------------------------------------------------- expansion


@dataclass(frozen=True, slots=True)
class Expansion:
    """The expanded inputs, and the files that directories and globs held but that are not inputs (by suffix)."""

    files: list[InputFile]
    ignored: list[str]


def expand_inputs(
    inputs: Sequence[str] | str, *, storage_options: Mapping[str, Any] | None = None
) -> list[InputFile]:
    """Resolve files, directories (recursive), globs and fsspec URLs into an ordered, de-duplicated file list.

    Raises:
        InputError: an argument matches nothing, or names a file whose suffix is not a supported format.
    """
    return walk_inputs(inputs, storage_options=storage_options).files


def walk_inputs(
    inputs: Sequence[str] | str, *, storage_options: Mapping[str, Any] | None = None
) -> Expansion:
    """`expand_inputs`, also listing the files a directory or glob held that are not inputs (by their suffix; a
    `.json` file is an input when it holds JSON Lines), so that callers report them instead of dropping them
    silently."""
    if isinstance(inputs, str | os.PathLike):
        inputs = [os.fspath(inputs)]
    out: list[InputFile] = []
    ignored: list[str] = []
    seen: set[str] = set()
    for arg in inputs:
        arg = os.fspath(arg)
        found, skipped = _expand_one(arg, storage_options)
        ignored.extend(u for u in skipped if u not in ignored)
        if not found:
            hint = (
                f" (it holds only {', '.join(skipped[:3])}{', ...' if len(skipped) > 3 else ''})"
                if skipped
                else ""
            )
            raise InputError(
                f"input {arg!r} matches no supported file (.txt, .jsonl[.gz|.zst], .json Lines, .parquet){hint}"
            )
        for item in found:
            if item.url not in seen:
                seen.add(item.url)
                out.append(item)
    return Expansion(out, ignored)


def _expand_one(arg: str, storage_options: Mapping[str, Any] | None) -> tuple[list[InputFile], list[str]]:
    try:
        return _expand_one_unchecked(arg, storage_options)
    except InputError:
        raise
    except OSError as exc:  # permissions, network
        raise InputError(f"cannot list input {arg!r}: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # remote backends raise their own types (botocore credentials, HTTP, ...)
        if not is_url(arg):
            raise
        raise InputError(
            f"cannot list input {arg!r}: {type(exc).__name__}: {exc} (check the URL, credentials and "
            "--storage-options)"
        ) from exc


def _expand_one_unchecked(
    arg: str, storage_options: Mapping[str, Any] | None
) -> tuple[list[InputFile], list[str]]:
    if is_url(arg):
        fs, path = url_to_fs(arg, storage_options)
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
            return [_explicit_file(unstrip(path), int(fs.size(path) or 0), storage_options)], []
        else:
            raise InputError(f"input {arg!r} does not exist")
        sized = [
            (unstrip(p), int(info.get("size") or 0))
            for p, info in sorted(listing.items())
            if info.get("type", "file") == "file"
        ]
        return _split_found(sized, storage_options)
    if any(c in arg for c in _GLOB_CHARS):
        import glob

        paths = sorted(p for p in glob.glob(arg, recursive=True) if os.path.isfile(p))
    elif os.path.isdir(arg):
        paths = sorted(p for p in _walk(arg) if not _hidden(p[len(arg) :]))
    elif os.path.isfile(arg):
        return [_explicit_file(arg, os.path.getsize(arg), storage_options)], []
    else:
        raise InputError(f"input {arg!r} does not exist (expected a file, directory, glob or fsspec URL)")
    return _split_found([(p, os.path.getsize(p)) for p in paths], storage_options)


def _split_found(
    sized: Sequence[tuple[str, int]], storage_options: Mapping[str, Any] | None
) -> tuple[list[InputFile], list[str]]:
    """The inputs among the files a directory or glob held, and the others (named, never silently dropped)."""
    files: list[InputFile] = []
    ignored: list[str] = []
    for url, size in sized:
        found = _make_file(url, size, explicit=False, storage_options=storage_options)
        if found is None:
            ignored.append(url)
        else:
            files.append(found)
    return files, ignored


def _walk(top: str) -> Iterator[str]:
    for root, _dirs, names in os.walk(top):
        for name in names:
            yield os.path.join(root, name)


def _hidden(relative: str) -> bool:
    """Hidden files and folders (a part starting with '.') inside a directory input are not inputs."""
    return any(part.startswith(".") for part in relative.replace(os.sep, "/").split("/") if part)


def _explicit_file(url: str, size: int, storage_options: Mapping[str, Any] | None) -> InputFile:
    """A file named by the user: an unsupported suffix is an error (not silently ignored)."""
    found = _make_file(url, size, explicit=True, storage_options=storage_options)
    if found is None:  # pragma: no cover - _make_file raises for explicit files
        raise InputError(f"input {url!r} has an unsupported suffix")
    return found


def _make_file(
    url: str, size: int, *, explicit: bool, storage_options: Mapping[str, Any] | None = None
) -> InputFile | None:
    detected = detect_format(url)
    if detected is None and url.lower().endswith(".json"):
        # HF datasets' `to_json` (and many tools) write JSON Lines under a .json name: read those as such.
        if _holds_json_lines(url, storage_options):
            return InputFile(url=url, size=size, format=InputFormat.JSONL, compression=Compression.NONE)
        if explicit:
            raise InputError(
                f"input {url!r} is a .json file that does not hold JSON Lines (its first line is not a JSON "
                "object); write one JSON object per line (.jsonl)"
            )
        return None
    if detected is None:
        if explicit:
            raise InputError(
                f"input {url!r} has an unsupported suffix; expected .txt, .jsonl, .jsonl.gz, .jsonl.zst, "
                ".json (JSON Lines) or .parquet"
            )
        return None  # directories and globs list other files (READMEs, checksums, ...) as ignored
    return InputFile(url=url, size=size, format=detected[0], compression=detected[1])


_SNIFF_BYTES = 1 << 20


def _holds_json_lines(url: str, storage_options: Mapping[str, Any] | None) -> bool:
    """True when the first line of `url` (within its first MiB) is a whole JSON object: JSON Lines. A JSON document
    (an array, or an object spread over lines) is not."""
    import json

    try:
        if is_url(url):
            fs, path = url_to_fs(url, storage_options)
            with fs.open(path, "rb") as f:
                head = f.read(_SNIFF_BYTES)
        else:
            with open(url, "rb") as f:
                head = f.read(_SNIFF_BYTES)
    except OSError:
        return False
    first = head.split(b"\n", 1)[0].strip()
    if not first.startswith(b"{"):
        return False
    try:
        return isinstance(json.loads(first), dict)
    except ValueError:
        return False


# ----------------------------------------------------------------------------------------------- reading


def iter_documents(
    file: InputFile, options: ReadOptions, counts: SkipCounts, *, span: tuple[int, int] | None = None
) -> Iterator[DocPiece]:
    """Yield the documents of one input file as `DocPiece`s, counting skipped records in `counts`.

    Args:
        span: only part of the file (see `shardstore.preprocess.workunits`): a byte range `[start, stop)` of an uncompressed
            JSON Lines file (the lines that *start* in it; records are then byte offsets), or a range of Parquet row
            groups (records stay row numbers of the file).

    Raises:
        InputError: the file cannot be read to its end (truncated or corrupt compressed stream, broken Parquet,
            missing column, invalid UTF-8 under the 'fail' policy). Pieces yielded before remain valid.
    """
    from shardstore.preprocess.readers.utf8 import decode_packed

    for batch in iter_batches(file, options, counts, span=span):
        if isinstance(batch, PackedDocs):
            try:
                docs = list(batch.pieces())
            except UnicodeDecodeError:  # unchecked Parquet strings: the UTF-8 policy, row by row
                docs = decode_packed(batch, file, options, counts)
            yield from docs
        else:
            yield batch


def iter_batches(
    file: InputFile,
    options: ReadOptions,
    counts: SkipCounts,
    *,
    span: tuple[int, int] | None = None,
    digest: Any = None,
) -> Iterator[DocPiece | PackedDocs]:
    """The documents of `iter_documents`, in the same order, as `DocPiece`s and `PackedDocs` batches
    (`digest`: an `inputdigest.InputDigest` that hashes the bytes as they are read)."""
    from shardstore.preprocess.readers import read_batches

    return read_batches(file, options, counts, span=span, digest=digest)


# ----------------------------------------------------------------------------------------------- convenience


def iter_texts(
    inputs: Sequence[str] | str,
    *,
    text_field: str = "text",
    split_on: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    max_skipped_fraction: float = DEFAULT_MAX_SKIPPED_FRACTION,
    on_ignored: Callable[[list[str]], None] | None = None,
) -> Iterator[str]:
    """Every document text of the inputs, in deterministic order, with the default bad-input policy.

    Unreadable files (truncated compressed streams, broken Parquet) raise `InputError` naming the file, and so do
    inputs that give (almost) no documents (the yield check of `shardstore.preprocess.yieldcheck`: per file, and
    over all files). `on_ignored` is called once with the files the directories held that are not inputs.
    """
    from shardstore.preprocess.yieldcheck import (
        below_yield,
        check_fraction,
        check_yield,
        skipped_records,
        yield_message,
    )

    check_fraction(max_skipped_fraction)
    options = ReadOptions(text_field=text_field, split_on=split_on, storage_options=storage_options)
    total = SkipCounts()
    docs = 0
    found = walk_inputs(inputs, storage_options=storage_options)
    if on_ignored is not None and found.ignored:
        on_ignored(found.ignored)
    for file in found.files:
        parts: list[str] = []
        counts = SkipCounts()
        file_docs = 0
        for piece in iter_documents(file, options, counts):
            if piece.last:
                file_docs += 1
            if piece.last and not parts:
                yield piece.text
            elif piece.last:
                parts.append(piece.text)
                yield "".join(parts)
                parts = []
            else:
                parts.append(piece.text)
        check_yield(file, file_docs, counts, options, max_skipped_fraction)
        docs += file_docs
        total.merge(counts)
    skipped = skipped_records(total)
    if below_yield(docs, skipped, max_skipped_fraction):
        raise InputError(
            yield_message(None, docs, skipped, options, max_skipped_fraction, where="the inputs")
        )
