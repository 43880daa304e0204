"""The demo's built-in corpus: the Python standard library as "code", its own docstrings and comments as "text".

Every machine that runs shardstore has these files, so `shardstore demo` needs no download. Design:
- Files are the `*.py` under `sysconfig`'s stdlib folder (site-packages and dist-packages excluded), visited in a
  keyed hash order of their relative paths: a cap on the corpus size then still samples every package instead of the
  alphabetically first ones, and the order (hence every output byte) depends only on the set of files.
- "code" documents are whole source files, decoded as Python does (`tokenize.open`, honouring coding cookies).
- "text" documents are the prose of one file: module/class/function docstrings (`ast.get_docstring`) and comment
  blocks (`tokenize` COMMENT tokens, consecutive lines joined into paragraphs), minus pragmas and rulers.
- Files that cannot be decoded or parsed (the stdlib's own test data has a few on purpose) are counted per reason
  and left out; nothing else is dropped silently.
- Both corpora are written as JSONL (`{"text": ..., "path": ...}`), only when their bytes changed, so a re-run
  leaves the files (and the builds that read them) untouched.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import io
import json
import os
import sysconfig
import tokenize
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from shardstore.util.cores import usable_cores
from shardstore.util.durable import atomic_write

__all__ = ["CorpusInfo", "collect_stdlib_corpus", "prose_of", "stdlib_files"]

_EXCLUDED_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__"})
_PRAGMAS = ("noqa", "type:", "pragma", "fmt:", "pylint:", "-*-", "!/usr/bin", "XXX", "TODO")


@dataclass(slots=True)
class CorpusInfo:
    """What `collect_stdlib_corpus` wrote: the two JSONL files and their counts."""

    code_path: Path
    text_path: Path
    root: str
    files_seen: int = 0
    code_docs: int = 0
    text_docs: int = 0
    code_bytes: int = 0
    text_bytes: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def stdlib_files(root: str | None = None) -> list[tuple[str, Path]]:
    """(relative path, path) of every stdlib `*.py`, in a keyed hash order of the relative path."""
    base = Path(root or sysconfig.get_paths()["stdlib"])
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in _EXCLUDED_DIRS)
        for name in filenames:
            if name.endswith(".py"):
                path = Path(dirpath) / name
                found.append((path.relative_to(base).as_posix(), path))
    return sorted(
        found, key=lambda rp: (hashlib.blake2b(rp[0].encode(), digest_size=8, key=b"demo").digest(), rp[0])
    )


def prose_of(source: str) -> str:
    """Docstrings and comment paragraphs of one Python source, joined by blank lines ("" if none)."""
    tree = ast.parse(source)
    parts: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=True)
            if doc and doc.strip():
                parts.append(doc.strip())
    parts.extend(_comment_paragraphs(source))
    return "\n\n".join(parts)


def _comment_paragraphs(source: str) -> Iterator[str]:
    para: list[str] = []
    last_line, block = -2, False
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.COMMENT:
            continue
        text = tok.string.lstrip("#").strip()
        keep = any(c.isalpha() for c in text) and not any(p in text for p in _PRAGMAS)
        # A block is consecutive full-line comments; a trailing comment stands alone.
        full_line = tok.line.lstrip().startswith("#")
        if para and (tok.start[0] != last_line + 1 or not keep or not full_line or not block):
            yield " ".join(para)
            para = []
        if keep:
            para.append(text)
        last_line, block = tok.start[0], full_line
    if para:
        yield " ".join(para)


def _extract(item: tuple[str, Path]) -> tuple[str, str | None, str | None, str | None]:
    """(relative path, source, prose, skip reason) of one file; runs in a worker process."""
    rel, path = item
    try:
        with tokenize.open(path) as f:
            source = f.read()
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return rel, None, None, "undecodable_source"
    except OSError:
        return rel, None, None, "unreadable_file"
    if not source.strip():
        return rel, None, None, "empty_file"
    try:
        return rel, source, prose_of(source), None
    except (SyntaxError, ValueError, tokenize.TokenError):
        return rel, source, None, "unparsable_source"


def collect_stdlib_corpus(
    out_dir: str | os.PathLike[str],
    *,
    max_bytes: int,
    root: str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> CorpusInfo:
    """Write `code.jsonl` and `text.jsonl` under `out_dir` from the stdlib files, up to about `max_bytes` of code.

    Args:
        max_bytes: cap on the code corpus: files are taken in order until their sizes on disk reach it (the file
            that crosses it is included), so the selection is known before any file is read.
        workers: processes that decode and parse files (default: all CPUs); the output does not depend on it.
    """
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = CorpusInfo(code_path=out / "code.jsonl", text_path=out / "text.jsonl", root="")
    info.root = str(Path(root or sysconfig.get_paths()["stdlib"]))
    selected, total = [], 0
    for rel, path in stdlib_files(root):
        if total >= max_bytes:
            break
        selected.append((rel, path))
        total += path.stat().st_size
    if workers is None:  # a process start costs about as much as parsing 64 files
        workers = min(usable_cores(), len(selected) // 64 + 1)
    code_lines: list[bytes] = []
    text_lines: list[bytes] = []
    with contextlib.ExitStack() as stack:
        if workers > 1 and len(selected) > 1:
            import multiprocessing

            pool = stack.enter_context(
                ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            )
            results = pool.map(_extract, selected, chunksize=16)
        else:
            results = map(_extract, selected)
        bar = stack.enter_context(
            tqdm(total=len(selected), unit="file", desc="corpus", disable=not progress, leave=False)
        )
        for rel, source, prose, skip in results:
            bar.update(1)
            info.files_seen += 1
            if skip is not None:
                info.skipped[skip] += 1
            if source is None:
                continue
            code_lines.append(_jsonl(source, rel))
            info.code_docs += 1
            info.code_bytes += len(source.encode("utf-8", "surrogatepass"))
            if prose:
                text_lines.append(_jsonl(prose, rel))
                info.text_docs += 1
                info.text_bytes += len(prose.encode("utf-8", "surrogatepass"))
    _write_if_changed(info.code_path, b"".join(code_lines))
    _write_if_changed(info.text_path, b"".join(text_lines))
    return info


def _jsonl(text: str, rel: str) -> bytes:
    return (json.dumps({"text": text, "path": rel}, ensure_ascii=False) + "\n").encode(
        "utf-8", "surrogatepass"
    )


def _write_if_changed(path: Path, data: bytes) -> None:
    atomic_write(path, data, skip_if_same=True)
