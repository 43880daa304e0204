"""A tokenizer file names the Unicode version it splits with; files meet other versions by a tested policy.

Built-in patterns: the version of the native tables they split with (new files 16.0.0, tiktoken's; format-1 files
17.0.0), recorded in the file and covered by the fingerprint. Format-1 files (no version recorded) load as what they
were made with, with their old fingerprint and ids, and re-save byte-identically. Custom patterns record the ``regex`` release and its Unicode version; a different Unicode
version raises `UnicodeMismatchError` unless ``allow_unicode_mismatch=True``, which warns (docs/UNICODE.md).
"""

from __future__ import annotations

import json
import pathlib
import pickle
import warnings

import pytest
from test_tokenizer_encode import GOLDEN_IDS, GOLDEN_MERGES, GOLDEN_TEXT

from shardstore.cli import main
from shardstore.errors import FormatError
from tokenizer import Tokenizer
from tokenizer import serialization as ser
from tokenizer.unicode import (
    NATIVE_UNICODE_VERSIONS,
    UnicodeInfo,
    UnicodeMismatchError,
    UnicodeMismatchWarning,
    regex_unicode_version,
    regex_version,
)

GOLDEN = pathlib.Path(__file__).parent / "golden"
V1_CL100K = GOLDEN / "tokenizer_v1_cl100k.json"  # written by the format-1 code of main 843d39f
V1_CL100K_FINGERPRINT = "0c5f108421e724c36d9746c827efc25b778957dce77b976a6d2c9bb7062acbaf"
V1_CUSTOM = GOLDEN / "tokenizer_v1_custom.json"
V1_CUSTOM_FINGERPRINT = "13ef3c55c7d8afc0f97c45fb46a07e872438554acc36c2e00fddaac0c66024f6"
CUSTOM = r"\p{L}+|\p{N}|[^\p{L}\p{N}]+"


def _write(
    path: pathlib.Path, pattern: str, unicode: UnicodeInfo, merges: list[tuple[bytes, bytes]] = GOLDEN_MERGES
) -> pathlib.Path:
    tok = Tokenizer.from_merges(merges, pattern=pattern)
    content = ser.TokenizerContent(tok.pattern, tok.merges, ("<|endoftext|>",), unicode)
    ser.write_tokenizer_file(path, content)
    return path


def test_new_files_record_the_native_unicode_version_in_file_and_fingerprint(tmp_path):
    tok = Tokenizer.from_merges(GOLDEN_MERGES, pattern="cl100k")
    assert (tok.format_version, tok.unicode_version, tok.regex_version) == (2, "16.0.0", None)
    tok.save(tmp_path / "t.json")
    doc = json.loads((tmp_path / "t.json").read_bytes())
    assert (doc["format_version"], doc["unicode"], doc["regex"]) == (2, "16.0.0", None)
    fps = {
        ser.compute_fingerprint(tok.pattern, tok.merges, tok.special_tokens, UnicodeInfo(v))
        for v in ("16.0.0", "17.0.0")
    }
    assert tok.fingerprint in fps and len(fps) == 2, "the Unicode version is covered by the fingerprint"
    assert Tokenizer.load(tmp_path / "t.json") == tok


def test_format1_file_loads_as_made_and_resaves_byte_identically(tmp_path):
    tok = Tokenizer.load(V1_CL100K)
    assert (tok.format_version, tok.unicode_version, tok.fingerprint) == (1, "17.0.0", V1_CL100K_FINGERPRINT)
    assert tok.encode(GOLDEN_TEXT) == GOLDEN_IDS
    tok.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == V1_CL100K.read_bytes()
    clone = pickle.loads(pickle.dumps(tok))
    assert clone.fingerprint == V1_CL100K_FINGERPRINT and clone.format_version == 1
    # The same content made today is a format-2 tokenizer: same ids, a different identity.
    new = Tokenizer.from_merges(GOLDEN_MERGES, pattern="cl100k")
    assert new.encode(GOLDEN_TEXT) == GOLDEN_IDS and new != tok


def test_native_file_of_another_unicode_version_is_refused_or_loaded_with_a_warning(tmp_path):
    path = _write(tmp_path / "u18.json", "cl100k", UnicodeInfo("18.0.0"))
    with pytest.raises(
        UnicodeMismatchError, match=r"Unicode 18\.0\.0.*native tables are Unicode 16\.0\.0, 17\.0\.0"
    ):
        Tokenizer.load(path)
    with pytest.warns(UnicodeMismatchWarning, match="allow_unicode_mismatch=True"):
        tok = Tokenizer.load(path, allow_unicode_mismatch=True)
    assert tok.unicode_version == "18.0.0" and tok.encode(GOLDEN_TEXT) == GOLDEN_IDS
    assert isinstance(UnicodeMismatchError("x"), FormatError)


def test_cli_names_the_mismatch_in_one_line(tmp_path, capsys):
    path = _write(tmp_path / "u18.json", "cl100k", UnicodeInfo("18.0.0"))
    assert main(["tokenizer", "encode", str(path), "hello"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Unicode 18.0.0" in err and "allow_unicode_mismatch" in err


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("unicode"), "lacks keys"),
        (lambda d: d.__setitem__("unicode", 17), "'unicode' must be"),
        (lambda d: d.__setitem__("regex", ""), "'regex' must be"),
    ],
)
def test_format2_unicode_fields_are_validated(tmp_path, edit, message):
    path = _write(tmp_path / "t.json", "gpt2", UnicodeInfo("17.0.0"))
    doc = json.loads(path.read_bytes())
    edit(doc)
    with pytest.raises(FormatError, match=message):
        Tokenizer.from_json_bytes(json.dumps(doc))


def test_custom_pattern_records_regex_and_its_unicode_version(tmp_path):
    tok = Tokenizer.from_merges(GOLDEN_MERGES, pattern=CUSTOM)
    assert tok.regex_version == regex_version() and tok.unicode_version == regex_unicode_version()
    assert not tok.unicode_version.startswith("unknown"), (
        "the assigned-code-point count names a known version"
    )
    tok.save(tmp_path / "c.json")
    doc = json.loads((tmp_path / "c.json").read_bytes())
    assert (doc["regex"], doc["unicode"]) == (regex_version(), regex_unicode_version())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Tokenizer.load(tmp_path / "c.json") == tok


def test_custom_pattern_of_another_unicode_version_is_refused_with_both_versions(tmp_path):
    other = "15.0.0" if regex_unicode_version() != "15.0.0" else "16.0.0"
    path = _write(tmp_path / "old.json", CUSTOM, UnicodeInfo(other, "2023.1.1"))
    here = regex_unicode_version()
    with pytest.raises(UnicodeMismatchError) as info:
        Tokenizer.load(path)
    msg = str(info.value)
    assert f"Unicode {other} (regex 2023.1.1)" in msg and f"implements Unicode {here}" in msg
    assert "pip install 'regex==2023.1.1'" in msg and "allow_unicode_mismatch=True" in msg
    with pytest.warns(UnicodeMismatchWarning):
        tok = Tokenizer.load(path, allow_unicode_mismatch=True)
    assert tok.unicode_version == other  # the file is not rewritten: it still says what it was made with


def test_custom_pattern_same_unicode_other_regex_release_loads_silently(tmp_path):
    path = _write(tmp_path / "t.json", CUSTOM, UnicodeInfo(regex_unicode_version(), "1999.1.1"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Tokenizer.load(path).regex_version == "1999.1.1"


def test_format1_custom_pattern_means_regex_2026_5_9(tmp_path):
    if regex_unicode_version() == "17.0.0":
        tok = Tokenizer.load(V1_CUSTOM)
    else:
        with pytest.raises(UnicodeMismatchError, match=r"Unicode 17\.0\.0 \(regex 2026\.5\.9\)"):
            Tokenizer.load(V1_CUSTOM)
        with pytest.warns(UnicodeMismatchWarning):
            tok = Tokenizer.load(V1_CUSTOM, allow_unicode_mismatch=True)
    assert (tok.format_version, tok.fingerprint, tok.regex_version) == (1, V1_CUSTOM_FINGERPRINT, "2026.5.9")
    tok.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == V1_CUSTOM.read_bytes()


def test_native_version_constants_match_the_compiled_tables():
    from tokenizer._native import _encoder

    assert NATIVE_UNICODE_VERSIONS == _encoder.UNICODE_VERSIONS


def test_each_file_splits_with_the_tables_it_names(tmp_path):
    """U+088F (ARABIC LETTER NOON WITH RING ABOVE) is a letter from Unicode 17.0.0 on. cl100k reads "ab\u088fcd" as
    one piece with 17.0.0 tables and as "ab" + "\u088fcd" with 16.0.0 (as tiktoken does), so a merge of "b" with the
    first byte of U+088F applies only in a 17.0.0 file. Both load; each keeps its own ids."""
    text = "ab\u088fcd"
    merges = [(b"b", b"\xe0")]  # U+088F is E0 A2 8F in UTF-8
    v16 = Tokenizer.load(_write(tmp_path / "16.json", "cl100k", UnicodeInfo("16.0.0"), merges))
    v17 = Tokenizer.load(_write(tmp_path / "17.json", "cl100k", UnicodeInfo("17.0.0"), merges))
    assert v16.encode(text) == [97, 98, 224, 162, 143, 99, 100]
    assert v17.encode(text) == [97, 256, 162, 143, 99, 100]
    import tiktoken

    pat, ranks, _ = v16.to_tiktoken()
    enc = tiktoken.Encoding("t", pat_str=pat, mergeable_ranks=ranks, special_tokens={})
    assert enc.encode_ordinary(text) == v16.encode(text)
