// Shared pieces of the _minhash module (minhash.cc, minhash_scan.cc, minhash_df.cc): buffer checks, the token
// accessor, the rolling n-gram window, the n-gram lookup table and the permutation fold.
//
// Definitions (the pure-numpy reference in tests/curate/curate_reference.py implements exactly these):
//   n-gram hash   h = fmix64(sum_{j<n} (t[s+j] + 1) * B^(n-1-j) mod 2^64), or 1 where that is 0 (0 = empty slot).
//                 Computed rolling: one multiply-add per token.
//   degenerate    an n-gram with fewer than `min_distinct` distinct tokens (runs of one token, box-drawing
//                 rows, "0 0 0 ..."): never hashed into a signature or an eval set, counted instead.
//   permutation k v_k(h) = fmix32((lo32(h) ^ hi32(h)) ^ s_k) (murmur3's 32-bit finalizer, a bijection, seeded
//                 by s_k): the minimum over the document's non-degenerate n-grams is signature entry k;
//                 0xFFFFFFFF when it has none. 32-bit lanes only, so it vectorizes 8 (AVX2) or 16 wide.
//   exact hash    fmix64 of a polynomial over all tokens, seeded by the length (collisions are confirmed by
//                 comparing the token arrays in Python: the exact path has no false positives).
//   band key      fmix64 over (band index, its `rows` signature entries).
//
// Every length that comes from the caller (offsets, buffer sizes, table capacity) is checked before use.

#ifndef SHARDSTORE_MINHASH_CORE_H
#define SHARDSTORE_MINHASH_CORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "pybuf.h"

#include <cstdint>
#include <cstring>
#include <vector>

namespace mh {

constexpr uint64_t kBase = 0x9E3779B97F4A7C15ULL;  // odd: the polynomial base of n-gram hashes
constexpr int kMaxN = 255;

inline uint64_t fmix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDULL;
    k ^= k >> 33;
    k *= 0xC4CEB9FE1A85EC53ULL;
    k ^= k >> 33;
    return k;
}

inline uint64_t pow_base(int n) {  // B^n mod 2^64: what leaves the rolling hash with the oldest token
    uint64_t p = 1;
    for (int i = 0; i < n; ++i) p *= kBase;
    return p;
}

using shardbuf::Buffer;

bool sized(const Buffer& b, Py_ssize_t item, const char* what, Py_ssize_t* count);

inline bool pow2(Py_ssize_t x) { return x > 0 && (x & (x - 1)) == 0; }

// Tokens of width 2 or 4 bytes (the store dtypes), read through one accessor.
struct Tokens {
    const uint8_t* p = nullptr;
    Py_ssize_t n = 0;
    int width = 0;
    inline uint32_t operator[](Py_ssize_t i) const {
        if (width == 2) {
            uint16_t v;
            std::memcpy(&v, p + 2 * i, 2);
            return v;
        }
        uint32_t v;
        std::memcpy(&v, p + 4 * i, 4);
        return v;
    }
};

bool tokens_of(const Buffer& b, int width, Tokens* t);
// offsets: uint64[D + 1], non-decreasing, last <= number of tokens.
bool offsets_of(const Buffer& b, const Tokens& t, const uint64_t** out, Py_ssize_t* docs);
bool check_n(int n, int min_distinct);

// The distinct-token count of a window is kept with counts per token bucket: the id itself below 2^16, a hash of
// it above (two ids of a window may then share a bucket: the count can only be lower, never higher).
inline uint32_t bucket(uint32_t tok) {
    if (tok < 65536u) return tok;
    return static_cast<uint32_t>(fmix64(tok) & 0xFFFFu);
}

// Whether window [i - n + 1, i] has fewer than `min_distinct` distinct token buckets: the same rule as Window's
// count, recomputed for one window (small n, quadratic): for passes that need it only on rare hits.
inline bool degenerate_at(const Tokens& t, Py_ssize_t i, int n, int min_distinct) {
    if (min_distinct <= 1) return false;
    int distinct = 0;
    for (Py_ssize_t x = i - n + 1; x <= i && distinct < min_distinct; ++x) {
        bool seen = false;
        for (Py_ssize_t y = i - n + 1; y < x && !seen; ++y) seen = bucket(t[y]) == bucket(t[x]);
        distinct += seen ? 0 : 1;
    }
    return distinct < min_distinct;
}

// Calls emit(d, i, f) for every n-gram (window ending at token i of document d, hash f) of the documents.
template <class F>
inline void each_ngram(const Tokens& t, const uint64_t* o, Py_ssize_t docs, int n, F&& emit) {
    const uint64_t pow = pow_base(n);
    for (Py_ssize_t d = 0; d < docs; ++d) {
        const Py_ssize_t lo = static_cast<Py_ssize_t>(o[d]), hi = static_cast<Py_ssize_t>(o[d + 1]);
        uint64_t h = 0;
        for (Py_ssize_t i = lo; i < hi; ++i) {
            h = h * kBase + (static_cast<uint64_t>(t[i]) + 1);
            if (i - lo >= n) h -= (static_cast<uint64_t>(t[i - n]) + 1) * pow;
            if (i - lo + 1 < n) continue;
            uint64_t f = fmix64(h);
            if (f == 0) f = 1;
            emit(d, i, f);
        }
    }
}

// Rolling n-gram hashes and the degenerate flag of one token range [lo, hi), one callback per n-gram.
class Window {
  public:
    explicit Window(int n) : n_(n), pow_(pow_base(n)), counts_(65536, 0) {}

    template <class F>
    void run(const Tokens& t, Py_ssize_t lo, Py_ssize_t hi, int min_distinct, F&& emit) {
        uint64_t h = 0;
        int distinct = 0;
        for (Py_ssize_t i = lo; i < hi; ++i) {
            const uint32_t in = t[i];
            h = h * kBase + (static_cast<uint64_t>(in) + 1);
            if (counts_[bucket(in)]++ == 0) ++distinct;
            if (i - lo >= n_) {
                const uint32_t out = t[i - n_];
                h -= (static_cast<uint64_t>(out) + 1) * pow_;
                if (--counts_[bucket(out)] == 0) --distinct;
            }
            if (i - lo + 1 >= n_) {
                uint64_t f = fmix64(h);
                if (f == 0) f = 1;
                emit(f, distinct < min_distinct);
            }
        }
        const Py_ssize_t first = hi - lo > n_ ? hi - n_ : lo;  // the last window's tokens: clear their counts
        for (Py_ssize_t i = first; i < hi; ++i) --counts_[bucket(t[i])];
    }

  private:
    int n_;
    uint64_t pow_;
    std::vector<uint16_t> counts_;
};

// Open-addressing set of n-gram hashes (capacity a power of two, 0 = empty) with a 1-bit-per-slot-ish filter.
struct Table {
    const uint64_t* keys = nullptr;
    const uint32_t* vals = nullptr;
    uint64_t mask = 0;
    const uint64_t* filter = nullptr;
    uint64_t filter_mask = 0;  // in bits
    inline bool maybe(uint64_t h) const {
        const uint64_t bit = (h >> 7) & filter_mask;
        return (filter[bit >> 6] >> (bit & 63)) & 1;
    }
    inline int64_t find(uint64_t h) const {
        uint64_t s = h & mask;
        for (;;) {
            const uint64_t k = keys[s];
            if (k == h) return vals[s];
            if (k == 0) return -1;
            s = (s + 1) & mask;
        }
    }
    inline bool has(uint64_t h) const { return maybe(h) && find(h) >= 0; }
};

// A table over caller buffers (keys uint64[cap], vals uint32[cap], filter uint64[f]); false with a ValueError set
// when a size is not a power of two.
bool table_of(const Buffer& kb, const Buffer& vb, const Buffer& fb, const char* who, Table* tab);

// sig[i] = min(sig[i], v_i(h)) over the m hashes: the permutation loop, vectorized (minhash.cc).
void fold(uint32_t* __restrict sig, const uint32_t* __restrict seeds, Py_ssize_t k, const uint64_t* __restrict hs,
          Py_ssize_t m);

// The module's functions, one file per responsibility.
PyObject* signatures(PyObject*, PyObject* args);      // minhash.cc
PyObject* sign_masked(PyObject*, PyObject* args);     // minhash.cc
PyObject* band_keys(PyObject*, PyObject* args);       // minhash.cc
PyObject* ngram_hashes(PyObject*, PyObject* args);    // minhash.cc
PyObject* ngram_set(PyObject*, PyObject* args);       // minhash.cc
PyObject* intersect_count(PyObject*, PyObject* args); // minhash.cc
PyObject* fill_table(PyObject*, PyObject* args);      // minhash_scan.cc
PyObject* scan(PyObject*, PyObject* args);            // minhash_scan.cc
PyObject* df_sketch(PyObject*, PyObject* args);       // minhash_df.cc
PyObject* df_count(PyObject*, PyObject* args);        // minhash_df.cc

}  // namespace mh

#endif  // SHARDSTORE_MINHASH_CORE_H
