// Hash maps used only by the BPE trainer (trainer.cc).
//
// PieceMap: bytes -> u64 count, open addressing with linear probing, keys copied once into an arena.
// PairMap:  u64 key (left id << 32 | right id) -> u32 index, open addressing with linear probing.
// Neither supports deletion: the trainer never needs it (dead pairs keep count 0), which keeps probing simple.
// Iteration order of these maps is never observable in results: counts are sums and every choice the trainer
// makes is broken by byte content.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace train {

inline uint64_t mix64(uint64_t x) {
    // murmur3 fmix64: every input bit affects every output bit.
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

inline uint64_t hash_bytes(const uint8_t* p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xff51afd7ed558ccdULL);
    while (n >= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        h = (h ^ mix64(w)) * 0x100000001b3ULL;
        h = (h << 29) | (h >> 35);
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    std::memcpy(&w, p, n);  // n < 8
    h ^= w + 0x2545F4914F6CDD1DULL;
    return mix64(h);
}

class PieceMap {
  public:
    // Pieces of at most 8 bytes (most of them) live inside the slot, zero-padded, so a lookup costs one cache miss
    // instead of two; longer ones live in the arena.
    static constexpr size_t kInline = 8;

    struct Slot {
        uint64_t hash;
        uint64_t count;
        uint64_t key;  // the piece itself when len <= kInline, else its offset in the arena
        uint32_t len;
        bool used;
    };

    PieceMap() { slots_.resize(16); }

    size_t size() const { return size_; }
    const std::vector<Slot>& slots() const { return slots_; }
    const uint8_t* key(const Slot& s) const {
        if (s.len <= kInline) return reinterpret_cast<const uint8_t*>(&s.key);
        return reinterpret_cast<const uint8_t*>(arena_.data()) + s.key;
    }
    size_t arena_bytes() const { return arena_.size(); }

    // A hint: the slot where the piece of hash h starts probing will be needed soon.
    void prefetch(uint64_t h) const { __builtin_prefetch(&slots_[static_cast<size_t>(h) & (slots_.size() - 1)]); }

    // Adds `count` to the entry of piece p[0..n) whose hash is h (== hash_bytes(p, n)).
    void add(const uint8_t* p, size_t n, uint64_t h, uint64_t count) {
        if (n > UINT32_MAX) throw std::length_error("a pre-tokenized piece is longer than 4 GiB");
        if ((size_ + 1) * 4 > slots_.size() * 3) grow();
        uint64_t word = 0;
        if (n <= kInline) std::memcpy(&word, p, n);
        size_t mask = slots_.size() - 1;
        size_t i = static_cast<size_t>(h) & mask;
        for (;;) {
            Slot& s = slots_[i];
            if (!s.used) {
                s.used = true;
                s.hash = h;
                s.count = count;
                s.len = static_cast<uint32_t>(n);
                if (n <= kInline) {
                    s.key = word;
                } else {
                    s.key = arena_.size();
                    arena_.append(reinterpret_cast<const char*>(p), n);
                }
                ++size_;
                return;
            }
            if (s.hash == h && s.len == n &&
                (n <= kInline ? s.key == word : std::memcmp(arena_.data() + s.key, p, n) == 0)) {
                s.count += count;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    void clear() {
        std::vector<Slot>(16).swap(slots_);
        std::string().swap(arena_);
        size_ = 0;
    }

  private:
    void grow() {
        std::vector<Slot> old(slots_.size() * 2);
        old.swap(slots_);
        size_t mask = slots_.size() - 1;
        for (const Slot& s : old) {
            if (!s.used) continue;
            size_t i = static_cast<size_t>(s.hash) & mask;
            while (slots_[i].used) i = (i + 1) & mask;
            slots_[i] = s;
        }
    }

    std::vector<Slot> slots_;
    std::string arena_;
    size_t size_ = 0;
};

class PairMap {
  public:
    static constexpr uint32_t kMissing = UINT32_MAX;

    PairMap() { reset(16); }

    uint32_t find(uint64_t key) const {
        size_t mask = slots_.size() - 1;
        size_t i = static_cast<size_t>(mix64(key)) & mask;
        for (;;) {
            const Slot& s = slots_[i];
            if (s.val == kMissing) return kMissing;
            if (s.key == key) return s.val;
            i = (i + 1) & mask;
        }
    }

    // Returns the value of `key`, inserting `fresh` first if the key is absent; `inserted` says which happened.
    uint32_t find_or_insert(uint64_t key, uint32_t fresh, bool& inserted) {
        if ((size_ + 1) * 2 > slots_.size()) rehash(slots_.size() * 2);
        size_t mask = slots_.size() - 1;
        size_t i = static_cast<size_t>(mix64(key)) & mask;
        for (;;) {
            Slot& s = slots_[i];
            if (s.val == kMissing) {
                s.key = key;
                s.val = fresh;
                ++size_;
                inserted = true;
                return fresh;
            }
            if (s.key == key) {
                inserted = false;
                return s.val;
            }
            i = (i + 1) & mask;
        }
    }

    void reserve(size_t n) {
        size_t cap = 16;
        while (cap < n * 2 + 2) cap *= 2;
        if (cap > slots_.size()) rehash(cap);
    }

  private:
    // Key and value side by side: one cache miss per probe.
    struct Slot {
        uint64_t key;
        uint32_t val;
    };

    void reset(size_t cap) {
        slots_.assign(cap, Slot{0, kMissing});
        size_ = 0;
    }
    void rehash(size_t cap) {
        std::vector<Slot> old;
        old.swap(slots_);
        reset(cap);
        size_t mask = cap - 1;
        for (const Slot& o : old) {
            if (o.val == kMissing) continue;
            size_t i = static_cast<size_t>(mix64(o.key)) & mask;
            while (slots_[i].val != kMissing) i = (i + 1) & mask;
            slots_[i] = o;
            ++size_;
        }
    }

    std::vector<Slot> slots_;
    size_t size_ = 0;
};

}  // namespace train
