"""The native encoder raises `InvalidUtf8Error` itself (no matching on message text): type, fields and message are
the same on the native path and the per-text path of a custom pattern, and the fields survive a process boundary."""

from __future__ import annotations

import pickle

import pytest

from shardstore.errors import ConfigError, InputError, InvalidUtf8Error, ShardStoreError
from tokenizer import Tokenizer


@pytest.mark.parametrize("native", [True, False])
def test_invalid_utf8_is_its_own_type_with_index_and_offset(native: bool) -> None:
    tok = Tokenizer.from_merges([(b"a", b"b")], **({} if native else {"pattern": r"\w+|\W"}))
    assert (tok._encoder().pattern_id >= 0) is native
    with pytest.raises(InvalidUtf8Error) as info:
        tok.encode_packed(b"okab\xffc", [0, 2], [2, 6])
    exc = info.value
    assert isinstance(exc, InputError) and isinstance(exc, ShardStoreError)
    assert not isinstance(exc, ValueError)  # so the encoder's own ValueErrors (bad spans) stay ConfigError
    assert (str(exc), exc.index, exc.offset) == ("text 1 is not valid UTF-8 at byte 2", 1, 2)
    back = pickle.loads(pickle.dumps(exc))  # a build worker's error crosses to the parent process
    assert (type(back), str(back), back.index, back.offset) == (InvalidUtf8Error, str(exc), 1, 2)
    with pytest.raises(ConfigError, match="outside the 3-byte buffer"):
        tok.encode_packed(b"abc", [0], [4])
