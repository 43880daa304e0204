// UTF-8 of Python str objects, produced without the GIL, so that a batch converts its texts on its worker threads.
//
// PyUnicode_AsUTF8AndSize must run under the GIL: for a batch of non-ASCII documents (German, Chinese) that one
// serial conversion pass kept a 16-thread batch from scaling. Here the GIL-holding thread only records each str's
// canonical storage (kind 1/2/4 code units, PEP 393), which is immutable while the object lives; workers encode it
// to UTF-8 in a reused per-thread buffer. ASCII str and bytes are used in place. A lone surrogate (not encodable)
// makes convert() fail; the caller then asks CPython for the real UnicodeEncodeError under the GIL.
#pragma once

#include <Python.h>

#include <cstddef>
#include <cstdint>
#include <string>

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

template <class U>
inline bool append_units(const U* u, size_t n, std::string& out) {
    size_t at = out.size();
    out.resize(at + n * (sizeof(U) == 1 ? 2 : sizeof(U) == 2 ? 3 : 4));
    auto* w = reinterpret_cast<uint8_t*>(&out[0]) + at;
    auto* const w0 = w;
    for (size_t i = 0; i < n; ++i) {
        const uint32_t c = u[i];
        if (c < 0x80) {
            *w++ = static_cast<uint8_t>(c);
        } else if (c < 0x800) {
            *w++ = static_cast<uint8_t>(0xC0 | (c >> 6));
            *w++ = static_cast<uint8_t>(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            if (c >= 0xD800 && c <= 0xDFFF) return false;  // lone surrogate: not UTF-8
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
    out.resize(at + static_cast<size_t>(w - w0));
    return true;
}

// UTF-8 of r: in place (kind 0) or converted into `buf` (no GIL needed). False for a lone surrogate.
inline bool convert(const TextRef& r, std::string& buf, const uint8_t** data, size_t* size) {
    if (r.kind == 0) {
        *data = static_cast<const uint8_t*>(r.data);
        *size = r.len;
        return true;
    }
    buf.clear();
    bool ok = r.kind == PyUnicode_1BYTE_KIND   ? append_units(static_cast<const Py_UCS1*>(r.data), r.len, buf)
              : r.kind == PyUnicode_2BYTE_KIND ? append_units(static_cast<const Py_UCS2*>(r.data), r.len, buf)
                                               : append_units(static_cast<const Py_UCS4*>(r.data), r.len, buf);
    *data = reinterpret_cast<const uint8_t*>(buf.data());
    *size = buf.size();
    return ok;
}

}  // namespace strutf8
