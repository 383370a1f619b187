// One RT core's scheduler: a run queue of Main and I/O VCPUs, fixed-priority preemptive, with
// exact budget accounting in TSC ticks and a one-shot timer (no periodic tick).
//
// The kernel drives it from three places, always with the current TSC value:
//   - timer interrupt:  id = pick(now); arm(next_event(now));
//   - work arrives:     if (wake(id, now).value()) { id = pick(now); arm(next_event(now)); }
//   - VCPU out of work: block(id, now); id = pick(now); arm(next_event(now));
// pick() charges the VCPU that was running up to `now` first (account()). Times must not go
// backwards; an earlier `now` is treated as the last time seen.
//
// Pure logic (no hardware, no heap, no floating point): compiled into the kernel and into the
// host unit tests. docs/scheduling.md describes the model.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"
#include "rt/admission.hpp"
#include "rt/vcpu.hpp"

namespace vlibos::rt {

using VcpuId = uint8_t;
constexpr VcpuId IDLE = 0xff;  // pick() when no VCPU may run

// How a core orders its Main VCPUs. Fixed per core, so one admission test applies to all of it.
enum class PriorityPolicy : uint8_t {
    RateMonotonic,  // shorter period runs first (Quest); ties by admission order
    Explicit,       // each Main VCPU names its priority, 0 most urgent; ties by admission order
};

enum class VcpuKind : uint8_t { Main, Io };

struct VcpuParams {
    VcpuKind kind = VcpuKind::Main;
    Ticks budget = 0;       // Main: C
    Ticks period = 0;       // Main: T
    uint32_t priority = 0;  // Main on an Explicit core: 0 is the most urgent (ignored under RM)
    Ppm utilisation = 0;    // I/O: U

    static constexpr VcpuParams main(Ticks budget, Ticks period, uint32_t priority = 0)
    {
        return VcpuParams{VcpuKind::Main, budget, period, priority, 0};
    }
    static constexpr VcpuParams io(Ppm utilisation) { return VcpuParams{VcpuKind::Io, 0, 0, 0, utilisation}; }
};

enum class AdmissionErrorKind : uint8_t {
    None,
    InvalidParameters,     // Main: not 0 < C <= T <= MAX_TICKS; I/O: not 0 < U <= 1
    TooManyVcpus,          // the core's run queue is full
    UtilisationBound,      // RM core: Quest's Liu & Layland test fails
    ResponseTime,          // Explicit core: a Main VCPU's worst-case response exceeds its period
    IoNeedsRateMonotonic,  // I/O VCPUs are admitted on RM cores only (Quest's bound is for RM)
};

// Why admit() refused, with the numbers the message prints.
struct AdmissionError {
    AdmissionErrorKind kind = AdmissionErrorKind::None;
    Ppm utilisation_before = 0;  // RM: Quest's sum (I/O VCPUs as (2-U)U); Explicit: sum C/T
    Ppm utilisation_after = 0;   // the same with the refused VCPU
    Ppm bound = 0;               // UtilisationBound: n(2^(1/n)-1) for n Main VCPUs after admission
    uint32_t main_vcpus = 0;     // UtilisationBound: that n
    VcpuId victim = IDLE;        // ResponseTime: the VCPU that would miss (IDLE = the new one)
    Ticks response = 0;          // ResponseTime: its response time (past the iteration's stop)
    Ticks deadline = 0;          // ResponseTime: its period
};

const char* describe(AdmissionErrorKind kind);
// One line naming the test, the bound and the utilisation before/after, e.g.
// "admission refused: utilisation 0.828428 (before 0.400000) exceeds the rate-monotonic bound
//  n(2^(1/n)-1) = 0.828427 for n = 2 Main VCPUs (Liu & Layland, I/O VCPUs as (2-U)U as in Quest)".
// Returns the length the full message has, like snprintf.
size_t format_admission_error(char* buffer, size_t size, const AdmissionError& error);

enum class SchedError : uint8_t {
    NoSuchVcpu,
    NotMainVcpu,  // wake_io() on behalf of something that is not a Main VCPU
    NotIoVcpu,    // wake_io() of something that is not an I/O VCPU
};

const char* describe(SchedError error);

class CoreScheduler {
public:
    static constexpr size_t MAX_VCPUS = 16;

    explicit CoreScheduler(PriorityPolicy policy = PriorityPolicy::RateMonotonic) : policy_(policy) {}

    PriorityPolicy policy() const { return policy_; }

    // Adds a VCPU, blocked (no work yet) and with full budget from `now`, if the core stays
    // schedulable by its test (see admission.hpp). On failure nothing changes.
    Result<VcpuId, AdmissionError> admit(const VcpuParams& params, Ticks now);

    // Work arrives for `id` (a job is released: it is due one period later). A blocked Main
    // VCPU is activated (sporadic-server wake). An I/O VCPU woken this way keeps the period it
    // inherited last (or the longest Main period on the core before its first trigger).
    // Returns true if `id` should preempt what is running now. `release` is when the job was
    // due to arrive (a periodic release the timer noticed late); it counts for the job's
    // deadline and response time, never for budget. Default and later values mean `now`.
    Result<bool, SchedError> wake(VcpuId id, Ticks now, Ticks release = NEVER);
    // Work arrives for I/O VCPU `io` on behalf of Main VCPU `on_behalf_of`, whose period (and so
    // its rate-monotonic priority) and budget U*T it inherits. Returns true to preempt.
    Result<bool, SchedError> wake_io(VcpuId io, VcpuId on_behalf_of, Ticks now);
    // The oldest released job of `id` is complete. With no job left the VCPU blocks: a sporadic
    // server posts what it used (split), an I/O VCPU ends its activation.
    Status<SchedError> block(VcpuId id, Ticks now);
    // The VCPU leaves the core for good (its thread or application ended): it no longer runs,
    // counts for admission or has jobs, and admit() may reuse its slot. Statistics stay readable
    // until then.
    Status<SchedError> retire(VcpuId id, Ticks now);

    // Charges the running VCPU for the ticks since it was dispatched (or last charged).
    void account(Ticks now);
    // account(now), then dispatches the most urgent runnable VCPU with budget usable now, or IDLE.
    VcpuId pick(Ticks now);
    // When the one-shot timer must fire: the running VCPU's budget exhaustion, or the earliest
    // time budget becomes usable for a runnable VCPU more urgent than it (any, when idle).
    // NEVER when nothing can change without a wake().
    Ticks next_event(Ticks now) const;

    // Inspection (the ids below must come from admit() on this core).
    VcpuId current() const { return current_; }
    size_t count() const { return count_; }
    bool runnable(VcpuId id) const { return id < count_ && slots_[id].log.pending() > 0; }
    bool retired(VcpuId id) const { return id >= count_ || slots_[id].retired; }
    // Release time of the oldest unfinished job of `id` (0 with none).
    Ticks oldest_release(VcpuId id) const { return id < count_ ? slots_[id].log.oldest_release() : 0; }
    VcpuKind kind(VcpuId id) const { return slots_[id].kind; }
    // Budget `id` may use at `now` without waiting (the running VCPU's as of its last charge).
    Ticks capacity(VcpuId id, Ticks now) const;
    const MainVcpu& main_vcpu(VcpuId id) const { return slots_[id].main; }
    const IoVcpu& io_vcpu(VcpuId id) const { return slots_[id].io; }
    const VcpuStats& stats(VcpuId id) const { return slots_[id].stats; }
    // The core's load as its admission test counts it (RM: Quest's sum; Explicit: sum C/T).
    Ppm utilisation() const;

private:
    struct Slot {
        VcpuKind kind = VcpuKind::Main;
        bool retired = false;
        uint32_t priority = 0;  // Explicit cores
        MainVcpu main;
        IoVcpu io;
        JobLog log;
        VcpuStats stats;
    };

    // Smaller is more urgent; ties go to the lower id.
    uint64_t urgency(VcpuId id) const;
    bool more_urgent(VcpuId a, VcpuId b) const;
    Ticks clamp(Ticks now);
    Ppm load_with(const VcpuParams* extra) const;
    Status<AdmissionError> check(const VcpuParams& params) const;
    Ticks longest_main_period() const;
    Ticks eligible_at(VcpuId id, Ticks now) const;
    bool preempts(VcpuId id, Ticks now) const;

    PriorityPolicy policy_;
    Slot slots_[MAX_VCPUS] = {};
    size_t count_ = 0;
    VcpuId current_ = IDLE;
    Ticks charged_until_ = 0;  // the running VCPU has been charged up to here
    Ticks last_now_ = 0;
};

} // namespace vlibos::rt
