"""The reference splitter for the built-in patterns, made independent of the installed ``regex``'s Unicode version.

``regex.findall(PATTERN, text)`` is the definition of a split, but ``\\p{L}``, ``\\p{N}``, ``\\s`` and ``(?i)`` mean
whatever Unicode version the installed ``regex`` implements. `golden_pattern` rewrites a built-in pattern with those
classes spelled out as explicit code-point ranges taken from the golden table file
(``tokenizer/_native/unicode_<version>.txt``), so the oracle means the pinned Unicode version with any ``regex``.
The rewrite itself is checked in test_unicode_tables.py: on code points where the installed ``regex`` agrees with
the golden file, the rewritten and original patterns split identically.
"""

from __future__ import annotations

import functools

import pytest
import regex

from tokenizer._native import gen_unicode_tables as gen
from tokenizer.patterns import PATTERNS

# Lines of the drift report (installed regex vs the pinned tables), printed by conftest.py in the terminal summary.
DRIFT_KEY = pytest.StashKey[list[str]]()
_CLASS_OF = {r"\p{L}": 1, r"\p{N}": 2, r"\s": 3}


@functools.cache
def golden(version: str = gen.DEFAULT_VERSION) -> gen.Tables:
    return gen.load_golden(version)


@functools.cache
def golden_classes(version: str = gen.DEFAULT_VERSION) -> bytes:
    return bytes(golden(version).classes())


@functools.cache
def _refined_ranges(classes: frozenset[int], version: str) -> str:
    """Code points of o200k refinement classes (o200k_<version>.txt: 1 Lu/Lt, 2 Ll, 3 Lm/Lo, 4 M) as ranges."""
    from tokenizer._native import gen_o200k_tables as o200k

    starts, values = o200k.load_golden(version)
    bounds = [*starts[1:], gen.MAX_CP]
    return "".join(
        f"\\U{a:08X}-\\U{b - 1:08X}" if b - 1 > a else f"\\U{a:08X}"
        for a, b, c in zip(starts, bounds, values, strict=True)
        if c in classes
    )


# o200k's case-aware classes, always spelled as these two groups, translated as wholes.
O200K_GROUPS = {
    r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]": frozenset({1, 3, 4}),
    r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]": frozenset({2, 3, 4}),
}


@functools.cache
def _ranges(cls: int, version: str) -> str:
    """The code points of class `cls` as the inside of a character class: ``\\U0000000A-\\U0000000D...``."""
    t = golden(version)
    bounds = [*t.run_starts[1:], gen.MAX_CP]
    parts = []
    for start, end, c in zip(t.run_starts, bounds, t.run_classes, strict=True):
        if c == cls:
            parts.append(f"\\U{start:08X}-\\U{end - 1:08X}" if end - 1 > start else f"\\U{start:08X}")
    return "".join(parts)


def _fold_class(ch: str, version: str) -> str:
    t = golden(version)
    low = ch.lower()
    extra = "".join(f"\\U{c:08X}" for c in t.folds.get(low, ()))
    return f"[{low}{low.upper()}{extra}]"


def golden_pattern(pattern: str, version: str = gen.DEFAULT_VERSION) -> str:
    """`pattern` with ``\\p{L} \\p{N} \\s \\S`` and ``(?i:...)`` letters replaced by the golden tables' code points.

    Handles the constructs the built-in patterns use (classes inside and outside brackets, negated brackets, one
    level of ``(?i:...)`` over ASCII letters); raises ValueError on anything else so a new pattern is not silently
    mistranslated.
    """
    out: list[str] = []
    i, in_class, fold = 0, False, False
    while i < len(pattern):
        rest = pattern[i:]
        group = next((g for g in O200K_GROUPS if rest.startswith(g)), None)
        if group is not None and not in_class:
            out.append(f"[{_refined_ranges(O200K_GROUPS[group], version)}]")
            i += len(group)
            continue
        token = next((t for t in (r"\p{L}", r"\p{N}", r"\s", r"\S") if rest.startswith(t)), None)
        if token == r"\S":
            if in_class:
                raise ValueError(r"\S inside a character class is not supported")
            out.append(f"[^{_ranges(3, version)}]")
        elif token is not None:
            body = _ranges(_CLASS_OF[token], version)
            out.append(body if in_class else f"[{body}]")
        elif rest.startswith((r"\p", r"\P")) or (
            rest.startswith("(?") and not rest.startswith(("(?i:", "(?!", "(?:"))
        ):
            raise ValueError(f"unsupported construct at {i}: {rest[:8]!r}")
        elif rest.startswith("(?i:"):
            out.append("(?:")
            fold = True
            token = "(?i:"
        elif rest[0] == "\\":
            token = rest[:2]
            out.append(token)
        elif rest[0] == "[" and not in_class:
            in_class = True
            out.append("[")
        elif rest[0] == "]" and in_class:
            in_class = False
            out.append("]")
        elif rest[0] == ")" and fold:
            fold = False
            out.append(")")
        elif fold and rest[0].isascii() and rest[0].isalpha():
            cls = _fold_class(rest[0], version)
            out.append(cls[1:-1] if in_class else cls)  # inside [...] (tiktoken's `[sdmt]`): the members only
        else:
            out.append(rest[0])
        i += len(token) if token else 1
    return "".join(out)


@functools.cache
def compile_oracle(pattern: str, version: str = gen.DEFAULT_VERSION) -> regex.Pattern[str]:
    """The reference regex for `pattern`: built-in patterns read with the pinned tables, custom ones as written
    (a custom pattern means whatever the installed ``regex`` makes of it; see docs/UNICODE.md)."""
    return regex.compile(golden_pattern(pattern, version) if pattern in PATTERNS.values() else pattern)
