"""The pre-tokenizer's Unicode tables: a golden text file in the repository, and ``unicode_tables.h`` made from it.

The native splitter of the built-in patterns needs four character classes (``\\p{L}``, ``\\p{N}``, ``\\s``, other)
and, for the case-insensitive contractions of cl100k, the non-ASCII code points that ``(?i)`` equates with
``s t m d r e v l``. Those classes are a property of a Unicode version, so they are pinned in the repository as
``unicode_<version>.txt`` (every code point U+0000..U+10FFFF, run-length coded: about 1.6k lines) and the header is
generated FROM those files (one C++ struct per version), never from whatever ``regex`` happens to be installed. Ids of a built-in pattern are
therefore a function of the tokenizer file and the shardstore version only; the file names the Unicode version
(``tokenizer.unicode``) and ``tests/tokenizer/test_unicode_tables.py`` checks header == render(golden file) and every
code point of the compiled tables against the golden file.

Two commands:

- ``python tokenizer/_native/gen_unicode_tables.py`` rewrites ``unicode_tables.h`` from the golden file (byte for byte
  what the test expects).
- ``python tokenizer/_native/gen_unicode_tables.py --from-regex VERSION`` classifies every code point with the
  installed ``regex`` package and writes ``unicode_VERSION.txt`` (VERSION is the Unicode version that ``regex`` build
  implements; check it, e.g. against ``unicodedata2`` of that version). Adopting a new table is a new
  ``UNICODE_VERSION`` and therefore a new tokenizer fingerprint, never a silent change of ids: see docs/UNICODE.md.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

MAX_CP = 0x110000
CLASS_NAMES = {0: "OTHER", 1: "LETTER", 2: "NUMBER", 3: "SPACE"}
FOLD_LETTERS = "stmdrevl"
HERE = os.path.dirname(os.path.abspath(__file__))
# The Unicode versions compiled in, one golden file unicode_<version>.txt each. A version once shipped stays: a
# tokenizer file names the version its ids were made with. New tokenizers get DEFAULT_VERSION: the one tiktoken's
# tables implement (see docs/UNICODE.md); format-1 files were all made with 17.0.0.
UNICODE_VERSIONS = ("16.0.0", "17.0.0")
DEFAULT_VERSION = "16.0.0"


@dataclass(frozen=True, slots=True)
class Tables:
    """Per-code-point data of one Unicode version: run starts and classes, and the (?i) fold sets."""

    unicode_version: str
    source: str  # what the data was taken from, e.g. "regex 2026.5.9"
    run_starts: tuple[int, ...]
    run_classes: tuple[int, ...]
    folds: dict[str, tuple[int, ...]]

    def classes(self) -> bytearray:
        """Class of every code point, index = code point (1,114,112 entries)."""
        out = bytearray(MAX_CP)
        bounds = [*self.run_starts[1:], MAX_CP]
        for start, end, c in zip(self.run_starts, bounds, self.run_classes, strict=True):
            out[start:end] = bytes([c]) * (end - start)
        return out


def golden_path(version: str) -> str:
    return os.path.join(HERE, f"unicode_{version}.txt")


def runs_of(cls: bytes | bytearray | list[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    starts: list[int] = []
    values: list[int] = []
    for cp, c in enumerate(cls):
        if not values or values[-1] != c:
            starts.append(cp)
            values.append(c)
    return tuple(starts), tuple(values)


def from_regex(version: str) -> Tables:
    """Classify every code point with the installed ``regex`` package (surrogates: OTHER, never in valid UTF-8)."""
    import regex

    cps = [c for c in range(MAX_CP) if not 0xD800 <= c < 0xE000]
    text = "".join(map(chr, cps))
    cls = [0] * MAX_CP
    for value, prop in ((1, r"\p{L}"), (2, r"\p{N}"), (3, r"\s")):
        for m in regex.finditer(prop + "+", text):
            for i in range(m.start(), m.end()):
                cp = cps[i]
                if cls[cp] != 0:
                    raise SystemExit(
                        f"U+{cp:04X} is in two classes ({CLASS_NAMES[cls[cp]]}, {CLASS_NAMES[value]})"
                    )
                cls[cp] = value
    folds: dict[str, tuple[int, ...]] = {}
    for letter in FOLD_LETTERS:
        found = [cps[m.start()] for m in regex.finditer(f"(?i:{letter})", text)]
        ascii_found = sorted(c for c in found if c < 0x80)
        if ascii_found != sorted({ord(letter), ord(letter.upper())}):
            raise SystemExit(f"unexpected ASCII case-folding for {letter!r}: {ascii_found}")
        folds[letter] = tuple(c for c in found if c >= 0x80)
    from importlib import metadata

    starts, values = runs_of(cls)
    return Tables(version, f"regex {metadata.version('regex')}", starts, values, folds)


def render_golden(t: Tables) -> str:
    lines = [
        "# shardstore pre-tokenizer character classes, every code point U+0000..U+10FFFF (1,114,112), run-length coded.",
        '# "run START CLASS": the run starts at hex code point START and ends where the next run starts.',
        '# Classes: 0 other, 1 \\p{L}, 2 \\p{N}, 3 \\s (surrogates: 0). "fold L CP...": the non-ASCII code points',
        "# equal to ASCII letter L under (?i). Generated by tokenizer/_native/gen_unicode_tables.py --from-regex.",
        f"unicode {t.unicode_version}",
        f"source {t.source}",
    ]
    lines += [f"run {s:X} {c}" for s, c in zip(t.run_starts, t.run_classes, strict=True)]
    lines += [" ".join(["fold", letter, *(f"{c:X}" for c in t.folds[letter])]) for letter in FOLD_LETTERS]
    return "\n".join(lines) + "\n"


def parse_golden(text: str, *, source: str) -> Tables:
    """Parse and check a golden file (runs start at 0, strictly increase, classes 0-3, all fold letters present)."""
    version = origin = ""
    starts: list[int] = []
    values: list[int] = []
    folds: dict[str, tuple[int, ...]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        key, _, rest = line.partition(" ")
        fields = rest.split()
        if key == "unicode":
            version = rest
        elif key == "source":
            origin = rest
        elif key == "run" and len(fields) == 2 and fields[1] in "0123":
            start = int(fields[0], 16)
            if not (start < MAX_CP and (start > starts[-1] if starts else start == 0)):
                raise ValueError(f"{source}:{n}: run start {fields[0]} out of order or range")
            starts.append(start)
            values.append(int(fields[1]))
        elif key == "fold" and fields and fields[0] in FOLD_LETTERS:
            folds[fields[0]] = tuple(int(c, 16) for c in fields[1:])
        else:
            raise ValueError(f"{source}:{n}: unexpected line {line!r}")
    if not version or not starts or set(folds) != set(FOLD_LETTERS):
        raise ValueError(
            f"{source}: lacks the unicode line, runs or a fold line per letter of {FOLD_LETTERS!r}"
        )
    return Tables(version, origin, tuple(starts), tuple(values), folds)


def load_golden(version: str) -> Tables:
    path = golden_path(version)
    with open(path, encoding="ascii") as f:
        return parse_golden(f.read(), source=path)


def _ident(version: str) -> str:
    return "U" + version.replace(".", "_")


def _render_table(t: Tables) -> list[str]:
    n = len(t.run_starts)
    lines = [
        f"// Unicode {t.unicode_version} (unicode_{t.unicode_version}.txt, data taken from {t.source}); {n} runs.",
        f"struct {_ident(t.unicode_version)} {{",
        f'    static constexpr const char kVersion[] = "{t.unicode_version}";',
        f"    static constexpr uint32_t kNumRuns = {n};",
        "    static constexpr uint32_t kRunStart[kNumRuns] = {",
    ]
    for i in range(0, n, 10):
        lines.append("        " + ", ".join(f"0x{s:X}" for s in t.run_starts[i : i + 10]) + ",")
    lines += ["    };", "    static constexpr uint8_t kRunClass[kNumRuns] = {"]
    for i in range(0, n, 40):
        lines.append("        " + ",".join(str(v) for v in t.run_classes[i : i + 40]) + ",")
    lines.append("    };")
    for letter in FOLD_LETTERS:
        items = t.folds[letter] or (0,)  # 0 never matches: callers only ask about non-ASCII code points
        lines.append(
            f"    static constexpr uint32_t kFold_{letter}[] = {{{', '.join(f'0x{c:X}' for c in items)}}};"
        )
    lines.append("};")
    return lines


def render_header(tables: list[Tables]) -> str:
    """The C++ header: one struct per Unicode version, in `UNICODE_VERSIONS` order (index = native table id)."""
    ascii_classes = {bytes(t.classes()[:128]) for t in tables}
    if len(ascii_classes) != 1:
        raise SystemExit(
            "ASCII classes differ between table versions; pretok_core.h's ASCII fast path assumes they agree"
        )
    names = ", ".join(t.unicode_version for t in tables)
    lines = [
        f"// GENERATED by tokenizer/_native/gen_unicode_tables.py from unicode_<version>.txt ({names}) -- do not edit.",
        "#pragma once",
        "#include <cstdint>",
        "",
        "namespace pretok_tables {",
        "// Classes: 0 other, 1 \\p{L}, 2 \\p{N}, 3 \\s. Run i covers [kRunStart[i], kRunStart[i+1]).",
        "// kFold_x: non-ASCII code points equal to ASCII letter x under (?i) (simple case folding).",
    ]
    for t in tables:
        lines += _render_table(t)
    lines += [
        f"static constexpr int kNumTables = {len(tables)};",
        f"static constexpr int kDefaultTable = {[t.unicode_version for t in tables].index(DEFAULT_VERSION)};",
        "static constexpr const char* kTableVersions[kNumTables] = {"
        + ", ".join(f'"{t.unicode_version}"' for t in tables)
        + "};",
        "// X(table id, struct) for every table: pretok.h instantiates the splitter once per table.",
        "#define PRETOK_FOR_EACH_TABLE(X) "
        + " ".join(f"X({i}, {_ident(t.unicode_version)})" for i, t in enumerate(tables)),
        "}  // namespace pretok_tables",
        "",
    ]
    return "\n".join(lines)


def render_all_headers() -> str:
    return render_header([load_golden(v) for v in UNICODE_VERSIONS])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--from-regex", metavar="VERSION", help="write unicode_VERSION.txt from the installed regex"
    )
    args = parser.parse_args()
    if args.from_regex:
        out = golden_path(args.from_regex)
        text = render_golden(from_regex(args.from_regex))
    else:
        out = os.path.join(HERE, "unicode_tables.h")
        text = render_all_headers()
    with open(out, "w", encoding="ascii", newline="\n") as f:
        f.write(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
