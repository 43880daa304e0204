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
from collections.abc import Iterable, Mapping, Sequence
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
    ids_list,
    replace_surrogates,
    smallest_dtype,
    split_at_specials,
    surrogate_error,
)
from .unicode import UnicodeInfo, current_unicode, native_split_id
from .vocab import Ranks, merge_ids, native_encoder, token_bytes_of_merges

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["EOS_TOKEN", "Tokenizer"]

EOS_TOKEN = "<|endoftext|>"


class Tokenizer:
    """A byte-level BPE tokenizer: trained (`tokenizer.train`, `from_merges`), imported (`from_tiktoken`, `from_hf`,
    `from_gpt2_files`, `open`) or loaded (`load`)."""

    __slots__ = ("_content", "_fingerprint", "_lock", "_native", "_specials", "_token_bytes")

    def __init__(self, content: serialization.TokenizerContent) -> None:
        """Internal: use `from_merges`, `load` or an importer (`from_tiktoken`, `from_hf`), which validate input."""
        self._content, self._native, self._lock = content, None, threading.Lock()
        self._fingerprint = content.fingerprint
        ranks = content.ranks
        if ranks is None:
            self._token_bytes: Sequence[bytes] = token_bytes_of_merges(content.merges)
            base = len(self._token_bytes)
            self._specials = {s: base + i for i, s in enumerate(content.special_tokens)}
        else:
            self._token_bytes = ranks.tokens
            self._specials = dict(ranks.special_tokens)

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
        return cls(serialization.TokenizerContent(pattern, tuple(pairs), tuple(specials), unicode))

    @classmethod
    def from_ranks(cls, ranks: Ranks, *, pattern: str) -> Tokenizer:
        """Build from an imported vocabulary (see `tokenizer.vocab.check_ranks`) and a pattern name or regex."""
        pattern = resolve_pattern(pattern)
        unicode = current_unicode(native=native_pattern_id(pattern) >= 0)
        version = serialization.RANKS_FORMAT_VERSION
        return cls(serialization.TokenizerContent(pattern, (), (), unicode, version, ranks))

    @classmethod
    def from_tiktoken(
        cls,
        source: Any,
        *,
        pattern: str | None = None,
        special_tokens: Mapping[str, int] | None = None,
    ) -> Tokenizer:
        """Import a tiktoken vocabulary with its exact ids: a ``tiktoken.Encoding``, an encoding name shipped by an
        installed package (``cl100k_base``, ``o200k_base``, ``gpt2``; no network), or a ``.tiktoken`` rank file
        (optionally ``.gz``) plus `pattern` (a name such as ``cl100k_base`` or a regex) and `special_tokens`."""
        from .import_tiktoken import tiktoken_ranks

        ranks, pat = tiktoken_ranks(source, pattern=pattern, special_tokens=special_tokens)
        return cls.from_ranks(ranks, pattern=pat)

    @classmethod
    def from_hf(cls, path: str | os.PathLike[str]) -> Tokenizer:
        """Import a Hugging Face byte-level BPE ``tokenizer.json`` (GPT-2, RoBERTa, Llama-3, Qwen2 style) with its
        exact ids; anything we cannot represent exactly (a normalizer, WordPiece, ...) raises `ConfigError`."""
        from .import_hf import hf_ranks

        ranks, pat = hf_ranks(path)
        return cls.from_ranks(ranks, pattern=pat)

    @classmethod
    def from_gpt2_files(
        cls, encoder_json: str | os.PathLike[str], vocab_bpe: str | os.PathLike[str]
    ) -> Tokenizer:
        """Import GPT-2's ``encoder.json`` + ``vocab.bpe`` (ids as tiktoken's ``gpt2`` encoding)."""
        from .import_tiktoken import gpt2_ranks

        ranks, pat = gpt2_ranks(encoder_json, vocab_bpe)
        return cls.from_ranks(ranks, pattern=pat)

    @classmethod
    def open(cls, spec: str | os.PathLike[str]) -> Tokenizer:
        """Any supported tokenizer by path or name, detected or by prefix; see `tokenizer.detect`."""
        from .detect import open_tokenizer

        return open_tokenizer(cls, spec)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, allow_unicode_mismatch: bool = False) -> Tokenizer:
        """Load a tokenizer JSON file written by `save`; a corrupted or edited file raises `FormatError`.

        A file made with another Unicode version than this machine splits with raises `UnicodeMismatchError`
        unless `allow_unicode_mismatch` (then a `UnicodeMismatchWarning`); see docs/UNICODE.md.
        """
        content, _ = serialization.read_tokenizer_file(path, allow_unicode_mismatch=allow_unicode_mismatch)
        return cls(content)

    @classmethod
    def from_json_bytes(
        cls, data: bytes | str, *, source: str = "<bytes>", allow_unicode_mismatch: bool = False
    ) -> Tokenizer:
        """Parse the content of a tokenizer file (e.g. read from a store); `source` names it in errors."""
        content, _ = serialization.parse_tokenizer_json(
            data, source=source, allow_unicode_mismatch=allow_unicode_mismatch
        )
        return cls(content)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the tokenizer JSON (atomic) in the format it was made in: a format-1 file re-saves byte-identically."""
        serialization.write_tokenizer_file(path, self._content)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Cheap and safe to send to worker processes: only the validated content travels, never native state.
        c = self._content
        if c.ranks is not None:
            return (_rebuild_json, (serialization.tokenizer_json(c),))
        state = (c.pattern, c.merges, c.special_tokens, self._fingerprint)
        return (_rebuild, (*state, c.unicode.version, c.unicode.regex, c.format_version))

    # ----------------------------------------------------------------------------------------------- properties
    @property
    def pattern(self) -> str:
        """The pre-tokenization regex string."""
        return self._content.pattern

    @property
    def fingerprint(self) -> str:
        """SHA-256 hex digest of the canonical content (pattern, merges, special tokens, Unicode version)."""
        return self._fingerprint

    @property
    def unicode_version(self) -> str:
        """The Unicode version the pre-tokenizer splits with (recorded in the file; docs/UNICODE.md)."""
        return self._content.unicode.version

    @property
    def regex_version(self) -> str | None:
        """The ``regex`` release a custom pattern was made with; None for built-in patterns (native tables)."""
        return self._content.unicode.regex

    @property
    def format_version(self) -> int:
        """The file format `save` writes: 2; 1 for a format-1 file loaded as such; 3 for an imported vocabulary."""
        return self._content.format_version

    @property
    def merges(self) -> tuple[tuple[int, int], ...]:
        """Merges as (left_id, right_id) pairs; merge ``i`` created id ``256 + i``. An imported vocabulary has
        none of ours (its ranks are its ids; `to_tiktoken` gives them): ConfigError."""
        if self._content.ranks is not None:
            raise ConfigError(
                "an imported vocabulary has no merge list of ours; use to_tiktoken() for its ranks"
            )
        return self._content.merges

    @property
    def num_ordinary_tokens(self) -> int:
        """Number of ordinary ids (byte and merged tokens, gaps included): ids below this are ordinary."""
        return len(self._token_bytes)

    @property
    def vocab_size(self) -> int:
        """One past the largest id (special tokens included); an imported vocabulary may have unassigned ids."""
        return max([len(self._token_bytes), *(i + 1 for i in self._specials.values())])

    @property
    def special_tokens(self) -> dict[str, int]:
        """Special token string -> id."""
        return dict(self._specials)

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
        return f"Tokenizer(vocab_size={self.vocab_size}, pattern={self.pattern[:24]!r}..., fingerprint={self._fingerprint[:12]})"

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
                    split_id = native_split_id(self.pattern, self.unicode_version)
                    self._native = native_encoder(
                        self._token_bytes, self._specials, split_id, self._content.ranks
                    )
                native = self._native
        return native

    def _segments(self, text: str, allowed_special: AllowedSpecial) -> list[str | int]:
        return split_at_specials(text, self._specials, allowed_special)

    def _encode_ordinary(self, text: str, errors: str) -> list[int]:
        native = self._encoder()
        if native.pattern_id < 0:
            return self._encode_custom(text, errors)
        return _natively(native.encode, text, errors)  # type: ignore[no-any-return]

    def _encode_custom(self, text: str, errors: str) -> list[int]:
        import regex

        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            if errors == "strict":
                raise surrogate_error(text, exc) from None
            text = replace_surrogates(text)
        pieces = [p.encode("utf-8") for p in regex.findall(self.pattern, text)]
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
        buf = _natively(lambda t: native.encode_to_buffer(t, dt.itemsize), text, errors)
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
        """Like `encode_batch`, but numpy arrays: disjoint views of one buffer that the native threads wrote."""
        dt = self._check_dtype(dtype)
        return self._batch(texts, num_threads, allowed_special, errors, itemsize=dt.itemsize)

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

        For texts already side by side as bytes (an Arrow string array's data, a block of JSON lines): no Python
        object per text, one native call. Returns ``(ids, counts)``: all texts' ids in order, each followed by
        `append_id` (e.g. EOS) when given, and int64 ids per text (appended id included). Special-token strings are
        plain text. Raises `InvalidUtf8Error` (an `InputError`) naming the text and byte of invalid UTF-8, and
        `ConfigError` for spans outside `data`.
        """
        dt = self._check_dtype(dtype)
        if append_id is not None and not 0 <= append_id < self.vocab_size:
            raise ConfigError(f"append_id {append_id} is outside [0, {self.vocab_size})")
        return bulk.encode_packed(
            self._encoder(),
            data,
            starts,
            ends,
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
        texts, threads = bulk.check_batch(texts, num_threads, errors, usable_cores)
        native = self._encoder()
        # Per-text Python work costs more than the native encode of a short text: skip it when nothing can split.
        native_ok = native.pattern_id >= 0 and (
            not allowed_special or all(len(self._segments(t, allowed_special)) == 1 for t in texts)
        )
        return bulk.encode_batch(
            native,
            texts,
            threads,
            itemsize,
            native_ok=native_ok,
            encode_one=lambda t: self.encode(t, allowed_special=allowed_special, errors=errors),
        )

    def count_tokens(self, text: str, *, allowed_special: AllowedSpecial = (), errors: str = "strict") -> int:
        """``len(encode(text, ...))`` without building the ids (the same native piece path, so exact)."""
        check_text(text, errors)
        native = self._encoder()
        if native.pattern_id < 0 or len(self._segments(text, allowed_special)) != 1:
            return len(self.encode(text, allowed_special=allowed_special, errors=errors))
        return int(_natively(native.count, text, errors))

    def count_tokens_batch(
        self,
        texts: Iterable[str],
        num_threads: int | None = None,
        *,
        allowed_special: AllowedSpecial = (),
        errors: str = "strict",
    ) -> list[int]:
        """``len(ids)`` per text of `encode_batch`, counted on native threads without building the ids."""
        return self._batch(texts, num_threads, allowed_special, errors, itemsize=bulk.COUNT)

    # ----------------------------------------------------------------------------------------------- decoding
    def decode_bytes(self, ids: Iterable[int] | np.ndarray) -> bytes:
        """Exact bytes of the ids concatenated (special tokens as their UTF-8 strings)."""
        try:
            return self._encoder().decode_bytes(ids_list(ids))
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
        ranks = {t: i for i, t in enumerate(self._token_bytes) if t}
        return self.pattern, ranks, self.special_tokens

    def save_hf(self, path: str | os.PathLike[str]) -> None:
        """Write a Hugging Face ``tokenizer.json`` (ByteLevel BPE, same split regex) that encodes to the same ids."""
        from .interop import write_hf_tokenizer_json

        write_hf_tokenizer_json(path, self.pattern, self._token_bytes, self.special_tokens)


def _natively(fn: Any, text: str, errors: str) -> Any:
    """``fn(text)`` of a native method; a lone surrogate raises `InputError` or is replaced, by `errors`."""
    try:
        return fn(text)
    except UnicodeEncodeError as exc:
        if errors == "strict":
            raise surrogate_error(text, exc) from None
        return fn(replace_surrogates(text))


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
    return Tokenizer(content)


def _rebuild_json(text: str) -> Tokenizer:
    return Tokenizer.from_json_bytes(text, source="pickle")
