// The n-gram lookup table and the scan of decontamination (and of dedup's boilerplate set): which documents hold
// which n-grams of a table. Definitions in minhash_core.h.

#include "minhash_core.h"

namespace mh {

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
    Py_ssize_t docs = 0;
    Table tab;
    if (!check_n(n, min_distinct) || !tokens_of(tok, width, &t) || !offsets_of(off, t, &o, &docs) ||
        !table_of(kb, vb, fb, "scan", &tab)) {
        return nullptr;
    }
    if (docs > 0xFFFFFFFFLL) {
        PyErr_Format(PyExc_ValueError, "scan: %zd documents; at most 2^32 per call", docs);
        return nullptr;
    }
    std::vector<uint32_t> hits;
    Py_BEGIN_ALLOW_THREADS
    // Degenerate windows are looked up only when the hash hits (a rare event), so the distinct-token count is
    // needed only there: the hot loop is the rolling hash and one filter probe per token.
    each_ngram(t, o, docs, n, [&](Py_ssize_t d, Py_ssize_t i, uint64_t f) {
        if (!tab.maybe(f)) return;
        const int64_t v = tab.find(f);
        if (v < 0 || degenerate_at(t, i, n, min_distinct)) return;
        hits.push_back(static_cast<uint32_t>(d));
        hits.push_back(static_cast<uint32_t>(v));
    });
    Py_END_ALLOW_THREADS
    return PyBytes_FromStringAndSize(reinterpret_cast<const char*>(hits.data()),
                                     static_cast<Py_ssize_t>(hits.size() * 4));
}

}  // namespace mh
