#include "arch/x86_64/pci_config.hpp"

#include "arch/x86_64/cpu.hpp"
#include "arch/x86_64/irq_lock.hpp"

namespace vlibos::x86::pci_config {

namespace {

constexpr uint16_t kConfigAddress = 0xcf8;
constexpr uint16_t kConfigData = 0xcfc;
constexpr uint32_t kEnable = 1u << 31;

Spinlock g_lock;

uint32_t address(uint8_t bus, uint8_t device, uint8_t function, uint8_t offset)
{
    return kEnable | (uint32_t{bus} << 16) | (uint32_t{device & 0x1fu} << 11) | (uint32_t{function & 7u} << 8) |
           (offset & 0xfcu);
}


} // namespace

uint32_t read(uint8_t bus, uint8_t device, uint8_t function, uint8_t offset, uint8_t size)
{
    IrqSpinlockGuard guard(g_lock);
    outl(kConfigAddress, address(bus, device, function, offset));
    auto port = static_cast<uint16_t>(kConfigData + (offset & 3u));
    switch (size) {
    case 1: return inb(port);
    case 2: return inw(port);
    default: return inl(kConfigData);
    }
}

void write(uint8_t bus, uint8_t device, uint8_t function, uint8_t offset, uint8_t size, uint32_t value)
{
    IrqSpinlockGuard guard(g_lock);
    outl(kConfigAddress, address(bus, device, function, offset));
    auto port = static_cast<uint16_t>(kConfigData + (offset & 3u));
    switch (size) {
    case 1: outb(port, static_cast<uint8_t>(value)); break;
    case 2: outw(port, static_cast<uint16_t>(value)); break;
    default: outl(kConfigData, value); break;
    }
}

} // namespace vlibos::x86::pci_config
