#include "rt/vcpu.hpp"

namespace vlibos::rt {

namespace {
constexpr Ticks min_ticks(Ticks a, Ticks b) { return a < b ? a : b; }
constexpr Ticks max_ticks(Ticks a, Ticks b) { return a > b ? a : b; }
} // namespace

Ppm utilisation_ppm(Ticks part, Ticks whole)
{
    if (whole == 0)
        return PPM_ONE;
    part = min_ticks(part, MAX_TICKS);
    uint64_t ppm = (part * PPM_ONE + whole - 1) / whole;
    return static_cast<Ppm>(min_ticks(ppm, 0xffffffffu));
}

Ppm io_admission_term_ppm(Ppm u)
{
    uint64_t uu = min_ticks(u, PPM_ONE);
    return static_cast<Ppm>(((2 * uint64_t{PPM_ONE} - uu) * uu + PPM_ONE - 1) / PPM_ONE);
}

// ---------------------------------------------------------------------------------------------
// MainVcpu: the sporadic server.

MainVcpu::MainVcpu(Ticks budget, Ticks period, Ticks now) : budget_(budget), period_(period)
{
    list_[0] = Replenishment{now, budget};
    count_ = 1;
}

Ticks MainVcpu::capacity(Ticks now) const
{
    // Only the head chunk counts, as in Quest: consuming chunks strictly in time order is what
    // makes every tick go back exactly one period after the activation that used it.
    if (count_ == 0 || list_[0].time > now || list_[0].amount <= usage_)
        return 0;
    return list_[0].amount - usage_;
}

Ticks MainVcpu::eligible_at(Ticks now) const
{
    if (capacity(now) > 0)
        return now;
    if (count_ > 0 && list_[0].time > now)
        return list_[0].time;
    return NEVER;
}

void MainVcpu::pop_head()
{
    for (size_t i = 1; i < count_; ++i)
        list_[i - 1] = list_[i];
    --count_;
    list_[count_] = Replenishment{};
}

void MainVcpu::insert(Replenishment r)
{
    size_t at = count_;
    while (at > 0 && list_[at - 1].time > r.time) {
        list_[at] = list_[at - 1];
        --at;
    }
    list_[at] = r;
    ++count_;
}

void MainVcpu::post(Ticks time, Ticks amount)
{
    if (count_ < MAX_REPLENISHMENTS) {
        insert(Replenishment{time, amount});
        return;
    }
    // Full: fold the latest chunk into the new one at the later of the two times. Budget can only
    // become usable later than the rules say, never earlier.
    Replenishment& last = list_[count_ - 1];
    last.time = max_ticks(last.time, time);
    last.amount += amount;
}

uint32_t MainVcpu::charge(Ticks used, Ticks now)
{
    (void)now;
    usage_ = min_ticks(usage_ + used, NEVER / 2);
    uint32_t posted = 0;
    // Every exhausted chunk goes back one period after its activation time.
    while (count_ > 0 && list_[0].amount <= usage_) {
        Replenishment head = list_[0];
        usage_ -= head.amount;
        pop_head();
        insert(Replenishment{head.time + period_, head.amount});
        ++posted;
    }
    if (posted > 0 && usage_ > 0) {
        // Overrun (the timer fired late): the excess is charged to the next chunk, and that chunk
        // starts later by as much, so the overrun cannot be followed by a full chunk at once.
        list_[0].time += usage_;
        while (count_ > 1 && list_[0].time > list_[1].time) {
            Replenishment head = list_[0];
            pop_head();
            list_[0].time = head.time;  // the later of the two: merging only delays
            list_[0].amount += head.amount;
        }
    }
    return posted;
}

uint32_t MainVcpu::block(Ticks now)
{
    if (usage_ == 0 || count_ == 0 || list_[0].time > now)
        return 0;
    // Split: the used part of the head goes back one period after the head's activation time,
    // the remnant stays usable. charge() has already removed exhausted chunks, so remnant > 0.
    Replenishment head = list_[0];
    Ticks remnant = head.amount - usage_;
    if (count_ == MAX_REPLENISHMENTS) {
        pop_head();
        list_[0].amount += remnant;  // the remnant waits for the next chunk: a delay, never an advance
    } else {
        list_[0].amount = remnant;
    }
    post(head.time + period_, usage_);
    usage_ = 0;
    return 1;
}

void MainVcpu::wake(Ticks now)
{
    Ticks cap = capacity(now);
    if (cap == 0)
        return;  // nothing usable: the next chunk keeps its time and is the activation then
    list_[0].time = now;
    // Stanovich's observation 3: a chunk that becomes due before the head would run out if the
    // VCPU ran without a break is consumed contiguously anyway, so it can share the activation.
    while (count_ > 1 && list_[1].time <= now + cap) {
        Ticks merged = list_[0].amount;
        pop_head();
        list_[0].amount += merged;
        list_[0].time = now;
        cap = capacity(now);
    }
}

// ---------------------------------------------------------------------------------------------
// IoVcpu: Quest's PIBS.

Ticks IoVcpu::max_budget() const
{
    if (period_ == 0)
        return 0;
    Ticks b = min_ticks(period_, MAX_TICKS) * utilisation_ / PPM_ONE;
    return b == 0 ? 1 : b;
}

Ticks IoVcpu::capacity(Ticks now) const
{
    if (!budgeted_ || eligible_ > now)
        return 0;
    return budget_;
}

Ticks IoVcpu::eligible_at(Ticks now) const
{
    if (!budgeted_ || budget_ == 0)
        return NEVER;
    return eligible_ > now ? eligible_ : now;
}

void IoVcpu::trigger(Ticks period, Ticks now)
{
    if (!budgeted_) {
        eligible_ = max_ticks(eligible_, now);
        period_ = period;
        budget_ = max_budget();
        usage_ = 0;
        budgeted_ = true;
        return;
    }
    if (period < period_) {
        period_ = period;
        if (usage_ == 0)
            budget_ = max_budget();
    }
}

uint32_t IoVcpu::end_activation()
{
    // Bandwidth preservation: u ticks used buy a pause of u/U since the activation's start, so
    // over any long window the VCPU uses at most U of the CPU (rounded up: never more).
    Ticks used = min_ticks(usage_, MAX_TICKS);
    eligible_ += (used * PPM_ONE + utilisation_ - 1) / utilisation_;
    usage_ = 0;
    budget_ = max_budget();
    return 1;
}

uint32_t IoVcpu::charge(Ticks used, Ticks now)
{
    (void)now;
    budget_ -= min_ticks(used, budget_);
    usage_ = min_ticks(usage_ + used, MAX_TICKS);
    if (budgeted_ && budget_ == 0)
        return end_activation();
    return 0;
}

uint32_t IoVcpu::block(Ticks now)
{
    (void)now;
    uint32_t ended = 0;
    if (budgeted_ && usage_ > 0)
        ended = end_activation();
    budgeted_ = false;
    return ended;
}

// ---------------------------------------------------------------------------------------------
// JobLog

bool JobLog::release(Ticks release, Ticks period, VcpuStats& stats)
{
    if (count_ == CAPACITY) {
        ++stats.releases_merged;
        return false;
    }
    jobs_[(head_ + count_) % CAPACITY] = Job{release, release + period, false};
    ++count_;
    return true;
}

bool JobLog::complete(Ticks now, VcpuStats& stats)
{
    if (count_ == 0)
        return false;
    check_deadlines(now, stats);
    const Job& job = jobs_[head_];
    Ticks response = now - job.release;
    if (response > stats.worst_response)
        stats.worst_response = response;
    ++stats.jobs_completed;
    head_ = (head_ + 1) % CAPACITY;
    --count_;
    return true;
}

void JobLog::check_deadlines(Ticks now, VcpuStats& stats)
{
    for (size_t i = 0; i < count_; ++i) {
        Job& job = jobs_[(head_ + i) % CAPACITY];
        if (job.deadline < now && !job.missed) {
            job.missed = true;
            ++stats.deadline_misses;
        }
    }
}

} // namespace vlibos::rt
