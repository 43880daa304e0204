"""`Tokenizer`: byte-level BPE over a native (C++) core.

Vocabulary: ids 0..255 are the byte values, id ``256 + i`` is merge ``i`` (its bytes are left + right), then the
special tokens in order. A tokenizer is immutable; its identity is `fingerprint` (see `tokenizer.serialization`).

Encoding semantics (the spec the native code and ``tests/reference_bpe.py`` both implement; identical to
tiktoken's on the same ranks): split the text with the pre-tokenization pattern; a piece that is itself a token
becomes that token; otherwise start from its bytes and repeatedly merge the adjacent pair whose concatenation is the
lowest-ranked token, leftmost first on ties, until no adjacent pair concatenates to a token. The rank of a token is
its id. Merges never cross piece boundaries, nor special tokens.

Special tokens: a special-token string inside ordinary text is plain text by default (it encodes as ordinary
bytes), so untrusted documents cannot inject control tokens. ``allowed_special="all"`` (or a set of names)
recognizes them; pieces never span a recognized special token.

Unicode policy:
- Encoding a ``str`` that contains a lone surrogate (not encodable as UTF-8): ``errors="strict"`` (default) raises
  `InputError` naming the index and code point; ``errors="replace"`` encodes each lone surrogate as U+FFFD. Nothing
  is dropped silently.
- Decoding ids whose bytes are not valid UTF-8 (e.g. a cut in the middle of a character): `decode_bytes` returns the
  exact bytes; `decode` uses ``errors="replace"`` by default (U+FFFD per invalid sequence, as ``bytes.decode``) and
  accepts ``errors="strict"`` to raise instead. An id outside ``[0, vocab_size)`` raises `ConfigError` naming it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from shardstore.errors import ConfigError, InputError

from . import bulk, serialization
from .osutil import usable_cores
from .patterns import native_pattern_id, resolve_pattern
from .textprep import (
    AllowedSpecial,
    check_dtype,
    check_errors,
    check_text,
    replace_surrogates,
    smallest_dtype,
    split_at_specials,
    surrogate_error,
)
from .unicode import UnicodeInfo, current_unicode, native_split_id
from .vocab import merge_ids, token_bytes_of_merges

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["EOS_TOKEN", "Tokenizer"]

EOS_TOKEN = "<|endoftext|>"


class Tokenizer:
    """A trained byte-level BPE tokenizer. Build with `from_merges`, `load`, or `tokenizer.train`."""

    __slots__ = (
        "_fingerprint",
        "_format_version",
        "_lock",
        "_merges",
        "_native",
        "_pattern",
        "_special_re",
        "_special_tokens",
        "_token_bytes",
        "_unicode",
    )

    def __init__(
        self,
        *,
        pattern: str,
        merges: Sequence[tuple[int, int]],
        special_tokens: Sequence[str],
        fingerprint: str,
        unicode: UnicodeInfo,
        format_version: int,
    ) -> None:
        """Internal: use `from_merges` or `load`, which validate their input."""
        self._unicode = unicode
        self._format_version = format_version
        self._pattern = pattern
        self._merges = tuple(merges)
        self._special_tokens = tuple(special_tokens)
        self._fingerprint = fingerprint
        token_bytes = token_bytes_of_merges(self._merges)
        self._token_bytes = token_bytes
        self._native: Any = None
        self._special_re: Any = None
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------------------------- construction
    @classmethod
    def from_merges(
        cls,
        merges: Sequence[tuple[bytes, bytes]],
        *,
        pattern: str = "cl100k",
        special_tokens: Sequence[str] = (EOS_TOKEN,),
    ) -> Tokenizer:
        """Build from merges given as byte pairs, in merge order (merge ``i`` becomes id ``256 + i``).

        Raises:
            ConfigError: a merge refers to bytes that are not yet a token, or re-creates an existing token.
        """
        pattern = resolve_pattern(pattern)
        pairs = merge_ids(merges)
        pattern, pairs, specials = serialization.validate_content(
            pattern, pairs, list(special_tokens), source="from_merges"
        )
        unicode = current_unicode(native=native_pattern_id(pattern) >= 0)
        return cls._from_content(
            serialization.TokenizerContent(pattern, tuple(pairs), tuple(specials), unicode)
        )

    @classmethod
    def _from_content(cls, content: serialization.TokenizerContent) -> Tokenizer:
        return cls(
            pattern=content.pattern,
            merges=content.merges,
            special_tokens=content.special_tokens,
            fingerprint=content.fingerprint,
            unicode=content.unicode,
            format_version=content.format_version,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, allow_unicode_mismatch: bool = False) -> Tokenizer:
        """Load a tokenizer JSON file written by `save`; a corrupted or edited file raises `FormatError`.

        A file made with another Unicode version than this machine splits with raises `UnicodeMismatchError`
        unless `allow_unicode_mismatch` (then a `UnicodeMismatchWarning`); see docs/UNICODE.md.
        """
        content, _ = serialization.read_tokenizer_file(path, allow_unicode_mismatch=allow_unicode_mismatch)
        return cls._from_content(content)

    @classmethod
    def from_json_bytes(
        cls, data: bytes | str, *, source: str = "<bytes>", allow_unicode_mismatch: bool = False
    ) -> Tokenizer:
        """Parse the content of a tokenizer file (e.g. read from a store); `source` names it in errors."""
        content, _ = serialization.parse_tokenizer_json(
            data, source=source, allow_unicode_mismatch=allow_unicode_mismatch
        )
        return cls._from_content(content)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the tokenizer JSON (atomic) in the format it was made in: a format-1 file re-saves byte-identically."""
        serialization.write_tokenizer_file(
            path,
            serialization.TokenizerContent(
                self._pattern, self._merges, self._special_tokens, self._unicode, self._format_version
            ),
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Cheap and safe to send to worker processes: only the validated content travels, never native state.
        u = self._unicode
        state = (self._pattern, self._merges, self._special_tokens, self._fingerprint)
        return (_rebuild, (*state, u.version, u.regex, self._format_version))

    # ----------------------------------------------------------------------------------------------- properties
    @property
    def pattern(self) -> str:
        """The pre-tokenization regex string."""
        return self._pattern

    @property
    def fingerprint(self) -> str:
        """SHA-256 hex digest of the canonical content (pattern, merges, special tokens, Unicode version)."""
        return self._fingerprint

    @property
    def unicode_version(self) -> str:
        """The Unicode version the pre-tokenizer splits with (recorded in the file; docs/UNICODE.md)."""
        return self._unicode.version

    @property
    def regex_version(self) -> str | None:
        """The ``regex`` release a custom pattern was made with; None for built-in patterns (native tables)."""
        return self._unicode.regex

    @property
    def format_version(self) -> int:
        """The file format it was made in, which `save` writes: 2, or 1 for a format-1 file loaded as such."""
        return self._format_version

    @property
    def merges(self) -> tuple[tuple[int, int], ...]:
        """Merges as (left_id, right_id) pairs; merge ``i`` created id ``256 + i``."""
        return self._merges

    @property
    def num_ordinary_tokens(self) -> int:
        """Number of byte and merge tokens (ids below this are ordinary)."""
        return 256 + len(self._merges)

    @property
    def vocab_size(self) -> int:
        """Total number of ids, special tokens included."""
        return 256 + len(self._merges) + len(self._special_tokens)

    @property
    def special_tokens(self) -> dict[str, int]:
        """Special token string -> id."""
        base = self.num_ordinary_tokens
        return {s: base + i for i, s in enumerate(self._special_tokens)}

    @property
    def eos_id(self) -> int | None:
        """Id of ``<|endoftext|>`` if present, else of the first special token, else None."""
        specials = self.special_tokens
        if EOS_TOKEN in specials:
            return specials[EOS_TOKEN]
        return next(iter(specials.values()), None)

    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        """Smallest unsigned dtype that holds every id: uint16 up to 65536 ids, else uint32."""
        return smallest_dtype(self.vocab_size)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes of one id (a special token's bytes are its UTF-8 string)."""
        return self.decode_bytes([token_id])

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size}, pattern={self._pattern[:24]!r}..., fingerprint={self._fingerprint[:12]})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and other._fingerprint == self._fingerprint

    def __hash__(self) -> int:
        return hash(self._fingerprint)

    # ----------------------------------------------------------------------------------------------- encoding
    def _encoder(self) -> Any:
        native = self._native
        if native is None:
            with self._lock:
                if self._native is None:
                    from ._native._encoder import Encoder

                    specials = [s.encode("utf-8") for s in self._special_tokens]
                    self._native = Encoder(
                        self._token_bytes + specials,
                        len(self._token_bytes),
                        native_split_id(self._pattern, self._unicode.version),
                    )
                native = self._native
        return native

    def _segments(self, text: str, allowed_special: AllowedSpecial) -> list[str | int]:
        return split_at_specials(text, self.special_tokens, allowed_special)

    def _encode_ordinary(self, text: str, errors: str) -> list[int]:
        native = self._encoder()
        if native.pattern_id < 0:
            return self._encode_custom(text, errors)
        try:
            return native.encode(text)
        except UnicodeEncodeError as exc:
            if errors == "strict":
                raise surrogate_error(text, exc) from None
            return native.encode(replace_surrogates(text))

    def _encode_custom(self, text: str, errors: str) -> list[int]:
        import regex

        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            if errors == "strict":
                raise surrogate_error(text, exc) from None
            text = replace_surrogates(text)
        pieces = [p.encode("utf-8") for p in regex.findall(self._pattern, text)]
        return self._encoder().encode_pieces(pieces)

    def encode(self, text: str, *, allowed_special: AllowedSpecial = (), errors: str = "strict") -> list[int]:
        """Encode text to ids. Special-token strings are plain text unless listed in `allowed_special`."""
        check_text(text, errors)
        segments = self._segments(text, allowed_special)
        if len(segments) > 1 and errors == "strict":
            try:  # check the whole text, so that an error names the index in it, not in a segment
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise surrogate_error(text, exc) from None
        out: list[int] = []
        for seg in segments:
            if isinstance(seg, int):
                out.append(seg)
            else:
                out.extend(self._encode_ordinary(seg, errors))
        return out

    def encode_ordinary(self, text: str, *, errors: str = "strict") -> list[int]:
        """Encode text treating every special-token string as plain text (the `encode` default)."""
        check_text(text, errors)
        return self._encode_ordinary(text, errors)

    def encode_to_numpy(
        self,
        text: str,
        *,
        allowed_special: AllowedSpecial = (),
        errors: str = "strict",
        dtype: npt.DTypeLike | None = None,
    ) -> np.ndarray:
        """Encode into a 1-D numpy array (default dtype `numpy_dtype`), written directly by the native code."""
        check_text(text, errors)
        dt = self._check_dtype(dtype)
        segments = self._segments(text, allowed_special)
        native = self._encoder()
        if native.pattern_id < 0 or len(segments) != 1:
            return np.asarray(self.encode(text, allowed_special=allowed_special, errors=errors), dtype=dt)
        try:
            buf = native.encode_to_buffer(text, dt.itemsize)
        except UnicodeEncodeError as exc:
            if errors == "strict":
                raise surrogate_error(text, exc) from None
            buf = native.encode_to_buffer(replace_surrogates(text), dt.itemsize)
        return np.frombuffer(buf, dtype=dt)

    def _check_dtype(self, dtype: npt.DTypeLike | None) -> np.dtype[Any]:
        return check_dtype(dtype, self.vocab_size)

    def encode_batch(
        self,
        texts: Iterable[str],
        num_threads: int | None = None,
        *,
        allowed_special: AllowedSpecial = (),
        errors: str = "strict",
    ) -> list[list[int]]:
        """Encode many texts on `num_threads` native threads (default: all usable cores), GIL released."""
        return self._batch(texts, num_threads, allowed_special, errors, itemsize=0)

    def encode_batch_to_numpy(
        self,
        texts: Iterable[str],
        num_threads: int | None = None,
        *,
        allowed_special: AllowedSpecial = (),
        errors: str = "strict",
        dtype: npt.DTypeLike | None = None,
    ) -> list[np.ndarray]:
        """Like `encode_batch`, but each result is a numpy array written directly by the native threads."""
        dt = self._check_dtype(dtype)
        bufs = self._batch(texts, num_threads, allowed_special, errors, itemsize=dt.itemsize)
        return [np.frombuffer(b, dtype=dt) for b in bufs]

    def encode_packed(
        self,
        data: Any,
        starts: npt.ArrayLike,
        ends: npt.ArrayLike,
        *,
        append_id: int | None = None,
        dtype: npt.DTypeLike | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Encode many UTF-8 texts packed in one buffer, text i being ``data[starts[i]:ends[i]]``.

        For producers that already hold texts as bytes side by side (an Arrow string array's data buffer, a block of
        JSON lines): no Python object per text, one native call, one output array. Returns ``(ids, counts)``: the ids
        of all texts in order, each followed by `append_id` (e.g. EOS) when given, and int64 ids per text (the
        appended id included). Special-token strings are plain text, as in `encode`. Raises `InvalidUtf8Error` (an
        `InputError`, raised by the native code itself) when a text is not valid UTF-8 (naming the text and byte)
        and `ConfigError` for spans outside `data`.
        """
        dt = self._check_dtype(dtype)
        lo = np.ascontiguousarray(starts, dtype=np.int64)
        hi = np.ascontiguousarray(ends, dtype=np.int64)
        if lo.ndim != 1 or lo.shape != hi.shape:
            raise ConfigError(f"starts and ends must be 1-D and of one length, got {lo.shape} and {hi.shape}")
        if append_id is not None and not 0 <= append_id < self.vocab_size:
            raise ConfigError(f"append_id {append_id} is outside [0, {self.vocab_size})")
        return bulk.encode_packed(
            self._encoder(),
            data,
            lo,
            hi,
            append_id=append_id,
            dtype=dt,
            encode_one=lambda text: self.encode_to_numpy(text, dtype=dt),
        )

    def _batch(
        self,
        texts: Iterable[str],
        num_threads: int | None,
        allowed_special: AllowedSpecial,
        errors: str,
        *,
        itemsize: int,
    ) -> list[Any]:
        texts = list(texts)
        for t in texts:
            check_text(t, errors)
        threads = usable_cores() if num_threads is None else num_threads
        if not isinstance(threads, int) or threads < 1:
            raise ConfigError(f"num_threads must be a positive int or None, got {num_threads!r}")
        native = self._encoder()
        native_ok = native.pattern_id >= 0 and all(
            len(self._segments(t, allowed_special)) == 1 for t in texts
        )
        return bulk.encode_batch(
            native,
            texts,
            threads,
            itemsize,
            native_ok=native_ok,
            encode_one=lambda t: self.encode(t, allowed_special=allowed_special, errors=errors),
        )

    # ----------------------------------------------------------------------------------------------- decoding
    def decode_bytes(self, ids: Iterable[int] | np.ndarray) -> bytes:
        """Exact bytes of the ids concatenated (special tokens as their UTF-8 strings)."""
        if isinstance(ids, np.ndarray):
            if ids.ndim != 1 or ids.dtype.kind not in "iu":
                raise ConfigError(f"ids must be a 1-D integer array, got shape {ids.shape} dtype {ids.dtype}")
            ids = ids.tolist()
        elif not isinstance(ids, list):
            ids = list(ids)
        try:
            return self._encoder().decode_bytes(ids)
        except (IndexError, OverflowError, TypeError) as exc:
            raise ConfigError(f"cannot decode: {exc}; ids must be ints in [0, {self.vocab_size})") from None

    def decode(self, ids: Iterable[int] | np.ndarray, *, errors: str = "replace") -> str:
        """Decode ids to text; invalid UTF-8 becomes U+FFFD by default (``errors="strict"`` raises)."""
        check_errors(errors)
        data = self.decode_bytes(ids)
        try:
            return data.decode("utf-8", errors)
        except UnicodeDecodeError as exc:
            raise InputError(
                f"ids decode to invalid UTF-8 at byte {exc.start} ({data[exc.start : exc.start + 4]!r}); "
                "use decode_bytes for the exact bytes or errors='replace'"
            ) from None

    # ----------------------------------------------------------------------------------------------- interop
    def to_tiktoken(self) -> tuple[str, dict[bytes, int], dict[str, int]]:
        """``(pat_str, mergeable_ranks, special_tokens)`` for ``tiktoken.Encoding``; encodes to the same ids."""
        ranks = {t: i for i, t in enumerate(self._token_bytes)}
        return self._pattern, ranks, self.special_tokens

    def save_hf(self, path: str | os.PathLike[str]) -> None:
        """Write a Hugging Face ``tokenizer.json`` (ByteLevel BPE, same split regex) that encodes to the same ids."""
        from .interop import write_hf_tokenizer_json

        write_hf_tokenizer_json(path, self._pattern, self._token_bytes, self.special_tokens)


def _rebuild(
    pattern: str,
    merges: Sequence[tuple[int, int]],
    specials: Sequence[str],
    fingerprint: str,
    unicode_version: str,
    regex: str | None,
    format_version: int,
) -> Tokenizer:
    pattern, pairs, specials = serialization.validate_content(
        pattern, list(merges), list(specials), source="pickle"
    )
    content = serialization.TokenizerContent(
        pattern, tuple(pairs), tuple(specials), UnicodeInfo(unicode_version, regex), format_version
    )
    if content.fingerprint != fingerprint:
        raise ConfigError("tokenizer state does not match its fingerprint")
    return Tokenizer._from_content(content)
