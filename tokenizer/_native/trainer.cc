// tokenizer._native._trainer: the native half of BPE training (CPython C API, C++17).
//
// PieceCounter  -- unique pre-tokenized pieces -> u64 counts.  Memory is bounded by the number of unique pieces,
//                  never by corpus size.  `count_texts` splits a batch of str with the hand-written pre-tokenizer
//                  (pretok.h) on N threads with the GIL released (train_count.h); the counts never depend on the
//                  thread count.  `add` takes already-split pieces (custom regex patterns are split in Python).
// BpeMerger     -- merge learning (train_merge.h); `step(n, min_frequency)` releases the GIL while it works, so the
//                  caller can drive a progress bar between steps.  Its binding is in trainer_merger.cc.
// Lone surrogates in input str (not encodable as UTF-8) are counted as U+FFFD, and counted in `stats()`.
#include "trainer_object.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "train_count.h"
#include "train_maps.h"

namespace trainer_py {

PyTypeObject PieceCounterType = {PyVarObject_HEAD_INIT(nullptr, 0)};

namespace {

using train::kShards;
using train::shard_of;
using train::Shards;

// Appends the UTF-8 encoding of `text` to `out`, with every lone surrogate written as U+FFFD.  Returns how many
// surrogates were replaced.  Only used for the rare str that PyUnicode_AsUTF8AndSize rejects.
size_t utf8_replacing_surrogates(PyObject* text, std::string& out) {
    size_t replaced = 0;
    const int kind = PyUnicode_KIND(text);
    const void* data = PyUnicode_DATA(text);
    const Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    out.reserve(out.size() + static_cast<size_t>(n) * 2);
    for (Py_ssize_t i = 0; i < n; ++i) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= 0xD800 && c <= 0xDFFF) {
            c = 0xFFFD;
            ++replaced;
        }
        if (c < 0x80) {
            out.push_back(static_cast<char>(c));
        } else if (c < 0x800) {
            out.push_back(static_cast<char>(0xC0 | (c >> 6)));
            out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
        } else if (c < 0x10000) {
            out.push_back(static_cast<char>(0xE0 | (c >> 12)));
            out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
        } else {
            out.push_back(static_cast<char>(0xF0 | (c >> 18)));
            out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
        }
    }
    return replaced;
}

// ---------------------------------------------------------------------------------------------------------------
// PieceCounter


// The maps exist from tp_new on, so no method ever sees a half-built counter.
PyObject* counter_new(PyTypeObject* type, PyObject*, PyObject*) {
    PyObject* self = type->tp_alloc(type, 0);
    if (!self) return nullptr;
    auto* c = reinterpret_cast<PieceCounterObject*>(self);
    try {
        c->shards = new Shards(kShards);
    } catch (const std::bad_alloc&) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return self;
}

int counter_init(PyObject*, PyObject* args, PyObject* kwds) {
    static const char* kwlist[] = {nullptr};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, ":PieceCounter", const_cast<char**>(kwlist))) return -1;
    return 0;
}

void counter_dealloc(PyObject* self) {
    delete reinterpret_cast<PieceCounterObject*>(self)->shards;
    Py_TYPE(self)->tp_free(self);
}

size_t counter_size(const Shards& s) {
    size_t n = 0;
    for (const auto& m : s) n += m.size();
    return n;
}

Py_ssize_t counter_len(PyObject* self) {
    return static_cast<Py_ssize_t>(counter_size(*reinterpret_cast<PieceCounterObject*>(self)->shards));
}

PyObject* counter_count_texts(PyObject* self, PyObject* args, PyObject* kwds) {
    static const char* kwlist[] = {"texts", "pattern", "num_threads", nullptr};
    PyObject* texts_obj;
    int pattern;
    Py_ssize_t num_threads;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Oin:count_texts", const_cast<char**>(kwlist), &texts_obj, &pattern,
                                     &num_threads))
        return nullptr;
    if (pattern < 0 || pattern >= kPretokNumIds) {
        PyErr_Format(PyExc_ValueError, "pattern=%d is not a native pre-tokenizer pattern id", pattern);
        return nullptr;
    }
    if (num_threads < 1) {
        PyErr_Format(PyExc_ValueError, "num_threads=%zd must be >= 1", num_threads);
        return nullptr;
    }
    auto* c = reinterpret_cast<PieceCounterObject*>(self);
    BusyGuard guard(c->busy);
    if (!guard.ok) return nullptr;
    PyRef holder(PySequence_Fast(texts_obj, "texts must be a list or tuple of str"));
    PyObject* seq = holder.p;
    if (!seq) return nullptr;
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    std::vector<train::TextRef> refs(static_cast<size_t>(n));
    // ASCII str data is UTF-8 already (no copy).  Other texts are encoded into temporary bytes objects that die
    // with this call: PyUnicode_AsUTF8AndSize would instead cache a UTF-8 copy inside each caller-owned str for
    // its whole lifetime, doubling the memory of an in-memory corpus.
    std::vector<std::unique_ptr<std::string>> owned;  // re-encoded texts that held lone surrogates
    std::vector<std::unique_ptr<PyRef>> encoded;
    uint64_t total = 0;
    for (Py_ssize_t i = 0; i < n; ++i) {
        PyObject* t = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyUnicode_Check(t)) {
            PyErr_Format(PyExc_TypeError, "texts[%zd] is %.100s, expected str", i, Py_TYPE(t)->tp_name);
            return nullptr;
        }
        Py_ssize_t len = 0;
        const char* p = nullptr;
        if (PyUnicode_IS_COMPACT_ASCII(t)) {
            p = PyUnicode_AsUTF8AndSize(t, &len);
        } else {
            encoded.push_back(std::make_unique<PyRef>(PyUnicode_AsUTF8String(t)));
            PyObject* b = encoded.back()->p;
            if (b) {
                p = PyBytes_AS_STRING(b);
                len = PyBytes_GET_SIZE(b);
            }
        }
        if (!p) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return nullptr;
            PyErr_Clear();
            owned.push_back(std::make_unique<std::string>());
            c->surrogates_replaced += utf8_replacing_surrogates(t, *owned.back());
            p = owned.back()->data();
            len = static_cast<Py_ssize_t>(owned.back()->size());
        }
        refs[static_cast<size_t>(i)] = {reinterpret_cast<const uint8_t*>(p), static_cast<size_t>(len)};
        total += static_cast<uint64_t>(len);
    }
    const PretokPattern pat = static_cast<PretokPattern>(pattern);
    const size_t threads = static_cast<size_t>(num_threads);
    std::string err;
    uint64_t pieces = 0;
    Py_BEGIN_ALLOW_THREADS;
    err = train::count_texts(pat, refs, threads, *c->shards, pieces);
    release_free_memory();
    Py_END_ALLOW_THREADS;
    if (!err.empty()) {
        bool oom = err.find("out of memory") != std::string::npos;
        PyErr_SetString(oom ? PyExc_MemoryError : PyExc_RuntimeError, err.c_str());
        return nullptr;
    }
    c->pieces_counted += pieces;
    c->bytes_counted += total;
    return PyLong_FromUnsignedLongLong(total);
}

// add(pieces: dict[bytes | str, int]) -- counts of pieces split elsewhere (custom regex patterns).
PyObject* counter_add(PyObject* self, PyObject* arg) {
    auto* c = reinterpret_cast<PieceCounterObject*>(self);
    BusyGuard guard(c->busy);
    if (!guard.ok) return nullptr;
    if (!PyDict_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "add() expects a dict of piece -> count, got %.100s", Py_TYPE(arg)->tp_name);
        return nullptr;
    }
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    std::string tmp;
    while (PyDict_Next(arg, &pos, &key, &value)) {
        const char* p;
        Py_ssize_t len;
        if (PyBytes_Check(key)) {
            p = PyBytes_AS_STRING(key);
            len = PyBytes_GET_SIZE(key);
        } else if (PyUnicode_Check(key)) {
            p = PyUnicode_AsUTF8AndSize(key, &len);
            if (!p) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return nullptr;
                PyErr_Clear();
                tmp.clear();
                c->surrogates_replaced += utf8_replacing_surrogates(key, tmp);
                p = tmp.data();
                len = static_cast<Py_ssize_t>(tmp.size());
            }
        } else {
            PyErr_Format(PyExc_TypeError, "piece keys must be bytes or str, got %.100s", Py_TYPE(key)->tp_name);
            return nullptr;
        }
        unsigned long long n = PyLong_AsUnsignedLongLong(value);
        if (n == static_cast<unsigned long long>(-1) && PyErr_Occurred()) return nullptr;
        if (len == 0 || n == 0) continue;
        const auto* u = reinterpret_cast<const uint8_t*>(p);
        uint64_t h = train::hash_bytes(u, static_cast<size_t>(len));
        try {
            (*c->shards)[shard_of(h)].add(u, static_cast<size_t>(len), h, n);
        } catch (const std::exception& e) {
            PyErr_SetString(PyExc_MemoryError, e.what());
            return nullptr;
        }
        c->pieces_counted += n;
        c->bytes_counted += static_cast<uint64_t>(len) * n;
    }
    Py_RETURN_NONE;
}

PyObject* counter_to_dict(PyObject* self, PyObject*) {
    auto* c = reinterpret_cast<PieceCounterObject*>(self);
    PyObject* d = PyDict_New();
    if (!d) return nullptr;
    for (const auto& m : *c->shards) {
        for (const auto& slot : m.slots()) {
            if (!slot.used) continue;
            PyObject* k = PyBytes_FromStringAndSize(reinterpret_cast<const char*>(m.key(slot)), slot.len);
            PyObject* v = k ? PyLong_FromUnsignedLongLong(slot.count) : nullptr;
            if (!v || PyDict_SetItem(d, k, v) < 0) {
                Py_XDECREF(k);
                Py_XDECREF(v);
                Py_DECREF(d);
                return nullptr;
            }
            Py_DECREF(k);
            Py_DECREF(v);
        }
    }
    return d;
}

PyObject* counter_stats(PyObject* self, PyObject*) {
    auto* c = reinterpret_cast<PieceCounterObject*>(self);
    size_t arena = 0;
    for (const auto& m : *c->shards) arena += m.arena_bytes();
    return Py_BuildValue("{s:n,s:K,s:K,s:K,s:n}", "unique_pieces", static_cast<Py_ssize_t>(counter_size(*c->shards)),
                         "pieces", static_cast<unsigned long long>(c->pieces_counted), "bytes",
                         static_cast<unsigned long long>(c->bytes_counted), "surrogates_replaced",
                         static_cast<unsigned long long>(c->surrogates_replaced), "unique_bytes",
                         static_cast<Py_ssize_t>(arena));
}

PyObject* counter_clear(PyObject* self, PyObject*) {
    auto* c = reinterpret_cast<PieceCounterObject*>(self);
    BusyGuard guard(c->busy);
    if (!guard.ok) return nullptr;
    for (auto& m : *c->shards) m.clear();
    release_free_memory();
    Py_RETURN_NONE;
}

PyMethodDef counter_methods[] = {
    {"count_texts", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(guarded<counter_count_texts>)),
     METH_VARARGS | METH_KEYWORDS,
     "count_texts(texts, pattern, num_threads) -> int: split and count a list of str natively (GIL released); "
     "returns the UTF-8 bytes counted."},
    {"add", guarded1<counter_add>, METH_O, "add(pieces: dict[bytes | str, int]): add counts of pieces split elsewhere."},
    {"to_dict", guarded1<counter_to_dict>, METH_NOARGS, "to_dict() -> dict[bytes, int]: every unique piece and its count."},
    {"clear", counter_clear, METH_NOARGS, "clear(): forget every piece and free the memory (the stats stay)."},
    {"stats", counter_stats, METH_NOARGS, "stats() -> dict: unique pieces, pieces, bytes, surrogates replaced."},
    {nullptr, nullptr, 0, nullptr},
};

PySequenceMethods counter_as_sequence = {counter_len};

PyModuleDef trainer_module = {
    PyModuleDef_HEAD_INIT, "_trainer", "Native BPE training: piece counting and merge learning.", -1,
    nullptr,               nullptr,    nullptr,                                                     nullptr,
    nullptr,
};

}  // namespace
}  // namespace trainer_py

PyMODINIT_FUNC PyInit__trainer(void) {
    using namespace trainer_py;
    PieceCounterType.tp_name = "tokenizer._native._trainer.PieceCounter";
    PieceCounterType.tp_basicsize = sizeof(PieceCounterObject);
    PieceCounterType.tp_flags = Py_TPFLAGS_DEFAULT;
    PieceCounterType.tp_doc = "Unique pre-tokenized pieces -> u64 counts (bounded by unique pieces).";
    PieceCounterType.tp_new = counter_new;
    PieceCounterType.tp_init = counter_init;
    PieceCounterType.tp_dealloc = counter_dealloc;
    PieceCounterType.tp_methods = counter_methods;
    PieceCounterType.tp_as_sequence = &counter_as_sequence;

    init_merger_type();

    if (PyType_Ready(&PieceCounterType) < 0 || PyType_Ready(&BpeMergerType) < 0) return nullptr;
    PyObject* mod = PyModule_Create(&trainer_module);
    if (!mod) return nullptr;
    Py_INCREF(&PieceCounterType);
    Py_INCREF(&BpeMergerType);
    if (PyModule_AddObject(mod, "PieceCounter", reinterpret_cast<PyObject*>(&PieceCounterType)) < 0 ||
        PyModule_AddObject(mod, "BpeMerger", reinterpret_cast<PyObject*>(&BpeMergerType)) < 0) {
        Py_DECREF(mod);
        return nullptr;
    }
    return mod;
}
