"""Many texts per call: `Tokenizer.encode_batch` (a list of str) and `Tokenizer.encode_packed` (UTF-8 texts side
by side in one buffer, e.g. an Arrow string array's data buffer).

Built-in patterns take one native call that releases the GIL (``encode_batch`` spreads the texts over native
threads). A custom split pattern runs through the ``regex`` package, one text at a time, with the same results; so
does a batch where some text holds a recognized special token or a lone surrogate (the per-text path applies
``errors``). The functions take the native encoder and a per-text fallback, not the `Tokenizer`, so that this module
does not depend on `tokenizer.core`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from shardstore.errors import ConfigError, InvalidUtf8Error

from .textprep import check_errors, check_text

__all__ = ["COUNT", "check_batch", "encode_batch", "encode_packed"]

COUNT = -1  # `encode_batch` itemsize that asks for the number of ids per text instead of the ids


def check_batch(
    texts: Iterable[str], num_threads: int | None, errors: str, default_threads: Callable[[], int]
) -> tuple[list[str], int]:
    """The texts as a fresh list (the native threads read it without the GIL) and the thread count, validated."""
    texts = list(texts)
    check_errors(errors)
    if not all(type(t) is str for t in texts):  # one C-level pass; the per-text check names the culprit
        for t in texts:
            check_text(t, errors)
    threads = default_threads() if num_threads is None else num_threads
    if not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"num_threads must be a positive int or None, got {num_threads!r}")
    return texts, threads


def encode_batch(
    native: Any,
    texts: Sequence[str],
    num_threads: int,
    itemsize: int,
    *,
    native_ok: bool,
    encode_one: Callable[[str], list[int]],
) -> list[Any]:
    """Ids per text: lists (``itemsize == 0``), numpy arrays of `itemsize`-byte ids, or counts (``itemsize ==
    COUNT``). The native arrays are views of one buffer holding the whole batch's ids (one slice per text is all
    the per-text work left under the GIL).

    `native_ok` says the texts need no special-token split and the pattern is built in.
    """
    dt = np.uint16 if itemsize == 2 else np.uint32
    if native_ok:
        try:
            if itemsize == COUNT:
                return native.count_batch(list(texts), num_threads)  # type: ignore[no-any-return]
            if itemsize == 0:
                return native.encode_batch(list(texts), num_threads, 0)  # type: ignore[no-any-return]
            ids, offsets = native.encode_batch(list(texts), num_threads, itemsize)
        except UnicodeEncodeError:
            pass  # some text has a lone surrogate: fall through to the per-text path, which applies `errors`
        else:
            flat, off = np.frombuffer(ids, dtype=dt), np.frombuffer(offsets, dtype=np.int64).tolist()
            return [flat[a:b] for a, b in itertools.pairwise(off)]
    if itemsize == COUNT:
        return [len(encode_one(t)) for t in texts]
    if itemsize == 0:
        return [encode_one(t) for t in texts]
    return [np.asarray(encode_one(t), dtype=dt) for t in texts]


def encode_packed(
    native: Any,
    data: Any,
    starts: Any,
    ends: Any,
    *,
    append_id: int | None,
    dtype: np.dtype[Any],
    encode_one: Callable[[str], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, counts)`` of the texts ``data[starts[i]:ends[i]]`` (`append_id` already checked)."""
    lo = np.ascontiguousarray(starts, dtype=np.int64)
    hi = np.ascontiguousarray(ends, dtype=np.int64)
    if lo.ndim != 1 or lo.shape != hi.shape:
        raise ConfigError(f"starts and ends must be 1-D and of one length, got {lo.shape} and {hi.shape}")
    if native.pattern_id >= 0:
        try:
            ids, counts_buf = native.encode_packed(
                data, lo, hi, dtype.itemsize, -1 if append_id is None else append_id
            )
        except ValueError as exc:  # spans outside `data`; invalid UTF-8 raises InvalidUtf8Error natively
            raise ConfigError(str(exc)) from None
        return np.frombuffer(ids, dtype=dtype), np.frombuffer(counts_buf, dtype=np.int64)
    view = memoryview(data).cast("B")
    bad = np.flatnonzero((lo < 0) | (lo > hi) | (hi > len(view)))
    if bad.size:
        i = int(bad[0])
        raise ConfigError(f"text {i} spans [{lo[i]}, {hi[i]}), outside the {len(view)}-byte buffer")
    parts: list[np.ndarray] = []
    counts = np.empty(lo.size, dtype=np.int64)
    for i, (a, b) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True)):
        try:
            text = bytes(view[a:b]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidUtf8Error(f"text {i} is not valid UTF-8 at byte {exc.start}", i, exc.start) from None
        ids = encode_one(text)
        parts.append(ids if append_id is None else np.append(ids, np.array([append_id], dtype=dtype)))
        counts[i] = parts[-1].size
    return (np.concatenate(parts) if parts else np.empty(0, dtype=dtype)), counts
