// The first C++ code of an RT application: runs the static constructors, calls main, exits with
// its result. Also the few C++ ABI symbols a freestanding program needs.
#include <stddef.h>
#include <stdint.h>

#include <new>

#include <vlibos/rt.h>

using InitFunction = void (*)();

extern "C" {

// Bounds of .init_array (app.ld): the constructors of objects with static storage.
extern const InitFunction __init_array_start[];
extern const InitFunction __init_array_end[];

[[noreturn]] void vlibos_rt_start(const char* args, uint64_t length);

// Static destructors are never run: an application ends through VLIBOS_SYS_EXIT, which takes
// every thread down at once, so there is no orderly point to run them at.
int __cxa_atexit(void (*)(void*), void*, void*) { return 0; }
void* __dso_handle = &__dso_handle;

// A call through an unfinished vtable is a bug of the application: fault, so the kernel reports
// where it happened.
void __cxa_pure_virtual() { __builtin_trap(); }

} // extern "C"

// There is no heap, so nothing can be deleted; a virtual destructor still makes the compiler
// reference these (the "deleting destructor"), so they exist and trap if ever reached.
void operator delete(void*) noexcept { __builtin_trap(); }
void operator delete(void*, size_t) noexcept { __builtin_trap(); }
void operator delete(void*, std::align_val_t) noexcept { __builtin_trap(); }
void operator delete(void*, size_t, std::align_val_t) noexcept { __builtin_trap(); }

// Called by _start (crt0.S) with the kernel's RDI/RSI. The length is not needed: the string is
// NUL-terminated, which the kernel guarantees.
void vlibos_rt_start(const char* args, [[maybe_unused]] uint64_t length)
{
    for (const InitFunction* f = __init_array_start; f != __init_array_end; ++f)
        (*f)();
    vlibos_exit(main(args != nullptr ? args : ""));
}
