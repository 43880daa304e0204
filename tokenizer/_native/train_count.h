// Parallel counting of pre-tokenized pieces for the BPE trainer (trainer.cc).  No Python in here.
//
// Every thread pulls whole texts from a shared atomic cursor, splits them with the hand-written pre-tokenizer
// (pretok.h) and counts pieces into its own maps, sharded by hash into 64 shards.  Then the shards are merged into
// the global maps in parallel (thread t owns shards t, t+T, ...).  Sums commute, so the counts never depend on the
// thread count or on which thread took which text.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "pretok.h"
#include "train_maps.h"

namespace train {

constexpr int kShardBits = 6;
constexpr size_t kShards = size_t{1} << kShardBits;

inline size_t shard_of(uint64_t h) { return static_cast<size_t>(h >> (64 - kShardBits)); }

using Shards = std::vector<PieceMap>;
using TextRef = std::pair<const uint8_t*, size_t>;

// Runs fn(0..n-1), fn(t) on its own thread for t > 0, and returns the first error message ("" if none).  Never
// throws: an exception inside a task is recorded, and a task whose thread cannot be started runs on the caller.
template <class Fn>
std::string run_parallel(size_t n, Fn fn) {
    std::vector<std::string> errors(n);
    auto task = [&](size_t t) {
        try {
            fn(t);
        } catch (const std::bad_alloc&) {
            errors[t] = "out of memory";
        } catch (const std::exception& e) {
            errors[t] = e.what();
        }
    };
    std::vector<std::thread> pool;
    size_t started = 1;
    try {
        pool.reserve(n);
        for (; started < n; ++started) pool.emplace_back(task, started);
    } catch (...) {
    }
    task(0);
    for (size_t t = started; t < n; ++t) task(t);
    for (auto& th : pool) th.join();
    for (const auto& e : errors) {
        if (!e.empty()) return e;
    }
    return "";
}

// Merges per-thread shards into the global ones (emptying them); thread t owns global shards t, t+T, ...
inline std::string merge_shards(Shards& global, std::vector<Shards>& locals, size_t nthreads) {
    return run_parallel(nthreads, [&](size_t t) {
        for (size_t s = t; s < kShards; s += nthreads) {
            for (Shards& local : locals) {
                const PieceMap& m = local[s];
                for (const auto& slot : m.slots()) {
                    if (slot.used) global[s].add(m.key(slot), slot.len, slot.hash, slot.count);
                }
                local[s].clear();
            }
        }
    });
}

// Splits and counts one thread's share of `texts` into `mine`; returns the number of pieces.
template <class Next>
inline uint64_t count_share(Next split, const std::vector<TextRef>& texts, std::atomic<size_t>& next,
                            Shards& mine) {
    // Software pipeline: a piece is split and hashed and its slot prefetched; it is inserted kLag pieces later,
    // so the (cache-missing) hash-table probe overlaps the splitting of the following pieces.
    constexpr size_t kLag = 8;
    struct Pending {
        const uint8_t* p;
        size_t n;
        uint64_t h;
    } ring[kLag];
    size_t queued = 0;
    for (size_t k; (k = next.fetch_add(1, std::memory_order_relaxed)) < texts.size();) {
        const uint8_t* s = texts[k].first;
        const size_t len = texts[k].second;
        size_t pos = 0;
        while (pos < len) {
            size_t end = split(s, len, pos);
            if (end <= pos || end > len) throw std::logic_error("pre-tokenizer returned an invalid offset");
            uint64_t h = hash_bytes(s + pos, end - pos);
            Pending& slot = ring[queued % kLag];
            if (queued >= kLag) mine[shard_of(slot.h)].add(slot.p, slot.n, slot.h, 1);
            slot = Pending{s + pos, end - pos, h};
            mine[shard_of(h)].prefetch(h);
            ++queued;
            pos = end;
        }
    }
    for (size_t q = queued > kLag ? queued - kLag : 0; q < queued; ++q) {
        const Pending& slot = ring[q % kLag];
        mine[shard_of(slot.h)].add(slot.p, slot.n, slot.h, 1);
    }
    return queued;
}

// Counts the pieces of `texts` (valid UTF-8) into `global` on up to `num_threads` threads; adds the number of
// pieces to `pieces`.  Returns "" or an error message; never throws.  A batch is added only once it was counted
// completely, so on error `global` is unchanged -- unless merging itself ran out of memory, which the message says.
inline std::string count_texts(PretokPattern pat, const std::vector<TextRef>& texts, size_t num_threads,
                               Shards& global, uint64_t& pieces) {
    try {
        const size_t nthreads = std::max<size_t>(1, std::min(num_threads, texts.size()));
        std::vector<Shards> locals(nthreads, Shards(kShards));
        std::vector<uint64_t> counts(nthreads, 0);
        std::atomic<size_t> next{0};
        std::string err = run_parallel(nthreads, [&](size_t t) {
            counts[t] = pretok_with(pat, [&](auto split) { return count_share(split, texts, next, locals[t]); });
        });
        if (!err.empty()) return err;
        err = merge_shards(global, locals, nthreads);
        if (!err.empty()) return err + " while adding a batch's counts; this counter is now incomplete";
        for (uint64_t c : counts) pieces += c;
        return "";
    } catch (const std::bad_alloc&) {
        return "out of memory";
    } catch (const std::exception& e) {
        return e.what();
    }
}

}  // namespace train
