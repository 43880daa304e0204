// The o200k splitter (tiktoken's o200k_base pattern), on pretok_core.h's character classes and run scans, with the
// case-aware letter classes of o200k_tables.h. Header-only C++17, no Python; pretok.h dispatches to it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "o200k_tables.h"
#include "pretok_core.h"

namespace pretok_detail {

// ---------------------------------------------------------------------------------------------------- o200k
// o200k: [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//      |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//      |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
// Classes: UP = {upper, both, mark}, LO = {lower, both, mark}; a mark is not \p{L}, so it is "other" to the
// prefix [^\r\n\p{L}\p{N}] and to [^\s\p{L}\p{N}].
enum OClass : uint8_t { K_OTHER = 0, K_UPPER = 1, K_LOWER = 2, K_BOTH = 3, K_MARK = 4, K_NUMBER = 5, K_SPACE = 6 };

template <class T, class R>
struct OClasses {
    static uint8_t slow(uint32_t cp) {
        uint32_t lo = 0, hi = R::kNumRuns;
        while (hi - lo > 1) {
            uint32_t mid = (lo + hi) / 2;
            if (R::kRunStart[mid] <= cp) lo = mid; else hi = mid;
        }
        if (R::kRunClass[lo]) return R::kRunClass[lo];
        uint8_t c = Classes<T>::of(cp);
        return c == C_NUMBER ? K_NUMBER : c == C_SPACE ? K_SPACE : K_OTHER;
    }
    struct Bmp {
        uint8_t cls[0x10000];
        Bmp() {
            for (uint32_t cp = 0; cp < 0x10000; ++cp) cls[cp] = slow(cp);
        }
    };
    // Built when the extension loads (a static member, not a function-local static: that one's guard was a call
    // per non-ASCII character, 2-3% of a count of Chinese text).
    static inline const Bmp kBmp{};
    static PRETOK_INLINE const Bmp& bmp() { return kBmp; }
    static PRETOK_INLINE uint8_t of(uint32_t cp) { return cp < 0x10000 ? bmp().cls[cp] : slow(cp); }
};

// o200k classes of the ASCII characters (from kAscii: letters below 'a' are upper case).
struct AsciiOTable {
    uint8_t k[128];
    constexpr AsciiOTable() : k() {
        for (uint32_t b = 0; b < 128; ++b) {
            const uint8_t c = kAscii.cls[b];
            k[b] = c == C_LETTER   ? (b < 'a' ? K_UPPER : K_LOWER)
                   : c == C_NUMBER ? K_NUMBER
                   : c == C_SPACE  ? K_SPACE
                                   : K_OTHER;
        }
    }
};
inline constexpr AsciiOTable kAsciiO{};

struct OChar {
    uint32_t cp;
    uint32_t len;
    uint8_t k;
};

template <class T, class R>
PRETOK_INLINE OChar ochar_at(const uint8_t* s, size_t n, size_t pos) {
    uint8_t b = s[pos];
    if (b < 0x80) return OChar{b, 1, kAsciiO.k[b]};
    Char c = char_at<T>(s, n, pos);
    if (c.cp == 0xFFFD && c.len == 1) return OChar{c.cp, 1, K_OTHER};  // invalid UTF-8 (not expected)
    return OChar{c.cp, c.len, OClasses<T, R>::of(c.cp)};
}

PRETOK_INLINE bool in_up(uint8_t k) { return k == K_UPPER || k == K_BOTH || k == K_MARK; }
PRETOK_INLINE bool in_lo(uint8_t k) { return k == K_LOWER || k == K_BOTH || k == K_MARK; }

template <class T>
PRETOK_INLINE size_t with_contraction(const uint8_t* s, size_t n, size_t e) {
    if (e < n && s[e] == '\'') {
        size_t c = contraction<T>(s, n, e, true);
        if (c) return c;
    }
    return e;
}

// UP* LO+ contraction? from s, with the engine's backtracking worked out: greedy UP*, then LO+ at its end if that is a
// lower-case letter; else UP* gives back characters until the last Lm/Lo/M of the run, which LO+ takes alone.
// Returns the end, or 0 when it fails.
template <class T, class R>
PRETOK_INLINE size_t o200k_up_lo(const uint8_t* s, size_t n, size_t start) {
    size_t k = start, last_both = 0;
    while (k < n) {
        OChar c = ochar_at<T, R>(s, n, k);
        if (!in_up(c.k)) break;
        k += c.len;
        if (c.k != K_UPPER) last_both = k;
    }
    if (k < n) {
        OChar c = ochar_at<T, R>(s, n, k);
        if (c.k == K_LOWER) {
            size_t e = ascii_lower_end(s, n, k + c.len);
            while (e < n) {
                OChar d = ochar_at<T, R>(s, n, e);
                if (!in_lo(d.k)) break;
                e += d.len;
            }
            return with_contraction<T>(s, n, e);
        }
    }
    return last_both ? with_contraction<T>(s, n, last_both) : 0;
}

// UP+ LO* contraction? from s (only reached when UP* LO+ failed there, so the UP run is all Lu/Lt and LO* is empty).
template <class T, class R>
PRETOK_INLINE size_t o200k_up(const uint8_t* s, size_t n, size_t start) {
    size_t k = start;
    while (k < n) {
        OChar c = ochar_at<T, R>(s, n, k);
        if (!in_up(c.k)) break;
        k += c.len;
    }
    if (k == start) return 0;
    while (k < n) {
        OChar c = ochar_at<T, R>(s, n, k);
        if (!in_lo(c.k)) break;
        k += c.len;
    }
    return with_contraction<T>(s, n, k);
}

// Alternatives 1 and 2 for a word of ASCII letters, [^\r\n\p{L}\p{N}]?[A-Z]*[a-z]+ or [^\r\n\p{L}\p{N}]?[A-Z]+,
// from the bytes alone (with the contraction after it). s[pos] is ASCII. Returns the end; 0 when neither
// alternative can match at pos; kO200kUndecided when a non-ASCII character (which may be a letter or a mark) is
// next to the word or the prefix, and the general path decides.
inline constexpr size_t kO200kUndecided = ~size_t{0};
template <class T>
PRETOK_INLINE size_t o200k_ascii_word(const uint8_t* s, size_t n, size_t pos) {
    auto upper = [](uint8_t b) { return static_cast<uint8_t>(b - 'A') < 26; };
    auto lower = [](uint8_t b) { return static_cast<uint8_t>(b - 'a') < 26; };
    const uint8_t b0 = s[pos];
    size_t start = pos;
    if (!upper(b0) && !lower(b0)) {
        if (kAsciiO.k[b0] == K_NUMBER || b0 == '\r' || b0 == '\n' || pos + 1 >= n) return 0;  // not the prefix
        start = pos + 1;
        if (s[start] >= 0x80) return kO200kUndecided;
        if (!upper(s[start]) && !lower(s[start])) return 0;
    }
    size_t u = start;
    while (u < n && upper(s[u])) ++u;
    size_t e = u;
    if (u < n && lower(s[u])) {
        e = ascii_lower_end(s, n, u + 1);
        while (e < n && lower(s[e])) ++e;
    }
    if (e < n && s[e] >= 0x80) return kO200kUndecided;
    return with_contraction<T>(s, n, e);
}

// Alternatives 3-7 (numbers, punctuation, whitespace) at pos, whose character is c0: alternatives 1 and 2 failed.
template <class T, class R>
PRETOK_INLINE size_t o200k_rest(const uint8_t* s, size_t n, size_t pos, OChar c0) {
    const size_t p1 = pos + c0.len;
    size_t e;
    // \p{N}{1,3}
    if (c0.k == K_NUMBER) {
        e = p1;
        for (int i = 1; i < 3 && e < n; ++i) {
            OChar c = ochar_at<T, R>(s, n, e);
            if (c.k != K_NUMBER) break;
            e += c.len;
        }
        return e;
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n/]*'
    size_t other = n;
    if (c0.k == K_OTHER || c0.k == K_MARK) {
        other = pos;
    } else if (c0.cp == ' ' && p1 < n) {
        uint8_t k1 = ochar_at<T, R>(s, n, p1).k;
        if (k1 == K_OTHER || k1 == K_MARK) other = p1;
    }
    if (other != n) {
        e = ascii_others_end(s, n, other);
        while (e < n) {
            OChar c = ochar_at<T, R>(s, n, e);
            if (c.k != K_OTHER && c.k != K_MARK) break;
            e += c.len;
        }
        while (e < n && (s[e] == '\r' || s[e] == '\n' || s[e] == '/')) ++e;
        return e;
    }
    // Only whitespace remains: \s*[\r\n]+ | \s+(?!\S) | \s+, as in cl100k.
    SpaceRun r = space_run<T>(s, n, pos);
    if (r.newline_end) return r.newline_end;
    return space_tail(n, r);
}

template <class T, class R>
PRETOK_INLINE size_t next_o200k(const uint8_t* s, size_t n, size_t pos) {
    const uint8_t b0 = s[pos];
    if (b0 < 0x80) {  // the ASCII fast path
        const size_t w = o200k_ascii_word<T>(s, n, pos);
        if (w == 0) return o200k_rest<T, R>(s, n, pos, OChar{b0, 1, kAsciiO.k[b0]});
        if (w != kO200kUndecided) return w;
    }
    OChar c0 = ochar_at<T, R>(s, n, pos);
    size_t p1 = pos + c0.len;
    bool prefix = c0.cp != '\r' && c0.cp != '\n' && (c0.k == K_OTHER || c0.k == K_MARK || c0.k == K_SPACE);
    bool letter = in_up(c0.k) || c0.k == K_LOWER;
    size_t e;
    // Alternatives 1 and 2, each first with the optional prefix taken (greedy ?), then without it.
    if (prefix && p1 < n && (e = o200k_up_lo<T, R>(s, n, p1))) return e;
    if (letter && (e = o200k_up_lo<T, R>(s, n, pos))) return e;
    if (prefix && p1 < n && (e = o200k_up<T, R>(s, n, p1))) return e;
    if (letter && (e = o200k_up<T, R>(s, n, pos))) return e;
    return o200k_rest<T, R>(s, n, pos, c0);
}

}  // namespace pretok_detail
