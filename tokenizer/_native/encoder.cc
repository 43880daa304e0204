// tokenizer._native._encoder: the CPython binding of the BPE encoder in bpe_encoder.h (C API, C++17).
//
// Output goes straight into the caller's buffer: a bytearray of uint16/uint32 ids (viewed by numpy without a copy;
// sized for the worst case, then shrunk in place) or, for lists, a per-thread scratch vector turned into a list of
// pre-built int objects. The GIL is released while encoding; encode_batch runs std::threads that pull texts from an
// atomic counter, largest first.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "bpe_encoder.h"
#include "pybuffer.h"
#include "utf8.h"

namespace {

using namespace bpe;

PyObject* invalid_utf8_error = nullptr;  // shardstore.errors.InvalidUtf8Error, looked up at module init

struct EncoderObject {
    PyObject_HEAD Encoder* enc;
    // One int object per id, built once: lists of ids are filled with INCREFs instead of allocations
    // (building the result list was a third of the time of `encode` on code).
    std::vector<PyObject*>* ints;
};

void free_ints(EncoderObject* self) {
    if (!self->ints) return;
    for (PyObject* o : *self->ints) Py_DECREF(o);
    delete self->ints;
    self->ints = nullptr;
}

// UTF-8 view of a str (cached by CPython, no copy for ASCII) or of a bytes object. Sets an exception on failure.
bool utf8_view(PyObject* obj, const uint8_t** data, size_t* size) {
    if (PyUnicode_Check(obj)) {
        Py_ssize_t n = 0;
        const char* p = PyUnicode_AsUTF8AndSize(obj, &n);
        if (!p) return false;
        *data = reinterpret_cast<const uint8_t*>(p);
        *size = static_cast<size_t>(n);
        return true;
    }
    if (PyBytes_Check(obj)) {
        *data = reinterpret_cast<const uint8_t*>(PyBytes_AS_STRING(obj));
        *size = static_cast<size_t>(PyBytes_GET_SIZE(obj));
        return true;
    }
    PyErr_Format(PyExc_TypeError, "expected str or bytes, got %.100s", Py_TYPE(obj)->tp_name);
    return false;
}

PyObject* list_from(const uint32_t* ids, size_t m, const std::vector<PyObject*>* ints = nullptr) {
    PyObject* list = PyList_New(static_cast<Py_ssize_t>(m));
    if (!list) return nullptr;
    if (ints) {
        for (size_t i = 0; i < m; ++i) {
            PyObject* v = (*ints)[ids[i]];
            Py_INCREF(v);
            PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), v);
        }
        return list;
    }
    for (size_t i = 0; i < m; ++i) {
        PyObject* v = PyLong_FromUnsignedLong(ids[i]);
        if (!v) {
            Py_DECREF(list);
            return nullptr;
        }
        PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), v);
    }
    return list;
}

bool check_builtin(const Encoder* enc) {
    if (enc->pattern() < 0) {
        PyErr_SetString(PyExc_ValueError, "custom pattern: split with the regex package and call encode_pieces");
        return false;
    }
    return true;
}

// Encode into a new bytearray of `itemsize`-byte ids, sized for the worst case then shrunk (no copy for large ones).
PyObject* encode_into_bytearray(const Encoder* enc, const uint8_t* s, size_t n, int itemsize) {
    PyObject* ba = PyByteArray_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(n * itemsize));
    if (!ba) return nullptr;
    void* buf = PyByteArray_AS_STRING(ba);
    size_t m = 0;
    Py_BEGIN_ALLOW_THREADS;
    m = itemsize == 2 ? enc->encode_text(s, n, static_cast<uint16_t*>(buf)) : enc->encode_text(s, n, static_cast<uint32_t*>(buf));
    Py_END_ALLOW_THREADS;
    if (PyByteArray_Resize(ba, static_cast<Py_ssize_t>(m * itemsize)) < 0) {
        Py_DECREF(ba);
        return nullptr;
    }
    return ba;
}

int Encoder_init(EncoderObject* self, PyObject* args, PyObject*) {
    PyObject* tokens;
    unsigned int num_ordinary;
    int pattern;
    PyObject* merges_obj = Py_None;
    int piece_lookup = 1;
    if (!PyArg_ParseTuple(args, "O!Ii|Op", &PyList_Type, &tokens, &num_ordinary, &pattern, &merges_obj, &piece_lookup))
        return -1;
    Py_ssize_t count = PyList_GET_SIZE(tokens);
    if (pattern < -1 || pattern >= kPretokNumIds) {
        PyErr_Format(PyExc_ValueError, "unknown native pattern id %d", pattern);
        return -1;
    }
    if (count < 256 || num_ordinary < 256 || num_ordinary > static_cast<unsigned int>(count) || count >= 0x7FFFFFFF) {
        PyErr_SetString(PyExc_ValueError, "tokens must hold the 256 byte tokens and num_ordinary ids");
        return -1;
    }
    std::vector<std::string> toks;
    toks.reserve(count);
    int byte_count[256] = {};
    for (Py_ssize_t i = 0; i < count; ++i) {
        PyObject* t = PyList_GET_ITEM(tokens, i);
        if (!PyBytes_Check(t) || PyBytes_GET_SIZE(t) > 0xFFFFFF) {
            PyErr_Format(PyExc_ValueError, "token %zd must be bytes (empty = unassigned id)", i);
            return -1;
        }
        toks.emplace_back(PyBytes_AS_STRING(t), PyBytes_GET_SIZE(t));
        if (i < static_cast<Py_ssize_t>(num_ordinary) && toks.back().size() == 1)
            ++byte_count[static_cast<uint8_t>(toks.back()[0])];
    }
    for (int b = 0; b < 256; ++b) {
        if (byte_count[b] != 1) {
            PyErr_Format(PyExc_ValueError, "the byte %d must be exactly one ordinary token, found %d", b, byte_count[b]);
            return -1;
        }
    }
    std::vector<std::array<uint32_t, 3>> merges;
    if (merges_obj != Py_None) {
        PyObject* seq = PySequence_Fast(merges_obj, "merges must be a sequence of (left, right, result) ids");
        if (!seq) return -1;
        Py_ssize_t nm = PySequence_Fast_GET_SIZE(seq);
        merges.reserve(static_cast<size_t>(nm));
        for (Py_ssize_t i = 0; i < nm; ++i) {
            unsigned int a, b, r;
            if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "III", &a, &b, &r)) {
                Py_DECREF(seq);
                return -1;
            }
            if (a >= num_ordinary || b >= num_ordinary || r >= num_ordinary) {
                PyErr_Format(PyExc_ValueError, "merge %zd refers to an id outside [0, %u)", i, num_ordinary);
                Py_DECREF(seq);
                return -1;
            }
            merges.push_back({a, b, r});
        }
        Py_DECREF(seq);
        if (merges.empty()) {
            PyErr_SetString(PyExc_ValueError, "an explicit merge list must not be empty (pass None)");
            return -1;
        }
    }
    delete self->enc;
    self->enc = nullptr;
    free_ints(self);
    try {
        self->enc = new Encoder(std::move(toks), num_ordinary, pattern, merges, piece_lookup != 0);
        self->ints = new std::vector<PyObject*>();
        self->ints->reserve(static_cast<size_t>(count));
    } catch (const std::bad_alloc&) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; ++i) {
        PyObject* v = PyLong_FromSsize_t(i);
        if (!v) return -1;
        self->ints->push_back(v);
    }
    return 0;
}

void Encoder_dealloc(EncoderObject* self) {
    delete self->enc;
    free_ints(self);
    Py_TYPE(self)->tp_free(reinterpret_cast<PyObject*>(self));
}

bool ready(EncoderObject* self) {
    if (!self->enc) PyErr_SetString(PyExc_RuntimeError, "Encoder not initialized");
    return self->enc != nullptr;
}

PyObject* Encoder_encode(EncoderObject* self, PyObject* text) {
    const uint8_t* s;
    size_t n;
    if (!ready(self) || !check_builtin(self->enc) || !utf8_view(text, &s, &n)) return nullptr;
    Scratch& scratch = thread_scratch();
    std::vector<uint32_t> out;
    out.swap(scratch.out);  // reuse this thread's buffer without holding a reference while the GIL is released
    size_t m = 0;
    try {
        if (out.size() < n) out.resize(n);
    } catch (const std::bad_alloc&) {
        return PyErr_NoMemory();
    }
    const Encoder* enc = self->enc;
    Py_BEGIN_ALLOW_THREADS;
    m = enc->encode_text(s, n, out.data());
    Py_END_ALLOW_THREADS;
    PyObject* list = list_from(out.data(), m, self->ints);
    if (out.capacity() <= (1u << 20)) out.swap(scratch.out);  // keep small buffers for the next call
    return list;
}

PyObject* Encoder_encode_to_buffer(EncoderObject* self, PyObject* args) {
    PyObject* text;
    int itemsize;
    const uint8_t* s;
    size_t n;
    if (!ready(self) || !PyArg_ParseTuple(args, "Oi", &text, &itemsize)) return nullptr;
    if (itemsize != 2 && itemsize != 4) {
        PyErr_SetString(PyExc_ValueError, "itemsize must be 2 or 4");
        return nullptr;
    }
    if (!check_builtin(self->enc) || !utf8_view(text, &s, &n)) return nullptr;
    return encode_into_bytearray(self->enc, s, n, itemsize);
}

// A run of consecutive texts of encode_batch, encoded by one thread into one buffer (lists) or their bytearrays.
struct Chunk {
    size_t lo, hi, bytes;
    std::vector<uint32_t> ids;
};
constexpr size_t kDocOverhead = 64;  // bytes a text "costs" beyond its length, for splitting work by cost

PyObject* Encoder_encode_batch(EncoderObject* self, PyObject* args) {
    PyObject* texts;
    int num_threads, itemsize;
    if (!ready(self) || !PyArg_ParseTuple(args, "O!ii", &PyList_Type, &texts, &num_threads, &itemsize)) return nullptr;
    if (itemsize != 0 && itemsize != 2 && itemsize != 4) {
        PyErr_SetString(PyExc_ValueError, "itemsize must be 0 (lists), 2 or 4");
        return nullptr;
    }
    if (!check_builtin(self->enc)) return nullptr;
    const size_t count = static_cast<size_t>(PyList_GET_SIZE(texts));
    std::vector<const uint8_t*> data(count);
    std::vector<size_t> sizes(count), ntok(count, 0);
    std::vector<void*> bufs(count, nullptr);
    PyObject* result = PyList_New(static_cast<Py_ssize_t>(count));
    if (!result) return nullptr;
    for (size_t i = 0; i < count; ++i) {
        if (!utf8_view(PyList_GET_ITEM(texts, i), &data[i], &sizes[i])) {
            Py_DECREF(result);
            return nullptr;
        }
        if (itemsize) {
            PyObject* ba = PyByteArray_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(sizes[i] * itemsize));
            if (!ba) {
                Py_DECREF(result);
                return nullptr;
            }
            PyList_SET_ITEM(result, static_cast<Py_ssize_t>(i), ba);
            bufs[i] = PyByteArray_AS_STRING(ba);
        }
    }
    const Encoder* enc = self->enc;
    size_t nthreads = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(std::max(num_threads, 1)), count));
    // Work is handed out in chunks of consecutive texts of about equal bytes (not one text at a time: 95k short
    // documents cost 95k atomic increments, allocations and frees), largest chunks first (LPT: one big document
    // handed out last would leave the other threads idle). A chunk's ids go to one buffer; lists are built from it
    // after the join.
    size_t total = 0;
    for (size_t i = 0; i < count; ++i) total += sizes[i] + kDocOverhead;
    const size_t chunk_bytes = std::clamp<size_t>(total / (nthreads * 16), 4096, 1 << 18);
    std::vector<Chunk> chunks;
    for (size_t i = 0, lo = 0, acc = 0; i < count; ++i) {
        acc += sizes[i] + kDocOverhead;
        if (acc >= chunk_bytes || i + 1 == count) {
            chunks.push_back(Chunk{lo, i + 1, acc, {}});
            lo = i + 1;
            acc = 0;
        }
    }
    std::vector<size_t> order(chunks.size()), start(count, 0);
    for (size_t c = 0; c < chunks.size(); ++c) order[c] = c;
    std::stable_sort(order.begin(), order.end(),
                     [&chunks](size_t a, size_t b) { return chunks[a].bytes > chunks[b].bytes; });
    std::atomic<size_t> next{0};
    std::atomic<bool> oom{false};
    auto work = [&]() {
        for (size_t k; (k = next.fetch_add(1)) < chunks.size();) {
            Chunk& c = chunks[order[k]];
            try {
                if (itemsize == 0) {
                    size_t need = 0;
                    for (size_t i = c.lo; i < c.hi; ++i) need += sizes[i];
                    c.ids.resize(need);
                    for (size_t i = c.lo, off = 0; i < c.hi; ++i) {
                        start[i] = off;
                        ntok[i] = enc->encode_text(data[i], sizes[i], c.ids.data() + off);
                        off += ntok[i];
                    }
                    continue;
                }
                for (size_t i = c.lo; i < c.hi; ++i) {
                    if (itemsize == 2) {
                        ntok[i] = enc->encode_text(data[i], sizes[i], static_cast<uint16_t*>(bufs[i]));
                    } else {
                        ntok[i] = enc->encode_text(data[i], sizes[i], static_cast<uint32_t*>(bufs[i]));
                    }
                }
            } catch (const std::bad_alloc&) {
                oom = true;
            }
        }
    };
    Py_BEGIN_ALLOW_THREADS;
    std::vector<std::thread> pool;
    try {
        for (size_t t = 1; t < nthreads; ++t) pool.emplace_back(work);
    } catch (const std::system_error&) {
        // could not start more threads: the calling thread does the rest
    }
    work();
    for (auto& th : pool) th.join();
    Py_END_ALLOW_THREADS;
    if (oom) {
        Py_DECREF(result);
        return PyErr_NoMemory();
    }
    if (itemsize) {
        for (size_t i = 0; i < count; ++i) {
            if (PyByteArray_Resize(PyList_GET_ITEM(result, i), static_cast<Py_ssize_t>(ntok[i] * itemsize)) < 0) {
                Py_DECREF(result);
                return nullptr;
            }
        }
        return result;
    }
    // The cyclic GC is paused while the lists are built: each new list is a tracked container, so 95k short
    // documents set off a collection every ~700 lists that rescans everything built so far (60% of a zh batch's
    // time). Lists of ints hold no cycles; collection resumes on return.
    const int gc_was_enabled = PyGC_Disable();
    bool failed = false;
    for (Chunk& c : chunks) {
        for (size_t i = c.lo; i < c.hi && !failed; ++i) {
            PyObject* list = list_from(c.ids.data() + start[i], ntok[i], self->ints);
            failed = list == nullptr;
            if (list) PyList_SET_ITEM(result, static_cast<Py_ssize_t>(i), list);
        }
        std::vector<uint32_t>().swap(c.ids);
    }
    if (gc_was_enabled) PyGC_Enable();
    if (failed) {
        Py_DECREF(result);
        return nullptr;
    }
    return result;
}

// Many texts packed in one buffer (an Arrow string array's data, a block of JSON lines unescaped in place): text i is
// data[starts[i]:ends[i]]. Returns (ids, counts): one bytearray of `itemsize`-byte ids of all texts in order, each
// followed by `append_id` when it is >= 0, and a bytearray of int64 ids per text. No Python object per text, GIL
// released; every text is checked to be valid UTF-8 first (ValueError naming the text and byte otherwise).
PyObject* Encoder_encode_packed(EncoderObject* self, PyObject* args) {
    PyObject *data_obj, *starts_obj, *ends_obj;
    int itemsize;
    long long append_id;
    if (!ready(self) || !PyArg_ParseTuple(args, "OOOiL", &data_obj, &starts_obj, &ends_obj, &itemsize, &append_id))
        return nullptr;
    if (itemsize != 2 && itemsize != 4) {
        PyErr_SetString(PyExc_ValueError, "itemsize must be 2 or 4");
        return nullptr;
    }
    if (!check_builtin(self->enc)) return nullptr;
    const long long limit = itemsize == 2 ? 0x10000LL : 0x100000000LL;
    if (append_id >= limit || append_id < -1) {
        PyErr_Format(PyExc_ValueError, "append_id %lld does not fit %d-byte ids", append_id, itemsize);
        return nullptr;
    }
    pybuf::View data, starts, ends;
    if (!data.get(data_obj, PyBUF_SIMPLE) || !starts.get(starts_obj, PyBUF_SIMPLE) || !ends.get(ends_obj, PyBUF_SIMPLE))
        return nullptr;
    if (starts.len() % 8 || starts.len() != ends.len()) {
        PyErr_SetString(PyExc_ValueError, "starts and ends must be int64 buffers of the same length");
        return nullptr;
    }
    const size_t count = static_cast<size_t>(starts.len() / 8);
    const size_t size = static_cast<size_t>(data.len());
    const auto* s = static_cast<const uint8_t*>(data.buf());
    std::vector<int64_t> lo(count), hi(count);
    if (count) {
        std::memcpy(lo.data(), starts.buf(), count * 8);
        std::memcpy(hi.data(), ends.buf(), count * 8);
    }
    size_t worst = 0;
    for (size_t i = 0; i < count; ++i) {
        if (lo[i] < 0 || lo[i] > hi[i] || static_cast<uint64_t>(hi[i]) > size) {
            PyErr_Format(PyExc_ValueError, "text %zu spans [%lld, %lld), outside the %zu-byte buffer", i,
                         static_cast<long long>(lo[i]), static_cast<long long>(hi[i]), size);
            return nullptr;
        }
        worst += static_cast<size_t>(hi[i] - lo[i]) + (append_id >= 0 ? 1 : 0);
    }
    size_t bad_text = count, bad_at = 0;
    Py_BEGIN_ALLOW_THREADS;
    for (size_t i = 0; i < count && bad_text == count; ++i) {
        const size_t n = static_cast<size_t>(hi[i] - lo[i]);
        const size_t at = utf8::first_invalid(s + lo[i], n);
        if (at != n) bad_text = i, bad_at = at;
    }
    Py_END_ALLOW_THREADS;
    if (bad_text != count) {
        // shardstore.errors.InvalidUtf8Error(message, index, offset): the caller tests the type, not the message
        PyObject* exc_args = Py_BuildValue("(Nnn)", PyUnicode_FromFormat("text %zu is not valid UTF-8 at byte %zu",
                                                                           bad_text, bad_at),
                                           static_cast<Py_ssize_t>(bad_text), static_cast<Py_ssize_t>(bad_at));
        if (exc_args) {
            PyErr_SetObject(invalid_utf8_error, exc_args);
            Py_DECREF(exc_args);
        }
        return nullptr;
    }
    // Ids go to a per-thread scratch buffer, then are copied out at their exact size: allocating the worst case
    // (2-4x the text) per call and shrinking it made glibc map and unmap the block every call, a page fault per
    // 4 KiB of output (~30% more kernel time than the copy). Calls whose worst case is over 32 MiB allocate it.
    constexpr size_t kScratchCap = size_t{32} << 20;
    thread_local std::vector<uint8_t> scratch;
    const size_t worst_bytes = worst * static_cast<size_t>(itemsize);
    PyObject* ids = nullptr;
    uint8_t* out = nullptr;
    if (worst_bytes <= kScratchCap) {
        try {
            if (scratch.size() < worst_bytes) scratch.resize(std::max(worst_bytes, size_t{1} << 20));
        } catch (const std::bad_alloc&) {
            return PyErr_NoMemory();
        }
        out = scratch.data();
    } else {
        ids = PyByteArray_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(worst_bytes));
        if (!ids) return nullptr;
        out = reinterpret_cast<uint8_t*>(PyByteArray_AS_STRING(ids));
    }
    PyObject* counts = PyByteArray_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(count * 8));
    if (!counts) {
        Py_XDECREF(ids);
        return nullptr;
    }
    auto* cnt = reinterpret_cast<int64_t*>(PyByteArray_AS_STRING(counts));
    const Encoder* enc = self->enc;
    size_t m = 0;
    bool oom = false;
    Py_BEGIN_ALLOW_THREADS;
    try {
        for (size_t i = 0; i < count; ++i) {
            const size_t n = static_cast<size_t>(hi[i] - lo[i]);
            size_t k;
            if (itemsize == 2) {
                auto* o = reinterpret_cast<uint16_t*>(out) + m;
                k = enc->encode_text(s + lo[i], n, o);
                if (append_id >= 0) o[k++] = static_cast<uint16_t>(append_id);
            } else {
                auto* o = reinterpret_cast<uint32_t*>(out) + m;
                k = enc->encode_text(s + lo[i], n, o);
                if (append_id >= 0) o[k++] = static_cast<uint32_t>(append_id);
            }
            cnt[i] = static_cast<int64_t>(k);
            m += k;
        }
    } catch (const std::bad_alloc&) {
        oom = true;
    }
    Py_END_ALLOW_THREADS;
    const auto nbytes = static_cast<Py_ssize_t>(m * static_cast<size_t>(itemsize));
    if (!oom) {
        if (ids == nullptr) {
            ids = PyByteArray_FromStringAndSize(reinterpret_cast<const char*>(out), nbytes);
        } else if (PyByteArray_Resize(ids, nbytes) < 0) {
            Py_CLEAR(ids);
        }
    }
    if (oom || ids == nullptr) {
        Py_XDECREF(ids);
        Py_DECREF(counts);
        return oom ? PyErr_NoMemory() : nullptr;
    }
    PyObject* result = PyTuple_Pack(2, ids, counts);
    Py_DECREF(ids);
    Py_DECREF(counts);
    return result;
}

PyObject* Encoder_encode_pieces(EncoderObject* self, PyObject* pieces) {
    if (!ready(self)) return nullptr;
    if (!PyList_Check(pieces)) {
        PyErr_SetString(PyExc_TypeError, "pieces must be a list of bytes");
        return nullptr;
    }
    std::vector<uint32_t> out;
    Py_ssize_t count = PyList_GET_SIZE(pieces);
    for (Py_ssize_t i = 0; i < count; ++i) {
        PyObject* p = PyList_GET_ITEM(pieces, i);
        if (!PyBytes_Check(p)) {
            PyErr_Format(PyExc_TypeError, "piece %zd must be bytes", i);
            return nullptr;
        }
        size_t n = static_cast<size_t>(PyBytes_GET_SIZE(p));
        if (n == 0) continue;
        size_t at = out.size();
        out.resize(at + n);
        size_t m = self->enc->encode_piece(reinterpret_cast<const uint8_t*>(PyBytes_AS_STRING(p)), n, out.data() + at);
        out.resize(at + m);
    }
    return list_from(out.data(), out.size(), self->ints);
}

PyObject* Encoder_decode_bytes(EncoderObject* self, PyObject* ids) {
    if (!ready(self)) return nullptr;
    PyObject* seq = PySequence_Fast(ids, "ids must be a sequence of ints");
    if (!seq) return nullptr;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject** items = PySequence_Fast_ITEMS(seq);
    const Encoder* enc = self->enc;
    const uint32_t vocab = enc->vocab_size();
    std::vector<uint32_t> tmp(static_cast<size_t>(count));
    size_t total = 0;
    for (Py_ssize_t i = 0; i < count; ++i) {
        if (!PyLong_Check(items[i])) {
            PyErr_Format(PyExc_TypeError, "id at position %zd is %.100s, not int", i, Py_TYPE(items[i])->tp_name);
            Py_DECREF(seq);
            return nullptr;
        }
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(items[i], &overflow);
        if (overflow || v < 0 || v >= static_cast<long long>(vocab) || enc->len(static_cast<uint32_t>(v)) == 0) {
            PyObject* repr = PyObject_Repr(items[i]);
            PyErr_Format(PyExc_IndexError, "id %U at position %zd is outside [0, %u) or unassigned", repr, i, vocab);
            Py_XDECREF(repr);
            Py_DECREF(seq);
            return nullptr;
        }
        tmp[i] = static_cast<uint32_t>(v);
        total += enc->len(tmp[i]);
    }
    Py_DECREF(seq);
    PyObject* out = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(total));
    if (!out) return nullptr;
    char* w = PyBytes_AS_STRING(out);
    for (uint32_t id : tmp) {
        std::memcpy(w, enc->ptr(id), enc->len(id));
        w += enc->len(id);
    }
    return out;
}

// Piece end offsets of the built-in pre-tokenizer (for tests and tools).
PyObject* Encoder_split(EncoderObject* self, PyObject* text) {
    const uint8_t* s;
    size_t n;
    if (!ready(self) || !check_builtin(self->enc) || !utf8_view(text, &s, &n)) return nullptr;
    std::vector<uint32_t> ends;
    bool ok = pretok_with(self->enc->pattern(), [&](auto next) {
        for (size_t pos = 0; pos < n;) {
            size_t e = next(s, n, pos);
            if (e <= pos || e > n) {
                PyErr_Format(PyExc_RuntimeError, "pre-tokenizer returned %zu at %zu of %zu", e, pos, n);
                return false;
            }
            ends.push_back(static_cast<uint32_t>(e));
            pos = e;
        }
        return true;
    });
    if (!ok) return nullptr;
    return list_from(ends.data(), ends.size());
}

PyObject* Encoder_pattern_id(EncoderObject* self, void*) {
    if (!ready(self)) return nullptr;
    return PyLong_FromLong(self->enc->pattern());
}

PyObject* module_char_class(PyObject*, PyObject* args) {
    unsigned long cp;
    int table = pretok_tables::kDefaultTable;
    if (!PyArg_ParseTuple(args, "k|i", &cp, &table)) return nullptr;
    if (cp >= 0x110000) {
        PyErr_SetString(PyExc_ValueError, "code point out of range");
        return nullptr;
    }
    if (table < 0 || table >= pretok_tables::kNumTables) {
        PyErr_Format(PyExc_ValueError, "unknown Unicode table id %d", table);
        return nullptr;
    }
    return PyLong_FromLong(pretok_detail::char_class(static_cast<uint32_t>(cp), table));
}

PyMethodDef Encoder_methods[] = {
    {"encode", reinterpret_cast<PyCFunction>(Encoder_encode), METH_O, "encode(text) -> list[int]"},
    {"encode_to_buffer", reinterpret_cast<PyCFunction>(Encoder_encode_to_buffer), METH_VARARGS,
     "encode_to_buffer(text, itemsize) -> bytearray of native-endian uint16/uint32 ids"},
    {"encode_batch", reinterpret_cast<PyCFunction>(Encoder_encode_batch), METH_VARARGS,
     "encode_batch(texts: list, num_threads, itemsize) -> list of lists (itemsize 0) or bytearrays"},
    {"encode_packed", reinterpret_cast<PyCFunction>(Encoder_encode_packed), METH_VARARGS,
     "encode_packed(data, starts, ends, itemsize, append_id) -> (ids bytearray, int64 counts bytearray)"},
    {"encode_pieces", reinterpret_cast<PyCFunction>(Encoder_encode_pieces), METH_O,
     "encode_pieces(pieces: list[bytes]) -> list[int] (pieces pre-split by a custom pattern)"},
    {"decode_bytes", reinterpret_cast<PyCFunction>(Encoder_decode_bytes), METH_O, "decode_bytes(ids) -> bytes"},
    {"split", reinterpret_cast<PyCFunction>(Encoder_split), METH_O, "split(text) -> piece end offsets (bytes)"},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef Encoder_getset[] = {
    {"pattern_id", reinterpret_cast<getter>(Encoder_pattern_id), nullptr, "native pattern id, -1 = custom", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyTypeObject EncoderType = {PyVarObject_HEAD_INIT(nullptr, 0)};

PyMethodDef module_methods[] = {
    {"char_class", module_char_class, METH_VARARGS,
     "char_class(cp, table=default) -> 0 other, 1 letter, 2 number, 3 whitespace (table: index in UNICODE_VERSIONS)"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef encoder_module = {PyModuleDef_HEAD_INIT, "_encoder", "Native BPE encoder.", -1, module_methods};

}  // namespace

PyMODINIT_FUNC PyInit__encoder(void) {
    PyObject* errors = PyImport_ImportModule("shardstore.errors");
    if (!errors) return nullptr;
    invalid_utf8_error = PyObject_GetAttrString(errors, "InvalidUtf8Error");  // a reference kept for the process
    Py_DECREF(errors);
    if (!invalid_utf8_error) return nullptr;
    EncoderType.tp_name = "tokenizer._native._encoder.Encoder";
    EncoderType.tp_basicsize = sizeof(EncoderObject);
    EncoderType.tp_flags = Py_TPFLAGS_DEFAULT;
    EncoderType.tp_doc =
        "Encoder(tokens: list[bytes], num_ordinary: int, pattern_id: int, merges=None, piece_lookup=True)";
    EncoderType.tp_new = PyType_GenericNew;
    EncoderType.tp_init = reinterpret_cast<initproc>(Encoder_init);
    EncoderType.tp_dealloc = reinterpret_cast<destructor>(Encoder_dealloc);
    EncoderType.tp_methods = Encoder_methods;
    EncoderType.tp_getset = Encoder_getset;
    if (PyType_Ready(&EncoderType) < 0) return nullptr;
    PyObject* m = PyModule_Create(&encoder_module);
    if (!m) return nullptr;
    Py_INCREF(&EncoderType);
    PyObject* versions = PyTuple_New(pretok_tables::kNumTables);
    if (!versions) {
        Py_DECREF(m);
        return nullptr;
    }
    for (int i = 0; i < pretok_tables::kNumTables; ++i) {
        PyObject* v = PyUnicode_FromString(pretok_tables::kTableVersions[i]);
        if (!v) {
            Py_DECREF(versions);
            Py_DECREF(m);
            return nullptr;
        }
        PyTuple_SET_ITEM(versions, i, v);
    }
    if (PyModule_AddObject(m, "UNICODE_VERSIONS", versions) < 0) {
        Py_DECREF(versions);
        Py_DECREF(m);
        return nullptr;
    }
    if (PyModule_AddIntConstant(m, "DEFAULT_TABLE", pretok_tables::kDefaultTable) < 0) {
        Py_DECREF(m);
        return nullptr;
    }
    if (PyModule_AddObject(m, "Encoder", reinterpret_cast<PyObject*>(&EncoderType)) < 0) {
        Py_DECREF(&EncoderType);
        Py_DECREF(m);
        return nullptr;
    }
    return m;
}
