// A Python buffer view released when it goes out of scope, and the one checked way shardstore's extensions take a
// contiguous one (edf, minhash, pieces, verifybatch each had their own copy).
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace shardbuf {

struct Buffer {
    Py_buffer view{};
    bool held = false;
    Buffer() = default;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    ~Buffer() {
        if (held) PyBuffer_Release(&view);
    }
};

// PyObject_GetBuffer(C-contiguous | flags) into `b`; false with TypeError "`what` must be a contiguous [writable]
// buffer" on failure.
inline bool get(PyObject* obj, Buffer& b, int flags, const char* what) {
    if (PyObject_GetBuffer(obj, &b.view, flags | PyBUF_C_CONTIGUOUS) != 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a contiguous%s buffer", what,
                     (flags & PyBUF_WRITABLE) ? " writable" : "");
        return false;
    }
    b.held = true;
    return true;
}

}  // namespace shardbuf
