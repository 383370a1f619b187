#include "arch/x86_64/power.hpp"

#include "arch/x86_64/cpu.hpp"

namespace vlibos::x86 {

namespace {
constexpr uint16_t kSleepTypeShift = 10;     // PM1_CNT.SLP_TYPx, bits 12:10
constexpr uint16_t kSleepEnable = 1u << 13;  // PM1_CNT.SLP_EN
} // namespace

void acpi_power_off(const AcpiSleepControl& control)
{
    if (control.pm1a_control_port == 0)
        return;
    outw(control.pm1a_control_port,
         static_cast<uint16_t>((control.sleep_type_a & 7u) << kSleepTypeShift | kSleepEnable));
    if (control.pm1b_control_port != 0)
        outw(control.pm1b_control_port,
             static_cast<uint16_t>((control.sleep_type_b & 7u) << kSleepTypeShift | kSleepEnable));
}

} // namespace vlibos::x86
