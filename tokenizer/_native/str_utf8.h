// UTF-8 of Python str objects, produced without the GIL, so that a batch converts its texts on its worker threads.
//
// PyUnicode_AsUTF8AndSize must run under the GIL: for a batch of non-ASCII documents (German, Chinese) that one
// serial conversion pass kept a 16-thread batch from scaling. Here the GIL-holding thread only records each str's
// canonical storage (kind 1/2/4 code units, PEP 393), which is immutable while the object lives; workers encode it
// to UTF-8 in a reused per-thread buffer. ASCII str and bytes are used in place. A lone surrogate (not encodable)
// makes convert() fail; the caller then asks CPython for the real UnicodeEncodeError under the GIL.
#pragma once

#include <Python.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace strutf8 {

struct TextRef {
    const void* data = nullptr;
    size_t len = 0;   // code units (kind 1/2/4) or bytes (kind 0)
    int kind = 0;     // 0: data is already UTF-8 (ASCII str, bytes); else PyUnicode_KIND
    size_t cost() const { return len * static_cast<size_t>(kind == 0 ? 1 : kind + 1); }  // ~UTF-8 bytes
};

// Record `obj` (str or bytes) under the GIL. The object must stay alive until the workers are done.
inline bool ref_of(PyObject* obj, TextRef* r) {
    if (PyUnicode_Check(obj)) {
        r->len = static_cast<size_t>(PyUnicode_GET_LENGTH(obj));
        r->data = PyUnicode_DATA(obj);
        r->kind = PyUnicode_IS_ASCII(obj) ? 0 : static_cast<int>(PyUnicode_KIND(obj));
        return true;
    }
    if (PyBytes_Check(obj)) {
        r->data = PyBytes_AS_STRING(obj);
        r->len = static_cast<size_t>(PyBytes_GET_SIZE(obj));
        r->kind = 0;
        return true;
    }
    PyErr_Format(PyExc_TypeError, "expected str or bytes, got %.100s", Py_TYPE(obj)->tp_name);
    return false;
}

// Writes the UTF-8 of n code units to w (room for 4 bytes per unit); returns the bytes written, or SIZE_MAX for a
// lone surrogate.
template <class U>
inline size_t write_units(const U* u, size_t n, uint8_t* w) {
    uint8_t* const w0 = w;
    for (size_t i = 0; i < n; ++i) {
        const uint32_t c = u[i];
        if (c < 0x80) {
            *w++ = static_cast<uint8_t>(c);
        } else if (c < 0x800) {
            *w++ = static_cast<uint8_t>(0xC0 | (c >> 6));
            *w++ = static_cast<uint8_t>(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            if (c >= 0xD800 && c <= 0xDFFF) return SIZE_MAX;  // lone surrogate: not UTF-8
            *w++ = static_cast<uint8_t>(0xE0 | (c >> 12));
            *w++ = static_cast<uint8_t>(0x80 | ((c >> 6) & 0x3F));
            *w++ = static_cast<uint8_t>(0x80 | (c & 0x3F));
        } else {
            *w++ = static_cast<uint8_t>(0xF0 | (c >> 18));
            *w++ = static_cast<uint8_t>(0x80 | ((c >> 12) & 0x3F));
            *w++ = static_cast<uint8_t>(0x80 | ((c >> 6) & 0x3F));
            *w++ = static_cast<uint8_t>(0x80 | (c & 0x3F));
        }
    }
    return static_cast<size_t>(w - w0);
}

// UTF-8 of r: in place (kind 0) or converted into `buf` (no GIL needed; buf only grows, so a reused buffer is not
// re-zeroed per text). False for a lone surrogate.
inline bool convert(const TextRef& r, std::vector<uint8_t>& buf, const uint8_t** data, size_t* size) {
    if (r.kind == 0) {
        *data = static_cast<const uint8_t*>(r.data);
        *size = r.len;
        return true;
    }
    const size_t need = r.len * (r.kind == PyUnicode_1BYTE_KIND ? 2 : r.kind == PyUnicode_2BYTE_KIND ? 3 : 4);
    if (buf.size() < need) buf.resize(std::max(need, 2 * buf.size()));
    const size_t m = r.kind == PyUnicode_1BYTE_KIND   ? write_units(static_cast<const Py_UCS1*>(r.data), r.len, buf.data())
                     : r.kind == PyUnicode_2BYTE_KIND ? write_units(static_cast<const Py_UCS2*>(r.data), r.len, buf.data())
                                                      : write_units(static_cast<const Py_UCS4*>(r.data), r.len, buf.data());
    *data = buf.data();
    *size = m;
    return m != SIZE_MAX;
}

}  // namespace strutf8
