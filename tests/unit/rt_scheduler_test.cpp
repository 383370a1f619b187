#include "rt/core_scheduler.hpp"

#include <catch2/catch.hpp>

#include "test_random.hpp"

#include <algorithm>
#include <deque>
#include <vector>

using namespace vlibos::rt;
using vlibos::test::Lcg;

namespace {

Ticks sum_of_chunks(const MainVcpu& v)
{
    Ticks sum = 0;
    for (size_t i = 0; i < v.replenishment_count(); ++i)
        sum += v.replenishment(i).amount;
    return sum;
}

struct Interval {
    Ticks begin;
    Ticks end;
};

// A simulated core: a clock, the work each released job still needs, and a record of who ran when.
// It drives the scheduler exactly as the kernel will: the one-shot timer, releases and
// completions are the only events, and nothing runs past the time next_event() asked for.
class Sim {
public:
    explicit Sim(PriorityPolicy policy = PriorityPolicy::RateMonotonic) : core(policy) {}

    VcpuId admit(VcpuParams p)
    {
        VcpuId id = IDLE;
        REQUIRE(try_admit(p, &id));
        return id;
    }

    bool try_admit(VcpuParams p, VcpuId* id)
    {
        auto admitted = core.admit(p, now);
        if (!admitted)
            return false;
        work.emplace_back();
        runs.emplace_back();
        activations.emplace_back();
        periodic.push_back(Periodic{});
        *id = admitted.value();
        return true;
    }

    // Releases a job needing `amount` ticks now.
    void release(VcpuId id, Ticks amount)
    {
        bool was_runnable = core.runnable(id);
        uint64_t merged = core.stats(id).releases_merged;
        REQUIRE(core.wake(id, now));
        if (core.stats(id).releases_merged != merged)
            work[id].back() += amount;  // the job log was full: the release joined the last job
        else
            work[id].push_back(amount);
        if (!was_runnable && core.kind(id) == VcpuKind::Main && core.capacity(id, now) > 0)
            activations[id].push_back(now);
    }

    // Releases a job of `amount` every `period` from `phase` on, until the simulation ends.
    void periodic_jobs(VcpuId id, Ticks phase, Ticks period, Ticks amount)
    {
        periodic[id] = Periodic{true, phase, period, amount};
    }

    // Random sporadic jobs: gaps of at least `min_gap`, work up to `max_work`.
    void sporadic_jobs(VcpuId id, Ticks min_gap, Ticks max_work, Lcg* rng)
    {
        periodic[id] = Periodic{true, now + rng->below(min_gap), min_gap, max_work, rng};
    }

    void run_until(Ticks end)
    {
        int stalls = 0;
        while (now < end) {
            Ticks next = std::min(core.next_event(now), end);
            for (const auto& p : periodic)
                if (p.on)
                    next = std::min(next, p.next);
            VcpuId cur = core.current();
            if (cur != IDLE) {
                REQUIRE(!work[cur].empty());
                next = std::min(next, now + work[cur].front());
            }
            REQUIRE(next >= now);
            stalls = next == now ? stalls + 1 : 0;
            REQUIRE(stalls < 64);
            if (cur != IDLE && next > now) {
                work[cur].front() -= next - now;
                if (!runs[cur].empty() && runs[cur].back().end == now)
                    runs[cur].back().end = next;
                else
                    runs[cur].push_back({now, next});
            }
            now = next;
            core.account(now);
            if (cur != IDLE && work[cur].front() == 0) {
                work[cur].pop_front();
                REQUIRE(core.block(cur, now));
            }
            for (size_t i = 0; i < periodic.size(); ++i) {
                Periodic& p = periodic[i];
                while (p.on && p.next == now) {
                    Ticks amount = p.rng ? 1 + p.rng->below(p.amount) : p.amount;
                    release(static_cast<VcpuId>(i), amount);
                    p.next += p.rng ? p.period + p.rng->below(2 * p.period) : p.period;
                }
            }
            core.pick(now);
            check_invariants();
        }
    }

    void check_invariants()
    {
        for (size_t i = 0; i < core.count(); ++i) {
            VcpuId id = static_cast<VcpuId>(i);
            if (core.kind(id) != VcpuKind::Main)
                continue;
            const MainVcpu& v = core.main_vcpu(id);
            REQUIRE(sum_of_chunks(v) == v.budget());  // budget is never created or lost
            for (size_t k = 1; k < v.replenishment_count(); ++k)
                REQUIRE(v.replenishment(k - 1).time <= v.replenishment(k).time);
            REQUIRE(core.runnable(id) == !work[id].empty());
        }
    }

    Ticks executed(VcpuId id, Ticks begin, Ticks end) const
    {
        Ticks sum = 0;
        for (const Interval& r : runs[id]) {
            Ticks b = std::max(begin, r.begin);
            Ticks e = std::min(end, r.end);
            if (b < e)
                sum += e - b;
        }
        return sum;
    }

    // The most `id` ran in any window of `length` (the maximum is reached with a window that starts
    // where a run starts or ends where a run ends).
    Ticks max_in_window(VcpuId id, Ticks length) const
    {
        Ticks best = 0;
        for (const Interval& r : runs[id]) {
            best = std::max(best, executed(id, r.begin, r.begin + length));
            if (r.end >= length)
                best = std::max(best, executed(id, r.end - length, r.end));
        }
        return best;
    }

    CoreScheduler core;
    Ticks now = 0;
    std::vector<std::deque<Ticks>> work;
    std::vector<std::vector<Interval>> runs;
    std::vector<std::vector<Ticks>> activations;

private:
    struct Periodic {
        bool on = false;
        Ticks next = 0;
        Ticks period = 0;
        Ticks amount = 0;
        Lcg* rng = nullptr;
    };
    std::vector<Periodic> periodic;
};

} // namespace

TEST_CASE("Sporadic server: what was used comes back one period after the activation", "[rt][scheduler]")
{
    CoreScheduler core;
    VcpuId a = core.admit(VcpuParams::main(4, 10), 0).value();
    CHECK_FALSE(core.runnable(a));
    CHECK(core.next_event(0) == NEVER);
    CHECK(core.pick(0) == IDLE);

    // Activation at 5: the head chunk's time becomes 5.
    CHECK(core.wake(a, 5).value());
    CHECK(core.pick(5) == a);
    CHECK(core.next_event(5) == 9);  // exhaustion
    REQUIRE(core.block(a, 7));       // used 2: split, (15, 2) posted, remnant (5, 2) stays usable
    const MainVcpu& v = core.main_vcpu(a);
    REQUIRE(v.replenishment_count() == 2);
    CHECK(v.replenishment(0).time == 5);
    CHECK(v.replenishment(0).amount == 2);
    CHECK(v.replenishment(1).time == 15);
    CHECK(v.replenishment(1).amount == 2);
    CHECK(core.stats(a).replenishments == 1);
    CHECK(core.pick(7) == IDLE);

    // Activation at 8 with 2 left: runs out at 10, that chunk comes back at 18.
    CHECK(core.wake(a, 8).value());
    CHECK(core.pick(8) == a);
    CHECK(core.next_event(8) == 10);
    CHECK(core.pick(10) == IDLE);  // exhausted: nothing usable until 15
    REQUIRE(v.replenishment_count() == 2);
    CHECK(v.replenishment(0).time == 15);
    CHECK(v.replenishment(1).time == 18);
    CHECK(v.replenishment(1).amount == 2);
    CHECK(core.next_event(10) == 15);  // the one-shot timer: the next replenishment
    CHECK(core.pick(15) == a);
    CHECK(core.next_event(15) == 17);
    CHECK(core.pick(17) == IDLE);
    CHECK(core.next_event(17) == 18);
    CHECK(core.pick(18) == a);
    CHECK(core.stats(a).budget_used == 6);  // 5-7, 8-10, 15-17
}

TEST_CASE("Sporadic server: a wake merges chunks that are due before the head runs out", "[rt][scheduler]")
{
    CoreScheduler core;
    VcpuId a = core.admit(VcpuParams::main(6, 20), 0).value();
    REQUIRE(core.wake(a, 0));
    core.pick(0);
    REQUIRE(core.block(a, 2));  // (0, 4) and (20, 2)
    REQUIRE(core.wake(a, 17));  // 4 usable from 17: (20, 2) is due before 21, so one chunk of 6 at 17
    const MainVcpu& v = core.main_vcpu(a);
    REQUIRE(v.replenishment_count() == 1);
    CHECK(v.replenishment(0).time == 17);
    CHECK(v.replenishment(0).amount == 6);
    core.pick(17);
    CHECK(core.next_event(17) == 23);
}

TEST_CASE("Sporadic server: the chunk list is bounded and full lists only delay budget", "[rt][scheduler]")
{
    // Many short runs separated by blocks fragment the budget; the list never holds more than
    // MAX_REPLENISHMENTS chunks and the amounts always add up to C.
    CoreScheduler core;
    VcpuId a = core.admit(VcpuParams::main(100, 1000), 0).value();
    Ticks t = 0;
    for (int i = 0; i < 40; ++i) {
        REQUIRE(core.wake(a, t));
        core.pick(t);
        t += 1;
        REQUIRE(core.block(a, t));
        t += 3;
        const MainVcpu& v = core.main_vcpu(a);
        CHECK(v.replenishment_count() <= MainVcpu::MAX_REPLENISHMENTS);
        CHECK(sum_of_chunks(v) == 100);
        // A chunk is never usable earlier than one period after the run that used it began.
        for (size_t k = 1; k < v.replenishment_count(); ++k)
            CHECK(v.replenishment(k).time >= 1000);
    }
}

TEST_CASE("Budget exhaustion arms the timer; a late timer is charged as overrun", "[rt][scheduler]")
{
    CoreScheduler core;
    VcpuId a = core.admit(VcpuParams::main(3, 10), 0).value();
    REQUIRE(core.wake(a, 0));
    CHECK(core.pick(0) == a);
    CHECK(core.next_event(0) == 3);
    // The timer fires one tick late: 4 ticks are charged, and the next chunk starts a tick later.
    CHECK(core.pick(4) == IDLE);
    CHECK(core.stats(a).budget_used == 4);
    CHECK(core.next_event(4) == 11);
    CHECK(core.pick(11) == a);
    CHECK(core.capacity(a, 11) == 2);  // the tick of overrun is still owed
}

TEST_CASE("Preemption order: rate-monotonic and explicit", "[rt][scheduler]")
{
    SECTION("rate-monotonic: shortest period first, whatever the admission order")
    {
        CoreScheduler core;
        VcpuId slow = core.admit(VcpuParams::main(1, 30), 0).value();
        VcpuId fast = core.admit(VcpuParams::main(1, 10), 0).value();
        VcpuId mid = core.admit(VcpuParams::main(1, 20), 0).value();
        CHECK(core.wake(slow, 0).value());
        CHECK(core.pick(0) == slow);
        CHECK(core.wake(mid, 0).value());   // more urgent: preempts
        CHECK(core.pick(0) == mid);
        CHECK(core.wake(fast, 0).value());
        CHECK_FALSE(core.wake(slow, 0).value());  // already runnable and less urgent
        CHECK(core.pick(0) == fast);
        REQUIRE(core.block(fast, 1));
        CHECK(core.pick(1) == mid);
        REQUIRE(core.block(mid, 2));
        CHECK(core.pick(2) == slow);
    }
    SECTION("explicit priorities override periods; equal priorities go by admission order")
    {
        CoreScheduler core(PriorityPolicy::Explicit);
        VcpuId a = core.admit(VcpuParams::main(1, 10, 2), 0).value();
        VcpuId b = core.admit(VcpuParams::main(1, 40, 0), 0).value();
        VcpuId c = core.admit(VcpuParams::main(1, 20, 2), 0).value();
        REQUIRE(core.wake(c, 0));
        REQUIRE(core.wake(a, 0));
        CHECK(core.pick(0) == a);  // same priority as c, admitted first
        CHECK(core.wake(b, 0).value());
        CHECK(core.pick(0) == b);
    }
    SECTION("a more urgent VCPU without budget does not run, and its replenishment is the next event")
    {
        CoreScheduler core;
        VcpuId fast = core.admit(VcpuParams::main(2, 10), 0).value();
        VcpuId slow = core.admit(VcpuParams::main(10, 100), 0).value();
        REQUIRE(core.wake(fast, 0));
        REQUIRE(core.wake(slow, 0));
        CHECK(core.pick(0) == fast);
        CHECK(core.pick(2) == slow);       // fast is out of budget but still has work
        CHECK(core.next_event(2) == 10);   // fast's replenishment, before slow's exhaustion at 12
        CHECK(core.pick(10) == fast);
    }
}

TEST_CASE("Deadline misses and response times", "[rt][scheduler]")
{
    SECTION("a set within the bound meets every deadline over many periods")
    {
        Sim sim;
        VcpuId a = sim.admit(VcpuParams::main(2, 10));
        VcpuId b = sim.admit(VcpuParams::main(5, 25));
        VcpuId c = sim.admit(VcpuParams::main(9, 60));  // 0.2 + 0.2 + 0.15 = 0.55 < 0.779763
        sim.periodic_jobs(a, 0, 10, 2);
        sim.periodic_jobs(b, 0, 25, 5);
        sim.periodic_jobs(c, 0, 60, 9);
        sim.run_until(300'000);
        for (VcpuId id : {a, b, c}) {
            CHECK(sim.core.stats(id).deadline_misses == 0);
            CHECK(sim.core.stats(id).jobs_completed >= 300'000 / 60 - 1);
        }
        CHECK(sim.core.stats(a).worst_response == 2);
        CHECK(sim.core.stats(b).worst_response == 7);   // critical instant: 2 + 5
        CHECK(sim.core.stats(c).worst_response == 18);  // response-time analysis: 9 + 2*2 + 5
    }
    SECTION("a VCPU with more work than budget misses, and gets no more than its budget")
    {
        Sim sim;
        VcpuId a = sim.admit(VcpuParams::main(3, 10));
        VcpuId b = sim.admit(VcpuParams::main(3, 10));
        sim.periodic_jobs(a, 0, 10, 5);  // 5 ticks of work per period on a budget of 3
        sim.periodic_jobs(b, 0, 10, 3);
        sim.run_until(1000);
        INFO("misses " << sim.core.stats(a).deadline_misses << " merged " << sim.core.stats(a).releases_merged
                       << " completed " << sim.core.stats(a).jobs_completed);
        // Every job misses (even the first: 5 ticks of work, 3 of budget before its deadline). Releases
        // beyond the job log's capacity join the last job and are not counted on their own.
        CHECK(sim.core.stats(a).deadline_misses >= sim.core.stats(a).jobs_completed);
        CHECK(sim.core.stats(a).deadline_misses + sim.core.stats(a).releases_merged >= 95);
        CHECK(sim.core.stats(a).budget_used <= 300);
        CHECK(sim.core.stats(b).deadline_misses == 0);  // isolation: the overload stays with a
        CHECK(sim.core.stats(b).worst_response <= 10);
        CHECK(sim.core.stats(a).releases_merged > 0);   // its backlog outgrew the job log
    }
}

TEST_CASE("I/O VCPU: inherits the period of its Main VCPU and preserves its bandwidth", "[rt][scheduler]")
{
    CoreScheduler core;
    VcpuId main = core.admit(VcpuParams::main(20, 100), 0).value();
    VcpuId io = core.admit(VcpuParams::io(100'000), 0).value();  // U = 0.1
    CHECK(core.wake_io(main, main, 0).error() == SchedError::NotIoVcpu);
    CHECK(core.wake_io(io, io, 0).error() == SchedError::NotMainVcpu);
    CHECK(core.wake_io(io, 7, 0).error() == SchedError::NoSuchVcpu);

    CHECK(core.wake_io(io, main, 0).value());
    CHECK(core.io_vcpu(io).period() == 100);
    CHECK(core.io_vcpu(io).max_budget() == 10);  // U * T
    CHECK(core.pick(0) == io);
    CHECK(core.next_event(0) == 10);
    CHECK(core.pick(10) == IDLE);  // budget gone: 10 ticks buy 10 / 0.1 = 100 ticks of pause
    CHECK(core.next_event(10) == 100);
    CHECK(core.pick(100) == io);
    REQUIRE(core.block(io, 104));  // used 4: eligible again 40 ticks after 100
    CHECK(core.stats(io).replenishments == 2);
    CHECK(core.wake_io(io, main, 110).value() == false);  // not eligible before 140
    CHECK(core.next_event(110) == 140);
    CHECK(core.pick(140) == io);
    CHECK(core.stats(io).budget_used == 14);
}

TEST_CASE("Random simulation: sporadic-server guarantees hold", "[rt][scheduler]")
{
    Lcg rng{0x5eed};
    for (int round = 0; round < 40; ++round) {
        Sim sim;
        std::vector<VcpuId> ids;
        // Admit random VCPUs until the core refuses one (distinct periods: no ties).
        std::vector<Ticks> periods;
        for (int tries = 0; tries < 12; ++tries) {
            Ticks period = 20 + rng.below(500);
            if (std::find(periods.begin(), periods.end(), period) != periods.end())
                continue;
            Ticks budget = 1 + rng.below(period / 3);
            VcpuId id = IDLE;
            if (!sim.try_admit(VcpuParams::main(budget, period), &id))
                continue;
            periods.push_back(period);
            ids.push_back(id);
        }
        REQUIRE(!ids.empty());
        // Sporadic jobs of up to C ticks, at least T apart: the admitted set must meet every deadline.
        // Some rounds overload one VCPU instead (work up to 3C, same spacing).
        bool overload = round % 4 == 3;
        std::vector<Lcg> gens;
        gens.reserve(ids.size());
        for (VcpuId id : ids) {
            gens.push_back(Lcg{rng.next()});
            const MainVcpu& v = sim.core.main_vcpu(id);
            Ticks max_work = overload && id == ids.back() ? 3 * v.budget() : v.budget();
            sim.sporadic_jobs(id, v.period(), max_work, &gens.back());
        }
        sim.run_until(100'000);

        for (VcpuId id : ids) {
            const MainVcpu& v = sim.core.main_vcpu(id);
            INFO("round " << round << " vcpu " << int(id) << " C " << v.budget() << " T " << v.period());
            if (!overload || id != ids.back())
                CHECK(sim.core.stats(id).deadline_misses == 0);
            // From every activation, at most C in the next T.
            for (Ticks t : sim.activations[id])
                REQUIRE(sim.executed(id, t, t + v.period()) <= v.budget());
            // Nothing gets more than its share over the whole run (C per T, plus one C of slack).
            REQUIRE(sim.executed(id, 0, sim.now) <= (sim.now / v.period() + 1) * v.budget());
        }
        // The most urgent VCPU is never delayed by another, so for it the guarantee holds for every
        // window: never more than C in any T.
        VcpuId top = ids[0];
        for (VcpuId id : ids)
            if (sim.core.main_vcpu(id).period() < sim.core.main_vcpu(top).period())
                top = id;
        const MainVcpu& t = sim.core.main_vcpu(top);
        CHECK(sim.max_in_window(top, t.period()) <= t.budget());
    }
}
