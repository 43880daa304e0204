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
#include <cstring>
#include <vector>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#endif

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

#if defined(__SSE2__) || defined(_M_X64)
// The ASCII prefix of u[0..n) (whole 16-unit blocks of it) written as bytes to w; returns the units done. 16 units
// per step: one or more loads, an OR, a compare and a pack (PACKUS/PACKS), instead of a branch per unit.
template <class U>
inline size_t ascii_blocks(const U* u, size_t n, uint8_t* w) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m128i* p = reinterpret_cast<const __m128i*>(u + i);
        __m128i out;
        if constexpr (sizeof(U) == 1) {
            out = _mm_loadu_si128(p);
            if (_mm_movemask_epi8(out)) break;
        } else if constexpr (sizeof(U) == 2) {
            const __m128i a = _mm_loadu_si128(p), b = _mm_loadu_si128(p + 1);
            const __m128i high = _mm_and_si128(_mm_or_si128(a, b), _mm_set1_epi16(static_cast<short>(0xFF80)));
            if (_mm_movemask_epi8(_mm_cmpeq_epi16(high, _mm_setzero_si128())) != 0xFFFF) break;
            out = _mm_packus_epi16(a, b);
        } else {
            const __m128i a = _mm_loadu_si128(p), b = _mm_loadu_si128(p + 1);
            const __m128i c = _mm_loadu_si128(p + 2), d = _mm_loadu_si128(p + 3);
            const __m128i any = _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d));
            const __m128i high = _mm_and_si128(any, _mm_set1_epi32(static_cast<int>(0xFFFFFF80u)));
            if (_mm_movemask_epi8(_mm_cmpeq_epi32(high, _mm_setzero_si128())) != 0xFFFF) break;
            out = _mm_packus_epi16(_mm_packs_epi32(a, b), _mm_packs_epi32(c, d));
        }
        _mm_storeu_si128(reinterpret_cast<__m128i*>(w + i), out);
    }
    return i;
}
#endif

// Writes the UTF-8 of n code units to w (room for 4 bytes per unit); returns the bytes written, or SIZE_MAX for a
// lone surrogate.
template <class U>
inline size_t write_units(const U* u, size_t n, uint8_t* w) {
    uint8_t* const w0 = w;
    constexpr size_t kStep = 8 / sizeof(U);  // code units per 8-byte word
    // Every unit of the word below 0x80 (the high bits of each unit clear): copy their low bytes.
    constexpr uint64_t kHigh = sizeof(U) == 1 ? 0x8080808080808080ULL
                               : sizeof(U) == 2 ? 0xFF80FF80FF80FF80ULL
                                                : 0xFFFFFF80FFFFFF80ULL;
    for (size_t i = 0; i < n;) {
        if (i + kStep <= n) {  // ASCII stretches a word at a time (most of any European or code text)
            uint64_t v;
            std::memcpy(&v, u + i, 8);
            if (!(v & kHigh)) {
#if defined(__SSE2__) || defined(_M_X64)
                const size_t k = ascii_blocks(u + i, n - i, w);  // and 16 units at a time once in a stretch
                w += k;
                i += k;
                if (k) continue;
#endif
                for (size_t k = 0; k < kStep; ++k) w[k] = static_cast<uint8_t>(u[i + k]);
                w += kStep;
                i += kStep;
                continue;
            }
        }
        const uint32_t c = u[i++];
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

// The most UTF-8 bytes r's code units can take (2, 3 or 4 per unit of kind 1, 2 or 4).
inline size_t max_utf8(const TextRef& r) {
    return r.kind == 0 ? r.len : r.len * (r.kind == PyUnicode_1BYTE_KIND ? 2 : r.kind == PyUnicode_2BYTE_KIND ? 3 : 4);
}

// UTF-8 of r: in place (kind 0) or converted into `buf` (no GIL needed; buf only grows, so a reused buffer is not
// re-zeroed per text). False for a lone surrogate.
inline bool convert(const TextRef& r, std::vector<uint8_t>& buf, const uint8_t** data, size_t* size) {
    if (r.kind == 0) {
        *data = static_cast<const uint8_t*>(r.data);
        *size = r.len;
        return true;
    }
    const size_t need = max_utf8(r);
    if (buf.size() < need) buf.resize(std::max(need, 2 * buf.size()));
    const size_t m = r.kind == PyUnicode_1BYTE_KIND   ? write_units(static_cast<const Py_UCS1*>(r.data), r.len, buf.data())
                     : r.kind == PyUnicode_2BYTE_KIND ? write_units(static_cast<const Py_UCS2*>(r.data), r.len, buf.data())
                                                      : write_units(static_cast<const Py_UCS4*>(r.data), r.len, buf.data());
    *data = buf.data();
    *size = m;
    return m != SIZE_MAX;
}

// The UTF-8 of one call's str or bytes argument: in place for ASCII str and bytes, else converted with the GIL
// released into this thread's reused buffer (up to kKeep bytes of UTF-8 at most; a larger text gets its own buffer,
// freed with the holder). CPython's own UTF-8 (PyUnicode_AsUTF8AndSize) allocates a buffer per new str and caches it on
// the object: its page faults and copy cost 12-27% of a single encode of 2 MB of non-ASCII text.
class Utf8Arg {
  public:
    static constexpr size_t kKeep = size_t{8} << 20;

    // False with a Python exception set: not str/bytes, no memory, or a lone surrogate (CPython's own error).
    bool init(PyObject* obj) {
        TextRef r;
        if (!ref_of(obj, &r)) return false;
        thread_local std::vector<uint8_t> shared;
        std::vector<uint8_t>& buf = max_utf8(r) <= kKeep ? shared : own_;
        bool ok = false, oom = false;
        Py_BEGIN_ALLOW_THREADS;
        try {
            ok = convert(r, buf, &data_, &size_);
        } catch (const std::bad_alloc&) {
            oom = true;
        }
        Py_END_ALLOW_THREADS;
        if (oom) {
            PyErr_NoMemory();
            return false;
        }
        if (!ok) {  // a lone surrogate: let CPython raise its UnicodeEncodeError (with the position)
            if (PyUnicode_AsUTF8AndSize(obj, nullptr))
                PyErr_SetString(PyExc_UnicodeError, "str could not be converted to UTF-8");
            return false;
        }
        return true;
    }
    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }

  private:
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
    std::vector<uint8_t> own_;
};

}  // namespace strutf8
