// A Python buffer view released when it goes out of scope (C API); shared by the extensions that read buffers.
#pragma once

#include <Python.h>

namespace pybuf {

class View {
  public:
    View() = default;
    View(const View&) = delete;
    View& operator=(const View&) = delete;
    ~View() {
        if (held_) PyBuffer_Release(&view_);
    }
    // PyObject_GetBuffer with `flags`; false (exception set) on failure.
    bool get(PyObject* obj, int flags) {
        if (PyObject_GetBuffer(obj, &view_, flags) < 0) return false;
        held_ = true;
        return true;
    }
    void* buf() const { return view_.buf; }
    Py_ssize_t len() const { return view_.len; }

  private:
    Py_buffer view_{};
    bool held_ = false;
};

}  // namespace pybuf
