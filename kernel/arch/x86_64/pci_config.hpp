// PCI configuration space through configuration mechanism #1 (PCI Local Bus Specification 3.0,
// 3.2.2.3.2): CONFIG_ADDRESS at port 0xCF8 (enable bit 31, bus 23:16, device 15:11, function
// 10:8, dword offset 7:2), then CONFIG_DATA at 0xCFC-0xCFF. The pair is not atomic, so every
// access takes one lock with interrupts off.
#pragma once

#include <stdint.h>

namespace vlibos::x86::pci_config {

// `size` bytes (1, 2 or 4) at `offset` (0-255) of bus:device.function; the access must not
// cross its dword (callers split). A function that does not exist reads all ones.
uint32_t read(uint8_t bus, uint8_t device, uint8_t function, uint8_t offset, uint8_t size);
void write(uint8_t bus, uint8_t device, uint8_t function, uint8_t offset, uint8_t size, uint32_t value);

} // namespace vlibos::x86::pci_config
