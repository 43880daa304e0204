// Hashing of pieces for the encoder's token table and caches (no Python): a piece's first 8 bytes as one u64 (its
// "head"), and a multiply-xorshift hash over 8-byte words. Both have a fast form for the common short piece when
// the text goes on past it (reading up to 8 bytes is then safe): one load and a mask, no branch on the length.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace bpe {

inline uint64_t load_u64(const uint8_t* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}

// The first min(n, 8) bytes of p packed into a u64, zero padded; reads only p[0..n). Equal bytes give equal
// heads and, for a given length, different bytes give different heads (all the token table relies on).
inline uint64_t load_head(const uint8_t* p, size_t n) {
    uint64_t v;
    if (n >= 8) {
        std::memcpy(&v, p, 8);
        return v;
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n >= 4) {  // two overlapping 4-byte loads; the overlap holds equal bytes, so OR is exact (little endian)
        uint32_t lo, hi;
        std::memcpy(&lo, p, 4);
        std::memcpy(&hi, p + n - 4, 4);
        return uint64_t(lo) | (uint64_t(hi) << (8 * (n - 4)));
    }
#endif
    v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t(p[i]) << (8 * i);
    return v;
}

// load_head(p, n) when 8 bytes may be read at p: one load and a mask instead of branches on n (little endian,
// where load_head's packing is the memory order; elsewhere load_head itself).
inline uint64_t load_head_overread(const uint8_t* p, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    std::memcpy(&v, p, 8);
    const uint64_t keep = n >= 8 ? ~0ULL : (uint64_t{1} << (8 * n)) - 1;
    return v & keep;
#else
    return load_head(p, n);
#endif
}

inline constexpr uint64_t kHashMul = 0x9E3779B97F4A7C15ULL;
inline uint64_t hash_seed(size_t n) { return kHashMul ^ (n * 0xFF51AFD7ED558CCDULL); }
inline uint64_t hash_mix(uint64_t h, uint64_t w) {
    h = (h ^ w) * kHashMul;
    return h ^ (h >> 29);
}
inline uint64_t hash_finish(uint64_t h) {
    h *= 0xC4CEB9FE1A85EC53ULL;
    return h ^ (h >> 32);
}

inline uint64_t hash_bytes(const uint8_t* p, size_t n) {
    uint64_t h = hash_seed(n);
    while (n >= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        h = hash_mix(h, w);
        p += 8;
        n -= 8;
    }
    if (n) h = hash_mix(h, load_head(p, n));
    return hash_finish(h);
}

// hash_bytes of a piece of 1..8 bytes from its head (the same value, without touching the bytes again).
inline uint64_t hash_short(uint64_t head, size_t n) { return hash_finish(hash_mix(hash_seed(n), head)); }

inline uint64_t hash_u64(uint64_t x) {
    x *= 0x9E3779B97F4A7C15ULL;
    return x ^ (x >> 31);
}

}  // namespace bpe
