// The document-frequency passes of dedup's boilerplate rule (shardstore/curate/docfreq.py), exact in two steps:
//
//   df_sketch   adds every n-gram position of the documents into a bucket sketch: uint8 counters (saturating at
//               255) indexed by the top `bits` of the n-gram hash. A bucket's total over all units bounds from
//               above the document frequency of every n-gram in it (a position per document at least).
//   df_count    the exact document frequency of the non-degenerate n-grams whose bucket is "hot" (its total is
//               above the limit, or saturated): only those can be boilerplate. The sketch is a filter; the answer
//               stays exact and a pure function of the stores.
//
// Definitions in minhash_core.h.

#include <algorithm>

#include "minhash_core.h"

namespace mh {

namespace {

// Each document's distinct n-grams: a small open-addressing set (cache resident, cleared by its touched slots).
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

int log2_of(Py_ssize_t w) {
    int bits = 0;
    while ((Py_ssize_t(1) << bits) < w) ++bits;
    return bits;
}

}  // namespace

// df_sketch(tokens, width, offsets, n, counts): counts uint8[2^bits] (bits in 3..40), in place: for every n-gram
// position (degenerate ones too: an upper bound stays one), counts[hash >> (64 - bits)] += 1, saturating at 255.
PyObject* df_sketch(PyObject*, PyObject* args) {
    Buffer tok, off, cb;
    int width = 0, n = 0;
    if (!PyArg_ParseTuple(args, "y*iy*iw*", &tok.view, &width, &off.view, &n, &cb.view)) return nullptr;
    tok.held = off.held = cb.held = true;
    Tokens t;
    const uint64_t* o = nullptr;
    Py_ssize_t docs = 0;
    if (!check_n(n, 0) || !tokens_of(tok, width, &t) || !offsets_of(off, t, &o, &docs)) return nullptr;
    if (!pow2(cb.view.len) || cb.view.len < 8 || log2_of(cb.view.len) > 40) {
        PyErr_Format(PyExc_ValueError, "df_sketch: %zd counters must be a power of two in 2^3..2^40", cb.view.len);
        return nullptr;
    }
    uint8_t* c = static_cast<uint8_t*>(cb.view.buf);
    const int shift = 64 - log2_of(cb.view.len);
    Py_BEGIN_ALLOW_THREADS
    each_ngram(t, o, docs, n, [&](Py_ssize_t, Py_ssize_t, uint64_t f) {
        uint8_t& x = c[f >> shift];
        x = static_cast<uint8_t>(x + (x != 255));
    });
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

// df_count(tokens, width, offsets, n, min_distinct, partitions, hot) -> (rows, per): the document frequency of
// every non-degenerate n-gram whose bucket is hot: hot is a bitmap of 8 x len(hot) buckets (a power of two, bit
// b = hot[b / 8] >> (b % 8) & 1; bucket of a hash = its top bits, as in df_sketch). rows: bytes of uint64 (hash,
// documents holding it) pairs sorted by partition (hash mod partitions), then hash; per: bytes of uint64 rows per
// partition. The degenerate rule is checked only on hot hits (a rare event).
PyObject* df_count(PyObject*, PyObject* args) {
    Buffer tok, off, hb;
    int width = 0, n = 0, min_distinct = 0;
    Py_ssize_t partitions = 0;
    if (!PyArg_ParseTuple(args, "y*iy*iiny*", &tok.view, &width, &off.view, &n, &min_distinct, &partitions,
                          &hb.view)) {
        return nullptr;
    }
    tok.held = off.held = hb.held = true;
    Tokens t;
    const uint64_t* o = nullptr;
    Py_ssize_t docs = 0;
    if (!check_n(n, min_distinct) || !tokens_of(tok, width, &t) || !offsets_of(off, t, &o, &docs)) return nullptr;
    if (partitions < 1 || partitions > (1 << 24)) {
        PyErr_Format(PyExc_ValueError, "df_count: partitions=%zd must be in 1..2^24", partitions);
        return nullptr;
    }
    if (!pow2(hb.view.len) || log2_of(hb.view.len) > 37) {
        PyErr_Format(PyExc_ValueError, "df_count: hot bitmap of %zd bytes must be a power of two", hb.view.len);
        return nullptr;
    }
    const uint8_t* hot = static_cast<const uint8_t*>(hb.view.buf);
    const int shift = 64 - log2_of(hb.view.len * 8);
    std::vector<uint64_t> rows, per(static_cast<size_t>(partitions), 0);
    Py_BEGIN_ALLOW_THREADS
    const uint64_t P = static_cast<uint64_t>(partitions);
    std::vector<uint64_t> all;  // each document's distinct hot n-grams, documents in order
    DocSet seen;
    Py_ssize_t doc = -1;
    each_ngram(t, o, docs, n, [&](Py_ssize_t d, Py_ssize_t i, uint64_t f) {
        const uint64_t b = f >> shift;
        if (!((hot[b >> 3] >> (b & 7)) & 1) || degenerate_at(t, i, n, min_distinct)) return;
        if (d != doc) {
            doc = d;
            seen.reset(static_cast<Py_ssize_t>(o[d + 1] - o[d]));
        }
        if (seen.insert(f)) all.push_back(f);
    });
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

}  // namespace mh
