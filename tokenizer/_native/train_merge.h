// BPE merge learning over unique pre-tokenized pieces ("words") with u64 counts.  No Python in here.
//
// Algorithm (the classic one, done carefully):
//   * every unique word is a run of token ids in one flat array; words of one byte carry no pair and are dropped;
//   * a pair table holds, per adjacent pair (left id, right id): its count (sum of word counts over occurrences)
//     and the list of words it was ever seen in (entries may go stale; a stale word is scanned and skipped);
//   * a lazy max-heap holds one entry per live pair.  Counts of existing pairs only ever go DOWN (a merge creates
//     pairs that all contain the new token), so a popped entry whose recorded count is above the current one is
//     simply pushed back with the current count, and pairs created by a merge are pushed once, after the merge;
//   * applying a merge rewrites only the words on the pair's list, in place, left to right, non-overlapping,
//     and adjusts the neighbouring pairs' counts by the word's count.
// Ties: the highest count wins; among equal counts the smallest (left bytes, right bytes) wins, comparing the
// left token's bytes first, then the right token's, as unsigned bytes (Python `bytes` order).  This is a total
// order on pairs, so the result depends only on the multiset of pieces -- never on thread count, hash order or
// word order.
// A pair whose concatenation is already a token is never merged (it would create a second id for the same
// bytes, which no rank-based encoder such as tiktoken can represent); it stays in the words as two tokens.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "train_maps.h"

namespace train {

class BpeMerger {
  public:
    struct Word {
        uint64_t count;
        uint64_t start;
        uint32_t len;
    };

    // `add_word` every unique piece first, then `init()` once, then `step()` as often as wanted.
    void add_word(const uint8_t* p, size_t n, uint64_t count) {
        if (n < 2 || count == 0) return;
        if (n > UINT32_MAX) throw std::length_error("a pre-tokenized piece is longer than 4 GiB");
        if (words_.size() >= UINT32_MAX - 1) throw std::length_error("more than 4 billion unique pieces");
        words_.push_back(Word{count, syms_.size(), static_cast<uint32_t>(n)});
        for (size_t i = 0; i < n; ++i) syms_.push_back(p[i]);
    }

    void init() {
        tokens_.reserve(65536);
        for (int b = 0; b < 256; ++b) {
            tokens_.emplace_back(1, static_cast<char>(b));
            vocab_.insert(tokens_.back());
        }
        for (uint32_t w = 0; w < words_.size(); ++w) {
            const Word& wd = words_[w];
            const uint32_t* s = syms_.data() + wd.start;
            for (uint32_t i = 0; i + 1 < wd.len; ++i) {
                uint32_t idx = pair_index(s[i], s[i + 1]);
                Pair& p = pairs_[idx];
                p.count += wd.count;
                if (p.last_word != w) {
                    p.last_word = w;
                    p.words.push_back(w);
                }
            }
        }
        heap_.reserve(pairs_.size());
        for (uint32_t i = 0; i < pairs_.size(); ++i) heap_.push_back(entry(i));
        std::make_heap(heap_.begin(), heap_.end(), Lower{this});
    }

    size_t num_words() const { return words_.size(); }
    size_t num_pairs() const { return pairs_.size(); }
    bool exhausted() const { return exhausted_; }
    size_t num_skipped() const { return skipped_; }

    // Learns up to `max_merges` more merges; stops early (and sets exhausted()) when no pair is left or the
    // best pair's count is below `min_frequency`.  Appends (left bytes, right bytes) of each merge to `out`.
    void step(size_t max_merges, uint64_t min_frequency, std::vector<std::pair<std::string, std::string>>& out) {
        size_t done = 0;
        while (done < max_merges) {
            if (heap_.empty()) {
                exhausted_ = true;
                return;
            }
            std::pop_heap(heap_.begin(), heap_.end(), Lower{this});
            Entry top = heap_.back();
            heap_.pop_back();
            const Pair& p = pairs_[top.idx];
            if (p.count == 0) continue;  // dead: every occurrence was merged away
            if (p.count != top.count) {  // stale: the count went down since this entry was pushed
                push(entry(top.idx));
                continue;
            }
            if (p.count < min_frequency) {
                push(top);
                exhausted_ = true;
                return;
            }
            std::string merged = tokens_[p.left] + tokens_[p.right];
            if (vocab_.count(merged)) {  // would duplicate a token: never merged (see header comment)
                std::vector<uint32_t>().swap(pairs_[top.idx].words);
                ++skipped_;
                continue;
            }
            out.emplace_back(tokens_[p.left], tokens_[p.right]);
            apply(top.idx, std::move(merged));
            ++done;
        }
    }

  private:
    struct Pair {
        uint64_t count = 0;
        uint32_t left = 0, right = 0;
        uint32_t last_word = UINT32_MAX;
        uint32_t touched_step = UINT32_MAX;
        std::vector<uint32_t> words;
    };
    // The pair's ids ride along so that comparing two entries does not have to look the pairs up.
    struct Entry {
        uint64_t count;
        uint32_t idx;
        uint32_t left, right;
    };
    Entry entry(uint32_t idx) const { return Entry{pairs_[idx].count, idx, pairs_[idx].left, pairs_[idx].right}; }
    // Heap order: x < y when x has lower priority (smaller count, or equal count and larger byte content).
    struct Lower {
        const BpeMerger* m;
        bool operator()(const Entry& x, const Entry& y) const {
            if (x.count != y.count) return x.count < y.count;
            if (x.left != y.left) {
                int c = m->tokens_[x.left].compare(m->tokens_[y.left]);
                if (c != 0) return c > 0;
            }
            return x.right != y.right && m->tokens_[x.right].compare(m->tokens_[y.right]) > 0;
        }
    };

    static uint64_t key(uint32_t a, uint32_t b) { return (static_cast<uint64_t>(a) << 32) | b; }

    uint32_t pair_index(uint32_t a, uint32_t b) {
        bool inserted = false;
        uint32_t idx = map_.find_or_insert(key(a, b), static_cast<uint32_t>(pairs_.size()), inserted);
        if (inserted) {
            if (pairs_.size() >= UINT32_MAX - 1) throw std::length_error("more than 4 billion distinct pairs");
            pairs_.emplace_back();
            pairs_.back().left = a;
            pairs_.back().right = b;
        }
        return idx;
    }

    void push(Entry e) {
        heap_.push_back(e);
        std::push_heap(heap_.begin(), heap_.end(), Lower{this});
    }

    void inc(uint32_t a, uint32_t b, uint32_t w, uint64_t wc) {
        uint32_t idx = pair_index(a, b);
        Pair& p = pairs_[idx];
        p.count += wc;
        if (p.last_word != w) {
            p.last_word = w;
            p.words.push_back(w);
        }
        if (p.touched_step != step_) {
            p.touched_step = step_;
            touched_.push_back(idx);
        }
    }

    void dec(uint32_t a, uint32_t b, uint64_t wc) {
        uint32_t idx = map_.find(key(a, b));
        if (idx == PairMap::kMissing || pairs_[idx].count < wc) throw std::logic_error("BPE pair table inconsistent");
        Pair& p = pairs_[idx];
        p.count -= wc;
        if (p.count == 0) {  // gone from every word: its word list is dead weight
            std::vector<uint32_t>().swap(p.words);
            p.last_word = UINT32_MAX;
        }
    }

    void apply(uint32_t pidx, std::string merged) {
        const uint32_t a = pairs_[pidx].left, b = pairs_[pidx].right;
        const uint32_t c = static_cast<uint32_t>(tokens_.size());
        tokens_.push_back(merged);
        vocab_.insert(std::move(merged));
        ++step_;
        touched_.clear();
        std::vector<uint32_t> list;
        list.swap(pairs_[pidx].words);
        uint64_t merged_total = 0;  // occurrences x word counts; taken off the pair's own count once, at the end
        const size_t count = list.size();
        for (size_t k = 0; k < count; ++k) {
            // Words are scattered in memory: prefetch a word's header, and a little later its symbols.
            if (k + 8 < count) __builtin_prefetch(&words_[list[k + 8]]);
            if (k + 4 < count) __builtin_prefetch(syms_.data() + words_[list[k + 4]].start);
            const uint32_t w = list[k];
            Word& wd = words_[w];
            uint32_t* s = syms_.data() + wd.start;
            const uint32_t n = wd.len;
            const uint64_t wc = wd.count;
            uint32_t i = 0, j = 0;
            while (i < n) {
                if (i + 1 < n && s[i] == a && s[i + 1] == b) {
                    // Neighbour pairs: (prev, a) -> (prev, c) and (b, next) -> (c, next).  When prev is a `c` just
                    // written, the transient (c, a) added by the previous occurrence is taken back here.
                    if (j > 0) {
                        dec(s[j - 1], a, wc);
                        inc(s[j - 1], c, w, wc);
                    }
                    if (i + 2 < n) {
                        dec(b, s[i + 2], wc);
                        inc(c, s[i + 2], w, wc);
                    }
                    merged_total += wc;
                    s[j++] = c;
                    i += 2;
                } else {
                    s[j++] = s[i++];
                }
            }
            wd.len = j;
        }
        if (pairs_[pidx].count != merged_total) throw std::logic_error("BPE merge left occurrences behind");
        pairs_[pidx].count = 0;
        for (uint32_t idx : touched_) {
            if (pairs_[idx].count > 0) push(entry(idx));
        }
    }

    std::vector<Word> words_;
    std::vector<uint32_t> syms_;
    std::vector<Pair> pairs_;
    PairMap map_;
    std::vector<Entry> heap_;
    std::vector<std::string> tokens_;
    std::unordered_set<std::string> vocab_;
    std::vector<uint32_t> touched_;
    uint32_t step_ = 0;
    size_t skipped_ = 0;
    bool exhausted_ = false;
};

}  // namespace train
