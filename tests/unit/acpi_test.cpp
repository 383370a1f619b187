// ACPI table parser: firmware tables captured from a KVM guest (Firecracker), synthetic tables
// for the cases that guest lacks, malformed tables, and random mutations.
#include <catch2/catch.hpp>

#include <stdint.h>
#include <string.h>

#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "acpi/acpi.hpp"
#include "boot/multiboot2.hpp"

using namespace vlibos;
using namespace vlibos::acpi;

namespace {

using Bytes = std::vector<uint8_t>;

// Physical memory made of separate regions; a read must lie entirely inside one region.
class FakeMemory final : public PhysicalMemory {
public:
    void place(uint64_t base, const Bytes& bytes) { regions_[base] = bytes; }
    void remove(uint64_t base) { regions_.erase(base); }
    Bytes& at(uint64_t base) { return regions_.at(base); }

    bool read(uint64_t phys, void* out, size_t length) const override
    {
        ++reads;
        for (const auto& [base, bytes] : regions_) {
            if (phys >= base && phys - base <= bytes.size() && length <= bytes.size() - (phys - base)) {
                if (length != 0)
                    memcpy(out, bytes.data() + (phys - base), length);
                return true;
            }
        }
        return false;
    }

    mutable size_t reads = 0;

private:
    std::map<uint64_t, Bytes> regions_;
};

void put16(Bytes& b, size_t offset, uint16_t v) { memcpy(b.data() + offset, &v, 2); }
void put32(Bytes& b, size_t offset, uint32_t v) { memcpy(b.data() + offset, &v, 4); }
void put64(Bytes& b, size_t offset, uint64_t v) { memcpy(b.data() + offset, &v, 8); }

uint8_t sum(const Bytes& b, size_t length)
{
    uint8_t s = 0;
    for (size_t i = 0; i < length && i < b.size(); ++i)
        s = static_cast<uint8_t>(s + b[i]);
    return s;
}

// Makes a system description table checksum to zero (ACPI §5.2.6, checksum at offset 9).
void fix_checksum(Bytes& table)
{
    table[9] = 0;
    table[9] = static_cast<uint8_t>(0x100 - sum(table, table.size()));
}

Bytes make_table(const char* signature, const Bytes& body, uint8_t revision = 1)
{
    Bytes t(36, 0);
    memcpy(t.data(), signature, 4);
    put32(t, 4, static_cast<uint32_t>(36 + body.size()));
    t[8] = revision;
    memcpy(t.data() + 10, "VLIBOS", 6);
    memcpy(t.data() + 16, "TESTTABL", 8);
    t.insert(t.end(), body.begin(), body.end());
    fix_checksum(t);
    return t;
}

// RSDP (ACPI §5.2.5.3): 20 bytes for revision 0, 36 for revision 2.
Bytes make_rsdp(uint8_t revision, uint32_t rsdt, uint64_t xsdt, const char* oem = "VLIBOS")
{
    Bytes r(revision >= 2 ? 36 : 20, 0);
    memcpy(r.data(), "RSD PTR ", 8);
    memcpy(r.data() + 9, oem, 6);
    r[15] = revision;
    put32(r, 16, rsdt);
    r[8] = static_cast<uint8_t>(0x100 - sum(r, 20));
    if (revision >= 2) {
        put32(r, 20, 36);
        put64(r, 24, xsdt);
        r[32] = static_cast<uint8_t>(0x100 - sum(r, 36));
    }
    return r;
}

Bytes make_xsdt(const std::vector<uint64_t>& entries)
{
    Bytes body(entries.size() * 8);
    for (size_t i = 0; i < entries.size(); ++i)
        put64(body, i * 8, entries[i]);
    return make_table("XSDT", body);
}

Bytes make_rsdt(const std::vector<uint32_t>& entries)
{
    Bytes body(entries.size() * 4);
    for (size_t i = 0; i < entries.size(); ++i)
        put32(body, i * 4, entries[i]);
    return make_table("RSDT", body);
}

// MADT entries (ACPI §5.2.12).
class MadtBuilder {
public:
    explicit MadtBuilder(uint32_t lapic_address = 0xfee00000, uint32_t flags = 1) : body_(8, 0)
    {
        put32(body_, 0, lapic_address);
        put32(body_, 4, flags);
    }
    MadtBuilder& lapic(uint8_t uid, uint8_t apic_id, uint32_t flags)
    {
        Bytes e{0, 8, uid, apic_id, 0, 0, 0, 0};
        put32(e, 4, flags);
        return raw(e);
    }
    MadtBuilder& ioapic(uint8_t id, uint32_t address, uint32_t gsi_base)
    {
        Bytes e(12, 0);
        e[0] = 1;
        e[1] = 12;
        e[2] = id;
        put32(e, 4, address);
        put32(e, 8, gsi_base);
        return raw(e);
    }
    MadtBuilder& iso(uint8_t bus, uint8_t source, uint32_t gsi, uint16_t flags)
    {
        Bytes e(10, 0);
        e[0] = 2;
        e[1] = 10;
        e[2] = bus;
        e[3] = source;
        put32(e, 4, gsi);
        put16(e, 8, flags);
        return raw(e);
    }
    MadtBuilder& lapic_override(uint64_t address)
    {
        Bytes e(12, 0);
        e[0] = 5;
        e[1] = 12;
        put64(e, 4, address);
        return raw(e);
    }
    MadtBuilder& x2apic(uint32_t apic_id, uint32_t flags, uint32_t uid)
    {
        Bytes e(16, 0);
        e[0] = 9;
        e[1] = 16;
        put32(e, 4, apic_id);
        put32(e, 8, flags);
        put32(e, 12, uid);
        return raw(e);
    }
    MadtBuilder& raw(const Bytes& entry)
    {
        body_.insert(body_.end(), entry.begin(), entry.end());
        return *this;
    }
    Bytes build() const { return make_table("APIC", body_, 5); }

private:
    Bytes body_;
};

// FADT (ACPI §5.2.9) of a given length with fields poked at their offsets.
class FadtBuilder {
public:
    explicit FadtBuilder(size_t length = 276, uint8_t revision = 6) : t_(length, 0)
    {
        memcpy(t_.data(), "FACP", 4);
        put32(t_, 4, static_cast<uint32_t>(length));
        t_[8] = revision;
    }
    FadtBuilder& dsdt32(uint32_t a) { put32(t_, 40, a); return *this; }
    FadtBuilder& x_dsdt(uint64_t a) { put64(t_, 140, a); return *this; }
    FadtBuilder& pm1a(uint32_t port) { put32(t_, 64, port); return *this; }
    FadtBuilder& pm1b(uint32_t port) { put32(t_, 68, port); return *this; }
    FadtBuilder& flags(uint32_t f) { put32(t_, 112, f); return *this; }
    FadtBuilder& gas(size_t offset, uint8_t space, uint64_t address)
    {
        t_[offset] = space;
        t_[offset + 1] = 8; // bit width
        put64(t_, offset + 4, address);
        return *this;
    }
    FadtBuilder& reset(uint8_t space, uint64_t address, uint8_t value)
    {
        gas(116, space, address);
        t_[128] = value;
        return *this;
    }
    Bytes build()
    {
        fix_checksum(t_);
        return t_;
    }

private:
    Bytes t_;
};

constexpr uint32_t kResetRegSup = 1u << 10;
constexpr uint32_t kHwReduced = 1u << 20;

Bytes make_dsdt(const Bytes& aml)
{
    // Some unrelated AML around the interesting part, as in real DSDTs.
    Bytes body{0x10, 0x0a, 0x5c, 0x5f, 0x53, 0x42, 0x5f, 0x5b, 0x82, 0x02, 0x00, 0x00};
    body.insert(body.end(), aml.begin(), aml.end());
    body.insert(body.end(), {0x14, 0x08, 0x5f, 0x50, 0x54, 0x53, 0x01, 0xa3});
    return make_table("DSDT", body, 2);
}

// Name(_S5_, Package(4){Zero, Zero, Zero, Zero}) as QEMU's PIIX DSDT has it.
const Bytes kS5Zero{0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00};
// Name(\_S5_, Package(4){0x05, 0x05, 0, 0}) with byte constants, typical of real firmware.
const Bytes kS5Five{0x08, 0x5c, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x08, 0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00};

// Addresses of the synthetic machine's tables.
constexpr uint64_t kXsdtAddress = 0x7fe0000;
constexpr uint64_t kRsdtAddress = 0x7fe1000;
constexpr uint64_t kMadtAddress = 0x7fe2000;
constexpr uint64_t kFadtAddress = 0x7fe3000;
constexpr uint64_t kDsdtAddress = 0x7fe4000;

MadtBuilder typical_madt()
{
    MadtBuilder m;
    m.lapic(0, 0, 1).lapic(1, 1, 1).ioapic(2, 0xfec00000, 0).iso(0, 0, 2, 0).iso(0, 9, 9, 0xd);
    return m;
}

// A machine whose tables can be replaced one by one before parsing.
struct Machine {
    FakeMemory memory;
    Bytes rsdp = make_rsdp(2, 0, kXsdtAddress);

    Machine(const Bytes& madt, const Bytes& fadt, const Bytes& dsdt)
    {
        std::vector<uint64_t> entries;
        if (!madt.empty()) {
            memory.place(kMadtAddress, madt);
            entries.push_back(kMadtAddress);
        }
        if (!fadt.empty()) {
            memory.place(kFadtAddress, fadt);
            entries.push_back(kFadtAddress);
        }
        if (!dsdt.empty())
            memory.place(kDsdtAddress, dsdt);
        memory.place(kXsdtAddress, make_xsdt(entries));
    }

    Machine()
        : Machine(typical_madt().build(),
                  FadtBuilder().x_dsdt(kDsdtAddress).pm1a(0x604).build(), make_dsdt(kS5Five))
    {
    }

    Status<Error> parse(Platform& platform) const
    {
        return acpi::parse(rsdp.data(), rsdp.size(), memory, platform);
    }

    Error error()
    {
        Platform platform;
        auto status = parse(platform);
        REQUIRE_FALSE(status.ok());
        return status.error();
    }
};

Bytes load_fixture(const char* name)
{
    std::string path = std::string(VLIBOS_FIXTURES_DIR) + "/acpi/" + name;
    std::ifstream file(path, std::ios::binary);
    Bytes bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    INFO("fixture " << path);
    REQUIRE(bytes.size() >= 36);
    return bytes;
}

// ---- Captured tables ----

// Tables read from /sys/firmware/acpi/tables on a Firecracker KVM guest with 2 vCPUs.
// Its FADT is hardware-reduced (no PM1 blocks, no reset register) and points to the DSDT
// through X_DSDT at 0x9fd44, so the DSDT is placed there.
struct CapturedMachine {
    FakeMemory memory;
    Bytes madt = load_fixture("APIC");
    Bytes fadt = load_fixture("FACP");
    Bytes dsdt = load_fixture("DSDT");

    static constexpr uint64_t kDsdt = 0x9fd44;
    static constexpr uint64_t kXsdt = 0x9fc00;
    static constexpr uint64_t kRsdt = 0x9fc40;
    static constexpr uint64_t kMadt = 0xa1000;
    static constexpr uint64_t kFadt = 0xa1100;

    CapturedMachine()
    {
        memory.place(kDsdt, dsdt);
        memory.place(kMadt, madt);
        memory.place(kFadt, fadt);
        memory.place(kXsdt, make_xsdt({kMadt, kFadt}));
        memory.place(kRsdt, make_rsdt({static_cast<uint32_t>(kMadt), static_cast<uint32_t>(kFadt)}));
    }
};

void check_captured_platform(const Platform& p)
{
    CHECK(p.lapic_address == 0xfee00000);
    CHECK_FALSE(p.pcat_compat); // Firecracker has no 8259 pair

    REQUIRE(p.cpu_count == 2);
    for (uint32_t i = 0; i < 2; ++i) {
        CHECK(p.cpus[i].apic_id == i);
        CHECK(p.cpus[i].uid == i);
        CHECK(p.cpus[i].enabled);
        CHECK_FALSE(p.cpus[i].from_x2apic_entry);
    }
    REQUIRE(p.ioapic_count == 1);
    CHECK(p.ioapics[0].id == 0);
    CHECK(p.ioapics[0].address == 0xfec00000);
    CHECK(p.ioapics[0].gsi_base == 0);
    CHECK(p.override_count == 0);

    CHECK(p.has_fadt);
    CHECK(p.hw_reduced);
    CHECK(p.pm1a_control_port == 0);
    CHECK(p.pm1b_control_port == 0);
    CHECK_FALSE(p.has_reset_register);
    CHECK_FALSE(p.has_sleep_control);
    CHECK_FALSE(p.has_s5); // Firecracker's DSDT defines no \_S5_
}

} // namespace

TEST_CASE("acpi: captured Firecracker tables through an XSDT", "[acpi]")
{
    CapturedMachine machine;
    Bytes rsdp = make_rsdp(2, static_cast<uint32_t>(CapturedMachine::kRsdt), CapturedMachine::kXsdt, "FIRECK");
    Platform platform;
    auto status = parse(rsdp.data(), rsdp.size(), machine.memory, platform);
    REQUIRE(status.ok());
    CHECK(std::string(platform.oem_id) == "FIRECK");
    CHECK(platform.rsdp_revision == 2);
    check_captured_platform(platform);
}

TEST_CASE("acpi: captured tables through an RSDT (ACPI 1.0 RSDP)", "[acpi]")
{
    CapturedMachine machine;
    Bytes rsdp = make_rsdp(0, static_cast<uint32_t>(CapturedMachine::kRsdt), 0, "FIRECK");
    Platform platform;
    REQUIRE(parse(rsdp.data(), rsdp.size(), machine.memory, platform).ok());
    CHECK(platform.rsdp_revision == 0);
    check_captured_platform(platform);
}

TEST_CASE("acpi: captured tables reached from a Multiboot2 ACPI tag", "[acpi]")
{
    CapturedMachine machine;
    Bytes rsdp = make_rsdp(2, 0, CapturedMachine::kXsdt, "FIRECK");

    // Boot information: ACPI new tag (type 15), memory map, end tag (Multiboot2 spec §3.6).
    Bytes info(8, 0);
    auto tag = [&](uint32_t type, const Bytes& payload) {
        size_t at = info.size();
        info.resize(at + 8);
        put32(info, at, type);
        put32(info, at + 4, static_cast<uint32_t>(8 + payload.size()));
        info.insert(info.end(), payload.begin(), payload.end());
        info.resize((info.size() + 7) & ~size_t{7}, 0);
    };
    Bytes mmap(8 + 24, 0); // entry_size, entry_version, one entry {base, length, type, reserved}
    put32(mmap, 0, 24);
    put64(mmap, 8 + 8, 0x8000000);
    put32(mmap, 8 + 16, 1);
    tag(15, rsdp);
    tag(6, mmap);
    tag(0, {});
    put32(info, 0, static_cast<uint32_t>(info.size()));
    std::vector<uint64_t> aligned((info.size() + 7) / 8);
    memcpy(aligned.data(), info.data(), info.size());

    mb2::BootInfo boot;
    auto booted = mb2::parse(mb2::kBootloaderMagic, reinterpret_cast<const uint8_t*>(aligned.data()), info.size(), boot);
    INFO(mb2::describe(booted.error()));
    REQUIRE(booted.ok());
    REQUIRE(boot.rsdp != nullptr);
    Platform platform;
    REQUIRE(parse(boot.rsdp, boot.rsdp_length, machine.memory, platform).ok());
    check_captured_platform(platform);
}

TEST_CASE("acpi: captured tables with a corrupted byte are refused", "[acpi]")
{
    Bytes rsdp = make_rsdp(2, 0, CapturedMachine::kXsdt);
    Platform platform;
    SECTION("MADT")
    {
        CapturedMachine machine;
        machine.memory.at(CapturedMachine::kMadt)[50] ^= 1;
        auto status = parse(rsdp.data(), rsdp.size(), machine.memory, platform);
        REQUIRE_FALSE(status.ok());
        CHECK(status.error() == Error::MadtBadChecksum);
    }
    SECTION("FADT")
    {
        CapturedMachine machine;
        machine.memory.at(CapturedMachine::kFadt)[200] ^= 1;
        auto status = parse(rsdp.data(), rsdp.size(), machine.memory, platform);
        REQUIRE_FALSE(status.ok());
        CHECK(status.error() == Error::FadtBadChecksum);
    }
    SECTION("DSDT")
    {
        CapturedMachine machine;
        machine.memory.at(CapturedMachine::kDsdt)[3000] ^= 1;
        auto status = parse(rsdp.data(), rsdp.size(), machine.memory, platform);
        REQUIRE_FALSE(status.ok());
        CHECK(status.error() == Error::DsdtBadChecksum);
    }
    SECTION("DSDT cut short in memory")
    {
        CapturedMachine machine;
        machine.memory.at(CapturedMachine::kDsdt).resize(2000);
        auto status = parse(rsdp.data(), rsdp.size(), machine.memory, platform);
        REQUIRE_FALSE(status.ok());
        CHECK(status.error() == Error::UnreadableMemory);
    }
}

// ---- Synthetic tables: what the captured guest does not have ----

TEST_CASE("acpi: a rich MADT", "[acpi]")
{
    MadtBuilder m(0xfee00000, 0);
    m.lapic(0, 0, 1)
        .lapic(1, 2, 1)
        .lapic(2, 4, 0) // disabled
        .lapic(3, 6, 2) // online capable
        .raw({4, 6, 0xff, 0x05, 0x00, 0x01}) // LAPIC NMI: skipped
        .x2apic(0x100, 1, 40)
        .ioapic(1, 0xfec00000, 0)
        .ioapic(2, 0xfec01000, 24)
        .iso(0, 0, 2, 0)
        .iso(0, 9, 9, 0xd)
        .raw({0x7f, 3, 0xaa}) // unknown future entry: skipped by length
        .lapic_override(0x1fee00000);
    Machine machine(m.build(), {}, {});
    Platform p;
    REQUIRE(machine.parse(p).ok());

    CHECK_FALSE(p.pcat_compat);
    CHECK(p.lapic_address == 0x1fee00000);
    REQUIRE(p.cpu_count == 5);
    CHECK(p.cpus[1].apic_id == 2);
    CHECK(p.cpus[1].uid == 1);
    CHECK_FALSE(p.cpus[2].enabled);
    CHECK_FALSE(p.cpus[2].online_capable);
    CHECK_FALSE(p.cpus[3].enabled);
    CHECK(p.cpus[3].online_capable);
    CHECK(p.cpus[4].apic_id == 0x100);
    CHECK(p.cpus[4].uid == 40);
    CHECK(p.cpus[4].enabled);
    CHECK(p.cpus[4].from_x2apic_entry);
    REQUIRE(p.ioapic_count == 2);
    CHECK(p.ioapics[1].id == 2);
    CHECK(p.ioapics[1].address == 0xfec01000);
    CHECK(p.ioapics[1].gsi_base == 24);
    REQUIRE(p.override_count == 2);
    CHECK(p.overrides[0].source_irq == 0);
    CHECK(p.overrides[0].gsi == 2);
    CHECK(p.overrides[1].source_irq == 9);
    CHECK(p.overrides[1].flags == 0xd);
    CHECK_FALSE(p.has_fadt);
    CHECK_FALSE(p.has_s5);
}

TEST_CASE("acpi: FADT with X_ fields, reset register and \\_S5_", "[acpi]")
{
    Bytes fadt = FadtBuilder()
                     .flags(kResetRegSup)
                     .pm1a(0x604)
                     .pm1b(0x608)
                     .gas(172, kAddressSpaceIo, 0xb004)        // X_PM1a_CNT_BLK wins
                     .gas(184, kAddressSpaceMemory, 0xfed00000) // X_PM1b in memory: not a port
                     .reset(kAddressSpaceIo, 0xcf9, 0x06)
                     .dsdt32(0x1234) // ignored: X_DSDT is nonzero
                     .x_dsdt(kDsdtAddress)
                     .build();
    Machine machine(typical_madt().build(), fadt, make_dsdt(kS5Five));
    Platform p;
    REQUIRE(machine.parse(p).ok());
    CHECK(p.has_fadt);
    CHECK_FALSE(p.hw_reduced);
    CHECK(p.pm1a_control_port == 0xb004);
    CHECK(p.pm1b_control_port == 0x608);
    CHECK(p.has_reset_register);
    CHECK(p.reset_space_id == kAddressSpaceIo);
    CHECK(p.reset_address == 0xcf9);
    CHECK(p.reset_value == 6);
    CHECK(p.has_s5);
    CHECK(p.s5_sleep_type_a == 5);
    CHECK(p.s5_sleep_type_b == 5);
    CHECK_FALSE(p.has_sleep_control);
}

TEST_CASE("acpi: ACPI 1.0 FADT through an RSDT with a 32-bit DSDT pointer", "[acpi]")
{
    Bytes fadt = FadtBuilder(116, 1).pm1a(0x404).dsdt32(static_cast<uint32_t>(kDsdtAddress)).flags(kResetRegSup).build();
    Machine machine(typical_madt().build(), fadt, make_dsdt(kS5Zero));
    machine.memory.place(kRsdtAddress, make_rsdt({static_cast<uint32_t>(kMadtAddress), static_cast<uint32_t>(kFadtAddress)}));
    machine.memory.remove(kXsdtAddress);
    machine.rsdp = make_rsdp(0, static_cast<uint32_t>(kRsdtAddress), 0);
    Platform p;
    REQUIRE(machine.parse(p).ok());
    CHECK(p.has_fadt);
    CHECK(p.pm1a_control_port == 0x404);
    CHECK_FALSE(p.has_reset_register); // the table is too short to hold RESET_REG
    CHECK(p.has_s5);
    CHECK(p.s5_sleep_type_a == 0);
    CHECK(p.s5_sleep_type_b == 0);
}

TEST_CASE("acpi: reset register needs the RESET_REG_SUP flag", "[acpi]")
{
    Bytes fadt = FadtBuilder().reset(kAddressSpaceIo, 0xcf9, 6).build();
    Machine machine(typical_madt().build(), fadt, {});
    Platform p;
    REQUIRE(machine.parse(p).ok());
    CHECK_FALSE(p.has_reset_register);
    CHECK_FALSE(p.has_s5); // no DSDT pointer at all
}

TEST_CASE("acpi: hardware-reduced FADT with a sleep control register", "[acpi]")
{
    Bytes fadt = FadtBuilder().flags(kHwReduced).gas(244, kAddressSpaceMemory, 0xfeda0000).x_dsdt(kDsdtAddress).build();
    Machine machine(typical_madt().build(), fadt, make_dsdt(kS5Five));
    Platform p;
    REQUIRE(machine.parse(p).ok());
    CHECK(p.hw_reduced);
    CHECK(p.has_sleep_control);
    CHECK(p.sleep_control_space_id == kAddressSpaceMemory);
    CHECK(p.sleep_control_address == 0xfeda0000);
    CHECK(p.has_s5);
}

TEST_CASE("acpi: FADT shorter than the X_ fields falls back to the legacy ones", "[acpi]")
{
    Bytes fadt = FadtBuilder(140, 2).pm1a(0x604).dsdt32(static_cast<uint32_t>(kDsdtAddress)).build();
    Machine machine(typical_madt().build(), fadt, make_dsdt(kS5Five));
    Platform p;
    REQUIRE(machine.parse(p).ok());
    CHECK(p.pm1a_control_port == 0x604);
    CHECK(p.has_s5);
}

TEST_CASE("acpi: \\_S5_ byte-pattern variants", "[acpi]")
{
    struct Case {
        const char* name;
        Bytes aml;
        bool found;
        uint8_t a, b;
    };
    const Case cases[] = {
        {"ZeroOp elements", kS5Zero, true, 0, 0},
        {"root prefix and byte constants", kS5Five, true, 5, 5},
        {"OneOp and word constant", {0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x07, 0x02, 0x01, 0x0b, 0x07, 0x00}, true, 1, 7},
        {"two-byte PkgLength", {0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x48, 0x00, 0x04, 0x0a, 0x06, 0x0a, 0x03, 0x00, 0x00}, true, 6, 3},
        {"one element", {0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x04, 0x01, 0x0a, 0x07}, true, 7, 7},
        {"dword constant", {0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x0c, 0x02, 0x0c, 0x02, 0, 0, 0, 0x00}, true, 2, 0},
        {"not after NameOp", {0x14, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00}, false, 0, 0},
        {"not a package", {0x08, 0x5f, 0x53, 0x35, 0x5f, 0x0a, 0x05}, false, 0, 0},
        {"sleep type too large", {0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x06, 0x02, 0x0a, 0x09, 0x00}, false, 0, 0},
        {"element of unknown kind", {0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x06, 0x02, 0x0d, 0x41, 0x00}, false, 0, 0},
        {"zero elements", {0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x02, 0x00}, false, 0, 0},
        {"first match is a method, second a name",
         {0x14, 0x5f, 0x53, 0x35, 0x5f, 0x00, 0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x06, 0x02, 0x0a, 0x04, 0x01}, true, 4, 1},
        {"_S3_ only", {0x08, 0x5f, 0x53, 0x33, 0x5f, 0x12, 0x06, 0x04, 0x0a, 0x01, 0x0a, 0x01, 0x00, 0x00}, false, 0, 0},
    };
    for (const Case& c : cases) {
        INFO(c.name);
        Bytes fadt = FadtBuilder().x_dsdt(kDsdtAddress).build();
        Machine machine(typical_madt().build(), fadt, make_dsdt(c.aml));
        Platform p;
        REQUIRE(machine.parse(p).ok());
        CHECK(p.has_s5 == c.found);
        if (c.found) {
            CHECK(p.s5_sleep_type_a == c.a);
            CHECK(p.s5_sleep_type_b == c.b);
        }
    }
}

TEST_CASE("acpi: \\_S5_ truncated at the end of the DSDT", "[acpi]")
{
    // Every prefix of the pattern, placed last in the table, must be read within bounds.
    // The first 13 bytes (up to the second sleep type) are all that is needed.
    for (size_t n = 1; n <= kS5Five.size(); ++n) {
        Bytes aml(kS5Five.begin(), kS5Five.begin() + static_cast<std::ptrdiff_t>(n));
        Bytes dsdt = make_table("DSDT", aml, 2);
        Machine machine(typical_madt().build(), FadtBuilder().x_dsdt(kDsdtAddress).build(), dsdt);
        Platform p;
        REQUIRE(machine.parse(p).ok());
        CHECK(p.has_s5 == (n >= 13));
    }
}

// ---- RSDP ----

TEST_CASE("acpi: RSDP validation", "[acpi]")
{
    Machine machine;
    Platform p;
    SECTION("valid") { REQUIRE(machine.parse(p).ok()); CHECK(std::string(p.oem_id) == "VLIBOS"); }
    SECTION("null or too short")
    {
        auto status = parse(nullptr, 36, machine.memory, p);
        REQUIRE_FALSE(status.ok());
        CHECK(status.error() == Error::RsdpTooShort);
        status = parse(machine.rsdp.data(), 19, machine.memory, p);
        REQUIRE_FALSE(status.ok());
        CHECK(status.error() == Error::RsdpTooShort);
        // Revision 2 but only the 20-byte part provided.
        status = parse(machine.rsdp.data(), 20, machine.memory, p);
        REQUIRE_FALSE(status.ok());
        CHECK(status.error() == Error::RsdpTooShort);
    }
    SECTION("bad signature")
    {
        machine.rsdp[3] = 'X';
        CHECK(machine.error() == Error::RsdpBadSignature);
    }
    SECTION("bad v1 checksum")
    {
        machine.rsdp[8] ^= 0x10;
        CHECK(machine.error() == Error::RsdpBadChecksum);
    }
    SECTION("bad extended checksum")
    {
        machine.rsdp[32] ^= 0x10;
        CHECK(machine.error() == Error::RsdpBadExtendedChecksum);
    }
    SECTION("length field beyond the bytes given, or too small")
    {
        for (uint32_t length : {37u, 1000u, 0xffffffffu, 20u, 0u}) {
            Bytes r = machine.rsdp;
            put32(r, 20, length);
            r[8] = 0;
            r[8] = static_cast<uint8_t>(0x100 - sum(r, 20));
            auto status = parse(r.data(), r.size(), machine.memory, p);
            REQUIRE_FALSE(status.ok());
            CHECK(status.error() == Error::RsdpBadLength);
        }
    }
    SECTION("non-printable OEM ID is sanitised")
    {
        machine.rsdp = make_rsdp(2, 0, kXsdtAddress, "AB\n\x01" "CD");
        REQUIRE(machine.parse(p).ok());
        CHECK(std::string(p.oem_id) == "AB??CD");
    }
    SECTION("no root table")
    {
        machine.rsdp = make_rsdp(2, 0, 0);
        CHECK(machine.error() == Error::NoRootTable);
        machine.rsdp = make_rsdp(0, 0, 0);
        CHECK(machine.error() == Error::NoRootTable);
    }
}

TEST_CASE("acpi: RSDT versus XSDT", "[acpi]")
{
    // The RSDT leads to a MADT with one CPU, the XSDT to the typical two-CPU one.
    Machine machine;
    constexpr uint64_t kOtherMadt = 0x7fe5000;
    machine.memory.place(kOtherMadt, MadtBuilder().lapic(0, 7, 1).build());
    machine.memory.place(kRsdtAddress, make_rsdt({static_cast<uint32_t>(kOtherMadt)}));
    Platform p;

    SECTION("revision 2 with an XSDT uses the XSDT")
    {
        machine.rsdp = make_rsdp(2, static_cast<uint32_t>(kRsdtAddress), kXsdtAddress);
        REQUIRE(machine.parse(p).ok());
        CHECK(p.cpu_count == 2);
        CHECK(p.has_fadt);
    }
    SECTION("revision 2 without an XSDT address uses the RSDT")
    {
        machine.rsdp = make_rsdp(2, static_cast<uint32_t>(kRsdtAddress), 0);
        REQUIRE(machine.parse(p).ok());
        REQUIRE(p.cpu_count == 1);
        CHECK(p.cpus[0].apic_id == 7);
        CHECK_FALSE(p.has_fadt);
    }
    SECTION("revision 0 uses the RSDT")
    {
        machine.rsdp = make_rsdp(0, static_cast<uint32_t>(kRsdtAddress), 0);
        REQUIRE(machine.parse(p).ok());
        CHECK(p.cpu_count == 1);
    }
    SECTION("an RSDT where the XSDT should be")
    {
        machine.memory.place(kXsdtAddress, make_rsdt({static_cast<uint32_t>(kMadtAddress)}));
        CHECK(machine.error() == Error::RootTableBadSignature);
    }
}

// ---- Root table problems ----

TEST_CASE("acpi: malformed root tables", "[acpi]")
{
    Machine machine;
    Bytes& xsdt = machine.memory.at(kXsdtAddress);
    SECTION("bad checksum")
    {
        xsdt[40] ^= 0x01;
        CHECK(machine.error() == Error::RootTableBadChecksum);
    }
    SECTION("length not a whole number of entries")
    {
        xsdt.resize(xsdt.size() + 4, 0);
        put32(xsdt, 4, static_cast<uint32_t>(xsdt.size()));
        fix_checksum(xsdt);
        CHECK(machine.error() == Error::RootTableBadLength);
    }
    SECTION("length below the header")
    {
        put32(xsdt, 4, 35);
        fix_checksum(xsdt);
        CHECK(machine.error() == Error::RootTableTooShort);
    }
    SECTION("length beyond the cap")
    {
        put32(xsdt, 4, kMaxTableLength + 8);
        fix_checksum(xsdt);
        CHECK(machine.error() == Error::RootTableTooLarge);
    }
    SECTION("length beyond readable memory")
    {
        put32(xsdt, 4, static_cast<uint32_t>(xsdt.size() + 8));
        fix_checksum(xsdt);
        CHECK(machine.error() == Error::UnreadableMemory);
    }
    SECTION("XSDT itself unreadable")
    {
        machine.memory.remove(kXsdtAddress);
        CHECK(machine.error() == Error::UnreadableMemory);
    }
    SECTION("an entry pointing to unreadable memory")
    {
        machine.memory.place(kXsdtAddress, make_xsdt({kMadtAddress, 0xdead0000, kFadtAddress}));
        CHECK(machine.error() == Error::UnreadableMemory);
    }
    SECTION("an entry near the top of the address space")
    {
        machine.memory.place(kXsdtAddress, make_xsdt({kMadtAddress, 0xfffffffffffffffe}));
        CHECK(machine.error() == Error::UnreadableMemory);
    }
    SECTION("empty entries are skipped")
    {
        machine.memory.place(kXsdtAddress, make_xsdt({0, kMadtAddress, 0, kFadtAddress}));
        Platform p;
        REQUIRE(machine.parse(p).ok());
        CHECK(p.cpu_count == 2);
        CHECK(p.has_fadt);
    }
    SECTION("unrelated tables are skipped")
    {
        constexpr uint64_t kHpet = 0x7fe6000;
        machine.memory.place(kHpet, make_table("HPET", Bytes(20, 0)));
        machine.memory.place(kXsdtAddress, make_xsdt({kHpet, kMadtAddress}));
        Platform p;
        REQUIRE(machine.parse(p).ok());
    }
}

// ---- MADT problems ----

TEST_CASE("acpi: missing or duplicated MADT", "[acpi]")
{
    SECTION("missing")
    {
        Machine machine({}, FadtBuilder().build(), {});
        CHECK(machine.error() == Error::MadtMissing);
    }
    SECTION("duplicate")
    {
        Machine machine;
        machine.memory.place(kXsdtAddress, make_xsdt({kMadtAddress, kFadtAddress, kMadtAddress}));
        CHECK(machine.error() == Error::MadtDuplicate);
    }
    SECTION("duplicate FADT")
    {
        Machine machine;
        machine.memory.place(kXsdtAddress, make_xsdt({kMadtAddress, kFadtAddress, kFadtAddress}));
        CHECK(machine.error() == Error::FadtDuplicate);
    }
}

TEST_CASE("acpi: malformed MADT", "[acpi]")
{
    auto with_madt = [](const Bytes& madt) { return Machine(madt, {}, {}).error(); };
    auto with_entry = [&](const Bytes& entry) { return with_madt(typical_madt().raw(entry).build()); };

    SECTION("bad checksum")
    {
        Bytes madt = typical_madt().build();
        madt[44] ^= 0x80;
        CHECK(with_madt(madt) == Error::MadtBadChecksum);
    }
    SECTION("shorter than its fixed fields")
    {
        Bytes madt = make_table("APIC", Bytes(4, 0));
        CHECK(with_madt(madt) == Error::MadtTooShort);
        CHECK(with_madt(make_table("APIC", {})) == Error::MadtTooShort);
    }
    SECTION("length field below the header")
    {
        Bytes madt = typical_madt().build();
        put32(madt, 4, 20);
        fix_checksum(madt);
        CHECK(with_madt(madt) == Error::MadtTooShort);
    }
    SECTION("length field larger than the table in memory (truncated)")
    {
        Bytes madt = typical_madt().build();
        madt.resize(madt.size() - 6);
        CHECK(with_madt(madt) == Error::UnreadableMemory);
    }
    SECTION("length beyond the cap")
    {
        Bytes madt = typical_madt().build();
        put32(madt, 4, 0x40000000);
        fix_checksum(madt);
        CHECK(with_madt(madt) == Error::MadtTooLarge);
    }
    SECTION("zero-length entry must not loop forever")
    {
        CHECK(with_entry({0x7f, 0}) == Error::MadtBadEntryLength);
        CHECK(with_entry({0, 0, 0, 0, 0, 0, 0, 0}) == Error::MadtBadEntryLength);
        CHECK(with_entry({0x7f, 1}) == Error::MadtBadEntryLength);
    }
    SECTION("entry overrunning the table")
    {
        CHECK(with_entry({0x7f, 20, 0, 0, 0, 0}) == Error::MadtEntryOverrun);
        CHECK(with_entry({0, 8, 0, 9, 1, 0}) == Error::MadtEntryOverrun); // truncated LAPIC entry
        CHECK(with_entry({0x7f}) == Error::MadtEntryOverrun);             // lone trailing byte
    }
    SECTION("known entries with wrong lengths")
    {
        CHECK(with_entry({0, 10, 5, 5, 1, 0, 0, 0, 0, 0}) == Error::MadtBadEntryLength);
        CHECK(with_entry({1, 8, 5, 0, 0, 0, 0xc0, 0xfe}) == Error::MadtBadEntryLength);
        CHECK(with_entry({2, 12, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0}) == Error::MadtBadEntryLength);
        CHECK(with_entry({5, 8, 0, 0, 0, 0, 0xe0, 0xfe}) == Error::MadtBadEntryLength);
        CHECK(with_entry({9, 12, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0}) == Error::MadtBadEntryLength);
    }
    SECTION("duplicate APIC IDs among usable CPUs")
    {
        CHECK(with_madt(MadtBuilder().lapic(0, 3, 1).lapic(1, 3, 1).build()) == Error::DuplicateApicId);
        CHECK(with_madt(MadtBuilder().lapic(0, 3, 1).lapic(1, 3, 2).build()) == Error::DuplicateApicId);
        CHECK(with_madt(MadtBuilder().lapic(0, 3, 1).x2apic(3, 1, 9).build()) == Error::DuplicateApicId);
    }
    SECTION("duplicate APIC IDs among disabled entries are tolerated")
    {
        Machine machine(MadtBuilder().lapic(0, 0, 1).lapic(1, 0xff, 0).lapic(2, 0xff, 0).lapic(3, 0, 0).build(), {}, {});
        Platform p;
        REQUIRE(machine.parse(p).ok());
        CHECK(p.cpu_count == 4);
    }
    SECTION("no usable CPU")
    {
        CHECK(with_madt(MadtBuilder().lapic(0, 0, 0).lapic(1, 1, 0).build()) == Error::NoUsableCpu);
        CHECK(with_madt(MadtBuilder().ioapic(0, 0xfec00000, 0).build()) == Error::NoUsableCpu);
    }
    SECTION("online-capable CPUs alone are usable")
    {
        Machine machine(MadtBuilder().lapic(0, 0, 2).build(), {}, {});
        Platform p;
        REQUIRE(machine.parse(p).ok());
    }
}

TEST_CASE("acpi: capacity limits are errors, not truncation", "[acpi]")
{
    auto cpus = [](size_t n) {
        MadtBuilder m;
        for (size_t i = 0; i < n; ++i)
            m.x2apic(static_cast<uint32_t>(i), 1, static_cast<uint32_t>(i));
        return m;
    };
    {
        Machine machine(cpus(kMaxCpus).build(), {}, {});
        Platform p;
        REQUIRE(machine.parse(p).ok());
        CHECK(p.cpu_count == kMaxCpus);
    }
    CHECK(Machine(cpus(kMaxCpus + 1).build(), {}, {}).error() == Error::TooManyCpus);
    // Disabled entries count too: they are reported.
    CHECK(Machine(cpus(kMaxCpus).lapic(0, 200, 0).build(), {}, {}).error() == Error::TooManyCpus);

    MadtBuilder ioapics;
    ioapics.lapic(0, 0, 1);
    for (uint8_t i = 0; i <= kMaxIoApics; ++i)
        ioapics.ioapic(i, 0xfec00000u + i * 0x1000u, i * 24u);
    CHECK(Machine(ioapics.build(), {}, {}).error() == Error::TooManyIoApics);

    MadtBuilder overrides;
    overrides.lapic(0, 0, 1);
    for (uint8_t i = 0; i <= kMaxOverrides; ++i)
        overrides.iso(0, i, i, 0);
    CHECK(Machine(overrides.build(), {}, {}).error() == Error::TooManyOverrides);
}

// ---- FADT and DSDT problems ----

TEST_CASE("acpi: malformed FADT and DSDT", "[acpi]")
{
    auto run = [](const Bytes& fadt, const Bytes& dsdt) { return Machine(typical_madt().build(), fadt, dsdt).error(); };
    SECTION("FADT bad checksum")
    {
        Bytes fadt = FadtBuilder().build();
        fadt[100] ^= 1;
        CHECK(run(fadt, {}) == Error::FadtBadChecksum);
    }
    SECTION("FADT shorter than ACPI 1.0")
    {
        CHECK(run(FadtBuilder(100, 1).build(), {}) == Error::FadtTooShort);
        CHECK(run(FadtBuilder(36, 1).build(), {}) == Error::FadtTooShort);
    }
    SECTION("FADT truncated in memory")
    {
        Bytes fadt = FadtBuilder().build();
        fadt.resize(200);
        CHECK(run(fadt, {}) == Error::UnreadableMemory);
    }
    SECTION("DSDT bad checksum")
    {
        Bytes dsdt = make_dsdt(kS5Five);
        dsdt[50] ^= 1;
        CHECK(run(FadtBuilder().x_dsdt(kDsdtAddress).build(), dsdt) == Error::DsdtBadChecksum);
    }
    SECTION("DSDT pointer to another table")
    {
        CHECK(run(FadtBuilder().x_dsdt(kMadtAddress).build(), {}) == Error::DsdtBadSignature);
    }
    SECTION("DSDT pointer to nowhere")
    {
        CHECK(run(FadtBuilder().x_dsdt(0xdead0000).build(), {}) == Error::UnreadableMemory);
    }
    SECTION("DSDT length below its header")
    {
        Bytes dsdt = make_dsdt(kS5Five);
        put32(dsdt, 4, 30);
        fix_checksum(dsdt);
        CHECK(run(FadtBuilder().x_dsdt(kDsdtAddress).build(), dsdt) == Error::DsdtTooShort);
    }
    SECTION("DSDT length beyond the cap")
    {
        Bytes dsdt = make_dsdt(kS5Five);
        put32(dsdt, 4, kMaxAmlTableLength + 1);
        fix_checksum(dsdt);
        CHECK(run(FadtBuilder().x_dsdt(kDsdtAddress).build(), dsdt) == Error::DsdtTooLarge);
    }
}

// ---- Legacy RSDP search ----

TEST_CASE("acpi: legacy RSDP search", "[acpi]")
{
    FakeMemory memory;
    Bytes bda(0x100, 0);        // BIOS data area at 0x400
    Bytes ebda(0x400, 0);       // EBDA at 0x9fc00
    Bytes bios(0x20000, 0);     // 0xe0000-0xfffff
    put16(bda, 0x0e, 0x9fc0);   // 0x40e: EBDA segment
    Bytes rsdp = make_rsdp(2, 0, kXsdtAddress);

    SECTION("in the EBDA")
    {
        memcpy(ebda.data() + 0x40, rsdp.data(), rsdp.size());
        memcpy(bios.data() + 0x15a40, rsdp.data(), rsdp.size()); // the EBDA is searched first
        memory.place(0x400, bda);
        memory.place(0x9fc00, ebda);
        memory.place(0xe0000, bios);
        auto found = find_rsdp(memory);
        REQUIRE(found.ok());
        CHECK(found.value() == 0x9fc40);
    }
    SECTION("in the BIOS area, after a stray signature with a bad checksum")
    {
        Bytes stray = rsdp;
        stray[8] ^= 1;
        memcpy(bios.data() + 0x10, stray.data(), stray.size());
        Bytes bad_extended = rsdp;
        bad_extended[32] ^= 1;
        memcpy(bios.data() + 0x100, bad_extended.data(), bad_extended.size());
        memcpy(bios.data() + 0x15a40, rsdp.data(), rsdp.size());
        memory.place(0x400, bda);
        memory.place(0x9fc00, ebda);
        memory.place(0xe0000, bios);
        auto found = find_rsdp(memory);
        REQUIRE(found.ok());
        CHECK(found.value() == 0xf5a40);

        // The found address parses like a Multiboot2-provided copy.
        Machine machine;
        machine.memory.place(0xe0000, bios);
        Platform p;
        REQUIRE(parse_at(found.value(), machine.memory, p).ok());
        CHECK(p.cpu_count == 2);
    }
    SECTION("ACPI 1.0 RSDP at the very end of the BIOS area")
    {
        Bytes v1 = make_rsdp(0, static_cast<uint32_t>(kRsdtAddress), 0);
        memcpy(bios.data() + bios.size() - 32, v1.data(), v1.size());
        memory.place(0xe0000, bios); // no BDA: EBDA search is skipped
        auto found = find_rsdp(memory);
        REQUIRE(found.ok());
        CHECK(found.value() == 0xfffe0);
    }
    SECTION("not on a 16-byte boundary")
    {
        memcpy(bios.data() + 0x15a48, rsdp.data(), rsdp.size());
        memory.place(0x400, bda);
        memory.place(0xe0000, bios);
        auto found = find_rsdp(memory);
        REQUIRE_FALSE(found.ok());
        CHECK(found.error() == Error::RsdpNotFound);
    }
    SECTION("nothing readable")
    {
        auto found = find_rsdp(memory);
        REQUIRE_FALSE(found.ok());
        CHECK(found.error() == Error::RsdpNotFound);
    }
}

TEST_CASE("acpi: parse_at reads the RSDP from memory", "[acpi]")
{
    Machine machine;
    constexpr uint64_t kRsdp = 0xf0000;
    machine.memory.place(kRsdp, machine.rsdp);
    Platform p;
    REQUIRE(parse_at(kRsdp, machine.memory, p).ok());
    CHECK(p.cpu_count == 2);

    auto status = parse_at(0x12345, machine.memory, p);
    REQUIRE_FALSE(status.ok());
    CHECK(status.error() == Error::UnreadableMemory);

    Bytes huge = machine.rsdp;
    put32(huge, 20, 4096);
    machine.memory.place(kRsdp, huge);
    status = parse_at(kRsdp, machine.memory, p);
    REQUIRE_FALSE(status.ok());
    CHECK(status.error() == Error::RsdpBadLength);
}

TEST_CASE("acpi: every error has a description", "[acpi]")
{
    for (int e = static_cast<int>(Error::RsdpTooShort); e <= static_cast<int>(Error::DsdtBadChecksum); ++e) {
        const char* text = describe(static_cast<Error>(e));
        REQUIRE(text != nullptr);
        CHECK(strlen(text) > 10);
    }
}

// ---- Random mutations ----

TEST_CASE("acpi: random mutations never read out of bounds", "[acpi][fuzz]")
{
    std::mt19937 rng(0xac91u); // deterministic
    const Bytes madt = MadtBuilder()
                           .lapic(0, 0, 1)
                           .lapic(1, 1, 1)
                           .x2apic(0x100, 1, 2)
                           .ioapic(0, 0xfec00000, 0)
                           .iso(0, 0, 2, 0)
                           .lapic_override(0xfee00000)
                           .raw({4, 6, 0xff, 5, 0, 1})
                           .build();
    const Bytes fadt = FadtBuilder().flags(kResetRegSup).pm1a(0x604).reset(1, 0xcf9, 6).x_dsdt(kDsdtAddress).build();
    const Bytes dsdt = make_dsdt(kS5Five);
    const Bytes captured_madt = load_fixture("APIC");

    size_t accepted = 0;
    for (int iteration = 0; iteration < 4000; ++iteration) {
        Machine machine(iteration % 2 ? madt : captured_madt, fadt, dsdt);
        // Pick a table, flip a few bytes, and usually repair its checksum so the parser
        // gets past the checksum and into the fields.
        static const uint64_t targets[] = {kMadtAddress, kFadtAddress, kDsdtAddress, kXsdtAddress};
        uint64_t target = targets[rng() % 4];
        Bytes& table = machine.memory.at(target);
        int mutations = 1 + static_cast<int>(rng() % 4);
        for (int m = 0; m < mutations; ++m) {
            size_t at = rng() % table.size();
            if (rng() % 3 == 0 && table.size() >= 8) // length fields are the juicy part
                at = rng() % 2 ? 4 : 37 + rng() % (table.size() - 37);
            table[at] = static_cast<uint8_t>(rng());
        }
        if (rng() % 8 != 0)
            fix_checksum(table);
        if (rng() % 8 == 0)
            machine.rsdp[static_cast<size_t>(rng() % machine.rsdp.size())] ^= static_cast<uint8_t>(1u << (rng() % 8));

        Platform p;
        auto status = machine.parse(p);
        if (!status.ok()) {
            CHECK(describe(status.error()) != nullptr);
            continue;
        }
        ++accepted;
        REQUIRE(p.cpu_count <= kMaxCpus);
        REQUIRE(p.ioapic_count <= kMaxIoApics);
        REQUIRE(p.override_count <= kMaxOverrides);
        if (p.has_s5) {
            REQUIRE(p.s5_sleep_type_a <= 7);
            REQUIRE(p.s5_sleep_type_b <= 7);
        }
    }
    CHECK(accepted > 100);
}
