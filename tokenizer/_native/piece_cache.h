// The encoder's per-thread caches of merged pieces (no Python): a piece that is not itself a token is merged once
// per thread and its ids remembered, keyed by the whole piece (an exact compare, never a hash alone).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "hugemem.h"

namespace bpe {

inline constexpr size_t kSmallPiece = 64;     // pieces up to this many bytes use the O(n^2) rescan
inline constexpr size_t kCacheKey = 22;       // pieces up to this many bytes are cached...
inline constexpr size_t kCacheTok = 8;        // ...if they encode to at most this many tokens
inline constexpr size_t kCacheSlots = 32768;  // per thread, in sets of kCacheWays 64-byte lines (2 MiB)
inline constexpr size_t kCacheWays = 4;
inline constexpr size_t kLongKey = 96;        // longer pieces (a CJK run is one piece) up to this many bytes...
inline constexpr size_t kLongTok = 48;        // ...encoding to at most this many tokens go to a second cache
inline constexpr size_t kLongSlots = 4096;    // per thread, direct-mapped, 320 bytes each (1.25 MiB)

// A cache entry is one cache line: a hit costs one miss at most.
struct alignas(64) CacheEntry {
    uint64_t owner;  // Encoder identity (0 = empty); stale entries of a destroyed encoder never match
    uint8_t key_len;
    uint8_t ntok;
    uint8_t key[kCacheKey];
    uint32_t tok[kCacheTok];
};
static_assert(sizeof(CacheEntry) == 64, "cache entry must be one cache line");

// Second cache for pieces of kCacheKey+1..kLongKey bytes (22% of Chinese bytes are pieces of 23-64 bytes): a
// full-hash tag, then the whole key compared, so a hit is exact.
struct alignas(64) LongEntry {
    uint64_t owner;
    uint64_t hash;
    uint8_t key_len;
    uint8_t ntok;
    uint8_t key[kLongKey];
    uint32_t tok[kLongTok];
};
static_assert(sizeof(LongEntry) == 320, "long cache entry is five cache lines");

struct Cache {
    CacheEntry entries[kCacheSlots];
    LongEntry long_entries[kLongSlots];
};

inline std::atomic<uint64_t> g_next_owner{1};

// Is the cached key (zero padded to kCacheKey bytes) the piece p[0..n), 2 <= n <= kCacheKey, whose load_head is
// `head`? Whole 8-byte words instead of a call to memcmp: bytes 0-7 (the head), n-8..n-1, and 8-15 when n > 16.
inline bool key_equals(const uint8_t* key, const uint8_t* p, size_t n, uint64_t head) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    auto word = [](const uint8_t* q) {
        uint64_t v;
        std::memcpy(&v, q, 8);
        return v;
    };
    if (word(key) != head) return false;
    if (n <= 8) return true;
    if (word(key + n - 8) != word(p + n - 8)) return false;
    return n <= 16 || word(key + 8) == word(p + 8);
#else
    (void)head;
    return std::memcmp(key, p, n) == 0;
#endif
}

struct CacheFree {
    void operator()(Cache* c) const { huge_free(c, sizeof(Cache)); }
};

inline Cache& thread_cache() {  // 3.25 MiB, on huge pages where possible (hugemem.h); mmap memory is page-aligned
    static_assert(sizeof(Cache) >= kHugePage / 2, "the cache must take huge_alloc's mmap path (alignment)");
    thread_local std::unique_ptr<Cache, CacheFree> cache;
    if (!cache) {
        cache.reset(static_cast<Cache*>(huge_alloc(sizeof(Cache))));
        for (CacheEntry& e : cache->entries) e.owner = 0;
        for (LongEntry& e : cache->long_entries) e.owner = 0;
    }
    return *cache;
}

struct Scratch {
    std::vector<uint32_t> tok, nxt, prv;
    std::vector<uint64_t> heap;
    std::vector<uint32_t> out;
    std::vector<uint32_t> count;  // ids of a long piece that is only counted
};

inline Scratch& thread_scratch() {
    thread_local Scratch scratch;
    return scratch;
}

}  // namespace bpe
