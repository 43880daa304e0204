// Token n-gram hashing, MinHash signatures and LSH band keys: the inner loops of shardstore.curate's dedup.
// Definitions in minhash_core.h; the n-gram scan is minhash_scan.cc, the document-frequency passes minhash_df.cc.
// The pure-numpy reference is tests/curate/curate_reference.py.

#include <algorithm>

#include "minhash_core.h"

namespace mh {

bool sized(const Buffer& b, Py_ssize_t item, const char* what, Py_ssize_t* count) {
    if (b.view.len % item != 0) {
        PyErr_Format(PyExc_ValueError, "%s: buffer of %zd bytes is not a whole number of %zd-byte items", what,
                     b.view.len, item);
        return false;
    }
    *count = b.view.len / item;
    return true;
}

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

bool check_n(int n, int min_distinct) {
    if (n < 1 || n > kMaxN || min_distinct < 0 || min_distinct > n) {
        PyErr_Format(PyExc_ValueError, "n=%d must be in 1..%d and min_distinct=%d in 0..n", n, kMaxN,
                     min_distinct);
        return false;
    }
    return true;
}

bool table_of(const Buffer& kb, const Buffer& vb, const Buffer& fb, const char* who, Table* tab) {
    Py_ssize_t cap = 0, nv = 0, nf = 0;
    if (!sized(kb, 8, "keys", &cap) || !sized(vb, 4, "vals", &nv) || !sized(fb, 8, "filter", &nf)) return false;
    if (!pow2(cap) || nv != cap || !pow2(nf)) {
        PyErr_Format(PyExc_ValueError, "%s: table capacity %zd (values %zd) and filter size %zd must be powers of two",
                     who, cap, nv, nf);
        return false;
    }
    tab->keys = static_cast<const uint64_t*>(kb.view.buf);
    tab->vals = static_cast<const uint32_t*>(vb.view.buf);
    tab->mask = static_cast<uint64_t>(cap) - 1;
    tab->filter = static_cast<const uint64_t*>(fb.view.buf);
    tab->filter_mask = static_cast<uint64_t>(nf) * 64 - 1;
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

namespace {

uint64_t exact_hash(const Tokens& t, Py_ssize_t lo, Py_ssize_t hi) {
    uint64_t h = fmix64(static_cast<uint64_t>(hi - lo) ^ 0x5851F42D4C957F2DULL);
    for (Py_ssize_t i = lo; i < hi; ++i) h = h * kBase + (static_cast<uint64_t>(t[i]) + 1);
    return fmix64(h ^ 0xD6E8FEB86659FD93ULL);
}

// Signatures of documents [0, docs): each folds its non-degenerate n-grams that are not in `tab` (when given),
// or, when it has no other, the ones that are (a document of nothing but boilerplate keeps it all). Returns the
// n-grams of `tab` left out (positions). Called without the GIL.
uint64_t sign_docs(const Tokens& t, const uint64_t* o, Py_ssize_t docs, int n, int min_distinct,
                   const uint32_t* seeds, Py_ssize_t k, const Table* tab, uint32_t* s, uint64_t* inf) {
    Window w(n);
    std::vector<uint64_t> hs, bs;
    uint64_t dropped = 0;
    for (Py_ssize_t d = 0; d < docs; ++d) {
        const Py_ssize_t lo = static_cast<Py_ssize_t>(o[d]), hi = static_cast<Py_ssize_t>(o[d + 1]);
        hs.clear();
        bs.clear();
        uint64_t degenerate = 0;
        w.run(t, lo, hi, min_distinct, [&](uint64_t h, bool bad) {
            if (bad) {
                ++degenerate;
            } else if (tab != nullptr && tab->has(h)) {
                bs.push_back(h);
            } else {
                hs.push_back(h);
            }
        });
        const std::vector<uint64_t>& use = hs.empty() ? bs : hs;
        if (!hs.empty()) dropped += bs.size();
        uint32_t* row = s + d * k;
        for (Py_ssize_t i = 0; i < k; ++i) row[i] = 0xFFFFFFFFu;
        fold(row, seeds, k, use.data(), static_cast<Py_ssize_t>(use.size()));
        inf[4 * d] = exact_hash(t, lo, hi);
        inf[4 * d + 1] = use.size();
        inf[4 * d + 2] = degenerate;
        inf[4 * d + 3] = static_cast<uint64_t>(hi - lo);
    }
    return dropped;
}

struct SignArgs {
    Buffer tok, off, sb, sig, info;
    Tokens t;
    const uint64_t* o = nullptr;
    Py_ssize_t docs = 0, k = 0;
    int n = 0, min_distinct = 0;
    bool check(int width, const char* who) {
        Py_ssize_t nsig = 0, ninfo = 0;
        if (!check_n(n, min_distinct) || !tokens_of(tok, width, &t) || !offsets_of(off, t, &o, &docs) ||
            !sized(sb, 4, "seeds", &k) || !sized(sig, 4, "out_sig", &nsig) || !sized(info, 8, "out_info", &ninfo)) {
            return false;
        }
        if (k < 1 || nsig != docs * k || ninfo != docs * 4) {
            PyErr_Format(PyExc_ValueError, "%s: %zd permutations; out_sig holds %zd, out_info %zd for %zd docs", who,
                         k, nsig, ninfo, docs);
            return false;
        }
        return true;
    }
};

}  // namespace

// signatures(tokens, width, offsets, n, min_distinct, seeds, out_sig, out_info)
//   out_sig: uint32[D * K]; out_info: uint64[D * 4] = (exact hash, n-grams used, degenerate n-grams, tokens).
PyObject* signatures(PyObject*, PyObject* args) {
    SignArgs a;
    int width = 0;
    if (!PyArg_ParseTuple(args, "y*iy*iiy*w*w*", &a.tok.view, &width, &a.off.view, &a.n, &a.min_distinct,
                          &a.sb.view, &a.sig.view, &a.info.view)) {
        return nullptr;
    }
    a.tok.held = a.off.held = a.sb.held = a.sig.held = a.info.held = true;
    if (!a.check(width, "signatures")) return nullptr;
    Py_BEGIN_ALLOW_THREADS
    sign_docs(a.t, a.o, a.docs, a.n, a.min_distinct, static_cast<const uint32_t*>(a.sb.view.buf), a.k, nullptr,
              static_cast<uint32_t*>(a.sig.view.buf), static_cast<uint64_t*>(a.info.view.buf));
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

// sign_masked(tokens, width, offsets, n, min_distinct, seeds, keys, vals, filter, out_sig, out_info) -> dropped:
// `signatures` without the n-grams of the table (boilerplate) in one pass, except in documents that have no
// other; out_info[4d + 1] counts the n-grams folded; returns the table n-grams left out (positions).
PyObject* sign_masked(PyObject*, PyObject* args) {
    SignArgs a;
    Buffer kb, vb, fb;
    int width = 0;
    if (!PyArg_ParseTuple(args, "y*iy*iiy*y*y*y*w*w*", &a.tok.view, &width, &a.off.view, &a.n, &a.min_distinct,
                          &a.sb.view, &kb.view, &vb.view, &fb.view, &a.sig.view, &a.info.view)) {
        return nullptr;
    }
    a.tok.held = a.off.held = a.sb.held = a.sig.held = a.info.held = kb.held = vb.held = fb.held = true;
    Table tab;
    if (!a.check(width, "sign_masked") || !table_of(kb, vb, fb, "sign_masked", &tab)) return nullptr;
    uint64_t dropped = 0;
    Py_BEGIN_ALLOW_THREADS
    dropped = sign_docs(a.t, a.o, a.docs, a.n, a.min_distinct, static_cast<const uint32_t*>(a.sb.view.buf), a.k,
                        &tab, static_cast<uint32_t*>(a.sig.view.buf), static_cast<uint64_t*>(a.info.view.buf));
    Py_END_ALLOW_THREADS
    return PyLong_FromUnsignedLongLong(dropped);
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

// ngram_set(tokens, width, n, min_distinct, keys, vals, filter) -> bytes of uint64: the sorted distinct
// non-degenerate n-gram hashes of one document that are not in the table (boilerplate), or all of them when
// none is left: the set exact Jaccard confirmation compares (boiler.filtered_set).
PyObject* ngram_set(PyObject*, PyObject* args) {
    Buffer tok, kb, vb, fb;
    int width = 0, n = 0, min_distinct = 0;
    if (!PyArg_ParseTuple(args, "y*iiiy*y*y*", &tok.view, &width, &n, &min_distinct, &kb.view, &vb.view,
                          &fb.view)) {
        return nullptr;
    }
    tok.held = kb.held = vb.held = fb.held = true;
    Tokens t;
    Table tab;
    if (!check_n(n, min_distinct) || !tokens_of(tok, width, &t) || !table_of(kb, vb, fb, "ngram_set", &tab)) {
        return nullptr;
    }
    std::vector<uint64_t> hs, bs;
    Py_BEGIN_ALLOW_THREADS
    Window w(n);
    w.run(t, 0, t.n, min_distinct, [&](uint64_t h, bool bad) {
        if (bad) return;
        (tab.has(h) ? bs : hs).push_back(h);
    });
    if (hs.empty()) hs.swap(bs);
    std::sort(hs.begin(), hs.end());
    hs.erase(std::unique(hs.begin(), hs.end()), hs.end());
    Py_END_ALLOW_THREADS
    return PyBytes_FromStringAndSize(reinterpret_cast<const char*>(hs.data()), static_cast<Py_ssize_t>(hs.size() * 8));
}

// intersect_count(a, b) -> int: the size of the intersection of two sorted distinct uint64 arrays.
PyObject* intersect_count(PyObject*, PyObject* args) {
    Buffer ab, bb;
    if (!PyArg_ParseTuple(args, "y*y*", &ab.view, &bb.view)) return nullptr;
    ab.held = bb.held = true;
    Py_ssize_t na = 0, nb = 0;
    if (!sized(ab, 8, "a", &na) || !sized(bb, 8, "b", &nb)) return nullptr;
    const uint64_t* a = static_cast<const uint64_t*>(ab.view.buf);
    const uint64_t* b = static_cast<const uint64_t*>(bb.view.buf);
    Py_ssize_t i = 0, j = 0, c = 0;
    while (i < na && j < nb) {
        if (a[i] < b[j]) {
            ++i;
        } else if (b[j] < a[i]) {
            ++j;
        } else {
            ++c, ++i, ++j;
        }
    }
    return PyLong_FromSsize_t(c);
}

}  // namespace mh

namespace {

PyMethodDef methods[] = {
    {"signatures", mh::signatures, METH_VARARGS, "MinHash signatures of documents (see minhash.cc)."},
    {"sign_masked", mh::sign_masked, METH_VARARGS, "Signatures without the n-grams of a table (see minhash.cc)."},
    {"band_keys", mh::band_keys, METH_VARARGS, "LSH band keys of signatures (see minhash.cc)."},
    {"ngram_hashes", mh::ngram_hashes, METH_VARARGS, "Every n-gram hash of one token sequence (see minhash.cc)."},
    {"ngram_set", mh::ngram_set, METH_VARARGS, "Sorted distinct n-grams of a document (see minhash.cc)."},
    {"intersect_count", mh::intersect_count, METH_VARARGS, "Size of the intersection of sorted sets."},
    {"fill_table", mh::fill_table, METH_VARARGS, "Fill an n-gram hash table (see minhash_scan.cc)."},
    {"scan", mh::scan, METH_VARARGS, "Scan documents for n-grams of a table (see minhash_scan.cc)."},
    {"df_sketch", mh::df_sketch, METH_VARARGS, "Add n-gram positions to a bucket sketch (see minhash_df.cc)."},
    {"df_count", mh::df_count, METH_VARARGS, "Document frequency of the hot n-grams (see minhash_df.cc)."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_minhash", "MinHash and n-gram scans of shardstore.curate", -1,
                      methods};

}  // namespace

PyMODINIT_FUNC PyInit__minhash(void) { return PyModule_Create(&module); }
