// One RT core's scheduler plus the periodic releases of its Main VCPUs: the pure half of the
// core loop (kernel/core/rt_core.cpp is the hardware half). A started VCPU gets a job at its
// start time and then one every period, whether or not its thread is ready for it; the thread
// completes jobs with complete_job() (the wait-for-next-period system call). Late timers do not
// shift the release grid: a release noticed late still counts from when it was due.
//
// The kernel drives it with the current TSC value:
//   timer or any kernel entry:  id = pick(now); arm(next_event(now));
// Pure logic: compiled into the kernel and into the host tests.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "rt/core_scheduler.hpp"

namespace vlibos::rt {

class PeriodicCore {
public:
    explicit PeriodicCore(PriorityPolicy policy = PriorityPolicy::RateMonotonic) : sched_(policy) {}

    Result<VcpuId, AdmissionError> admit(const VcpuParams& params, Ticks now) { return sched_.admit(params, now); }

    // Starts the release grid of Main VCPU `id`: job 0 at `now`, job k at now + k*T.
    Status<SchedError> start(VcpuId id, Ticks now);
    // The running job of `id` is done. Returns true if a later job is already released (the
    // thread goes on at once), false if it must wait for the next release.
    Result<bool, SchedError> complete_job(VcpuId id, Ticks now);
    // The VCPU leaves the core (thread or application ended).
    Status<SchedError> retire(VcpuId id, Ticks now);

    // Posts every release due by `now`, then dispatches the most urgent VCPU with budget (IDLE
    // if none).
    VcpuId pick(Ticks now);
    // When the one-shot timer must fire: the scheduler's next event or the next release.
    Ticks next_event(Ticks now) const;

    // Release time of the oldest unfinished job of `id` (what wait-for-period reports).
    Ticks current_release(VcpuId id) const { return sched_.oldest_release(id); }
    Ticks next_release(VcpuId id) const { return id < CoreScheduler::MAX_VCPUS ? next_release_[id] : NEVER; }
    bool started(VcpuId id) const { return id < CoreScheduler::MAX_VCPUS && next_release_[id] != NEVER; }
    const CoreScheduler& scheduler() const { return sched_; }

private:
    void post_releases(Ticks now);

    CoreScheduler sched_;
    Ticks next_release_[CoreScheduler::MAX_VCPUS] = {NEVER, NEVER, NEVER, NEVER, NEVER, NEVER, NEVER, NEVER,
                                                     NEVER, NEVER, NEVER, NEVER, NEVER, NEVER, NEVER, NEVER};
};

} // namespace vlibos::rt
