// shardstore._native._jsonl: the build's JSON Lines fast path (C API, C++17).
//
// scan() walks the complete lines of a block of JSON Lines bytes and, for every line that is plainly a document (a
// strictly valid RFC 8259 object, valid UTF-8 throughout, no lone surrogate escapes, the text field present once at
// the top level as a non-empty string), unescapes that field's string in place and records where it now lies in the
// block. Texts then go to the tokenizer's `encode_packed` straight from the block: no line, dict or str object per
// document. The first line it cannot accept as such (blank, malformed, a missing / duplicated / non-string field,
// invalid UTF-8, nesting deeper than kMaxDepth, an escaped top-level key, ...) stops the scan: Python handles that
// one line with the reference reader (which applies the policies and counts), then scans on. So every line is
// judged either by this strict subset of JSON or by the reference path, and the documents are the same either way.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "pybuffer.h"
#include "utf8.h"

namespace {

constexpr int kMaxDepth = 64;
enum Reason { kNeedMore = 0, kFallback = 1, kDone = 2 };

inline int hex_value(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

// Four hex digits at s (s + 4 <= e checked by the caller) -> code unit, or -1.
inline int32_t hex4(const uint8_t* s) {
    int32_t v = 0;
    for (int i = 0; i < 4; ++i) {
        const int h = hex_value(s[i]);
        if (h < 0) return -1;
        v = v << 4 | h;
    }
    return v;
}

class LineParser {
  public:
    LineParser(const uint8_t* field, size_t field_len) : field_(field), field_len_(field_len) {}

    // Parses the line [b, e). True when it is a document: then text_begin/text_end delimit the (still escaped)
    // content of the text field and text_escaped tells whether it holds escapes.
    bool parse(const uint8_t* b, const uint8_t* e) {
        p_ = b;
        e_ = e;
        found_ = false;
        skip_ws();
        if (p_ >= e_ || *p_ != '{' || !object(1)) return false;
        skip_ws();
        return p_ == e_ && found_ && text_end > text_begin;
    }

    const uint8_t* text_begin = nullptr;
    const uint8_t* text_end = nullptr;
    bool text_escaped = false;

  private:
    void skip_ws() {
        while (p_ < e_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\r' || *p_ == '\n')) ++p_;
    }

    // p_ just past the opening quote; on success p_ is just past the closing quote.
    bool string(bool* escaped) {
        while (true) {
#if defined(__SSE2__)
            const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
            while (p_ + 16 <= e_) {
                const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p_));
                // A signed compare flags bytes < 0x20 and >= 0x80 alike: both need a closer look.
                const __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                                     _mm_cmplt_epi8(v, space));
                const int mask = _mm_movemask_epi8(special);
                if (mask) {
                    const int k = __builtin_ctz(static_cast<unsigned>(mask));
                    p_ += k;
                    break;
                }
                p_ += 16;
            }
#endif
            if (p_ >= e_) return false;
            const uint8_t c = *p_;
            if (c == '"') {
                ++p_;
                return true;
            }
            if (c == '\\') {
                if (!escape()) return false;
                *escaped = true;
            } else if (c < 0x20) {
                return false;
            } else if (c >= 0x80) {
                const size_t k = utf8::sequence_length(p_, static_cast<size_t>(e_ - p_));
                if (!k) return false;
                p_ += k;
            } else {
                ++p_;
            }
        }
    }

    // p_ at a backslash: one escape (a surrogate pair counts as one); lone surrogates are refused.
    bool escape() {
        if (p_ + 1 >= e_) return false;
        switch (p_[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                p_ += 2;
                return true;
            case 'u': {
                if (p_ + 6 > e_) return false;
                const int32_t u = hex4(p_ + 2);
                if (u < 0 || (u >= 0xDC00 && u <= 0xDFFF)) return false;
                if (u >= 0xD800 && u <= 0xDBFF) {
                    if (p_ + 12 > e_ || p_[6] != '\\' || p_[7] != 'u') return false;
                    const int32_t low = hex4(p_ + 8);
                    if (low < 0xDC00 || low > 0xDFFF) return false;
                    p_ += 12;
                    return true;
                }
                p_ += 6;
                return true;
            }
            default:
                return false;
        }
    }

    bool literal(const char* word, size_t n) {
        if (static_cast<size_t>(e_ - p_) < n || std::memcmp(p_, word, n) != 0) return false;
        p_ += n;
        return true;
    }

    static bool digit(uint8_t c) { return c >= '0' && c <= '9'; }

    bool number() {
        if (*p_ == '-') ++p_;
        if (p_ >= e_) return false;
        if (*p_ == '0') {
            ++p_;
        } else if (digit(*p_)) {
            while (p_ < e_ && digit(*p_)) ++p_;
        } else {
            return false;
        }
        if (p_ < e_ && *p_ == '.') {
            ++p_;
            if (p_ >= e_ || !digit(*p_)) return false;
            while (p_ < e_ && digit(*p_)) ++p_;
        }
        if (p_ < e_ && (*p_ == 'e' || *p_ == 'E')) {
            ++p_;
            if (p_ < e_ && (*p_ == '+' || *p_ == '-')) ++p_;
            if (p_ >= e_ || !digit(*p_)) return false;
            while (p_ < e_ && digit(*p_)) ++p_;
        }
        return true;
    }

    bool value(int depth) {
        skip_ws();
        if (p_ >= e_) return false;
        bool escaped = false;
        switch (*p_) {
            case '"':
                ++p_;
                return string(&escaped);
            case '{':
                return object(depth + 1);
            case '[':
                return array(depth + 1);
            case 't':
                return literal("true", 4);
            case 'f':
                return literal("false", 5);
            case 'n':
                return literal("null", 4);
            default:
                return number();
        }
    }

    bool array(int depth) {
        if (depth > kMaxDepth) return false;
        ++p_;  // '['
        skip_ws();
        if (p_ < e_ && *p_ == ']') {
            ++p_;
            return true;
        }
        while (true) {
            if (!value(depth)) return false;
            skip_ws();
            if (p_ >= e_) return false;
            if (*p_ == ']') {
                ++p_;
                return true;
            }
            if (*p_ != ',') return false;
            ++p_;
        }
    }

    bool object(int depth) {
        if (depth > kMaxDepth) return false;
        ++p_;  // '{'
        skip_ws();
        if (p_ < e_ && *p_ == '}') {
            ++p_;
            return true;
        }
        while (true) {
            skip_ws();
            if (p_ >= e_ || *p_ != '"') return false;
            const uint8_t* key = ++p_;
            bool key_escaped = false;
            if (!string(&key_escaped)) return false;
            const size_t key_len = static_cast<size_t>(p_ - 1 - key);
            skip_ws();
            if (p_ >= e_ || *p_ != ':') return false;
            ++p_;
            if (depth == 1 && key_escaped) return false;  // could spell the field name: the reference path decides
            if (depth == 1 && key_len == field_len_ && std::memcmp(key, field_, key_len) == 0) {
                skip_ws();
                if (found_ || p_ >= e_ || *p_ != '"') return false;  // duplicated or not a string
                found_ = true;
                text_begin = ++p_;
                text_escaped = false;
                if (!string(&text_escaped)) return false;
                text_end = p_ - 1;
            } else if (!value(depth)) {
                return false;
            }
            skip_ws();
            if (p_ >= e_) return false;
            if (*p_ == '}') {
                ++p_;
                return true;
            }
            if (*p_ != ',') return false;
            ++p_;
        }
    }

    const uint8_t* field_;
    size_t field_len_;
    const uint8_t* p_ = nullptr;
    const uint8_t* e_ = nullptr;
    bool found_ = false;
};

inline uint8_t* put_utf8(uint8_t* w, uint32_t cp) {
    if (cp < 0x80) {
        *w++ = static_cast<uint8_t>(cp);
    } else if (cp < 0x800) {
        *w++ = static_cast<uint8_t>(0xC0 | cp >> 6);
        *w++ = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *w++ = static_cast<uint8_t>(0xE0 | cp >> 12);
        *w++ = static_cast<uint8_t>(0x80 | (cp >> 6 & 0x3F));
        *w++ = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    } else {
        *w++ = static_cast<uint8_t>(0xF0 | cp >> 18);
        *w++ = static_cast<uint8_t>(0x80 | (cp >> 12 & 0x3F));
        *w++ = static_cast<uint8_t>(0x80 | (cp >> 6 & 0x3F));
        *w++ = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    }
    return w;
}

// Unescape the validated string content [b, e) in place (the result is never longer); returns its new end.
uint8_t* unescape_in_place(uint8_t* b, const uint8_t* e) {
    uint8_t* w = b;
    const uint8_t* r = b;
    while (r < e) {
        const auto* bs = static_cast<const uint8_t*>(std::memchr(r, '\\', static_cast<size_t>(e - r)));
        const uint8_t* run_end = bs ? bs : e;
        if (w != r) std::memmove(w, r, static_cast<size_t>(run_end - r));
        w += run_end - r;
        r = run_end;
        if (!bs) break;
        const uint8_t c = r[1];
        r += 2;
        switch (c) {
            case 'b': *w++ = '\b'; break;
            case 'f': *w++ = '\f'; break;
            case 'n': *w++ = '\n'; break;
            case 'r': *w++ = '\r'; break;
            case 't': *w++ = '\t'; break;
            case 'u': {
                uint32_t cp = static_cast<uint32_t>(hex4(r));
                r += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {  // validated: a low surrogate escape follows
                    const uint32_t low = static_cast<uint32_t>(hex4(r + 2));
                    r += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                }
                w = put_utf8(w, cp);
                break;
            }
            default: *w++ = c;  // '"', '\\', '/'
        }
    }
    return w;
}

PyObject* bytes_of(const std::vector<int64_t>& v) {
    return PyBytes_FromStringAndSize(reinterpret_cast<const char*>(v.data()), static_cast<Py_ssize_t>(v.size() * 8));
}

PyObject* scan(PyObject*, PyObject* args) {
    PyObject* buf_obj;
    Py_ssize_t pos, limit, end;
    int final_block, by_offset;
    const char* field;
    Py_ssize_t field_len;
    long long record_base;
    if (!PyArg_ParseTuple(args, "Onnnpy#Lp", &buf_obj, &pos, &limit, &end, &final_block, &field, &field_len,
                          &record_base, &by_offset))
        return nullptr;
    pybuf::View buf;
    if (!buf.get(buf_obj, PyBUF_WRITABLE)) return nullptr;
    if (pos < 0 || pos > end || limit > end || end > buf.len()) {
        PyErr_Format(PyExc_ValueError, "pos %zd, limit %zd, end %zd do not fit a %zd-byte buffer", pos, limit, end,
                     buf.len());
        return nullptr;
    }
    auto* b = static_cast<uint8_t*>(buf.buf());
    std::vector<int64_t> starts, ends, records;
    long long lines = 0;
    int reason = kDone;
    LineParser parser(reinterpret_cast<const uint8_t*>(field), static_cast<size_t>(field_len));
    Py_BEGIN_ALLOW_THREADS;
    while (true) {
        if (pos >= limit) {
            reason = kDone;
            break;
        }
        const auto* nl = static_cast<const uint8_t*>(std::memchr(b + pos, '\n', static_cast<size_t>(end - pos)));
        if (!nl && !final_block) {
            reason = kNeedMore;
            break;
        }
        const Py_ssize_t line_end = nl ? nl - b : end;
        if (!parser.parse(b + pos, b + line_end)) {
            reason = kFallback;
            break;
        }
        auto* text = const_cast<uint8_t*>(parser.text_begin);
        const uint8_t* text_end = parser.text_escaped ? unescape_in_place(text, parser.text_end) : parser.text_end;
        starts.push_back(text - b);
        ends.push_back(text_end - b);
        records.push_back(record_base + (by_offset ? static_cast<long long>(pos) : lines));
        ++lines;
        pos = nl ? line_end + 1 : end;
    }
    Py_END_ALLOW_THREADS;
    PyObject* s = bytes_of(starts);
    PyObject* e = bytes_of(ends);
    PyObject* r = bytes_of(records);
    PyObject* result = nullptr;
    if (s && e && r) result = Py_BuildValue("(niLOOO)", pos, reason, lines, s, e, r);
    Py_XDECREF(s);
    Py_XDECREF(e);
    Py_XDECREF(r);
    return result;
}

PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS,
     "scan(buf, pos, limit, end, final, field, record_base, by_offset) -> "
     "(pos, reason, lines, starts, ends, records)"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_jsonl", "JSON Lines fast path of shardstore build", -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit__jsonl(void) {
    PyObject* m = PyModule_Create(&module);
    if (!m) return nullptr;
    if (PyModule_AddIntConstant(m, "NEED_MORE", kNeedMore) < 0 || PyModule_AddIntConstant(m, "FALLBACK", kFallback) < 0 ||
        PyModule_AddIntConstant(m, "DONE", kDone) < 0) {
        Py_DECREF(m);
        return nullptr;
    }
    return m;
}
