// A deterministic pseudo-random generator for property tests: the same seed gives the same
// sequence on every run and machine, so a failure is always reproducible.
#pragma once

#include <stdint.h>

namespace vlibos::test {

struct Lcg {
    uint64_t state;
    // Knuth's MMIX constants; the high bits are the well-mixed ones.
    uint64_t next()
    {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        return state >> 33;
    }
    uint64_t below(uint64_t bound) { return next() % bound; }
};

} // namespace vlibos::test
