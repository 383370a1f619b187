#include "arch/x86_64/lapic.hpp"

#include "arch/x86_64/cpu.hpp"

namespace vlibos::x86 {

namespace {

// IA32_APIC_BASE fields (SDM Vol. 3 §11.4.4, Figure 11-5).
constexpr uint64_t kApicBaseGlobalEnable = 1ull << 11;
constexpr uint64_t kApicBaseX2ApicEnable = 1ull << 10;
constexpr uint64_t kApicBaseAddressMask = 0x000ffffffffff000ull;

constexpr uint32_t kSvrSoftwareEnable = 1u << 8;
constexpr uint32_t kLvtMasked = 1u << 16;
constexpr uint32_t kLvtTimerTscDeadline = 2u << 17;  // timer mode bits 18:17 = 10b
constexpr uint32_t kTimerDivideBy1 = 0xb;            // divide configuration 1011b

// ICR fields (SDM Vol. 3 §11.6.1, Figure 11-12).
constexpr uint32_t kIcrDeliveryInit = 5u << 8;
constexpr uint32_t kIcrDeliveryStartup = 6u << 8;
constexpr uint32_t kIcrLevelAssert = 1u << 14;
constexpr uint32_t kIcrDeliveryPending = 1u << 12;

constexpr uint32_t kX2ApicMsrBase = 0x800;

} // namespace

void Lapic::select_mode(bool force_xapic)
{
    bool has_x2apic = (cpuid(1).ecx & feature::kLeaf1EcxX2Apic) != 0;
    mode_ = (has_x2apic && !force_xapic) ? Mode::X2Apic : Mode::XApic;
    mmio_base_ = read_msr(Msr::ApicBase) & kApicBaseAddressMask;
}

uint64_t Lapic::mmio_base() { return mmio_base_; }

void Lapic::enable_on_this_cpu(uint8_t spurious_vector)
{
    uint64_t base = read_msr(Msr::ApicBase) | kApicBaseGlobalEnable;
    if (mode_ == Mode::X2Apic)
        base |= kApicBaseX2ApicEnable;  // xAPIC -> x2APIC is a legal transition (SDM §11.12.5)
    write_msr(Msr::ApicBase, base);

    write(Register::TaskPriority, 0);
    write(Register::LvtTimer, kLvtMasked);
    write(Register::LvtError, kLvtMasked);
    write(Register::SpuriousVector, kSvrSoftwareEnable | spurious_vector);
}

uint32_t Lapic::read(Register reg)
{
    auto offset = static_cast<uint32_t>(reg);
    if (mode_ == Mode::X2Apic)
        return static_cast<uint32_t>(read_msr_raw(kX2ApicMsrBase + (offset >> 4)));
    return *reinterpret_cast<volatile uint32_t*>(mmio_base_ + offset);
}

void Lapic::write(Register reg, uint32_t value)
{
    auto offset = static_cast<uint32_t>(reg);
    if (mode_ == Mode::X2Apic) {
        write_msr_raw(kX2ApicMsrBase + (offset >> 4), value);
        return;
    }
    *reinterpret_cast<volatile uint32_t*>(mmio_base_ + offset) = value;
}

uint32_t Lapic::id()
{
    uint32_t raw = read(Register::Id);
    return mode_ == Mode::X2Apic ? raw : raw >> 24;  // xAPIC ID is bits 31:24
}

void Lapic::end_of_interrupt() { write(Register::EndOfInterrupt, 0); }

void Lapic::write_icr(uint32_t apic_id, uint32_t low)
{
    if (mode_ == Mode::X2Apic) {
        // One 64-bit write, destination in bits 63:32 (SDM §11.12.9).
        write_msr_raw(kX2ApicMsrBase + (static_cast<uint32_t>(Register::InterruptCommandLow) >> 4),
                      (static_cast<uint64_t>(apic_id) << 32) | low);
        return;
    }
    write(Register::InterruptCommandHigh, apic_id << 24);
    write(Register::InterruptCommandLow, low);
}

bool Lapic::wait_for_ipi_delivery()
{
    if (mode_ == Mode::X2Apic)
        return true;  // x2APIC has no delivery-status bit to poll
    for (unsigned spins = 0; spins < 1000000; ++spins) {
        if ((read(Register::InterruptCommandLow) & kIcrDeliveryPending) == 0)
            return true;
        cpu_relax();
    }
    return false;
}

void Lapic::send_init(uint32_t apic_id) { write_icr(apic_id, kIcrDeliveryInit | kIcrLevelAssert); }

void Lapic::send_startup(uint32_t apic_id, uint8_t page_vector)
{
    write_icr(apic_id, kIcrDeliveryStartup | kIcrLevelAssert | page_vector);
}

void Lapic::send_fixed(uint32_t apic_id, uint8_t vector) { write_icr(apic_id, kIcrLevelAssert | vector); }

bool Lapic::has_tsc_deadline() { return (cpuid(1).ecx & feature::kLeaf1EcxTscDeadline) != 0; }

void Lapic::arm_tsc_deadline(uint8_t vector, uint64_t tsc_deadline)
{
    write(Register::LvtTimer, kLvtTimerTscDeadline | vector);
    // The LVT write must be ordered before the deadline write (SDM §11.5.4.1).
    memory_fence();
    write_msr(Msr::TscDeadline, tsc_deadline);
}

void Lapic::arm_one_shot(uint8_t vector, uint32_t initial_count)
{
    write(Register::TimerDivide, kTimerDivideBy1);
    write(Register::LvtTimer, vector);  // mode bits 00b: one-shot
    write(Register::TimerInitialCount, initial_count);
}

uint32_t Lapic::timer_current_count() { return read(Register::TimerCurrentCount); }

void Lapic::stop_timer()
{
    write(Register::LvtTimer, kLvtMasked);
    write(Register::TimerInitialCount, 0);
    if (has_tsc_deadline())
        write_msr(Msr::TscDeadline, 0);
}

} // namespace vlibos::x86
