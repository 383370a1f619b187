// Schedulability tests for one core, in integer arithmetic only (the kernel has no FPU state).
//
// - Rate-monotonic cores: Quest's test (Danish, Li, West, RTAS 2011, theorem 1), the Liu & Layland
//   bound with one term per I/O VCPU:
//       sum C_i/T_i (Main VCPUs) + sum (2 - U_j) U_j (I/O VCPUs) <= n (2^(1/n) - 1),  n = #Main
// - Cores with explicit priorities: no utilisation bound holds for an arbitrary priority order,
//   so every Main VCPU's worst-case response time is computed exactly (Joseph & Pandya 1986):
//       R = C_i + sum over j at least as urgent as i of ceil(R / T_j) C_j,  required R <= T_i.
// docs/scheduling.md says why these two.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "rt/vcpu.hpp"

namespace vlibos::rt {

// floor(n (2^(1/n) - 1) * 1e6): 1000000 for n <= 1, 828427 for 2, 779763 for 3, ... Computed in
// Q62 fixed point with every rounding towards a smaller bound, so the test never admits a set the
// exact real-number bound would refuse.
Ppm liu_layland_bound_ppm(uint32_t n);

// A Main VCPU as the response-time analysis sees it. Lower `urgency` runs first; ties count as
// interference both ways (the conservative choice).
struct RtaTask {
    Ticks budget = 0;
    Ticks period = 0;
    uint64_t urgency = 0;
};

// Worst-case response time of tasks[index] among `count` tasks, or a value above its period if it
// can miss its deadline (the iteration stops as soon as it passes the period).
Ticks worst_response_time(const RtaTask* tasks, size_t count, size_t index);

} // namespace vlibos::rt
