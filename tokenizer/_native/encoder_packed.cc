// encode_packed: many UTF-8 texts side by side in one buffer (an Arrow string array, a block of JSON lines), encoded
// with the GIL released into one output buffer; no Python object per text.
#include <algorithm>
#include <cstring>
#include <vector>

#include "encoder_object.h"
#include "pybuffer.h"
#include "utf8.h"

namespace encoder_py {

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
    const bpe::Encoder* enc = self->enc;
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

}  // namespace encoder_py
