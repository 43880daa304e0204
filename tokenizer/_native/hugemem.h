// Fixed-size arrays for the encoder's large random-access tables, on 2 MiB pages where the kernel allows it.
//
// A short piece costs about one random load into the token table (4 MiB for cl100k), and on 4 KiB pages nearly
// every such load also misses the TLB: the page walk, not the cache miss, is what the encoder waits on (under a
// hypervisor a walk is two-dimensional). With transparent huge pages in "madvise" mode (the common default) the
// kernel backs a region with 2 MiB pages only when asked, and only its 2 MiB-aligned parts, so arrays of at least
// 1 MiB are mapped 2 MiB-aligned and advised MADV_HUGEPAGE; smaller ones, and other systems, use operator new.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace bpe {

inline constexpr size_t kHugePage = size_t{2} << 20;

// Raw memory of at least `bytes`, zero-filled; release with huge_free(p, bytes). Throws std::bad_alloc.
inline void* huge_alloc(size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes >= kHugePage / 2) {
        const size_t size = (bytes + kHugePage - 1) & ~(kHugePage - 1);
        void* raw = mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (raw == MAP_FAILED) throw std::bad_alloc();
        const uintptr_t base = reinterpret_cast<uintptr_t>(raw);
        const uintptr_t start = (base + kHugePage - 1) & ~(uintptr_t(kHugePage) - 1);
        if (start > base) munmap(raw, start - base);  // trim to a 2 MiB-aligned region of `size` bytes
        const uintptr_t tail = base + size + kHugePage - (start + size);
        if (tail) munmap(reinterpret_cast<void*>(start + size), tail);
        void* p = reinterpret_cast<void*>(start);
        madvise(p, size, MADV_HUGEPAGE);  // advice only: without THP the region stays on 4 KiB pages
        return p;
    }
#endif
    return ::operator new(bytes);
}

inline void huge_free(void* p, size_t bytes) {
    if (!p) return;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes >= kHugePage / 2) {
        munmap(p, (bytes + kHugePage - 1) & ~(kHugePage - 1));
        return;
    }
#endif
    (void)bytes;
    ::operator delete(p);
}

// A fixed-size array of trivially copyable T (assign() sizes and fills it); move-only.
template <class T>
class HugeArray {
    static_assert(std::is_trivially_copyable<T>::value, "HugeArray holds plain table slots");

  public:
    HugeArray() = default;
    HugeArray(const HugeArray&) = delete;
    HugeArray& operator=(const HugeArray&) = delete;
    ~HugeArray() { huge_free(data_, size_ * sizeof(T)); }

    void assign(size_t n, const T& value) {
        T* fresh = static_cast<T*>(huge_alloc(std::max<size_t>(n, 1) * sizeof(T)));
        huge_free(data_, size_ * sizeof(T));
        data_ = fresh;
        size_ = std::max<size_t>(n, 1);
        std::fill(data_, data_ + size_, value);
    }
    size_t size() const { return size_; }
    T& operator[](size_t i) { return data_[i]; }
    const T& operator[](size_t i) const { return data_[i]; }
    T* data() { return data_; }
    const T* data() const { return data_; }

  private:
    T* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace bpe
