// 16-byte scans for the pre-tokenizer's two commonest runs, ASCII letters and spaces (indentation): SSE2 finds
// where such a run ends with one compare and one bit count per 16 bytes, and, unlike a byte loop, costs no
// mispredicted branch where a short run ends (one per piece). Each returns the end of the run, or the point from
// which the caller's scalar loop goes on (a run that reaches the last 16 bytes of the text, or no SSE2).
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define PRETOK_SSE2 1
#endif
#if defined(_MSC_VER)
#include <intrin.h>
#endif

#if defined(_MSC_VER)
#define PRETOK_INLINE __forceinline
#define PRETOK_NOINLINE __declspec(noinline)
#define PRETOK_LAMBDA_INLINE
#else
#define PRETOK_INLINE inline __attribute__((always_inline))
#define PRETOK_NOINLINE __attribute__((noinline))
#define PRETOK_LAMBDA_INLINE __attribute__((always_inline))  // between a lambda's parameters and its body
#endif

namespace pretok_detail {

PRETOK_INLINE uint32_t ctz16(uint32_t m) {
#if defined(_MSC_VER)
    unsigned long i;
    _BitScanForward(&i, m);
    return static_cast<uint32_t>(i);
#else
    return static_cast<uint32_t>(__builtin_ctz(m));
#endif
}

// End of the run of ASCII letters [A-Za-z] starting at pos (or a point inside it where scalar code takes over).
PRETOK_INLINE size_t ascii_letters_end(const uint8_t* s, size_t n, size_t pos) {
#if defined(PRETOK_SSE2)
    // (b | 0x20) - 'a' < 26 as a signed compare: bias by 128 - 'a' so [a-z] lands on [-128, -103].
    const __m128i fold = _mm_set1_epi8(0x20), bias = _mm_set1_epi8(static_cast<char>(128 - 'a'));
    const __m128i limit = _mm_set1_epi8(static_cast<char>(-128 + 26));
    while (pos + 16 <= n) {
        __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + pos));
        __m128i x = _mm_add_epi8(_mm_or_si128(v, fold), bias);
        uint32_t m = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmplt_epi8(x, limit)));
        if (m != 0xFFFF) return pos + ctz16(~m & 0xFFFF);
        pos += 16;
    }
#endif
    return pos;
}

#if defined(PRETOK_SSE2)
// 0xFF in each byte lane where lo <= v < lo + count (v signed bytes; lo + count <= 128).
PRETOK_INLINE __m128i in_range(__m128i v, int lo, int count) {
    return _mm_cmplt_epi8(_mm_add_epi8(v, _mm_set1_epi8(static_cast<char>(-128 - lo))),
                          _mm_set1_epi8(static_cast<char>(-128 + count)));
}
#endif

// End of the run of ASCII "other" bytes (not a letter, digit or \s: punctuation, symbols, controls) from pos, or
// a point inside it where scalar code takes over. \s in ASCII is 0x09-0x0D and the space (the regex package's
// \s, unlike str.isspace, leaves out 0x1C-0x1F).
PRETOK_INLINE size_t ascii_others_end(const uint8_t* s, size_t n, size_t pos) {
#if defined(PRETOK_SSE2)
    const __m128i fold = _mm_set1_epi8(0x20);
    while (pos + 16 <= n) {
        __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + pos));
        __m128i not_other = _mm_or_si128(
            _mm_or_si128(in_range(_mm_or_si128(v, fold), 'a', 26), in_range(v, '0', 10)),
            _mm_or_si128(_mm_or_si128(in_range(v, 0x09, 5), _mm_cmpeq_epi8(v, _mm_set1_epi8(' '))),
                         _mm_cmplt_epi8(v, _mm_setzero_si128())));  // non-ASCII: the scalar loop decides
        uint32_t m = static_cast<uint32_t>(_mm_movemask_epi8(not_other));
        if (m) return pos + ctz16(m);
        pos += 16;
    }
#endif
    return pos;
}

// End of the run of ASCII lowercase letters [a-z] from pos (o200k's case-aware letter runs), or a point inside it.
PRETOK_INLINE size_t ascii_lower_end(const uint8_t* s, size_t n, size_t pos) {
#if defined(PRETOK_SSE2)
    while (pos + 16 <= n) {
        __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + pos));
        uint32_t m = static_cast<uint32_t>(_mm_movemask_epi8(in_range(v, 'a', 26)));
        if (m != 0xFFFF) return pos + ctz16(~m & 0xFFFF);
        pos += 16;
    }
#endif
    return pos;
}

// End of the run of bytes equal to `byte` starting at pos (or a point inside it where scalar code takes over).
PRETOK_INLINE size_t byte_run_end(const uint8_t* s, size_t n, size_t pos, uint8_t byte) {
#if defined(PRETOK_SSE2)
    const __m128i b = _mm_set1_epi8(static_cast<char>(byte));
    while (pos + 16 <= n) {
        __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + pos));
        uint32_t m = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, b)));
        if (m != 0xFFFF) return pos + ctz16(~m & 0xFFFF);
        pos += 16;
    }
#endif
    return pos;
}

}  // namespace pretok_detail
