// heartbeat: one periodic thread that proves, line by line, that its core keeps time whatever the
// Linux VM does (booting, running, crashing). It runs on the application's main VCPU (the first
// one its configuration lists; main() itself) and prints one line per beat period:
//
//   heartbeat start period_ms=100 min_beats=20 max_beats=100000 vcpu_period_ns=100000000
//   heartbeat 1 t_ms=123 linux=absent
//   heartbeat 2 t_ms=223 linux=absent
//   ...
//   heartbeat done beats=20 late=0
//
// N counts beats, 1, 2, 3, ... with no gap, even when periods were missed; t_ms is the time of
// the beat in ms since boot; linux is the Linux VM's state (absent, starting, running, stopped)
// read at that beat. A beat is due at a release of the VCPU, one beat period after the previous
// beat's release. `late` counts the periods in which it woke later than one period after its
// release: a beat that runs more than one beat period after its release counts 1, and beat
// periods skipped whole (the kernel merged missed releases, so the release a wait returned is
// later than due) count 1 each; the next beat is then due one period after the release it got.
// After a stall the kernel may still hold releases that were not merged: the waits then return
// at once and the beats catch up on the grid, each counted late. The thread blocks on nothing
// but its period: the console never blocks, and the Linux state is one load in the kernel.
//
// It ends with exit status 0 after "heartbeat done ..." once it has printed at least min_beats
// beats and Linux is absent or stopped, or when it has printed max_beats beats.
//
// Arguments (all optional):  period_ms=P  min_beats=M  max_beats=X
//   period_ms   the beat period, 1..60000 ms (default 100); a multiple of the VCPU's period
//               (every k-th release is a beat; 0.1% off is accepted, as the kernel's period is
//               in TSC ticks)
//   min_beats   beats to print before it may end, 0..1000000000 (default 10)
//   max_beats   beats after which it ends whatever Linux does, 1..1000000000 (default 100000)
// Bad arguments print "heartbeat error: ..." and exit 2; a failed system call exits 1.
#include <vlibos/rt.hpp>

namespace rt = vlibos::rt;

namespace {

struct Config {
    uint64_t period_ms = 100;
    uint64_t min_beats = 10;
    uint64_t max_beats = 100000;
};

using ull = unsigned long long;

// Reads one option into `value` within [min, max]; prints why and returns false if it is bad.
bool option(const rt::Args& args, const char* key, uint64_t min, uint64_t max, uint64_t& value)
{
    auto read = args.u64(key, value);
    if (!read || read.value() < min || read.value() > max) {
        rt::print("heartbeat error: %s must be a number in [%llu, %llu]\n", key, static_cast<ull>(min),
                  static_cast<ull>(max));
        return false;
    }
    value = read.value();
    return true;
}

bool parse(const char* text, Config& config)
{
    rt::Args args(text);
    bool ok = option(args, "period_ms", 1, 60000, config.period_ms);
    ok = option(args, "min_beats", 0, 1000000000, config.min_beats) && ok;
    ok = option(args, "max_beats", 1, 1000000000, config.max_beats) && ok;
    return ok;
}

// The first release of the VCPU at `due` or later; 0 (and a printed error) if a wait fails.
// Release times come from the kernel's TSC grid converted to ns, so a release meant to be at
// `due` may read a few ns early: anything within half a VCPU period of `due` counts.
uint64_t wait_until_release(uint64_t due, uint64_t vcpu_period_ns)
{
    for (;;) {
        auto released = rt::wait_period();
        if (!released) {
            rt::print("heartbeat error: wait_period failed: %s\n", released.error_name());
            return 0;
        }
        if (released.value() + vcpu_period_ns / 2 >= due)
            return released.value();
    }
}

} // namespace

int main(const char* text)
{
    Config config;
    if (!parse(text, config))
        return 2;
    auto stats = rt::vcpu_stats();
    if (!stats) {
        rt::print("heartbeat error: vcpu_stats failed: %s\n", stats.error_name());
        return 1;
    }
    // The beat period is k VCPU periods. The VCPU's period comes back from the kernel's TSC
    // ticks, so it may be a few ns off the configured one: allow 0.1%.
    const uint64_t wanted_ns = config.period_ms * 1000000;
    const uint64_t vcpu_period_ns = stats.value().period_ns;
    const uint64_t k = vcpu_period_ns != 0 ? (wanted_ns + vcpu_period_ns / 2) / vcpu_period_ns : 0;
    const uint64_t period_ns = k * vcpu_period_ns;  // the beat period, on the release grid
    const uint64_t error_ns = period_ns > wanted_ns ? period_ns - wanted_ns : wanted_ns - period_ns;
    if (k == 0 || error_ns > wanted_ns / 1000) {
        rt::print("heartbeat error: period_ms=%llu is not a multiple of the VCPU's period (%llu ns)\n",
                  static_cast<ull>(config.period_ms), static_cast<ull>(vcpu_period_ns));
        return 2;
    }
    rt::print("heartbeat start period_ms=%llu min_beats=%llu max_beats=%llu vcpu_period_ns=%llu\n",
              static_cast<ull>(config.period_ms), static_cast<ull>(config.min_beats),
              static_cast<ull>(config.max_beats), static_cast<ull>(vcpu_period_ns));

    // The first beat is due at the VCPU's next release, so every beat starts on the release grid.
    uint64_t due = rt::Clock::now_ns();
    uint64_t release = wait_until_release(due, vcpu_period_ns);
    if (release == 0)
        return 1;
    due = release;
    uint64_t beats = 0;
    uint64_t late = 0;
    for (;;) {
        // Lost periods: beat periods skipped whole (the release came later than due), and this
        // beat itself if it runs more than one period after its release.
        uint64_t now = rt::Clock::now_ns();
        if (release > due)
            late += (release - due + vcpu_period_ns / 2) / period_ns;
        if (now > release && now - release > period_ns)
            ++late;
        ++beats;
        rt::LinuxState linux_state = rt::linux_state();
        rt::print("heartbeat %llu t_ms=%llu linux=%s\n", static_cast<ull>(beats), static_cast<ull>(now / 1000000),
                  rt::name(linux_state));
        bool linux_gone = linux_state == rt::LinuxState::Absent || linux_state == rt::LinuxState::Stopped;
        if (beats >= config.max_beats || (beats >= config.min_beats && linux_gone))
            break;
        // Releases lie on the VCPU's grid and the beat period is k of its periods, so
        // release + period_ns is a release; if releases were missed, the next one comes later.
        due = release + period_ns;
        release = wait_until_release(due, vcpu_period_ns);
        if (release == 0)
            return 1;
    }
    rt::print("heartbeat done beats=%llu late=%llu\n", static_cast<ull>(beats), static_cast<ull>(late));
    return 0;
}
