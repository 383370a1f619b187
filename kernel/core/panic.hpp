// Orderly stops. Every fatal path ends in halt_system(), whose last line the tooling reads:
// "vlibos: system halted, status=N".
#pragma once

#include "arch/x86_64/power.hpp"

namespace vlibos {

// Exit statuses the monitor reports.
enum class ExitStatus : int {
    Ok = 0,
    Panic = 1,            // a fatal error detected by the monitor (bad boot data, bad configuration, ...)
    CpuDidNotStart = 2,
    VmTestFailed = 3,     // vlibos.vmtest: a VM scenario did not end as the policy says
    ExceptionBase = 128,  // 128 + vector: the boot CPU took a fatal exception
};

// Where ACPI says the soft-off switch is; set once ACPI is parsed.
void set_power_off_method(const x86::AcpiSleepControl& control);

[[noreturn]] void halt_system(int status);
[[noreturn]] void panic(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] void panic_with_status(ExitStatus status, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

} // namespace vlibos
