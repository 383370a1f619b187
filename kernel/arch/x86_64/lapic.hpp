// Local APIC in xAPIC (MMIO) or x2APIC (MSR) mode (SDM Vol. 3 Chapter 11).
// The boot CPU picks the mode once; every CPU then uses the same one.
#pragma once

#include <stdint.h>

namespace vlibos::x86 {

class Lapic {
public:
    enum class Mode { XApic, X2Apic };

    // Picks the mode: x2APIC when CPUID says so, unless `force_xapic`. Call on the boot CPU
    // before any other Lapic call; `mmio_base` comes from IA32_APIC_BASE.
    static void select_mode(bool force_xapic);
    static Mode mode() { return mode_; }
    static uint64_t mmio_base();

    // Software-enables this CPU's LAPIC in the selected mode, with the spurious vector set.
    static void enable_on_this_cpu(uint8_t spurious_vector);

    static uint32_t id();
    static void end_of_interrupt();

    // INIT and STARTUP IPIs for bringing up an application processor (SDM Vol. 3 §8.4.4.1).
    static void send_init(uint32_t apic_id);
    static void send_startup(uint32_t apic_id, uint8_t page_vector);
    static bool wait_for_ipi_delivery();  // xAPIC only: false if the ICR stays busy
    // A fixed, edge-triggered interrupt `vector` to one CPU (SDM Vol. 3 §11.6.1): the monitor's
    // cross-CPU kick.
    static void send_fixed(uint32_t apic_id, uint8_t vector);

    // Timer (SDM Vol. 3 §11.5.4): TSC-deadline mode when available, else one-shot count.
    static bool has_tsc_deadline();
    static void arm_tsc_deadline(uint8_t vector, uint64_t tsc_deadline);
    static void arm_one_shot(uint8_t vector, uint32_t initial_count);  // divide-by-1
    static uint32_t timer_current_count();
    static void stop_timer();

private:
    // Register offsets in the xAPIC page (SDM Vol. 3 Table 11-1). x2APIC MSR = 0x800 + offset/16.
    enum class Register : uint32_t {
        Id = 0x20,
        Version = 0x30,
        TaskPriority = 0x80,
        EndOfInterrupt = 0xb0,
        SpuriousVector = 0xf0,
        ErrorStatus = 0x280,
        InterruptCommandLow = 0x300,
        InterruptCommandHigh = 0x310,
        LvtTimer = 0x320,
        LvtLint0 = 0x350,
        LvtLint1 = 0x360,
        LvtError = 0x370,
        TimerInitialCount = 0x380,
        TimerCurrentCount = 0x390,
        TimerDivide = 0x3e0,
    };

    static uint32_t read(Register reg);
    static void write(Register reg, uint32_t value);
    static void write_icr(uint32_t apic_id, uint32_t low);

    static inline Mode mode_ = Mode::XApic;
    static inline uint64_t mmio_base_ = 0;
};

} // namespace vlibos::x86
