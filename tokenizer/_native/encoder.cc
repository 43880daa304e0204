// tokenizer._native._encoder: byte-level BPE encoding and decoding (CPython C API, C++17).
//
// Algorithm (identical to tiktoken's semantics on the same ranks; the rank of a token is its id):
//   1. split the UTF-8 text with the hand-written pre-tokenizer (pretok.h) -- or take pieces pre-split by the
//      `regex` package for a custom pattern;
//   2. a piece that is itself a token -> that token (one hash lookup; most pieces of real text end here);
//   3. otherwise look the piece up in a per-thread direct-mapped cache (short pieces);
//   4. otherwise merge: repeatedly merge the adjacent pair whose concatenation is the lowest-ranked token, leftmost
//      first on ties. Pairs are looked up by (left id, right id) in a table listing every split of every token.
//      Pieces up to 64 bytes use the simple rescan (fast for short pieces); longer ones use a linked list plus a
//      lazy min-heap keyed by (rank, position), O(n log n), so a 1 MB run of one letter is not quadratic.
// Output goes straight into the caller's buffer (a bytearray viewed by numpy, or a scratch vector for lists).
// The GIL is released while encoding; encode_batch runs std::threads that pull texts from an atomic counter.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "pretok.h"

namespace {

constexpr uint32_t kNone = UINT32_MAX;
constexpr size_t kSmallPiece = 64;     // pieces up to this many bytes use the O(n^2) rescan
constexpr size_t kCacheKey = 24;       // pieces up to this many bytes are cached
constexpr size_t kCacheSlots = 4096;   // per thread, direct-mapped

// The first min(n, 8) bytes of p as a little-endian-ish u64, zero padded; reads only p[0..n).
inline uint64_t load_head(const uint8_t* p, size_t n) {
    uint64_t v;
    if (n >= 8) {
        std::memcpy(&v, p, 8);
        return v;
    }
    if (n >= 4) {  // two overlapping 4-byte loads; the overlap holds equal bytes, so OR is exact
        uint32_t lo, hi;
        std::memcpy(&lo, p, 4);
        std::memcpy(&hi, p + n - 4, 4);
        return uint64_t(lo) | (uint64_t(hi) << (8 * (n - 4)));
    }
    v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t(p[i]) << (8 * i);
    return v;
}

inline uint64_t hash_bytes(const uint8_t* p, size_t n) {
    constexpr uint64_t K = 0x9E3779B97F4A7C15ULL;
    uint64_t h = K ^ (n * 0xFF51AFD7ED558CCDULL);
    while (n >= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        h = (h ^ w) * K;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n) {
        h = (h ^ load_head(p, n)) * K;
        h ^= h >> 29;
    }
    h *= 0xC4CEB9FE1A85EC53ULL;
    return h ^ (h >> 32);
}

inline uint64_t hash_u64(uint64_t x) {
    x *= 0x9E3779B97F4A7C15ULL;
    return x ^ (x >> 31);
}

// Open addressing at load factor <= 2/3: the tables are the encoder's cache misses, so they are kept small
// (a 32k vocabulary's token table is 1 MiB, the size of one core's L2 here).
size_t table_capacity(size_t items) {
    size_t cap = 16;
    while (cap < items + items / 2 + 1) cap <<= 1;
    return cap;
}

struct Cache {
    uint64_t owner[kCacheSlots];
    uint8_t key_len[kCacheSlots];
    uint8_t ntok[kCacheSlots];
    uint8_t key[kCacheSlots][kCacheKey];
    uint32_t tok[kCacheSlots][kCacheKey];
};

std::atomic<uint64_t> g_next_owner{1};

Cache& thread_cache() {
    thread_local std::unique_ptr<Cache> cache;
    if (!cache) {
        cache.reset(new Cache);
        std::memset(cache->owner, 0, sizeof(cache->owner));
    }
    return *cache;
}

struct Scratch {
    std::vector<uint32_t> tok, nxt, prv;
    std::vector<uint64_t> heap;
    std::vector<uint32_t> out;
};

Scratch& thread_scratch() {
    thread_local Scratch scratch;
    return scratch;
}

class Encoder {
  public:
    Encoder(std::vector<std::string> tokens, uint32_t num_ordinary, int pattern)
        : owner_(g_next_owner.fetch_add(1)), num_ordinary_(num_ordinary), pattern_(pattern) {
        offsets_.reserve(tokens.size() + 1);
        offsets_.push_back(0);
        for (const auto& t : tokens) {
            data_ += t;
            offsets_.push_back(static_cast<uint32_t>(data_.size()));
        }
        size_t cap = table_capacity(num_ordinary_);
        slots_.assign(cap, Slot{0, 0, 0, 0});
        slot_mask_ = cap - 1;
        for (uint32_t id = 0; id < num_ordinary_; ++id) {
            max_len_ = std::max<size_t>(max_len_, len(id));
            uint64_t h = hash_bytes(ptr(id), len(id));
            size_t i = h & slot_mask_;
            while (slots_[i].id1) i = (i + 1) & slot_mask_;
            slots_[i] = Slot{load_head(ptr(id), len(id)), id + 1, static_cast<uint16_t>(h >> 48),
                             static_cast<uint16_t>(std::min<size_t>(len(id), 0xFFFF))};
        }
        // Every split of every merged token into two tokens -> that token.
        std::vector<std::pair<uint64_t, uint32_t>> pairs;
        for (uint32_t id = 256; id < num_ordinary_; ++id) {
            const uint8_t* p = ptr(id);
            size_t n = len(id);
            for (size_t k = 1; k < n; ++k) {
                int64_t a = find(p, k), b = find(p + k, n - k);
                if (a >= 0 && b >= 0) pairs.emplace_back((uint64_t(a) << 32) | uint64_t(b), id);
            }
        }
        size_t pcap = table_capacity(pairs.size());
        pairs_.assign(pcap, PairSlot{~0ULL, kNone});
        pair_mask_ = pcap - 1;
        for (const auto& kv : pairs) {
            size_t i = hash_u64(kv.first) & pair_mask_;
            while (pairs_[i].key != ~0ULL && pairs_[i].key != kv.first) i = (i + 1) & pair_mask_;
            pairs_[i] = PairSlot{kv.first, kv.second};
        }
        byte_pairs_.assign(65536, kNone);
        for (const auto& kv : pairs) {
            uint64_t a = kv.first >> 32, b = kv.first & 0xFFFFFFFFu;
            if (a < 256 && b < 256) byte_pairs_[(a << 8) | b] = kv.second;
        }
    }

    int pattern() const { return pattern_; }
    uint32_t vocab_size() const { return static_cast<uint32_t>(offsets_.size() - 1); }
    const uint8_t* ptr(uint32_t id) const { return reinterpret_cast<const uint8_t*>(data_.data()) + offsets_[id]; }
    size_t len(uint32_t id) const { return offsets_[id + 1] - offsets_[id]; }

    int64_t find(const uint8_t* p, size_t n) const { return n > max_len_ ? -1 : find_hashed(p, n, hash_bytes(p, n)); }

    int64_t find_hashed(const uint8_t* p, size_t n, uint64_t h) const {
        uint16_t tag = static_cast<uint16_t>(h >> 48);
        uint16_t len16 = static_cast<uint16_t>(std::min<size_t>(n, 0xFFFF));
        uint64_t head = load_head(p, n);
        for (size_t i = h & slot_mask_;; i = (i + 1) & slot_mask_) {
            const Slot& s = slots_[i];
            if (!s.id1) return -1;
            if (s.tag != tag || s.len != len16 || s.head != head) continue;
            // Tokens of up to 8 bytes are compared within the slot (no second cache miss); the length still has
            // to match, since zero padding makes "a" and "a\0" share a head.
            uint32_t id = s.id1 - 1;
            if (n <= 8 || (len(id) == n && std::memcmp(ptr(id) + 8, p + 8, n - 8) == 0)) return id;
        }
    }

    uint32_t pair(uint32_t a, uint32_t b) const {
        uint64_t key = (uint64_t(a) << 32) | b;
        for (size_t i = hash_u64(key) & pair_mask_;; i = (i + 1) & pair_mask_) {
            const PairSlot& slot = pairs_[i];  // key and value share a cache line
            if (slot.key == key) return slot.val;
            if (slot.key == ~0ULL) return kNone;
        }
    }

    // Encode one piece into out (capacity >= n); returns the number of tokens.
    template <class T>
    size_t encode_piece(const uint8_t* p, size_t n, T* out) const {
        return encode_piece_hashed(p, n, n == 1 ? 0 : hash_bytes(p, n), out);
    }

    template <class T>
    size_t encode_piece_hashed(const uint8_t* p, size_t n, uint64_t h, T* out) const {
        if (n == 1) {
            out[0] = static_cast<T>(p[0]);
            return 1;
        }
        if (n <= max_len_) {
            int64_t id = find_hashed(p, n, h);
            if (id >= 0) {
                out[0] = static_cast<T>(id);
                return 1;
            }
        }
        if (n > kCacheKey) return n <= kSmallPiece ? merge_small(p, n, out) : merge_heap(p, n, out);
        Cache& c = thread_cache();
        size_t slot = (h ^ (h >> 17)) & (kCacheSlots - 1);
        if (c.owner[slot] == owner_ && c.key_len[slot] == n && std::memcmp(c.key[slot], p, n) == 0) {
            for (size_t i = 0; i < c.ntok[slot]; ++i) out[i] = static_cast<T>(c.tok[slot][i]);
            return c.ntok[slot];
        }
        uint32_t tmp[kCacheKey];
        size_t m = merge_small(p, n, tmp);
        c.owner[slot] = owner_;
        c.key_len[slot] = static_cast<uint8_t>(n);
        c.ntok[slot] = static_cast<uint8_t>(m);
        std::memcpy(c.key[slot], p, n);
        std::memcpy(c.tok[slot], tmp, m * sizeof(uint32_t));
        for (size_t i = 0; i < m; ++i) out[i] = static_cast<T>(tmp[i]);
        return m;
    }

    // Simple rescan: find the lowest-ranked adjacent pair (leftmost on ties), merge, update its two neighbours.
    template <class T>
    size_t merge_small(const uint8_t* p, size_t n, T* out) const {
        uint32_t tok[kSmallPiece], rank[kSmallPiece];
        size_t m = n;
        for (size_t i = 0; i < m; ++i) tok[i] = p[i];
        for (size_t i = 0; i + 1 < m; ++i) rank[i] = byte_pairs_[(tok[i] << 8) | tok[i + 1]];
        while (m > 1) {
            size_t best = 0;
            uint32_t best_rank = kNone;
            for (size_t i = 0; i + 1 < m; ++i) {
                if (rank[i] < best_rank) {
                    best_rank = rank[i];
                    best = i;
                }
            }
            if (best_rank == kNone) break;
            tok[best] = best_rank;
            std::memmove(tok + best + 1, tok + best + 2, (m - best - 2) * sizeof(uint32_t));
            std::memmove(rank + best + 1, rank + best + 2, (m - best - 2) * sizeof(uint32_t));
            --m;
            if (best + 1 < m) rank[best] = pair(tok[best], tok[best + 1]);
            if (best > 0) rank[best - 1] = pair(tok[best - 1], tok[best]);
        }
        for (size_t i = 0; i < m; ++i) out[i] = static_cast<T>(tok[i]);
        return m;
    }

    // Linked list of parts + lazy min-heap of (rank << 32 | position): O(n log n) for long pieces.
    template <class T>
    size_t merge_heap(const uint8_t* p, size_t n, T* out) const {
        Scratch& s = thread_scratch();
        s.tok.assign(p, p + n);
        s.nxt.resize(n);
        s.prv.resize(n);
        s.heap.clear();
        uint32_t* tok = s.tok.data();
        uint32_t* nxt = s.nxt.data();
        uint32_t* prv = s.prv.data();
        const uint32_t end = static_cast<uint32_t>(n);
        auto push = [&s](uint32_t rank, uint32_t pos) {
            s.heap.push_back((uint64_t(rank) << 32) | pos);
            std::push_heap(s.heap.begin(), s.heap.end(), std::greater<uint64_t>());
        };
        for (uint32_t i = 0; i < end; ++i) {
            nxt[i] = i + 1;
            prv[i] = i == 0 ? kNone : i - 1;
        }
        for (uint32_t i = 0; i + 1 < end; ++i) {
            uint32_t r = byte_pairs_[(tok[i] << 8) | tok[i + 1]];
            if (r != kNone) s.heap.push_back((uint64_t(r) << 32) | i);
        }
        std::make_heap(s.heap.begin(), s.heap.end(), std::greater<uint64_t>());
        while (!s.heap.empty()) {
            std::pop_heap(s.heap.begin(), s.heap.end(), std::greater<uint64_t>());
            uint64_t top = s.heap.back();
            s.heap.pop_back();
            uint32_t rank = static_cast<uint32_t>(top >> 32), i = static_cast<uint32_t>(top);
            if (tok[i] == kNone) continue;  // part was merged into its left neighbour
            uint32_t j = nxt[i];
            if (j == end || pair(tok[i], tok[j]) != rank) continue;  // stale entry
            tok[i] = rank;
            tok[j] = kNone;
            uint32_t k = nxt[j];
            nxt[i] = k;
            if (k != end) {
                prv[k] = i;
                uint32_t r = pair(tok[i], tok[k]);
                if (r != kNone) push(r, i);
            }
            if (prv[i] != kNone) {
                uint32_t r = pair(tok[prv[i]], tok[i]);
                if (r != kNone) push(r, prv[i]);
            }
        }
        size_t m = 0;
        for (uint32_t i = 0; i != end; i = nxt[i]) out[m++] = static_cast<T>(tok[i]);
        return m;
    }

    // Split s[0..n) with the built-in pattern and encode; out has capacity >= n. Returns the number of tokens.
    template <class T>
    size_t encode_text(const uint8_t* s, size_t n, T* out) const {
        PretokPattern pat = static_cast<PretokPattern>(pattern_);
        size_t pos = 0, m = 0;
        while (pos < n) {
            size_t e = pretok_next(pat, s, n, pos);
            if (e <= pos || e > n) e = pos + 1;  // defensive: never loop forever or read past the end
            m += encode_piece(s + pos, e - pos, out + m);
            pos = e;
        }
        return m;
    }

  private:
    struct Slot {
        uint64_t head;  // first 8 bytes of the token, zero padded
        uint32_t id1;   // id + 1; 0 = empty
        uint16_t tag;   // high hash bits, to skip most compares
        uint16_t len;   // token length, capped at 0xFFFF (the exact length is checked for long tokens)
    };
    uint64_t owner_;
    uint32_t num_ordinary_;
    int pattern_;
    std::string data_;
    std::vector<uint32_t> offsets_;
    std::vector<Slot> slots_;
    size_t slot_mask_ = 0;
    size_t max_len_ = 1;
    struct PairSlot {
        uint64_t key;  // left << 32 | right; ~0 = empty
        uint32_t val;  // merged id
    };
    std::vector<PairSlot> pairs_;
    std::vector<uint32_t> byte_pairs_;  // dense 256x256 table for the first round of merges (256 KiB)
    size_t pair_mask_ = 0;
};

// ------------------------------------------------------------------------------------------- Python glue

struct EncoderObject {
    PyObject_HEAD Encoder* enc;
    // One int object per id, built once: lists of ids are filled with INCREFs instead of allocations
    // (building the result list was a third of the time of `encode` on code).
    std::vector<PyObject*>* ints;
};

void free_ints(EncoderObject* self) {
    if (!self->ints) return;
    for (PyObject* o : *self->ints) Py_DECREF(o);
    delete self->ints;
    self->ints = nullptr;
}

// UTF-8 view of a str (cached by CPython, no copy for ASCII) or of a bytes object. Sets an exception on failure.
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

PyObject* list_from(const uint32_t* ids, size_t m, const std::vector<PyObject*>* ints = nullptr) {
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

// Encode into a new bytearray of `itemsize`-byte ids, sized for the worst case then shrunk (no copy for large ones).
PyObject* encode_into_bytearray(const Encoder* enc, const uint8_t* s, size_t n, int itemsize) {
    PyObject* ba = PyByteArray_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(n * itemsize));
    if (!ba) return nullptr;
    void* buf = PyByteArray_AS_STRING(ba);
    size_t m = 0;
    Py_BEGIN_ALLOW_THREADS;
    m = itemsize == 2 ? enc->encode_text(s, n, static_cast<uint16_t*>(buf)) : enc->encode_text(s, n, static_cast<uint32_t*>(buf));
    Py_END_ALLOW_THREADS;
    if (PyByteArray_Resize(ba, static_cast<Py_ssize_t>(m * itemsize)) < 0) {
        Py_DECREF(ba);
        return nullptr;
    }
    return ba;
}

int Encoder_init(EncoderObject* self, PyObject* args, PyObject*) {
    PyObject* tokens;
    unsigned int num_ordinary;
    int pattern;
    if (!PyArg_ParseTuple(args, "O!Ii", &PyList_Type, &tokens, &num_ordinary, &pattern)) return -1;
    Py_ssize_t count = PyList_GET_SIZE(tokens);
    if (pattern < -1 || pattern > 1) {
        PyErr_Format(PyExc_ValueError, "unknown native pattern id %d", pattern);
        return -1;
    }
    if (count < 256 || num_ordinary < 256 || num_ordinary > static_cast<unsigned int>(count) || count >= 0x7FFFFFFF) {
        PyErr_SetString(PyExc_ValueError, "tokens must start with the 256 byte tokens and hold num_ordinary ids");
        return -1;
    }
    std::vector<std::string> toks;
    toks.reserve(count);
    for (Py_ssize_t i = 0; i < count; ++i) {
        PyObject* t = PyList_GET_ITEM(tokens, i);
        if (!PyBytes_Check(t) || PyBytes_GET_SIZE(t) == 0 || PyBytes_GET_SIZE(t) > 0xFFFFFF) {
            PyErr_Format(PyExc_ValueError, "token %zd must be non-empty bytes", i);
            return -1;
        }
        toks.emplace_back(PyBytes_AS_STRING(t), PyBytes_GET_SIZE(t));
    }
    for (int b = 0; b < 256; ++b) {
        if (toks[b].size() != 1 || static_cast<uint8_t>(toks[b][0]) != b) {
            PyErr_Format(PyExc_ValueError, "token %d must be the single byte %d", b, b);
            return -1;
        }
    }
    delete self->enc;
    self->enc = nullptr;
    free_ints(self);
    try {
        self->enc = new Encoder(std::move(toks), num_ordinary, pattern);
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

bool ready(EncoderObject* self) {
    if (!self->enc) PyErr_SetString(PyExc_RuntimeError, "Encoder not initialized");
    return self->enc != nullptr;
}

PyObject* Encoder_encode(EncoderObject* self, PyObject* text) {
    const uint8_t* s;
    size_t n;
    if (!ready(self) || !check_builtin(self->enc) || !utf8_view(text, &s, &n)) return nullptr;
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
    const uint8_t* s;
    size_t n;
    if (!ready(self) || !PyArg_ParseTuple(args, "Oi", &text, &itemsize)) return nullptr;
    if (itemsize != 2 && itemsize != 4) {
        PyErr_SetString(PyExc_ValueError, "itemsize must be 2 or 4");
        return nullptr;
    }
    if (!check_builtin(self->enc) || !utf8_view(text, &s, &n)) return nullptr;
    return encode_into_bytearray(self->enc, s, n, itemsize);
}

PyObject* Encoder_encode_batch(EncoderObject* self, PyObject* args) {
    PyObject* texts;
    int num_threads, itemsize;
    if (!ready(self) || !PyArg_ParseTuple(args, "O!ii", &PyList_Type, &texts, &num_threads, &itemsize)) return nullptr;
    if (itemsize != 0 && itemsize != 2 && itemsize != 4) {
        PyErr_SetString(PyExc_ValueError, "itemsize must be 0 (lists), 2 or 4");
        return nullptr;
    }
    if (!check_builtin(self->enc)) return nullptr;
    const size_t count = static_cast<size_t>(PyList_GET_SIZE(texts));
    std::vector<const uint8_t*> data(count);
    std::vector<size_t> sizes(count), ntok(count, 0);
    std::vector<std::vector<uint32_t>> lists(itemsize == 0 ? count : 0);
    std::vector<void*> bufs(count, nullptr);
    PyObject* result = PyList_New(static_cast<Py_ssize_t>(count));
    if (!result) return nullptr;
    for (size_t i = 0; i < count; ++i) {
        if (!utf8_view(PyList_GET_ITEM(texts, i), &data[i], &sizes[i])) {
            Py_DECREF(result);
            return nullptr;
        }
        if (itemsize) {
            PyObject* ba = PyByteArray_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(sizes[i] * itemsize));
            if (!ba) {
                Py_DECREF(result);
                return nullptr;
            }
            PyList_SET_ITEM(result, static_cast<Py_ssize_t>(i), ba);
            bufs[i] = PyByteArray_AS_STRING(ba);
        }
    }
    const Encoder* enc = self->enc;
    // Largest texts first (LPT scheduling): one big document handed out last would leave the other threads idle.
    std::vector<size_t> order(count);
    for (size_t i = 0; i < count; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&sizes](size_t a, size_t b) { return sizes[a] > sizes[b]; });
    std::atomic<size_t> next{0};
    std::atomic<bool> oom{false};
    auto work = [&]() {
        std::vector<uint32_t> scratch;
        for (size_t k; (k = next.fetch_add(1)) < count;) {
            const size_t i = order[k];
            try {
                if (itemsize == 2) {
                    ntok[i] = enc->encode_text(data[i], sizes[i], static_cast<uint16_t*>(bufs[i]));
                } else if (itemsize == 4) {
                    ntok[i] = enc->encode_text(data[i], sizes[i], static_cast<uint32_t*>(bufs[i]));
                } else {
                    if (scratch.size() < sizes[i]) scratch.resize(sizes[i]);
                    ntok[i] = enc->encode_text(data[i], sizes[i], scratch.data());
                    lists[i].assign(scratch.begin(), scratch.begin() + ntok[i]);
                }
            } catch (const std::bad_alloc&) {
                oom = true;
            }
        }
    };
    size_t nthreads = std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(std::max(num_threads, 1)), count));
    Py_BEGIN_ALLOW_THREADS;
    std::vector<std::thread> pool;
    try {
        for (size_t t = 1; t < nthreads; ++t) pool.emplace_back(work);
    } catch (const std::system_error&) {
        // could not start more threads: the calling thread does the rest
    }
    work();
    for (auto& th : pool) th.join();
    Py_END_ALLOW_THREADS;
    if (oom) {
        Py_DECREF(result);
        return PyErr_NoMemory();
    }
    for (size_t i = 0; i < count; ++i) {
        if (itemsize) {
            if (PyByteArray_Resize(PyList_GET_ITEM(result, i), static_cast<Py_ssize_t>(ntok[i] * itemsize)) < 0) {
                Py_DECREF(result);
                return nullptr;
            }
        } else {
            PyObject* list = list_from(lists[i].data(), ntok[i], self->ints);
            if (!list) {
                Py_DECREF(result);
                return nullptr;
            }
            PyList_SET_ITEM(result, static_cast<Py_ssize_t>(i), list);
            std::vector<uint32_t>().swap(lists[i]);
        }
    }
    return result;
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
        if (overflow || v < 0 || v >= static_cast<long long>(vocab)) {
            PyObject* repr = PyObject_Repr(items[i]);
            PyErr_Format(PyExc_IndexError, "id %U at position %zd is outside [0, %u)", repr, i, vocab);
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
    const uint8_t* s;
    size_t n;
    if (!ready(self) || !check_builtin(self->enc) || !utf8_view(text, &s, &n)) return nullptr;
    std::vector<uint32_t> ends;
    PretokPattern pat = static_cast<PretokPattern>(self->enc->pattern());
    for (size_t pos = 0; pos < n;) {
        size_t e = pretok_next(pat, s, n, pos);
        if (e <= pos || e > n) {
            PyErr_Format(PyExc_RuntimeError, "pre-tokenizer returned %zu at %zu of %zu", e, pos, n);
            return nullptr;
        }
        ends.push_back(static_cast<uint32_t>(e));
        pos = e;
    }
    return list_from(ends.data(), ends.size());
}

PyObject* Encoder_pattern_id(EncoderObject* self, void*) {
    if (!ready(self)) return nullptr;
    return PyLong_FromLong(self->enc->pattern());
}

PyObject* module_char_class(PyObject*, PyObject* arg) {
    unsigned long cp = PyLong_AsUnsignedLong(arg);
    if (PyErr_Occurred()) return nullptr;
    if (cp >= 0x110000) {
        PyErr_SetString(PyExc_ValueError, "code point out of range");
        return nullptr;
    }
    return PyLong_FromLong(pretok_detail::char_class(static_cast<uint32_t>(cp)));
}

PyMethodDef Encoder_methods[] = {
    {"encode", reinterpret_cast<PyCFunction>(Encoder_encode), METH_O, "encode(text) -> list[int]"},
    {"encode_to_buffer", reinterpret_cast<PyCFunction>(Encoder_encode_to_buffer), METH_VARARGS,
     "encode_to_buffer(text, itemsize) -> bytearray of native-endian uint16/uint32 ids"},
    {"encode_batch", reinterpret_cast<PyCFunction>(Encoder_encode_batch), METH_VARARGS,
     "encode_batch(texts: list, num_threads, itemsize) -> list of lists (itemsize 0) or bytearrays"},
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
    {"char_class", module_char_class, METH_O, "char_class(cp) -> 0 other, 1 letter, 2 number, 3 whitespace"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef encoder_module = {PyModuleDef_HEAD_INIT, "_encoder", "Native BPE encoder.", -1, module_methods};

}  // namespace

PyMODINIT_FUNC PyInit__encoder(void) {
    EncoderType.tp_name = "tokenizer._native._encoder.Encoder";
    EncoderType.tp_basicsize = sizeof(EncoderObject);
    EncoderType.tp_flags = Py_TPFLAGS_DEFAULT;
    EncoderType.tp_doc = "Encoder(tokens: list[bytes], num_ordinary: int, pattern_id: int)";
    EncoderType.tp_new = PyType_GenericNew;
    EncoderType.tp_init = reinterpret_cast<initproc>(Encoder_init);
    EncoderType.tp_dealloc = reinterpret_cast<destructor>(Encoder_dealloc);
    EncoderType.tp_methods = Encoder_methods;
    EncoderType.tp_getset = Encoder_getset;
    if (PyType_Ready(&EncoderType) < 0) return nullptr;
    PyObject* m = PyModule_Create(&encoder_module);
    if (!m) return nullptr;
    Py_INCREF(&EncoderType);
    if (PyModule_AddObject(m, "Encoder", reinterpret_cast<PyObject*>(&EncoderType)) < 0) {
        Py_DECREF(&EncoderType);
        Py_DECREF(m);
        return nullptr;
    }
    return m;
}
