// Byte-level BPE encoding core (no Python): token and pair tables, piece cache, merges, text -> ids.
//
// Semantics (identical to tiktoken's on the same ranks; the rank of a token is its id):
//   1. split the UTF-8 text with the hand-written pre-tokenizer (pretok.h), or take pieces pre-split elsewhere;
//   2. a piece that is itself a token -> that token (one hash lookup; ~94% of pieces of real code end here);
//   3. otherwise look the piece up in a per-thread 4-way cache (pieces up to 22 bytes, <= 8 tokens), or in a
//      direct-mapped one for pieces of 23-96 bytes (<= 48 tokens; CJK runs), full key compared (piece_cache.h);
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
// length (16 bytes per slot, load factor <= 2/3; a parallel array holds the last 8 bytes of tokens of 9-16 bytes,
// so that checking one costs no cache miss that waits on another), a pair slot holds key and value together, and
// the first round of merges uses a dense 256x256 table. Everything here is const after construction: safe from
// many threads.
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

#include "hugemem.h"
#include "piece_cache.h"
#include "piece_hash.h"
#include "pretok.h"

namespace bpe {

inline constexpr uint32_t kNone = UINT32_MAX;
// Open addressing at load factor <= 2/3: the tables are the encoder's cache misses, so they are kept small
// (a 32k vocabulary's token table is 1 MiB, the size of one core's L2 here).
inline size_t table_capacity(size_t items) {
    size_t cap = 16;
    while (cap < items + items / 2 + 1) cap <<= 1;
    return cap;
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
        slots_.assign(cap, Slot{0, 0, 0});
        tails_.assign(cap, 0);
        slot_mask_ = cap - 1;
        for (uint32_t id = 0; id < num_ordinary_; ++id) {
            if (len(id) == 0) continue;  // unassigned id
            if (len(id) == 1) byte_id_[ptr(id)[0]] = id;
            max_len_ = std::max<size_t>(max_len_, len(id));
            uint64_t h = hash_bytes(ptr(id), len(id));
            size_t i = h & slot_mask_;
            while (slots_[i].id1) i = (i + 1) & slot_mask_;
            slots_[i] = Slot{load_head(ptr(id), len(id)), slot_meta(h, len(id)), id + 1};
            if (len(id) > 8 && len(id) <= 16) tails_[i] = load_u64(ptr(id) + len(id) - 8);
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

    int64_t find(const uint8_t* p, size_t n) const {
        return n > max_len_ ? -1 : find_hashed(p, n, hash_bytes(p, n), load_head(p, n));
    }

    // The id of the token p[0..n), or -1; h = hash_bytes(p, n), head = load_head(p, n).
    int64_t find_hashed(const uint8_t* p, size_t n, uint64_t h, uint64_t head) const {
        const uint32_t meta = slot_meta(h, n);
        for (size_t i = h & slot_mask_;; i = (i + 1) & slot_mask_) {
            const Slot& q = slots_[i];
            if (!q.id1) return -1;
            if (q.head != head || q.meta != meta) continue;
            const uint32_t id = q.id1 - 1;
            if (n <= 8) return id;  // the head is the whole token
            // The length is in meta below 0xFFFF. Up to 16 bytes, the last 8 bytes are the slot's tail word, at the
            // slot's index in tails_: its load does not wait for the slot's (unlike offsets_[id], then data_).
            if (n <= 16 ? tails_[i] == load_u64(p + n - 8)
                        : len(id) == n && std::memcmp(ptr(id) + 8, p + 8, n - 8) == 0)
                return id;
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
        if (n == 1) return encode_piece_keyed(p, n, 0, 0, out, thread_cache());
        return encode_piece_keyed(p, n, hash_bytes(p, n), load_head(p, n), out, thread_cache());
    }

    // encode_piece with the piece's hash_bytes and load_head already known (both unused for one byte), and this
    // thread's cache: looked up once per text, as a thread_local in a shared library costs a call per access.
    // The common cases (one byte, a piece that is a token) are inlined into the piece loop; the rest is a call.
    template <class T>
    PRETOK_INLINE size_t encode_piece_keyed(const uint8_t* p, size_t n, uint64_t h, uint64_t head, T* out,
                                            Cache& cache) const {
        if (n == 1) {
            out[0] = static_cast<T>(byte_id_[p[0]]);
            return 1;
        }
        if (piece_lookup_ && n <= max_len_) {
            int64_t id = find_hashed(p, n, h, head);
            if (id >= 0) {
                out[0] = static_cast<T>(id);
                return 1;
            }
        }
        return encode_merged(p, n, h, head, out, cache);
    }

    // A piece of n >= 2 bytes that is not itself a token (or is not looked up): the caches, else a merge.
    template <class T>
    PRETOK_NOINLINE size_t encode_merged(const uint8_t* p, size_t n, uint64_t h, uint64_t head, T* out,
                                         Cache& cache) const {
        if (n > kLongKey) return merge_heap(p, n, out);
        if (n > kCacheKey) return encode_long(p, n, h, out, cache);
        // A set of kCacheWays adjacent lines, newest first: a direct-mapped cache let pieces that share a slot evict
        // each other on every use, and each eviction costs a full merge (~8% of multi-token pieces of real code).
        CacheEntry* set = &cache.entries[(h ^ (h >> 17)) & (kCacheSlots - kCacheWays)];
        for (size_t w = 0; w < kCacheWays; ++w) {
            const CacheEntry& c = set[w];
            if (c.owner == owner_ && c.key_len == n && key_equals(c.key, p, n, head)) {
                for (size_t i = 0; i < c.ntok; ++i) out[i] = static_cast<T>(c.tok[i]);
                return c.ntok;
            }
        }
        uint32_t tmp[kCacheKey];
        size_t m = merge_small(p, n, tmp);
        if (m <= kCacheTok) {
            std::memmove(set + 1, set, (kCacheWays - 1) * sizeof(CacheEntry));  // the oldest way drops out
            CacheEntry& e = set[0];
            e.owner = owner_;
            e.key_len = static_cast<uint8_t>(n);
            e.ntok = static_cast<uint8_t>(m);
            std::memset(e.key, 0, kCacheKey);  // zero padded, as key_equals reads it
            std::memcpy(e.key, p, n);
            std::memcpy(e.tok, tmp, m * sizeof(uint32_t));
        }
        for (size_t i = 0; i < m; ++i) out[i] = static_cast<T>(tmp[i]);
        return m;
    }

    // Pieces of kCacheKey+1..kLongKey bytes: the long cache, else merge and remember (if few enough tokens).
    template <class T>
    size_t encode_long(const uint8_t* p, size_t n, uint64_t h, T* out, Cache& cache) const {
        LongEntry& e = cache.long_entries[(h ^ (h >> 23)) & (kLongSlots - 1)];
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
        Cache& cache = thread_cache();
        return for_each_piece(s, n, [&](const uint8_t* p, size_t len, uint64_t h, uint64_t head, size_t m)
                                        PRETOK_LAMBDA_INLINE -> size_t {
            return encode_piece_keyed(p, len, h, head, out + m, cache);
        });
    }

    // The number of tokens encode_text would write, through the same piece path (so equal by construction),
    // with the ids of each piece in a reused scratch buffer instead of the caller's output.
    size_t count_text(const uint8_t* s, size_t n) const {
        uint32_t tmp[kLongKey];
        Cache& cache = thread_cache();
        return for_each_piece(s, n, [&](const uint8_t* p, size_t len, uint64_t h, uint64_t head, size_t)
                                        PRETOK_LAMBDA_INLINE -> size_t {
            if (len <= kLongKey) return encode_piece_keyed(p, len, h, head, tmp, cache);
            return count_long(p, len, h, head, cache);
        });
    }

  private:
    PRETOK_NOINLINE size_t count_long(const uint8_t* p, size_t n, uint64_t h, uint64_t head, Cache& cache) const {
        std::vector<uint32_t>& buf = thread_scratch().count;
        if (buf.size() < n) buf.resize(n);
        return encode_piece_keyed(p, n, h, head, buf.data(), cache);
    }

    // Every piece of s[0..n) in order: emit(piece, length, hash, head, tokens so far) returns its token count. A
    // piece that the text goes on past by 8 bytes gets its head from one load and a mask (load_head_overread).
    template <class Emit>
    size_t for_each_piece(const uint8_t* s, size_t n, Emit&& emit) const {
        return pretok_with(pattern_, [&](auto next) {
            size_t pos = 0, m = 0;
            while (pos < n) {
                size_t e = next(s, n, pos);
                if (e <= pos || e > n) e = pos + 1;  // defensive: never loop forever or read past the end
                const size_t len = e - pos;
                uint64_t h = 0, head = 0;
                if (len > 1) {
                    head = pos + 8 <= n ? load_head_overread(s + pos, len) : load_head(s + pos, len);
                    h = len <= 8 ? hash_short(head, len) : hash_bytes(s + pos, len);
                }
                m += emit(s + pos, len, h, head, m);
                pos = e;
            }
            return m;
        });
    }

    static uint32_t slot_meta(uint64_t h, size_t n) {  // high hash bits and length; never 0 (n >= 1)
        return (uint32_t(h >> 48) << 16) | static_cast<uint32_t>(std::min<size_t>(n, 0xFFFF));
    }
    struct Slot {
        uint64_t head;  // first 8 bytes of the token, zero padded
        uint32_t meta;  // slot_meta: high hash bits, and the length capped at 0xFFFF (long tokens compare it exactly)
        uint32_t id1;   // id + 1; 0 = empty (head and meta 0 too, which no piece's key equals)
    };
    static_assert(sizeof(Slot) == 16, "four slots to a cache line");
    uint64_t owner_;
    uint32_t num_ordinary_;
    int pattern_;
    std::string data_;
    std::vector<uint32_t> offsets_;
    HugeArray<Slot> slots_;
    HugeArray<uint64_t> tails_;  // per slot: the last 8 bytes of a token of 9-16 bytes (else 0)
    size_t slot_mask_ = 0;
    size_t max_len_ = 1;
    struct PairSlot {
        uint64_t key;  // left << 32 | right; ~0 = empty
        uint32_t val;  // rank of the pair (its result id is rank_id_[val])
    };
    HugeArray<PairSlot> pairs_;
    std::vector<uint32_t> byte_pairs_;  // dense 256x256 table (by byte values) for the first round (256 KiB)
    std::vector<uint32_t> rank_id_;     // rank of a merge -> the id it creates
    uint32_t byte_id_[256] = {};        // byte value -> its token id
    bool piece_lookup_ = true;
    size_t pair_mask_ = 0;
};

}  // namespace bpe
