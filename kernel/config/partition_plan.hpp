// Partition planning: checks a parsed Config against the machine it boots on and places every
// partition, shared region and the monitor's pool in host-physical memory. Pure logic, so the
// same plan the monitor will use can be computed and checked on the host (vlibos-config-check).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "config/config.hpp"

namespace vlibos::config {

constexpr size_t kMaxFreeRanges = 64;
constexpr uint8_t kNoPartition = 0xff;

// Half-open physical address range [base, end).
struct Range {
    uint64_t base;
    uint64_t end;
    uint64_t size() const { return end - base; }
};

// What the monitor learned about the machine before planning.
struct Machine {
    unsigned cpu_count; // logical CPUs 0..cpu_count-1; CPU 0 is the boot CPU
    // Usable RAM with the monitor image, boot modules, the first 1 MiB and firmware areas
    // already removed. Any order; adjacent or overlapping ranges are merged.
    Range free[kMaxFreeRanges];
    size_t free_count;
};

struct PlannedPartition {
    uint64_t cpus; // same mask as the Config, checked against the machine
    Range memory;  // contiguous, 2 MiB aligned
};

struct Plan {
    PlannedPartition partitions[kMaxPartitions]; // same order as Config::partitions
    size_t partition_count;
    Range shared[kMaxShared]; // same order as Config::shared; 4 KiB aligned
    size_t shared_count;
    Range monitor_pool; // the monitor's frame pool; 4 KiB aligned
    uint8_t cpu_owner[kMaxCpus]; // partition index, or kNoPartition for a parked CPU
    unsigned cpu_count;          // CPUs the plan covers: the machine's, at most kMaxCpus
};

// Fills `out` and returns true if the configuration fits the machine. Every problem is added to
// `errors` (and the plan must then not be used); harmless oddities such as CPUs no partition
// names go to `warnings`. No two placed ranges share a byte, and each lies inside one free range.
bool plan(const Config& config, const Machine& machine, Plan& out, Diagnostics& errors, Diagnostics& warnings);

} // namespace vlibos::config
