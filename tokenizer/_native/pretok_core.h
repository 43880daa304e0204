// Hand-written pre-tokenizer for the built-in patterns (cl100k, gpt2; o200k in pretok_o200k.h, the dispatch in
// pretok.h): header-only C++17, no Python.
//
// pretok_with(id, f) calls f(next), where next(s, n, pos) returns the end offset (bytes) of the piece that regex.findall(PATTERN, text) yields at
// byte `pos` of the UTF-8 text s[0..n). Both patterns match every character, so consecutive pieces tile the text.
// Each alternative of the regex is transcribed below in pattern order, with the regex engine's backtracking worked
// out by hand (commented per alternative). Character classes (\p{L}, \p{N}, \s, and the case-insensitive
// contraction letters) come from unicode_tables.h, generated from the golden unicode_<version>.txt; tests fuzz
// this splitter against regex.findall on random Unicode text.
//
// Cost: every call is O(length of the piece it returns), except whitespace runs, which are scanned once per call
// (a run yields at most 3 pieces), so splitting is linear in the text length. Invalid UTF-8 is not expected (input
// comes from Python str), but is bounds-checked: a bad lead byte counts as one "other" character.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pretok_simd.h"  // also defines PRETOK_INLINE
#include "unicode_tables.h"

// CL100K_BASE is tiktoken's (0.6+) spelling of cl100k: possessive quantifiers and a `\s++$` alternative, which
// differs from the classic spelling only for a whitespace run that ends the text and holds a CR/LF before its last
// character (classic: "  \n" + "  "; tiktoken: one piece). tiktoken's r50k spelling splits as GPT2 does.
// O200K is tiktoken's o200k_base pattern; its case-aware letter classes come from o200k_tables.h.
enum PretokPattern : int { PRETOK_CL100K = 0, PRETOK_GPT2 = 1, PRETOK_CL100K_BASE = 2, PRETOK_O200K = 3 };
inline constexpr int kPretokNumPatterns = 4;

namespace pretok_detail {

enum CharClass : uint8_t { C_OTHER = 0, C_LETTER = 1, C_NUMBER = 2, C_SPACE = 3 };

// Class of a code point in table T (a pretok_tables struct): binary search in the run table, except for the BMP,
// which goes through a 64 KiB table built once per table version.
template <class T>
struct Classes {
    static uint8_t slow(uint32_t cp) {
        uint32_t lo = 0, hi = T::kNumRuns;  // invariant: kRunStart[lo] <= cp < kRunStart[hi]
        while (hi - lo > 1) {
            uint32_t mid = (lo + hi) / 2;
            if (T::kRunStart[mid] <= cp) lo = mid; else hi = mid;
        }
        return T::kRunClass[lo];
    }
    struct Bmp {
        uint8_t cls[0x10000];
        Bmp() {
            uint32_t run = 0;
            for (uint32_t cp = 0; cp < 0x10000; ++cp) {
                while (run + 1 < T::kNumRuns && T::kRunStart[run + 1] <= cp) ++run;
                cls[cp] = T::kRunClass[run];
            }
        }
    };
    // Built when the extension loads (a static member, not a function-local static: that one's guard was a call
    // per non-ASCII character, 2-3% of a count of Chinese text).
    static inline const Bmp kBmp{};
    static PRETOK_INLINE const Bmp& bmp() { return kBmp; }
    static PRETOK_INLINE uint8_t of(uint32_t cp) { return cp < 0x10000 ? bmp().cls[cp] : slow(cp); }
};

// ASCII classes without the one-time-init guard of bmp(): the hot path for code and English text. Every table
// version has the same ASCII classes (gen_unicode_tables.py refuses to generate otherwise), so one table serves all.
struct AsciiTable {
    uint8_t cls[128];
    constexpr AsciiTable() : cls() {
        for (uint32_t c = 0; c < 128; ++c) {
            uint32_t run = 0;
            using T0 = pretok_tables::U17_0_0;
            while (run + 1 < T0::kNumRuns && T0::kRunStart[run + 1] <= c) ++run;
            cls[c] = T0::kRunClass[run];
        }
    }
};
inline constexpr AsciiTable kAscii{};

struct Char {
    uint32_t cp;
    uint32_t len;  // bytes
    uint8_t cls;
};

// Decode the character at s[pos] (pos < n).
template <class T>
PRETOK_INLINE Char char_at(const uint8_t* s, size_t n, size_t pos) {
    uint8_t b = s[pos];
    if (b < 0x80) return Char{b, 1, kAscii.cls[b]};
    uint32_t len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 0;
    if (len == 0 || len > 4 || pos + len > n) return Char{0xFFFD, 1, C_OTHER};
    uint32_t cp = b & (0x7F >> len);
    for (uint32_t i = 1; i < len; ++i) {
        uint8_t c = s[pos + i];
        if ((c & 0xC0) != 0x80) return Char{0xFFFD, 1, C_OTHER};
        cp = (cp << 6) | (c & 0x3F);
    }
    return Char{cp, len, Classes<T>::of(cp)};
}

// End of the run of characters of class `cls` starting at pos.
template <class T>
PRETOK_INLINE size_t run_end(const uint8_t* s, size_t n, size_t pos, uint8_t cls) {
    if (cls == C_LETTER) pos = ascii_letters_end(s, n, pos);
    if (cls == C_OTHER) pos = ascii_others_end(s, n, pos);
    while (pos < n && s[pos] < 0x80 && kAscii.cls[s[pos]] == cls) ++pos;  // ASCII fast path
    while (pos < n) {
        Char c = char_at<T>(s, n, pos);
        if (c.cls != cls) break;
        pos += c.len;
    }
    return pos;
}

template <size_t N>
inline bool in_list(uint32_t cp, const uint32_t (&list)[N]) {
    for (size_t i = 0; i < N; ++i)
        if (list[i] == cp && cp != 0) return true;
    return false;
}

// Does `cp` equal ASCII lowercase `letter` under the regex package's (?i)?
template <class T>
PRETOK_INLINE bool fold_eq(uint32_t cp, char letter) {
    if (cp < 0x80) return (cp | 0x20) == static_cast<uint32_t>(letter);
    switch (letter) {
        case 's': return in_list(cp, T::kFold_s);
        case 't': return in_list(cp, T::kFold_t);
        case 'm': return in_list(cp, T::kFold_m);
        case 'd': return in_list(cp, T::kFold_d);
        case 'r': return in_list(cp, T::kFold_r);
        case 'e': return in_list(cp, T::kFold_e);
        case 'v': return in_list(cp, T::kFold_v);
        case 'l': return in_list(cp, T::kFold_l);
        default: return false;
    }
}

// Contractions 's|'t|'re|'ve|'m|'ll|'d starting at pos (s[pos] == '\''); returns end or 0 if none matches.
template <class T>
PRETOK_INLINE size_t contraction(const uint8_t* s, size_t n, size_t pos, bool ignore_case) {
    size_t p1 = pos + 1;
    if (p1 >= n) return 0;
    Char c1 = char_at<T>(s, n, p1);
    auto eq = [ignore_case](uint32_t cp, char letter) {
        return ignore_case ? fold_eq<T>(cp, letter) : cp == static_cast<uint32_t>(letter);
    };
    if (eq(c1.cp, 's') || eq(c1.cp, 't') || eq(c1.cp, 'm') || eq(c1.cp, 'd')) return p1 + c1.len;
    size_t p2 = p1 + c1.len;
    if (p2 >= n) return 0;
    Char c2 = char_at<T>(s, n, p2);
    if ((eq(c1.cp, 'r') && eq(c2.cp, 'e')) || (eq(c1.cp, 'v') && eq(c2.cp, 'e')) || (eq(c1.cp, 'l') && eq(c2.cp, 'l')))
        return p2 + c2.len;
    return 0;
}

struct SpaceRun {
    size_t end;         // end of the maximal \s run starting at pos
    size_t last_start;  // start of its last character
    size_t nchars;
    size_t newline_end;  // end of its last CR or LF, 0 if it has none
};

template <class T>
PRETOK_INLINE SpaceRun space_run(const uint8_t* s, size_t n, size_t pos) {
    SpaceRun r{pos, pos, 0, 0};
    while (r.end < n) {
        if (s[r.end] == ' ') {  // a run of spaces (indentation) at once
            size_t e = byte_run_end(s, n, r.end, ' ');
            while (e < n && s[e] == ' ') ++e;
            r.nchars += e - r.end;
            r.last_start = e - 1;
            r.end = e;
            continue;
        }
        Char c = char_at<T>(s, n, r.end);
        if (c.cls != C_SPACE) break;
        r.last_start = r.end;
        r.end += c.len;
        ++r.nchars;
        if (c.cp == '\r' || c.cp == '\n') r.newline_end = r.end;
    }
    return r;
}

// \s+(?!\S) then \s+ : the greedy run, backed off by one character when a non-space follows it.
inline size_t space_tail(size_t n, const SpaceRun& r) {
    if (r.end == n) return r.end;             // \s+(?!\S): end of text satisfies the lookahead
    if (r.nchars >= 2) return r.last_start;   // back off one char: a space follows, so (?!\S) holds
    return r.end;                             // \s+ (single whitespace char before a non-space)
}

// cl100k: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*
//         |\s*[\r\n]+|\s+(?!\S)|\s+
template <class T, bool EndRun = false>
PRETOK_INLINE size_t next_cl100k(const uint8_t* s, size_t n, size_t pos) {
    Char c0 = char_at<T>(s, n, pos);
    // (?i:'s|'t|'re|'ve|'m|'ll|'d)
    if (c0.cp == '\'') {
        size_t e = contraction<T>(s, n, pos, true);
        if (e) return e;
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+ : a letter run, optionally preceded by one char that is not CR/LF/letter/number.
    if (c0.cls == C_LETTER) return run_end<T>(s, n, pos + c0.len, C_LETTER);
    size_t p1 = pos + c0.len;
    if (c0.cls != C_NUMBER && c0.cp != '\r' && c0.cp != '\n' && p1 < n) {
        Char c1 = char_at<T>(s, n, p1);
        if (c1.cls == C_LETTER) return run_end<T>(s, n, p1 + c1.len, C_LETTER);
    }
    // \p{N}{1,3}
    if (c0.cls == C_NUMBER) {
        size_t e = p1;
        for (int k = 1; k < 3 && e < n; ++k) {
            Char c = char_at<T>(s, n, e);
            if (c.cls != C_NUMBER) break;
            e += c.len;
        }
        return e;
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    size_t other = n;  // start of the [^\s\p{L}\p{N}]+ run, if the alternative applies
    if (c0.cls == C_OTHER) {
        other = pos;
    } else if (c0.cp == ' ' && p1 < n && char_at<T>(s, n, p1).cls == C_OTHER) {
        other = p1;
    }
    if (other != n) {
        size_t e = run_end<T>(s, n, other, C_OTHER);
        while (e < n && (s[e] == '\r' || s[e] == '\n')) ++e;
        return e;
    }
    // Only whitespace remains (c0 is \s).
    SpaceRun r = space_run<T>(s, n, pos);
    if (EndRun && r.end == n) return n;  // \s++$ (tiktoken's spelling): whitespace to the end of the text
    // \s*[\r\n]+ : \s* backs off to the last CR/LF of the run; [\r\n]+ then takes just it (the run's last CR/LF).
    if (r.newline_end) return r.newline_end;
    return space_tail(n, r);
}

// gpt2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
template <class T>
PRETOK_INLINE size_t next_gpt2(const uint8_t* s, size_t n, size_t pos) {
    Char c0 = char_at<T>(s, n, pos);
    if (c0.cp == '\'') {
        size_t e = contraction<T>(s, n, pos, false);
        if (e) return e;
    }
    // ' ?X+' for X in letter, number, other: an optional space glued to a run of one class.
    if (c0.cls != C_SPACE) return run_end<T>(s, n, pos + c0.len, c0.cls);
    size_t p1 = pos + 1;
    if (c0.cp == ' ' && p1 < n) {
        Char c1 = char_at<T>(s, n, p1);
        if (c1.cls != C_SPACE) return run_end<T>(s, n, p1 + c1.len, c1.cls);
    }
    SpaceRun r = space_run<T>(s, n, pos);
    return space_tail(n, r);
}

}  // namespace pretok_detail
