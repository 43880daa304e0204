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
from collections.abc import Iterator, Mapping, Sequence
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
from shardstore.util.fsurl import is_url, url_to_fs

__all__ = [
    "Compression",
    "DocPiece",
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
]

_GLOB_CHARS = frozenset("*?[")


# ----------------------------------------------------------------------------------------------- expansion


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


def _expand_one_unchecked(arg: str, storage_options: Mapping[str, Any] | None) -> list[InputFile]:
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
    for batch in iter_batches(file, options, counts, span=span):
        if isinstance(batch, PackedDocs):
            yield from batch.pieces()
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
