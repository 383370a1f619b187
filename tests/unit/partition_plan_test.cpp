// Partition planning: CPU checks against the machine, fixed and first-fit memory placement,
// the messages for each failure, and a property test that no two placements share a byte.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/partition_plan.hpp"

using namespace vlibos::config;
using Catch::Matchers::Contains;

namespace {

struct Outcome {
    Config config;
    Machine machine;
    Plan plan;
    Diagnostics parse_errors;
    Diagnostics errors;
    Diagnostics warnings;
    bool parsed = false;
    bool ok = false;
};

std::string text_of(const Diagnostics& diag)
{
    std::string all;
    for (size_t i = 0; i < diag.count; ++i) {
        all += diag.messages[i].c_str();
        all += '\n';
    }
    return all;
}

Machine make_machine(unsigned cpus, const std::vector<Range>& free)
{
    Machine m{};
    m.cpu_count = cpus;
    REQUIRE(free.size() <= kMaxFreeRanges);
    for (size_t i = 0; i < free.size(); ++i)
        m.free[i] = free[i];
    m.free_count = free.size();
    return m;
}

// The machine vlibos-config-check models by default: 512 MiB of RAM, the first 16 MiB taken.
const std::vector<Range> k512M = {{16 * MiB, 512 * MiB}};

// Every placed range in a plan: the monitor pool, partitions, shared regions. Empty ranges are
// ones that were not placed (only possible when planning failed).
std::vector<Range> placements(const Plan& plan)
{
    std::vector<Range> all{plan.monitor_pool};
    for (size_t i = 0; i < plan.partition_count; ++i)
        all.push_back(plan.partitions[i].memory);
    for (size_t i = 0; i < plan.shared_count; ++i)
        all.push_back(plan.shared[i]);
    all.erase(std::remove_if(all.begin(), all.end(), [](Range r) { return r.end == r.base; }), all.end());
    return all;
}

bool inside_free(const Machine& m, Range r)
{
    // The union of the machine's ranges, which may overlap or touch.
    std::vector<Range> free(m.free, m.free + m.free_count);
    std::sort(free.begin(), free.end(), [](Range a, Range b) { return a.base < b.base; });
    std::vector<Range> merged;
    for (Range f : free) {
        if (f.base >= f.end)
            continue;
        if (!merged.empty() && f.base <= merged.back().end)
            merged.back().end = std::max(merged.back().end, f.end);
        else
            merged.push_back(f);
    }
    for (Range f : merged)
        if (f.base <= r.base && r.end <= f.end)
            return true;
    return false;
}

// What must hold for any plan, successful or not: placements lie in free RAM and never overlap.
// For a successful plan also: sizes, alignment and fixed bases are as configured.
void check_invariants(const Outcome& o)
{
    auto all = placements(o.plan);
    for (size_t i = 0; i < all.size(); ++i) {
        REQUIRE(all[i].base < all[i].end);
        REQUIRE(inside_free(o.machine, all[i]));
        for (size_t j = 0; j < i; ++j)
            REQUIRE((all[i].end <= all[j].base || all[j].end <= all[i].base));
    }
    if (!o.ok)
        return;
    REQUIRE(all.size() == 1 + o.config.partition_count + o.config.shared_count);
    const Plan& p = o.plan;
    CHECK(p.monitor_pool.size() == o.config.monitor_memory);
    CHECK(p.monitor_pool.base % kMonitorAlign == 0);
    for (size_t i = 0; i < o.config.partition_count; ++i) {
        const Partition& c = o.config.partitions[i];
        REQUIRE(p.partitions[i].memory.size() == c.memory.size);
        REQUIRE(p.partitions[i].memory.base % kPartitionAlign == 0);
        if (c.memory.fixed)
            REQUIRE(p.partitions[i].memory.base == c.memory.base);
        REQUIRE(p.partitions[i].cpus == c.cpus);
        for (unsigned cpu = 0; cpu < p.cpu_count; ++cpu)
            REQUIRE(((c.cpus >> cpu) & 1) == (p.cpu_owner[cpu] == i ? 1u : 0u));
    }
    for (size_t i = 0; i < o.config.shared_count; ++i) {
        REQUIRE(p.shared[i].size() == o.config.shared[i].memory.size);
        REQUIRE(p.shared[i].base % kSharedAlign == 0);
        if (o.config.shared[i].memory.fixed)
            REQUIRE(p.shared[i].base == o.config.shared[i].memory.base);
    }
}

std::unique_ptr<Outcome> run_plan(const std::string& text, unsigned cpus, const std::vector<Range>& free = k512M)
{
    auto o = std::make_unique<Outcome>();
    std::unique_ptr<char[]> exact(new char[text.size()]);
    memcpy(exact.get(), text.data(), text.size());
    o->parsed = parse(exact.get(), text.size(), o->config, o->parse_errors);
    INFO(text_of(o->parse_errors));
    REQUIRE(o->parsed);
    o->machine = make_machine(cpus, free);
    o->ok = plan(o->config, o->machine, o->plan, o->errors, o->warnings);
    check_invariants(*o);
    return o;
}

std::unique_ptr<Outcome> run_config(const Config& config, const Machine& machine)
{
    auto o = std::make_unique<Outcome>();
    o->config = config;
    o->machine = machine;
    o->ok = plan(o->config, o->machine, o->plan, o->errors, o->warnings);
    check_invariants(*o);
    return o;
}

#define REQUIRE_PLAN_ERROR(outcome, fragment)                                                                  \
    do {                                                                                                       \
        INFO(text_of((outcome)->errors));                                                                      \
        CHECK_FALSE((outcome)->ok);                                                                            \
        CHECK_THAT(text_of((outcome)->errors), Contains(fragment));                                           \
    } while (0)

std::string read_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string defaults(const char* name)
{
    return read_file(std::string(VLIBOS_FIXTURES_DIR "/../../../kernel/config/defaults/") + name);
}

// rt on cpu 0 and linux on cpu 1, with the given extra lines appended to each partition.
std::string two_partitions(const std::string& rt_extra = "", const std::string& linux_extra = "",
                           const std::string& tail = "")
{
    return "version = 1\n"                               // 1
           "[monitor]\n"                                 // 2
           "memory = 32M\n"                              // 3
           "[partition rt]\n"                            // 4
           "kind = rt\n"                                 // 5
           "cpus = 0\n"                                  // 6
           "memory = 64M\n" +                            // 7
           rt_extra +                                    //
           "[partition linux]\n"                         // 8 (without extras)
           "kind = linux\n"                              //
           "cpus = 1\n"                                  //
           "memory = 256M\n" +                           //
           linux_extra + tail;
}

} // namespace

TEST_CASE("plan: the default configurations fit a 512 MiB machine", "[config]")
{
    struct Case {
        const char* file;
        unsigned cpus;
        size_t partitions;
        size_t shared;
    };
    for (Case c : {Case{"1cpu.cfg", 1, 1, 0}, Case{"2cpu.cfg", 2, 2, 1}, Case{"4cpu.cfg", 4, 2, 1}}) {
        INFO(c.file);
        auto o = run_plan(defaults(c.file), c.cpus);
        INFO(text_of(o->errors));
        CHECK(o->ok);
        CHECK(o->warnings.count == 0);
        CHECK(o->plan.partition_count == c.partitions);
        CHECK(o->plan.shared_count == c.shared);
        CHECK(o->plan.cpu_count == c.cpus);
        CHECK(o->plan.cpu_owner[0] == 0); // the rt partition
        for (unsigned cpu = 0; cpu < c.cpus; ++cpu)
            CHECK(o->plan.cpu_owner[cpu] != kNoPartition);
    }
    auto o = run_plan(defaults("4cpu.cfg"), 4);
    CHECK(o->plan.cpu_owner[1] == 0);
    CHECK(o->plan.cpu_owner[2] == 1);
    CHECK(o->plan.cpu_owner[3] == 1);
    // Largest first, first fit: linux takes the bottom of free RAM.
    CHECK(o->plan.partitions[1].memory.base == 16 * MiB);
    CHECK(o->plan.partitions[1].memory.end == 272 * MiB);
    CHECK(o->plan.partitions[0].memory.base == 272 * MiB);
    CHECK(o->plan.monitor_pool.base == 336 * MiB);
    CHECK(o->plan.shared[0].base == 368 * MiB);
}

TEST_CASE("plan: defaults on a machine with a different CPU count", "[config]")
{
    auto o = run_plan(defaults("4cpu.cfg"), 2);
    REQUIRE_PLAN_ERROR(o, "partition 'linux': cpus 2-3 are not present (the machine has 2 CPUs)");
    o = run_plan(defaults("1cpu.cfg"), 4);
    CHECK(o->ok);
    CHECK_THAT(text_of(o->warnings), Contains("cpus 1-3 are in no partition and stay parked"));
    CHECK(o->plan.cpu_owner[2] == kNoPartition);
}

TEST_CASE("plan: cpus must exist", "[config]")
{
    std::string text = two_partitions();
    text.replace(text.find("cpus = 1"), 8, "cpus = 3");
    REQUIRE_PLAN_ERROR(run_plan(text, 2), "line 8: partition 'linux': cpu 3 is not present (the machine has 2 CPUs)");
    text.replace(text.find("cpus = 3"), 8, "cpus = 1-63");
    REQUIRE_PLAN_ERROR(run_plan(text, 1), "partition 'linux': cpus 1-63 are not present (the machine has 1 CPU)");
    CHECK(run_plan(text, 64)->ok);
}

TEST_CASE("plan: cpu 0 belongs to the rt partition", "[config]")
{
    std::string text = two_partitions();
    text.replace(text.find("cpus = 0"), 8, "cpus = 1");
    text.replace(text.find("cpus = 1", text.find("[partition linux]")), 8, "cpus = 0");
    REQUIRE_PLAN_ERROR(run_plan(text, 2),
                       "line 8: partition 'linux': cpu 0 is the boot CPU and must belong to the rt partition 'rt'");

    text = two_partitions();
    text.replace(text.find("cpus = 0"), 8, "cpus = 2");
    auto o = run_plan(text, 3);
    REQUIRE_PLAN_ERROR(o, "cpu 0 (the boot CPU) is in no partition; it must belong to the rt partition 'rt'");
    CHECK(o->warnings.count == 1);
    CHECK_THAT(text_of(o->warnings), Contains("cpu 0 is in no partition and stays parked"));
}

TEST_CASE("plan: cpus no partition names are a warning", "[config]")
{
    auto o = run_plan(two_partitions(), 4);
    CHECK(o->ok);
    CHECK(o->errors.count == 0);
    CHECK_THAT(text_of(o->warnings), Contains("cpus 2-3 are in no partition and stay parked"));
    o = run_plan(two_partitions(), 3);
    CHECK_THAT(text_of(o->warnings), Contains("cpu 2 is in no partition and stays parked"));
}

TEST_CASE("plan: machines with more than 64 CPUs, or none", "[config]")
{
    auto o = run_plan(two_partitions(), 100);
    CHECK(o->ok);
    CHECK(o->plan.cpu_count == kMaxCpus);
    CHECK_THAT(text_of(o->warnings), Contains("the machine has 100 CPUs; a configuration can name only cpus 0-63"));
    CHECK_THAT(text_of(o->warnings), Contains("cpus 2-63 are in no partition"));
    REQUIRE_PLAN_ERROR(run_plan(two_partitions(), 0), "machine: no CPUs reported");
}

TEST_CASE("plan: fixed bases must be usable RAM", "[config]")
{
    auto o = run_plan(two_partitions("base = 0x40000000\n"), 2);
    REQUIRE_PLAN_ERROR(o, "line 4: partition 'rt': 0x40000000-0x43ffffff is not usable RAM");
    // Straddling a hole between two free ranges is not one usable block either.
    o = run_plan(two_partitions("base = 0x6000000\n"), 2, {{16 * MiB, 100 * MiB}, {101 * MiB, 512 * MiB}});
    REQUIRE_PLAN_ERROR(o, "partition 'rt': 0x6000000-0x9ffffff is not usable RAM");
    // Below the free RAM (where the monitor image and modules live).
    o = run_plan(two_partitions("base = 0x200000\n"), 2);
    REQUIRE_PLAN_ERROR(o, "partition 'rt': 0x200000-0x41fffff is not usable RAM");

    o = run_plan(two_partitions("base = 0x8000000\n"), 2);
    INFO(text_of(o->errors));
    REQUIRE(o->ok);
    CHECK(o->plan.partitions[0].memory.base == 0x8000000);
    CHECK(o->plan.partitions[0].memory.end == 0xc000000);
    // linux (256 MiB) does not fit below 0x8000000 (112 MiB free there), so it goes above rt;
    // the monitor pool then takes the bottom.
    CHECK(o->plan.partitions[1].memory.base == 0xc000000);
    CHECK(o->plan.monitor_pool.base == 16 * MiB);
}

TEST_CASE("plan: fixed regions must not overlap", "[config]")
{
    std::string shared = "[shared rpc]\nmemory = 4M\nbase = 0x12000000\nbetween = rt, linux\n";
    auto o = run_plan(two_partitions("base = 0x10000000\n", "", shared), 2);
    REQUIRE_PLAN_ERROR(o, "line 13: shared 'rpc': 0x12000000-0x123fffff overlaps partition 'rt' (line 4) at "
                          "0x12000000-0x123fffff");
    o = run_plan(two_partitions("base = 0x10000000\n", "base = 0x8000000\n"), 2);
    REQUIRE_PLAN_ERROR(o, "line 9: partition 'linux': 0x8000000-0x17ffffff overlaps partition 'rt' (line 4) at "
                          "0x10000000-0x13ffffff");
    CHECK(o->errors.count == 1); // reported as an overlap, not also as "not usable RAM"
    // Touching is not overlapping.
    o = run_plan(two_partitions("base = 0x14000000\n", "base = 0x4000000\n"), 2);
    CHECK(o->ok);
}

TEST_CASE("plan: sized regions that do not fit say how much is free", "[config]")
{
    // 100 MiB + 80 MiB free: linux (the largest) is tried first, with all of it still free.
    auto o = run_plan(two_partitions(), 2, {{16 * MiB, 116 * MiB}, {200 * MiB, 280 * MiB}});
    REQUIRE_PLAN_ERROR(o, "line 8: partition 'linux': 256 MiB does not fit: largest free block is 100 MiB, "
                          "180 MiB free in total");
    CHECK(o->errors.count == 1);
    // The others were still placed.
    CHECK(o->plan.partitions[0].memory.size() == 64 * MiB);
    CHECK(o->plan.monitor_pool.size() == 32 * MiB);

    // The largest block is counted from its first 2 MiB boundary.
    o = run_plan(two_partitions(), 2, {{17 * MiB, 272 * MiB}, {300 * MiB, 400 * MiB}});
    REQUIRE_PLAN_ERROR(o, "partition 'linux': 256 MiB does not fit: largest free block is 254 MiB, 355 MiB free in total");

    o = run_plan(two_partitions(), 2, {{16 * MiB, 48 * MiB}});
    REQUIRE_PLAN_ERROR(o, "partition 'linux': 256 MiB does not fit");
    REQUIRE_PLAN_ERROR(o, "line 4: partition 'rt': 64 MiB does not fit: largest free block is 32 MiB, 32 MiB free in total");
    // linux and rt failed; the 32 MiB monitor pool, next in size order, still got the range.
    CHECK(o->plan.monitor_pool.size() == 32 * MiB);

    o = run_plan(two_partitions(), 2, {{16 * MiB, 20 * MiB}});
    REQUIRE_PLAN_ERROR(o, "line 2: monitor: 32 MiB does not fit: largest free block is 4 MiB, 4 MiB free in total");
}

TEST_CASE("plan: alignment of placements", "[config]")
{
    std::string shared = "[shared a]\nmemory = 4K\nbetween = rt, linux\n[shared b]\nmemory = 8K\nbetween = rt, linux\n";
    // Free RAM starts off a 2 MiB boundary: partitions round up, shared regions and the pool need only 4 KiB.
    auto o = run_plan(two_partitions("", "", shared), 2, {{0x1001000, 0x2000000}, {0x3000000, 0x20000000}});
    INFO(text_of(o->errors));
    REQUIRE(o->ok);
    CHECK(o->plan.partitions[1].memory.base == 0x3000000);
    CHECK(o->plan.partitions[0].memory.base == 0x13000000);
    CHECK(o->plan.monitor_pool.base == 0x17000000);
    CHECK(o->plan.shared[1].base == 0x1001000); // 8K before 4K: larger first
    CHECK(o->plan.shared[0].base == 0x1003000);
}

TEST_CASE("plan: the machine's free ranges are sorted and merged", "[config]")
{
    // linux needs 256 MiB contiguous: only the join of the two adjacent ranges provides it.
    auto o = run_plan(two_partitions(), 2,
                      {{400 * MiB, 512 * MiB}, {200 * MiB, 330 * MiB}, {16 * MiB, 200 * MiB}, {0, 0}, {100 * MiB, 120 * MiB}});
    INFO(text_of(o->errors));
    REQUIRE(o->ok);
    CHECK(o->plan.partitions[1].memory.base == 16 * MiB);
    REQUIRE_PLAN_ERROR(run_plan(two_partitions(), 2, {{16 * MiB, 512 * MiB}, {300 * MiB, 200 * MiB}}),
                       "machine: free RAM range 1 (0x12c00000-0xc800000) ends before it starts");
    REQUIRE_PLAN_ERROR(run_plan(two_partitions(), 2, {}), "partition 'linux': 256 MiB does not fit: largest free block "
                                                          "is 0 bytes, 0 bytes free in total");
    // Free RAM at the very top of the address space: alignment must not wrap around.
    o = run_plan(two_partitions(), 2, {{UINT64_MAX - 3 * MiB, UINT64_MAX}, {16 * MiB, 512 * MiB}});
    CHECK(o->ok);
}

TEST_CASE("plan: a hand-built Config is checked, not trusted", "[config]")
{
    auto config = std::make_unique<Config>();
    Config& c = *config;
    c.version = 1;
    c.monitor_memory = 4 * MiB;
    c.partition_count = 2;
    strcpy(c.partitions[0].name, "rt");
    c.partitions[0].kind = Kind::Rt;
    c.partitions[0].cpus = 0x3;
    c.partitions[0].memory = {4 * MiB, false, 0};
    strcpy(c.partitions[1].name, "linux");
    c.partitions[1].kind = Kind::Linux;
    c.partitions[1].cpus = 0x6;
    c.partitions[1].memory = {3 * MiB, false, 0};
    Machine m = make_machine(4, k512M);

    auto o = run_config(c, m);
    REQUIRE_PLAN_ERROR(o, "partition 'linux': cpu 1 is also in partition 'rt'");
    REQUIRE_PLAN_ERROR(o, "partition 'linux': memory 3 MiB is not a non-zero multiple of 2 MiB");

    c.partitions[1].cpus = 0;
    REQUIRE_PLAN_ERROR(run_config(c, m), "partition 'linux': has no CPUs");

    c.partitions[1].memory = {4 * MiB, true, UINT64_MAX - 2 * MiB + 1};
    REQUIRE_PLAN_ERROR(run_config(c, m), "is not aligned to 2 MiB or runs past 2^64");

    c.partition_count = 9;
    REQUIRE_PLAN_ERROR(run_config(c, m), "config: 9 partitions and 0 shared regions exceed the limits");

    c.partition_count = 2;
    c.partitions[1].memory = {4 * MiB, false, 0};
    c.shared_count = 1;
    strcpy(c.shared[0].name, "rpc");
    c.shared[0].memory = {4 * KiB, false, 0};
    c.shared[0].partition_count = 2;
    c.shared[0].partitions[0] = 0;
    c.shared[0].partitions[1] = 5;
    REQUIRE_PLAN_ERROR(run_config(c, m), "shared 'rpc': refers to a partition that does not exist");

    m.free_count = kMaxFreeRanges + 1;
    c.shared[0].partitions[1] = 1;
    REQUIRE_PLAN_ERROR(run_config(c, m), "machine: 65 free RAM ranges exceed the limit of 64");
}

TEST_CASE("plan: many free fragments and many regions", "[config]")
{
    // 64 fragments of 6 MiB each, 2 MiB apart; 8 partitions + 8 shared + the pool all fit.
    std::vector<Range> free;
    for (uint64_t i = 0; i < kMaxFreeRanges; ++i)
        free.push_back({(16 + 8 * i) * MiB, (22 + 8 * i) * MiB});
    // Hand-built: the parser would reject seven linux partitions, the planner does not care.
    Config c{};
    c.version = 1;
    c.monitor_memory = 4 * MiB;
    c.partition_count = kMaxPartitions;
    for (size_t i = 0; i < kMaxPartitions; ++i) {
        snprintf(c.partitions[i].name, sizeof c.partitions[i].name, "p%u", static_cast<unsigned>(i));
        c.partitions[i].kind = i == 0 ? Kind::Rt : Kind::Linux;
        c.partitions[i].cpus = uint64_t{1} << i;
        c.partitions[i].memory = {4 * MiB, false, 0};
    }
    c.shared_count = kMaxShared;
    for (size_t i = 0; i < kMaxShared; ++i) {
        snprintf(c.shared[i].name, sizeof c.shared[i].name, "s%u", static_cast<unsigned>(i));
        c.shared[i].memory = {(i + 1) * 4 * KiB, false, 0};
        c.shared[i].partition_count = 2;
        c.shared[i].partitions[0] = 0;
        c.shared[i].partitions[1] = 1;
    }
    auto o = run_config(c, make_machine(8, free));
    INFO(text_of(o->errors));
    CHECK(o->ok);
}

TEST_CASE("plan: random configurations never overlap", "[config]")
{
    std::mt19937_64 rng(0x5eed);
    auto pick = [&](uint64_t n) { return rng() % n; };
    int successes = 0;
    for (int round = 0; round < 3000; ++round) {
        auto config = std::make_unique<Config>();
        Config& c = *config;
        c.version = 1;
        c.monitor_memory = (1 + pick(16)) * 4 * KiB * (pick(2) ? 256 : 1);
        c.partition_count = 1 + pick(kMaxPartitions);
        uint64_t cpus_left = ~uint64_t{0};
        for (size_t i = 0; i < c.partition_count; ++i) {
            Partition& p = c.partitions[i];
            snprintf(p.name, sizeof p.name, "p%u", static_cast<unsigned>(i));
            p.kind = i == 0 ? Kind::Rt : Kind::Linux;
            p.cpus = (uint64_t{1} << i) & cpus_left;
            cpus_left &= ~p.cpus;
            p.memory.size = (1 + pick(64)) * kPartitionAlign;
            p.memory.fixed = pick(4) == 0;
            p.memory.base = pick(300) * kPartitionAlign;
        }
        c.shared_count = pick(kMaxShared + 1);
        for (size_t i = 0; i < c.shared_count; ++i) {
            SharedRegion& s = c.shared[i];
            snprintf(s.name, sizeof s.name, "s%u", static_cast<unsigned>(i));
            s.memory.size = (1 + pick(1024)) * kSharedAlign;
            s.memory.fixed = pick(4) == 0;
            s.memory.base = pick(200000) * kSharedAlign;
            s.partition_count = 0;
        }
        Machine m{};
        m.cpu_count = static_cast<unsigned>(1 + pick(12));
        m.free_count = 1 + pick(12);
        for (size_t i = 0; i < m.free_count; ++i) {
            uint64_t base = pick(800 * MiB / KiB) * KiB;
            m.free[i] = Range{base, base + pick(300 * MiB / KiB) * KiB};
        }
        auto o = run_config(c, m); // check_invariants() asserts disjoint, in-RAM placements
        successes += o->ok ? 1 : 0;
    }
    // The generator must exercise both outcomes to mean anything.
    CHECK(successes > 100);
    CHECK(successes < 2900);
}

TEST_CASE("plan: random configuration text parses and plans without overlap", "[config]")
{
    std::mt19937_64 rng(77);
    auto pick = [&](uint64_t n) { return rng() % n; };
    int planned = 0;
    for (int round = 0; round < 1000; ++round) {
        std::string text = "version = 1\n[monitor]\nmemory = " + std::to_string(4 * (1 + pick(8))) + "M\n";
        size_t partitions = 1 + pick(2);
        for (size_t i = 0; i < partitions; ++i) {
            text += "[partition p" + std::to_string(i) + "]\nkind = " + (i == 0 ? "rt" : "linux") + "\n";
            // linux sometimes asks for CPUs the machine lacks.
            text += i == 0 ? std::string("cpus = 0\n") : (pick(2) ? "cpus = 1\n" : "cpus = 1-3\n");
            text += "memory = " + std::to_string(2 * (1 + pick(100))) + "M\n";
            if (pick(3) == 0)
                text += "base = " + std::to_string(2 * (8 + pick(200))) + "M\n";
        }
        if (partitions == 2 && pick(2)) {
            text += "[shared rpc]\nmemory = " + std::to_string(4 * (1 + pick(512))) + "K\nbetween = p0, p1\n";
            if (pick(3) == 0)
                text += "base = 0x" + std::to_string(1 + pick(9)) + "000000\n";
        }
        auto o = std::make_unique<Outcome>();
        o->parsed = parse(text.data(), text.size(), o->config, o->parse_errors);
        INFO(text);
        INFO(text_of(o->parse_errors));
        REQUIRE(o->parsed);
        o->machine = make_machine(static_cast<unsigned>(1 + pick(4)), {{16 * MiB, (64 + pick(512)) * MiB}});
        o->ok = plan(o->config, o->machine, o->plan, o->errors, o->warnings);
        check_invariants(*o);
        planned += o->ok ? 1 : 0;
    }
    CHECK(planned > 50);
}
