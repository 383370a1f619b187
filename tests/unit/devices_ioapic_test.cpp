#include "vmm/devices/virtual_ioapic.hpp"

#include <catch2/catch.hpp>

#include <string>

#include "test_random.hpp"

using namespace vlibos::vmm::devices;
using IO = VirtualIoapic;

namespace {

uint32_t reg_read(IO& io, uint8_t index)
{
    REQUIRE(io.write(IO::kRegSelect, 4, index).ok());
    auto r = io.read(IO::kWindow, 4);
    REQUIRE(r.ok());
    return r.value();
}

IoapicDelivery reg_write(IO& io, uint8_t index, uint32_t value)
{
    REQUIRE(io.write(IO::kRegSelect, 4, index).ok());
    auto r = io.write(IO::kWindow, 4, value);
    REQUIRE(r.ok());
    return r.value();
}

uint8_t low(uint8_t pin) { return static_cast<uint8_t>(IO::kRegRedirection + 2 * pin); }
uint8_t high(uint8_t pin) { return static_cast<uint8_t>(IO::kRegRedirection + 2 * pin + 1); }

constexpr uint32_t kOwned = (1u << 4) | (1u << 10) | (1u << 11);

} // namespace

TEST_CASE("ioapic: identification registers and the index/window protocol", "[devices][ioapic]")
{
    IO io(kOwned, 2);
    CHECK(reg_read(io, IO::kRegId) == 0x0200'0000);
    CHECK(reg_read(io, IO::kRegVersion) == 0x0017'0011);  // version 0x11, 24 entries
    CHECK(reg_read(io, IO::kRegArbitration) == 0x0200'0000);
    reg_write(io, IO::kRegId, 0xffff'ffff);
    CHECK(reg_read(io, IO::kRegId) == 0x0f00'0000);  // ID is bits 27:24
    CHECK(io.id() == 0xf);

    REQUIRE(io.write(IO::kRegSelect, 4, 0x1234'5613).ok());
    CHECK(io.read(IO::kRegSelect, 4).value() == 0x13);  // IOREGSEL bits 7:0

    CHECK(io.read(0x04, 4).error() == IoapicError::BadOffset);
    CHECK(io.read(0x40, 4).error() == IoapicError::BadOffset);  // no EOI register on version 0x11
    CHECK(io.write(0x20, 4, 0).error() == IoapicError::BadOffset);
    CHECK(io.read(IO::kWindow, 1).error() == IoapicError::BadSize);
    CHECK(io.write(IO::kRegSelect, 2, 1).error() == IoapicError::BadSize);
    REQUIRE(io.write(IO::kRegSelect, 4, IO::kRegVersion).ok());
    CHECK(io.write(IO::kWindow, 4, 0).error() == IoapicError::ReadOnly);
    REQUIRE(io.write(IO::kRegSelect, 4, IO::kRegArbitration).ok());
    CHECK(io.write(IO::kWindow, 4, 0).error() == IoapicError::ReadOnly);
    for (uint8_t index : {0x03, 0x0f, 0x40, 0xff}) {
        REQUIRE(io.write(IO::kRegSelect, 4, index).ok());
        CHECK(io.read(IO::kWindow, 4).error() == IoapicError::UnknownRegister);
        CHECK(io.write(IO::kWindow, 4, 1).error() == IoapicError::UnknownRegister);
    }
    CHECK(io.stats().errors == 15);
    CHECK(std::string(describe(IoapicError::PinNotOwned)).find("not owned") != std::string::npos);
}

TEST_CASE("ioapic: redirection entries the guest owns", "[devices][ioapic]")
{
    IO io(kOwned);
    CHECK(reg_read(io, low(4)) == 0x0001'0000);  // masked at reset
    CHECK(reg_read(io, high(4)) == 0);
    reg_write(io, low(4), 0xffff'ffff);
    reg_write(io, high(4), 0xffff'ffff);
    // Delivery status (12) and Remote IRR (14) are read-only; bits 17-55 reserved.
    CHECK(reg_read(io, low(4)) == 0x0001'afff);
    CHECK(reg_read(io, high(4)) == 0xff00'0000);

    reg_write(io, low(10), 0x0000'a931);  // level, active low, logical, lowest priority, vector 0x31
    reg_write(io, high(10), 0x0300'0000);
    RedirectionEntry e = io.entry(10);
    CHECK(e.vector == 0x31);
    CHECK(e.delivery == DeliveryMode::LowestPriority);
    CHECK(e.destination_mode == DestinationMode::Logical);
    CHECK(e.active_low);
    CHECK(e.level_triggered);
    CHECK_FALSE(e.masked);
    CHECK_FALSE(e.remote_irr);
    CHECK(e.destination == 3);
    CHECK(io.raw_entry(10) == 0x0300'0000'0000'a931ull);
}

TEST_CASE("ioapic: pins the guest does not own cannot be seen or rerouted", "[devices][ioapic]")
{
    IO io(kOwned);
    for (uint8_t pin : {0, 1, 2, 9, 23}) {
        reg_write(io, low(pin), 0x0000'0030);   // unmask, vector 0x30
        reg_write(io, high(pin), 0x0500'0000);  // to APIC 5
        CHECK(reg_read(io, low(pin)) == 0x0001'0000);
        CHECK(reg_read(io, high(pin)) == 0);
        CHECK(io.entry(pin).masked);
        CHECK(io.raise(pin).error() == IoapicError::PinNotOwned);
        CHECK(io.lower(pin).error() == IoapicError::PinNotOwned);
    }
    CHECK(io.stats().unowned_writes == 10);
    CHECK(io.stats().last_unowned_pin == 23);
    CHECK(io.raise(24).error() == IoapicError::BadPin);
    CHECK(io.lower(200).error() == IoapicError::BadPin);
    CHECK_FALSE(io.owns(24));
    // Bits above pin 23 in the ownership mask mean nothing.
    IO all(0xffff'ffff);
    CHECK(all.owned_pins() == IO::kAllPins);
}

TEST_CASE("ioapic: edge-triggered pins", "[devices][ioapic]")
{
    IO io(kOwned);
    // Masked at reset: the edge is lost.
    CHECK_FALSE(io.raise(4).value().deliver);
    CHECK(io.stats().masked == 1);
    reg_write(io, low(4), 0x0000'0041);
    reg_write(io, high(4), 0x0100'0000);
    IoapicDelivery d = io.raise(4).value();
    REQUIRE(d.deliver);
    CHECK(d.pin == 4);
    CHECK(d.message.vector == 0x41);
    CHECK(d.message.delivery == DeliveryMode::Fixed);
    CHECK(d.message.destination_mode == DestinationMode::Physical);
    CHECK(d.message.destination == 1);
    CHECK(d.message.shorthand == Shorthand::None);
    CHECK_FALSE(d.message.level_triggered);
    CHECK(io.raise(4).value().deliver);  // every edge is an interrupt
    CHECK_FALSE(io.entry(4).remote_irr);
    REQUIRE(io.lower(4).ok());
    CHECK(io.stats().deliveries == 2);

    // The message goes where the guest said, but only inside the guest.
    GuestApics g;
    g.count = 2;
    CHECK(resolve_destinations(d.message, g, kNoSource).targets == 0b10);
    reg_write(io, high(4), 0x0700'0000);
    CHECK(resolve_destinations(io.raise(4).value().message, g, kNoSource).verdict == RouteVerdict::Blocked);

    // SMI and the reserved modes are never sent.
    for (uint32_t mode : {2u, 3u, 6u}) {
        reg_write(io, low(4), 0x41 | (mode << 8));
        CHECK_FALSE(io.raise(4).value().deliver);
    }
    CHECK(io.stats().refused_modes == 3);
    // NMI, INIT and ExtINT are (the VMM handles them).
    reg_write(io, low(4), 0x0000'0400);
    CHECK(io.raise(4).value().message.delivery == DeliveryMode::Nmi);
}

TEST_CASE("ioapic: level-triggered pins, Remote IRR and EOI", "[devices][ioapic]")
{
    IO io(kOwned);
    reg_write(io, low(10), 0x0000'8051);  // level, vector 0x51, unmasked
    reg_write(io, low(11), 0x0000'8051);  // shares the vector
    IoapicDelivery d = io.raise(10).value();
    REQUIRE(d.deliver);
    CHECK(d.message.level_triggered);
    CHECK(io.entry(10).remote_irr);
    CHECK(io.asserted(10));
    CHECK((reg_read(io, low(10)) & (1u << 14)) != 0);
    // Until the EOI nothing more is sent, however often the line is raised.
    CHECK_FALSE(io.raise(10).value().deliver);
    // Writes cannot clear Remote IRR.
    reg_write(io, low(10), 0x0000'8051);
    CHECK(io.entry(10).remote_irr);

    SECTION("EOI with the line still asserted sends it again")
    {
        IO::Deliveries again = io.eoi(0x51);
        REQUIRE(again.count == 1);
        CHECK(again.items[0].pin == 10);
        CHECK(again.items[0].message.vector == 0x51);
        CHECK(io.entry(10).remote_irr);
    }
    SECTION("EOI after the device deasserted: idle")
    {
        REQUIRE(io.lower(10).ok());
        CHECK(io.eoi(0x51).count == 0);
        CHECK_FALSE(io.entry(10).remote_irr);
        CHECK(io.stats().eois == 1);
    }
    SECTION("an EOI for another vector changes nothing")
    {
        CHECK(io.eoi(0x52).count == 0);
        CHECK(io.entry(10).remote_irr);
    }
    SECTION("two pins sharing a vector")
    {
        CHECK(io.raise(11).value().deliver);
        IO::Deliveries again = io.eoi(0x51);
        CHECK(again.count == 2);
    }
    SECTION("switching the pin to edge clears Remote IRR")
    {
        reg_write(io, low(10), 0x0000'0051);
        CHECK_FALSE(io.entry(10).remote_irr);
    }
}

TEST_CASE("ioapic: unmasking an asserted level-triggered pin sends it", "[devices][ioapic]")
{
    IO io(kOwned);
    reg_write(io, low(11), 0x0001'8061);  // level, masked
    CHECK_FALSE(io.raise(11).value().deliver);
    IoapicDelivery d = reg_write(io, low(11), 0x0000'8061);
    REQUIRE(d.deliver);
    CHECK(d.pin == 11);
    CHECK(d.message.vector == 0x61);
    CHECK(io.entry(11).remote_irr);
    // Unmasking an edge pin sends nothing.
    reg_write(io, low(4), 0x0001'0071);
    CHECK_FALSE(io.raise(4).value().deliver);
    CHECK_FALSE(reg_write(io, low(4), 0x0000'0071).deliver);
}

TEST_CASE("ioapic: a hostile guest hammering IOREGSEL/IOWIN", "[devices][ioapic]")
{
    vlibos::test::Lcg rng{0xfeedbeef};
    IO io(kOwned);
    GuestApics g;
    g.count = 2;
    const uint32_t offsets[] = {IO::kRegSelect, IO::kWindow, IO::kWindow, IO::kWindow, 0x04, 0x20, 0x40};
    const uint8_t sizes[] = {4, 4, 4, 4, 1, 2, 8};
    uint64_t deliveries = 0;
    for (int step = 0; step < 200'000; ++step) {
        auto pin = static_cast<uint8_t>(rng.below(26));
        switch (rng.below(8)) {
        case 0: {
            auto r = io.raise(pin);
            REQUIRE(r.ok() == io.owns(pin));
            if (r.ok() && r.value().deliver) {
                ++deliveries;
                REQUIRE(io.owns(r.value().pin));
                REQUIRE((resolve_destinations(r.value().message, g, kNoSource).targets & ~g.all()) == 0);
            }
            break;
        }
        case 1:
            REQUIRE(io.lower(pin).ok() == io.owns(pin));
            break;
        case 2: {
            IO::Deliveries ds = io.eoi(static_cast<uint8_t>(rng.below(256)));
            for (size_t i = 0; i < ds.count; ++i)
                REQUIRE(io.owns(ds.items[i].pin));
            break;
        }
        case 3:
            (void)io.read(offsets[rng.below(7)], sizes[rng.below(7)]);
            break;
        default: {
            uint32_t offset = offsets[rng.below(7)];
            auto value = static_cast<uint32_t>(rng.next());
            if (offset == IO::kRegSelect && rng.below(2))
                value = static_cast<uint32_t>(IO::kRegRedirection + rng.below(48));
            auto r = io.write(offset, rng.below(8) ? 4 : sizes[rng.below(7)], value);
            if (r.ok() && r.value().deliver)
                REQUIRE(io.owns(r.value().pin));
            break;
        }
        }
        // Never an unowned pin changed or visible.
        for (uint8_t p = 0; p < IO::kPins; ++p) {
            if (!io.owns(p)) {
                REQUIRE(io.raw_entry(p) == IO::kEntryReset);
            } else {
                RedirectionEntry e = io.entry(p);
                if (!e.level_triggered)
                    REQUIRE_FALSE(e.remote_irr);
                REQUIRE_FALSE(e.delivery_pending);
            }
        }
        uint8_t select = io.select();
        REQUIRE(reg_read(io, IO::kRegVersion) == IO::kVersionValue);
        REQUIRE(io.write(IO::kRegSelect, 4, select).ok());
    }
    CHECK(deliveries > 100);
    CHECK(io.stats().unowned_writes > 100);
}
