// The partition configuration: which CPUs and how much memory go to the RT sandbox, the Linux VM,
// shared RPC memory and the monitor's own pool. It arrives as untrusted text (a GRUB module), so
// the parser bounds everything, clamps nothing, and reports every problem it finds by line.
// The format and every rule are described in docs/configuration.md.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/format.hpp"
#include "lib/result.hpp"

namespace vlibos::config {

constexpr size_t kMaxPartitions = 8;
constexpr size_t kMaxShared = 8;
constexpr size_t kMaxCpus = 64; // one bit per CPU in a uint64_t mask
constexpr size_t kMaxNameLength = 15;
constexpr size_t kMaxApps = 8;
constexpr size_t kMaxAppVcpus = 8;
constexpr size_t kMaxArgsLength = 63;
constexpr size_t kMaxPciFunctions = 8; // per partition
constexpr size_t kMaxDiagnostics = 16;
constexpr size_t kMaxDiagnosticLength = 160;
// Larger input is rejected rather than truncated; real configurations are a few hundred bytes.
constexpr size_t kMaxTextLength = 64 * 1024;
constexpr unsigned kVersion = 1;

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;
constexpr uint64_t GiB = 1024 * MiB;
// Guest RAM is mapped with 2 MiB pages in EPT/NPT, so partition memory comes in those units.
constexpr uint64_t kPartitionAlign = 2 * MiB;
constexpr uint64_t kSharedAlign = 4 * KiB;
constexpr uint64_t kMonitorAlign = 4 * KiB;
// RT applications: their RAM and main stack come in 4 KiB pages, carved from the rt partition.
constexpr uint64_t kAppAlign = 4 * KiB;
constexpr uint64_t kDefaultAppMemory = 1 * MiB;
constexpr uint64_t kDefaultAppStack = 64 * KiB;
constexpr uint64_t kMinAppStack = 8 * KiB;
// What an rt partition keeps beyond its apps' memory for the monitor's per-partition use.
constexpr uint64_t kRtMonitorReserve = 4 * MiB;

// VCPU times are in nanoseconds.
constexpr uint64_t kNsPerUs = 1000;
constexpr uint64_t kNsPerMs = 1000 * kNsPerUs;
constexpr uint64_t kNsPerS = 1000 * kNsPerMs;
constexpr uint64_t kMaxVcpuPeriodNs = 10 * kNsPerS; // budget <= period <= 10 s

enum class Kind : uint8_t { Rt, Linux };

// How an rt partition's cores order their Main VCPUs: by period (rate-monotonic) or by the
// `priority` each VCPU names (explicit). Maps to rt::PriorityPolicy.
enum class Scheduling : uint8_t { RateMonotonic, Explicit };

struct MemorySpec {
    uint64_t size;
    bool fixed;    // true when `base` was given
    uint64_t base; // host-physical; meaningful only when fixed
};

// A PCI function passed through to a Linux VM, written BB:DD.F in hexadecimal. The widths are
// those of a configuration address: 8-bit bus, 5-bit device, 3-bit function (PCI Local Bus
// Specification 3.0, 3.2.2.3.2). Segment (domain) 0 only.
struct PciFunction {
    uint8_t bus;
    uint8_t device;   // 0 to 0x1f
    uint8_t function; // 0 to 7
};

struct Partition {
    char name[kMaxNameLength + 1];
    Kind kind;
    uint64_t cpus; // bit n set = logical CPU n
    MemorySpec memory;
    Scheduling scheduling; // rt partitions; Linux partitions: RateMonotonic, unused
    PciFunction pci[kMaxPciFunctions]; // kind = linux only, in file order; distinct, never 00:00.0
    size_t pci_count;                  // 0 when `pci` is absent
    unsigned line; // of the [partition NAME] header
};

struct SharedRegion {
    char name[kMaxNameLength + 1];
    MemorySpec memory;
    uint8_t partitions[kMaxPartitions]; // indices into Config::partitions
    size_t partition_count;
    unsigned line; // of the [shared NAME] header
};

// One `vcpu = NAME BUDGET PERIOD [priority N]` line of an app.
struct VcpuSpec {
    char name[kMaxNameLength + 1];
    uint64_t budget_ns;  // C: 0 < C <= T
    uint64_t period_ns;  // T: <= kMaxVcpuPeriodNs
    uint32_t priority;   // 0 is the most urgent; only with has_priority
    bool has_priority;   // set exactly when the partition's scheduling is Explicit
    unsigned line;       // of the vcpu line
};

// An RT application: an ELF from GRUB module "vlibos.app:<module>", run on one CPU of the rt
// partition with its VCPUs; vcpus[0] runs the entry thread.
struct App {
    char name[kMaxNameLength + 1];
    char module[kMaxNameLength + 1]; // [A-Za-z0-9_.-]
    unsigned cpu;                    // a CPU of a kind = rt partition
    uint64_t memory;                 // segments + main stack; a multiple of 4 KiB
    uint64_t stack;                  // main thread stack; 4 KiB multiple, >= 8 KiB, < memory
    char args[kMaxArgsLength + 1];   // printable ASCII, may be empty
    VcpuSpec vcpus[kMaxAppVcpus];
    size_t vcpu_count;               // 1 to kMaxAppVcpus
    unsigned line;                   // of the [app NAME] header
};

struct Config {
    unsigned version;
    uint64_t monitor_memory;
    unsigned monitor_line; // of the [monitor] header
    Partition partitions[kMaxPartitions];
    size_t partition_count;
    SharedRegion shared[kMaxShared];
    size_t shared_count;
    App apps[kMaxApps]; // in file order, which is also the order VCPUs are admitted in
    size_t app_count;
};

// A bounded list of messages such as "line 12: partition 'linux': cpu 7 is listed twice".
// Messages past the cap are counted in `dropped`, so a caller can say how many were not shown.
struct Diagnostics {
    FormatBuffer<kMaxDiagnosticLength> messages[kMaxDiagnostics];
    size_t count = 0;
    size_t dropped = 0;

    void add(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
    bool ok() const { return count == 0 && dropped == 0; }
    size_t total() const { return count + dropped; }
    void clear();
};

// Parses and validates `length` bytes of configuration text (no NUL terminator needed).
// Returns false if any error was found; every error is added to `diag`. `out` is usable only
// when this returns true.
bool parse(const char* text, size_t length, Config& out, Diagnostics& diag);

const char* kind_name(Kind kind);
// "rate-monotonic" or "explicit", as written in the file.
const char* scheduling_name(Scheduling scheduling);
// Index of the partition owning `cpu`, or -1.
int partition_of_cpu(const Config& config, unsigned cpu);

// Number syntax shared by the parser and host tools.
enum class NumberError : uint8_t { Empty, NotANumber, BadSuffix, Overflow };

// Unsigned integer: decimal, or hexadecimal with a 0x prefix.
Result<uint64_t, NumberError> parse_number(const char* text, size_t length);
// A number with an optional K, M or G suffix (binary units, either case).
Result<uint64_t, NumberError> parse_size(const char* text, size_t length);
// A time in nanoseconds: a decimal integer followed directly by its unit, ns, us, ms or s
// ("20ms"). A missing or unknown unit is BadSuffix.
Result<uint64_t, NumberError> parse_time(const char* text, size_t length);

// "64 MiB", "1 GiB", "4 KiB" or "12345 bytes": the largest unit that divides the value exactly.
size_t format_size(char* buffer, size_t size, uint64_t bytes);
// "0-1,4,6-7" for a CPU mask; "none" for an empty one.
size_t format_cpus(char* buffer, size_t size, uint64_t mask);
// "20 ms", "1 s", "500 us" or "1500 ns": the largest unit that divides the time exactly.
size_t format_time(char* buffer, size_t size, uint64_t ns);
// "00:03.0": a PCI function as the configuration writes it (lower-case hex).
size_t format_pci(char* buffer, size_t size, PciFunction function);

// The same, as values that can be passed straight to a format call (for diagnostics).
struct SizeText {
    char text[32];
};
inline SizeText size_text(uint64_t bytes)
{
    SizeText s{};
    format_size(s.text, sizeof s.text, bytes);
    return s;
}
struct TimeText {
    char text[32];
};
inline TimeText time_text(uint64_t ns)
{
    TimeText s{};
    format_time(s.text, sizeof s.text, ns);
    return s;
}
struct CpuText {
    char text[96];
};
inline CpuText cpu_text(uint64_t mask)
{
    CpuText s{};
    format_cpus(s.text, sizeof s.text, mask);
    return s;
}
struct PciText {
    char text[16];
};
inline PciText pci_text(PciFunction function)
{
    PciText s{};
    format_pci(s.text, sizeof s.text, function);
    return s;
}

} // namespace vlibos::config
