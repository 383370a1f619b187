// misbehave: a deliberately hostile RT application, to prove the kernel's checks and isolation.
//
// Its arguments are words, run in order; each prints what it tried and what happened, so an
// integration test can check the console. Options (key=value) may appear anywhere.
//
//   badptr           every system call with a bad pointer or argument; each must fail with its code:
//                      misbehave: badptr <case> -> <CODE> ok
//                      misbehave: badptr <case> -> <CODE> FAILED (got <result>)
//                    then "misbehave: badptr all ok" or "misbehave: badptr FAILED <n> of <m>"
//   overrun          for overrun_periods=K jobs (default 20), spins 3x the VCPU's budget of CPU
//                    time per job; the scheduler must throttle it:
//                      misbehave: overrun done periods=K misses=<deadline misses of its VCPU>
//   hog              spins for hog_ms=N (default 1000) without ever waiting for its period:
//                      misbehave: hog done ms=N misses=<...> budget_used_ns=<...>
//   spawn-overload   asks for a new VCPU of 9 ms every 10 ms; admission must refuse it:
//                      misbehave: spawn-overload -> EADMISSION ok | FAILED (got <result>)
//   Faults: the kernel must end the application at the instruction. Each prints
//   "misbehave: <word> about to fault" first; "misbehave: <word> NOT STOPPED" means it was not.
//   write-kernel     writes to kernel memory (0x200000)
//   read-kernel      reads kernel memory (0x200000)
//   write-text       writes to its own code
//   ud               executes ud2 (#UD)
//   div              divides by zero (#DE)
//   gp               executes cli (#GP: privileged in ring 3 with IOPL 0)
//   hlt              executes hlt (#GP)
//   cr3              reads CR3 (#GP)
//   io               writes to the serial port 0x3f8 (#GP: no I/O permission)
//   stack-overflow   recurses until the stack runs out (#PF below the kernel-provided stack)
//
// At the end: "misbehave: done", and the exit status is the number of failed checks. An unknown
// word is refused before anything runs (exit 2).
#include <vlibos/rt.hpp>
#include <vlibos/syscall.h>

namespace rt = vlibos::rt;

namespace {

// Kernel memory: the monitor is loaded at 2 MiB physical and identity-mapped supervisor-only.
constexpr uint64_t kKernelAddress = 0x200000;
// The first address past the lower canonical half (SDM Vol. 1 §3.3.7.1).
constexpr uint64_t kNonCanonical = 0x0000'8000'0000'0000;
// A range whose end wraps around zero.
constexpr uint64_t kWrapping = 0xffff'ffff'ffff'fff0;
// Just past the RT user window: a canonical user address nobody maps.
constexpr uint64_t kPastWindow = 0x0000'4000'4000'0000;

int g_failures = 0;

// The first byte of the application's code (libos-stubs/app.ld).
extern "C" const char __text_start[];

uint64_t address(const void* p) { return reinterpret_cast<uint64_t>(p); }
template <typename R, typename... A>
uint64_t address(R (*f)(A...))
{
    return reinterpret_cast<uint64_t>(f);
}

void print_result(const char* prefix, const char* what, int64_t got, int64_t expected, int& failures)
{
    if (got == expected) {
        rt::print("misbehave: %s%s -> %s ok\n", prefix, what, vlibos_strerror(expected));
        return;
    }
    ++failures;
    if (got < 0)
        rt::print("misbehave: %s%s -> %s FAILED (got -%s)\n", prefix, what, vlibos_strerror(expected),
                  vlibos_strerror(got));
    else
        rt::print("misbehave: %s%s -> %s FAILED (got %lld)\n", prefix, what, vlibos_strerror(expected),
                  static_cast<long long>(got));
}

// ---- badptr ----------------------------------------------------------------------------------

// The body of a thread that should never have been created: it leaves at once.
void stray_thread(uint64_t) { vlibos_thread_exit(); }

alignas(16) unsigned char g_stray_stack[4096];
uint64_t g_data_word = 1;
const char g_rodata[64] = "read-only data of misbehave";

// Valid parameters for a new, tiny VCPU: each case breaks exactly one field.
vlibos_thread_params valid_params()
{
    vlibos_thread_params p{};
    p.entry = address(&stray_thread);
    p.arg = 0;
    p.stack_top = address(g_stray_stack + sizeof(g_stray_stack));
    p.budget_ns = 100'000;      // 100 us
    p.period_ns = 100'000'000;  // every 100 ms
    return p;
}

int64_t create(const vlibos_thread_params& p) { return vlibos_syscall1(VLIBOS_SYS_THREAD_CREATE, address(&p)); }

void badptr()
{
    int failures = 0;
    int cases = 0;
    auto check = [&](const char* what, int64_t got, int64_t expected) {
        ++cases;
        print_result("badptr ", what, got, expected, failures);
    };
    const int64_t efault = -VLIBOS_EFAULT, einval = -VLIBOS_EINVAL;

    // Console writes: text the application cannot read.
    check("console-kernel", vlibos_syscall2(VLIBOS_SYS_CONSOLE_WRITE, kKernelAddress, 16), efault);
    check("console-null", vlibos_syscall2(VLIBOS_SYS_CONSOLE_WRITE, 0, 16), efault);
    check("console-noncanonical", vlibos_syscall2(VLIBOS_SYS_CONSOLE_WRITE, kNonCanonical, 16), efault);
    check("console-wrap", vlibos_syscall2(VLIBOS_SYS_CONSOLE_WRITE, kWrapping, 64), efault);
    check("console-unmapped", vlibos_syscall2(VLIBOS_SYS_CONSOLE_WRITE, kPastWindow, 16), efault);

    // Statistics into memory the application may read but not write, or not at all.
    check("stats-text", vlibos_syscall1(VLIBOS_SYS_VCPU_STATS, address(__text_start)), efault);
    check("stats-rodata", vlibos_syscall1(VLIBOS_SYS_VCPU_STATS, address(g_rodata)), efault);
    check("stats-kernel", vlibos_syscall1(VLIBOS_SYS_VCPU_STATS, kKernelAddress), efault);

    // Thread creation: the parameter block itself, then one bad field at a time.
    check("create-params-kernel", vlibos_syscall1(VLIBOS_SYS_THREAD_CREATE, kKernelAddress), efault);
    check("create-params-null", vlibos_syscall1(VLIBOS_SYS_THREAD_CREATE, 0), efault);
    vlibos_thread_params p = valid_params();
    p.stack_top += 8;
    check("create-stack-unaligned", create(p), einval);
    p = valid_params();
    p.stack_top = kKernelAddress + 0x1000;
    check("create-stack-kernel", create(p), efault);
    p = valid_params();
    p.stack_top = address(__text_start) + 0x1000;
    check("create-stack-text", create(p), efault);
    p = valid_params();
    p.entry = address(&g_data_word);
    check("create-entry-data", create(p), efault);
    p = valid_params();
    p.entry = kKernelAddress;
    check("create-entry-kernel", create(p), efault);
    p = valid_params();
    p.flags = 1;
    check("create-flags", create(p), einval);
    p = valid_params();
    p.budget_ns = 0;
    p.period_ns = 0;
    check("create-zero-budget", create(p), einval);
    p = valid_params();
    p.budget_ns = 0;
    p.period_ns = 0;
    for (char& c : p.vcpu)
        c = 'a';
    check("create-name-unterminated", create(p), einval);
    p = valid_params();
    p.budget_ns = 0;
    p.period_ns = 0;
    const char unknown[] = "nosuchvcpu";
    for (size_t i = 0; i < sizeof(unknown); ++i)
        p.vcpu[i] = unknown[i];
    check("create-name-unknown", create(p), -VLIBOS_ENOENT);

    // Call numbers: past the table, far past it, and one whose low 32 bits are a valid call
    // (CONSOLE_WRITE): a kernel that looked only at EAX would print the text below.
    check("syscall-unknown", vlibos_syscall0(99), -VLIBOS_ENOSYS);
    check("syscall-count", vlibos_syscall0(VLIBOS_SYS_COUNT), -VLIBOS_ENOSYS);
    static const char truncated[] = "misbehave: badptr syscall-high TRUNCATED TO A CONSOLE WRITE\n";
    check("syscall-high",
          vlibos_syscall2((uint64_t{1} << 32) | VLIBOS_SYS_CONSOLE_WRITE, address(truncated), sizeof(truncated) - 1),
          -VLIBOS_ENOSYS);

    if (failures == 0)
        rt::print("misbehave: badptr all ok\n");
    else
        rt::print("misbehave: badptr FAILED %d of %d\n", failures, cases);
    g_failures += failures;
}

// ---- time -------------------------------------------------------------------------------------

// A gap longer than this between two clock reads means the thread did not run in between
// (preempted or throttled); shorter ones count as its own CPU time.
constexpr uint64_t kGapNs = 20'000;

// Spins until it has run `cpu_ns` of its own CPU time (estimated from the clock, see kGapNs).
void spin_cpu(uint64_t cpu_ns)
{
    uint64_t used = 0;
    uint64_t last = rt::Clock::now_ns();
    while (used < cpu_ns) {
        uint64_t now = rt::Clock::now_ns();
        if (now - last < kGapNs)
            used += now - last;
        last = now;
    }
}

rt::VcpuStats stats_or_zero()
{
    auto stats = rt::vcpu_stats();
    if (!stats) {
        rt::print("misbehave: vcpu_stats failed: %s\n", stats.error_name());
        ++g_failures;
        return {};
    }
    return stats.value();
}

void overrun(uint64_t periods)
{
    uint64_t budget = stats_or_zero().budget_ns;
    for (uint64_t k = 0; k < periods; ++k) {
        (void)rt::wait_period();
        spin_cpu(3 * budget);
    }
    rt::print("misbehave: overrun done periods=%llu misses=%llu\n", static_cast<unsigned long long>(periods),
              static_cast<unsigned long long>(stats_or_zero().deadline_misses));
}

void hog(uint64_t ms)
{
    uint64_t end = rt::Clock::now_ns() + ms * 1'000'000;
    while (rt::Clock::now_ns() < end) {
    }
    rt::VcpuStats stats = stats_or_zero();
    rt::print("misbehave: hog done ms=%llu misses=%llu budget_used_ns=%llu\n", static_cast<unsigned long long>(ms),
              static_cast<unsigned long long>(stats.deadline_misses),
              static_cast<unsigned long long>(stats.budget_used_ns));
}

void spawn_overload()
{
    int64_t got = vlibos_thread_spawn(9'000'000, 10'000'000, 0, [](void*) {}, nullptr);
    print_result("", "spawn-overload", got, -VLIBOS_EADMISSION, g_failures);
}

// ---- faults -----------------------------------------------------------------------------------

// Deeper than any stack (256 bytes a frame); volatile, so the compiler sees a way out.
volatile unsigned g_max_depth = 0xffff'ffff;

[[gnu::noinline]] unsigned recurse(unsigned depth)
{
    volatile unsigned char frame[256];
    frame[0] = static_cast<unsigned char>(depth);
    if (depth >= g_max_depth)
        return frame[0];
    return recurse(depth + 1) + frame[0];
}

void fault(const char* word)
{
    rt::print("misbehave: %s about to fault\n", word);
    rt::Args::Word w{word, __builtin_strlen(word)};
    if (w.is("write-kernel")) {
        *reinterpret_cast<volatile uint64_t*>(kKernelAddress) = 0;
    } else if (w.is("read-kernel")) {
        (void)*reinterpret_cast<volatile uint64_t*>(kKernelAddress);
    } else if (w.is("write-text")) {
        *reinterpret_cast<volatile uint8_t*>(address(__text_start)) = 0xc3;
    } else if (w.is("ud")) {
        asm volatile("ud2");
    } else if (w.is("div")) {
        // In asm, so the compiler can neither fold nor drop it.
        asm volatile("xor %%edx, %%edx\n\tmov $1, %%eax\n\txor %%ecx, %%ecx\n\tdiv %%ecx" : : : "eax", "ecx", "edx");
    } else if (w.is("gp")) {
        asm volatile("cli");
    } else if (w.is("hlt")) {
        asm volatile("hlt");
    } else if (w.is("cr3")) {
        uint64_t cr3;
        asm volatile("mov %%cr3, %0" : "=r"(cr3));
    } else if (w.is("io")) {
        asm volatile("outb %%al, %%dx" : : "a"('!'), "d"(0x3f8));
    } else if (w.is("stack-overflow")) {
        (void)recurse(0);
    }
    rt::print("misbehave: %s NOT STOPPED\n", word);
    ++g_failures;
}

const char* const kFaultWords[] = {"write-kernel", "read-kernel", "write-text", "ud", "div",
                                   "gp", "hlt", "cr3", "io", "stack-overflow"};

bool is_fault_word(const rt::Args::Word& w)
{
    for (const char* f : kFaultWords) {
        if (w.is(f))
            return true;
    }
    return false;
}

bool is_option(const rt::Args::Word& w)
{
    for (size_t i = 0; i < w.length; ++i) {
        if (w.text[i] == '=')
            return true;
    }
    return false;
}

bool is_known(const rt::Args::Word& w)
{
    return is_option(w) || is_fault_word(w) || w.is("badptr") || w.is("overrun") || w.is("hog") ||
           w.is("spawn-overload");
}

} // namespace

int main(const char* text)
{
    rt::Args args(text);
    bool ok = true;
    for (rt::Args::Word w : args) {
        if (!is_known(w)) {
            rt::print("misbehave: unknown word '%.*s'\n", static_cast<int>(w.length), w.text);
            ok = false;
        }
    }
    auto overrun_periods = args.u64("overrun_periods", 20);
    auto hog_ms = args.u64("hog_ms", 1000);
    if (!overrun_periods || !hog_ms) {
        rt::print("misbehave: overrun_periods and hog_ms take a number\n");
        ok = false;
    }
    if (!ok)
        return 2;

    rt::print("misbehave: start args '%s'\n", text);
    for (rt::Args::Word w : args) {
        char word[32];
        size_t n = w.length < sizeof(word) - 1 ? w.length : sizeof(word) - 1;
        for (size_t i = 0; i < n; ++i)
            word[i] = w.text[i];
        word[n] = '\0';
        if (w.is("badptr"))
            badptr();
        else if (w.is("overrun"))
            overrun(overrun_periods.value());
        else if (w.is("hog"))
            hog(hog_ms.value());
        else if (w.is("spawn-overload"))
            spawn_overload();
        else if (is_fault_word(w))
            fault(word);
    }
    rt::print("misbehave: done\n");
    return g_failures;
}
