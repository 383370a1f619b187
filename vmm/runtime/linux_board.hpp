// The Linux VM's virtual platform: a local APIC per vCPU, one I/O APIC, and the wiring between
// them and the vCPUs (vmm/devices models the chips; this file connects them).
//
//   vCPU exit loop ──MMIO 0xFEE00000──> VirtualLapic[i] ──IPI──> IpiFilter ──> VirtualLapic[j]
//                  ──MMIO 0xFEC00000──> VirtualIoapic ──delivery──> IpiFilter ──> VirtualLapic[j]
//   device (COM2, forwarded PCI lines) ──raise(pin)──> VirtualIoapic
//
// Every message is routed by IpiFilter among the guest's own vCPUs only, so nothing Linux
// programs can reach another partition's CPU. The board is shared by the VM's vCPUs, which run
// on different physical CPUs: every entry point takes the board's lock. A vCPU that receives an
// interrupt while running elsewhere is told through `kick` (the monitor's host IPI).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/spinlock.hpp"
#include "vmm/devices/interrupt_routing.hpp"
#include "vmm/devices/virtual_ioapic.hpp"
#include "vmm/devices/virtual_lapic.hpp"

namespace vlibos::vmm {

class LinuxBoard {
public:
    static constexpr size_t kMaxVcpus = 8;
    static constexpr uint64_t kLapicPage = devices::VirtualLapic::kDefaultBase;
    static constexpr uint64_t kIoapicPage = devices::VirtualIoapic::kBase;
    static constexpr uint64_t kPageSize = 0x1000;

    // What a vCPU must do besides taking interrupts, set by other vCPUs' IPIs.
    struct StartRequest {
        bool init = false;      // INIT received: wait for SIPI
        bool startup = false;   // SIPI received: start in real mode at `vector` << 12
        uint8_t vector = 0;
    };

    struct Stats {
        uint64_t mmio_errors = 0;   // accesses the models refused (bad offset/size, read-only, ...)
        uint64_t ipis_blocked = 0;  // IPI or I/O APIC messages routed nowhere (outside the guest)
        uint64_t nmis = 0;
        uint64_t inits = 0;
        uint64_t startups = 0;
    };

    // `tsc_hz`: the guest's TSC rate (the host's: the guest TSC is not offset). `owned_pins`: the
    // I/O APIC pins the monitor drives for the VM's devices.
    void init(size_t vcpus, uint64_t tsc_hz, uint32_t owned_pins, uint8_t ioapic_id);
    size_t vcpus() const { return count_; }

    // A guest-physical address on one of the emulated device pages.
    static bool is_device_page(uint64_t gpa);
    // MMIO by vCPU `vcpu` at time `now` (TSC). False: refused (the models count why).
    bool mmio_read(size_t vcpu, uint64_t gpa, uint8_t size, uint64_t& value, uint64_t now);
    bool mmio_write(size_t vcpu, uint64_t gpa, uint8_t size, uint64_t value, uint64_t now);

    // The APIC MSRs (IA32_APIC_BASE, IA32_TSC_DEADLINE). False: not one of them.
    // `fault`: the access is one of them but illegal (#GP).
    bool msr_read(size_t vcpu, uint32_t index, uint64_t& value);
    bool msr_write(size_t vcpu, uint32_t index, uint64_t value, bool& fault);

    // A device line (edge-triggered pins send one interrupt per raise).
    void raise(uint8_t pin);
    void lower(uint8_t pin);

    // Pins that follow a real level-triggered line (linux_pci.hpp): when the guest EOIs one,
    // the board lowers it and calls `eoi` with those pins, under the board's lock.
    void set_forwarded_pins(uint32_t pins, void (*eoi)(uint32_t pins, void* context), void* context);

    // Timer: when vCPU `vcpu`'s LAPIC timer expires next (TSC, devices::kNever if never), and
    // the call that fires it once that time has come.
    uint64_t next_deadline(size_t vcpu);
    void expire_timers(size_t vcpu, uint64_t now);

    // Injection: the vector to inject next (0: none), and its acknowledgement once injected.
    uint8_t pending_vector(size_t vcpu);
    void acknowledge(size_t vcpu, uint8_t vector);
    // An NMI for `vcpu` (taken: the flag is cleared).
    bool take_nmi(size_t vcpu);
    StartRequest take_start_request(size_t vcpu);

    // Called (outside the lock's critical work, but possibly from another CPU) when vCPU `vcpu`
    // got something to do: the monitor interrupts its physical CPU so it re-evaluates.
    void set_kick(void (*kick)(size_t vcpu, void* context), void* context);

    Stats stats();
    devices::VirtualLapic::Stats lapic_stats(size_t vcpu);
    devices::VirtualIoapic::Stats ioapic_stats();
    devices::IpiFilter::Stats ipi_stats();
    // The last blocked/refused message as one line ("" if none).
    void format_last_dropped(char* buffer, size_t size);

private:
    void apply(size_t source, const devices::LapicEffect& effect, devices::VcpuSet& woken);
    void deliver(const devices::InterruptMessage& message, uint32_t source, devices::VcpuSet& woken);
    void deliver_ioapic(const devices::IoapicDelivery& delivery, devices::VcpuSet& woken);
    void wake(devices::VcpuSet woken, size_t self);

    Spinlock lock_;
    size_t count_ = 0;
    alignas(devices::VirtualLapic) unsigned char lapic_storage_[kMaxVcpus][sizeof(devices::VirtualLapic)];
    devices::VirtualLapic* lapics_[kMaxVcpus] = {};
    alignas(devices::VirtualIoapic) unsigned char ioapic_storage_[sizeof(devices::VirtualIoapic)];
    devices::VirtualIoapic* ioapic_ = nullptr;
    devices::IpiFilter filter_;
    bool nmi_[kMaxVcpus] = {};
    StartRequest start_[kMaxVcpus] = {};
    Stats stats_;
    uint32_t forwarded_pins_ = 0;
    void (*forwarded_eoi_)(uint32_t, void*) = nullptr;
    void* forwarded_context_ = nullptr;
    void (*kick_)(size_t, void*) = nullptr;
    void* kick_context_ = nullptr;
};

} // namespace vlibos::vmm
