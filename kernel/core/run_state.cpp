// When the run is over. The RT CPUs with applications and the Linux VM are the run's
// activities; the last one to end powers the machine off with status 0, so a test run ends by
// itself and nothing is cut short while another partition still works.
#include "core/boot.hpp"
#include "core/console.hpp"
#include "core/panic.hpp"

namespace vlibos {

namespace {
uint32_t g_activities = 0;
} // namespace

void activities_expected(uint32_t count) { __atomic_add_fetch(&g_activities, count, __ATOMIC_ACQ_REL); }

void activity_ended(const char* what)
{
    uint32_t left = __atomic_sub_fetch(&g_activities, 1, __ATOMIC_ACQ_REL);
    if (left == 0) {
        console::print("vlibos: %s ended, and nothing else runs; powering off\n", what);
        halt_system(static_cast<int>(ExitStatus::Ok));
    }
    console::print("vlibos: %s ended; %u other activit%s still running\n", what, left, left == 1 ? "y is" : "ies are");
}

} // namespace vlibos
