// Earliest-deadline-first merge of per-source unit jobs: the inner loop of shardstore.mix.interleave.
//
// Python computes, exactly and vectorized, the release and deadline (relative to the first position of a batch,
// clamped to [0, 2^62]) of every job each source may place in the batch; this merges them in time order: at
// every position the released pending job of earliest deadline wins, ties to the lower source index. That is
// the per-sample loop of the reference `Interleave._simulate`, at O(log num_sources) per sample instead of
// O(num_sources) Python comparisons. Each source's jobs are consecutive (its samples in order), so only its
// first pending job is ever in a heap.
//
// merge(release, deadline, offsets, length, out_source, out_job) -> filled
//   release, deadline: int64[J]; offsets: int64[k + 1], jobs of source s are [offsets[s], offsets[s + 1]);
//   out_source, out_job: writable int64[length]. Returns the number of positions filled (== length unless no
//   job was released at some position, which the caller treats as an internal error).

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <queue>
#include <utility>
#include <vector>

namespace {

struct Buffer {
    Py_buffer view{};
    bool held = false;
    ~Buffer() {
        if (held) PyBuffer_Release(&view);
    }
};

bool int64_array(Buffer& b, const char* what, Py_ssize_t* count) {
    if (b.view.itemsize != 8 || b.view.len % 8 != 0) {
        PyErr_Format(PyExc_ValueError, "%s must be an int64 buffer", what);
        return false;
    }
    *count = b.view.len / 8;
    return true;
}

using Key = std::pair<int64_t, int64_t>;  // (time, source): min-heap order is time, then lower source
using MinHeap = std::priority_queue<Key, std::vector<Key>, std::greater<Key>>;

PyObject* merge(PyObject*, PyObject* args) {
    Buffer rel, dl, off, out_src, out_job;
    Py_ssize_t length = 0;
    if (!PyArg_ParseTuple(args, "y*y*y*nw*w*", &rel.view, &dl.view, &off.view, &length, &out_src.view,
                          &out_job.view)) {
        return nullptr;
    }
    rel.held = dl.held = off.held = out_src.held = out_job.held = true;
    Py_ssize_t nrel = 0, ndl = 0, noff = 0, nsrc = 0, njob = 0;
    if (!int64_array(rel, "release", &nrel) || !int64_array(dl, "deadline", &ndl) ||
        !int64_array(off, "offsets", &noff) || !int64_array(out_src, "out_source", &nsrc) ||
        !int64_array(out_job, "out_job", &njob)) {
        return nullptr;
    }
    if (nrel != ndl || noff < 1 || length < 0 || nsrc < length || njob < length) {
        PyErr_SetString(PyExc_ValueError, "merge: release/deadline sizes differ or outputs are too short");
        return nullptr;
    }
    const auto* r = static_cast<const int64_t*>(rel.view.buf);
    const auto* d = static_cast<const int64_t*>(dl.view.buf);
    const auto* o = static_cast<const int64_t*>(off.view.buf);
    auto* src = static_cast<int64_t*>(out_src.view.buf);
    auto* job = static_cast<int64_t*>(out_job.view.buf);
    const Py_ssize_t k = noff - 1;
    if (o[0] != 0 || o[k] != nrel) {
        PyErr_SetString(PyExc_ValueError, "merge: offsets must start at 0 and end at the number of jobs");
        return nullptr;
    }
    for (Py_ssize_t s = 0; s < k; ++s) {
        if (o[s] > o[s + 1]) {
            PyErr_SetString(PyExc_ValueError, "merge: offsets must be nondecreasing");
            return nullptr;
        }
    }
    Py_ssize_t filled = 0;
    Py_BEGIN_ALLOW_THREADS
    std::vector<int64_t> next(o, o + k);
    if (k <= 64) {  // few sources: a scan of the pending jobs beats two heaps
        for (Py_ssize_t t = 0; t < length; ++t) {
            int64_t best = -1;
            for (Py_ssize_t s = 0; s < k; ++s) {
                const int64_t j = next[s];
                if (j < o[s + 1] && r[j] <= t && (best < 0 || d[j] < d[next[best]])) best = s;
            }
            if (best < 0) break;
            src[t] = best;
            job[t] = next[best] - o[best];
            ++next[best];
            filled = t + 1;
        }
    } else {
    MinHeap waiting, ready;  // waiting: (release, source); ready: (deadline, source)
    for (Py_ssize_t s = 0; s < k; ++s) {
        if (next[s] < o[s + 1]) waiting.emplace(r[next[s]], s);
    }
    for (Py_ssize_t t = 0; t < length; ++t) {
        while (!waiting.empty() && waiting.top().first <= t) {
            const int64_t s = waiting.top().second;
            waiting.pop();
            ready.emplace(d[next[s]], s);
        }
        if (ready.empty()) break;
        const int64_t s = ready.top().second;
        ready.pop();
        src[t] = s;
        job[t] = next[s] - o[s];
        if (++next[s] < o[s + 1]) waiting.emplace(r[next[s]], s);
        filled = t + 1;
    }
    }
    Py_END_ALLOW_THREADS
    return PyLong_FromSsize_t(filled);
}

// ---- times: first u in [0, hi] with quad*u^2 + lin*u >= y0 + i*step, for every job i of every chunk ----------
//
// chunks: int64[n * 12] rows (at, count, quad, lin, y0, step, base, hi), the four middle values as 128-bit
// (high word, low word) pairs. Python guarantees |quad|, |lin|, |y0| + count*step < 2^100, |base| <= 2^62,
// 0 <= hi <= 2^62, and that the left side is nondecreasing on [0, hi]. Every comparison is exact: in 128-bit
// integers when the value fits with room (|.| <= 2^120), else by the sign of a long double estimate, which is then
// far beyond |y| < 2^100. out[at + i] = clamp(base + u, -2^62, 2^62); INT64_MIN where no u in [0, hi] reaches.

using i128 = __int128;
constexpr int64_t kFar = int64_t(1) << 62;
constexpr int kRow = 12;

inline i128 wide(const int64_t* p) {
    return static_cast<i128>((static_cast<unsigned __int128>(static_cast<uint64_t>(p[0])) << 64) |
                             static_cast<uint64_t>(p[1]));
}

inline bool reached(i128 q, i128 lin, i128 y, int64_t u, bool small) {
    if (small && u < (int64_t(1) << 31)) return (q * u + lin) * u >= y;  // |q u^2|, |lin u| < 2^123
    if (u == 0) return y <= 0;
    const long double inner_est = static_cast<long double>(q) * u + static_cast<long double>(lin);
    if (inner_est > 0x1p122L) return true;  // (q u + lin) u >= 2^122 > |y|
    if (inner_est < -0x1p122L) return false;
    const i128 inner = q * u + lin;  // |q u| <= 2^122 + |lin| < 2^123: no overflow
    const long double est = static_cast<long double>(inner) * u;
    if (est > 0x1p120L) return true;
    if (est < -0x1p120L) return false;
    return inner * u >= y;  // |inner * u| <= 2^121
}

int64_t solve(i128 q, i128 lin, i128 y, int64_t hi, bool small) {
    if (q == 0) {
        if (lin <= 0) return -1;
        i128 u = y / lin;  // ceil(y / lin), with C++ truncation toward zero
        if (u * lin < y) ++u;
        if (u < 0) u = 0;
        return u <= hi ? static_cast<int64_t>(u) : -1;
    }
    const double qf = static_cast<double>(q), lf = static_cast<double>(lin), yf = static_cast<double>(y);
    double disc = lf * lf + 4.0 * qf * yf;
    if (disc < 0) disc = 0;
    const double den = lf + std::sqrt(disc);
    double g = den > 0 ? std::ceil(2.0 * yf / den) : 0.0;
    if (!(g >= 0)) g = 0;  // also NaN
    if (g > static_cast<double>(hi)) g = static_cast<double>(hi);
    int64_t u = static_cast<int64_t>(g);
    for (int step = 0; step < 16; ++step) {  // the float root is the answer or a close neighbour
        if (!reached(q, lin, y, u, small)) {
            if (u >= hi) break;
            ++u;
        } else if (u > 0 && reached(q, lin, y, u - 1, small)) {
            --u;
        } else {
            return u;
        }
    }
    if (!reached(q, lin, y, hi, small)) return -1;
    int64_t lo = -1, top = hi;  // bisection: reached(top), !reached(lo) (lo = -1 stands for "before 0")
    while (top - lo > 1) {
        const int64_t mid = lo + (top - lo) / 2;
        if (reached(q, lin, y, mid, small)) top = mid; else lo = mid;
    }
    return top;
}

PyObject* times(PyObject*, PyObject* args) {
    Buffer chunks, out;
    if (!PyArg_ParseTuple(args, "y*w*", &chunks.view, &out.view)) return nullptr;
    chunks.held = out.held = true;
    Py_ssize_t nvals = 0, nout = 0;
    if (!int64_array(chunks, "chunks", &nvals) || !int64_array(out, "out", &nout)) return nullptr;
    if (nvals % kRow != 0) {
        PyErr_SetString(PyExc_ValueError, "times: chunks must hold rows of 12 int64");
        return nullptr;
    }
    const auto* c = static_cast<const int64_t*>(chunks.view.buf);
    auto* o = static_cast<int64_t*>(out.view.buf);
    for (Py_ssize_t r = 0; r < nvals / kRow; ++r) {
        const int64_t* row = c + kRow * r;
        if (row[0] < 0 || row[1] < 0 || row[0] > nout - row[1] || row[11] < 0) {
            PyErr_SetString(PyExc_ValueError, "times: a chunk lies outside the output");
            return nullptr;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < nvals / kRow; ++r) {
        const int64_t* row = c + kRow * r;
        const int64_t at = row[0], count = row[1], base = row[10], hi = row[11];
        const i128 q = wide(row + 2), lin = wide(row + 4), y0 = wide(row + 6), step = wide(row + 8);
        const i128 qbound = i128(1) << 61, lbound = i128(1) << 91;
        const bool small = q < qbound && q > -qbound && lin < lbound && lin > -lbound;
        for (int64_t i = 0; i < count; ++i) {
            const int64_t u = solve(q, lin, y0 + i * step, hi, small);
            if (u < 0) {
                o[at + i] = INT64_MIN;
                continue;
            }
            const i128 v = static_cast<i128>(base) + u;
            o[at + i] = v >= kFar ? kFar : v <= -kFar ? -kFar : static_cast<int64_t>(v);
        }
    }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

PyMethodDef methods[] = {
    {"merge", merge, METH_VARARGS, "EDF merge of per-source unit jobs (see edf.cc)."},
    {"times", times, METH_VARARGS, "First reach times of many jobs (see edf.cc)."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_edf", "EDF merge of the mixture interleave", -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit__edf(void) { return PyModule_Create(&module); }
