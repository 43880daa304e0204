"""Type stub of the native encoder (tokenizer/_native/encoder*.cc)."""

from collections.abc import Sequence

class Encoder:
    """Encoder(tokens, num_ordinary, pattern_id, merges=None, piece_lookup=True).

    tokens: every id's bytes in id order (b"" = unassigned id); ids below num_ordinary are ordinary, and each byte
    value is exactly one of them. merges: None (every split of every token, ranked by the token's id: tiktoken) or
    (left, right, result) triples ranked by position (Hugging Face BPE). piece_lookup: a piece that is a token is
    that token without merging (tiktoken; HF's ``ignore_merges``).
    """

    def __init__(
        self,
        tokens: list[bytes],
        num_ordinary: int,
        pattern_id: int,
        merges: Sequence[tuple[int, int, int]] | None = None,
        piece_lookup: bool = True,
        /,
    ) -> None: ...
    @property
    def pattern_id(self) -> int: ...
    def encode(self, text: str | bytes, /) -> list[int]: ...
    def encode_to_buffer(self, text: str | bytes, itemsize: int, /) -> bytearray: ...
    def encode_batch(
        self, texts: list[str], num_threads: int, itemsize: int, /
    ) -> list[list[int]] | tuple[bytearray, bytearray]: ...
    def count(self, text: str | bytes, /) -> int: ...
    def count_batch(self, texts: list[str], num_threads: int, /) -> list[int]: ...
    def encode_packed(
        self, data: object, starts: object, ends: object, itemsize: int, append_id: int, /
    ) -> tuple[bytearray, bytearray]: ...
    def encode_pieces(self, pieces: list[bytes], /) -> list[int]: ...
    def decode_bytes(self, ids: Sequence[int], /) -> bytes: ...
    def split(self, text: str | bytes, /) -> list[int]: ...

# The Unicode versions of the compiled pre-tokenizer tables (unicode_tables.h); a native pattern id is
# 4 * (index in UNICODE_VERSIONS) + (0 cl100k, 1 gpt2, 2 cl100k_base: tiktoken's spelling, 3 o200k_base).
UNICODE_VERSIONS: tuple[str, ...]
DEFAULT_TABLE: int

def char_class(cp: int, table: int = ..., /) -> int: ...
