// Pre-tokenizer dispatch (no Python): the native pattern ids, and pretok_with(id, f), which calls f with the
// splitter of one (Unicode table, pattern); the splitters are in pretok_core.h (cl100k, gpt2) and pretok_o200k.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pretok_o200k.h"

namespace pretok_detail {

// Class of `cp` in table `table` (a pretok_tables id; out-of-range ids read the default table).
inline uint8_t char_class(uint32_t cp, int table = pretok_tables::kDefaultTable) {
#define PRETOK_CLASS_CASE(id, T) \
    case id: return Classes<pretok_tables::T>::of(cp);
    switch (table) {
        PRETOK_FOR_EACH_TABLE(PRETOK_CLASS_CASE)
        default: return char_class(cp, pretok_tables::kDefaultTable);
    }
#undef PRETOK_CLASS_CASE
}

}  // namespace pretok_detail

// A native pattern id is kPretokNumPatterns * table + pattern: the pattern read with a Unicode table version.
inline constexpr int pretok_pattern_id(int table, PretokPattern p) {
    return kPretokNumPatterns * table + static_cast<int>(p);
}
inline constexpr int kPretokNumIds = kPretokNumPatterns * pretok_tables::kNumTables;

namespace pretok_detail {
// The splitter of one (table, pattern): a functor, so a loop templated on it inlines the whole splitter.
template <class T, PretokPattern P, class R = void>
struct Next {
    PRETOK_INLINE size_t operator()(const uint8_t* s, size_t n, size_t pos) const {
        if constexpr (P == PRETOK_O200K) {
            return next_o200k<T, R>(s, n, pos);
        } else if constexpr (P == PRETOK_GPT2) {
            return next_gpt2<T>(s, n, pos);
        } else {
            return next_cl100k<T, P == PRETOK_CL100K_BASE>(s, n, pos);
        }
    }
};
}  // namespace pretok_detail

// Calls f(next) with the splitter of native pattern id `id`, where next(s, n, pos) is the end offset (bytes) of the
// piece starting at byte `pos` of valid UTF-8 s[0..n), pos < n. Dispatching once per call (not once per piece) keeps
// the piece loop inside f as tight as with a single table: per-piece dispatch cost 20% of encode speed.
// Callers validate `id` once, at construction; an invalid id splits as id 0.
template <class F>
inline auto pretok_with(int id, F&& f) {
#define PRETOK_WITH_CASE(table, T)                                                                 \
    case 4 * table: return f(pretok_detail::Next<pretok_tables::T, PRETOK_CL100K>{});      \
    case 4 * table + 1: return f(pretok_detail::Next<pretok_tables::T, PRETOK_GPT2>{});    \
    case 4 * table + 2: return f(pretok_detail::Next<pretok_tables::T, PRETOK_CL100K_BASE>{}); \
    case 4 * table + 3: return f(pretok_detail::Next<pretok_tables::T, PRETOK_O200K, o200k_tables::T>{});
    switch (id) {
        PRETOK_FOR_EACH_TABLE(PRETOK_WITH_CASE)
        default: return f(pretok_detail::Next<pretok_tables::U16_0_0, PRETOK_CL100K>{});
    }
#undef PRETOK_WITH_CASE
}
