"""What a store holds, at a glance: document-length statistics, tokens per input file, and token statistics.

Two costs, kept apart on purpose:

- `length_stats` and `tokens_per_file` read only the document index of each shard (8 bytes per document, checked
  against its checksum when the shard is mapped) and the provenance index, never a token payload. On a 10^7-document
  store that is 80 MB of index; benchmarks/bench_stats.py measures it.
- `text_byte_stats` reads each document's text size in UTF-8 bytes from the provenance files (`text_bytes`, written
  at build time), checked against their manifest checksums and against the document index.
- `token_stats` reads a deterministic sample of whole documents (every k-th document, until `sample_tokens`), so
  its cost is set by the sample, not the store.

Percentiles are nearest-rank (the smallest length with at least p% of documents at or below it), so they are always
lengths that occur and tests can pin them exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from shardstore.errors import FormatError

__all__ = [
    "PERCENTILES",
    "LengthStats",
    "TextByteStats",
    "TokenStats",
    "doc_lengths",
    "length_stats",
    "text_byte_stats",
    "token_stats",
    "tokens_per_file",
]

PERCENTILES = (50, 90, 99)

# Documents cut at a limit upstream (an exporter that truncates at 2048 tokens, say; shardstore itself never
# truncates) show as a spike at the maximum length: at least TRUNCATION_SHARE of all documents, and at least
# TRUNCATION_SPIKE times as many as at the next-longest length that occurs.
TRUNCATION_SHARE = 0.01
TRUNCATION_SPIKE = 5


@dataclass(frozen=True, slots=True)
class LengthStats:
    """Document lengths in tokens: count, mean, nearest-rank percentiles, min and max."""

    count: int
    total: int
    mean: float
    percentiles: dict[int, int]
    min: int
    max: int
    empty: int  # documents of 0 tokens
    at_max: int  # documents whose length equals the maximum
    below_max: int  # documents at the next-longest length that occurs (0 if none)

    @property
    def truncated_fraction(self) -> float:
        """Share of documents that look cut at a limit: those at the maximum, when they form a spike there."""
        if not self.count or self.at_max < 2 or self.at_max < TRUNCATION_SHARE * self.count:
            return 0.0
        if self.at_max < TRUNCATION_SPIKE * max(self.below_max, 1):
            return 0.0
        return self.at_max / self.count

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "total": self.total,
            "mean": self.mean,
            **{f"p{p}": v for p, v in self.percentiles.items()},
            "min": self.min,
            "max": self.max,
            "empty": self.empty,
            "at_max": self.at_max,
            "below_max": self.below_max,
            "truncated_fraction": self.truncated_fraction,
        }


def doc_lengths(store: Any) -> np.ndarray:
    """Every document's length in tokens, in store order (int64), from the shards' document indexes only."""
    parts = []
    for s in range(store.num_shards):
        offsets = store.mapped_shard(s).offsets
        parts.append(np.diff(offsets).astype(np.int64))
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def length_stats(lengths: np.ndarray) -> LengthStats:
    """Summary of an array of document lengths (see the module docstring for the percentile rule).

    O(n + max length) through a histogram of lengths (no sort; a sort-based count when a few documents are huge): 10^7 documents in a few tens of milliseconds.
    """
    n = int(lengths.size)
    if n == 0:
        return LengthStats(0, 0, 0.0, {p: 0 for p in PERCENTILES}, 0, 0, 0, 0, 0)
    if int(lengths.max()) > 4 * n + (1 << 20):  # a few huge documents: a histogram would be mostly empty
        values, hist = np.unique(lengths, return_counts=True)
    else:
        hist = np.bincount(lengths)
        values = np.arange(hist.size, dtype=np.int64)
    keep = hist > 0
    values, hist = values[keep], hist[keep]
    cum = np.cumsum(hist)
    total = int(np.dot(hist, values))

    def nearest_rank(p: int) -> int:  # smallest length with at least ceil(p% of n) documents at or below it
        return int(values[np.searchsorted(cum, max(1, math.ceil(p / 100 * n)), "left")])

    return LengthStats(
        count=n,
        total=total,
        mean=total / n,
        percentiles={p: nearest_rank(p) for p in PERCENTILES},
        min=int(values[0]),
        max=int(values[-1]),
        empty=int(hist[0]) if values[0] == 0 else 0,
        at_max=int(hist[-1]),
        below_max=int(hist[-2]) if hist.size > 1 else 0,
    )


def tokens_per_file(store: Any, lengths: np.ndarray, *, top: int = 10) -> list[dict[str, Any]] | None:
    """The `top` input files by tokens: ``{file, docs, tokens}``; None when the store has no provenance."""
    from shardstore.store.provenance import read_units

    found = read_units(store)
    if found is None:
        return None
    path, units = found
    spans = [(u.url, u.first_doc, u.num_docs) for u in units]
    cum = np.concatenate([[0], np.cumsum(lengths)])
    per_file: dict[str, list[int]] = {}
    for url, first, count in spans:
        if not (first >= 0 and first + count <= lengths.size):
            raise FormatError(f"{path}: unit of {url} names documents outside the store")
        entry = per_file.setdefault(url, [0, 0])
        entry[0] += count
        entry[1] += int(cum[first + count] - cum[first])
    ranked = sorted(per_file.items(), key=lambda kv: (-kv[1][1], kv[0]))
    return [{"file": url, "docs": d, "tokens": t} for url, (d, t) in ranked[:top]]


@dataclass(frozen=True, slots=True)
class TextByteStats:
    """Document text sizes in UTF-8 bytes (`lengths`: None when the store does not record them, `missing` says
    why) and the store's text bytes per token."""

    lengths: LengthStats | None
    bytes_per_token: (
        float | None
    )  # all text bytes over all tokens, the EOS appended to each document left out
    missing: str | None

    def to_dict(self) -> dict[str, Any]:
        keys = ("count", "total", "mean", *(f"p{p}" for p in PERCENTILES), "min", "max")
        d = None if self.lengths is None else self.lengths.to_dict()
        return {
            "doc_bytes": None if d is None else {k: d[k] for k in keys},
            "bytes_per_token": self.bytes_per_token,
            "doc_bytes_missing": self.missing,
        }


NO_PROVENANCE = "the store has no provenance"
NO_TEXT_BYTES = "the store was built before shardstore recorded text sizes; rebuild it to get them"


def text_byte_stats(store: Any, lengths: np.ndarray) -> TextByteStats:
    """Document text sizes of `store` in bytes, from its provenance; `lengths` are its documents' token counts.

    Raises `FormatError` (one line naming the file) when the sizes are unreadable or do not fit the documents:
    not one per document, or fewer bytes than the document has tokens besides its EOS (a byte-level BPE token is
    at least one byte of text), which a hand-edited file shows."""
    from shardstore.store.provenance import UNITS_FILE, read_text_bytes, read_units

    if read_units(store) is None:
        return TextByteStats(None, None, NO_PROVENANCE)
    sizes = read_text_bytes(store)
    if sizes is None:
        return TextByteStats(None, None, NO_TEXT_BYTES)
    if sizes.size != lengths.size:
        raise FormatError(
            f"{store.root}: {UNITS_FILE} and its unit files give {sizes.size} text sizes for {lengths.size} documents"
        )
    options = getattr(store.manifest, "provenance", {}).get("options", {})
    eos = 1 if isinstance(options, dict) and options.get("eos") is True else 0
    sizes = sizes.view(np.int64)  # same bits, no copy: a size of 2**63 or more (an edit) turns negative
    short = np.flatnonzero(sizes < lengths - eos)
    if short.size:
        i = int(short[0])
        raise FormatError(
            f"{store.root}: document {i} has {int(lengths[i])} tokens but its provenance records "
            f"{int(sizes[i])} bytes of text: the provenance text sizes do not belong to these documents"
        )
    text_tokens = int(lengths.sum()) - eos * int(lengths.size)
    stats = length_stats(sizes)
    return TextByteStats(stats, stats.total / text_tokens if text_tokens > 0 else None, None)


@dataclass(frozen=True, slots=True)
class TokenStats:
    """Statistics of a sample of documents: what a broken tokenizer or input field looks like at a glance."""

    sample_docs: int
    sample_tokens: int
    top_tokens: list[dict[str, Any]]  # {id, count, share, text}
    byte_token_fraction: float  # tokens that are one raw byte: high when the merges do not fit the text
    # The text fractions are None for a store without its tokenizer (nothing to decode with):
    whitespace_fraction: float | None  # decoded bytes that are ASCII whitespace
    code_fraction: (
        float | None
    )  # decoded bytes in documents that look like source code (see `_looks_like_code`)
    replacement_fraction: float | None  # decoded characters that are U+FFFD: invalid UTF-8 reached the store

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_docs": self.sample_docs,
            "sample_tokens": self.sample_tokens,
            "top_tokens": self.top_tokens,
            "byte_token_fraction": self.byte_token_fraction,
            "whitespace_fraction": self.whitespace_fraction,
            "code_fraction": self.code_fraction,
            "replacement_fraction": self.replacement_fraction,
        }


_CODE_CHARS = frozenset(b"{}[]();=<>")


def _looks_like_code(data: bytes) -> bool:
    """A document is code when >= 4% of its bytes are brackets, parentheses, ';', '=', '<' or '>'.

    English prose has ~0.5% of these, Python/C/JSON 6-15%: a crude rule, but one that separates a code source from
    a prose source, which is all the summary claims."""
    if not data:
        return False
    hits = sum(data.count(c) for c in _CODE_CHARS)
    return hits >= 0.04 * len(data)


def token_stats(store: Any, *, sample_tokens: int = 2_000_000, top: int = 20) -> TokenStats:
    """Token statistics over every k-th document, k chosen so the sample holds about `sample_tokens` tokens.

    Deterministic (the same sample every time). Text fractions are of the documents' text, special tokens left
    out. Decoding needs the store's tokenizer; without one the text
    fractions are None.
    """
    if sample_tokens < 1 or top < 1:
        raise ValueError("sample_tokens and top must be >= 1")
    n = store.num_docs
    step = max(1, math.ceil(store.num_tokens / sample_tokens)) if store.num_tokens else 1
    counts = np.zeros(0, dtype=np.int64)
    tok = store.tokenizer
    specials = np.array(sorted(tok.special_tokens.values()) if tok is not None else [], dtype=np.int64)
    docs = tokens = 0
    text_bytes = space = code = repl = chars = 0
    for i in range(0, n, step):
        ids = store.doc(i)
        docs += 1
        tokens += int(ids.size)
        if ids.size:
            bc = np.bincount(ids.astype(np.int64))
            if bc.size > counts.size:
                bc[: counts.size] += counts
                counts = bc
            else:
                counts[: bc.size] += bc
        if tok is not None:
            text = tok.decode(ids[~np.isin(ids, specials)].tolist())  # the text, without EOS and the like
            data = text.encode("utf-8")
            text_bytes += len(data)
            space += sum(data.count(c) for c in b" \t\n\r\f\v")
            code += len(data) if _looks_like_code(data) else 0
            repl += text.count("\ufffd")
            chars += len(text)
    present = np.flatnonzero(counts)
    if tok is not None:  # byte tokens by their bytes, whatever their ids (imported vocabularies reorder them)
        single = np.array([len(tok.token_bytes(int(t))) == 1 for t in present], dtype=bool)
    else:
        single = present < 256
    byte_tokens = int(counts[present[single]].sum()) if present.size else 0
    order = np.argsort(-counts, kind="stable")[:top]
    top_rows = []
    for t in order:
        c = int(counts[t])
        if c == 0:
            break
        text = tok.decode([int(t)]) if tok is not None else None
        top_rows.append({"id": int(t), "count": c, "share": c / tokens, "text": text})

    def share(part: int, whole: int) -> float | None:
        return None if tok is None else (part / whole if whole else 0.0)

    return TokenStats(
        sample_docs=docs,
        sample_tokens=tokens,
        top_tokens=top_rows,
        byte_token_fraction=byte_tokens / tokens if tokens else 0.0,
        whitespace_fraction=share(space, text_bytes),
        code_fraction=share(code, text_bytes),
        replacement_fraction=share(repl, chars),
    )
