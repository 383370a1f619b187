#include "rt/admission.hpp"

namespace vlibos::rt {

namespace {

using u128 = unsigned __int128;

constexpr unsigned FRAC_BITS = 62;
constexpr uint64_t Q_ONE = uint64_t{1} << FRAC_BITS;
constexpr uint64_t Q_TWO = uint64_t{1} << (FRAC_BITS + 1);

// True if x^n <= 2, with x in Q62 and each product rounded *up*: a yes means the real x^n <= 2.
// Only multiplications and shifts of 128-bit values: no libgcc division helpers in the kernel.
bool power_at_most_two(uint64_t x, uint32_t n)
{
    u128 p = Q_ONE;
    for (uint32_t i = 0; i < n; ++i) {
        p = (p * x + (Q_ONE - 1)) >> FRAC_BITS;
        if (p > Q_TWO)
            return false;
    }
    return true;
}

} // namespace

Ppm liu_layland_bound_ppm(uint32_t n)
{
    if (n <= 1)
        return PPM_ONE;
    // Largest x (Q62) with x^n <= 2 by the rounded-up power: x <= 2^(1/n).
    uint64_t lo = Q_ONE;  // 1^n <= 2
    uint64_t hi = Q_TWO;  // 2^n > 2 for n >= 2
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (power_at_most_two(mid, n))
            lo = mid;
        else
            hi = mid;
    }
    u128 bound = u128{n} * (lo - Q_ONE) * PPM_ONE;
    return static_cast<Ppm>(bound >> FRAC_BITS);
}

Ticks worst_response_time(const RtaTask* tasks, size_t count, size_t index)
{
    const RtaTask& self = tasks[index];
    // Every term stays below 2 * MAX_TICKS: ceil(R/T_j) C_j <= R + C_j while R <= T_i.
    Ticks response = self.budget;
    for (;;) {
        Ticks next = self.budget;
        for (size_t j = 0; j < count; ++j) {
            if (j == index || tasks[j].urgency > self.urgency)
                continue;
            Ticks releases = (response + tasks[j].period - 1) / tasks[j].period;
            next += releases * tasks[j].budget;
        }
        if (next > self.period || next == response)
            return next;
        response = next;
    }
}

} // namespace vlibos::rt
