#include "arch/x86_64/ioapic.hpp"

#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/irq_lock.hpp"

namespace vlibos::x86 {

namespace {

Spinlock g_lock;


// MPS INTI flags in MADT overrides (ACPI 6.4, Table 5.50): polarity bits 1:0, trigger bits 3:2;
// 00 = "conforms to the bus", which for ISA is active high, edge.
constexpr uint16_t kPolarityMask = 0x3, kPolarityLow = 0x3;
constexpr uint16_t kTriggerMask = 0xc, kTriggerLevel = 0xc;

} // namespace

Ioapic::Chip Ioapic::chips_[Ioapic::kMaxChips];
unsigned Ioapic::chip_count_ = 0;

void Ioapic::init(const acpi::Platform& platform)
{
    chip_count_ = 0;
    for (size_t i = 0; i < platform.ioapic_count && chip_count_ < kMaxChips; ++i) {
        Chip chip{platform.ioapics[i].address, platform.ioapics[i].gsi_base, 0};
        // Version register bits 23:16: the highest redirection entry (3.2.2).
        chip.pins = ((read(chip, kRegVersion) >> 16) & 0xff) + 1;
        chips_[chip_count_++] = chip;
    }
}

const Ioapic::Chip* Ioapic::chip_of(uint32_t gsi)
{
    for (unsigned i = 0; i < chip_count_; ++i)
        if (gsi >= chips_[i].gsi_base && gsi - chips_[i].gsi_base < chips_[i].pins)
            return &chips_[i];
    return nullptr;
}

uint32_t Ioapic::read(const Chip& chip, uint8_t reg)
{
    *reinterpret_cast<volatile uint32_t*>(chip.base + kRegSelect) = reg;
    return *reinterpret_cast<volatile uint32_t*>(chip.base + kWindow);
}

void Ioapic::write(const Chip& chip, uint8_t reg, uint32_t value)
{
    *reinterpret_cast<volatile uint32_t*>(chip.base + kRegSelect) = reg;
    *reinterpret_cast<volatile uint32_t*>(chip.base + kWindow) = value;
}

bool Ioapic::has_gsi(uint32_t gsi) { return chip_of(gsi) != nullptr; }

bool Ioapic::route(uint32_t gsi, const Route& r, bool masked)
{
    const Chip* chip = chip_of(gsi);
    if (chip == nullptr)
        return false;
    auto reg = static_cast<uint8_t>(kRegRedirection + 2 * (gsi - chip->gsi_base));
    uint64_t entry = uint64_t{r.vector} | (r.level ? kLevel : 0) | (r.active_low ? kActiveLow : 0) |
                     (masked ? kMasked : 0) | (uint64_t{r.apic_id} << kDestinationShift);
    IrqSpinlockGuard guard(g_lock);
    // Masked first, destination next, the low half (unmasking) last: the pin never fires with a
    // half-written entry.
    write(*chip, reg, static_cast<uint32_t>(read(*chip, reg) | kMasked));
    write(*chip, static_cast<uint8_t>(reg + 1), static_cast<uint32_t>(entry >> 32));
    write(*chip, reg, static_cast<uint32_t>(entry));
    return true;
}

// Read-modify-write of the low half of `gsi`'s entry (vector, modes, mask).
void Ioapic::modify_low(uint32_t gsi, uint32_t clear, uint32_t set)
{
    const Chip* chip = chip_of(gsi);
    if (chip == nullptr)
        return;
    auto reg = static_cast<uint8_t>(kRegRedirection + 2 * (gsi - chip->gsi_base));
    IrqSpinlockGuard guard(g_lock);
    write(*chip, reg, (read(*chip, reg) & ~clear) | set);
}

void Ioapic::mask(uint32_t gsi) { modify_low(gsi, 0, static_cast<uint32_t>(kMasked)); }

void Ioapic::unmask(uint32_t gsi) { modify_low(gsi, static_cast<uint32_t>(kMasked), 0); }

uint64_t Ioapic::entry(uint32_t gsi)
{
    const Chip* chip = chip_of(gsi);
    if (chip == nullptr)
        return 0;
    auto reg = static_cast<uint8_t>(kRegRedirection + 2 * (gsi - chip->gsi_base));
    IrqSpinlockGuard guard(g_lock);
    return read(*chip, reg) | (uint64_t{read(*chip, static_cast<uint8_t>(reg + 1))} << 32);
}

Ioapic::IsaIrq Ioapic::isa_irq(const acpi::Platform& platform, uint8_t irq)
{
    IsaIrq out{irq, false, false, false};
    for (size_t i = 0; i < platform.override_count; ++i) {
        const acpi::InterruptOverride& o = platform.overrides[i];
        if (o.bus != 0 || o.source_irq != irq)
            continue;
        out.gsi = o.gsi;
        out.active_low = (o.flags & kPolarityMask) == kPolarityLow;
        out.level = (o.flags & kTriggerMask) == kTriggerLevel;
        out.overridden = true;
    }
    return out;
}

} // namespace vlibos::x86
