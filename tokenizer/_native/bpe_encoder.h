// Byte-level BPE encoding core (no Python): token and pair tables, piece cache, merges, text -> ids.
//
// Semantics (identical to tiktoken's on the same ranks; the rank of a token is its id):
//   1. split the UTF-8 text with the hand-written pre-tokenizer (pretok.h), or take pieces pre-split elsewhere;
//   2. a piece that is itself a token -> that token (one hash lookup; ~94% of pieces of real code end here);
//   3. otherwise look the piece up in a per-thread direct-mapped cache (pieces up to 22 bytes, <= 8 tokens), or
//      in a second one for pieces of 23-96 bytes (<= 48 tokens; CJK runs), full key compared;
//   4. otherwise merge: repeatedly merge the adjacent pair whose concatenation is the lowest-ranked token, leftmost
//      first on ties. Pairs are looked up by (left id, right id) in a table listing every split of every token.
// Imported vocabularies: ids are the source's. The 256 byte tokens may have any ids (byte_id_), an empty token is
// an unassigned id (a gap, which decodes to an error), and a vocabulary with an explicit merge list (Hugging Face
// BPE) ranks the pairs of that list by their position in it, merges only those pairs and may skip step 2
// (``ignore_merges: false``). Priorities are ranks; rank_id_ maps the rank of a merge to the id it creates (for
// tiktoken-style ranks, the identity).
//      Pieces up to 64 bytes use the simple rescan (fast for short pieces); longer ones use a linked list plus a
//      lazy min-heap keyed by (rank, position), O(n log n), so a 1 MB run of one letter is not quadratic.
// The tables are the main cache misses, so they are compact: a token slot holds the token's first 8 bytes and
// length (16 bytes per slot, load factor <= 2/3), a pair slot holds key and value together, and the first round
// of merges uses a dense 256x256 table. Everything here is const after construction: safe from many threads.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pretok.h"

namespace bpe {

inline constexpr uint32_t kNone = UINT32_MAX;
inline constexpr size_t kSmallPiece = 64;     // pieces up to this many bytes use the O(n^2) rescan
inline constexpr size_t kCacheKey = 22;       // pieces up to this many bytes are cached...
inline constexpr size_t kCacheTok = 8;        // ...if they encode to at most this many tokens
inline constexpr size_t kCacheSlots = 32768;  // per thread, direct-mapped, one 64-byte line each (2 MiB)
inline constexpr size_t kLongKey = 96;        // longer pieces (a CJK run is one piece) up to this many bytes...
inline constexpr size_t kLongTok = 48;        // ...encoding to at most this many tokens go to a second cache
inline constexpr size_t kLongSlots = 4096;    // per thread, direct-mapped, 320 bytes each (1.25 MiB)

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

inline uint64_t hash_bytes(const uint8_t* p, size_t n) {
    constexpr uint64_t K = 0x9E3779B97F4A7C15ULL;
    uint64_t h = K ^ (n * 0xFF51AFD7ED558CCDULL);
    while (n >= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        h = (h ^ w) * K;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n) {
        h = (h ^ load_head(p, n)) * K;
        h ^= h >> 29;
    }
    h *= 0xC4CEB9FE1A85EC53ULL;
    return h ^ (h >> 32);
}

inline uint64_t hash_u64(uint64_t x) {
    x *= 0x9E3779B97F4A7C15ULL;
    return x ^ (x >> 31);
}

// Open addressing at load factor <= 2/3: the tables are the encoder's cache misses, so they are kept small
// (a 32k vocabulary's token table is 1 MiB, the size of one core's L2 here).
inline size_t table_capacity(size_t items) {
    size_t cap = 16;
    while (cap < items + items / 2 + 1) cap <<= 1;
    return cap;
}

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

inline Cache& thread_cache() {
    thread_local std::unique_ptr<Cache> cache;
    if (!cache) {
        cache.reset(new Cache);
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

class Encoder {
  public:
    // tokens: every id's bytes (empty = unassigned); ids below num_ordinary are ordinary. merges: (left, right,
    // result) id triples in priority order, or empty for "every split of every token, ranked by the token's id".
    // The caller checks that every byte value is exactly one ordinary token and merges refer to ordinary ids.
    Encoder(std::vector<std::string> tokens, uint32_t num_ordinary, int pattern,
            const std::vector<std::array<uint32_t, 3>>& merges = {}, bool piece_lookup = true)
        : owner_(g_next_owner.fetch_add(1)), num_ordinary_(num_ordinary), pattern_(pattern),
          piece_lookup_(piece_lookup) {
        offsets_.reserve(tokens.size() + 1);
        offsets_.push_back(0);
        for (const auto& t : tokens) {
            data_ += t;
            offsets_.push_back(static_cast<uint32_t>(data_.size()));
        }
        size_t cap = table_capacity(num_ordinary_);
        slots_.assign(cap, Slot{0, 0, 0, 0});
        slot_mask_ = cap - 1;
        for (uint32_t id = 0; id < num_ordinary_; ++id) {
            if (len(id) == 0) continue;  // unassigned id
            if (len(id) == 1) byte_id_[ptr(id)[0]] = id;
            max_len_ = std::max<size_t>(max_len_, len(id));
            uint64_t h = hash_bytes(ptr(id), len(id));
            size_t i = h & slot_mask_;
            while (slots_[i].id1) i = (i + 1) & slot_mask_;
            slots_[i] = Slot{load_head(ptr(id), len(id)), id + 1, static_cast<uint16_t>(h >> 48),
                             static_cast<uint16_t>(std::min<size_t>(len(id), 0xFFFF))};
        }
        // (left, right) -> rank: every split of every multi-byte token, ranked by the token's id; or the merge list.
        std::vector<std::pair<uint64_t, uint32_t>> pairs;
        if (merges.empty()) {
            rank_id_.resize(num_ordinary_);
            for (uint32_t id = 0; id < num_ordinary_; ++id) {
                rank_id_[id] = id;
                const uint8_t* p = ptr(id);
                size_t n = len(id);
                for (size_t k = 1; k < n; ++k) {
                    int64_t a = find(p, k), b = find(p + k, n - k);
                    if (a >= 0 && b >= 0) pairs.emplace_back((uint64_t(a) << 32) | uint64_t(b), id);
                }
            }
        } else {
            rank_id_.resize(merges.size());
            for (uint32_t r = 0; r < merges.size(); ++r) {
                rank_id_[r] = merges[r][2];
                pairs.emplace_back((uint64_t(merges[r][0]) << 32) | merges[r][1], r);
            }
        }
        size_t pcap = table_capacity(pairs.size());
        pairs_.assign(pcap, PairSlot{~0ULL, kNone});
        pair_mask_ = pcap - 1;
        for (const auto& kv : pairs) {  // a pair listed twice keeps its first (lowest) rank, as in HF
            size_t i = hash_u64(kv.first) & pair_mask_;
            while (pairs_[i].key != ~0ULL && pairs_[i].key != kv.first) i = (i + 1) & pair_mask_;
            if (pairs_[i].key == ~0ULL) pairs_[i] = PairSlot{kv.first, kv.second};
        }
        // The first round of merges, indexed by the two byte *values*.
        byte_pairs_.assign(65536, kNone);
        for (uint32_t a = 0; a < 256; ++a)
            for (uint32_t b = 0; b < 256; ++b) byte_pairs_[(a << 8) | b] = pair(byte_id_[a], byte_id_[b]);
    }

    int pattern() const { return pattern_; }
    uint32_t vocab_size() const { return static_cast<uint32_t>(offsets_.size() - 1); }
    const uint8_t* ptr(uint32_t id) const { return reinterpret_cast<const uint8_t*>(data_.data()) + offsets_[id]; }
    size_t len(uint32_t id) const { return offsets_[id + 1] - offsets_[id]; }

    int64_t find(const uint8_t* p, size_t n) const { return n > max_len_ ? -1 : find_hashed(p, n, hash_bytes(p, n)); }

    int64_t find_hashed(const uint8_t* p, size_t n, uint64_t h) const {
        uint16_t tag = static_cast<uint16_t>(h >> 48);
        uint16_t len16 = static_cast<uint16_t>(std::min<size_t>(n, 0xFFFF));
        uint64_t head = load_head(p, n);
        for (size_t i = h & slot_mask_;; i = (i + 1) & slot_mask_) {
            const Slot& s = slots_[i];
            if (!s.id1) return -1;
            if (s.tag != tag || s.len != len16 || s.head != head) continue;
            // Tokens of up to 8 bytes are compared within the slot (no second cache miss); the length still has
            // to match, since zero padding makes "a" and "a\0" share a head.
            uint32_t id = s.id1 - 1;
            if (n <= 8 || (len(id) == n && std::memcmp(ptr(id) + 8, p + 8, n - 8) == 0)) return id;
        }
    }

    uint32_t pair(uint32_t a, uint32_t b) const {
        uint64_t key = (uint64_t(a) << 32) | b;
        for (size_t i = hash_u64(key) & pair_mask_;; i = (i + 1) & pair_mask_) {
            const PairSlot& slot = pairs_[i];  // key and value share a cache line
            if (slot.key == key) return slot.val;
            if (slot.key == ~0ULL) return kNone;
        }
    }

    // Encode one piece into out (capacity >= n); returns the number of tokens.
    template <class T>
    size_t encode_piece(const uint8_t* p, size_t n, T* out) const {
        return encode_piece_hashed(p, n, n == 1 ? 0 : hash_bytes(p, n), out);
    }

    template <class T>
    size_t encode_piece_hashed(const uint8_t* p, size_t n, uint64_t h, T* out) const {
        if (n == 1) {
            out[0] = static_cast<T>(byte_id_[p[0]]);
            return 1;
        }
        if (piece_lookup_ && n <= max_len_) {
            int64_t id = find_hashed(p, n, h);
            if (id >= 0) {
                out[0] = static_cast<T>(id);
                return 1;
            }
        }
        if (n > kLongKey) return merge_heap(p, n, out);
        if (n > kCacheKey) return encode_long(p, n, h, out);
        CacheEntry& e = thread_cache().entries[(h ^ (h >> 17)) & (kCacheSlots - 1)];
        if (e.owner == owner_ && e.key_len == n && std::memcmp(e.key, p, n) == 0) {
            for (size_t i = 0; i < e.ntok; ++i) out[i] = static_cast<T>(e.tok[i]);
            return e.ntok;
        }
        uint32_t tmp[kCacheKey];
        size_t m = merge_small(p, n, tmp);
        if (m <= kCacheTok) {
            e.owner = owner_;
            e.key_len = static_cast<uint8_t>(n);
            e.ntok = static_cast<uint8_t>(m);
            std::memcpy(e.key, p, n);
            std::memcpy(e.tok, tmp, m * sizeof(uint32_t));
        }
        for (size_t i = 0; i < m; ++i) out[i] = static_cast<T>(tmp[i]);
        return m;
    }

    // Pieces of kCacheKey+1..kLongKey bytes: the long cache, else merge and remember (if few enough tokens).
    template <class T>
    size_t encode_long(const uint8_t* p, size_t n, uint64_t h, T* out) const {
        LongEntry& e = thread_cache().long_entries[(h ^ (h >> 23)) & (kLongSlots - 1)];
        if (e.owner == owner_ && e.hash == h && e.key_len == n && std::memcmp(e.key, p, n) == 0) {
            for (size_t i = 0; i < e.ntok; ++i) out[i] = static_cast<T>(e.tok[i]);
            return e.ntok;
        }
        uint32_t tmp[kLongKey];
        size_t m = n <= kSmallPiece ? merge_small(p, n, tmp) : merge_heap(p, n, tmp);
        if (m <= kLongTok) {
            e.owner = owner_;
            e.hash = h;
            e.key_len = static_cast<uint8_t>(n);
            e.ntok = static_cast<uint8_t>(m);
            std::memcpy(e.key, p, n);
            std::memcpy(e.tok, tmp, m * sizeof(uint32_t));
        }
        for (size_t i = 0; i < m; ++i) out[i] = static_cast<T>(tmp[i]);
        return m;
    }

    // Simple rescan: find the lowest-ranked adjacent pair (leftmost on ties), merge, update its two neighbours.
    template <class T>
    size_t merge_small(const uint8_t* p, size_t n, T* out) const {
        uint32_t tok[kSmallPiece], rank[kSmallPiece];
        size_t m = n;
        for (size_t i = 0; i < m; ++i) tok[i] = byte_id_[p[i]];
        for (size_t i = 0; i + 1 < m; ++i) rank[i] = byte_pairs_[(uint32_t(p[i]) << 8) | p[i + 1]];
        while (m > 1) {
            size_t best = 0;
            uint32_t best_rank = kNone;
            for (size_t i = 0; i + 1 < m; ++i) {
                if (rank[i] < best_rank) {
                    best_rank = rank[i];
                    best = i;
                }
            }
            if (best_rank == kNone) break;
            tok[best] = rank_id_[best_rank];
            std::memmove(tok + best + 1, tok + best + 2, (m - best - 2) * sizeof(uint32_t));
            std::memmove(rank + best + 1, rank + best + 2, (m - best - 2) * sizeof(uint32_t));
            --m;
            if (best + 1 < m) rank[best] = pair(tok[best], tok[best + 1]);
            if (best > 0) rank[best - 1] = pair(tok[best - 1], tok[best]);
        }
        for (size_t i = 0; i < m; ++i) out[i] = static_cast<T>(tok[i]);
        return m;
    }

    // Linked list of parts + lazy min-heap of (rank << 32 | position): O(n log n) for long pieces.
    template <class T>
    size_t merge_heap(const uint8_t* p, size_t n, T* out) const {
        Scratch& s = thread_scratch();
        s.tok.resize(n);
        s.nxt.resize(n);
        s.prv.resize(n);
        s.heap.clear();
        uint32_t* tok = s.tok.data();
        uint32_t* nxt = s.nxt.data();
        uint32_t* prv = s.prv.data();
        const uint32_t end = static_cast<uint32_t>(n);
        auto push = [&s](uint32_t rank, uint32_t pos) {
            s.heap.push_back((uint64_t(rank) << 32) | pos);
            std::push_heap(s.heap.begin(), s.heap.end(), std::greater<uint64_t>());
        };
        for (uint32_t i = 0; i < end; ++i) {
            tok[i] = byte_id_[p[i]];
            nxt[i] = i + 1;
            prv[i] = i == 0 ? kNone : i - 1;
        }
        for (uint32_t i = 0; i + 1 < end; ++i) {
            uint32_t r = byte_pairs_[(uint32_t(p[i]) << 8) | p[i + 1]];
            if (r != kNone) s.heap.push_back((uint64_t(r) << 32) | i);
        }
        std::make_heap(s.heap.begin(), s.heap.end(), std::greater<uint64_t>());
        while (!s.heap.empty()) {
            std::pop_heap(s.heap.begin(), s.heap.end(), std::greater<uint64_t>());
            uint64_t top = s.heap.back();
            s.heap.pop_back();
            uint32_t rank = static_cast<uint32_t>(top >> 32), i = static_cast<uint32_t>(top);
            if (tok[i] == kNone) continue;  // part was merged into its left neighbour
            uint32_t j = nxt[i];
            if (j == end || pair(tok[i], tok[j]) != rank) continue;  // stale entry
            tok[i] = rank_id_[rank];
            tok[j] = kNone;
            uint32_t k = nxt[j];
            nxt[i] = k;
            if (k != end) {
                prv[k] = i;
                uint32_t r = pair(tok[i], tok[k]);
                if (r != kNone) push(r, i);
            }
            if (prv[i] != kNone) {
                uint32_t r = pair(tok[prv[i]], tok[i]);
                if (r != kNone) push(r, prv[i]);
            }
        }
        size_t m = 0;
        for (uint32_t i = 0; i != end; i = nxt[i]) out[m++] = static_cast<T>(tok[i]);
        return m;
    }

    // Split s[0..n) with the built-in pattern and encode; out has capacity >= n. Returns the number of tokens.
    template <class T>
    size_t encode_text(const uint8_t* s, size_t n, T* out) const {
        return pretok_with(pattern_, [&](auto next) {
            size_t pos = 0, m = 0;
            while (pos < n) {
                size_t e = next(s, n, pos);
                if (e <= pos || e > n) e = pos + 1;  // defensive: never loop forever or read past the end
                m += encode_piece(s + pos, e - pos, out + m);
                pos = e;
            }
            return m;
        });
    }

    // The number of tokens encode_text would write, through the same piece path (so equal by construction),
    // with the ids of each piece in a reused scratch buffer instead of the caller's output.
    size_t count_text(const uint8_t* s, size_t n) const {
        return pretok_with(pattern_, [&](auto next) {
            size_t pos = 0, m = 0;
            uint32_t tmp[kLongKey];
            while (pos < n) {
                size_t e = next(s, n, pos);
                if (e <= pos || e > n) e = pos + 1;  // as in encode_text
                const size_t len = e - pos;
                if (len == 1) {
                    ++m;
                } else if (len <= kLongKey) {
                    m += encode_piece(s + pos, len, tmp);
                } else {
                    std::vector<uint32_t>& buf = thread_scratch().count;
                    if (buf.size() < len) buf.resize(len);
                    m += encode_piece(s + pos, len, buf.data());
                }
                pos = e;
            }
            return m;
        });
    }

  private:
    struct Slot {
        uint64_t head;  // first 8 bytes of the token, zero padded
        uint32_t id1;   // id + 1; 0 = empty
        uint16_t tag;   // high hash bits, to skip most compares
        uint16_t len;   // token length, capped at 0xFFFF (the exact length is checked for long tokens)
    };
    uint64_t owner_;
    uint32_t num_ordinary_;
    int pattern_;
    std::string data_;
    std::vector<uint32_t> offsets_;
    std::vector<Slot> slots_;
    size_t slot_mask_ = 0;
    size_t max_len_ = 1;
    struct PairSlot {
        uint64_t key;  // left << 32 | right; ~0 = empty
        uint32_t val;  // rank of the pair (its result id is rank_id_[val])
    };
    std::vector<PairSlot> pairs_;
    std::vector<uint32_t> byte_pairs_;  // dense 256x256 table (by byte values) for the first round (256 KiB)
    std::vector<uint32_t> rank_id_;     // rank of a merge -> the id it creates
    uint32_t byte_id_[256] = {};        // byte value -> its token id
    bool piece_lookup_ = true;
    size_t pair_mask_ = 0;
};

}  // namespace bpe
