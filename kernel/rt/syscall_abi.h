/* The RT application system-call ABI: the one contract between the kernel and libos-stubs.
 * C-compatible, so the C runtime and the C++ kernel read the same header. docs/syscalls.md
 * describes every call.
 *
 * Convention (as the Linux x86-64 ABI, so compilers and debuggers know it):
 *   `syscall` with RAX = call number, arguments in RDI, RSI, RDX, R10, R8;
 *   result in RAX: >= 0 on success, -VLIBOS_E* on failure. RCX and R11 are clobbered
 *   (the instruction uses them); every other register is preserved.
 * Every pointer is checked against the calling application's own mappings before the kernel
 * touches it; a bad one is refused with -VLIBOS_EFAULT, never followed. */
#ifndef VLIBOS_RT_SYSCALL_ABI_H
#define VLIBOS_RT_SYSCALL_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum vlibos_syscall {
    /* (int64 status) -> no return. Ends the whole application: every thread, every VCPU. */
    VLIBOS_SYS_EXIT = 0,
    /* (const char* text, uint64 length) -> length. Writes to the RT console, prefixed with the
     * application's name. At most VLIBOS_CONSOLE_MAX bytes per call. */
    VLIBOS_SYS_CONSOLE_WRITE = 1,
    /* () -> nanoseconds since boot, from the invariant TSC; never goes backwards. */
    VLIBOS_SYS_CLOCK = 2,
    /* (const struct vlibos_thread_params*) -> thread id (>= 0). Starts a thread on its own
     * VCPU: a new one admitted with (budget, period, priority), or a VCPU of the application's
     * configuration named in `vcpu`. */
    VLIBOS_SYS_THREAD_CREATE = 3,
    /* () -> release time (ns since boot) of the job that starts now. Completes the calling
     * thread's current job and sleeps until its VCPU's next release (returns at once if a
     * release is already pending). A thread's first job is released when it starts. */
    VLIBOS_SYS_WAIT_PERIOD = 4,
    /* () -> no return. Ends the calling thread and releases its VCPU; the application ends
     * with its last thread. */
    VLIBOS_SYS_THREAD_EXIT = 5,
    /* (struct vlibos_vcpu_stats* out) -> 0. Statistics of the calling thread's VCPU. */
    VLIBOS_SYS_VCPU_STATS = 6,
    /* () -> the Linux VM's state, an enum vlibos_linux_state. Never blocks; any thread may ask,
     * as often as it likes (one atomic load in the kernel). */
    VLIBOS_SYS_LINUX_STATE = 7,
    VLIBOS_SYS_COUNT
};

/* The Linux VM's life, as VLIBOS_SYS_LINUX_STATE reports it. Absent is decided at boot, before any
 * RT application runs, and never changes; otherwise the VM goes starting -> running -> stopped
 * (or starting -> stopped if it fails before it is entered). */
enum vlibos_linux_state {
    VLIBOS_LINUX_ABSENT = 0,   /* no Linux partition in the configuration, or no kernel module */
    VLIBOS_LINUX_STARTING = 1, /* being loaded, or not yet entered */
    VLIBOS_LINUX_RUNNING = 2,  /* its vCPUs run */
    VLIBOS_LINUX_STOPPED = 3   /* it stopped: halt, power-off, crash, or something the monitor refused */
};

/* Error codes (returned negated). Numbers follow Linux errno where one fits. */
enum vlibos_error {
    VLIBOS_EPERM = 1,       /* not allowed for this application */
    VLIBOS_ENOENT = 2,      /* no VCPU of that name in the application's configuration */
    VLIBOS_EAGAIN = 11,     /* no free thread or VCPU slot */
    VLIBOS_EFAULT = 14,     /* a pointer outside the application's mappings (or wrong access) */
    VLIBOS_EBUSY = 16,      /* the named VCPU already has a thread */
    VLIBOS_EINVAL = 22,     /* a malformed argument: alignment, range, unterminated name, flags */
    VLIBOS_ENOSYS = 38,     /* no such call */
    VLIBOS_EADMISSION = 200 /* admission control refused the VCPU; the console says why */
};

enum { VLIBOS_NAME_MAX = 16 };          /* VCPU name buffer, NUL included */
enum { VLIBOS_CONSOLE_MAX = 4096 };     /* bytes per console write */

struct vlibos_thread_params {
    uint64_t entry;      /* void (*)(uint64_t arg), in the application's executable pages */
    uint64_t arg;        /* passed in RDI */
    uint64_t stack_top;  /* 16-byte aligned, the end of a writable range of the application */
    uint64_t budget_ns;  /* C of a new VCPU (0 when `vcpu` names one) */
    uint64_t period_ns;  /* T of a new VCPU (0 when `vcpu` names one) */
    uint32_t priority;   /* explicit-priority cores: 0 is the most urgent; ignored under RM */
    uint32_t flags;      /* must be 0 */
    char vcpu[VLIBOS_NAME_MAX]; /* a configured VCPU's name, NUL-terminated; or all zero */
};

struct vlibos_vcpu_stats {
    uint64_t budget_ns;         /* C */
    uint64_t period_ns;         /* T */
    uint64_t budget_used_ns;    /* CPU time charged since admission */
    uint64_t replenishments;    /* sporadic-server replenishments posted */
    uint64_t jobs_completed;
    uint64_t deadline_misses;   /* jobs unfinished at their deadline (release + T) */
    uint64_t worst_response_ns; /* longest release-to-completion of a completed job */
};

#ifdef __cplusplus
}
#endif

#endif
