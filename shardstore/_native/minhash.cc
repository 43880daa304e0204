// Token n-gram hashing, MinHash signatures, LSH band keys and the n-gram scan of decontamination:
// the inner loops of shardstore.curate. The pure-numpy reference is tests/curate/curate_reference.py.
//
// Definitions (the reference implements exactly these):
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

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

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

struct Buffer {
    Py_buffer view{};
    bool held = false;
    Buffer() = default;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    ~Buffer() {
        if (held) PyBuffer_Release(&view);
    }
};

bool sized(const Buffer& b, Py_ssize_t item, const char* what, Py_ssize_t* count) {
    if (b.view.len % item != 0) {
        PyErr_Format(PyExc_ValueError, "%s: buffer of %zd bytes is not a whole number of %zd-byte items", what,
                     b.view.len, item);
        return false;
    }
    *count = b.view.len / item;
    return true;
}

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

bool tokens_of(const Buffer& b, int width, Tokens* t) {
    if (width != 2 && width != 4) {
        PyErr_Format(PyExc_ValueError, "token width must be 2 or 4 bytes, got %d", width);
        return false;
    }
    if (!sized(b, width, "tokens", &t->n)) return false;
    t->p = static_cast<const uint8_t*>(b.view.buf);
    t->width = width;
    return true;
}

// offsets: uint64[D + 1], non-decreasing, last <= number of tokens.
bool offsets_of(const Buffer& b, const Tokens& t, const uint64_t** out, Py_ssize_t* docs) {
    Py_ssize_t m = 0;
    if (!sized(b, 8, "offsets", &m)) return false;
    if (m < 1) {
        PyErr_SetString(PyExc_ValueError, "offsets must hold at least one entry");
        return false;
    }
    const uint64_t* o = static_cast<const uint64_t*>(b.view.buf);
    for (Py_ssize_t i = 0; i < m; ++i) {
        if (o[i] > static_cast<uint64_t>(t.n) || (i > 0 && o[i] < o[i - 1])) {
            PyErr_Format(PyExc_ValueError, "offsets[%zd]=%llu is decreasing or past the %zd tokens", i,
                         static_cast<unsigned long long>(o[i]), t.n);
            return false;
        }
    }
    *out = o;
    *docs = m - 1;
    return true;
}

// Rolling n-gram hashes and the degenerate flag of one token range [lo, hi), one callback per n-gram.
// The distinct-token count of the window is kept with counts per token bucket: the id itself below 2^16, a hash
// of it above (two ids of a window may then share a bucket: the count can only be lower, never higher).
inline uint32_t bucket(uint32_t tok) {
    if (tok < 65536u) return tok;
    return static_cast<uint32_t>(fmix64(tok) & 0xFFFFu);
}

class Window {
  public:
    explicit Window(int n) : n_(n), counts_(65536, 0) {
        pow_ = 1;
        for (int i = 0; i < n; ++i) pow_ *= kBase;  // B^n
    }

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

bool check_n(int n, int min_distinct) {
    if (n < 1 || n > kMaxN || min_distinct < 0 || min_distinct > n) {
        PyErr_Format(PyExc_ValueError, "n=%d must be in 1..%d and min_distinct=%d in 0..n", n, kMaxN,
                     min_distinct);
        return false;
    }
    return true;
}

// The permutation loop: kept flat so the compiler vectorizes it (two 32-bit multiplies, xor-shifts and a min).
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void fold(uint32_t* __restrict sig, const uint32_t* __restrict seeds, Py_ssize_t k, const uint64_t* __restrict hs,
          Py_ssize_t m) {
    for (Py_ssize_t j = 0; j < m; ++j) {
        const uint32_t x = static_cast<uint32_t>(hs[j]) ^ static_cast<uint32_t>(hs[j] >> 32);
        for (Py_ssize_t i = 0; i < k; ++i) {
            uint32_t v = x ^ seeds[i];
            v ^= v >> 16;
            v *= 0x85EBCA6Bu;
            v ^= v >> 13;
            v *= 0xC2B2AE35u;
            v ^= v >> 16;
            sig[i] = v < sig[i] ? v : sig[i];
        }
    }
}

uint64_t exact_hash(const Tokens& t, Py_ssize_t lo, Py_ssize_t hi) {
    uint64_t h = fmix64(static_cast<uint64_t>(hi - lo) ^ 0x5851F42D4C957F2DULL);
    for (Py_ssize_t i = lo; i < hi; ++i) h = h * kBase + (static_cast<uint64_t>(t[i]) + 1);
    return fmix64(h ^ 0xD6E8FEB86659FD93ULL);
}

// signatures(tokens, width, offsets, n, min_distinct, seeds, out_sig, out_info)
//   out_sig: uint32[D * K]; out_info: uint64[D * 4] = (exact hash, n-grams used, degenerate n-grams, tokens).
PyObject* signatures(PyObject*, PyObject* args) {
    Buffer tok, off, sb, sig, info;
    int width = 0, n = 0, min_distinct = 0;
    if (!PyArg_ParseTuple(args, "y*iy*iiy*w*w*", &tok.view, &width, &off.view, &n, &min_distinct, &sb.view,
                          &sig.view, &info.view)) {
        return nullptr;
    }
    tok.held = off.held = sb.held = sig.held = info.held = true;
    Tokens t;
    const uint64_t* o = nullptr;
    Py_ssize_t docs = 0, k = 0, nsig = 0, ninfo = 0;
    if (!check_n(n, min_distinct) || !tokens_of(tok, width, &t) || !offsets_of(off, t, &o, &docs) ||
        !sized(sb, 4, "seeds", &k) || !sized(sig, 4, "out_sig", &nsig) || !sized(info, 8, "out_info", &ninfo)) {
        return nullptr;
    }
    if (k < 1 || nsig != docs * k || ninfo != docs * 4) {
        PyErr_Format(PyExc_ValueError, "signatures: %zd permutations; out_sig holds %zd, out_info %zd for %zd docs",
                     k, nsig, ninfo, docs);
        return nullptr;
    }
    const uint32_t* seeds = static_cast<const uint32_t*>(sb.view.buf);
    uint32_t* s = static_cast<uint32_t*>(sig.view.buf);
    uint64_t* inf = static_cast<uint64_t*>(info.view.buf);
    Py_BEGIN_ALLOW_THREADS
    Window w(n);
    std::vector<uint64_t> hs;
    for (Py_ssize_t d = 0; d < docs; ++d) {
        const Py_ssize_t lo = static_cast<Py_ssize_t>(o[d]), hi = static_cast<Py_ssize_t>(o[d + 1]);
        hs.clear();
        uint64_t degenerate = 0;
        w.run(t, lo, hi, min_distinct, [&](uint64_t h, bool bad) {
            if (bad) {
                ++degenerate;
            } else {
                hs.push_back(h);
            }
        });
        uint32_t* row = s + d * k;
        for (Py_ssize_t i = 0; i < k; ++i) row[i] = 0xFFFFFFFFu;
        fold(row, seeds, k, hs.data(), static_cast<Py_ssize_t>(hs.size()));
        inf[4 * d] = exact_hash(t, lo, hi);
        inf[4 * d + 1] = hs.size();
        inf[4 * d + 2] = degenerate;
        inf[4 * d + 3] = static_cast<uint64_t>(hi - lo);
    }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

// band_keys(sig, k, bands, rows, out): out uint64[D * bands]
PyObject* band_keys(PyObject*, PyObject* args) {
    Buffer sig, out;
    Py_ssize_t k = 0;
    int bands = 0, rows = 0;
    if (!PyArg_ParseTuple(args, "y*niiw*", &sig.view, &k, &bands, &rows, &out.view)) return nullptr;
    sig.held = out.held = true;
    Py_ssize_t nsig = 0, nout = 0;
    if (!sized(sig, 4, "sig", &nsig) || !sized(out, 8, "out", &nout)) return nullptr;
    if (k < 1 || bands < 1 || rows < 1 || static_cast<Py_ssize_t>(bands) * rows > k || nsig % k != 0 ||
        nout != (nsig / k) * bands) {
        PyErr_Format(PyExc_ValueError, "band_keys: bands=%d x rows=%d must fit k=%zd; sizes %zd / %zd disagree",
                     bands, rows, k, nsig, nout);
        return nullptr;
    }
    const uint32_t* s = static_cast<const uint32_t*>(sig.view.buf);
    uint64_t* o = static_cast<uint64_t*>(out.view.buf);
    const Py_ssize_t docs = nsig / k;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t d = 0; d < docs; ++d) {
        for (int bi = 0; bi < bands; ++bi) {
            uint64_t h = fmix64(static_cast<uint64_t>(bi) + 0x632BE59BD9B4E019ULL);
            const uint32_t* r = s + d * k + static_cast<Py_ssize_t>(bi) * rows;
            for (int j = 0; j < rows; ++j) h = fmix64(h ^ r[j]) + kBase;
            o[d * bands + bi] = h;
        }
    }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

// ngram_hashes(tokens, width, n, min_distinct, out_hash, out_degenerate): every n-gram of one token sequence.
PyObject* ngram_hashes(PyObject*, PyObject* args) {
    Buffer tok, oh, od;
    int width = 0, n = 0, min_distinct = 0;
    if (!PyArg_ParseTuple(args, "y*iiiw*w*", &tok.view, &width, &n, &min_distinct, &oh.view, &od.view)) {
        return nullptr;
    }
    tok.held = oh.held = od.held = true;
    Tokens t;
    Py_ssize_t nh = 0;
    if (!check_n(n, min_distinct) || !tokens_of(tok, width, &t) || !sized(oh, 8, "out_hash", &nh)) return nullptr;
    const Py_ssize_t want = t.n >= n ? t.n - n + 1 : 0;
    if (nh != want || od.view.len != want) {
        PyErr_Format(PyExc_ValueError, "ngram_hashes: %zd tokens give %zd %d-grams; outputs hold %zd and %zd",
                     t.n, want, n, nh, od.view.len);
        return nullptr;
    }
    uint64_t* h = static_cast<uint64_t*>(oh.view.buf);
    uint8_t* dg = static_cast<uint8_t*>(od.view.buf);
    Py_ssize_t j = 0;
    Window w(n);
    w.run(t, 0, t.n, min_distinct, [&](uint64_t v, bool bad) {
        h[j] = v;
        dg[j] = bad ? 1 : 0;
        ++j;
    });
    Py_RETURN_NONE;
}

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
};

bool pow2(Py_ssize_t x) { return x > 0 && (x & (x - 1)) == 0; }

// fill_table(hashes, keys_out, vals_out, filter_out): insert unique nonzero hashes; value = position in `hashes`.
PyObject* fill_table(PyObject*, PyObject* args) {
    Buffer hb, kb, vb, fb;
    if (!PyArg_ParseTuple(args, "y*w*w*w*", &hb.view, &kb.view, &vb.view, &fb.view)) return nullptr;
    hb.held = kb.held = vb.held = fb.held = true;
    Py_ssize_t nh = 0, cap = 0, nv = 0, nf = 0;
    if (!sized(hb, 8, "hashes", &nh) || !sized(kb, 8, "keys", &cap) || !sized(vb, 4, "vals", &nv) ||
        !sized(fb, 8, "filter", &nf)) {
        return nullptr;
    }
    if (!pow2(cap) || nv != cap || !pow2(nf) || nh * 2 > cap || nh > 0xFFFFFFFFLL) {
        PyErr_Format(PyExc_ValueError, "fill_table: capacity %zd must be a power of two >= 2 x %zd hashes", cap,
                     nh);
        return nullptr;
    }
    const uint64_t* h = static_cast<const uint64_t*>(hb.view.buf);
    uint64_t* keys = static_cast<uint64_t*>(kb.view.buf);
    uint32_t* vals = static_cast<uint32_t*>(vb.view.buf);
    uint64_t* filter = static_cast<uint64_t*>(fb.view.buf);
    std::memset(keys, 0, cap * 8);
    std::memset(filter, 0, nf * 8);
    const uint64_t mask = static_cast<uint64_t>(cap) - 1, fmask = static_cast<uint64_t>(nf) * 64 - 1;
    for (Py_ssize_t i = 0; i < nh; ++i) {
        const uint64_t v = h[i];
        if (v == 0) {
            PyErr_SetString(PyExc_ValueError, "fill_table: hash 0 is reserved for empty slots");
            return nullptr;
        }
        uint64_t s = v & mask;
        while (keys[s] != 0 && keys[s] != v) s = (s + 1) & mask;
        if (keys[s] == 0) {
            keys[s] = v;
            vals[s] = static_cast<uint32_t>(i);
        }
        const uint64_t bit = (v >> 7) & fmask;
        filter[bit >> 6] |= uint64_t(1) << (bit & 63);
    }
    Py_RETURN_NONE;
}

// scan(tokens, width, offsets, n, min_distinct, keys, vals, filter) -> bytes of (uint32 doc, uint32 value) pairs:
// every (document, table entry) hit, in document then position order (repeats included).
PyObject* scan(PyObject*, PyObject* args) {
    Buffer tok, off, kb, vb, fb;
    int width = 0, n = 0, min_distinct = 0;
    if (!PyArg_ParseTuple(args, "y*iy*iiy*y*y*", &tok.view, &width, &off.view, &n, &min_distinct, &kb.view,
                          &vb.view, &fb.view)) {
        return nullptr;
    }
    tok.held = off.held = kb.held = vb.held = fb.held = true;
    Tokens t;
    const uint64_t* o = nullptr;
    Py_ssize_t docs = 0, cap = 0, nv = 0, nf = 0;
    if (!check_n(n, min_distinct) || !tokens_of(tok, width, &t) || !offsets_of(off, t, &o, &docs) ||
        !sized(kb, 8, "keys", &cap) || !sized(vb, 4, "vals", &nv) || !sized(fb, 8, "filter", &nf)) {
        return nullptr;
    }
    if (!pow2(cap) || nv != cap || !pow2(nf) || docs > 0xFFFFFFFFLL) {
        PyErr_SetString(PyExc_ValueError, "scan: table capacity and filter size must be powers of two");
        return nullptr;
    }
    Table tab;
    tab.keys = static_cast<const uint64_t*>(kb.view.buf);
    tab.vals = static_cast<const uint32_t*>(vb.view.buf);
    tab.mask = static_cast<uint64_t>(cap) - 1;
    tab.filter = static_cast<const uint64_t*>(fb.view.buf);
    tab.filter_mask = static_cast<uint64_t>(nf) * 64 - 1;
    std::vector<uint32_t> hits;
    Py_BEGIN_ALLOW_THREADS
    // Degenerate windows are looked up only when the hash hits (a rare event), so the distinct-token count is
    // needed only there: the hot loop is the rolling hash and one filter probe per token.
    uint64_t pow = 1;
    for (int i = 0; i < n; ++i) pow *= kBase;
    for (Py_ssize_t d = 0; d < docs; ++d) {
        const Py_ssize_t lo = static_cast<Py_ssize_t>(o[d]), hi = static_cast<Py_ssize_t>(o[d + 1]);
        uint64_t h = 0;
        for (Py_ssize_t i = lo; i < hi; ++i) {
            h = h * kBase + (static_cast<uint64_t>(t[i]) + 1);
            if (i - lo >= n) h -= (static_cast<uint64_t>(t[i - n]) + 1) * pow;
            if (i - lo + 1 < n) continue;
            uint64_t f = fmix64(h);
            if (f == 0) f = 1;
            if (!tab.maybe(f)) continue;
            const int64_t v = tab.find(f);
            if (v < 0) continue;
            if (min_distinct > 1) {  // distinct tokens of window [i - n + 1, i]: small n, quadratic is fine here
                int distinct = 0;
                for (Py_ssize_t x = i - n + 1; x <= i && distinct < min_distinct; ++x) {
                    bool seen = false;
                    for (Py_ssize_t y = i - n + 1; y < x && !seen; ++y) seen = bucket(t[y]) == bucket(t[x]);
                    distinct += seen ? 0 : 1;
                }
                if (distinct < min_distinct) continue;
            }
            hits.push_back(static_cast<uint32_t>(d));
            hits.push_back(static_cast<uint32_t>(v));
        }
    }
    Py_END_ALLOW_THREADS
    return PyBytes_FromStringAndSize(reinterpret_cast<const char*>(hits.data()),
                                     static_cast<Py_ssize_t>(hits.size() * 4));
}

// df_count(tokens, width, offsets, n, min_distinct, partitions) -> (rows, per): the document frequency of every
// non-degenerate n-gram of the documents. rows: bytes of uint64 (hash, documents holding it) pairs sorted by
// partition (hash mod partitions), then hash; per: bytes of uint64 rows per partition. Each document's distinct
// n-grams come from a small open-addressing set (cache resident, cleared by its touched slots), are scattered
// by partition, and each partition is sorted and run-length counted: the tokens are read once.
class DocSet {
  public:
    bool insert(uint64_t h) {  // true when h was not yet in the set (of the current document)
        uint64_t s = h & mask_;
        for (;;) {
            const uint64_t k = keys_[s];
            if (k == h) return false;
            if (k == 0) {
                keys_[s] = h;
                touched_.push_back(s);
                return true;
            }
            s = (s + 1) & mask_;
        }
    }
    void reset(Py_ssize_t windows) {  // empty, with room for `windows` keys at load <= 1/2
        for (uint64_t s : touched_) keys_[s] = 0;
        touched_.clear();
        size_t cap = 16;
        while (cap < 2 * static_cast<size_t>(windows)) cap *= 2;
        if (cap > keys_.size()) keys_.assign(cap, 0);
        mask_ = cap - 1;
    }

  private:
    std::vector<uint64_t> keys_;
    std::vector<uint64_t> touched_;
    uint64_t mask_ = 0;
};

// Sort uniform 64-bit hashes: one bucket pass on the top bits (buckets of ~16 keys), then an insertion sort per
// bucket; the same order as std::sort on the whole range.
void sort_hashes(uint64_t* a, size_t m, std::vector<uint64_t>* tmp) {
    int bits = 0;
    while (bits < 20 && (m >> (bits + 4)) > 0) ++bits;
    if (bits == 0) {
        std::sort(a, a + m);
        return;
    }
    const int shift = 64 - bits;
    std::vector<size_t> at((size_t(1) << bits) + 1, 0);
    for (size_t i = 0; i < m; ++i) ++at[(a[i] >> shift) + 1];
    for (size_t b = 0; b + 1 < at.size(); ++b) at[b + 1] += at[b];
    tmp->resize(m);
    std::vector<size_t> fill(at.begin(), at.end() - 1);
    for (size_t i = 0; i < m; ++i) (*tmp)[fill[a[i] >> shift]++] = a[i];
    uint64_t* t = tmp->data();
    for (size_t b = 0; b + 1 < at.size(); ++b) {
        if (at[b + 1] - at[b] > 64) {  // a crowded bucket (crafted hashes): no quadratic case
            std::sort(t + at[b], t + at[b + 1]);
            continue;
        }
        for (size_t i = at[b] + 1; i < at[b + 1]; ++i) {  // insertion sort: buckets are small
            const uint64_t v = t[i];
            size_t j = i;
            for (; j > at[b] && t[j - 1] > v; --j) t[j] = t[j - 1];
            t[j] = v;
        }
    }
    std::memcpy(a, t, m * 8);
}

PyObject* df_count(PyObject*, PyObject* args) {
    Buffer tok, off;
    int width = 0, n = 0, min_distinct = 0;
    Py_ssize_t partitions = 0;
    if (!PyArg_ParseTuple(args, "y*iy*iin", &tok.view, &width, &off.view, &n, &min_distinct, &partitions)) {
        return nullptr;
    }
    tok.held = off.held = true;
    Tokens t;
    const uint64_t* o = nullptr;
    Py_ssize_t docs = 0;
    if (!check_n(n, min_distinct) || !tokens_of(tok, width, &t) || !offsets_of(off, t, &o, &docs)) return nullptr;
    if (partitions < 1 || partitions > (1 << 24)) {
        PyErr_Format(PyExc_ValueError, "df_count: partitions=%zd must be in 1..2^24", partitions);
        return nullptr;
    }
    std::vector<uint64_t> rows, per(static_cast<size_t>(partitions), 0);
    Py_BEGIN_ALLOW_THREADS
    const uint64_t P = static_cast<uint64_t>(partitions);
    std::vector<uint64_t> all;  // each document's distinct n-grams, documents in order
    all.reserve(static_cast<size_t>(t.n));
    DocSet seen;
    Window w(n);
    for (Py_ssize_t d = 0; d < docs; ++d) {
        const Py_ssize_t lo = static_cast<Py_ssize_t>(o[d]), hi = static_cast<Py_ssize_t>(o[d + 1]);
        seen.reset(hi - lo);
        w.run(t, lo, hi, min_distinct, [&](uint64_t h, bool bad) {
            if (!bad && seen.insert(h)) all.push_back(h);
        });
    }
    std::vector<size_t> at(per.size() + 1, 0);
    std::vector<uint32_t> part(all.size());  // one division per n-gram (partitions <= 2^24)
    for (size_t i = 0; i < all.size(); ++i) {
        part[i] = static_cast<uint32_t>(all[i] % P);
        ++at[part[i] + 1];
    }
    for (size_t p = 0; p < per.size(); ++p) at[p + 1] += at[p];
    std::vector<uint64_t> byp(all.size());
    {
        std::vector<size_t> fill(at.begin(), at.end() - 1);
        for (size_t i = 0; i < all.size(); ++i) byp[fill[part[i]]++] = all[i];
    }
    std::vector<uint32_t>().swap(part);
    std::vector<uint64_t>().swap(all);
    rows.reserve(2 * byp.size());
    std::vector<uint64_t> tmp;
    for (size_t p = 0; p < per.size(); ++p) {
        sort_hashes(byp.data() + at[p], at[p + 1] - at[p], &tmp);
        const size_t before = rows.size();
        for (size_t i = at[p]; i < at[p + 1];) {
            size_t j = i + 1;
            while (j < at[p + 1] && byp[j] == byp[i]) ++j;
            rows.push_back(byp[i]);
            rows.push_back(j - i);
            i = j;
        }
        per[p] = (rows.size() - before) / 2;
    }
    Py_END_ALLOW_THREADS
    PyObject* r = PyBytes_FromStringAndSize(reinterpret_cast<const char*>(rows.data()),
                                            static_cast<Py_ssize_t>(rows.size() * 8));
    if (r == nullptr) return nullptr;
    PyObject* q = PyBytes_FromStringAndSize(reinterpret_cast<const char*>(per.data()),
                                            static_cast<Py_ssize_t>(per.size() * 8));
    if (q == nullptr) {
        Py_DECREF(r);
        return nullptr;
    }
    return Py_BuildValue("(NN)", r, q);
}

// resign(tokens, width, offsets, n, min_distinct, seeds, keys, vals, filter, out_sig, out_info) -> dropped:
// each document holding n-grams of the table (boilerplate) gets, in place, the signature and n-gram count
// (out_info[4d + 1]) of its other non-degenerate n-grams, unless it has no other; returns the table n-grams
// left out (positions). The same fold as `signatures`: only rows of documents with boilerplate change.
PyObject* resign(PyObject*, PyObject* args) {
    Buffer tok, off, sb, kb, vb, fb, sig, info;
    int width = 0, n = 0, min_distinct = 0;
    if (!PyArg_ParseTuple(args, "y*iy*iiy*y*y*y*w*w*", &tok.view, &width, &off.view, &n, &min_distinct, &sb.view,
                          &kb.view, &vb.view, &fb.view, &sig.view, &info.view)) {
        return nullptr;
    }
    tok.held = off.held = sb.held = kb.held = vb.held = fb.held = sig.held = info.held = true;
    Tokens t;
    const uint64_t* o = nullptr;
    Py_ssize_t docs = 0, k = 0, cap = 0, nv = 0, nf = 0, nsig = 0, ninfo = 0;
    if (!check_n(n, min_distinct) || !tokens_of(tok, width, &t) || !offsets_of(off, t, &o, &docs) ||
        !sized(sb, 4, "seeds", &k) || !sized(kb, 8, "keys", &cap) || !sized(vb, 4, "vals", &nv) ||
        !sized(fb, 8, "filter", &nf) || !sized(sig, 4, "out_sig", &nsig) || !sized(info, 8, "out_info", &ninfo)) {
        return nullptr;
    }
    if (!pow2(cap) || nv != cap || !pow2(nf) || k < 1 || nsig != docs * k || ninfo != docs * 4) {
        PyErr_Format(PyExc_ValueError,
                     "resign: table %zd / filter %zd must be powers of two; out_sig holds %zd, out_info %zd for %zd "
                     "docs of %zd permutations",
                     cap, nf, nsig, ninfo, docs, k);
        return nullptr;
    }
    Table tab;
    tab.keys = static_cast<const uint64_t*>(kb.view.buf);
    tab.vals = static_cast<const uint32_t*>(vb.view.buf);
    tab.mask = static_cast<uint64_t>(cap) - 1;
    tab.filter = static_cast<const uint64_t*>(fb.view.buf);
    tab.filter_mask = static_cast<uint64_t>(nf) * 64 - 1;
    const uint32_t* seeds = static_cast<const uint32_t*>(sb.view.buf);
    uint32_t* s = static_cast<uint32_t*>(sig.view.buf);
    uint64_t* inf = static_cast<uint64_t*>(info.view.buf);
    uint64_t dropped = 0;
    Py_BEGIN_ALLOW_THREADS
    Window w(n);
    std::vector<uint64_t> hs;
    for (Py_ssize_t d = 0; d < docs; ++d) {
        const Py_ssize_t lo = static_cast<Py_ssize_t>(o[d]), hi = static_cast<Py_ssize_t>(o[d + 1]);
        hs.clear();
        uint64_t boiler = 0;
        w.run(t, lo, hi, min_distinct, [&](uint64_t h, bool bad) {
            if (bad) return;
            if (tab.maybe(h) && tab.find(h) >= 0) {
                ++boiler;
            } else {
                hs.push_back(h);
            }
        });
        if (boiler == 0 || hs.empty()) continue;  // no boilerplate, or nothing else: the row stays
        uint32_t* row = s + d * k;
        for (Py_ssize_t i = 0; i < k; ++i) row[i] = 0xFFFFFFFFu;
        fold(row, seeds, k, hs.data(), static_cast<Py_ssize_t>(hs.size()));
        inf[4 * d + 1] = hs.size();
        dropped += boiler;
    }
    Py_END_ALLOW_THREADS
    return PyLong_FromUnsignedLongLong(dropped);
}

PyMethodDef methods[] = {
    {"signatures", signatures, METH_VARARGS, "MinHash signatures of documents (see minhash.cc)."},
    {"band_keys", band_keys, METH_VARARGS, "LSH band keys of signatures (see minhash.cc)."},
    {"ngram_hashes", ngram_hashes, METH_VARARGS, "Every n-gram hash of one token sequence (see minhash.cc)."},
    {"fill_table", fill_table, METH_VARARGS, "Fill an n-gram hash table (see minhash.cc)."},
    {"scan", scan, METH_VARARGS, "Scan documents for n-grams of a table (see minhash.cc)."},
    {"resign", resign, METH_VARARGS, "Signatures without the n-grams of a table (see minhash.cc)."},
    {"df_count", df_count, METH_VARARGS, "Document frequency of every n-gram (see minhash.cc)."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_minhash", "MinHash and n-gram scans of shardstore.curate", -1,
                      methods};

}  // namespace

PyMODINIT_FUNC PyInit__minhash(void) { return PyModule_Create(&module); }
