// Check many tiny shard files against their manifest records in one call, with the GIL released: the fast path of
// `shardstore verify` and of loading the in-memory runs of a tiny-shard store (shardstore.store.verify / runs).
//
// check_shards(root, names, rows, lo, hi, max_size, status, fids, stored, into, into_at) -> bytes read
//   root: bytes, the store directory; names: the manifest's names blob; rows: uint64 records of six per shard
//   (num_tokens, num_docs, size, checksum, header checksum or 0, end of its name in `names`: manifest.idx's
//   layout). Shards [lo, hi) are checked; their results go to element i - lo of
//   status (uint8): 0 = every byte checked and bound to its manifest record; 1 = something is wrong (missing,
//     unreadable, not a regular file, wrong size, any checksum or format rule broken); 2 = not tried here (file
//     above max_size, a name with '/', a symlink: the Python path resolves and checks those);
//   fids (uint64 x 4: st_dev, st_ino, st_size, st_ctime_ns as two's complement) and stored (the header checksum the
//     file stores), both written for status 0 only.
//   into / into_at: None, or a writable buffer and one uint64 offset per shard of [lo, hi): shard i's bytes are read
//     to into[into_at[i - lo]:] (a run keeps them); else they go to a scratch buffer.
// A nonzero status says nothing of why: the caller re-checks that file with the Python checker (verify.py), which
// names the file, offset and rule exactly, so the messages are one implementation. Each file is opened with
// O_NOFOLLOW, fstat'ed, read with read() up to its manifest size and closed; every byte is hashed once in memory
// (xxh3_64, seed 0: the format's checksum). Every length derived from the inputs is bounds-checked before use.

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "pybuf.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#define XXH_INLINE_ALL
#define XXH_STATIC_LINKING_ONLY
#include "xxhash.h"

namespace {

constexpr uint64_t kHeaderSize = 4096;  // format.HEADER_SIZE
constexpr uint64_t kHeaderUsed = 104;   // format.HEADER_USED
constexpr uint64_t kChecked = 96;       // the header checksum covers bytes [0, 96)
constexpr uint64_t kMinBlock = 1u << 12, kMaxBlock = 1u << 26;
constexpr uint64_t kMaxTokens = 1ull << 48;
constexpr int kCols = 6;

using shardbuf::Buffer;
using shardbuf::get;

inline uint64_t le64(const unsigned char* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;  // x86-64 / aarch64 little-endian: the format is little-endian
}

inline uint64_t hash(const unsigned char* p, uint64_t n) { return XXH3_64bits(p, static_cast<size_t>(n)); }

bool all_zero(const unsigned char* p, uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) {
        if (p[i]) return false;
    }
    return true;
}

// Every rule of format._check_sections / parse_header and the manifest binding of check_shard_bytes_header.
bool sound(const unsigned char* b, uint64_t size, const uint64_t* rec, uint64_t* stored) {
    if (size < kHeaderSize || std::memcmp(b, "SHRDSTOR", 8) != 0) return false;
    uint32_t version;
    uint16_t token_bytes, flags;
    std::memcpy(&version, b + 8, 4);
    std::memcpy(&token_bytes, b + 12, 2);
    std::memcpy(&flags, b + 14, 2);
    const uint64_t block = le64(b + 16), tokens = le64(b + 24), docs = le64(b + 32), blocks = le64(b + 40);
    const uint64_t pay_off = le64(b + 48), doc_off = le64(b + 56), sums_off = le64(b + 64), fsize = le64(b + 72);
    const uint64_t doc_sum = le64(b + 80), sums_sum = le64(b + 88), head_sum = le64(b + 96);
    if (version != 1 || hash(b, kChecked) != head_sum || !all_zero(b + kHeaderUsed, kHeaderSize - kHeaderUsed)) {
        return false;
    }
    if ((token_bytes != 2 && token_bytes != 4) || flags != 0) return false;
    if ((block & (block - 1)) != 0 || block < kMinBlock || block > kMaxBlock) return false;
    if (tokens > kMaxTokens || docs > kMaxTokens) return false;
    const uint64_t payload = tokens * token_bytes;  // < 2^51: no overflow below
    const uint64_t want_blocks = (payload + block - 1) / block;
    const uint64_t want_doc = (kHeaderSize + payload + 7) & ~uint64_t{7};
    const uint64_t want_sums = want_doc + (docs + 1) * 8;
    const uint64_t want_size = want_sums + want_blocks * 8;
    if (blocks != want_blocks || pay_off != kHeaderSize || doc_off != want_doc || sums_off != want_sums ||
        fsize != want_size || size != fsize) {
        return false;
    }
    if (rec[0] != tokens || rec[1] != docs) return false;
    const uint64_t pay_end = kHeaderSize + payload;
    if (!all_zero(b + pay_end, doc_off - pay_end)) return false;
    if (hash(b + doc_off, sums_off - doc_off) != doc_sum) return false;
    const unsigned char* offs = b + doc_off;
    uint64_t prev = le64(offs);
    if (prev != 0 || le64(offs + 8 * docs) != tokens) return false;
    for (uint64_t d = 1; d <= docs; ++d) {
        const uint64_t cur = le64(offs + 8 * d);
        if (cur < prev) return false;
        prev = cur;
    }
    if (hash(b + sums_off, fsize - sums_off) != sums_sum) return false;
    for (uint64_t k = 0; k < blocks; ++k) {
        const uint64_t start = kHeaderSize + k * block;
        const uint64_t stop = start + block < pay_end ? start + block : pay_end;
        if (hash(b + start, stop - start) != le64(b + sums_off + 8 * k)) return false;
    }
    if (rec[4] != 0 ? head_sum != rec[4] : hash(b, size) != rec[3]) return false;
    *stored = head_sum;
    return true;
}

// One file: 0, 1 or 2 as documented above; `got` counts the bytes read.
uint8_t check_one(const std::string& path, const uint64_t* rec, unsigned char* dst, uint64_t* fid, uint64_t* stored,
                  uint64_t* got) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return errno == ELOOP ? 2 : 1;
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != rec[2]) {
        ::close(fd);
        return 1;
    }
    const uint64_t size = rec[2];
    uint64_t have = 0;
    while (have < size) {
        const ssize_t n = ::read(fd, dst + have, static_cast<size_t>(size - have));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        have += static_cast<uint64_t>(n);
    }
    ::close(fd);
    *got += have;
    if (have != size || !sound(dst, size, rec, stored)) return 1;
    fid[0] = static_cast<uint64_t>(st.st_dev);
    fid[1] = static_cast<uint64_t>(st.st_ino);
    fid[2] = static_cast<uint64_t>(st.st_size);
    fid[3] = static_cast<uint64_t>(static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec);
    return 0;
}

PyObject* check_shards(PyObject*, PyObject* args) {
    PyObject *root_o, *names_o, *rows_o, *status_o, *fids_o, *stored_o, *into_o, *at_o;
    Py_ssize_t lo, hi, max_size;
    if (!PyArg_ParseTuple(args, "O!OOnnnOOOOO", &PyBytes_Type, &root_o, &names_o, &rows_o, &lo, &hi, &max_size,
                          &status_o, &fids_o, &stored_o, &into_o, &at_o)) {
        return nullptr;
    }
    Buffer names, rows, status, fids, stored, into, at;
    if (!get(names_o, names, PyBUF_SIMPLE, "check_shards: names") ||
        !get(rows_o, rows, PyBUF_SIMPLE, "check_shards: rows") ||
        !get(status_o, status, PyBUF_WRITABLE, "check_shards: status") ||
        !get(fids_o, fids, PyBUF_WRITABLE, "check_shards: fids") ||
        !get(stored_o, stored, PyBUF_WRITABLE, "check_shards: stored")) {
        return nullptr;
    }
    const bool own = into_o == Py_None;
    if (!own && (!get(into_o, into, PyBUF_WRITABLE, "check_shards: into") ||
                 !get(at_o, at, PyBUF_SIMPLE, "check_shards: into_at"))) {
        return nullptr;
    }
    const Py_ssize_t num_rows = rows.view.len / (8 * kCols);
    const Py_ssize_t n = hi - lo;
    if (lo < 0 || hi < lo || hi > num_rows || max_size < 0 || status.view.len < n || fids.view.len < n * 32 ||
        stored.view.len < n * 8 || (!own && at.view.len < n * 8)) {
        PyErr_Format(PyExc_ValueError, "check_shards: shards [%zd, %zd) of %zd rows do not fit the outputs", lo, hi,
                     num_rows);
        return nullptr;
    }
    const auto* rec = static_cast<const uint64_t*>(rows.view.buf);
    const auto* nm = static_cast<const char*>(names.view.buf);
    const auto nm_len = static_cast<uint64_t>(names.view.len);
    std::string path(PyBytes_AS_STRING(root_o), static_cast<size_t>(PyBytes_GET_SIZE(root_o)));
    path.push_back('/');
    const size_t base = path.size();
    // Validate every input-derived extent before anything is read.
    for (Py_ssize_t i = lo; i < hi; ++i) {
        const uint64_t start = i ? rec[(i - 1) * kCols + 5] : 0, end = rec[i * kCols + 5];
        if (end < start || end > nm_len) {
            PyErr_Format(PyExc_ValueError, "check_shards: name of shard %zd lies outside the names blob", i);
            return nullptr;
        }
        if (!own) {
            const uint64_t off = static_cast<const uint64_t*>(at.view.buf)[i - lo];
            const uint64_t size = rec[i * kCols + 2];
            if (size <= static_cast<uint64_t>(max_size) &&
                (off > static_cast<uint64_t>(into.view.len) || size > static_cast<uint64_t>(into.view.len) - off)) {
                PyErr_Format(PyExc_ValueError, "check_shards: shard %zd does not fit `into`", i);
                return nullptr;
            }
        }
    }
    auto* st = static_cast<uint8_t*>(status.view.buf);
    auto* fid = static_cast<uint64_t*>(fids.view.buf);
    auto* sto = static_cast<uint64_t*>(stored.view.buf);
    uint64_t got = 0;
    Py_BEGIN_ALLOW_THREADS;
    std::vector<unsigned char> scratch;
    for (Py_ssize_t i = lo; i < hi; ++i) {
        const uint64_t* r = rec + i * kCols;
        const uint64_t start = i ? rec[(i - 1) * kCols + 5] : 0, end = r[5];
        const char* name = nm + start;
        const size_t len = static_cast<size_t>(end - start);
        const Py_ssize_t j = i - lo;
        if (r[2] > static_cast<uint64_t>(max_size) || len == 0 || base + len >= PATH_MAX ||
            std::memchr(name, '/', len) != nullptr || std::memchr(name, '\0', len) != nullptr) {
            st[j] = 2;
            continue;
        }
        path.resize(base);
        path.append(name, len);
        unsigned char* dst;
        if (own) {
            if (scratch.size() < r[2]) scratch.resize(static_cast<size_t>(r[2]));
            dst = scratch.data();
        } else {
            dst = static_cast<unsigned char*>(into.view.buf) + static_cast<const uint64_t*>(at.view.buf)[j];
        }
        st[j] = check_one(path, r, dst, fid + 4 * j, sto + j, &got);
    }
    Py_END_ALLOW_THREADS;
    return PyLong_FromUnsignedLongLong(got);
}

PyObject* xxh3_64(PyObject*, PyObject* arg) {
    Buffer b;
    if (!get(arg, b, PyBUF_SIMPLE, "xxh3_64: data")) return nullptr;
    return PyLong_FromUnsignedLongLong(
        hash(static_cast<const unsigned char*>(b.view.buf), static_cast<uint64_t>(b.view.len)));
}

PyMethodDef methods[] = {
    {"check_shards", check_shards, METH_VARARGS, "Check tiny shard files against manifest records (verifybatch.cc)."},
    {"xxh3_64", xxh3_64, METH_O, "xxh3_64 (seed 0) of a buffer, as this module computes it (for tests)."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_verifybatch", "Batch checks of tiny shard files", -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit__verifybatch(void) { return PyModule_Create(&module); }
