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

enum class Kind : uint8_t { Rt, Linux };

struct MemorySpec {
    uint64_t size;
    bool fixed;    // true when `base` was given
    uint64_t base; // host-physical; meaningful only when fixed
};

struct Partition {
    char name[kMaxNameLength + 1];
    Kind kind;
    uint64_t cpus; // bit n set = logical CPU n
    MemorySpec memory;
    unsigned line; // of the [partition NAME] header
};

struct SharedRegion {
    char name[kMaxNameLength + 1];
    MemorySpec memory;
    uint8_t partitions[kMaxPartitions]; // indices into Config::partitions
    size_t partition_count;
    unsigned line; // of the [shared NAME] header
};

struct Config {
    unsigned version;
    uint64_t monitor_memory;
    unsigned monitor_line; // of the [monitor] header
    Partition partitions[kMaxPartitions];
    size_t partition_count;
    SharedRegion shared[kMaxShared];
    size_t shared_count;
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

// Number syntax shared by the parser and host tools.
enum class NumberError : uint8_t { Empty, NotANumber, BadSuffix, Overflow };

// Unsigned integer: decimal, or hexadecimal with a 0x prefix.
Result<uint64_t, NumberError> parse_number(const char* text, size_t length);
// A number with an optional K, M or G suffix (binary units, either case).
Result<uint64_t, NumberError> parse_size(const char* text, size_t length);

// "64 MiB", "1 GiB", "4 KiB" or "12345 bytes": the largest unit that divides the value exactly.
size_t format_size(char* buffer, size_t size, uint64_t bytes);
// "0-1,4,6-7" for a CPU mask; "none" for an empty one.
size_t format_cpus(char* buffer, size_t size, uint64_t mask);

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
struct CpuText {
    char text[96];
};
inline CpuText cpu_text(uint64_t mask)
{
    CpuText s{};
    format_cpus(s.text, sizeof s.text, mask);
    return s;
}

} // namespace vlibos::config
