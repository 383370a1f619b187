#include "rt/periodic_core.hpp"

namespace vlibos::rt {

Status<SchedError> PeriodicCore::start(VcpuId id, Ticks now)
{
    if (sched_.retired(id))
        return fail(SchedError::NoSuchVcpu);
    if (sched_.kind(id) != VcpuKind::Main)
        return fail(SchedError::NotMainVcpu);
    next_release_[id] = now;
    post_releases(now);
    return {};
}

Result<bool, SchedError> PeriodicCore::complete_job(VcpuId id, Ticks now)
{
    TRY(sched_.block(id, now));
    post_releases(now);
    return sched_.runnable(id);
}

Status<SchedError> PeriodicCore::retire(VcpuId id, Ticks now)
{
    TRY(sched_.retire(id, now));
    next_release_[id] = NEVER;
    return {};
}

void PeriodicCore::post_releases(Ticks now)
{
    for (size_t i = 0; i < sched_.count(); ++i) {
        VcpuId id = static_cast<VcpuId>(i);
        if (next_release_[i] == NEVER || sched_.retired(id))
            continue;
        Ticks period = sched_.main_vcpu(id).period();
        // One wake per due release, so each job keeps its own deadline. After a stall longer
        // than the job log, the rest of the missed grid points are skipped: the log is full, so
        // they could only have been merged into its last job anyway.
        for (size_t n = 0; next_release_[i] <= now; ++n) {
            if (n > JobLog::CAPACITY) {
                Ticks behind = now - next_release_[i];
                next_release_[i] += (behind / period + 1) * period;
                break;
            }
            (void)sched_.wake(id, now, next_release_[i]);
            next_release_[i] += period;
        }
    }
}

VcpuId PeriodicCore::pick(Ticks now)
{
    post_releases(now);
    return sched_.pick(now);
}

Ticks PeriodicCore::next_event(Ticks now) const
{
    Ticks event = sched_.next_event(now);
    for (size_t i = 0; i < sched_.count(); ++i)
        if (next_release_[i] < event)
            event = next_release_[i];
    return event;
}

} // namespace vlibos::rt
