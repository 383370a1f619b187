// Per-vCPU exit accounting: how many exits of each reason, and how many TSC cycles the monitor
// spent handling them. Benchmarks and the test harness read these.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vmm/exit.hpp"

namespace vlibos::vmm {

struct ExitStats {
    static constexpr size_t kReasons = static_cast<size_t>(ExitReason::Count);

    uint64_t count[kReasons] = {};
    uint64_t handling_cycles[kReasons] = {};
    uint64_t guest_cycles = 0;   // entry to exit, summed over all exits
    uint64_t min_round_trip[kReasons] = {};  // shortest entry-to-exit-to-handled time seen, per reason

    void record(ExitReason reason, uint64_t in_guest, uint64_t handling)
    {
        auto i = static_cast<size_t>(reason);
        if (i >= kReasons)
            return;
        ++count[i];
        handling_cycles[i] += handling;
        guest_cycles += in_guest;
        uint64_t round_trip = in_guest + handling;
        if (min_round_trip[i] == 0 || round_trip < min_round_trip[i])
            min_round_trip[i] = round_trip;
    }

    uint64_t total() const
    {
        uint64_t sum = 0;
        for (uint64_t c : count)
            sum += c;
        return sum;
    }
};

} // namespace vlibos::vmm
