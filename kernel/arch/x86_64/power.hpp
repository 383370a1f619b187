// Turning the machine off: ACPI soft-off (S5) through the FADT's PM1 control blocks
// (ACPI 6.4 §4.8.3.2.1 and §16.1.7: write SLP_TYPx with SLP_EN).
#pragma once

#include <stdint.h>

namespace vlibos::x86 {

struct AcpiSleepControl {
    uint16_t pm1a_control_port;
    uint16_t pm1b_control_port;   // 0 when absent
    uint8_t sleep_type_a;
    uint8_t sleep_type_b;
};

// Returns only if the write did not power the machine off.
void acpi_power_off(const AcpiSleepControl& control);

} // namespace vlibos::x86
