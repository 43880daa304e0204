// What the two translation units of tokenizer._native._trainer share (CPython C API, C++17):
//   trainer.cc         -- the module and PieceCounter (piece counting, train_count.h)
//   trainer_merger.cc  -- BpeMerger (merge learning, train_merge.h)
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdint>
#include <exception>
#include <new>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "train_count.h"

namespace trainer_py {

// Owns one reference.
struct PyRef {
    PyObject* p;
    explicit PyRef(PyObject* o) : p(o) {}
    PyRef(const PyRef&) = delete;
    PyRef& operator=(const PyRef&) = delete;
    ~PyRef() { Py_XDECREF(p); }
};

// C++ exceptions must not cross into CPython: methods that allocate while holding the GIL are wrapped in these.
inline PyObject* set_error_from_exception() {
    try {
        throw;
    } catch (const std::bad_alloc&) {
        return PyErr_NoMemory();
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    }
    return nullptr;
}

template <PyObject* (*F)(PyObject*, PyObject*, PyObject*)>
inline PyObject* guarded(PyObject* self, PyObject* args, PyObject* kwds) {
    try {
        return F(self, args, kwds);
    } catch (...) {
        return set_error_from_exception();
    }
}

template <PyObject* (*F)(PyObject*, PyObject*)>
inline PyObject* guarded1(PyObject* self, PyObject* arg) {
    try {
        return F(self, arg);
    } catch (...) {
        return set_error_from_exception();
    }
}

// Gives freed heap memory back to the OS.  After a batch (per-thread maps) or once the counter is consumed, glibc
// would otherwise keep tens of MB of freed arenas in the process's RSS.
inline void release_free_memory() {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

// Shared guard against two Python threads using one native object at once while the GIL is released.
struct BusyGuard {
    bool& flag;
    bool ok;
    explicit BusyGuard(bool& f) : flag(f), ok(!f) {
        if (ok) flag = true;
        else PyErr_SetString(PyExc_RuntimeError, "this trainer object is already in use by another thread");
    }
    ~BusyGuard() {
        if (ok) flag = false;
    }
};

// ---------------------------------------------------------------------------------------------------------------
// PieceCounter's object (BpeMerger reads a counter's maps)

struct PieceCounterObject {
    PyObject_HEAD
    train::Shards* shards;
    uint64_t bytes_counted;
    uint64_t pieces_counted;
    uint64_t surrogates_replaced;
    bool busy;
};

extern PyTypeObject PieceCounterType;  // trainer.cc
extern PyTypeObject BpeMergerType;     // trainer_merger.cc
// Fills in BpeMergerType's slots (before PyType_Ready).
void init_merger_type();

}  // namespace trainer_py
