#include "vmm/devices/interrupt_routing.hpp"
#include "vmm/devices/virtual_lapic.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace vlibos::vmm::devices;

namespace {

InterruptMessage physical(uint8_t destination, DeliveryMode mode = DeliveryMode::Fixed, uint8_t vector = 0x41)
{
    InterruptMessage m;
    m.vector = vector;
    m.delivery = mode;
    m.destination = destination;
    return m;
}

InterruptMessage logical(uint8_t mda, DeliveryMode mode = DeliveryMode::Fixed)
{
    InterruptMessage m = physical(mda, mode);
    m.destination_mode = DestinationMode::Logical;
    return m;
}

InterruptMessage shorthand(Shorthand s, DeliveryMode mode = DeliveryMode::Fixed)
{
    InterruptMessage m = physical(0x7, mode);
    m.shorthand = s;
    return m;
}

GuestApics guest(size_t count)
{
    GuestApics g;
    g.count = count;
    return g;
}

std::string text(const IpiFilter::Dropped& d)
{
    char buffer[160];
    format_dropped(buffer, sizeof buffer, d);
    return buffer;
}

} // namespace

TEST_CASE("routing: physical destinations stay inside the guest", "[devices][routing]")
{
    GuestApics g = guest(4);
    CHECK(resolve_destinations(physical(0), g, 1).targets == 0b0001);
    CHECK(resolve_destinations(physical(3), g, 1).targets == 0b1000);
    Route r = resolve_destinations(physical(4), g, 1);
    CHECK(r.verdict == RouteVerdict::Blocked);
    CHECK(r.targets == 0);
    CHECK(resolve_destinations(physical(0xfe), g, 1).verdict == RouteVerdict::Blocked);
    // Physical broadcast means the guest's own vCPUs, sender included.
    r = resolve_destinations(physical(kBroadcast), g, 1);
    CHECK(r.verdict == RouteVerdict::Deliver);
    CHECK(r.targets == 0b1111);
    // NMI, INIT and SIPI obey the same rule.
    for (DeliveryMode mode : {DeliveryMode::Nmi, DeliveryMode::Init, DeliveryMode::Startup}) {
        CHECK(resolve_destinations(physical(2, mode), g, 0).targets == 0b0100);
        CHECK(resolve_destinations(physical(5, mode), g, 0).verdict == RouteVerdict::Blocked);
    }
    // A full 64-vCPU guest.
    GuestApics big = guest(64);
    CHECK(resolve_destinations(physical(63), big, 0).targets == (uint64_t{1} << 63));
    CHECK(resolve_destinations(physical(kBroadcast), big, 0).targets == ~uint64_t{0});
    CHECK(resolve_destinations(physical(64), big, 0).verdict == RouteVerdict::Blocked);
    // count above the limit is clamped; an empty guest receives nothing.
    GuestApics huge = guest(1000);
    CHECK(resolve_destinations(physical(kBroadcast), huge, 0).targets == ~uint64_t{0});
    CHECK(resolve_destinations(physical(0), guest(0), kNoSource).verdict == RouteVerdict::Blocked);
}

TEST_CASE("routing: logical flat and cluster models", "[devices][routing]")
{
    GuestApics g = guest(4);
    SECTION("flat: LDR[31:24] is a bit mask")
    {
        for (size_t i = 0; i < 4; ++i)
            g.logical[i] = LogicalId{uint32_t{1} << (24 + i), 0xffff'ffff};
        CHECK(resolve_destinations(logical(0x05), g, 0).targets == 0b0101);
        CHECK(resolve_destinations(logical(0x0f), g, 0).targets == 0b1111);
        CHECK(resolve_destinations(logical(0x30), g, 0).verdict == RouteVerdict::Blocked);
        CHECK(resolve_destinations(logical(0x12), g, 0).targets == 0b0010);  // the 0x10 part: nobody
        CHECK(resolve_destinations(logical(kBroadcast), g, 0).targets == 0b1111);
        // Lowest priority picks one target.
        Route r = resolve_destinations(logical(0x0c, DeliveryMode::LowestPriority), g, 0);
        CHECK(r.targets == 0b0100);
    }
    SECTION("cluster: MDA[7:4] names the cluster, MDA[3:0] the members")
    {
        const uint32_t cluster_dfr = 0x0fff'ffff;
        g.logical[0] = LogicalId{0x1100'0000, cluster_dfr};  // cluster 1, member bit 0
        g.logical[1] = LogicalId{0x1200'0000, cluster_dfr};  // cluster 1, member bit 1
        g.logical[2] = LogicalId{0x2100'0000, cluster_dfr};  // cluster 2, member bit 0
        g.logical[3] = LogicalId{0x2800'0000, cluster_dfr};  // cluster 2, member bit 3
        CHECK(resolve_destinations(logical(0x13), g, 0).targets == 0b0011);
        CHECK(resolve_destinations(logical(0x29), g, 0).targets == 0b1100);
        CHECK(resolve_destinations(logical(0x21), g, 0).targets == 0b0100);
        CHECK(resolve_destinations(logical(0x31), g, 0).verdict == RouteVerdict::Blocked);
        CHECK(resolve_destinations(logical(0x14), g, 0).verdict == RouteVerdict::Blocked);
        CHECK(resolve_destinations(logical(0xff), g, 0).targets == 0b1111);
    }
    SECTION("a reserved DFR model matches nothing")
    {
        g.logical[0] = LogicalId{0x0100'0000, 0x5fff'ffff};
        CHECK(resolve_destinations(logical(0x01), g, 0).verdict == RouteVerdict::Blocked);
        CHECK_FALSE(logical_match(g.logical[0], 0x01));
        CHECK(logical_match(g.logical[0], 0xff));
    }
    SECTION("reset LDR (0) matches nothing but broadcast")
    {
        CHECK(resolve_destinations(logical(0x01), g, 0).verdict == RouteVerdict::Blocked);
    }
}

TEST_CASE("routing: shorthands mean the guest's own vCPUs", "[devices][routing]")
{
    GuestApics g = guest(3);
    CHECK(resolve_destinations(shorthand(Shorthand::Self), g, 2).targets == 0b100);
    CHECK(resolve_destinations(shorthand(Shorthand::AllIncludingSelf), g, 2).targets == 0b111);
    CHECK(resolve_destinations(shorthand(Shorthand::AllExcludingSelf, DeliveryMode::Init), g, 0).targets == 0b110);
    Route alone = resolve_destinations(shorthand(Shorthand::AllExcludingSelf), guest(1), 0);
    CHECK(alone.verdict == RouteVerdict::None);
    // Without a sending vCPU there is no "self".
    CHECK(resolve_destinations(shorthand(Shorthand::Self), g, kNoSource).verdict == RouteVerdict::Blocked);
    CHECK(resolve_destinations(shorthand(Shorthand::AllExcludingSelf), g, kNoSource).targets == 0b111);
    // A source outside the guest is not one of its vCPUs.
    CHECK(resolve_destinations(shorthand(Shorthand::Self), g, 7).verdict == RouteVerdict::Blocked);
}

TEST_CASE("routing: SMI and reserved modes are never delivered", "[devices][routing]")
{
    GuestApics g = guest(2);
    CHECK(resolve_destinations(physical(0, DeliveryMode::Smi), g, 0).verdict == RouteVerdict::Refused);
    CHECK(resolve_destinations(shorthand(Shorthand::AllExcludingSelf, DeliveryMode::Smi), g, 0).verdict ==
          RouteVerdict::Refused);
    CHECK(resolve_destinations(physical(0, DeliveryMode::Reserved3), g, 0).verdict == RouteVerdict::Refused);
    CHECK(resolve_destinations(physical(0, DeliveryMode::ExtInt), g, kNoSource).targets == 0b01);
}

TEST_CASE("routing: the filter counts and reports blocked IPIs", "[devices][routing]")
{
    GuestApics g = guest(2);
    IpiFilter f;
    CHECK(text(f.last_dropped()) == "no dropped interrupt");
    CHECK(f.route(physical(1), g, 0).targets == 0b10);
    CHECK(f.route(physical(5), g, 0).verdict == RouteVerdict::Blocked);
    CHECK(text(f.last_dropped()) == "blocked IPI to apic id 5 from vcpu 0: fixed vector 0x41");
    CHECK(f.route(logical(0x80, DeliveryMode::Nmi), g, 1).verdict == RouteVerdict::Blocked);
    CHECK(text(f.last_dropped()) == "blocked IPI to logical destination 0x80 from vcpu 1: nmi");
    (void)f.route(physical(1, DeliveryMode::Smi), g, 0);
    CHECK(text(f.last_dropped()) == "refused IPI to apic id 1 from vcpu 0: smi");
    (void)f.route(physical(9, DeliveryMode::Fixed, 0x30), g, kNoSource);
    CHECK(text(f.last_dropped()) == "blocked interrupt to apic id 9 from a device: fixed vector 0x30");
    (void)f.route(shorthand(Shorthand::AllExcludingSelf), guest(1), 0);
    CHECK(f.stats().delivered == 1);
    CHECK(f.stats().blocked == 3);
    CHECK(f.stats().refused == 1);
    CHECK(f.stats().empty == 1);

    char small[16];
    size_t full = format_dropped(small, sizeof small, f.last_dropped());
    CHECK(full > sizeof small);
    CHECK(std::string(small).size() == sizeof small - 1);
}

TEST_CASE("routing: an IPI from one vCPU's LAPIC to another's, end to end", "[devices][routing]")
{
    const VirtualLapic::Clock clock{};
    std::vector<VirtualLapic> vcpus;
    for (uint8_t i = 0; i < 2; ++i) {
        vcpus.emplace_back(i, i == 0, clock);
        REQUIRE(vcpus[i].write(VirtualLapic::kSvr, 4, 0x1ff, 0).ok());
        REQUIRE(vcpus[i].write(VirtualLapic::kLdr, 4, uint32_t{1} << (24 + i), 0).ok());
    }
    GuestApics g = guest(2);
    for (size_t i = 0; i < 2; ++i)
        g.logical[i] = vcpus[i].logical_id();
    IpiFilter filter;

    auto send = [&](uint32_t high, uint32_t low) {
        REQUIRE(vcpus[0].write(VirtualLapic::kIcrHigh, 4, high, 0).ok());
        auto e = vcpus[0].write(VirtualLapic::kIcrLow, 4, low, 0);
        REQUIRE(e.ok());
        REQUIRE(e.value().kind == LapicEffect::Kind::Ipi);
        Route r = filter.route(e.value().ipi, g, 0);
        for (size_t t = 0; t < 2; ++t)
            if ((r.targets >> t) & 1u)
                (void)vcpus[t].post(e.value().ipi.vector);
        return r;
    };
    CHECK(send(0x0100'0000, 0x0000'40f0).targets == 0b10);
    CHECK(vcpus[1].pending_vector() == 0xf0);
    CHECK(send(0x0200'0000, 0x0000'48e0).targets == 0b10);  // logical 0x02
    CHECK(send(0x0500'0000, 0x0000'40d0).verdict == RouteVerdict::Blocked);
    CHECK_FALSE(vcpus[0].in_irr(0xd0));
    CHECK_FALSE(vcpus[1].in_irr(0xd0));
    char line[128];
    format_dropped(line, sizeof line, filter.last_dropped());
    CHECK(std::string(line) == "blocked IPI to apic id 5 from vcpu 0: fixed vector 0xd0");
}
