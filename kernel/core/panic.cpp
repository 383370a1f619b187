#include "core/panic.hpp"

#include <stdarg.h>

#include "arch/x86_64/cpu.hpp"
#include "core/console.hpp"
#include "lib/format.hpp"

namespace vlibos {

namespace {
x86::AcpiSleepControl g_sleep_control{};

[[noreturn]] void panic_v(ExitStatus status, const char* fmt, va_list args)
{
    char message[400];
    format_v(message, sizeof(message), fmt, args);
    console::print("vlibos: PANIC: %s\n", message);
    halt_system(static_cast<int>(status));
}
} // namespace

void set_power_off_method(const x86::AcpiSleepControl& control) { g_sleep_control = control; }

void halt_system(int status)
{
    x86::disable_interrupts();
    console::print("vlibos: system halted, status=%d\n", status);
    console::drain();
    // Under an emulator this ends the run; on hardware it turns the machine off. Other CPUs
    // are parked with interrupts off, so if soft-off is unavailable everything stops here.
    x86::acpi_power_off(g_sleep_control);
    x86::halt_forever();
}

void panic(const char* fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    panic_v(ExitStatus::Panic, fmt, args);
}

void panic_with_status(ExitStatus status, const char* fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    panic_v(status, fmt, args);
}

} // namespace vlibos
