#include "vmm/devices/pci_filter.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "test_random.hpp"

using namespace vlibos::vmm::devices;

namespace {

// A host PCI function: configuration bytes with a per-byte writable mask (so read-only fields
// and BAR size bits behave as in hardware), and an MSI-X table.
struct FakeFunction {
    uint8_t config[256] = {};
    uint8_t writable[256] = {};
    std::vector<uint32_t> msix;
    std::map<uint8_t, uint32_t> sizing;  // BARs that read this after all ones, whatever the mask says

    uint32_t dword(uint8_t offset) const
    {
        uint32_t v;
        std::memcpy(&v, config + offset, 4);
        return v;
    }
    void set(uint8_t offset, uint32_t value, uint8_t size = 4, uint32_t writable_mask = 0)
    {
        for (unsigned i = 0; i < size; ++i) {
            config[offset + i] = static_cast<uint8_t>(value >> (8 * i));
            writable[offset + i] = static_cast<uint8_t>(writable_mask >> (8 * i));
        }
    }
    // A BAR of `size` bytes at `base`; `flags` are the low type bits.
    void bar(unsigned index, uint64_t base, uint64_t size, uint32_t flags)
    {
        auto offset = static_cast<uint8_t>(0x10 + 4 * index);
        uint64_t mask = ~(size - 1);
        bool io = flags & 1u;
        set(offset, static_cast<uint32_t>(base) | flags, 4, static_cast<uint32_t>(mask) & (io ? ~3u : ~0xfu));
        if (((flags >> 1) & 3u) == 2)
            set(static_cast<uint8_t>(offset + 4), static_cast<uint32_t>(base >> 32), 4, static_cast<uint32_t>(mask >> 32));
    }
    // A BAR no real decoder could have: its probe is given outright.
    void odd_bar(uint8_t offset, uint32_t original, uint32_t probe)
    {
        set(offset, original, 4, 0xffff'ffff);
        sizing[offset] = probe;
    }
    void capability_list(uint8_t first)
    {
        config[0x34] = first;
        config[0x06] |= 0x10;
    }
    // MSI: multiple message capable 8 (MMC 3).
    void msi(uint8_t at, uint8_t next, bool is64, bool pvm)
    {
        uint32_t control = (3u << 1) | (is64 ? 1u << 7 : 0) | (pvm ? 1u << 8 : 0);
        set(at, 0x05 | (uint32_t{next} << 8) | (control << 16), 4, 0x0071'0000);
        set(static_cast<uint8_t>(at + 4), 0, 4, 0xffff'fffc);
        uint8_t data = static_cast<uint8_t>(at + (is64 ? 0x0c : 0x08));
        if (is64)
            set(static_cast<uint8_t>(at + 8), 0, 4, 0xffff'ffff);
        set(data, 0, 4, 0x0000'ffff);
        if (pvm)
            set(static_cast<uint8_t>(data + 4), 0, 4, 0xffff'ffff);
    }
    void msix_cap(uint8_t at, uint8_t next, uint32_t entries, uint8_t bir, uint32_t table_offset)
    {
        set(at, 0x11 | (uint32_t{next} << 8) | ((entries - 1) << 16), 4, 0xc000'0000);
        set(static_cast<uint8_t>(at + 4), table_offset | bir, 4, 0);
        set(static_cast<uint8_t>(at + 8), (table_offset + 0x2000) | bir, 4, 0);
        msix.assign(entries * 4, 0);
    }
    void plain_capability(uint8_t at, uint8_t id, uint8_t next) { set(at, id | (uint32_t{next} << 8), 2, 0); }
};

struct HostWrite {
    Bdf bdf;
    bool msix;
    uint32_t offset;
    uint8_t size;
    uint32_t value;
};

struct FakeHost final : PciHost {
    std::map<uint32_t, FakeFunction> functions;
    std::vector<HostWrite> writes;
    size_t msix_reads = 0;
    size_t msix_writes = 0;

    static uint32_t key(Bdf b) { return uint32_t{b.bus} << 8 | uint32_t{b.device} << 3 | b.function; }

    FakeFunction& add(Bdf bdf, uint32_t id = 0x100e'8086)
    {
        FakeFunction& f = functions[key(bdf)];
        f.set(0x00, id);
        f.set(0x04, 0x0000'0000, 2, 0x07ff);  // command
        f.set(0x08, 0x0200'0003);             // network controller
        f.set(0x3c, 0x0000'010b, 2, 0x00ff);  // interrupt line (writable), pin A
        for (unsigned i = 0x40; i < 0x100; ++i)
            f.writable[i] = 0xff;              // device-specific space
        return f;
    }
    FakeFunction& at(Bdf bdf) { return functions.at(key(bdf)); }

    uint32_t config_read(Bdf bdf, uint8_t offset, uint8_t size) override
    {
        REQUIRE((offset & 3u) + size <= 4);
        auto it = functions.find(key(bdf));
        if (it == functions.end())
            return size == 4 ? 0xffff'ffffu : (1u << (8 * size)) - 1;
        uint32_t v = 0;
        for (unsigned i = 0; i < size; ++i)
            v |= uint32_t{it->second.config[offset + i]} << (8 * i);
        return v;
    }
    void config_write(Bdf bdf, uint8_t offset, uint8_t size, uint32_t value) override
    {
        REQUIRE((offset & 3u) + size <= 4);
        writes.push_back({bdf, false, offset, size, value});
        auto it = functions.find(key(bdf));
        if (it == functions.end())
            return;
        auto odd = it->second.sizing.find(offset);
        if (size == 4 && value == 0xffff'ffff && odd != it->second.sizing.end())
            value = odd->second;
        for (unsigned i = 0; i < size; ++i) {
            uint8_t& byte = it->second.config[offset + i];
            uint8_t w = it->second.writable[offset + i];
            byte = static_cast<uint8_t>((byte & ~w) | ((value >> (8 * i)) & w));
        }
    }
    uint32_t msix_read(Bdf bdf, uint32_t offset) override
    {
        FakeFunction& f = at(bdf);
        ++msix_reads;
        REQUIRE(offset % 4 == 0);
        REQUIRE(offset / 4 < f.msix.size());
        return f.msix[offset / 4];
    }
    void msix_write(Bdf bdf, uint32_t offset, uint32_t value) override
    {
        FakeFunction& f = at(bdf);
        REQUIRE(offset % 4 == 0);
        REQUIRE(offset / 4 < f.msix.size());
        ++msix_writes;
        writes.push_back({bdf, true, offset, 4, value});
        f.msix[offset / 4] = value;
    }
};

constexpr Bdf kNic{0, 3, 0};
constexpr Bdf kRtDevice{0, 5, 0};  // on the host, not the guest's
constexpr uint8_t kMsi = 0x50;
constexpr uint8_t kMsix = 0x70;
constexpr uint32_t kMsixEntries = 80;

// A NIC-like function: BAR0 32-bit memory 128 KiB, BAR1 I/O 64 bytes, BAR2/3 64-bit prefetchable
// 16 KiB, BAR4 32-bit memory 16 KiB holding the MSI-X table, BAR5 unimplemented. Capabilities:
// power management (0x40) -> MSI 64-bit with per-vector masking (0x50) -> MSI-X (0x70).
void add_nic(FakeHost& host, Bdf bdf = kNic)
{
    FakeFunction& f = host.add(bdf);
    f.bar(0, 0xfebc'0000, 0x2'0000, 0x0);
    f.bar(1, 0xc000, 0x40, 0x1);
    f.bar(2, 0x8'0000'0000ull, 0x4000, 0xc);
    f.bar(4, 0xfebf'0000, 0x4000, 0x0);
    f.set(0x30, 0xfeb8'0000, 4, 0xfffc'0001);  // an expansion ROM
    f.capability_list(0x40);
    f.plain_capability(0x40, 0x01, kMsi);
    f.msi(kMsi, kMsix, true, true);
    f.msix_cap(kMsix, 0x00, kMsixEntries, 4, 0);
    for (uint32_t i = 0; i < kMsixEntries; ++i) {
        f.msix[i * 4 + 0] = 0xfee0'0000;   // whatever firmware left there, unmasked
        f.msix[i * 4 + 2] = 0x0000'0030;
    }
}

struct Fixture {
    FakeHost host;
    GuestApics apics;
    MsiPolicy policy;
    PciFilter filter{host, apics, policy};

    Fixture()
    {
        // Guest vCPU 0 runs on host APIC 2, vCPU 1 on host APIC 3; logical flat IDs 1 and 2.
        apics.count = 2;
        apics.logical[0] = LogicalId{0x0100'0000, 0xffff'ffff};
        apics.logical[1] = LogicalId{0x0200'0000, 0xffff'ffff};
        policy.vcpu_count = 2;
        policy.host_apic_id[0] = 2;
        policy.host_apic_id[1] = 3;
        policy.set_vectors(0xf0, 0xff, false);  // the monitor's own
        add_nic(host);
        add_nic(host, kRtDevice);
    }
    void assign()
    {
        REQUIRE(filter.assign(kNic));
        host.writes.clear();
    }
    // Mechanism #1, as the guest does it.
    uint32_t read(Bdf bdf, uint8_t offset, uint8_t size = 4)
    {
        uint32_t address = 0x8000'0000 | uint32_t{bdf.bus} << 16 | uint32_t{bdf.device} << 11 |
                           uint32_t{bdf.function} << 8 | (offset & 0xfcu);
        REQUIRE(filter.io_write(0xcf8, 4, address));
        auto r = filter.io_read(static_cast<uint16_t>(0xcfc + (offset & 3u)), size);
        REQUIRE(r.ok());
        return r.value();
    }
    void write(Bdf bdf, uint8_t offset, uint32_t value, uint8_t size = 4)
    {
        uint32_t address = 0x8000'0000 | uint32_t{bdf.bus} << 16 | uint32_t{bdf.device} << 11 |
                           uint32_t{bdf.function} << 8 | (offset & 0xfcu);
        REQUIRE(filter.io_write(0xcf8, 4, address));
        REQUIRE(filter.io_write(static_cast<uint16_t>(0xcfc + (offset & 3u)), size, value));
    }
    uint32_t hw(uint8_t offset) { return host.at(kNic).dword(offset); }
    uint32_t msix_hw(uint32_t entry, uint32_t field) { return host.at(kNic).msix[entry * 4 + field / 4]; }
};

} // namespace

TEST_CASE("pci: CONFIG_ADDRESS decode and the data port", "[devices][pci]")
{
    Fixture fx;
    fx.assign();
    PciFilter& f = fx.filter;
    // Reserved bits 30:24 and 1:0 read back as 0 (Linux's pci_check_type1 writes 0x80000000).
    REQUIRE(f.io_write(0xcf8, 4, 0xffff'ffff));
    CHECK(f.io_read(0xcf8, 4).value() == 0x80ff'fffc);
    REQUIRE(f.io_write(0xcf8, 4, 0x8000'0000));
    CHECK(f.io_read(0xcf8, 4).value() == 0x8000'0000);
    // Byte and word accesses to 0xCF8-0xCFB are not CONFIG_ADDRESS (and 0xCF9 resets nothing).
    REQUIRE(f.io_write(0xcfb, 1, 0x01));
    REQUIRE(f.io_write(0xcf9, 1, 0x06));
    REQUIRE(f.io_write(0xcf8, 2, 0x1234));
    CHECK(f.config_address() == 0x8000'0000);
    CHECK(f.io_read(0xcf9, 1).value() == 0xff);
    CHECK(f.io_read(0xcfa, 2).value() == 0xffff);
    CHECK(f.stats().other_io == 5);

    // 00:03.0 register 0x08, byte 1 via 0xCFD, word via 0xCFE.
    REQUIRE(f.io_write(0xcf8, 4, 0x8000'1808));
    CHECK(f.io_read(0xcfc, 4).value() == 0x0200'0003);
    CHECK(f.io_read(0xcfe, 2).value() == 0x0200);
    CHECK(f.io_read(0xcff, 1).value() == 0x02);
    CHECK(f.io_read(0xcfd, 2).value() == 0x0000);
    CHECK(f.io_read(0xcfd, 4).error() == PciError::Crossing);
    CHECK(f.io_read(0xcfe, 4).error() == PciError::Crossing);
    CHECK(f.io_read(0xcfc, 3).error() == PciError::BadSize);
    CHECK(f.io_read(0xcf7, 1).error() == PciError::BadPort);
    CHECK(f.io_write(0xd00, 1, 0).error() == PciError::BadPort);
    CHECK(f.io_write(0xcfa, 4, 0).error() == PciError::Crossing);
    // Bus and function decode: 01:03.0 and 00:03.1 are other functions.
    CHECK(fx.read(Bdf{1, 3, 0}, 0) == 0xffff'ffff);
    CHECK(fx.read(Bdf{0, 3, 1}, 0) == 0xffff'ffff);
    CHECK(fx.read(kNic, 0) == 0x100e'8086);
    CHECK(fx.read(kNic, 0x3c, 1) == 0x0b);
    CHECK(fx.read(kNic, 0x3d, 1) == 0x01);
    // With the enable bit clear the data port is an empty I/O port.
    REQUIRE(f.io_write(0xcf8, 4, 0x0000'1800));
    CHECK(f.io_read(0xcfc, 4).value() == 0xffff'ffff);
    REQUIRE(f.io_write(0xcfc, 4, 0));
    CHECK(fx.host.writes.empty());
    CHECK(PciFilter::claims_port(0xcf8));
    CHECK(PciFilter::claims_port(0xcff));
    CHECK_FALSE(PciFilter::claims_port(0xd00));
}

TEST_CASE("pci: functions not assigned read as absent and ignore writes", "[devices][pci]")
{
    Fixture fx;
    fx.assign();
    CHECK(fx.read(kRtDevice, 0x00) == 0xffff'ffff);
    CHECK(fx.read(kRtDevice, 0x10) == 0xffff'ffff);
    CHECK(fx.read(kRtDevice, 0x06, 2) == 0xffff);
    fx.write(kRtDevice, 0x04, 0x0007, 2);  // bus master + decode
    fx.write(kRtDevice, 0x10, 0x1000'0000);
    fx.write(kRtDevice, 0x54, 0xfee0'0000);
    CHECK(fx.host.writes.empty());
    CHECK((fx.host.at(kRtDevice).dword(0x04) & 0xffff) == 0);
    CHECK(fx.filter.stats().unassigned_writes == 3);
    CHECK(fx.filter.stats().unassigned_reads == 3);
    CHECK_FALSE(fx.filter.assigned(kRtDevice));

    // The emulated host bridge at 00:00.0: present, read-only.
    CHECK(fx.read(Bdf{0, 0, 0}, 0x00) == 0x1237'8086);
    CHECK(fx.read(Bdf{0, 0, 0}, 0x0a, 2) == 0x0600);
    CHECK(fx.read(Bdf{0, 0, 0}, 0x34) == 0);
    fx.write(Bdf{0, 0, 0}, 0x04, 0x7, 2);
    CHECK(fx.read(Bdf{0, 0, 0}, 0x04) == 0);
    CHECK(fx.filter.stats().bridge_writes == 1);
    fx.filter.set_host_bridge(false);
    CHECK(fx.read(Bdf{0, 0, 0}, 0x00) == 0xffff'ffff);
}

TEST_CASE("pci: assigned functions pass through", "[devices][pci]")
{
    Fixture fx;
    fx.assign();
    CHECK(fx.read(kNic, 0x00) == 0x100e'8086);
    CHECK(fx.read(kNic, 0x02, 2) == 0x100e);
    fx.write(kNic, 0x04, 0x0007, 2);  // I/O, memory, bus master: the guest's device
    CHECK((fx.hw(0x04) & 0xffff) == 0x0007);
    REQUIRE(fx.host.writes.size() == 1);
    CHECK(fx.host.writes[0].offset == 0x04);
    CHECK(fx.host.writes[0].size == 2);  // sub-dword writes stay sub-dword (status is RW1C)
    fx.write(kNic, 0x3c, 0x0a, 1);
    CHECK(fx.read(kNic, 0x3c, 1) == 0x0a);
    fx.write(kNic, 0xc0, 0xdead'beef);   // device-specific
    CHECK(fx.hw(0xc0) == 0xdead'beef);
    // Capabilities are visible as they are.
    CHECK(fx.read(kNic, 0x34, 1) == 0x40);
    CHECK(fx.read(kNic, 0x40, 2) == 0x5001);
    CHECK(fx.filter.config_read(kNic, 0x00, 3).error() == PciError::BadSize);
    CHECK(fx.filter.config_write(kNic, 0x02, 4, 0).error() == PciError::Crossing);
    CHECK(fx.filter.config_read(Bdf{0, 32, 0}, 0, 4).error() == PciError::BadBdf);
}

TEST_CASE("pci: BARs may be sized and restored, never moved", "[devices][pci]")
{
    Fixture fx;
    fx.assign();
    CHECK(fx.read(kNic, 0x10) == 0xfebc'0000);

    SECTION("sizing is answered from the probe and never reaches the device")
    {
        fx.write(kNic, 0x10, 0xffff'ffff);
        CHECK(fx.read(kNic, 0x10) == 0xfffe'0000);   // 128 KiB
        CHECK(fx.hw(0x10) == 0xfebc'0000);
        fx.write(kNic, 0x14, 0xffff'ffff);
        CHECK(fx.read(kNic, 0x14) == 0xffff'ffc1);   // 64 bytes of I/O
        fx.write(kNic, 0x18, 0xffff'ffff);
        fx.write(kNic, 0x1c, 0xffff'ffff);
        CHECK(fx.read(kNic, 0x18) == 0xffff'c00c);   // 64-bit prefetchable 16 KiB
        CHECK(fx.read(kNic, 0x1c) == 0xffff'ffff);
        fx.write(kNic, 0x24, 0xffff'ffff);
        CHECK(fx.read(kNic, 0x24) == 0);             // unimplemented
        CHECK(fx.host.writes.empty());
        // Restoring the original values: passed on (they put a reset device back).
        fx.write(kNic, 0x10, 0xfebc'0000);
        fx.write(kNic, 0x18, 0x0000'000c);
        fx.write(kNic, 0x1c, 0x0000'0008);
        CHECK(fx.read(kNic, 0x10) == 0xfebc'0000);
        CHECK(fx.read(kNic, 0x1c) == 0x0000'0008);
        CHECK(fx.host.writes.size() == 3);
        CHECK(fx.filter.stats().bar_refused == 0);
    }
    SECTION("moving a BAR is refused")
    {
        fx.write(kNic, 0x10, 0x1000'0000);     // over someone else's memory
        fx.write(kNic, 0x1c, 0x0000'0000);     // the high half of BAR2
        fx.write(kNic, 0x14, 0xd001);
        fx.write(kNic, 0x10, 0xffff, 2);       // a partial write, even of ones
        fx.write(kNic, 0x12, 0xfebd, 2);
        CHECK(fx.read(kNic, 0x10) == 0xfebc'0000);
        CHECK(fx.read(kNic, 0x1c) == 0x0000'0008);
        CHECK(fx.read(kNic, 0x14) == 0xc001);
        CHECK(fx.host.writes.empty());
        CHECK(fx.filter.stats().bar_refused == 5);
        CHECK(fx.filter.stats().last_refused == kNic);
        CHECK(fx.filter.stats().last_refused_offset == 0x10);
    }
    SECTION("the expansion ROM is hidden")
    {
        CHECK(fx.read(kNic, 0x30) == 0);
        fx.write(kNic, 0x30, 0xffff'fffe);
        CHECK(fx.read(kNic, 0x30) == 0);
        fx.write(kNic, 0x30, 0xfeb8'0001);
        CHECK(fx.hw(0x30) == 0xfeb8'0000);
        CHECK(fx.host.writes.empty());
        CHECK(fx.filter.stats().rom_dropped == 2);
    }
}

TEST_CASE("pci: assign() probes BARs with decoding off and quiets MSI/MSI-X", "[devices][pci]")
{
    Fixture fx;
    fx.host.at(kNic).set(0x04, 0x0007, 2, 0x07ff);
    fx.host.at(kNic).config[kMsi + 2] |= 1;  // firmware left MSI enabled
    REQUIRE(fx.filter.assign(kNic));
    bool decode_off_while_probing = false;
    for (const HostWrite& w : fx.host.writes)
        if (w.offset == 0x04 && w.value == 0x0004)
            decode_off_while_probing = true;
    CHECK(decode_off_while_probing);
    CHECK((fx.hw(0x04) & 0xffff) == 0x0007);         // restored
    CHECK(fx.hw(0x10) == 0xfebc'0000);               // restored
    CHECK((fx.hw(kMsi) >> 16 & 1u) == 0);            // MSI off
    for (uint32_t i = 0; i < kMsixEntries; ++i)
        CHECK((fx.msix_hw(i, 12) & 1u) == 1);        // every MSI-X entry masked
    PciFilter::MsixTableInfo t = fx.filter.msix_table(kNic);
    CHECK(t.present);
    CHECK(t.bar == 4);
    CHECK(t.offset == 0);
    CHECK(t.entries == kMsixEntries);
    CHECK_FALSE(fx.filter.msix_table(kRtDevice).present);
    CHECK(fx.filter.assign(kNic).error() == PciError::AlreadyAssigned);
    CHECK(fx.filter.assign(Bdf{0, 9, 0}).error() == PciError::NoDevice);
    CHECK(fx.filter.assign(Bdf{0, 3, 8}).error() == PciError::BadBdf);
}

TEST_CASE("pci: MSI must target the guest's own vCPUs", "[devices][pci]")
{
    Fixture fx;
    fx.assign();
    const uint8_t addr = kMsi + 4, upper = kMsi + 8, data = kMsi + 12;
    auto enabled_in_hw = [&] { return ((fx.hw(kMsi) >> 16) & 1u) != 0; };

    SECTION("a valid message is translated to the vCPU's host CPU")
    {
        fx.write(kNic, addr, 0xfee0'1000);   // guest APIC 1
        fx.write(kNic, upper, 0);
        fx.write(kNic, data, 0x4041, 2);     // fixed, level assert, vector 0x41
        fx.write(kNic, kMsi + 2, 0x0001, 2); // enable
        CHECK(enabled_in_hw());
        CHECK(fx.hw(addr) == 0xfee0'3000);   // host APIC 3
        CHECK(fx.hw(upper) == 0);
        CHECK((fx.hw(data) & 0xffff) == 0x0041);
        // The guest reads back what it wrote.
        CHECK(fx.read(kNic, addr) == 0xfee0'1000);
        CHECK(fx.read(kNic, data, 2) == 0x4041);
        CHECK((fx.read(kNic, kMsi + 2, 2) & 0x71) == 0x01);
        CHECK(fx.filter.stats().msi_refused == 0);
        // Retargeting while enabled (Linux's affinity change).
        fx.write(kNic, addr, 0xfee0'0000);
        CHECK(fx.hw(addr) == 0xfee0'2000);
        CHECK(enabled_in_hw());
        // Disable.
        fx.write(kNic, kMsi + 2, 0x0000, 2);
        CHECK_FALSE(enabled_in_hw());
    }
    SECTION("a destination outside the guest is refused")
    {
        fx.write(kNic, addr, 0xfee0'1000);
        fx.write(kNic, data, 0x0041, 2);
        fx.write(kNic, addr, 0xfee0'5000);   // APIC 5: not the guest's
        CHECK(fx.read(kNic, addr) == 0xfee0'1000);
        fx.write(kNic, addr, 0xfee0'2000);   // APIC 2: a host ID, but no guest vCPU has it
        fx.write(kNic, addr, 0xfeef'f000);   // broadcast
        fx.write(kNic, addr, 0xfed0'1000);   // not an interrupt address at all
        fx.write(kNic, addr, 0xfee0'100c);   // logical (DM, RH) destination 0x01: vCPU 0
        CHECK(fx.read(kNic, addr) == 0xfee0'100c);
        CHECK(fx.hw(addr) == 0xfee0'2000);   // vCPU 0 runs on host APIC 2, sent physical
        fx.write(kNic, addr, 0xfee0'400c);   // logical 0x04: nobody
        fx.write(kNic, upper, 0x0000'0001);  // above 4 GiB
        CHECK(fx.filter.stats().msi_refused == 6);
        CHECK(fx.filter.stats().last_refused_offset == upper);
        CHECK(fx.read(kNic, upper) == 0);
    }
    SECTION("only fixed or lowest-priority vectors the policy allows")
    {
        fx.write(kNic, addr, 0xfee0'0000);
        fx.write(kNic, data, 0x0441, 2);     // NMI
        fx.write(kNic, data, 0x0541, 2);     // INIT
        fx.write(kNic, data, 0x0241, 2);     // SMI
        fx.write(kNic, data, 0x0741, 2);     // ExtINT
        fx.write(kNic, data, 0x000f, 2);     // illegal vector
        fx.write(kNic, data, 0x001f, 2);     // below the policy's 0x20
        fx.write(kNic, data, 0x00f3, 2);     // one of the monitor's
        CHECK(fx.filter.stats().msi_refused == 7);
        fx.write(kNic, data, 0x0151, 2);     // lowest priority: sent as fixed
        fx.write(kNic, kMsi + 2, 0x0001, 2);
        CHECK(enabled_in_hw());
        CHECK((fx.hw(data) & 0xffff) == 0x0051);
    }
    SECTION("enable before the message is complete stays off in the device")
    {
        fx.write(kNic, kMsi + 2, 0x0001, 2);
        CHECK_FALSE(enabled_in_hw());
        CHECK(fx.filter.stats().msi_refused == 1);
        CHECK((fx.read(kNic, kMsi + 2, 2) & 1u) == 1);  // the guest sees its own enable
        fx.write(kNic, addr, 0xfee0'0000);
        CHECK_FALSE(enabled_in_hw());
        CHECK(fx.filter.stats().msi_refused == 2);       // still enabled without data
        fx.write(kNic, data, 0x0061, 2);
        CHECK(enabled_in_hw());  // now complete: on
        CHECK(fx.filter.stats().msi_refused == 2);
    }
    SECTION("multiple messages: every vector of the block must be allowed")
    {
        fx.write(kNic, addr, 0xfee0'0000);
        fx.write(kNic, data, 0x00e8, 2);
        fx.write(kNic, kMsi + 2, 0x0031, 2);  // 8 messages: 0xe8-0xef
        CHECK(enabled_in_hw());
        CHECK(((fx.hw(kMsi) >> 16) & 0x70u) == 0x30);
        // More than the device is capable of (8) is not given to it, but the guest reads its own.
        fx.write(kNic, kMsi + 2, 0x0051, 2);
        CHECK(enabled_in_hw());
        CHECK(((fx.hw(kMsi) >> 16) & 0x70u) == 0x30);
        CHECK((fx.read(kNic, kMsi + 2, 2) & 0x70u) == 0x50);
        // A vector the VMM keeps inside the block: data alone is fine, the block is not.
        fx.policy.set_vectors(0x44, 0x44, false);
        fx.write(kNic, data, 0x0041, 2);
        CHECK_FALSE(enabled_in_hw());
        CHECK(fx.filter.stats().msi_refused == 1);
        fx.write(kNic, kMsi + 2, 0x0001, 2);   // one message: 0x41 only
        CHECK(enabled_in_hw());
        CHECK((fx.hw(data) & 0xffff) == 0x41);
    }
    SECTION("mask bits pass through")
    {
        fx.write(kNic, kMsi + 0x10, 0x0000'00ff);
        CHECK(fx.hw(kMsi + 0x10) == 0xff);
        CHECK(fx.read(kNic, kMsi + 0x10) == 0xff);
    }
}

TEST_CASE("pci: MSI-X table entries must target the guest's own vCPUs", "[devices][pci]")
{
    Fixture fx;
    fx.assign();
    PciFilter& f = fx.filter;

    SECTION("a valid entry is translated, then unmasked")
    {
        REQUIRE(f.msix_write(kNic, 16 + 0, 4, 0xfee0'1000));
        REQUIRE(f.msix_write(kNic, 16 + 4, 4, 0));
        REQUIRE(f.msix_write(kNic, 16 + 8, 4, 0x0000'0062));
        CHECK((fx.msix_hw(1, 12) & 1u) == 1);  // still masked: the guest has not unmasked it
        CHECK(fx.msix_hw(1, 0) == 0xfee0'3000);
        CHECK(fx.msix_hw(1, 8) == 0x62);
        REQUIRE(f.msix_write(kNic, 16 + 12, 4, 0));
        CHECK((fx.msix_hw(1, 12) & 1u) == 0);
        CHECK(f.msix_read(kNic, 16, 4).value() == 0xfee0'1000);
        CHECK(f.msix_read(kNic, 16 + 12, 4).value() == 0);
        CHECK(f.msix_read(kNic, 16 + 8, 8).value() == 0x62);  // data and vector control
        CHECK(f.stats().msi_refused == 0);
    }
    SECTION("one 8-byte write programs address and upper address")
    {
        REQUIRE(f.msix_write(kNic, 32, 8, 0x0000'0000'fee0'0000ull));
        REQUIRE(f.msix_write(kNic, 40, 8, 0x0000'0000'0000'0071ull));  // data 0x71, unmasked
        CHECK(fx.msix_hw(2, 0) == 0xfee0'2000);
        CHECK((fx.msix_hw(2, 12) & 1u) == 0);
        CHECK(f.msix_read(kNic, 32, 8).value() == 0xfee0'0000ull);
    }
    SECTION("foreign destinations, bad upper addresses and bad data are refused")
    {
        REQUIRE(f.msix_write(kNic, 0, 4, 0xfee0'7000));
        REQUIRE(f.msix_write(kNic, 0, 4, 0xfeef'f000));
        REQUIRE(f.msix_write(kNic, 0, 4, 0x0000'1000));
        REQUIRE(f.msix_write(kNic, 4, 4, 0x0000'0001));
        REQUIRE(f.msix_write(kNic, 8, 4, 0x0000'0441));  // NMI
        REQUIRE(f.msix_write(kNic, 8, 4, 0x0000'00fe));  // the monitor's vector
        CHECK(f.stats().msi_refused == 6);
        CHECK(f.msix_read(kNic, 0, 4).value() == 0);
        // Unmasking an entry that is not valid: the device keeps it masked.
        REQUIRE(f.msix_write(kNic, 12, 4, 0));
        CHECK(f.stats().msi_refused == 7);
        CHECK((fx.msix_hw(0, 12) & 1u) == 1);
        CHECK(f.msix_read(kNic, 12, 4).value() == 0);  // the guest sees its own mask bit
        // Whatever firmware left in the device is never unmasked with it.
        CHECK(fx.msix_hw(0, 0) == 0xfee0'0000);
    }
    SECTION("entries beyond the shadow stay masked")
    {
        uint32_t at = 70 * 16;
        REQUIRE(f.msix_write(kNic, at, 4, 0xfee0'0000));
        REQUIRE(f.msix_write(kNic, at + 12, 4, 0));
        CHECK((fx.msix_hw(70, 12) & 1u) == 1);
        CHECK(f.msix_read(kNic, at + 12, 4).value() == 1);
        CHECK(f.msix_read(kNic, at, 4).value() == 0);
        CHECK(f.stats().msix_unshadowed == 2);
    }
    SECTION("accesses outside the table, misaligned or odd-sized")
    {
        CHECK(f.msix_read(kNic, kMsixEntries * 16, 4).error() == PciError::OutsideMsixTable);
        CHECK(f.msix_write(kNic, kMsixEntries * 16 - 4, 8, 0).error() == PciError::Unaligned);
        CHECK(f.msix_write(kNic, kMsixEntries * 16 - 8, 8, 0).ok());
        CHECK(f.msix_write(kNic, 0xffff'fff8, 8, 0).error() == PciError::OutsideMsixTable);
        CHECK(f.msix_read(kNic, 2, 4).error() == PciError::Unaligned);
        CHECK(f.msix_read(kNic, 0, 2).error() == PciError::BadSize);
        CHECK(f.msix_read(kRtDevice, 0, 4).error() == PciError::NotAssigned);
    }
    SECTION("the capability's enable and function mask pass through")
    {
        fx.write(kNic, kMsix + 2, 0xc000 | (kMsixEntries - 1), 2);
        CHECK(((fx.hw(kMsix) >> 16) & 0xc000u) == 0xc000);
        CHECK(fx.read(kNic, kMsix + 4) == 0x0000'0004);  // table in BAR4 at 0
    }
}

TEST_CASE("pci: malformed capability lists are refused at assign()", "[devices][pci]")
{
    Fixture fx;
    FakeFunction& nic = fx.host.at(kNic);
    SECTION("a loop")
    {
        nic.plain_capability(0x40, 0x01, 0x60);
        nic.plain_capability(0x60, 0x09, 0x40);
        CHECK(fx.filter.assign(kNic).error() == PciError::CapabilityLoop);
    }
    SECTION("a capability pointing at itself")
    {
        nic.plain_capability(0x40, 0x01, 0x41);  // low bits are masked: 0x40 again
        CHECK(fx.filter.assign(kNic).error() == PciError::CapabilityLoop);
    }
    SECTION("a loop that hides after MSI")
    {
        nic.msix_cap(kMsix, 0x50, kMsixEntries, 4, 0);
        CHECK(fx.filter.assign(kNic).error() == PciError::CapabilityLoop);
    }
    SECTION("a pointer into the header")
    {
        nic.plain_capability(0x40, 0x01, 0x20);
        CHECK(fx.filter.assign(kNic).error() == PciError::CapabilityOutOfRange);
    }
    SECTION("a first pointer into the header")
    {
        nic.capability_list(0x08);
        CHECK(fx.filter.assign(kNic).error() == PciError::CapabilityOutOfRange);
    }
    SECTION("capability ID 0xFF")
    {
        nic.plain_capability(0x40, 0xff, 0x50);
        CHECK(fx.filter.assign(kNic).error() == PciError::CapabilityOutOfRange);
    }
    SECTION("an MSI capability running past 0xFF")
    {
        nic.plain_capability(0x40, 0x01, 0xf0);
        nic.msi(0xf0, 0x00, true, true);  // 0x18 bytes from 0xF0
        CHECK(fx.filter.assign(kNic).error() == PciError::CapabilityTruncated);
    }
    SECTION("an MSI-X capability running past 0xFF")
    {
        nic.plain_capability(0x40, 0x01, 0xf8);
        nic.msix_cap(0xf8, 0x00, 4, 4, 0);
        CHECK(fx.filter.assign(kNic).error() == PciError::CapabilityTruncated);
    }
    SECTION("two MSI capabilities")
    {
        nic.msix_cap(kMsix, 0x90, kMsixEntries, 4, 0);
        nic.msi(0x90, 0x00, false, false);
        CHECK(fx.filter.assign(kNic).error() == PciError::DuplicateCapability);
    }
    SECTION("an MSI-X table in an I/O BAR")
    {
        nic.msix_cap(kMsix, 0x00, kMsixEntries, 1, 0);
        CHECK(fx.filter.assign(kNic).error() == PciError::BadMsixTable);
    }
    SECTION("an MSI-X table larger than its BAR")
    {
        nic.msix_cap(kMsix, 0x00, 2048, 4, 0);  // 32 KiB in a 16 KiB BAR
        CHECK(fx.filter.assign(kNic).error() == PciError::BadMsixTable);
    }
    SECTION("an MSI-X table in an unimplemented BAR or BIR 6-7")
    {
        nic.msix_cap(kMsix, 0x00, 4, 5, 0);
        CHECK(fx.filter.assign(kNic).error() == PciError::BadMsixTable);
        nic.msix_cap(kMsix, 0x00, 4, 7, 0);
        CHECK(fx.filter.assign(kNic).error() == PciError::BadMsixTable);
    }
    SECTION("the longest legal list (48 capabilities) is fine")
    {
        nic.capability_list(0x40);
        for (unsigned at = 0x40; at < 0x100; at += 4)
            nic.plain_capability(static_cast<uint8_t>(at), 0x09, static_cast<uint8_t>(at + 4 < 0x100 ? at + 4 : 0));
        CHECK(fx.filter.assign(kNic).ok());
        CHECK_FALSE(fx.filter.msix_table(kNic).present);
    }
    SECTION("no capability list: no MSI to filter")
    {
        nic.config[0x06] = 0;
        CHECK(fx.filter.assign(kNic).ok());
        CHECK_FALSE(fx.filter.msix_table(kNic).present);
    }
    SECTION("bridges are not passed, nor too many functions")
    {
        nic.config[0x0e] = 0x81;  // multi-function type 1 header
        CHECK(fx.filter.assign(kNic).error() == PciError::NotEndpoint);
        for (uint8_t d = 10; d < 10 + PciFilter::kMaxDevices; ++d) {
            fx.host.add(Bdf{0, d, 0});
            REQUIRE(fx.filter.assign(Bdf{0, d, 0}));
        }
        fx.host.add(Bdf{0, 30, 0});
        CHECK(fx.filter.assign(Bdf{0, 30, 0}).error() == PciError::TooManyDevices);
    }
    CHECK(std::string(describe(PciError::CapabilityLoop)).find("loops") != std::string::npos);
}

TEST_CASE("pci: a hostile guest hammering configuration space and the MSI-X table", "[devices][pci]")
{
    Fixture fx;
    fx.assign();
    const FakeFunction rt_before = fx.host.at(kRtDevice);
    const uint32_t original_bars[6] = {fx.hw(0x10), fx.hw(0x14), fx.hw(0x18), fx.hw(0x1c), fx.hw(0x20), fx.hw(0x24)};
    vlibos::test::Lcg rng{0xc0ffee};
    const uint8_t sizes[] = {1, 2, 4, 4, 4, 3, 8};
    const uint8_t hot[] = {0x04, 0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x30, 0x34, 0x50, 0x52, 0x54, 0x58, 0x5c,
                           0x60, 0x64, 0x70, 0x72};
    auto valid_host_address = [](uint32_t a) { return a == 0xfee0'2000 || a == 0xfee0'3000; };
    auto random_value = [&]() -> uint32_t {
        switch (rng.below(6)) {
        case 0: return 0xffff'ffff;
        case 1: return 0xfee0'0000 | static_cast<uint32_t>(rng.below(256)) << 12 | static_cast<uint32_t>(rng.below(16));
        case 2: return original_bars[rng.below(6)];
        case 3: return static_cast<uint32_t>(rng.below(0x800));
        default: return static_cast<uint32_t>(rng.next() ^ (rng.next() << 16));
        }
    };

    for (int step = 0; step < 50'000; ++step) {
        switch (rng.below(6)) {
        case 0: {  // CONFIG_ADDRESS: mostly our function or the RT one
            uint32_t address;
            if (rng.below(4) == 0)
                address = static_cast<uint32_t>(rng.next());
            else
                address = 0x8000'0000 | (rng.below(2) ? 0x1800u : 0x2800u) |
                          (rng.below(3) ? hot[rng.below(sizeof hot)] : static_cast<uint32_t>(rng.below(256)));
            (void)fx.filter.io_write(0xcf8, rng.below(8) ? 4 : sizes[rng.below(7)], address);
            break;
        }
        case 1:
        case 2:
            (void)fx.filter.io_write(static_cast<uint16_t>(0xcf8 + rng.below(8)), sizes[rng.below(7)], random_value());
            break;
        case 3:
            (void)fx.filter.io_read(static_cast<uint16_t>(0xcf8 + rng.below(8)), sizes[rng.below(7)]);
            break;
        default: {
            auto offset = static_cast<uint32_t>(rng.below(kMsixEntries * 16 + 32));
            if (rng.below(2))
                offset &= ~3u;
            uint64_t value = random_value() | (rng.below(2) ? 0 : uint64_t{random_value()} << 32);
            (void)fx.filter.msix_write(kNic, offset, sizes[rng.below(7)], value);
            break;
        }
        }

        // What the device holds is always safe.
        for (const HostWrite& w : fx.host.writes)
            REQUIRE(w.bdf == kNic);  // never the RT partition's function
        fx.host.writes.clear();
        for (unsigned i = 0; i < 6; ++i)
            REQUIRE(fx.hw(static_cast<uint8_t>(0x10 + 4 * i)) == original_bars[i]);
        REQUIRE(fx.hw(0x30) == 0xfeb8'0000);
        uint32_t control = fx.hw(kMsi) >> 16;
        if (control & 1u) {
            REQUIRE(valid_host_address(fx.hw(kMsi + 4)));
            REQUIRE(fx.hw(kMsi + 8) == 0);
            uint32_t data = fx.hw(kMsi + 12) & 0xffff;
            REQUIRE((data & 0xff00) == 0);
            uint32_t count = 1u << ((control >> 4) & 7u);
            for (uint32_t v = (data & ~(count - 1)); v < (data & ~(count - 1)) + count; ++v)
                REQUIRE((v >= 0x20 && v < 0xf0));
        }
        for (uint32_t e = 0; e < kMsixEntries; ++e) {
            if (fx.msix_hw(e, 12) & 1u)
                continue;
            REQUIRE(e < PciFilter::kMaxMsixEntries);
            REQUIRE(valid_host_address(fx.msix_hw(e, 0)));
            REQUIRE(fx.msix_hw(e, 4) == 0);
            uint32_t data = fx.msix_hw(e, 8);
            REQUIRE(data >= 0x20);
            REQUIRE(data < 0xf0);
        }
    }
    const FakeFunction& rt_after = fx.host.at(kRtDevice);
    CHECK(std::memcmp(rt_before.config, rt_after.config, 256) == 0);
    CHECK(rt_before.msix == rt_after.msix);
    CHECK(fx.filter.stats().bar_refused > 100);
    CHECK(fx.filter.stats().msi_refused > 100);
    CHECK(fx.filter.stats().unassigned_writes > 100);
}

namespace {

constexpr uint8_t kPcie = 0x80;
constexpr uint8_t kMsiEnd = kMsi + 0x18;    // 64-bit with per-vector masking
constexpr uint8_t kMsixEnd = kMsix + 0x0c;

bool in_hidden_capability(uint32_t offset, uint32_t size)
{
    auto overlaps = [&](uint32_t from, uint32_t to) { return offset < to && offset + size > from; };
    return overlaps(kMsi, kMsiEnd) || overlaps(kMsix, kMsixEnd);
}

// The NIC with firmware state to undo and the list PM (0x40) -> MSI (0x50) -> PCIe (0x80) ->
// MSI-X (0x70), in IntxOnly mode (not yet assigned).
void intx_fixture(Fixture& fx)
{
    fx.filter.set_interrupt_mode(InterruptMode::IntxOnly);
    FakeFunction& nic = fx.host.at(kNic);
    nic.set(0x04, 0x0007, 2, 0x07ff);     // decode and bus master on
    nic.msi(kMsi, kPcie, true, true);
    nic.config[kMsi + 2] |= 1;            // MSI enabled
    nic.plain_capability(kPcie, 0x10, kMsix);
    nic.config[kMsix + 3] |= 0x80;        // MSI-X enabled, entries unmasked (add_nic)
}

// The capability IDs a guest finds walking the list as Linux's pci_find_capability() does.
std::vector<uint32_t> walk(Fixture& fx, Bdf bdf)
{
    std::vector<uint32_t> ids;
    if (!(fx.read(bdf, 0x06, 2) & 0x10))
        return ids;
    for (uint32_t at = fx.read(bdf, 0x34, 1) & 0xfc; at && ids.size() < 48; at = fx.read(bdf, static_cast<uint8_t>(at + 1), 1) & 0xfc)
        ids.push_back(fx.read(bdf, static_cast<uint8_t>(at), 1));
    return ids;
}

} // namespace

TEST_CASE("pci: IntxOnly hides MSI and MSI-X and turns them off in the device", "[devices][pci]")
{
    Fixture fx;
    intx_fixture(fx);
    REQUIRE(fx.filter.assign(kNic));
    CHECK(fx.host.msix_reads == 0);  // the table is never touched
    CHECK(fx.host.msix_writes == 0);
    for (uint32_t i = 0; i < kMsixEntries; ++i)
        CHECK((fx.msix_hw(i, 12) & 1u) == 0);
    CHECK(((fx.hw(kMsi) >> 16) & 0x71u) == 0);          // MSI enable and multiple message enable off
    CHECK((fx.hw(kMsix) >> 31) == 0);                   // MSI-X enable off
    CHECK((fx.hw(0x04) & 0xffff) == 0x0003);            // bus master off, decode restored
    bool decode_and_master_off = false;
    for (const HostWrite& w : fx.host.writes)
        if (w.offset == 0x04 && w.value == 0x0000)
            decode_and_master_off = true;
    CHECK(decode_and_master_off);
    fx.host.writes.clear();

    CHECK_FALSE(fx.filter.msix_table(kNic).present);
    CHECK(fx.filter.msix_read(kNic, 0, 4).error() == PciError::NoMsix);
    CHECK(fx.filter.msix_write(kNic, 12, 4, 0).error() == PciError::NoMsix);

    // The pointers skip the hidden capabilities at every size and alignment.
    CHECK(fx.read(kNic, 0x34, 1) == 0x40);
    CHECK(fx.read(kNic, 0x34, 2) == 0x0040);
    CHECK(fx.read(kNic, 0x34, 4) == 0x0000'0040);
    CHECK(fx.read(kNic, 0x41, 1) == kPcie);
    CHECK(fx.read(kNic, 0x40, 2) == 0x8001);
    CHECK(fx.read(kNic, 0x41, 2) == kPcie);
    CHECK((fx.read(kNic, 0x40, 4) & 0xffff) == 0x8001);
    CHECK(fx.read(kNic, kPcie + 1, 1) == 0);
    CHECK(fx.read(kNic, kPcie, 2) == 0x0010);
    CHECK(fx.read(kNic, kPcie, 4) == 0x0000'0010);
    CHECK((fx.read(kNic, 0x06, 2) & 0x10) == 0x10);     // a list is still there
    CHECK(walk(fx, kNic) == std::vector<uint32_t>{0x01, 0x10});
    // Hidden bytes read 0 whatever the device holds.
    for (uint32_t at = kMsi; at < kMsiEnd; ++at)
        CHECK(fx.read(kNic, static_cast<uint8_t>(at), 1) == 0);
    for (uint32_t at = kMsix; at < kMsixEnd; at += 2)
        CHECK(fx.read(kNic, static_cast<uint8_t>(at), 2) == 0);
    CHECK(fx.read(kNic, kMsi) == 0);
    CHECK(fx.read(kNic, kMsix + 4) == 0);
    CHECK(fx.host.at(kNic).config[kMsix] == 0x11);

    // Writes to them are dropped and counted; the rest passes through as before.
    fx.write(kNic, kMsi + 4, 0xfee0'0000);
    fx.write(kNic, kMsi + 2, 0x0001, 2);
    fx.write(kNic, kMsix + 3, 0x80, 1);
    fx.write(kNic, kMsix, 0xffff'ffff);
    CHECK(fx.host.writes.empty());
    CHECK(fx.filter.stats().hidden_writes == 4);
    CHECK(fx.filter.stats().last_refused == kNic);
    CHECK(fx.filter.stats().last_refused_offset == kMsix);
    CHECK(fx.filter.stats().msi_refused == 0);
    CHECK(((fx.hw(kMsi) >> 16) & 1u) == 0);
    CHECK((fx.hw(kMsix) >> 31) == 0);
    fx.write(kNic, 0x04, 0x0007, 2);                    // the driver turns bus mastering back on
    CHECK((fx.hw(0x04) & 0xffff) == 0x0007);
    fx.write(kNic, 0x34, kMsi, 1);                      // read-only in hardware
    CHECK(fx.read(kNic, 0x34, 1) == 0x40);
    CHECK(fx.filter.stats().hidden_writes == 4);
    // Other capabilities' registers are the guest's.
    fx.write(kNic, 0x44, 0x0000'0003);
    CHECK(fx.hw(0x44) == 3);
}

TEST_CASE("pci: IntxOnly with hidden capabilities first, last or alone", "[devices][pci]")
{
    Fixture fx;
    fx.filter.set_interrupt_mode(InterruptMode::IntxOnly);
    FakeFunction& nic = fx.host.at(kNic);
    SECTION("MSI first, MSI-X last")
    {
        nic.capability_list(kMsi);
        nic.msi(kMsi, 0x40, false, false);
        nic.plain_capability(0x40, 0x01, kMsix);
        nic.set(kMsi + 0x0c, 0, 4, 0xffff'ffff);
        REQUIRE(fx.filter.assign(kNic));
        CHECK(fx.read(kNic, 0x34, 1) == 0x40);
        CHECK(fx.read(kNic, 0x41, 1) == 0);
        CHECK(walk(fx, kNic) == std::vector<uint32_t>{0x01});
        // A 32-bit MSI without masking is 10 bytes; its whole last dword is hidden.
        CHECK(fx.read(kNic, kMsi + 8) == 0);
        fx.write(kNic, kMsi + 0x0a, 0xffff, 2);
        CHECK(fx.filter.stats().hidden_writes == 1);
        // The dword after it is not.
        fx.write(kNic, kMsi + 0x0c, 0x1234'5678);
        CHECK(fx.read(kNic, kMsi + 0x0c) == 0x1234'5678);
    }
    SECTION("only MSI: no capability list at all")
    {
        nic.capability_list(kMsi);
        nic.msi(kMsi, 0x00, true, false);
        REQUIRE(fx.filter.assign(kNic));
        CHECK((fx.read(kNic, 0x06, 2) & 0x10) == 0);
        CHECK((fx.read(kNic, 0x06, 1) & 0x10) == 0);
        CHECK((fx.read(kNic, 0x04, 4) & 0x0010'0000) == 0);
        CHECK(fx.read(kNic, 0x34, 1) == 0);
        CHECK(fx.read(kNic, 0x34, 2) == 0);
        CHECK(fx.read(kNic, 0x34, 4) == 0);
        CHECK(walk(fx, kNic).empty());
        CHECK(fx.read(kNic, kMsi, 4) == 0);
        CHECK(fx.host.msix_reads + fx.host.msix_writes == 0);
    }
    SECTION("in Msi mode the same function shows both")
    {
        fx.filter.set_interrupt_mode(InterruptMode::Msi);
        REQUIRE(fx.filter.assign(kNic));
        CHECK(walk(fx, kNic) == std::vector<uint32_t>{0x01, 0x05, 0x11});
        CHECK(fx.filter.msix_table(kNic).present);
    }
    SECTION("IntxOnly does not care where the MSI-X table is")
    {
        nic.msix_cap(kMsix, 0x00, 2048, 4, 0);  // 32 KiB in a 16 KiB BAR: refused in Msi mode
        REQUIRE(fx.filter.assign(kNic));
        CHECK(walk(fx, kNic) == std::vector<uint32_t>{0x01});
    }
    SECTION("malformed lists are still refused")
    {
        nic.msix_cap(kMsix, 0x50, kMsixEntries, 4, 0);
        CHECK(fx.filter.assign(kNic).error() == PciError::CapabilityLoop);
    }
}

TEST_CASE("pci: BARs and interrupt pin as assign() found them", "[devices][pci]")
{
    Fixture fx;
    fx.assign();
    PciFilter& f = fx.filter;
    PciFilter::BarInfo b = f.bar(kNic, 0);
    CHECK(b.present);
    CHECK_FALSE(b.io);
    CHECK_FALSE(b.is64);
    CHECK_FALSE(b.prefetchable);
    CHECK(b.base == 0xfebc'0000);
    CHECK(b.size == 0x2'0000);
    b = f.bar(kNic, 1);
    CHECK((b.present && b.io && !b.is64));
    CHECK(b.base == 0xc000);
    CHECK(b.size == 0x40);
    b = f.bar(kNic, 2);
    CHECK((b.present && !b.io && b.is64 && b.prefetchable));
    CHECK(b.base == 0x8'0000'0000ull);
    CHECK(b.size == 0x4000);
    CHECK_FALSE(f.bar(kNic, 3).present);  // the high half of BAR2
    CHECK(f.bar(kNic, 4).present);
    CHECK(f.bar(kNic, 4).size == 0x4000);
    CHECK_FALSE(f.bar(kNic, 5).present);  // unimplemented
    CHECK_FALSE(f.bar(kNic, 6).present);
    CHECK_FALSE(f.bar(kRtDevice, 0).present);
    CHECK(f.interrupt_pin(kNic) == 1);
    CHECK(f.interrupt_line(kNic) == 0x0b);
    fx.write(kNic, 0x3c, 0x0a, 1);  // the guest's copy; the accessor keeps the firmware's
    CHECK(f.interrupt_line(kNic) == 0x0b);
    CHECK(f.interrupt_pin(kRtDevice) == 0);
    CHECK(f.interrupt_line(kRtDevice) == 0);

    const Bdf other{0, 7, 0};
    FakeFunction& o = fx.host.add(other);
    o.set(0x3c, 0x0000'040a, 2, 0x00ff);  // INTD#, IRQ 10
    o.bar(0, 0x40'0000'0000ull, 0x10'0000'0000ull, 0x4);   // 64 GiB, 64-bit, not prefetchable
    o.set(0x18, 0x0000'e001, 4, 0x0000'ffe0);              // I/O, a 16-bit decoder: 32 ports
    o.odd_bar(0x1c, 0xfebd'0000, 0xfffe'0000);              // 128 KiB at a 64 KiB boundary
    o.set(0x20, 0xfe00'0000, 4, 0xfffd'0000);              // a hole in the size mask
    o.set(0x24, 0x0001'0001, 4, 0xffff'ffc0);              // I/O beyond the 64 KiB port space
    SECTION("a second function")
    {
        REQUIRE(f.assign(other));
        CHECK(f.device_count() == 2);
        CHECK(f.device_bdf(0) == kNic);
        CHECK(f.device_bdf(1) == other);
        CHECK(f.interrupt_pin(other) == 4);
        CHECK(f.interrupt_line(other) == 0x0a);
        b = f.bar(other, 0);
        CHECK((b.present && b.is64 && !b.prefetchable && !b.io));
        CHECK(b.base == 0x40'0000'0000ull);
        CHECK(b.size == 0x10'0000'0000ull);
        CHECK_FALSE(f.bar(other, 1).present);
        b = f.bar(other, 2);
        CHECK((b.present && b.io));
        CHECK(b.base == 0xe000);
        CHECK(b.size == 0x20);
        CHECK_FALSE(f.bar(other, 3).present);  // base not aligned to its size
        CHECK_FALSE(f.bar(other, 4).present);  // not a power of two
        CHECK_FALSE(f.bar(other, 5).present);
    }
    SECTION("probes hardware cannot produce")
    {
        o.set(0x10, 0x000e'0002, 4, 0xffff'f000);   // memory type 01b (reserved)
        o.set(0x14, 0x0000'0000, 4, 0xffff'f008);   // the prefetchable bit changes under the probe
        o.set(0x18, 0x0000'0008, 4, 0x0000'0000);   // type bits only: no address bits decode
        o.set(0x1c, 0x0000'0001, 4, 0x0000'0000);   // I/O, no address bits
        o.set(0x20, 0x0000'0000, 4, 0x0000'0000);
        o.bar(5, 0xfe00'0000, 0x1000, 0x4);         // 64-bit in the last slot: no high half
        REQUIRE(f.assign(other));
        for (unsigned i = 0; i < 6; ++i)
            CHECK_FALSE(f.bar(other, i).present);
        CHECK(f.device_count() == 2);
    }
    CHECK(f.device_bdf(5) == Bdf{});
}

TEST_CASE("pci: a hostile guest never reaches hidden capabilities in IntxOnly", "[devices][pci]")
{
    Fixture fx;
    intx_fixture(fx);
    REQUIRE(fx.filter.assign(kNic));
    fx.host.writes.clear();
    const FakeFunction before = fx.host.at(kNic);
    vlibos::test::Lcg rng{0xbad5eed};
    const uint8_t sizes[] = {1, 2, 4, 4, 4, 3};
    const uint8_t hot[] = {0x04, 0x06, 0x34, 0x40, 0x41, 0x50, 0x52, 0x54, 0x58, 0x5c, 0x60, 0x64, 0x68,
                           0x70, 0x72, 0x73, 0x74, 0x78, 0x7c, 0x80, 0x81};
    for (int step = 0; step < 50'000; ++step) {
        switch (rng.below(5)) {
        case 0: {
            uint32_t address = 0x8000'0000 | 0x1800u |
                               (rng.below(4) ? hot[rng.below(sizeof hot)] : static_cast<uint32_t>(rng.below(256)));
            if (rng.below(8) == 0)
                address = static_cast<uint32_t>(rng.next());
            (void)fx.filter.io_write(0xcf8, 4, address);
            break;
        }
        case 1:
        case 2: {
            uint32_t value = rng.below(3) ? static_cast<uint32_t>(rng.next() ^ (rng.next() << 16)) : 0xffff'ffffu;
            (void)fx.filter.io_write(static_cast<uint16_t>(0xcfc + rng.below(4)), sizes[rng.below(6)], value);
            break;
        }
        case 3: {
            auto port = static_cast<uint16_t>(0xcfc + rng.below(4));
            uint8_t size = sizes[rng.below(6)];
            auto r = fx.filter.io_read(port, size);
            uint32_t address = fx.filter.config_address();
            uint32_t offset = (address & 0xfc) + (port - 0xcfcu);
            if (r.ok() && (address & 0x80ff'ff00) == 0x8000'1800 && in_hidden_capability(offset, size))
                REQUIRE(r.value() == 0);
            break;
        }
        default:
            REQUIRE(fx.filter.msix_write(kNic, static_cast<uint32_t>(rng.below(kMsixEntries * 16)) & ~3u, 4,
                                         rng.next()).error() == PciError::NoMsix);
            break;
        }
        for (const HostWrite& w : fx.host.writes) {
            REQUIRE(w.bdf == kNic);
            REQUIRE_FALSE(w.msix);
            REQUIRE_FALSE(in_hidden_capability(w.offset, w.size));
        }
        fx.host.writes.clear();
        REQUIRE(fx.host.msix_reads == 0);
        REQUIRE(fx.host.msix_writes == 0);
    }
    const FakeFunction& after = fx.host.at(kNic);
    CHECK(std::memcmp(before.config + kMsi, after.config + kMsi, kMsiEnd - kMsi) == 0);
    CHECK(std::memcmp(before.config + kMsix, after.config + kMsix, kMsixEnd - kMsix) == 0);
    CHECK(before.msix == after.msix);
    CHECK(fx.filter.stats().hidden_writes > 100);
}
