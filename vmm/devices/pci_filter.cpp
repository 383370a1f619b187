// PCI configuration space filter. See pci_filter.hpp; section numbers are the PCI Local Bus
// Specification 3.0's, MSI address/data formats the Intel SDM Vol. 3A 11.11's.
#include "vmm/devices/pci_filter.hpp"

namespace vlibos::vmm::devices {

namespace {

// CONFIG_ADDRESS (3.2.2.3.2): enable (31), bus (23:16), device (15:11), function (10:8),
// register (7:2). Bits 30:24 are reserved and bits 1:0 read as 0.
constexpr uint32_t kAddressMask = 0x80ff'fffc;

constexpr uint32_t kAllOnes = 0xffff'ffff;
constexpr uint16_t kStatusCapabilities = 1u << 4;   // 6.2.3: a capability list is present
constexpr uint16_t kCommandDecode = 0x3;            // 6.2.2: I/O and memory space
constexpr uint16_t kCommandBusMaster = 1u << 2;     // 6.2.2
constexpr uint8_t kHeaderTypeMask = 0x7f;           // bit 7 is multi-function

// MSI capability (6.8.1): message control bits.
constexpr uint16_t kMsiEnable = 1u << 0;
constexpr uint16_t kMsiMultipleCapable = 7u << 1;
constexpr uint16_t kMsiMultipleEnable = 7u << 4;
constexpr uint16_t kMsiGuestControl = kMsiEnable | kMsiMultipleEnable;
constexpr uint16_t kMsi64Bit = 1u << 7;
constexpr uint16_t kMsiPerVectorMask = 1u << 8;

// MSI-X capability (6.8.2).
constexpr uint16_t kMsixEnable = 1u << 15;
constexpr uint16_t kMsixTableSizeMask = 0x7ff;
constexpr uint8_t kMsixBirMask = 0x7;
constexpr uint32_t kMsixEntrySize = 16;
constexpr uint32_t kMsixVectorControl = 12;
constexpr uint32_t kMsixMasked = 1u << 0;

// MSI address and data (SDM Vol. 3A 11.11.1, 11.11.2).
constexpr uint32_t kMsiAddressBase = 0xfee0'0000;
constexpr uint32_t kMsiAddressBaseMask = 0xfff0'0000;
constexpr unsigned kMsiDestinationShift = 12;
constexpr uint32_t kMsiDestModeLogical = 1u << 2;

// The host bridge shown at 00:00.0 when nothing real is assigned there: an Intel 82441FX
// (vendor 8086h, device 1237h), class 06/00/00 (host bridge), revision 02h. Linux's
// pci_sanity_check() accepts mechanism #1 when it finds a host bridge or an Intel device.
constexpr uint32_t kBridgeId = 0x1237'8086;
constexpr uint32_t kBridgeClass = 0x0600'0002;

uint32_t size_mask(uint8_t size) { return size >= 4 ? kAllOnes : (1u << (8u * size)) - 1u; }

bool valid_size(uint8_t size) { return size == 1 || size == 2 || size == 4; }

// Base address registers (6.2.5.1): bit 0 I/O space; memory type in bits 2:1, prefetchable bit 3.
bool is_memory_bar(uint32_t bar) { return (bar & 1u) == 0; }
bool is_64bit_bar(uint32_t bar) { return is_memory_bar(bar) && ((bar >> 1) & 3u) == 2; }
constexpr uint32_t kIoBarFlags = 0x3;
constexpr uint32_t kMemBarFlags = 0xf;
constexpr uint32_t kMemBarPrefetchable = 1u << 3;
constexpr uint32_t kMemBarType = 3u << 1;
constexpr uint32_t kMemBar32 = 0u << 1;
constexpr uint64_t kIoSpaceEnd = 0x1'0000;  // x86 port space

uint32_t msi_length(bool is64, bool per_vector_mask)
{
    return (is64 ? 0x0eu : 0x0au) + (per_vector_mask ? 0x0au : 0u);
}
constexpr uint32_t kMsixLength = 12;

} // namespace

const char* describe(PciError error)
{
    switch (error) {
    case PciError::BadPort: return "port outside the PCI configuration ports 0xCF8-0xCFF";
    case PciError::BadSize: return "PCI configuration access of an unsupported size";
    case PciError::Crossing: return "PCI configuration access crossing its dword";
    case PciError::BadBdf: return "PCI device above 31 or function above 7";
    case PciError::TooManyDevices: return "too many PCI functions assigned to one guest";
    case PciError::AlreadyAssigned: return "PCI function assigned twice";
    case PciError::NoDevice: return "no PCI function answers at that address";
    case PciError::NotEndpoint: return "PCI function is not a type 0 (endpoint) header";
    case PciError::CapabilityLoop: return "PCI capability list loops";
    case PciError::CapabilityOutOfRange: return "PCI capability pointer below 0x40 or capability ID 0xFF";
    case PciError::CapabilityTruncated: return "PCI MSI/MSI-X capability runs past the configuration space";
    case PciError::DuplicateCapability: return "PCI function has two MSI or two MSI-X capabilities";
    case PciError::BadMsixTable: return "MSI-X table not inside a memory BAR";
    case PciError::NotAssigned: return "PCI function not assigned to the guest";
    case PciError::NoMsix: return "PCI function has no MSI-X capability";
    case PciError::OutsideMsixTable: return "access outside the MSI-X table";
    case PciError::Unaligned: return "MSI-X table access not aligned to its size";
    }
    return "unknown PCI error";
}

void MsiPolicy::set_vectors(uint8_t first, uint8_t last, bool allowed)
{
    for (unsigned v = first; v <= last; ++v) {
        uint64_t bit = uint64_t{1} << (v & 63u);
        if (allowed)
            allowed_vectors[v >> 6] |= bit;
        else
            allowed_vectors[v >> 6] &= ~bit;
    }
}

PciFilter::PciFilter(PciHost& host, const GuestApics& apics, const MsiPolicy& policy)
    : host_(host), apics_(apics), policy_(policy)
{
}

PciFilter::Device* PciFilter::find(Bdf bdf)
{
    for (size_t i = 0; i < device_count_; ++i)
        if (devices_[i].bdf == bdf)
            return &devices_[i];
    return nullptr;
}

const PciFilter::Device* PciFilter::find(Bdf bdf) const
{
    for (size_t i = 0; i < device_count_; ++i)
        if (devices_[i].bdf == bdf)
            return &devices_[i];
    return nullptr;
}

bool PciFilter::is_host_bridge(Bdf bdf) const
{
    return host_bridge_ && bdf == Bdf{0, 0, 0} && find(bdf) == nullptr;
}

void PciFilter::note_refusal(uint64_t& counter, Bdf bdf, uint8_t offset)
{
    ++counter;
    stats_.last_refused = bdf;
    stats_.last_refused_offset = offset;
}

// --- assignment ---

Status<PciError> PciFilter::assign(Bdf bdf)
{
    if (!bdf.valid())
        return fail(PciError::BadBdf);
    if (find(bdf))
        return fail(PciError::AlreadyAssigned);
    if (device_count_ == kMaxDevices)
        return fail(PciError::TooManyDevices);
    if ((host_.config_read(bdf, kVendorId, 2) & 0xffff) == 0xffff)
        return fail(PciError::NoDevice);
    if ((host_.config_read(bdf, kHeaderType, 1) & kHeaderTypeMask) != 0)
        return fail(PciError::NotEndpoint);

    // Built in its slot (it is large: the MSI-X shadow); the slot counts only once assign() succeeds.
    Device& device = devices_[device_count_];
    device = Device{};
    device.bdf = bdf;
    device.intx_only = mode_ == InterruptMode::IntxOnly;
    TRY(walk_capabilities(device));
    device.interrupt_line = static_cast<uint8_t>(host_.config_read(bdf, kInterruptLine, 1));
    device.interrupt_pin = static_cast<uint8_t>(host_.config_read(bdf, kInterruptPin, 1));

    // BAR probe (6.2.5.1): with decoding off, write all ones, read the size mask, restore.
    // IntxOnly: bus mastering goes off here and stays off. An MSI the firmware left armed is a
    // DMA write the guest could never receive, and without an IOMMU DMA the guest's driver has not
    // set up goes wherever the firmware pointed it; the driver sets the bit again (passed through).
    uint32_t command = host_.config_read(bdf, kCommand, 2) & 0xffff;
    if (device.intx_only)
        command &= ~uint32_t{kCommandBusMaster};
    host_.config_write(bdf, kCommand, 2, command & ~uint32_t{kCommandDecode});
    for (unsigned i = 0; i < kBarCount; ++i) {
        auto reg = static_cast<uint8_t>(kBar0 + 4 * i);
        device.bar_original[i] = host_.config_read(bdf, reg, 4);
        host_.config_write(bdf, reg, 4, kAllOnes);
        device.bar_probe[i] = host_.config_read(bdf, reg, 4);
        host_.config_write(bdf, reg, 4, device.bar_original[i]);
    }
    host_.config_write(bdf, kCommand, 2, command);
    // IntxOnly never uses the table, so where it lies does not matter.
    if (device.msix && !device.intx_only)
        TRY(check_msix_table(device));

    // Nothing the firmware left armed may fire before the guest has programmed it through us.
    if (device.msi) {
        uint32_t control = host_.config_read(bdf, static_cast<uint8_t>(device.msi + 2), 2);
        host_.config_write(bdf, static_cast<uint8_t>(device.msi + 2), 2, control & ~uint32_t{kMsiGuestControl});
    }
    if (device.msix && device.intx_only) {
        // Off at the capability: the table lies in MMIO the monitor does not reach.
        auto control_reg = static_cast<uint8_t>(device.msix + 2);
        uint32_t control = host_.config_read(bdf, control_reg, 2);
        host_.config_write(bdf, control_reg, 2, control & ~uint32_t{kMsixEnable});
        device.msix_info = MsixTableInfo{};
    } else if (device.msix) {
        for (uint32_t i = 0; i < device.msix_info.entries; ++i) {
            uint32_t offset = i * kMsixEntrySize + kMsixVectorControl;
            host_.msix_write(bdf, offset, host_.msix_read(bdf, offset) | kMsixMasked);
        }
    }
    if (device.intx_only)
        hide_msi(device);
    ++device_count_;
    return {};
}

// IntxOnly: the dwords of the MSI and MSI-X capabilities (rounded up to whole dwords: the rest is
// reserved, and capabilities are dword aligned) and the list the guest walks without them. A
// capability whose header lies inside a hidden one is left out too.
void PciFilter::hide_msi(Device& device)
{
    auto hide = [&](uint8_t at, uint32_t length) {
        for (uint32_t reg = at; reg < at + length; reg += 4)
            device.hidden |= uint64_t{1} << ((reg - kFirstCapability) / 4);
    };
    if (device.msi)
        hide(device.msi, msi_length(device.msi_64bit, device.msi_per_vector_mask));
    if (device.msix)
        hide(device.msix, kMsixLength);
    for (size_t i = 0; i < device.cap_count; ++i)
        if (!hidden(device, device.caps[i]))
            device.visible[device.visible_count++] = device.caps[i];
}

bool PciFilter::hidden(const Device& device, uint8_t reg) const
{
    return reg >= kFirstCapability && ((device.hidden >> ((reg - kFirstCapability) / 4)) & 1u);
}

// IntxOnly: dword `reg` as the guest sees it with the hidden capabilities taken out of the list.
uint32_t PciFilter::visible_view(const Device& device, uint8_t reg, uint32_t dword) const
{
    if (hidden(device, reg))
        return 0;
    if (reg == kCommand && device.visible_count == 0)
        return dword & ~(uint32_t{kStatusCapabilities} << 16);
    if (reg == kCapabilityPointer)
        return (dword & ~0xffu) | (device.visible_count ? device.visible[0] : 0u);
    for (size_t i = 0; i < device.visible_count; ++i) {
        if (device.visible[i] == reg) {
            uint32_t next = i + 1 < device.visible_count ? device.visible[i + 1] : 0u;
            return (dword & ~0xff00u) | (next << 8);
        }
    }
    return dword;
}

// --- BARs (6.2.5.1) ---

// The size is the two's complement of the probed address bits; the type bits are read-only, so a
// probe that changes them, or sizes that are not a power of two or a base not aligned to its size
// (which hardware cannot produce) mean the probe cannot be trusted.
PciFilter::BarInfo PciFilter::bar_info(const Device& device, unsigned index) const
{
    if (index >= kBarCount)
        return {};
    // The high half of a 64-bit BAR: BARs are decoded from BAR0 up, each 64-bit one taking two.
    for (unsigned i = 0; i < index; ++i)
        if (is_64bit_bar(device.bar_original[i]))
            if (++i == index)
                return {};
    uint32_t original = device.bar_original[index];
    uint32_t probe = device.bar_probe[index];
    if (probe == 0)
        return {};  // unimplemented
    uint32_t flags = is_memory_bar(original) ? kMemBarFlags : kIoBarFlags;
    if ((probe & ~flags) == 0 && !is_64bit_bar(original))
        return {};  // no address bits answer: nothing to decode
    if ((probe ^ original) & flags)
        return {};
    BarInfo info;
    uint64_t mask;
    if (!is_memory_bar(original)) {
        // Decoders of 16 bits only read the upper address bits as 0 (6.2.5.1).
        uint32_t low = probe & ~kIoBarFlags;
        if ((low & 0xffff'0000) == 0)
            low |= 0xffff'0000;
        mask = 0xffff'ffff'0000'0000ull | low;
        info.io = true;
        info.base = original & ~kIoBarFlags;
    } else {
        info.prefetchable = (original & kMemBarPrefetchable) != 0;
        info.base = original & ~kMemBarFlags;
        mask = probe & ~kMemBarFlags;
        if (is_64bit_bar(original)) {
            if (index + 1u >= kBarCount)
                return {};
            info.is64 = true;
            info.base |= uint64_t{device.bar_original[index + 1]} << 32;
            mask |= uint64_t{device.bar_probe[index + 1]} << 32;
        } else if ((original & kMemBarType) == kMemBar32) {
            mask |= 0xffff'ffff'0000'0000ull;
        } else {
            return {};  // reserved types (01b, once "below 1 MiB", and 11b)
        }
    }
    uint64_t size = ~mask + 1;
    if (mask == 0 || (size & (size - 1)) != 0 || (info.base & (size - 1)) != 0)
        return {};
    if (info.io && info.base + size > kIoSpaceEnd)
        return {};
    info.present = true;
    info.size = size;
    return info;
}

PciFilter::BarInfo PciFilter::bar(Bdf bdf, unsigned index) const
{
    const Device* device = find(bdf);
    return device ? bar_info(*device, index) : BarInfo{};
}

uint8_t PciFilter::interrupt_pin(Bdf bdf) const
{
    const Device* device = find(bdf);
    return device ? device->interrupt_pin : 0;
}

uint8_t PciFilter::interrupt_line(Bdf bdf) const
{
    const Device* device = find(bdf);
    return device ? device->interrupt_line : 0;
}

// 6.7: a linked list from the capability pointer (0x34); the low two bits of every pointer are
// reserved and masked. Each capability is a dword-aligned offset at or after 0x40, so a list has
// at most 48 entries; a revisited offset is a loop.
Status<PciError> PciFilter::walk_capabilities(Device& device)
{
    Bdf bdf = device.bdf;
    if (!(host_.config_read(bdf, kStatus, 2) & kStatusCapabilities))
        return {};
    uint64_t seen = 0;  // one bit per dword from 0x40
    uint32_t pointer = host_.config_read(bdf, kCapabilityPointer, 1) & 0xfc;
    for (unsigned steps = 0; pointer != 0; ++steps) {
        if (pointer < kFirstCapability || steps >= kMaxCapabilities)
            return fail(PciError::CapabilityOutOfRange);
        uint64_t bit = uint64_t{1} << ((pointer - kFirstCapability) / 4);
        if (seen & bit)
            return fail(PciError::CapabilityLoop);
        seen |= bit;
        auto offset = static_cast<uint8_t>(pointer);
        uint32_t header = host_.config_read(bdf, offset, 2);
        uint32_t id = header & 0xff;
        if (id == 0xff)
            return fail(PciError::CapabilityOutOfRange);  // all ones: nothing answers
        device.caps[device.cap_count++] = offset;
        if (id == kCapMsi) {
            if (device.msi)
                return fail(PciError::DuplicateCapability);
            uint32_t control = host_.config_read(bdf, static_cast<uint8_t>(offset + 2), 2);
            device.msi_64bit = (control & kMsi64Bit) != 0;
            device.msi_per_vector_mask = (control & kMsiPerVectorMask) != 0;
            device.msi_capable = static_cast<uint8_t>((control & kMsiMultipleCapable) >> 1);
            if (pointer + msi_length(device.msi_64bit, device.msi_per_vector_mask) > 0x100)
                return fail(PciError::CapabilityTruncated);
            device.msi = offset;
        } else if (id == kCapMsix) {
            if (device.msix)
                return fail(PciError::DuplicateCapability);
            if (pointer + kMsixLength > 0x100)
                return fail(PciError::CapabilityTruncated);
            uint32_t control = host_.config_read(bdf, static_cast<uint8_t>(offset + 2), 2);
            uint32_t table = host_.config_read(bdf, static_cast<uint8_t>(offset + 4), 4);
            device.msix = offset;
            device.msix_info.present = true;
            device.msix_info.bar = static_cast<uint8_t>(table & kMsixBirMask);
            device.msix_info.offset = table & ~uint32_t{kMsixBirMask};
            device.msix_info.entries = (control & kMsixTableSizeMask) + 1;
        }
        pointer = (header >> 8) & 0xfc;
    }
    return {};
}

// The MSI-X table must lie inside a memory BAR (6.8.2.4): the VMM traps it there.
Status<PciError> PciFilter::check_msix_table(const Device& device) const
{
    const MsixTableInfo& t = device.msix_info;
    BarInfo bar = bar_info(device, t.bar);
    if (!bar.present || bar.io || uint64_t{t.offset} + uint64_t{t.entries} * kMsixEntrySize > bar.size)
        return fail(PciError::BadMsixTable);
    return {};
}

// --- port I/O (mechanism #1) ---

Result<uint32_t, PciError> PciFilter::io_read(uint16_t port, uint8_t size)
{
    if (!claims_port(port))
        return fail(PciError::BadPort);
    if (!valid_size(size))
        return fail(PciError::BadSize);
    if (uint32_t{port} + size > kConfigData + 4u || (port < kConfigData && uint32_t{port} + size > kConfigData))
        return fail(PciError::Crossing);
    if (port < kConfigData) {
        if (port == kConfigAddress && size == 4)
            return address_;
        ++stats_.other_io;  // 3.2.2.3.2: not CONFIG_ADDRESS; an ordinary (empty) I/O port
        return size_mask(size);
    }
    if (!(address_ & kConfigEnable)) {
        ++stats_.other_io;
        return size_mask(size);
    }
    Bdf bdf{static_cast<uint8_t>(address_ >> 16), static_cast<uint8_t>((address_ >> 11) & 0x1f),
            static_cast<uint8_t>((address_ >> 8) & 7u)};
    auto offset = static_cast<uint8_t>((address_ & 0xfc) + static_cast<uint32_t>(port - kConfigData));
    return config_read(bdf, offset, size);
}

Status<PciError> PciFilter::io_write(uint16_t port, uint8_t size, uint32_t value)
{
    if (!claims_port(port))
        return fail(PciError::BadPort);
    if (!valid_size(size))
        return fail(PciError::BadSize);
    if (uint32_t{port} + size > kConfigData + 4u || (port < kConfigData && uint32_t{port} + size > kConfigData))
        return fail(PciError::Crossing);
    if (port < kConfigData) {
        if (port == kConfigAddress && size == 4)
            address_ = value & kAddressMask;
        else
            ++stats_.other_io;  // 0xCF9 (reset control) and friends never reach the machine
        return {};
    }
    if (!(address_ & kConfigEnable)) {
        ++stats_.other_io;
        return {};
    }
    Bdf bdf{static_cast<uint8_t>(address_ >> 16), static_cast<uint8_t>((address_ >> 11) & 0x1f),
            static_cast<uint8_t>((address_ >> 8) & 7u)};
    auto offset = static_cast<uint8_t>((address_ & 0xfc) + static_cast<uint32_t>(port - kConfigData));
    return config_write(bdf, offset, size, value);
}

// --- configuration space ---

Result<uint32_t, PciError> PciFilter::config_read(Bdf bdf, uint8_t offset, uint8_t size)
{
    if (!valid_size(size))
        return fail(PciError::BadSize);
    if ((offset & 3u) + size > 4)
        return fail(PciError::Crossing);
    if (!bdf.valid())
        return fail(PciError::BadBdf);
    ++stats_.config_reads;
    auto reg = static_cast<uint8_t>(offset & 0xfc);
    unsigned shift = 8u * (offset & 3u);
    uint32_t dword;
    if (Device* device = find(bdf)) {
        dword = read_dword(*device, reg);
    } else if (is_host_bridge(bdf)) {
        dword = reg == 0x00 ? kBridgeId : reg == 0x08 ? kBridgeClass : 0;
    } else {
        ++stats_.unassigned_reads;
        dword = kAllOnes;  // 6.1: no function answers, the master aborts and reads all ones
    }
    return (dword >> shift) & size_mask(size);
}

Status<PciError> PciFilter::config_write(Bdf bdf, uint8_t offset, uint8_t size, uint32_t value)
{
    if (!valid_size(size))
        return fail(PciError::BadSize);
    if ((offset & 3u) + size > 4)
        return fail(PciError::Crossing);
    if (!bdf.valid())
        return fail(PciError::BadBdf);
    ++stats_.config_writes;
    Device* device = find(bdf);
    if (!device) {
        if (is_host_bridge(bdf))
            ++stats_.bridge_writes;
        else
            ++stats_.unassigned_writes;
        return {};
    }
    unsigned shift = 8u * (offset & 3u);
    write_dword(*device, static_cast<uint8_t>(offset & 0xfc), size_mask(size) << shift,
                (value & size_mask(size)) << shift, offset, size);
    return {};
}

uint8_t PciFilter::msi_data_offset(const Device& device) const
{
    return static_cast<uint8_t>(device.msi + (device.msi_64bit ? 0x0c : 0x08));
}

// The guest's view of one configuration dword of an assigned function.
uint32_t PciFilter::read_dword(Device& device, uint8_t reg)
{
    if (reg >= kBar0 && reg < kBar0 + 4 * kBarCount) {
        unsigned i = static_cast<unsigned>(reg - kBar0) / 4u;
        return device.bar_sizing[i] ? device.bar_probe[i] : device.bar_original[i];
    }
    if (reg == kRomBar)
        return 0;  // no expansion ROM
    if (device.intx_only && hidden(device, reg))
        return 0;  // never read: MSI-X pending bits and the like are none of the guest's business
    uint32_t dword = host_.config_read(device.bdf, reg, 4);
    if (device.intx_only)
        return visible_view(device, reg, dword);
    if (device.msi) {
        const MsiMessage& m = device.msi_message;
        if (reg == device.msi) {
            uint32_t mask = uint32_t{kMsiGuestControl} << 16;
            dword = (dword & ~mask) | ((uint32_t{device.msi_control} << 16) & mask);
        } else if (reg == device.msi + 4) {
            dword = m.address;
        } else if (device.msi_64bit && reg == device.msi + 8) {
            dword = m.upper;
        } else if (reg == msi_data_offset(device)) {
            dword = (dword & 0xffff'0000) | (m.data & 0xffff);
        }
    }
    return dword;
}

// A write of the bytes in `byte_mask` (value already shifted into place) to dword `reg`;
// `offset`/`size` are the guest's own access, used when it passes through unchanged.
void PciFilter::write_dword(Device& device, uint8_t reg, uint32_t byte_mask, uint32_t value, uint8_t offset,
                            uint8_t size)
{
    if (reg >= kBar0 && reg < kBar0 + 4 * kBarCount) {
        write_bar(device, static_cast<unsigned>(reg - kBar0) / 4u, byte_mask, value);
        return;
    }
    if (reg == kRomBar) {
        note_refusal(stats_.rom_dropped, device.bdf, reg);
        return;
    }
    if (device.intx_only && hidden(device, reg)) {
        note_refusal(stats_.hidden_writes, device.bdf, reg);
        return;
    }
    if (device.msi && reg >= device.msi && reg <= msi_data_offset(device)) {
        write_msi(device, reg, byte_mask, value);
        return;
    }
    host_.config_write(device.bdf, offset, size, (value >> (8u * (offset & 3u))) & size_mask(size));
}

void PciFilter::write_bar(Device& device, unsigned index, uint32_t byte_mask, uint32_t value)
{
    auto reg = static_cast<uint8_t>(kBar0 + 4 * index);
    if (byte_mask != kAllOnes) {
        note_refusal(stats_.bar_refused, device.bdf, reg);  // BARs are written as dwords only
        return;
    }
    if (value == kAllOnes) {
        device.bar_sizing[index] = true;  // answered from the probe; the device never sees it
    } else if (value == device.bar_original[index]) {
        device.bar_sizing[index] = false;
        host_.config_write(device.bdf, reg, 4, value);  // puts it back after a device reset
    } else {
        note_refusal(stats_.bar_refused, device.bdf, reg);
    }
}

// --- MSI (6.8.1) ---

// The guest vCPU an MSI address names, as a host APIC ID, or false if it names no single vCPU
// of this guest (broadcast, a foreign APIC ID, a logical destination nobody matches).
bool PciFilter::host_address(uint32_t guest_address, uint32_t& host) const
{
    if ((guest_address & kMsiAddressBaseMask) != kMsiAddressBase)
        return false;
    InterruptMessage m;
    m.destination = static_cast<uint8_t>(guest_address >> kMsiDestinationShift);
    m.destination_mode = (guest_address & kMsiDestModeLogical) ? DestinationMode::Logical : DestinationMode::Physical;
    if (m.destination == kBroadcast)
        return false;
    Route r = resolve_destinations(m, apics_, kNoSource);
    if (r.verdict != RouteVerdict::Deliver)
        return false;
    auto vcpu = static_cast<size_t>(__builtin_ctzll(r.targets));  // several matches: the first
    if (vcpu >= policy_.vcpu_count || policy_.host_apic_id[vcpu] == kBroadcast)
        return false;
    host = kMsiAddressBase | (uint32_t{policy_.host_apic_id[vcpu]} << kMsiDestinationShift);
    return true;
}

bool PciFilter::address_ok(uint32_t address) const
{
    uint32_t host = 0;
    return host_address(address, host);
}

// `vectors` messages (a power of two): the device puts the message number in the low data bits.
bool PciFilter::data_ok(uint32_t data, unsigned vectors) const
{
    auto mode = static_cast<DeliveryMode>((data >> 8) & 7u);
    if (mode != DeliveryMode::Fixed && mode != DeliveryMode::LowestPriority)
        return false;
    uint32_t base = (data & 0xff) & ~(vectors - 1);
    for (uint32_t v = base; v < base + vectors; ++v)
        if (!policy_.allows(static_cast<uint8_t>(v)))
            return false;
    return true;
}

// log2 of the messages the device is given: the guest's multiple message enable, but never more
// than the device is capable of (6.8.1.3: more is undefined; 110b and 111b are reserved).
unsigned PciFilter::msi_enabled_log2(const Device& device) const
{
    unsigned mme = (device.msi_control & kMsiMultipleEnable) >> 4;
    unsigned capable = device.msi_capable > 5 ? 5 : device.msi_capable;
    return mme < capable ? mme : capable;
}

unsigned PciFilter::msi_vectors(const Device& device) const { return 1u << msi_enabled_log2(device); }

bool PciFilter::msi_ready(const Device& device) const
{
    const MsiMessage& m = device.msi_message;
    return m.address_set && m.data_set && m.upper == 0 && address_ok(m.address) &&
           data_ok(m.data, msi_vectors(device));
}

void PciFilter::write_msi(Device& device, uint8_t reg, uint32_t byte_mask, uint32_t value)
{
    MsiMessage& m = device.msi_message;
    if (reg == device.msi) {
        // Bytes 0-1 are the read-only capability ID and next pointer; 2-3 message control.
        if (!(byte_mask & 0xffff'0000))
            return;
        uint32_t control = (((uint32_t{device.msi_control} << 16) & ~byte_mask) | (value & byte_mask)) >> 16;
        device.msi_control = static_cast<uint16_t>(control & kMsiGuestControl);
    } else if (reg == device.msi + 4) {
        uint32_t address = (m.address & ~byte_mask) | (value & byte_mask);
        if (!address_ok(address)) {
            note_refusal(stats_.msi_refused, device.bdf, reg);
            return;
        }
        m.address = address;
        m.address_set = true;
    } else if (device.msi_64bit && reg == device.msi + 8) {
        uint32_t upper = (m.upper & ~byte_mask) | (value & byte_mask);
        if (upper != 0) {
            note_refusal(stats_.msi_refused, device.bdf, reg);  // 11.11.1: MSIs go to 0x00000000FEExxxxx
            return;
        }
        m.upper = 0;
    } else if (reg == msi_data_offset(device)) {
        // Bytes 2-3 (reserved, or extended message data the guest is not given) are dropped.
        if (!(byte_mask & 0xffff))
            return;
        uint32_t data = (m.data & ~byte_mask & 0xffff) | (value & byte_mask & 0xffff);
        if (!data_ok(data, 1)) {
            note_refusal(stats_.msi_refused, device.bdf, reg);
            return;
        }
        m.data = data;
        m.data_set = true;
    } else {
        return;  // not reached: write_dword() sends only the dwords above
    }
    // Enabled by the guest but not deliverable as it stands: off in the device, and counted.
    if ((device.msi_control & kMsiEnable) && !msi_ready(device))
        note_refusal(stats_.msi_refused, device.bdf, reg);
    sync_msi(device);
}

// Programs the device with the guest's message translated to the host CPU, enabled only if the
// guest enabled it and it is valid. Disabling comes before changing the message, enabling after.
void PciFilter::sync_msi(Device& device)
{
    Bdf bdf = device.bdf;
    const MsiMessage& m = device.msi_message;
    bool ready = msi_ready(device);
    bool enable = ready && (device.msi_control & kMsiEnable);
    auto control_reg = static_cast<uint8_t>(device.msi + 2);
    uint32_t control = host_.config_read(bdf, control_reg, 2) & ~uint32_t{kMsiGuestControl};
    control |= msi_enabled_log2(device) << 4;
    if (!enable)
        host_.config_write(bdf, control_reg, 2, control);
    if (ready) {
        uint32_t host = 0;
        host_address(m.address, host);
        host_.config_write(bdf, static_cast<uint8_t>(device.msi + 4), 4, host);
        if (device.msi_64bit)
            host_.config_write(bdf, static_cast<uint8_t>(device.msi + 8), 4, 0);
        // Fixed delivery, edge-triggered: only the vector is the guest's.
        host_.config_write(bdf, msi_data_offset(device), 2, m.data & 0xff);
    }
    if (enable)
        host_.config_write(bdf, control_reg, 2, control | kMsiEnable);
}

// --- MSI-X (6.8.2) ---

PciFilter::MsixTableInfo PciFilter::msix_table(Bdf bdf) const
{
    const Device* device = find(bdf);
    return device ? device->msix_info : MsixTableInfo{};  // IntxOnly: cleared at assign()
}

// An MSI-X table access the guest may make: an assigned function with a table the filter
// shadows, 4 or 8 bytes, aligned to its size, inside the table.
Status<PciError> PciFilter::check_msix_access(const Device* device, uint32_t offset, uint8_t size) const
{
    if (!device)
        return fail(PciError::NotAssigned);
    if (!device->msix || device->intx_only)
        return fail(PciError::NoMsix);
    if (size != 4 && size != 8)
        return fail(PciError::BadSize);
    if (offset % size)
        return fail(PciError::Unaligned);
    if (uint64_t{offset} + size > uint64_t{device->msix_info.entries} * kMsixEntrySize)
        return fail(PciError::OutsideMsixTable);
    return {};
}

Result<uint64_t, PciError> PciFilter::msix_read(Bdf bdf, uint32_t offset, uint8_t size)
{
    const Device* device = find(bdf);
    TRY(check_msix_access(device, offset, size));
    uint64_t result = 0;
    for (unsigned part = 0; part < size / 4u; ++part) {
        uint32_t at = offset + 4 * part;
        size_t index = at / kMsixEntrySize;
        uint32_t field = at % kMsixEntrySize;
        uint32_t dword;
        if (index >= kMaxMsixEntries) {
            dword = field == kMsixVectorControl ? kMsixMasked : 0;
        } else {
            const MsixEntry& e = device->msix_entries[index];
            dword = field == 0 ? e.message.address : field == 4 ? e.message.upper
                  : field == 8 ? e.message.data : (e.masked ? kMsixMasked : 0);
        }
        result |= uint64_t{dword} << (32 * part);
    }
    return result;
}

Status<PciError> PciFilter::msix_write(Bdf bdf, uint32_t offset, uint8_t size, uint64_t value)
{
    Device* device = find(bdf);
    TRY(check_msix_access(device, offset, size));
    for (unsigned part = 0; part < size / 4u; ++part) {
        uint32_t at = offset + 4 * part;
        auto dword = static_cast<uint32_t>(value >> (32 * part));
        size_t index = at / kMsixEntrySize;
        uint32_t field = at % kMsixEntrySize;
        if (index >= kMaxMsixEntries) {
            note_refusal(stats_.msix_unshadowed, bdf, device->msix);  // stays masked in the device
            continue;
        }
        MsixEntry& e = device->msix_entries[index];
        auto cap = device->msix;
        if (field == 0) {
            if (!address_ok(dword)) {
                note_refusal(stats_.msi_refused, bdf, cap);
                continue;
            }
            e.message.address = dword;
            e.message.address_set = true;
        } else if (field == 4) {
            if (dword != 0) {
                note_refusal(stats_.msi_refused, bdf, cap);
                continue;
            }
        } else if (field == 8) {
            if (!data_ok(dword, 1)) {
                note_refusal(stats_.msi_refused, bdf, cap);
                continue;
            }
            e.message.data = dword & 0xffff;  // 6.8.2.7: bits 31:16 are reserved here
            e.message.data_set = true;
        } else {
            e.masked = (dword & kMsixMasked) != 0;
            bool ready = e.message.address_set && e.message.data_set && address_ok(e.message.address);
            if (!e.masked && !ready)
                note_refusal(stats_.msi_refused, bdf, cap);
        }
        sync_msix(*device, index);
    }
    return {};
}

void PciFilter::sync_msix(Device& device, size_t index)
{
    Bdf bdf = device.bdf;
    const MsixEntry& e = device.msix_entries[index];
    bool ready = e.message.address_set && e.message.data_set && address_ok(e.message.address) &&
                 data_ok(e.message.data, 1);
    bool live = ready && !e.masked;
    auto base = static_cast<uint32_t>(index * kMsixEntrySize);
    uint32_t control = host_.msix_read(bdf, base + kMsixVectorControl);  // keeps reserved bits
    if (!live)
        host_.msix_write(bdf, base + kMsixVectorControl, control | kMsixMasked);
    if (ready) {
        uint32_t host = 0;
        host_address(e.message.address, host);
        host_.msix_write(bdf, base + 0, host);
        host_.msix_write(bdf, base + 4, 0);
        host_.msix_write(bdf, base + 8, e.message.data & 0xff);
    }
    if (live)
        host_.msix_write(bdf, base + kMsixVectorControl, control & ~kMsixMasked);
}

} // namespace vlibos::vmm::devices
