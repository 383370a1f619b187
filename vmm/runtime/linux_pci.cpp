#include "vmm/runtime/linux_pci.hpp"

#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/interrupts.hpp"
#include "arch/x86_64/ioapic.hpp"
#include "arch/x86_64/lapic.hpp"
#include "arch/x86_64/pci_config.hpp"
#include "core/boot.hpp"
#include "core/console.hpp"
#include "lib/format.hpp"
#include "vmm/io_policy.hpp"
#include "vmm/runtime/linux_board.hpp"
#include "vmm/runtime/linux_console.hpp"

namespace vlibos::vmm {

using devices::Bdf;
using devices::PciFilter;

namespace {

// Real configuration space for the filter. In INTx-only mode the filter never reads or writes
// an MSI-X table (tests/unit/devices_pci_test.cpp checks it), and the monitor has no mapping of
// device BARs: a call would be a filter bug, so it reads as no device and is counted.
class MonitorPciHost final : public devices::PciHost {
public:
    uint32_t config_read(Bdf bdf, uint8_t offset, uint8_t size) override
    {
        return x86::pci_config::read(bdf.bus, bdf.device, bdf.function, offset, size);
    }
    void config_write(Bdf bdf, uint8_t offset, uint8_t size, uint32_t value) override
    {
        x86::pci_config::write(bdf.bus, bdf.device, bdf.function, offset, size, value);
    }
    uint32_t msix_read(Bdf, uint32_t) override
    {
        ++unexpected_msix;
        return 0xffff'ffffu;
    }
    void msix_write(Bdf, uint32_t, uint32_t) override { ++unexpected_msix; }

    uint64_t unexpected_msix = 0;
};

MonitorPciHost g_host;
LinuxPci* g_forwarding = nullptr;  // the VM whose lines the handler serves

constexpr uint16_t kFirstIoBarPort = 0x1000;  // below: the legacy ISA ports the monitor keeps
constexpr uint64_t kPage = 0x1000;
constexpr uint8_t kTimerPin = 2;

// "00:03.0", as the configuration writes it.
config::PciText name_of(Bdf bdf) { return config::pci_text(config::PciFunction{bdf.bus, bdf.device, bdf.function}); }

void board_eoi(uint32_t pins, void* context) { static_cast<LinuxPci*>(context)->resample(pins); }

} // namespace

LinuxPci::LinuxPci() : filter_(g_host, apics_, policy_)
{
    filter_.set_interrupt_mode(devices::InterruptMode::IntxOnly);
}

bool LinuxPci::add_line(const Machine& machine, Bdf bdf, uint8_t& gsi_out)
{
    const config::PciText name = name_of(bdf);
    uint8_t isa = filter_.interrupt_line(bdf);
    if (isa == 0 || isa >= 16) {
        console::print("vlibos: linux: pci %s: its interrupt line register says %u, not an ISA IRQ the firmware "
                       "routed it to (PCI interrupts routed only through ACPI _PRT are not supported)\n",
                       name.text, isa);
        return false;
    }
    x86::Ioapic::IsaIrq irq = x86::Ioapic::isa_irq(machine.platform, isa);
    // A level-triggered PCI interrupt, active low unless the firmware's override says otherwise
    // (PCI 3.0, 2.2.6; QEMU's MADT says level, active high for its PCI IRQs).
    bool level = irq.overridden ? irq.level : true;
    bool active_low = irq.overridden ? irq.active_low : true;
    const char* why = nullptr;
    if (!x86::Ioapic::has_gsi(irq.gsi))
        why = "no I/O APIC has that GSI";
    else if (irq.gsi >= devices::VirtualIoapic::kPins)
        why = "the VM's I/O APIC has 24 pins";
    else if (irq.gsi == 0 || irq.gsi == kTimerPin || irq.gsi == LinuxConsole::kPin)
        why = "the VM's timer or console uses that pin";
    else if (!level)
        why = "the firmware made it edge-triggered; a shared PCI line must be level-triggered";
    if (why != nullptr) {
        console::print("vlibos: linux: pci %s: IRQ %u (GSI %u) cannot be forwarded: %s\n", name.text, isa, irq.gsi, why);
        return false;
    }
    gsi_out = static_cast<uint8_t>(irq.gsi);
    for (size_t i = 0; i < line_count_; ++i)
        if (lines_[i].gsi == irq.gsi)
            return true;  // a line shared with another assigned function
    if (line_count_ == kMaxLines) {
        console::print("vlibos: linux: pci %s: more than %zu distinct interrupt lines\n", name.text, kMaxLines);
        return false;
    }
    lines_[line_count_] = Line{irq.gsi, level, active_low, 0, 0};
    ++line_count_;
    return true;
}

bool LinuxPci::assign(const Machine& machine, size_t partition, uint32_t apic_id)
{
    const config::Partition& part = machine.config.partitions[partition];
    if (part.pci_count == 0)
        return true;
    x86::Ioapic::init(machine.platform);
    bool ok = true;
    for (size_t n = 0; n < part.pci_count; ++n) {
        Bdf bdf{part.pci[n].bus, part.pci[n].device, part.pci[n].function};
        const config::PciText name = name_of(bdf);
        if (auto assigned = filter_.assign(bdf); !assigned) {
            console::print("vlibos: linux: pci %s cannot be passed to the VM: %s\n", name.text,
                           devices::describe(assigned.error()));
            ok = false;
            continue;
        }
        uint32_t id = x86::pci_config::read(bdf.bus, bdf.device, bdf.function, PciFilter::kVendorId, 4);
        FormatBuffer<256> what;
        what.append("vlibos: linux: pci %s [%04x:%04x] passed to the VM:", name.text, id & 0xffff, id >> 16);
        for (unsigned b = 0; b < PciFilter::kBarCount; ++b) {
            devices::PciFilter::BarInfo bar = filter_.bar(bdf, b);
            if (!bar.present)
                continue;
            if (bar.io) {
                if (bar.base < kFirstIoBarPort || bar.base + bar.size > 0x10000) {
                    console::print("vlibos: linux: pci %s: I/O BAR %u at %#llx is in the legacy ports the monitor "
                                   "keeps (below 0x1000) or past 0xffff\n",
                                   name.text, b, static_cast<unsigned long long>(bar.base));
                    ok = false;
                } else if (io_bar_count_ == kMaxIoBars) {
                    console::print("vlibos: linux: pci %s: more than %zu I/O BARs\n", name.text, kMaxIoBars);
                    ok = false;
                } else {
                    io_bars_[io_bar_count_++] = IoBar{static_cast<uint16_t>(bar.base),
                                                      static_cast<uint16_t>(bar.base + bar.size - 1)};
                }
                what.append(" BAR%u io %#llx+%llu", b, static_cast<unsigned long long>(bar.base),
                            static_cast<unsigned long long>(bar.size));
                continue;
            }
            if (((bar.base | bar.size) & (kPage - 1)) != 0) {
                // The page would also map whatever shares it.
                console::print("vlibos: linux: pci %s: memory BAR %u (%#llx, %llu bytes) is not whole 4 KiB pages\n",
                               name.text, b, static_cast<unsigned long long>(bar.base),
                               static_cast<unsigned long long>(bar.size));
                ok = false;
            }
            what.append(" BAR%u mem %#llx+%llu KiB", b, static_cast<unsigned long long>(bar.base),
                        static_cast<unsigned long long>(bar.size >> 10));
        }
        uint8_t pin = filter_.interrupt_pin(bdf);
        if (pin >= 1 && pin <= 4) {
            uint8_t gsi = 0;
            if (!add_line(machine, bdf, gsi)) {
                ok = false;
            } else {
                interrupts_[interrupt_count_++] =
                    linux_boot::MpPciInterrupt{bdf.device, static_cast<uint8_t>(pin - 1), gsi};
                what.append(", INT%c# -> GSI %u", 'A' + pin - 1, gsi);
            }
        } else {
            what.append(", no interrupt pin");
        }
        if (bdf.bus != 0) {
            console::print("vlibos: linux: pci %s: only functions on bus 0 can be passed (the VM has no bridges)\n",
                           name.text);
            ok = false;
        }
        console::print("%s\n", what.c_str());
    }
    if (!ok)
        return false;
    for (size_t i = 0; i < line_count_; ++i) {
        x86::Ioapic::Route route{static_cast<uint8_t>(x86::kVectorForwardedFirst + i), static_cast<uint8_t>(apic_id),
                                 lines_[i].level, lines_[i].active_low};
        x86::Ioapic::route(lines_[i].gsi, route, true);
    }
    return true;
}

void LinuxPci::describe(linux_boot::MpConfig& mp) const
{
    if (count() == 0)
        return;
    mp.pci_bus = true;
    for (size_t i = 0; i < interrupt_count_; ++i)
        mp.pci_interrupts[i] = interrupts_[i];
    mp.pci_interrupt_count = interrupt_count_;
}

bool LinuxPci::map_bars(const Machine& machine, GuestMemory& memory) const
{
    // A BAR may only lie where nothing else is: not RAM, not the monitor, not the APICs.
    auto device_range = [&](uint64_t hpa, uint64_t size) {
        mm::PhysRange r = mm::PhysRange::from_size(hpa, size);
        if (machine.usable_ram.overlaps(r) || machine.monitor_reserved.overlaps(r) || r.overlaps(machine.image))
            return false;
        if (r.overlaps(mm::PhysRange::from_size(x86::Lapic::mmio_base(), kPage)) ||
            r.overlaps(mm::PhysRange::from_size(LinuxBoard::kLapicPage, kPage)) ||
            r.overlaps(mm::PhysRange::from_size(LinuxBoard::kIoapicPage, kPage)))
            return false;
        for (size_t i = 0; i < machine.platform.ioapic_count; ++i)
            if (r.overlaps(mm::PhysRange::from_size(machine.platform.ioapics[i].address, kPage)))
                return false;
        return true;
    };
    for (size_t d = 0; d < count(); ++d) {
        Bdf bdf = filter_.device_bdf(d);
        for (unsigned b = 0; b < PciFilter::kBarCount; ++b) {
            devices::PciFilter::BarInfo bar = filter_.bar(bdf, b);
            if (!bar.present || bar.io)
                continue;
            GuestRegion region{bar.base, bar.base, bar.size, GuestAccess{true, true, false}, true};
            if (auto added = memory.add(region, device_range); !added) {
                const config::PciText name = name_of(bdf);
                console::print("vlibos: linux: pci %s: BAR %u (%#llx, %llu bytes) cannot be mapped: %s\n", name.text, b,
                               static_cast<unsigned long long>(bar.base), static_cast<unsigned long long>(bar.size),
                               added.error() == GuestMemoryError::NotOwned
                                   ? "it overlaps RAM, the monitor or an interrupt controller"
                                   : vmm::describe(added.error()));
                return false;
            }
        }
    }
    return true;
}

bool LinuxPci::owns_port(uint16_t port) const
{
    if (count() == 0)
        return false;
    return PciFilter::claims_port(port) || in_io_bar(port, port);
}

bool LinuxPci::in_io_bar(uint16_t first, uint32_t last) const
{
    for (size_t i = 0; i < io_bar_count_; ++i)
        if (first >= io_bars_[i].first && last <= io_bars_[i].last)
            return true;
    return false;
}

void LinuxPci::handle(const IoExit& io, GuestRegisters& regs)
{
    uint32_t value = static_cast<uint32_t>(regs.rax) & IoPolicy::size_mask(io.size);
    if (PciFilter::claims_port(io.port)) {
        SpinlockGuard guard(lock_);
        if (io.in) {
            auto read = filter_.io_read(io.port, io.size);
            IoPolicy::complete_in(regs, io.size, read ? read.value() : 0xffff'ffffu);
        } else {
            (void)filter_.io_write(io.port, io.size, value);  // refusals are counted by the filter
        }
        return;
    }
    // An assigned I/O BAR: owns_port() checked the first port, the whole access must fit too.
    if (!in_io_bar(io.port, io.port + io.size - 1u)) {
        if (io.in)
            IoPolicy::complete_in(regs, io.size, 0xffff'ffffu);
        return;
    }
    __atomic_add_fetch(&io_forwarded_, 1u, __ATOMIC_RELAXED);
    if (io.in) {
        uint32_t in = io.size == 1 ? x86::inb(io.port) : io.size == 2 ? x86::inw(io.port) : x86::inl(io.port);
        IoPolicy::complete_in(regs, io.size, in);
    } else if (io.size == 1) {
        x86::outb(io.port, static_cast<uint8_t>(value));
    } else if (io.size == 2) {
        x86::outw(io.port, static_cast<uint16_t>(value));
    } else {
        x86::outl(io.port, value);
    }
}

void LinuxPci::on_interrupt(unsigned index)
{
    LinuxPci* self = __atomic_load_n(&g_forwarding, __ATOMIC_ACQUIRE);
    if (self == nullptr || index >= self->line_count_)
        return;
    // Level-triggered: masked until the guest has served it, or it would fire again at the EOI.
    x86::Ioapic::mask(self->lines_[index].gsi);
    ++self->lines_[index].fired;
    __atomic_or_fetch(&self->pending_, 1u << index, __ATOMIC_RELEASE);
}

void LinuxPci::start(LinuxBoard& board)
{
    if (line_count_ == 0)
        return;
    board_ = &board;
    board.set_forwarded_pins(pins(), board_eoi, this);
    __atomic_store_n(&g_forwarding, this, __ATOMIC_RELEASE);
    x86::set_forwarded_handler(on_interrupt);
    for (size_t i = 0; i < line_count_; ++i)
        x86::Ioapic::unmask(lines_[i].gsi);
}

void LinuxPci::poll()
{
    if (board_ == nullptr || __atomic_load_n(&pending_, __ATOMIC_RELAXED) == 0)
        return;
    uint32_t fired = __atomic_exchange_n(&pending_, 0u, __ATOMIC_ACQ_REL);
    for (size_t i = 0; i < line_count_; ++i)
        if (fired & (1u << i))
            board_->raise(static_cast<uint8_t>(lines_[i].gsi));
}

void LinuxPci::resample(uint32_t pins)
{
    for (size_t i = 0; i < line_count_; ++i) {
        if (!(pins & (1u << lines_[i].gsi)))
            continue;
        __atomic_add_fetch(&lines_[i].resampled, 1u, __ATOMIC_RELAXED);
        x86::Ioapic::unmask(lines_[i].gsi);
    }
}

uint32_t LinuxPci::pins() const
{
    uint32_t pins = 0;
    for (size_t i = 0; i < line_count_; ++i)
        pins |= 1u << lines_[i].gsi;
    return pins;
}

void LinuxPci::quiesce()
{
    __atomic_store_n(&g_forwarding, static_cast<LinuxPci*>(nullptr), __ATOMIC_RELEASE);
    for (size_t i = 0; i < line_count_; ++i)
        x86::Ioapic::mask(lines_[i].gsi);
    constexpr uint32_t kBusMaster = 1u << 2;  // command register bit 2 (PCI 3.0, 6.2.2)
    for (size_t d = 0; d < count(); ++d) {
        Bdf bdf = filter_.device_bdf(d);
        uint32_t command = x86::pci_config::read(bdf.bus, bdf.device, bdf.function, PciFilter::kCommand, 2);
        x86::pci_config::write(bdf.bus, bdf.device, bdf.function, PciFilter::kCommand, 2, command & ~kBusMaster);
    }
}

void LinuxPci::report() const
{
    if (count() == 0)
        return;
    const PciFilter::Stats& s = filter_.stats();
    console::print("vlibos: linux: pci: config reads %llu writes %llu; functions not the VM's: reads %llu, writes "
                   "dropped %llu; BAR moves refused %llu, MSI/MSI-X writes refused %llu (hidden capabilities %llu); "
                   "I/O BAR accesses %llu\n",
                   static_cast<unsigned long long>(s.config_reads), static_cast<unsigned long long>(s.config_writes),
                   static_cast<unsigned long long>(s.unassigned_reads),
                   static_cast<unsigned long long>(s.unassigned_writes),
                   static_cast<unsigned long long>(s.bar_refused), static_cast<unsigned long long>(s.msi_refused),
                   static_cast<unsigned long long>(s.hidden_writes), static_cast<unsigned long long>(io_forwarded_));
    for (size_t i = 0; i < line_count_; ++i)
        console::print("vlibos: linux: pci: GSI %u interrupts forwarded %llu, resampled at EOI %llu\n", lines_[i].gsi,
                       static_cast<unsigned long long>(lines_[i].fired),
                       static_cast<unsigned long long>(lines_[i].resampled));
    if (g_host.unexpected_msix != 0)
        console::print("vlibos: linux: pci: error: the filter asked for %llu MSI-X table accesses in INTx-only mode\n",
                       static_cast<unsigned long long>(g_host.unexpected_msix));
}

} // namespace vlibos::vmm
