#include "rt/periodic_core.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace vlibos::rt;

namespace {

// A simulated RT core driven exactly as kernel/core/rt_core.cpp drives the real one: the only
// events are the one-shot timer (next_event) and job completions; each thread needs `work`
// ticks per job (NEVER = a hog that never completes a job).
struct Thread {
    VcpuId vcpu;
    Ticks work;
    Ticks left = 0;
    bool in_job = false;
};

struct Run {
    PeriodicCore core;
    std::vector<Thread> threads;
    Ticks now = 1000;
    Ticks timer_lateness = 0;  // models interrupt latency: every timer fires this late

    explicit Run(PriorityPolicy p = PriorityPolicy::RateMonotonic) : core(p) {}

    VcpuId add(Ticks c, Ticks t, Ticks work, uint32_t priority = 0)
    {
        auto id = core.admit(VcpuParams::main(c, t, priority), now);
        REQUIRE(id);
        REQUIRE(core.start(id.value(), now));
        threads.push_back(Thread{id.value(), work, work, true});
        return id.value();
    }

    Thread& of(VcpuId id)
    {
        for (Thread& t : threads)
            if (t.vcpu == id)
                return t;
        FAIL("no thread");
        return threads[0];
    }

    void run_until(Ticks end)
    {
        while (now < end) {
            VcpuId id = core.pick(now);
            Ticks event = core.next_event(now);
            if (event != NEVER)
                event += timer_lateness;
            if (event > end)
                event = end;
            if (id == IDLE) {
                REQUIRE(event > now);  // idle with nothing pending would be a lost wake-up
                now = event;
                continue;
            }
            Thread& t = of(id);
            if (!t.in_job) {  // a release arrived for a thread that was waiting
                t.in_job = true;
                t.left = t.work;
            }
            Ticks slice = event - now;
            if (t.left != NEVER && t.left <= slice) {
                now += t.left;
                t.left = 0;
                auto more = core.complete_job(id, now);
                REQUIRE(more);
                t.in_job = more.value();
                if (t.in_job)
                    t.left = t.work;
            } else {
                REQUIRE(slice > 0);
                now += slice;
                if (t.left != NEVER)
                    t.left -= slice;
            }
        }
    }
};

} // namespace

TEST_CASE("Periodic core: a schedulable set runs many periods with no miss", "[rt][periodic]")
{
    Run r;
    // The periodic demo's set (ticks = us): main 1/20, fast 1/5, mid 2/10, slow 4/40 (ms), jobs at 40%.
    VcpuId main = r.add(1000, 20000, 400);
    VcpuId fast = r.add(1000, 5000, 400);
    VcpuId mid = r.add(2000, 10000, 800);
    VcpuId slow = r.add(4000, 40000, 1600);
    r.run_until(1000 + 2'000'000);  // 2 s
    for (VcpuId id : {main, fast, mid, slow}) {
        const VcpuStats& s = r.core.scheduler().stats(id);
        CHECK(s.deadline_misses == 0);
        Ticks period = r.core.scheduler().main_vcpu(id).period();
        CHECK(s.jobs_completed >= 2'000'000 / period - 1);
        CHECK(s.worst_response <= period);
    }
    // The fast task is the most urgent: its response is just its own work.
    CHECK(r.core.scheduler().stats(fast).worst_response == 400);
}

TEST_CASE("Periodic core: a late timer keeps the release grid", "[rt][periodic]")
{
    Run r;
    r.timer_lateness = 37;
    VcpuId v = r.add(1000, 10000, 100);
    r.run_until(1000 + 1'000'000);
    const VcpuStats& s = r.core.scheduler().stats(v);
    CHECK(s.jobs_completed >= 99);
    CHECK(s.deadline_misses == 0);
    // Releases stay on start + k*T; the response includes the lateness of the timer.
    CHECK(r.core.next_release(v) % 10000 == 1000);
    CHECK(s.worst_response == 137);
}

TEST_CASE("Periodic core: a hog is held to its budget and the others keep their deadlines", "[rt][periodic]")
{
    Run r;
    VcpuId hog = r.add(2000, 10000, NEVER);  // overruns every job: never completes
    VcpuId a = r.add(1000, 5000, 500);
    VcpuId b = r.add(3000, 20000, 2000);
    Ticks span = 1'000'000;
    r.run_until(1000 + span);
    CHECK(r.core.scheduler().stats(a).deadline_misses == 0);
    CHECK(r.core.scheduler().stats(b).deadline_misses == 0);
    const VcpuStats& h = r.core.scheduler().stats(hog);
    // Sporadic server: at most C in the period after each activation.
    CHECK(h.budget_used <= (span / 10000 + 1) * 2000);
    CHECK(h.budget_used >= (span / 10000 - 1) * 2000);  // and it does get its share
    CHECK(h.deadline_misses > 0);                         // its own jobs are late, nobody else's
    CHECK(h.releases_merged > 0);                         // its backlog is bounded
}

TEST_CASE("Periodic core: wait for the next period returns at once when a release is pending", "[rt][periodic]")
{
    PeriodicCore core;
    auto id = core.admit(VcpuParams::main(100, 1000), 0);
    REQUIRE(id);
    REQUIRE(core.start(id.value(), 0));
    CHECK(core.current_release(id.value()) == 0);
    CHECK(core.pick(0) == id.value());
    // The job overran past two releases (at 1000 and 2000): it completes at 2500.
    auto more = core.complete_job(id.value(), 2500);
    REQUIRE(more);
    CHECK(more.value());
    CHECK(core.current_release(id.value()) == 1000);
    more = core.complete_job(id.value(), 2600);
    REQUIRE(more);
    CHECK(more.value());
    CHECK(core.current_release(id.value()) == 2000);
    more = core.complete_job(id.value(), 2700);
    REQUIRE(more);
    CHECK_FALSE(more.value());
    CHECK(core.next_event(2700) <= 3000);
}

TEST_CASE("Periodic core: retiring a VCPU frees its slot and its utilisation", "[rt][periodic]")
{
    PeriodicCore core;
    auto a = core.admit(VcpuParams::main(5, 10), 0);
    REQUIRE(a);
    REQUIRE(core.start(a.value(), 0));
    // 0.5 + 0.4 = 0.9 > 0.828 for two VCPUs: refused while `a` is there.
    auto refused = core.admit(VcpuParams::main(4, 10), 0);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().kind == AdmissionErrorKind::UtilisationBound);
    REQUIRE(core.retire(a.value(), 5));
    CHECK(core.pick(5) == IDLE);
    CHECK(core.next_event(5) == NEVER);
    CHECK_FALSE(core.retire(a.value(), 6));  // twice is an error
    CHECK_FALSE(core.complete_job(a.value(), 6));
    auto b = core.admit(VcpuParams::main(4, 10), 6);
    REQUIRE(b);
    CHECK(b.value() == a.value());  // the slot is reused
    CHECK(core.scheduler().stats(b.value()).jobs_completed == 0);
}

TEST_CASE("Periodic core: only Main VCPUs have a release grid", "[rt][periodic]")
{
    PeriodicCore core;
    auto io = core.admit(VcpuParams::io(100000), 0);
    REQUIRE(io);
    auto started = core.start(io.value(), 0);
    REQUIRE_FALSE(started);
    CHECK(started.error() == SchedError::NotMainVcpu);
    CHECK_FALSE(core.start(7, 0));
}
