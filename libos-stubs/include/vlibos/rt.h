/* The vlibos RT runtime, C API: what an RT application (a ring-3 program of the RT sandbox) calls.
 * docs/rt-apps.md explains the startup contract, the threads and the examples; the system calls
 * underneath are those of <vlibos/syscall_abi.h>.
 *
 * Results: calls that can fail return an int64_t that is >= 0 on success and -VLIBOS_E* on
 * failure; vlibos_strerror() names the code. Every call may be made from any thread. */
#ifndef VLIBOS_RT_H
#define VLIBOS_RT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <vlibos/syscall_abi.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The application's entry point, called by the runtime's _start on the first thread with the
 * configuration's `args` string (never NULL, may be ""). Returning from it is vlibos_exit(result). */
int main(const char* args);

/* Ends the whole application (every thread, every VCPU) with `status`. */
__attribute__((noreturn)) void vlibos_exit(int status);

/* Writes `length` bytes to the RT console (in VLIBOS_CONSOLE_MAX pieces); bytes written or -error. */
int64_t vlibos_write(const void* text, size_t length);

/* Writes a NUL-terminated string to the console; bytes written or -error. */
int64_t vlibos_print(const char* text);

/* Formats (printf subset of kernel/lib/format.hpp: %d %i %u %x %X %o %c %s %p %%, flags, width,
 * precision, l ll z h hh; no floating point) and writes it in one console write, so lines of
 * different threads never mix; at most VLIBOS_PRINTF_MAX - 1 bytes, the rest is cut. */
int64_t vlibos_printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
int64_t vlibos_vprintf(const char* fmt, va_list args) __attribute__((format(printf, 1, 0)));
enum { VLIBOS_PRINTF_MAX = 512 };

/* Nanoseconds since boot (invariant TSC); never goes backwards. */
uint64_t vlibos_clock_ns(void);

/* Raw thread creation (VLIBOS_SYS_THREAD_CREATE): the caller provides entry, stack and VCPU; the
 * thread starts at params->entry with RSP = params->stack_top. Thread id (>= 0) or -error. */
int64_t vlibos_thread_create(const struct vlibos_thread_params* params);

/* Runs fn(arg) in a new thread on the configured VCPU named `vcpu`, on a stack from the runtime's
 * pool (VLIBOS_THREAD_SLOTS stacks of VLIBOS_THREAD_STACK bytes); returning from fn ends the
 * thread. Thread id, or -error (-VLIBOS_EAGAIN when the pool is empty). */
int64_t vlibos_thread_spawn_on(const char* vcpu, void (*fn)(void* arg), void* arg);

/* As vlibos_thread_spawn_on, on a new VCPU admitted with (budget, period, priority). */
int64_t vlibos_thread_spawn(uint64_t budget_ns, uint64_t period_ns, uint32_t priority, void (*fn)(void* arg),
                            void* arg);
enum { VLIBOS_THREAD_SLOTS = 8, VLIBOS_THREAD_STACK = 16384 };

/* Ends the calling thread (its pool stack becomes free) and releases its VCPU; the application
 * ends with its last thread. */
__attribute__((noreturn)) void vlibos_thread_exit(void);

/* Completes the current job and sleeps until the VCPU's next release; returns that release time
 * (ns since boot) or -error. */
int64_t vlibos_wait_period(void);

/* Fills *out with the statistics of the calling thread's VCPU; 0 or -error. */
int64_t vlibos_read_vcpu_stats(struct vlibos_vcpu_stats* out);

/* The Linux VM's state (VLIBOS_SYS_LINUX_STATE), an enum vlibos_linux_state: VLIBOS_LINUX_ABSENT
 * (no Linux partition or kernel), _STARTING, _RUNNING or _STOPPED. Never blocks. */
int vlibos_linux_state(void);

/* The name of an error code, either sign: "EFAULT" for 14 or -14, "OK" for 0, "E?" if unknown. */
const char* vlibos_strerror(int64_t code);

/* Argument strings are words separated by spaces; a word is a flag ("badptr") or key=value.
 * vlibos_arg_next returns the next word at *cursor (and its length), advancing the cursor; NULL at the end. */
const char* vlibos_arg_next(const char** cursor, size_t* length);

/* The value of the first word "key=value" (not NUL-terminated; its length in *length), or NULL. */
const char* vlibos_arg_find(const char* args, const char* key, size_t* length);

/* Reads "key=N" (decimal, or hex with 0x): 1 and *value set if found, 0 if absent (*value
 * untouched), -VLIBOS_EINVAL if the value is not a number that fits 64 bits. */
int vlibos_arg_u64(const char* args, const char* key, uint64_t* value);

#ifdef __cplusplus
}
#endif

#endif
