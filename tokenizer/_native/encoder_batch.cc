// encode_batch and count_batch: a list of texts encoded (or counted) on native threads with the GIL released.
//
// The GIL-holding thread only records where each str keeps its characters (str_utf8.h); the workers convert to
// UTF-8, encode, and write the ids of a run of consecutive texts (a chunk) into one buffer. After the join the
// results are built from the chunk buffers: lists of pre-built ints (itemsize 0), one flat id buffer plus offsets
// (itemsize 2/4, for numpy views) or one int per text (count). Before this, the UTF-8 conversion and a worst-case
// bytearray per text ran serially under the GIL, and a 16-thread batch of Chinese documents scaled ~3x.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "encoder_object.h"
#include "str_utf8.h"
#include "worker_pool.h"

namespace encoder_py {
namespace {

constexpr size_t kDocOverhead = 64;  // bytes a text "costs" beyond its length, for splitting work by cost

// A growable array of trivially copyable T that does not zero what it allocates (a text's worst case is one id
// per byte, most of which is never written).
template <class T>
class IdBuffer {
  public:
    T* reserve_more(size_t n) {  // room for n more ids after size(); returns where they go
        if (size_ + n > cap_) {
            size_t cap = std::max(size_ + n, cap_ * 2);
            std::unique_ptr<T[]> grown(new T[cap]);
            if (size_) std::memcpy(grown.get(), buf_.get(), size_ * sizeof(T));
            buf_ = std::move(grown);
            cap_ = cap;
        }
        return buf_.get() + size_;
    }
    void commit(size_t n) { size_ += n; }
    size_t size() const { return size_; }
    const T* data() const { return buf_.get(); }
    void release() {
        buf_.reset();
        size_ = cap_ = 0;
    }

  private:
    std::unique_ptr<T[]> buf_;
    size_t size_ = 0, cap_ = 0;
};

template <class T>
struct Chunk {
    size_t lo, hi, cost;
    IdBuffer<T> ids;
};

// The texts of one call, where their ids went, and the work plan.
template <class T>
struct Batch {
    std::vector<strutf8::TextRef> refs;
    std::vector<size_t> start, ntok;  // per text: first id in its chunk's buffer, number of ids
    std::vector<Chunk<T>> chunks;
    std::vector<size_t> order;  // chunks, largest first
    std::atomic<bool> unencodable{false}, oom{false};
    WorkerPool* pool = nullptr;  // this process's (looked up in plan, under the GIL)

    // Record the texts (GIL held) and cut them into chunks of about equal cost, handed out largest first (LPT:
    // one big document handed out last would leave the other threads idle). Chunks, not single texts: 95k short
    // documents cost 95k atomic increments otherwise.
    bool plan(PyObject* texts, size_t nthreads) {
        const size_t count = static_cast<size_t>(PyList_GET_SIZE(texts));
        if (nthreads > 1) pool = WorkerPool::current();
        refs.resize(count);
        start.assign(count, 0);
        ntok.assign(count, 0);
        size_t total = 0;
        for (size_t i = 0; i < count; ++i) {
            if (!strutf8::ref_of(PyList_GET_ITEM(texts, i), &refs[i])) return false;
            total += refs[i].cost() + kDocOverhead;
        }
        const size_t chunk_cost = std::clamp<size_t>(total / (nthreads * 16), 4096, 1 << 18);
        for (size_t i = 0, lo = 0, acc = 0; i < count; ++i) {
            acc += refs[i].cost() + kDocOverhead;
            if (acc >= chunk_cost || i + 1 == count) {
                chunks.push_back(Chunk<T>{lo, i + 1, acc, {}});
                lo = i + 1;
                acc = 0;
            }
        }
        order.resize(chunks.size());
        for (size_t c = 0; c < chunks.size(); ++c) order[c] = c;
        std::stable_sort(order.begin(), order.end(),
                         [this](size_t a, size_t b) { return chunks[a].cost > chunks[b].cost; });
        return true;
    }

    // Call f(text index, utf8, size, chunk) for every text on `nthreads` threads; the caller releases the GIL.
    template <class F>
    void run(size_t nthreads, F f) {
        std::atomic<size_t> next{0};
        auto work = [&]() {
            std::vector<uint8_t> utf8;  // this thread's conversion buffer
            for (size_t k; (k = next.fetch_add(1)) < chunks.size();) {
                Chunk<T>& c = chunks[order[k]];
                try {
                    for (size_t i = c.lo; i < c.hi; ++i) {
                        const uint8_t* s;
                        size_t n;
                        if (!strutf8::convert(refs[i], utf8, &s, &n)) {
                            unencodable = true;
                            continue;
                        }
                        f(i, s, n, c);
                    }
                } catch (const std::bad_alloc&) {
                    oom = true;
                }
            }
        };
        // The pool's warm threads (worker_pool.h); threads of this call's own when another call holds it.
        if (nthreads > 1 && pool && pool->try_run(nthreads - 1, work)) return;
        std::vector<std::thread> own;
        try {
            for (size_t t = 1; t < nthreads; ++t) own.emplace_back(work);
        } catch (const std::system_error&) {
            // could not start more threads: the calling thread does the rest
        }
        work();
        for (auto& th : own) th.join();
    }

    // After the join, with the GIL: the exception of a failed run (false when there is none).
    bool failed(PyObject* texts) {
        if (oom) {
            PyErr_NoMemory();
            return true;
        }
        if (!unencodable) return false;
        // CPython's own UnicodeEncodeError for the first text with a lone surrogate (the caller falls back to
        // the per-text path, which applies `errors`).
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(texts); ++i) {
            const uint8_t* s;
            size_t n;
            if (!utf8_view(PyList_GET_ITEM(texts, i), &s, &n)) return true;
        }
        PyErr_SetString(PyExc_RuntimeError, "a text failed UTF-8 conversion but converts under the GIL");
        return true;
    }
};

size_t thread_count(int num_threads, size_t count) {
    return std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(std::max(num_threads, 1)), count));
}

// Encode every text into its chunk's buffer.
template <class T>
void encode_all(const bpe::Encoder* enc, Batch<T>& b, size_t nthreads) {
    b.run(nthreads, [&](size_t i, const uint8_t* s, size_t n, Chunk<T>& c) {
        T* out = c.ids.reserve_more(n);
        b.start[i] = c.ids.size();
        b.ntok[i] = enc->encode_text(s, n, out);
        c.ids.commit(b.ntok[i]);
    });
}

// itemsize 2/4: (ids, offsets): one bytearray of every text's ids in order, copied chunk by chunk, and int64
// offsets (count + 1) with text i at ids[offsets[i]:offsets[i + 1]]. Nothing per text but one offset: the caller
// makes its numpy views (a bytearray per text, then a numpy array over each, cost more than the encoding on a
// batch of short Chinese documents).
template <class T>
PyObject* encode_to_flat(const bpe::Encoder* enc, PyObject* texts, size_t nthreads) {
    Batch<T> b;
    if (!b.plan(texts, nthreads)) return nullptr;
    Py_BEGIN_ALLOW_THREADS;
    encode_all(enc, b, nthreads);
    Py_END_ALLOW_THREADS;
    if (b.failed(texts)) return nullptr;
    const size_t count = b.refs.size();
    size_t total = 0;
    for (const Chunk<T>& c : b.chunks) total += c.ids.size();
    PyObject* ids = PyByteArray_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(total * sizeof(T)));
    PyObject* offsets = PyByteArray_FromStringAndSize(nullptr, static_cast<Py_ssize_t>((count + 1) * 8));
    if (!ids || !offsets) {
        Py_XDECREF(ids);
        Py_XDECREF(offsets);
        return nullptr;
    }
    auto* w = reinterpret_cast<T*>(PyByteArray_AS_STRING(ids));
    auto* off = reinterpret_cast<int64_t*>(PyByteArray_AS_STRING(offsets));
    size_t at = 0;
    off[0] = 0;
    for (Chunk<T>& c : b.chunks) {  // chunks are consecutive runs of texts, in order
        if (c.ids.size()) std::memcpy(w + at, c.ids.data(), c.ids.size() * sizeof(T));
        for (size_t i = c.lo; i < c.hi; ++i) off[i + 1] = static_cast<int64_t>(at + b.start[i] + b.ntok[i]);
        at += c.ids.size();
        c.ids.release();
    }
    PyObject* result = PyTuple_Pack(2, ids, offsets);
    Py_DECREF(ids);
    Py_DECREF(offsets);
    return result;
}

PyObject* encode_to_lists(EncoderObject* self, PyObject* texts, size_t nthreads) {
    Batch<uint32_t> b;
    if (!b.plan(texts, nthreads)) return nullptr;
    const bpe::Encoder* enc = self->enc;
    Py_BEGIN_ALLOW_THREADS;
    encode_all(enc, b, nthreads);
    Py_END_ALLOW_THREADS;
    if (b.failed(texts)) return nullptr;
    PyObject* result = PyList_New(static_cast<Py_ssize_t>(b.refs.size()));
    if (!result) return nullptr;
    // The cyclic GC is paused while the lists are built: each new list is a tracked container, so 95k short
    // documents set off a collection every ~700 lists that rescans everything built so far (60% of a zh batch's
    // time). Lists of ints hold no cycles; collection resumes on return.
    const int gc_was_enabled = PyGC_Disable();
    bool failed = false;
    for (Chunk<uint32_t>& c : b.chunks) {
        for (size_t i = c.lo; i < c.hi && !failed; ++i) {
            PyObject* list = list_from(c.ids.data() + b.start[i], b.ntok[i], self->ints);
            failed = list == nullptr;
            if (list) PyList_SET_ITEM(result, static_cast<Py_ssize_t>(i), list);
        }
        c.ids.release();
    }
    if (gc_was_enabled) PyGC_Enable();
    if (failed) {
        Py_DECREF(result);
        return nullptr;
    }
    return result;
}

}  // namespace

// encode_batch(texts: list, num_threads, itemsize): lists of ids (itemsize 0), or (ids, offsets) of 2/4-byte ids.
PyObject* Encoder_encode_batch(EncoderObject* self, PyObject* args) {
    PyObject* texts;
    int num_threads, itemsize;
    if (!ready(self) || !PyArg_ParseTuple(args, "O!ii", &PyList_Type, &texts, &num_threads, &itemsize)) return nullptr;
    if (itemsize != 0 && itemsize != 2 && itemsize != 4) {
        PyErr_SetString(PyExc_ValueError, "itemsize must be 0 (lists), 2 or 4");
        return nullptr;
    }
    if (!check_builtin(self->enc)) return nullptr;
    const size_t nthreads = thread_count(num_threads, static_cast<size_t>(PyList_GET_SIZE(texts)));
    if (itemsize == 0) return encode_to_lists(self, texts, nthreads);
    if (itemsize == 2) return encode_to_flat<uint16_t>(self->enc, texts, nthreads);
    return encode_to_flat<uint32_t>(self->enc, texts, nthreads);
}

// count_batch(texts: list, num_threads) -> list[int]: the number of ids encode_batch would return per text.
PyObject* Encoder_count_batch(EncoderObject* self, PyObject* args) {
    PyObject* texts;
    int num_threads;
    if (!ready(self) || !PyArg_ParseTuple(args, "O!i", &PyList_Type, &texts, &num_threads)) return nullptr;
    if (!check_builtin(self->enc)) return nullptr;
    const size_t nthreads = thread_count(num_threads, static_cast<size_t>(PyList_GET_SIZE(texts)));
    Batch<uint32_t> b;  // no ids are kept: only b.ntok is filled
    if (!b.plan(texts, nthreads)) return nullptr;
    const bpe::Encoder* enc = self->enc;
    Py_BEGIN_ALLOW_THREADS;
    b.run(nthreads, [&](size_t i, const uint8_t* s, size_t n, Chunk<uint32_t>&) { b.ntok[i] = enc->count_text(s, n); });
    Py_END_ALLOW_THREADS;
    if (b.failed(texts)) return nullptr;
    PyObject* result = PyList_New(static_cast<Py_ssize_t>(b.refs.size()));
    if (!result) return nullptr;
    for (size_t i = 0; i < b.refs.size(); ++i) {
        PyObject* v = PyLong_FromSize_t(b.ntok[i]);
        if (!v) {
            Py_DECREF(result);
            return nullptr;
        }
        PyList_SET_ITEM(result, static_cast<Py_ssize_t>(i), v);
    }
    return result;
}

}  // namespace encoder_py
