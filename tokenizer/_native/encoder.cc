// tokenizer._native._encoder: the CPython binding of the BPE encoder in bpe_encoder.h (C API, C++17). This file:
// the module, the Encoder type and its single-text methods; batches are in encoder_batch.cc, packed texts in
// encoder_packed.cc (encoder_object.h lists what they share).
//
// Output goes straight into the caller's buffer: a bytearray of uint16/uint32 ids (viewed by numpy without a copy;
// sized for the worst case, then shrunk in place) or, for lists, a per-thread scratch vector turned into a list of
// pre-built int objects; `count` keeps no ids at all. The GIL is released while encoding.
#include "encoder_object.h"
#include "str_utf8.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace encoder_py {

using namespace bpe;

PyObject* invalid_utf8_error = nullptr;

namespace {

void free_ints(EncoderObject* self) {
    if (!self->ints) return;
    for (PyObject* o : *self->ints) Py_DECREF(o);
    delete self->ints;
    self->ints = nullptr;
}

}  // namespace

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

PyObject* list_from(const uint32_t* ids, size_t m, const std::vector<PyObject*>* ints) {
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

bool ready(EncoderObject* self) {
    if (!self->enc) PyErr_SetString(PyExc_RuntimeError, "Encoder not initialized");
    return self->enc != nullptr;
}

namespace {

// Encode into a new bytearray of `itemsize`-byte ids. Texts up to 8 MiB are encoded into a per-thread grow-only
// scratch buffer, then copied out at their exact size (as in encode_packed: a worst-case bytearray of 4 bytes per
// input byte, shrunk afterwards, cost a page fault per 4 KiB of output every call); larger ones use the worst case.
PyObject* encode_into_bytearray(const Encoder* enc, const uint8_t* s, size_t n, int itemsize) {
    constexpr size_t kScratchText = size_t{8} << 20;
    thread_local std::vector<uint32_t> scratch;  // 4-byte units, used as uint16 for itemsize 2
    const bool use_scratch = n <= kScratchText;
    PyObject* ba = nullptr;
    void* buf;
    if (use_scratch) {
        try {
            if (scratch.size() < n) scratch.resize(std::max(n, size_t{1} << 16));
        } catch (const std::bad_alloc&) {
            return PyErr_NoMemory();
        }
        buf = scratch.data();
    } else {
        ba = PyByteArray_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(n * itemsize));
        if (!ba) return nullptr;
        buf = PyByteArray_AS_STRING(ba);
    }
    size_t m = 0;
    bool oom = false;
    Py_BEGIN_ALLOW_THREADS;
    try {
        m = itemsize == 2 ? enc->encode_text(s, n, static_cast<uint16_t*>(buf))
                          : enc->encode_text(s, n, static_cast<uint32_t*>(buf));
    } catch (const std::bad_alloc&) {
        oom = true;
    }
    Py_END_ALLOW_THREADS;
    if (oom) {
        Py_XDECREF(ba);
        return PyErr_NoMemory();
    }
    const auto nbytes = static_cast<Py_ssize_t>(m * static_cast<size_t>(itemsize));
    if (use_scratch) return PyByteArray_FromStringAndSize(static_cast<const char*>(buf), nbytes);
    if (PyByteArray_Resize(ba, nbytes) < 0) {
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

PyObject* Encoder_encode(EncoderObject* self, PyObject* text) {
    strutf8::Utf8Arg arg;
    if (!ready(self) || !check_builtin(self->enc) || !arg.init(text)) return nullptr;
    const uint8_t* s = arg.data();
    const size_t n = arg.size();
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
    if (!ready(self) || !PyArg_ParseTuple(args, "Oi", &text, &itemsize)) return nullptr;
    if (itemsize != 2 && itemsize != 4) {
        PyErr_SetString(PyExc_ValueError, "itemsize must be 2 or 4");
        return nullptr;
    }
    strutf8::Utf8Arg arg;
    if (!check_builtin(self->enc) || !arg.init(text)) return nullptr;
    return encode_into_bytearray(self->enc, arg.data(), arg.size(), itemsize);
}

// The number of ids `encode` would return, without building them.
PyObject* Encoder_count(EncoderObject* self, PyObject* text) {
    strutf8::Utf8Arg arg;
    if (!ready(self) || !check_builtin(self->enc) || !arg.init(text)) return nullptr;
    const uint8_t* s = arg.data();
    const size_t n = arg.size();
    const Encoder* enc = self->enc;
    size_t m = 0;
    bool oom = false;
    Py_BEGIN_ALLOW_THREADS;
    try {
        m = enc->count_text(s, n);
    } catch (const std::bad_alloc&) {
        oom = true;
    }
    Py_END_ALLOW_THREADS;
    return oom ? PyErr_NoMemory() : PyLong_FromSize_t(m);
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
    strutf8::Utf8Arg arg;
    if (!ready(self) || !check_builtin(self->enc) || !arg.init(text)) return nullptr;
    const uint8_t* s = arg.data();
    const size_t n = arg.size();
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
     "encode_batch(texts: list, num_threads, itemsize) -> list of lists (itemsize 0) or (ids, int64 offsets)"},
    {"count", reinterpret_cast<PyCFunction>(Encoder_count), METH_O, "count(text) -> int: len(encode(text))"},
    {"count_batch", reinterpret_cast<PyCFunction>(Encoder_count_batch), METH_VARARGS,
     "count_batch(texts: list, num_threads) -> list[int]: len(ids) per text"},
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
}  // namespace encoder_py

PyMODINIT_FUNC PyInit__encoder(void) {
    using namespace encoder_py;
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
