// The two kinds of virtual CPU of the RT sandbox, as budget logic only (no threads, no hardware):
//
// - MainVcpu: a sporadic server with budget C and period T (Sprunt 1989, in the corrected form
//   of Stanovich et al., RTAS 2010, which Quest uses). Its budget lives in a bounded list of
//   replenishment chunks (time, amount) whose amounts always add up to C.
// - IoVcpu: Quest's bandwidth-preserving I/O VCPU (PIBS, Danish/Li/West RTAS 2011) with a
//   utilisation U. It inherits the period and priority of the Main VCPU it works for and gets
//   budget U*T; after using u ticks it may not start again before u/U after its last eligibility.
//
// Time is in TSC ticks; utilisations are in parts per million (ppm). No floating point anywhere,
// so this compiles into the kernel (-mgeneral-regs-only) unchanged. docs/scheduling.md has the
// rules and why.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace vlibos::rt {

using Ticks = uint64_t;
using Ppm = uint32_t;

constexpr Ppm PPM_ONE = 1'000'000;
// Largest budget or period accepted (2^43 ticks: about 49 minutes at 3 GHz). It keeps every
// product C * 1e6 and U * T inside 64 bits.
constexpr Ticks MAX_TICKS = Ticks{1} << 43;
// "No event": next_event() with nothing to wait for, eligibility of a VCPU without budget.
constexpr Ticks NEVER = ~Ticks{0};

// ceil(part * 1e6 / whole) for part <= whole <= MAX_TICKS: utilisations round up, so admission
// never counts a VCPU as cheaper than it is.
Ppm utilisation_ppm(Ticks part, Ticks whole);

// Quest's admission term for an I/O VCPU of utilisation u: (2 - U) * U, rounded up.
Ppm io_admission_term_ppm(Ppm u);

// One replenishment: `amount` ticks of budget usable from `time` on.
struct Replenishment {
    Ticks time = 0;
    Ticks amount = 0;
};

// A sporadic server. The caller (CoreScheduler) tells it when it runs, blocks and wakes; it
// answers how much budget it may use now and when more becomes usable.
class MainVcpu {
public:
    // Replenishment chunks kept per VCPU (Quest keeps 8 to 32). When the list is full, a chunk is
    // merged into a *later* one, which only ever delays budget, never advances it.
    static constexpr size_t MAX_REPLENISHMENTS = 8;

    MainVcpu() = default;
    // Full budget `budget`, usable from `now`. Requires 0 < budget <= period <= MAX_TICKS.
    MainVcpu(Ticks budget, Ticks period, Ticks now);

    Ticks budget() const { return budget_; }
    Ticks period() const { return period_; }

    // Budget usable at `now` without waiting: what is left of the head chunk once it is due.
    Ticks capacity(Ticks now) const;
    // When budget is next usable: `now` if capacity(now) > 0, else the head chunk's time.
    Ticks eligible_at(Ticks now) const;

    // The VCPU ran for `used` ticks ending at `now`. Exhausted chunks are posted one period after
    // their activation time. Returns the number of replenishments posted.
    uint32_t charge(Ticks used, Ticks now);
    // The VCPU has no more work: what it used of the head chunk is posted for head.time + T and
    // the rest stays usable (split). Returns the number of replenishments posted.
    uint32_t block(Ticks now);
    // The VCPU has work again: if budget is usable now, `now` becomes the activation time of the
    // head chunk, and later chunks that would be reached before the head runs out are merged in.
    void wake(Ticks now);

    // The chunk list, earliest first; the amounts always sum to budget() (tested invariant).
    size_t replenishment_count() const { return count_; }
    const Replenishment& replenishment(size_t index) const { return list_[index]; }
    // Budget of the head chunk already used in the current activation.
    Ticks usage() const { return usage_; }

private:
    void pop_head();
    // Inserts in time order; the caller guarantees a free entry.
    void insert(Replenishment r);
    // Posts `amount` for `time`, merging into the latest chunk (delaying it) if the list is full.
    void post(Ticks time, Ticks amount);

    Replenishment list_[MAX_REPLENISHMENTS] = {};
    size_t count_ = 0;
    Ticks usage_ = 0;
    Ticks budget_ = 0;
    Ticks period_ = 0;
};

// Quest's I/O VCPU. Its period and budget come from the Main VCPU that triggered it.
class IoVcpu {
public:
    IoVcpu() = default;
    // Requires 0 < utilisation <= PPM_ONE.
    explicit IoVcpu(Ppm utilisation) : utilisation_(utilisation) {}

    Ppm utilisation() const { return utilisation_; }
    // Period inherited from the last trigger (0 before the first one).
    Ticks period() const { return period_; }
    // Budget of one activation for the inherited period: floor(U * T), at least one tick.
    Ticks max_budget() const;

    // Budget usable at `now`; when it is next usable (NEVER without pending work).
    Ticks capacity(Ticks now) const;
    Ticks eligible_at(Ticks now) const;
    bool budgeted() const { return budgeted_; }

    // Work arrives on behalf of a Main VCPU with period `period`. An idle I/O VCPU takes that
    // period and a fresh budget U*T, usable from max(now, its eligibility time). A busy one keeps
    // its budget and inherits the shorter (more urgent, rate-monotonic) of the two periods; an
    // activation that has not started yet gets the budget of the new period.
    void trigger(Ticks period, Ticks now);
    // Ran `used` ticks ending at `now`. When the budget is gone the activation ends: the next
    // eligibility is the last one plus used/U, and the budget is refilled. Returns 1 if an
    // activation ended (a replenishment), else 0.
    uint32_t charge(Ticks used, Ticks now);
    // No more work: ends the activation as charge() would, and forgets the inheritance.
    uint32_t block(Ticks now);

private:
    uint32_t end_activation();

    Ppm utilisation_ = 0;
    Ticks period_ = 0;
    Ticks budget_ = 0;      // left in this activation
    Ticks usage_ = 0;       // used in this activation
    Ticks eligible_ = 0;    // when this activation may start
    bool budgeted_ = false; // an activation is set up (work pending)
};

// Per-VCPU statistics, all since admission.
struct VcpuStats {
    Ticks budget_used = 0;          // ticks charged
    uint64_t replenishments = 0;    // replenishments posted (sporadic) / activations ended (I/O)
    uint64_t jobs_completed = 0;
    uint64_t deadline_misses = 0;   // jobs still unfinished when their period ended
    Ticks worst_response = 0;       // longest release-to-completion of a completed job
    uint64_t releases_merged = 0;   // releases that found the job queue full (joined the last job)
};

// The jobs a VCPU has been released and not completed, oldest first, for the statistics.
// A job released at r is due at r + T; it is counted as a miss once, as soon as the scheduler
// sees a time past its deadline, or at completion.
class JobLog {
public:
    static constexpr size_t CAPACITY = 16;

    // A job released at `release` (due at release + period). Returns false (and counts a merged
    // release) when the log is full.
    bool release(Ticks release, Ticks period, VcpuStats& stats);
    // Completes the oldest job; returns false if there was none.
    bool complete(Ticks now, VcpuStats& stats);
    // Counts misses of pending jobs whose deadline is before `now`.
    void check_deadlines(Ticks now, VcpuStats& stats);
    size_t pending() const { return count_; }
    // Release time of the oldest pending job (0 with none).
    Ticks oldest_release() const { return count_ == 0 ? 0 : jobs_[head_].release; }
    void clear() { head_ = count_ = 0; }

private:
    struct Job {
        Ticks release = 0;
        Ticks deadline = 0;
        bool missed = false;
    };
    Job jobs_[CAPACITY] = {};
    size_t head_ = 0;
    size_t count_ = 0;
};

} // namespace vlibos::rt
