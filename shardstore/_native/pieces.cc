// Copy many variable-length pieces of shard token arrays into a batch buffer: the masked-row path of the loader.
//
// copy_pieces(sources, which, lo, n, dst, out) -> None
//   sources: a tuple of contiguous token buffers (itemsize 2 or 4: uint16 / uint32 shard payloads);
//   which, lo, n, dst: int64 buffers of one length P: piece i copies n[i] tokens of sources[which[i]] starting at
//   element lo[i] to element dst[i] of out;
//   out: a writable contiguous buffer of itemsize 2, 4 or 8 (the batch's staging rows, flattened); narrower
//   source tokens are zero-extended (token ids are unsigned), a wider source than out is refused.
// Every index is bounds-checked before anything is written (ValueError naming the piece). The Python caller
// (shardstore.store.pieces) has verified every block the pieces touch; this only moves bytes.

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "pybuf.h"

#include <cstdint>
#include <cstring>
#include <vector>

namespace {

using shardbuf::Buffer;
using shardbuf::get;

template <typename S, typename D>
void copy(const S* src, D* dst, int64_t n) {
    if (sizeof(S) == sizeof(D)) {
        std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(S));
        return;
    }
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<D>(src[i]);
}

template <typename D>
void copy_from(const void* src, Py_ssize_t src_item, D* dst, int64_t n) {
    if (src_item == 2) {
        copy(static_cast<const uint16_t*>(src), dst, n);
    } else {
        copy(static_cast<const uint32_t*>(src), dst, n);
    }
}

PyObject* copy_pieces(PyObject*, PyObject* args) {
    PyObject *sources, *which_o, *lo_o, *n_o, *dst_o, *out_o;
    if (!PyArg_ParseTuple(args, "O!OOOOO", &PyTuple_Type, &sources, &which_o, &lo_o, &n_o, &dst_o, &out_o)) {
        return nullptr;
    }
    Buffer which, lo, n, dst, out;
    if (!get(which_o, which, PyBUF_SIMPLE, "which") || !get(lo_o, lo, PyBUF_SIMPLE, "lo") ||
        !get(n_o, n, PyBUF_SIMPLE, "n") || !get(dst_o, dst, PyBUF_SIMPLE, "dst") ||
        !get(out_o, out, PyBUF_WRITABLE | PyBUF_FORMAT, "out")) {
        return nullptr;
    }
    const Py_ssize_t pieces = which.view.len / 8;
    if (which.view.len % 8 || lo.view.len != which.view.len || n.view.len != which.view.len ||
        dst.view.len != which.view.len) {
        PyErr_SetString(PyExc_ValueError, "which, lo, n and dst must be int64 buffers of one length");
        return nullptr;
    }
    const Py_ssize_t out_item = out.view.itemsize;
    if (out_item != 2 && out_item != 4 && out_item != 8) {
        PyErr_SetString(PyExc_ValueError, "out must have 2, 4 or 8 byte items");
        return nullptr;
    }
    const int64_t out_len = out.view.len / out_item;
    const Py_ssize_t k = PyTuple_GET_SIZE(sources);
    std::vector<Buffer> src(static_cast<size_t>(k));
    for (Py_ssize_t i = 0; i < k; ++i) {
        if (!get(PyTuple_GET_ITEM(sources, i), src[i], PyBUF_FORMAT, "a source")) return nullptr;
        const Py_ssize_t item = src[i].view.itemsize;
        if ((item != 2 && item != 4) || item > out_item) {
            PyErr_Format(PyExc_ValueError, "source %zd has %zd-byte items; out has %zd", i, item, out_item);
            return nullptr;
        }
    }
    const int64_t* w = static_cast<const int64_t*>(which.view.buf);
    const int64_t* l = static_cast<const int64_t*>(lo.view.buf);
    const int64_t* c = static_cast<const int64_t*>(n.view.buf);
    const int64_t* d = static_cast<const int64_t*>(dst.view.buf);
    for (Py_ssize_t i = 0; i < pieces; ++i) {  // check everything before writing anything
        if (w[i] < 0 || w[i] >= k) {
            PyErr_Format(PyExc_ValueError, "piece %zd: source %lld is outside the %zd given", i, (long long)w[i], k);
            return nullptr;
        }
        const int64_t src_len = src[w[i]].view.len / src[w[i]].view.itemsize;
        if (c[i] < 0 || l[i] < 0 || l[i] > src_len - c[i] || d[i] < 0 || d[i] > out_len - c[i]) {
            PyErr_Format(PyExc_ValueError, "piece %zd: [%lld, +%lld) -> [%lld, ...) is out of bounds", i,
                         (long long)l[i], (long long)c[i], (long long)d[i]);
            return nullptr;
        }
    }
    for (Py_ssize_t i = 0; i < pieces; ++i) {
        const Py_buffer& s = src[w[i]].view;
        const char* from = static_cast<const char*>(s.buf) + l[i] * s.itemsize;
        char* to = static_cast<char*>(out.view.buf) + d[i] * out_item;
        if (out_item == 2) {
            copy_from(from, s.itemsize, reinterpret_cast<uint16_t*>(to), c[i]);
        } else if (out_item == 4) {
            copy_from(from, s.itemsize, reinterpret_cast<uint32_t*>(to), c[i]);
        } else {
            copy_from(from, s.itemsize, reinterpret_cast<uint64_t*>(to), c[i]);
        }
    }
    Py_RETURN_NONE;
}

// A two-level array of shardstore.mix.keep.KeptIndex: value[r] = base[r >> level] + delta[r], with an int64 base
// every 2**level entries and a uint32 or int64 delta per entry.
struct TwoLevel {
    const int64_t* base = nullptr;
    const void* delta = nullptr;
    Py_ssize_t item = 0;
    int64_t size = 0;

    int64_t at(int64_t r, int level) const {
        const int64_t d = item == 4 ? static_cast<const uint32_t*>(delta)[r] : static_cast<const int64_t*>(delta)[r];
        return base[r >> level] + d;
    }
    bool from(Buffer& b, Buffer& d, int level) {
        item = d.view.itemsize;
        if (b.view.len % 8 || (item != 4 && item != 8) || d.view.len % item) return false;
        size = d.view.len / item;
        base = static_cast<const int64_t*>(b.view.buf);
        delta = d.view.buf;
        const int64_t bases = b.view.len / 8;
        return size == 0 ? bases == 0 : bases == ((size - 1) >> level) + 1;
    }
};

// The kept-token index: gap positions (strictly increasing, G of them) and skipped tokens C[r], r in [0, G].
struct Index {
    TwoLevel gap, skip;
    int64_t gaps = 0;
    int level = 0;

    int64_t gap_at(int64_t r) const { return gap.at(r, level); }
    int64_t skipped(int64_t r) const { return skip.at(r, level); }
    int64_t upper(int64_t x) const {  // gaps at positions <= x
        int64_t lo = 0, hi = gaps;
        while (lo < hi) {
            const int64_t mid = lo + (hi - lo) / 2;
            if (gap_at(mid) <= x) lo = mid + 1; else hi = mid;
        }
        return lo;
    }
    int64_t lower(int64_t x) const {  // gaps at positions < x
        int64_t lo = 0, hi = gaps;
        while (lo < hi) {
            const int64_t mid = lo + (hi - lo) / 2;
            if (gap_at(mid) < x) lo = mid + 1; else hi = mid;
        }
        return lo;
    }
};

bool index_from(Index& ix, Buffer& gb, Buffer& gd, Buffer& sb, Buffer& sd, int level) {
    ix.level = level;
    if (level < 0 || level > 62 || !ix.gap.from(gb, gd, level) || !ix.skip.from(sb, sd, level) ||
        ix.skip.size != ix.gap.size + 1) {
        PyErr_SetString(PyExc_ValueError, "inconsistent kept index arrays");
        return false;
    }
    ix.gaps = ix.gap.size;
    return true;
}

bool get_index(PyObject* gb, PyObject* gd, PyObject* sb, PyObject* sd, int level, Buffer* bufs, Index& ix) {
    return get(gb, bufs[0], PyBUF_SIMPLE, "gap_base") && get(gd, bufs[1], PyBUF_FORMAT, "gap_delta") &&
           get(sb, bufs[2], PyBUF_SIMPLE, "skip_base") && get(sd, bufs[3], PyBUF_FORMAT, "skip_delta") &&
           index_from(ix, bufs[0], bufs[1], bufs[2], bufs[3], level);
}

// locate_rows(gap_base, gap_delta, skip_base, skip_delta, level, starts, length, out_store, out_r0, out_inside)
PyObject* locate_rows(PyObject*, PyObject* args) {
    PyObject *gb, *gd, *sb, *sd, *st, *os, *orr, *oi;
    int level;
    long long length;
    if (!PyArg_ParseTuple(args, "OOOOiOLOOO", &gb, &gd, &sb, &sd, &level, &st, &length, &os, &orr, &oi)) {
        return nullptr;
    }
    Buffer bufs[4], starts, out_s, out_r, out_i;
    Index ix;
    if (!get_index(gb, gd, sb, sd, level, bufs, ix) || !get(st, starts, PyBUF_SIMPLE, "starts") ||
        !get(os, out_s, PyBUF_WRITABLE, "out_store") || !get(orr, out_r, PyBUF_WRITABLE, "out_r0") ||
        !get(oi, out_i, PyBUF_WRITABLE, "out_inside")) {
        return nullptr;
    }
    const Py_ssize_t rows = starts.view.len / 8;
    if (starts.view.len % 8 || out_s.view.len != starts.view.len || out_r.view.len != starts.view.len ||
        out_i.view.len != starts.view.len || length < 0) {
        PyErr_SetString(PyExc_ValueError, "starts and the outputs must be int64 buffers of one length");
        return nullptr;
    }
    const int64_t* s = static_cast<const int64_t*>(starts.view.buf);
    int64_t* o_s = static_cast<int64_t*>(out_s.view.buf);
    int64_t* o_r = static_cast<int64_t*>(out_r.view.buf);
    int64_t* o_i = static_cast<int64_t*>(out_i.view.buf);
    for (Py_ssize_t i = 0; i < rows; ++i) {
        const int64_t r0 = ix.upper(s[i]);
        o_r[i] = r0;
        o_i[i] = ix.lower(s[i] + length) - r0;
        o_s[i] = s[i] + ix.skipped(r0);
    }
    Py_RETURN_NONE;
}

// fill_pieces(gap_base, gap_delta, skip_base, skip_delta, level, starts, r0, inside, length, out_lo, out_n,
// out_at, out_row): for the rows given (those with inside > 0), their inside + 1 pieces each, in order.
PyObject* fill_pieces(PyObject*, PyObject* args) {
    PyObject *gb, *gd, *sb, *sd, *st, *r0o, *ino, *olo, *on, *oat, *orow;
    int level;
    long long length;
    if (!PyArg_ParseTuple(args, "OOOOiOOOLOOOO", &gb, &gd, &sb, &sd, &level, &st, &r0o, &ino, &length, &olo, &on,
                          &oat, &orow)) {
        return nullptr;
    }
    Buffer bufs[4], starts, r0b, inb, out_lo, out_n, out_at, out_row;
    Index ix;
    if (!get_index(gb, gd, sb, sd, level, bufs, ix) || !get(st, starts, PyBUF_SIMPLE, "starts") ||
        !get(r0o, r0b, PyBUF_SIMPLE, "r0") || !get(ino, inb, PyBUF_SIMPLE, "inside") ||
        !get(olo, out_lo, PyBUF_WRITABLE, "out_lo") || !get(on, out_n, PyBUF_WRITABLE, "out_n") ||
        !get(oat, out_at, PyBUF_WRITABLE, "out_at") || !get(orow, out_row, PyBUF_WRITABLE, "out_row")) {
        return nullptr;
    }
    const Py_ssize_t rows = starts.view.len / 8;
    const Py_ssize_t cap = out_lo.view.len / 8;
    if (starts.view.len % 8 || r0b.view.len != starts.view.len || inb.view.len != starts.view.len ||
        out_n.view.len != out_lo.view.len || out_at.view.len != out_lo.view.len ||
        out_row.view.len != out_lo.view.len || out_lo.view.len % 8) {
        PyErr_SetString(PyExc_ValueError, "fill_pieces: int64 buffers of matching lengths expected");
        return nullptr;
    }
    const int64_t* s = static_cast<const int64_t*>(starts.view.buf);
    const int64_t* r0 = static_cast<const int64_t*>(r0b.view.buf);
    const int64_t* in = static_cast<const int64_t*>(inb.view.buf);
    int64_t* o_lo = static_cast<int64_t*>(out_lo.view.buf);
    int64_t* o_n = static_cast<int64_t*>(out_n.view.buf);
    int64_t* o_at = static_cast<int64_t*>(out_at.view.buf);
    int64_t* o_row = static_cast<int64_t*>(out_row.view.buf);
    Py_ssize_t p = 0;
    for (Py_ssize_t i = 0; i < rows; ++i) {
        if (in[i] < 0 || r0[i] < 0 || r0[i] + in[i] > ix.gaps || p + in[i] + 1 > cap) {
            PyErr_Format(PyExc_ValueError, "fill_pieces: row %zd does not fit the index or the output", i);
            return nullptr;
        }
        for (int64_t k = 0; k <= in[i]; ++k, ++p) {
            const int64_t begin = k == 0 ? s[i] : ix.gap_at(r0[i] + k - 1);
            const int64_t end = k == in[i] ? s[i] + length : ix.gap_at(r0[i] + k);
            o_lo[p] = begin + ix.skipped(r0[i] + k);
            o_n[p] = end - begin;
            o_at[p] = begin - s[i];
            o_row[p] = i;
        }
    }
    if (p != cap) {
        PyErr_Format(PyExc_ValueError, "fill_pieces: %zd pieces for an output of %zd", p, cap);
        return nullptr;
    }
    Py_RETURN_NONE;
}

PyMethodDef methods[] = {
    {"copy_pieces", copy_pieces, METH_VARARGS, "Copy token pieces of shards into a batch (see pieces.cc)."},
    {"locate_rows", locate_rows, METH_VARARGS, "Store start and gaps inside of kept windows (see pieces.cc)."},
    {"fill_pieces", fill_pieces, METH_VARARGS, "The store pieces of kept windows with gaps (see pieces.cc)."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pieces", "Piece copies of the masked-row path", -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit__pieces(void) { return PyModule_Create(&module); }
