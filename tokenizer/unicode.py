"""Which Unicode version a tokenizer means, and the policy when a file meets another one.

Pre-tokenization splits on Unicode classes (``\\p{L}``, ``\\p{N}``, ``\\s``...), whose membership changes with every
Unicode release (Unicode 18.0.0 made 12,823 code points letters or numbers that 17.0.0 left unassigned). So the
Unicode version is part of what a tokenizer file means (docs/UNICODE.md):

- Built-in patterns (cl100k, gpt2) split with tables compiled into the native code, one per Unicode version in
  `NATIVE_UNICODE_VERSIONS` (tokenizer/_native/unicode_<version>.txt); the file names which. The installed ``regex``
  plays no part. New tokenizers get `DEFAULT_NATIVE_UNICODE_VERSION`, 16.0.0, the version of tiktoken's (Rust
  regex) and HF tokenizers' (Oniguruma) tables, so exports split identically on every code point; format-1 files,
  which record no version, were all written with the 17.0.0 tables (`FORMAT1_UNICODE_VERSION`) and keep them.
- Custom patterns run through the installed ``regex``, so the file records the ``regex`` version and the Unicode
  version it implements (`regex_unicode_version`, found by counting assigned code points: each Unicode release
  assigns new ones, so the count names the version exactly).

Policy on load (`check_unicode`): a recorded Unicode version that this machine cannot split with (a built-in pattern
whose version has no compiled table, a custom pattern whose installed ``regex`` implements another version) raises `UnicodeMismatchError` naming both and the fixes; ``allow_unicode_mismatch=True`` loads anyway with a loud
`UnicodeMismatchWarning`. A different ``regex`` release implementing the same Unicode version is accepted: the
pattern constructs' matching rules are stable across releases, the tables are what moves.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

from shardstore.errors import FormatError

from .patterns import native_pattern_id

__all__ = [
    "DEFAULT_NATIVE_UNICODE_VERSION",
    "FORMAT1_UNICODE_VERSION",
    "NATIVE_UNICODE_VERSIONS",
    "UnicodeInfo",
    "UnicodeMismatchError",
    "UnicodeMismatchWarning",
    "check_unicode",
    "current_unicode",
    "native_split_id",
    "regex_unicode_version",
    "regex_version",
]

# The tables compiled into the native splitter, in native table-id order (gen_unicode_tables.py: UNICODE_VERSIONS);
# a test checks these constants against the compiled module.
NATIVE_UNICODE_VERSIONS = ("16.0.0", "17.0.0")
DEFAULT_NATIVE_UNICODE_VERSION = "16.0.0"
# Format-1 tokenizer files record no version; every shardstore that wrote them had these tables (regex 2026.5.9).
FORMAT1_UNICODE_VERSION = "17.0.0"

# Assigned code points (general category not Cn, surrogates excluded) per Unicode version, from unicodedata /
# unicodedata2 of that version. regex 2023.10.3 -> 15.1.0, 2026.5.9 -> 17.0.0, 2026.11.19 -> 18.0.0.
_ASSIGNED_COUNT_TO_VERSION = {
    282230: "14.0.0",
    286719: "15.0.0",
    287346: "15.1.0",
    292531: "16.0.0",
    297334: "17.0.0",
    310341: "18.0.0",
}


class UnicodeMismatchError(FormatError):
    """A tokenizer file was made with another Unicode version than this machine would split it with."""


class UnicodeMismatchWarning(UserWarning):
    """Loaded with ``allow_unicode_mismatch=True``: ids may differ from the ones the file was trained with."""


@dataclass(frozen=True, slots=True)
class UnicodeInfo:
    """The Unicode version a tokenizer splits with, and the ``regex`` release for custom patterns (None: native)."""

    version: str
    regex: str | None = None


def regex_version() -> str:
    """The installed ``regex`` distribution's version (``regex.__version__`` is an internal number in old releases)."""
    from importlib import metadata

    try:
        return metadata.version("regex")
    except metadata.PackageNotFoundError:
        import regex

        return str(regex.__version__)


@functools.cache
def regex_unicode_version() -> str:
    """The Unicode version the installed ``regex`` implements (about 0.3 s on first call, then cached)."""
    import regex

    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    count = len(regex.findall(r"\P{Cn}", text))
    return _ASSIGNED_COUNT_TO_VERSION.get(count, f"unknown ({count} assigned code points)")


def current_unicode(*, native: bool) -> UnicodeInfo:
    """What a new tokenizer splits with: the default compiled tables for a built-in pattern, the installed ``regex``
    otherwise."""
    if native:
        return UnicodeInfo(DEFAULT_NATIVE_UNICODE_VERSION)
    return UnicodeInfo(regex_unicode_version(), regex_version())


def native_split_id(pattern: str, unicode_version: str) -> int:
    """The native splitter id (``4 * table + pattern``) for a resolved pattern read with `unicode_version`'s tables;
    -1 for a custom pattern. A version without compiled tables (loaded with ``allow_unicode_mismatch``) splits with
    the default tables."""
    kind = native_pattern_id(pattern)
    if kind < 0:
        return -1
    version = (
        unicode_version if unicode_version in NATIVE_UNICODE_VERSIONS else DEFAULT_NATIVE_UNICODE_VERSION
    )
    return 4 * NATIVE_UNICODE_VERSIONS.index(version) + kind


def check_unicode(recorded: UnicodeInfo, *, native: bool, allow_mismatch: bool, source: str) -> None:
    """Apply the load policy (module docstring); `recorded` is what the file says it was made with."""
    here = current_unicode(native=native)
    if recorded.version == here.version or (native and recorded.version in NATIVE_UNICODE_VERSIONS):
        return
    made = f"Unicode {recorded.version}" + (
        f" (regex {recorded.regex})" if recorded.regex else " (native tables)"
    )
    if native:
        now = f"this shardstore's native tables are Unicode {', '.join(NATIVE_UNICODE_VERSIONS)}"
        fix = f"load it with the shardstore release that wrote it (it splits as Unicode {here.version} otherwise)"
    else:
        now = f"the installed regex {here.regex} implements Unicode {here.version}"
        fix = f"install the regex release it records (pip install 'regex=={recorded.regex}')"
    message = (
        f"{source}: tokenizer was made with {made}, but {now}; its ids would differ for text with code points whose "
        f"class changed. Fix: {fix}, or pass allow_unicode_mismatch=True to accept the difference"
    )
    if not allow_mismatch:
        raise UnicodeMismatchError(message)
    warnings.warn(f"allow_unicode_mismatch=True: {message}", UnicodeMismatchWarning, stacklevel=3)
