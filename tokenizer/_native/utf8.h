// Strict UTF-8 validation (RFC 3629, as Python's bytes.decode("utf-8")): no overlong forms, no encoded surrogates,
// nothing above U+10FFFF. ASCII runs are skipped 16 bytes at a time. Header-only, no Python; shared by the
// tokenizer's packed encoder and shardstore's JSON-lines scanner.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace utf8 {

// Length of the valid multi-byte sequence starting at s[0] (a byte >= 0x80), or 0 when it is invalid or cut off.
inline size_t sequence_length(const uint8_t* s, size_t n) {
    const uint8_t c = s[0];
    if (c >= 0xC2 && c <= 0xDF) return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;   // overlong
        if (c == 0xED && s[1] >= 0xA0) return 0;  // UTF-16 surrogate
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;   // overlong
        if (c == 0xF4 && s[1] >= 0x90) return 0;  // above U+10FFFF
        return 4;
    }
    return 0;
}

// Offset of the first byte >= 0x80 in s[0..n), or n.
inline size_t ascii_prefix(const uint8_t* s, size_t n) {
    size_t i = 0;
#if defined(__SSE2__)
    for (; i + 16 <= n; i += 16) {
        const int mask = _mm_movemask_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
        if (mask) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
    }
#endif
    for (; i < n; ++i)
        if (s[i] & 0x80) return i;
    return n;
}

// Offset of the first byte of the first invalid sequence in s[0..n), or n when all of it is valid UTF-8.
inline size_t first_invalid(const uint8_t* s, size_t n) {
    size_t i = 0;
    while (true) {
        i += ascii_prefix(s + i, n - i);
        if (i >= n) return n;
        const size_t k = sequence_length(s + i, n - i);
        if (!k) return i;
        i += k;
    }
}

}  // namespace utf8
