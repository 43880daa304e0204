"""The native pre-tokenizer tables are pinned: checked against the golden files in the repository, not against the
installed ``regex`` (whose Unicode version moves with its releases). The installed ``regex`` is only compared in a
drift report, printed in the terminal summary, never a failure.
"""

from __future__ import annotations

import pathlib

import pytest
import regex
from unicode_reference import DRIFT_KEY, golden, golden_classes, golden_pattern

from tokenizer._native import _encoder
from tokenizer._native import gen_unicode_tables as gen
from tokenizer.patterns import PATTERNS
from tokenizer.unicode import DEFAULT_NATIVE_UNICODE_VERSION, NATIVE_UNICODE_VERSIONS

ROOT = pathlib.Path(__file__).resolve().parents[2]
NATIVE = ROOT / "tokenizer" / "_native"
# Pinned per version: code points in \p{L}, \p{N}, \s (16.0.0 from regex 2024.11.6, 17.0.0 from regex 2026.5.9; both
# equal unicodedata2 of that version for L and N).
COUNTS = {"16.0.0": [141028, 1911, 25], "17.0.0": [145672, 1924, 25]}


def test_compiled_versions_are_the_golden_files():
    assert (
        gen.UNICODE_VERSIONS == NATIVE_UNICODE_VERSIONS == _encoder.UNICODE_VERSIONS == ("16.0.0", "17.0.0")
    )
    assert gen.DEFAULT_VERSION == DEFAULT_NATIVE_UNICODE_VERSION == "16.0.0"
    assert _encoder.UNICODE_VERSIONS[_encoder.DEFAULT_TABLE] == "16.0.0"
    assert sorted(p.name for p in NATIVE.glob("unicode_*.txt")) == [
        f"unicode_{v}.txt" for v in gen.UNICODE_VERSIONS
    ]


@pytest.mark.parametrize("version", NATIVE_UNICODE_VERSIONS)
def test_golden_file_covers_every_code_point(version):
    t = golden(version)
    assert t.unicode_version == version
    classes = t.classes()
    assert len(classes) == 0x110000 and set(classes) == {0, 1, 2, 3}
    assert [classes.count(c) for c in (1, 2, 3)] == COUNTS[version]
    assert t.folds["s"] == (0x17F,) and all(not t.folds[c] for c in "tmdrevl")


def test_versions_differ_only_by_newly_assigned_letters_and_numbers():
    old, new = golden_classes("16.0.0"), golden_classes("17.0.0")
    changed = [(old[c], new[c]) for c in range(0x110000) if old[c] != new[c]]
    assert len(changed) == 4657 and set(changed) == {(0, 1), (0, 2)}


def test_header_is_generated_byte_identically_from_the_golden_files():
    assert (NATIVE / "unicode_tables.h").read_text(encoding="ascii") == gen.render_all_headers()


@pytest.mark.parametrize("version", NATIVE_UNICODE_VERSIONS)
def test_golden_file_round_trips(version):
    text = (NATIVE / f"unicode_{version}.txt").read_text(encoding="ascii")
    assert gen.render_golden(gen.parse_golden(text, source="golden")) == text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("unicode 17.0.0\nrun 5 0\n", "out of order"),
        ("unicode 17.0.0\nrun 0 7\n", "unexpected line"),
        ("unicode 17.0.0\nrun 0 0\nfold s\n", "lacks"),
    ],
)
def test_golden_parser_rejects_bad_files(text, why):
    with pytest.raises(ValueError, match=why):
        gen.parse_golden(text, source="bad")


@pytest.mark.parametrize("table", range(len(NATIVE_UNICODE_VERSIONS)))
def test_every_native_code_point_class_matches_the_golden_file(table):
    expected = golden_classes(NATIVE_UNICODE_VERSIONS[table])
    got = bytes(_encoder.char_class(cp, table) for cp in range(0x110000))
    diffs = [
        f"U+{cp:04X}: native {g} golden {e}"
        for cp, (g, e) in enumerate(zip(got, expected, strict=True))
        if g != e
    ]
    assert not diffs, diffs[:20]
    with pytest.raises(ValueError, match="unknown Unicode table"):
        _encoder.char_class(0x41, len(NATIVE_UNICODE_VERSIONS))


def test_golden_pattern_equals_the_original_where_installed_regex_agrees(request):
    """Validates the reference rewrite; reports (never fails on) the installed regex's drift from the pinned tables."""
    installed = gen.from_regex("installed")
    theirs = installed.classes()
    drift_all: set[int] = set()
    for version in NATIVE_UNICODE_VERSIONS:
        mine = golden_classes(version)
        drift = [cp for cp in range(0x110000) if mine[cp] != theirs[cp]]
        drift_all.update(drift)
        fold_drift = sorted(k for k, v in installed.folds.items() if v != golden(version).folds[k])
        line = (
            f"installed regex {regex.__version__}: {len(drift)} of 1,114,112 code points classified differently from "
            f"the pinned Unicode {version} tables"
            + (f" (first: {', '.join(f'U+{c:04X}' for c in drift[:6])})" if drift else "")
            + (f"; (?i) fold sets differ for {fold_drift}" if fold_drift else "")
        )
        request.config.stash.setdefault(DRIFT_KEY, []).append(line)
        print(line)
        assert all(cp >= 0x80 for cp in drift), "ASCII never changes class between Unicode versions"
    request.config.stash[DRIFT_KEY].append(
        "Built-in patterns are unaffected (they split with the pinned tables); custom patterns follow the installed regex."
    )
    stable = set(range(0x110000)) - drift_all - set(range(0xD800, 0xE000))
    sample = "".join(chr(cp) for cp in sorted(stable)[::97]) + " 's 'S 're  \n\n x  y 123456 ,.;\r\n"
    for version in NATIVE_UNICODE_VERSIONS:
        for name in ("cl100k", "gpt2"):
            if installed.folds != golden(version).folds and name == "cl100k":
                continue
            got = regex.findall(golden_pattern(PATTERNS[name], version), sample)
            assert got == regex.findall(PATTERNS[name], sample)


def test_golden_pattern_refuses_constructs_it_cannot_translate():
    with pytest.raises(ValueError, match="unsupported"):
        golden_pattern(r"\p{Lu}+")
    with pytest.raises(ValueError, match="unsupported"):
        golden_pattern(r"(?=x)")
