#include "rt/admission.hpp"
#include "rt/core_scheduler.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace vlibos::rt;

namespace {

std::string message(const AdmissionError& error)
{
    char text[512];
    format_admission_error(text, sizeof text, error);
    return text;
}

} // namespace

TEST_CASE("Liu & Layland bound in fixed point", "[rt][admission]")
{
    // floor(n (2^(1/n) - 1) * 1e6) from the real values 0.8284271, 0.7797631, 0.7568285, 0.7434918,
    // 0.7347723; ln 2 = 0.6931472 is the limit, approached from above.
    CHECK(liu_layland_bound_ppm(0) == 1'000'000);
    CHECK(liu_layland_bound_ppm(1) == 1'000'000);
    CHECK(liu_layland_bound_ppm(2) == 828'427);
    CHECK(liu_layland_bound_ppm(3) == 779'763);
    CHECK(liu_layland_bound_ppm(4) == 756'828);
    CHECK(liu_layland_bound_ppm(5) == 743'491);
    CHECK(liu_layland_bound_ppm(6) == 734'772);
    Ppm previous = liu_layland_bound_ppm(1);
    for (uint32_t n = 2; n <= 64; ++n) {
        Ppm bound = liu_layland_bound_ppm(n);
        CHECK(bound < previous);
        CHECK(bound > 693'147);
        previous = bound;
    }
}

TEST_CASE("Utilisation terms round up", "[rt][admission]")
{
    CHECK(utilisation_ppm(1, 3) == 333'334);
    CHECK(utilisation_ppm(3, 3) == 1'000'000);
    CHECK(utilisation_ppm(MAX_TICKS, MAX_TICKS) == 1'000'000);
    CHECK(io_admission_term_ppm(100'000) == 190'000);     // (2 - 0.1) * 0.1
    CHECK(io_admission_term_ppm(1'000'000) == 1'000'000); // (2 - 1) * 1
    CHECK(io_admission_term_ppm(1) == 2);                 // 1.999999e-6 rounds up
}

TEST_CASE("Response-time analysis", "[rt][admission]")
{
    // Harmonic, full utilisation, rate-monotonic order: schedulable with R = T exactly.
    RtaTask harmonic[] = {{1, 2, 0}, {2, 4, 1}};
    CHECK(worst_response_time(harmonic, 2, 0) == 1);
    CHECK(worst_response_time(harmonic, 2, 1) == 4);
    // Textbook: (1,4) (2,6) (3,13): R3 = 10.
    RtaTask textbook[] = {{1, 4, 0}, {2, 6, 1}, {3, 13, 2}};
    CHECK(worst_response_time(textbook, 3, 2) == 10);
    // Inverted priorities: the short-period task waits for the long one.
    RtaTask inverted[] = {{5, 100, 0}, {1, 4, 1}};
    CHECK(worst_response_time(inverted, 2, 1) > 4);
}

TEST_CASE("Rate-monotonic admission at the exact bound", "[rt][admission]")
{
    constexpr Ticks T = 1'000'000;  // 1 tick = 1 ppm of this period
    SECTION("one Main VCPU may use the whole core")
    {
        CoreScheduler core;
        REQUIRE(core.admit(VcpuParams::main(T, T), 0));
        auto more = core.admit(VcpuParams::main(1, T), 0);
        REQUIRE_FALSE(more);
        CHECK(more.error().kind == AdmissionErrorKind::UtilisationBound);
    }
    SECTION("two Main VCPUs: 0.828427 accepted, one tick more refused")
    {
        CoreScheduler core;
        REQUIRE(core.admit(VcpuParams::main(400'000, T), 0));
        auto over = core.admit(VcpuParams::main(428'428, T), 0);
        REQUIRE_FALSE(over);
        const AdmissionError& e = over.error();
        CHECK(e.kind == AdmissionErrorKind::UtilisationBound);
        CHECK(e.utilisation_before == 400'000);
        CHECK(e.utilisation_after == 828'428);
        CHECK(e.bound == 828'427);
        CHECK(e.main_vcpus == 2);
        CHECK(message(e) ==
              "admission refused: utilisation 0.828428 (before 0.400000) would exceed the rate-monotonic bound "
              "n(2^(1/n)-1) = 0.828427 for n = 2 Main VCPUs (Liu & Layland; each I/O VCPU counts (2-U)U, as in "
              "Quest)");
        CHECK(core.count() == 1);  // nothing changed
        REQUIRE(core.admit(VcpuParams::main(428'427, T), 0));
        CHECK(core.utilisation() == 828'427);
    }
    SECTION("a third VCPU lowers the bound for everyone")
    {
        CoreScheduler core;
        REQUIRE(core.admit(VcpuParams::main(400'000, T), 0));
        REQUIRE(core.admit(VcpuParams::main(400'000, 2 * T), 0));  // 0.6
        CHECK_FALSE(core.admit(VcpuParams::main(179'764, T), 0));  // 0.779764 > 0.779763
        REQUIRE(core.admit(VcpuParams::main(179'763, T), 0));
    }
    SECTION("an I/O VCPU counts (2-U)U")
    {
        CoreScheduler core;
        REQUIRE(core.admit(VcpuParams::io(100'000), 0));  // 0.19
        auto over = core.admit(VcpuParams::main(810'001, T), 0);
        REQUIRE_FALSE(over);
        CHECK(over.error().utilisation_before == 190'000);
        CHECK(over.error().utilisation_after == 1'000'001);
        CHECK(over.error().bound == 1'000'000);
        REQUIRE(core.admit(VcpuParams::main(810'000, T), 0));
        CHECK(core.utilisation() == 1'000'000);
    }
}

TEST_CASE("An over-utilised set is refused with the documented message", "[rt][admission]")
{
    CoreScheduler core;
    REQUIRE(core.admit(VcpuParams::main(3, 10), 0));
    REQUIRE(core.admit(VcpuParams::main(5, 20), 0));
    auto refused = core.admit(VcpuParams::main(20, 50), 0);  // 0.3 + 0.25 + 0.4 = 0.95
    REQUIRE_FALSE(refused);
    CHECK(message(refused.error()) ==
          "admission refused: utilisation 0.950000 (before 0.550000) would exceed the rate-monotonic bound "
          "n(2^(1/n)-1) = 0.779763 for n = 3 Main VCPUs (Liu & Layland; each I/O VCPU counts (2-U)U, as in "
          "Quest)");
}

TEST_CASE("Explicit priorities use response-time analysis", "[rt][admission]")
{
    SECTION("a full harmonic set beyond the utilisation bound is accepted")
    {
        CoreScheduler core(PriorityPolicy::Explicit);
        REQUIRE(core.admit(VcpuParams::main(1, 2, 0), 0));
        REQUIRE(core.admit(VcpuParams::main(2, 4, 1), 0));
        CHECK(core.utilisation() == 1'000'000);
        CHECK_FALSE(core.admit(VcpuParams::main(1, 100, 2), 0));
    }
    SECTION("a low-utilisation set in the wrong order is refused, naming the victim")
    {
        CoreScheduler core(PriorityPolicy::Explicit);
        REQUIRE(core.admit(VcpuParams::main(1, 4, 1), 0));
        auto refused = core.admit(VcpuParams::main(5, 100, 0), 0);
        REQUIRE_FALSE(refused);
        const AdmissionError& e = refused.error();
        CHECK(e.kind == AdmissionErrorKind::ResponseTime);
        CHECK(e.victim == 0);
        CHECK(e.deadline == 4);
        CHECK(message(e) ==
              "admission refused: with explicit priorities VCPU 0 would have a worst-case response time above 6 "
              "ticks, beyond its period of 4 ticks (exact response-time analysis; utilisation 0.300000, before "
              "0.250000)");
    }
    SECTION("the new VCPU itself can be the one that misses")
    {
        CoreScheduler core(PriorityPolicy::Explicit);
        REQUIRE(core.admit(VcpuParams::main(50, 100, 0), 0));
        auto refused = core.admit(VcpuParams::main(2, 4, 1), 0);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().victim == IDLE);
        CHECK(message(refused.error()).find("the new VCPU") != std::string::npos);
    }
    SECTION("I/O VCPUs are refused: Quest's bound for them assumes rate-monotonic priorities")
    {
        CoreScheduler core(PriorityPolicy::Explicit);
        auto refused = core.admit(VcpuParams::io(10'000), 0);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().kind == AdmissionErrorKind::IoNeedsRateMonotonic);
    }
}

TEST_CASE("Invalid parameters and a full run queue are refused", "[rt][admission]")
{
    CoreScheduler core;
    for (auto p : {VcpuParams::main(0, 10), VcpuParams::main(11, 10), VcpuParams::main(1, MAX_TICKS + 1),
                   VcpuParams::io(0), VcpuParams::io(1'000'001)}) {
        auto refused = core.admit(p, 0);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().kind == AdmissionErrorKind::InvalidParameters);
    }
    for (size_t i = 0; i < CoreScheduler::MAX_VCPUS; ++i)
        REQUIRE(core.admit(VcpuParams::main(1, 1000), 0));
    auto full = core.admit(VcpuParams::main(1, 1000), 0);
    REQUIRE_FALSE(full);
    CHECK(full.error().kind == AdmissionErrorKind::TooManyVcpus);
    for (auto k : {AdmissionErrorKind::None, AdmissionErrorKind::InvalidParameters, AdmissionErrorKind::TooManyVcpus,
                   AdmissionErrorKind::UtilisationBound, AdmissionErrorKind::ResponseTime,
                   AdmissionErrorKind::IoNeedsRateMonotonic}) {
        CHECK(describe(k)[0] != '\0');
        AdmissionError e;
        e.kind = k;
        CHECK_FALSE(message(e).empty());
    }
    for (auto e : {SchedError::NoSuchVcpu, SchedError::NotMainVcpu, SchedError::NotIoVcpu})
        CHECK(describe(e)[0] != '\0');
}
