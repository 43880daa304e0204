"""Evaluation sets for decontamination: items read from ``.jsonl`` / ``.parquet``, tokenized into n-gram hashes.

An item is one record; its text is the values of the chosen fields (default ``text``; e.g. ``question``,
``choices``, ``answer``), each value a *segment* (a list value, such as ``choices``, gives one segment per
element; numbers are written as text). Segments are tokenized separately with the stores' tokenizer, so no
n-gram spans two fields. Problems are counted per eval set and never stop the run: ``bad_record`` (not a JSON
object), ``missing_field`` (none of the fields present), ``empty`` (only blank text), ``too_short`` (no segment
has n tokens), ``degenerate`` n-grams, by two rules: fewer than `min_distinct` distinct tokens (as in dedup:
runs of one token, ``0 0 0 ...``), or fewer than `min_alnum` letters and digits in the n-gram's text (default n,
one per token on average: box-drawing tables, rules of dashes, runs of spaces or punctuation). The second rule
needs the text, so it is applied here, on the eval side, where every possible match comes from: a training
n-gram can only ever match an n-gram that passed both rules. (Tokens holding part of a multi-byte character
count no letters: a script the tokenizer only covers by byte fallback needs a lower `min_alnum`.)
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shardstore.curate.minhash import ngram_hashes
from shardstore.errors import ConfigError, InputError

__all__ = ["AlnumCounter", "EvalSet", "read_eval"]


@dataclass(slots=True)
class EvalSet:
    """One evaluation file: its items' n-gram hashes and the problems counted while reading it."""

    name: str
    path: str
    items: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    # per usable item: (item index, unique non-degenerate n-gram hashes)
    ngrams: list[tuple[int, np.ndarray]] = field(default_factory=list)
    degenerate: int = 0


def _records(path: str, fields: Sequence[str]) -> list[Any]:
    if path.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
            cols = [f for f in fields if f in pf.schema_arrow.names]
            return pf.read(columns=cols).to_pylist() if cols else [{}] * pf.metadata.num_rows
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{path}: cannot read the Parquet eval file ({exc})") from exc
    if not path.endswith((".jsonl", ".json")):
        raise ConfigError(f"{path}: an eval set must be a .jsonl or .parquet file")
    out: list[Any] = []
    try:
        with open(path, "rb") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    out.append(json.loads(line))
                except ValueError:
                    out.append(None)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the eval file ({exc})") from exc
    return out


def _segments(record: Any, fields: Sequence[str]) -> list[str] | str:
    """The item's text segments, or the name of the problem."""
    if not isinstance(record, dict):
        return "bad_record"
    present = [record[f] for f in fields if f in record and record[f] is not None]
    if not present:
        return "missing_field"
    segs: list[str] = []
    for v in present:
        for x in v if isinstance(v, list) else [v]:
            if isinstance(x, str | int | float) and not isinstance(x, bool):
                segs.append(str(x))
    segs = [s for s in segs if s.strip()]
    return segs if segs else "empty"


class AlnumCounter:
    """Letters and digits per token id (its bytes decoded leniently), cached: the `min_alnum` rule."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.cache: dict[int, int] = {}

    def counts(self, toks: np.ndarray) -> np.ndarray:
        out = np.empty(toks.size, dtype=np.int64)
        for j, t in enumerate(toks.tolist()):
            c = self.cache.get(t)
            if c is None:
                text = self.tokenizer.decode_bytes([t]).decode("utf-8", errors="ignore")
                c = self.cache[t] = sum(ch.isalnum() for ch in text)
            out[j] = c
        return out


def read_eval(
    path: str | os.PathLike[str],
    *,
    name: str,
    fields: Sequence[str],
    tokenizer: Any,
    n: int,
    min_distinct: int,
    min_alnum: int,
    alnum: AlnumCounter | None = None,
) -> EvalSet:
    """Read and tokenize one eval file (see the module docstring)."""
    path = os.fspath(path)
    if not fields:
        raise ConfigError("no eval field given: pass --eval-field (default: text)")
    ev = EvalSet(name=name, path=path)
    alnum = alnum or AlnumCounter(tokenizer)
    for index, record in enumerate(_records(path, fields)):
        ev.items += 1
        segs = _segments(record, fields)
        if isinstance(segs, str):
            ev.problems[segs] += 1
            continue
        parts = []
        for seg in segs:
            toks = np.asarray(tokenizer.encode(seg), dtype=np.uint32)
            if toks.size < n:
                continue
            h, bad = ngram_hashes(toks, n, min_distinct)
            if min_alnum > 0:
                csum = np.concatenate([[0], np.cumsum(alnum.counts(toks))])
                bad |= (csum[n:] - csum[:-n]) < min_alnum
            ev.degenerate += int(bad.sum())
            parts.append(h[~bad])
        if not parts:
            ev.problems["too_short"] += 1
            continue
        hashes = np.unique(np.concatenate(parts))
        if hashes.size == 0:
            ev.problems["only_degenerate"] += 1
            continue
        ev.ngrams.append((index, hashes))
    return ev
