// RT applications and their VCPUs in the partition configuration: [app NAME] sections, the time
// syntax, `scheduling` on rt partitions, every rule and the text of its message, and robustness
// of the new keys against malformed input. Inputs are copied into exactly-sized heap buffers (no
// NUL terminator) so ASan catches any read past `length`.
#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <random>
#include <string>

#include "config/config.hpp"

using namespace vlibos::config;
using Catch::Matchers::Contains;

namespace {

struct Parsed {
    Config config;
    Diagnostics diag;
    bool ok;
    std::string messages() const
    {
        std::string all;
        for (size_t i = 0; i < diag.count; ++i) {
            all += diag.messages[i].c_str();
            all += '\n';
        }
        return all;
    }
};

std::unique_ptr<Parsed> parse_text(const std::string& text)
{
    auto result = std::make_unique<Parsed>();
    std::unique_ptr<char[]> exact(new char[text.size()]);
    if (!text.empty())
        memcpy(exact.get(), text.data(), text.size());
    result->ok = parse(exact.get(), text.size(), result->config, result->diag);
    return result;
}

const char* const kApps = "version = 1\n"              // 1
                          "[monitor]\n"                // 2
                          "memory = 32M\n"             // 3
                          "[partition rt]\n"           // 4
                          "kind = rt\n"                // 5
                          "cpus = 0-1\n"               // 6
                          "memory = 64M\n"             // 7
                          "[partition linux]\n"        // 8
                          "kind = linux\n"             // 9
                          "cpus = 2-3\n"               // 10
                          "memory = 256M\n"            // 11
                          "[app periodic]\n"           // 12
                          "module = periodic\n"        // 13
                          "cpu = 1\n"                  // 14
                          "memory = 2M\n"              // 15
                          "stack = 64K\n"              // 16
                          "args = periods=200\n"       // 17
                          "vcpu = main 1ms 20ms\n"     // 18
                          "vcpu = fast 1ms 5ms\n"      // 19
                          "vcpu = slow 4ms 40ms\n";    // 20

// kApps with one line replaced (1-based); the replacement may hold several lines or none.
std::string with_line(unsigned line, const std::string& replacement)
{
    std::string text = kApps;
    size_t start = 0;
    for (unsigned l = 1; l < line; ++l)
        start = text.find('\n', start) + 1;
    size_t end = text.find('\n', start);
    return text.substr(0, start) + replacement + text.substr(end);
}

// `text` with the first `from` replaced by `to` (which must be there).
std::string swap(std::string text, const std::string& from, const std::string& to)
{
    size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    return text.replace(at, from.size(), to);
}

// kApps with `scheduling = explicit` in the rt partition (after line 7, so app lines move by one).
std::string explicit_rt(const std::string& app_lines)
{
    std::string text = kApps;
    text.replace(text.find("memory = 64M\n"), 13, "memory = 64M\nscheduling = explicit\n");
    text = text.substr(0, text.find("[app periodic]"));
    return text + "[app periodic]\nmodule = periodic\ncpu = 1\n" + app_lines;
}

// An rt/linux pair and one app with only the given lines, for the required-key tests.
std::string app_only(const std::string& app_lines)
{
    return std::string(kApps).substr(0, std::string(kApps).find("[app periodic]")) + "[app periodic]\n" + app_lines;
}

#define REQUIRE_ERROR(parsed, fragment)                                                                       \
    do {                                                                                                       \
        INFO((parsed)->messages());                                                                            \
        CHECK_FALSE((parsed)->ok);                                                                             \
        CHECK_THAT((parsed)->messages(), Contains(fragment));                                                  \
    } while (0)

#define REQUIRE_OK(parsed)                                                                                    \
    do {                                                                                                       \
        INFO((parsed)->messages());                                                                            \
        REQUIRE((parsed)->ok);                                                                                 \
    } while (0)

} // namespace

TEST_CASE("config apps: a valid app fills every field", "[config]")
{
    auto p = parse_text(kApps);
    REQUIRE_OK(p);
    const Config& c = p->config;
    CHECK(c.partitions[0].scheduling == Scheduling::RateMonotonic);
    CHECK(c.partitions[1].scheduling == Scheduling::RateMonotonic);
    REQUIRE(c.app_count == 1);
    const App& a = c.apps[0];
    CHECK(std::string(a.name) == "periodic");
    CHECK(std::string(a.module) == "periodic");
    CHECK(a.cpu == 1);
    CHECK(a.memory == 2 * MiB);
    CHECK(a.stack == 64 * KiB);
    CHECK(std::string(a.args) == "periods=200");
    CHECK(a.line == 12);
    REQUIRE(a.vcpu_count == 3);
    CHECK(std::string(a.vcpus[0].name) == "main");
    CHECK(a.vcpus[0].budget_ns == 1'000'000);
    CHECK(a.vcpus[0].period_ns == 20'000'000);
    CHECK_FALSE(a.vcpus[0].has_priority);
    CHECK(a.vcpus[0].line == 18);
    CHECK(std::string(a.vcpus[1].name) == "fast");
    CHECK(a.vcpus[1].period_ns == 5'000'000);
    CHECK(std::string(a.vcpus[2].name) == "slow");
    CHECK(a.vcpus[2].budget_ns == 4'000'000);
    CHECK(a.vcpus[2].line == 20);

    CHECK(partition_of_cpu(c, 0) == 0);
    CHECK(partition_of_cpu(c, 1) == 0);
    CHECK(partition_of_cpu(c, 3) == 1);
    CHECK(partition_of_cpu(c, 4) == -1);
    CHECK(partition_of_cpu(c, 63) == -1);
    CHECK(partition_of_cpu(c, 64) == -1);
    CHECK(partition_of_cpu(c, 1000) == -1);
    CHECK(std::string(scheduling_name(Scheduling::RateMonotonic)) == "rate-monotonic");
    CHECK(std::string(scheduling_name(Scheduling::Explicit)) == "explicit");
}

TEST_CASE("config apps: defaults, optional keys and several apps", "[config]")
{
    // memory, stack and args are optional; apps may come before the partitions; several apps
    // may share a CPU and a module; tabs and comments as everywhere else.
    std::string text = "version = 1\n[monitor]\nmemory = 32M\n"
                       "[app a]\nmodule = Periodic.v2-x_1\ncpu = 0\nvcpu = main\t500us   1s # comment\n"
                       "[app b]\nmodule = Periodic.v2-x_1\ncpu = 0\nvcpu = main 1ms 10ms\nvcpu = io 10us 100us\n"
                       "[partition rt]\nkind = rt\ncpus = 0\nmemory = 6M\nscheduling = rate-monotonic\n";
    auto p = parse_text(text);
    REQUIRE_OK(p);
    const Config& c = p->config;
    REQUIRE(c.app_count == 2);
    CHECK(c.apps[0].memory == kDefaultAppMemory);
    CHECK(c.apps[0].memory == 1 * MiB);
    CHECK(c.apps[0].stack == kDefaultAppStack);
    CHECK(c.apps[0].stack == 64 * KiB);
    CHECK(std::string(c.apps[0].args).empty());
    CHECK(std::string(c.apps[0].module) == "Periodic.v2-x_1");
    CHECK(c.apps[0].vcpus[0].budget_ns == 500'000);
    CHECK(c.apps[0].vcpus[0].period_ns == 1'000'000'000);
    CHECK(c.apps[1].vcpu_count == 2);
    CHECK(c.apps[1].vcpus[1].budget_ns == 10'000);
    // 2 apps x 1 MiB + 4 MiB for the monitor = 6 MiB: exactly fits.
    CHECK(c.partitions[0].memory.size == 6 * MiB);
}

TEST_CASE("config apps: time syntax", "[config]")
{
    auto time = [](const char* s) { return parse_time(s, strlen(s)); };
    CHECK(time("1ns").value() == 1);
    CHECK(time("1us").value() == 1000);
    CHECK(time("20ms").value() == 20'000'000);
    CHECK(time("10s").value() == 10'000'000'000);
    CHECK(time("0ms").value() == 0);
    CHECK(time("007us").value() == 7000);
    CHECK(time("18446744073709551615ns").value() == UINT64_MAX);
    CHECK(time("18446744073709551616ns").error() == NumberError::Overflow);
    CHECK(time("18446744074s").error() == NumberError::Overflow);
    CHECK(time("18446744073s").value() == 18446744073000000000ull);
    CHECK(time("18446744073709552ms").error() == NumberError::Overflow);
    CHECK(time("20").error() == NumberError::BadSuffix);
    CHECK(time("20m").error() == NumberError::BadSuffix);
    CHECK(time("20MS").error() == NumberError::BadSuffix);
    CHECK(time("20 ms").error() == NumberError::BadSuffix);
    CHECK(time("20msx").error() == NumberError::BadSuffix);
    CHECK(time("1.5ms").error() == NumberError::BadSuffix);
    CHECK(time("0x10ms").error() == NumberError::BadSuffix);
    CHECK(time("ms").error() == NumberError::NotANumber);
    CHECK(time("-1ms").error() == NumberError::NotANumber);
    CHECK(time("").error() == NumberError::Empty);
    CHECK(parse_time(nullptr, 0).error() == NumberError::Empty);

    char buffer[32];
    format_time(buffer, sizeof buffer, 20'000'000);
    CHECK(std::string(buffer) == "20 ms");
    format_time(buffer, sizeof buffer, 10'000'000'000);
    CHECK(std::string(buffer) == "10 s");
    format_time(buffer, sizeof buffer, 1'500'000);
    CHECK(std::string(buffer) == "1500 us");
    format_time(buffer, sizeof buffer, 1'500);
    CHECK(std::string(buffer) == "1500 ns");
    format_time(buffer, sizeof buffer, 0);
    CHECK(std::string(buffer) == "0 ns");
    CHECK(std::string(time_text(kMaxVcpuPeriodNs).text) == "10 s");

    // The limits: 0 < budget <= period <= 10 s, inclusive.
    auto p = parse_text(with_line(18, "vcpu = main 10s 10s"));
    REQUIRE_OK(p);
    p = parse_text(with_line(18, "vcpu = main 1ns 1ns"));
    REQUIRE_OK(p);
    p = parse_text(with_line(18, "vcpu = main 1ns 10000000000ns"));
    REQUIRE_OK(p);
}

TEST_CASE("config apps: vcpu values are validated", "[config]")
{
    REQUIRE_ERROR(parse_text(with_line(18, "vcpu = main 1ms")),
                  "line 18: app 'periodic': vcpu 'main 1ms' is incomplete (expected NAME BUDGET PERIOD [priority N], "
                  "as in 'main 1ms 20ms')");
    REQUIRE_ERROR(parse_text(with_line(18, "vcpu =")), "line 18: app 'periodic': 'vcpu' has no value");
    REQUIRE_ERROR(parse_text(with_line(18, "vcpu = Main 1ms 20ms")),
                  "line 18: app 'periodic': vcpu name 'Main' is invalid: use only a-z, 0-9, '_' and '-'");
    REQUIRE_ERROR(parse_text(with_line(18, "vcpu = abcdefghijklmnop 1ms 20ms")),
                  "line 18: app 'periodic': vcpu name 'abcdefghijklmnop' is longer than 15 characters");
    REQUIRE_ERROR(parse_text(with_line(18, "vcpu = main 1 20ms")),
                  "line 18: app 'periodic': vcpu 'main': budget '1' has no unit (use ns, us, ms or s)");
    REQUIRE_ERROR(parse_text(with_line(18, "vcpu = main 1ms 20m")),
                  "line 18: app 'periodic': vcpu 'main': period '20m' has an unknown unit (use ns, us, ms or s)");
    REQUIRE_ERROR(parse_text(with_line(18, "vcpu = main 1ms 20 ms")), "period '20' has no unit");
    REQUIRE_ERROR(parse_text(with_line(18, "vcpu = main fast 20ms")),
                  "line 18: app 'periodic': vcpu 'main': budget 'fast' is not a time (write an integer and a unit, "
                  "as in 20ms)");
    REQUIRE_ERROR(parse_text(with_line(18, "vcpu = main 0ms 20ms")),
                  "line 18: app 'periodic': vcpu 'main': budget must not be zero");
    REQUIRE_ERROR(parse_text(with_line(18, "vcpu = main 0ms 0s")), "vcpu 'main': period must not be zero");
    REQUIRE_ERROR(parse_text(with_line(18, "vcpu = main 1ms 11s")),
                  "line 18: app 'periodic': vcpu 'main': period 11 s is longer than the limit of 10 s");
    REQUIRE_ERROR(parse_text(with_line(18, "vcpu = main 1ms 10000000001ns")), "period 10000000001 ns is longer than");
    REQUIRE_ERROR(parse_text(with_line(18, "vcpu = main 99999999999999999999s 20ms")),
                  "line 18: app 'periodic': vcpu 'main': budget '99999999999999999999s' is longer than the limit of 10 s");
    REQUIRE_ERROR(parse_text(with_line(18, "vcpu = main 30ms 20ms")),
                  "line 18: app 'periodic': vcpu 'main': budget 30 ms is longer than its period 20 ms");
    REQUIRE_ERROR(parse_text(with_line(18, "vcpu = main 1ms 20ms 5ms")),
                  "line 18: app 'periodic': vcpu 'main': unexpected '5ms' after the period (only 'priority N' may "
                  "follow)");
    REQUIRE_ERROR(parse_text(with_line(18, "vcpu = main 1ms 20ms priority")),
                  "line 18: app 'periodic': vcpu 'main': 'priority' needs a number");
    REQUIRE_ERROR(parse_text(with_line(18, "vcpu = main 1ms 20ms priority 1 2")),
                  "vcpu 'main': unexpected '2' after the period");
    REQUIRE_ERROR(parse_text(with_line(18, "vcpu = main 1ms 20ms priority 1 2 3 4")),
                  "vcpu 'main': unexpected '2' after the period");
    REQUIRE_ERROR(parse_text(with_line(18, "vcpu = main 1ms 20ms priority high")),
                  "line 18: app 'periodic': vcpu 'main': priority 'high' is not a number from 0 to 4294967295");
    REQUIRE_ERROR(parse_text(with_line(18, "vcpu = main 1ms 20ms priority 4294967296")),
                  "priority '4294967296' is not a number from 0 to 4294967295");
    REQUIRE_ERROR(parse_text(with_line(19, "vcpu = main 2ms 5ms")),
                  "line 19: app 'periodic': vcpu 'main' is already defined on line 18");
    // Both times are checked, in one pass.
    auto p = parse_text(with_line(18, "vcpu = main 1 2"));
    CHECK_THAT(p->messages(), Contains("budget '1' has no unit") && Contains("period '2' has no unit"));
    // A vcpu with a bad value still counts: no "missing 'vcpu'" on top.
    p = parse_text(app_only("module = periodic\ncpu = 1\nvcpu = main 1 2\n"));
    CHECK_FALSE(p->ok);
    CHECK_THAT(p->messages(), !Contains("missing 'vcpu'"));
}

TEST_CASE("config apps: vcpu count", "[config]")
{
    std::string eight;
    for (int i = 0; i < 8; ++i)
        eight += "vcpu = v" + std::to_string(i) + " 1ms 100ms\n";
    auto p = parse_text(app_only("module = periodic\ncpu = 1\n" + eight));
    REQUIRE_OK(p);
    CHECK(p->config.apps[0].vcpu_count == kMaxAppVcpus);
    CHECK(std::string(p->config.apps[0].vcpus[7].name) == "v7");

    p = parse_text(app_only("module = periodic\ncpu = 1\n" + eight + "vcpu = v8 1ms 100ms\nvcpu = v9 1ms 100ms\n"));
    REQUIRE_ERROR(p, "line 23: app 'periodic': too many vcpus (the limit is 8 per app)");
    CHECK(p->diag.count == 1);

    REQUIRE_ERROR(parse_text(app_only("module = periodic\ncpu = 1\n")),
                  "line 12: app 'periodic': missing 'vcpu' (at least one: vcpu = NAME BUDGET PERIOD)");
}

TEST_CASE("config apps: module and required keys", "[config]")
{
    REQUIRE_ERROR(parse_text(with_line(13, "")),
                  "line 12: app 'periodic': missing 'module' (its ELF is the GRUB module vlibos.app:MODULE)");
    REQUIRE_ERROR(parse_text(with_line(14, "")), "line 12: app 'periodic': missing 'cpu' (one cpu of the rt partition)");
    REQUIRE_ERROR(parse_text(with_line(13, "module = peri odic")),
                  "line 13: app 'periodic': module name 'peri odic' is invalid: use only A-Z, a-z, 0-9, '_', '.' and "
                  "'-'");
    REQUIRE_ERROR(parse_text(with_line(13, "module = a:b")), "module name 'a:b' is invalid");
    REQUIRE_ERROR(parse_text(with_line(13, "module = a/b")), "module name 'a/b' is invalid");
    REQUIRE_ERROR(parse_text(with_line(13, "module = abcdefghijklmnop")),
                  "line 13: app 'periodic': module name 'abcdefghijklmnop' is longer than 15 characters");
    REQUIRE_ERROR(parse_text(with_line(13, "module =")), "line 13: app 'periodic': 'module' has no value");
    REQUIRE_ERROR(parse_text(with_line(14, "cpu = 1\nmodule = x")),
                  "line 15: app 'periodic': 'module' is already set on line 13");
    REQUIRE_ERROR(parse_text(with_line(17, "argv = x")),
                  "line 17: app 'periodic': unknown key 'argv' (expected module, cpu, memory, stack, args or vcpu)");
    auto p = parse_text(with_line(13, "module = ABCDEFGH.kl-_90"));
    REQUIRE_OK(p);
    CHECK(std::string(p->config.apps[0].module) == "ABCDEFGH.kl-_90");
    // An invalid module still counts as set.
    p = parse_text(with_line(13, "module = a b"));
    CHECK_THAT(p->messages(), !Contains("missing 'module'"));
}

TEST_CASE("config apps: the cpu is one cpu of the rt partition", "[config]")
{
    REQUIRE_ERROR(parse_text(with_line(14, "cpu = 2")),
                  "line 14: app 'periodic': cpu 2 belongs to partition 'linux' (kind = linux); an app needs a cpu of "
                  "the rt partition (rt cpus: 0-1)");
    REQUIRE_ERROR(parse_text(with_line(14, "cpu = 5")),
                  "line 14: app 'periodic': cpu 5 is in no partition; an app needs a cpu of the rt partition (rt "
                  "cpus: 0-1)");
    REQUIRE_ERROR(parse_text(with_line(14, "cpu = 0-1")),
                  "line 14: app 'periodic': cpu takes one CPU number, not a list ('0-1'): an app runs on one CPU");
    REQUIRE_ERROR(parse_text(with_line(14, "cpu = 0,1")), "cpu takes one CPU number, not a list ('0,1')");
    REQUIRE_ERROR(parse_text(with_line(14, "cpu = one")), "line 14: app 'periodic': cpu: 'one' is not a CPU number");
    REQUIRE_ERROR(parse_text(with_line(14, "cpu = -1")), "app 'periodic': cpu: '-1' is not a CPU number");
    REQUIRE_ERROR(parse_text(with_line(14, "cpu = 64")),
                  "line 14: app 'periodic': cpu 64 is out of range (CPUs are numbered 0-63)");
    REQUIRE_ERROR(parse_text(with_line(14, "cpu = 99999999999999999999999")), "is out of range");
    REQUIRE_ERROR(parse_text(with_line(14, "cpu =")), "line 14: app 'periodic': 'cpu' has no value");
    auto p = parse_text(with_line(14, "cpu = 0"));
    REQUIRE_OK(p);
    CHECK(p->config.apps[0].cpu == 0);
    // A partition with a broken cpu list might have held the cpu: no "in no partition" on top.
    p = parse_text(swap(with_line(10, "cpus = 2,x"), "cpu = 1", "cpu = 5"));
    CHECK_FALSE(p->ok);
    CHECK_THAT(p->messages(), !Contains("in no partition"));
    // A partition of unknown kind: its kind error is enough.
    p = parse_text(swap(with_line(9, "kind = vm"), "cpu = 1", "cpu = 2"));
    CHECK_FALSE(p->ok);
    CHECK_THAT(p->messages(), !Contains("belongs to partition"));
}

TEST_CASE("config apps: memory and stack", "[config]")
{
    REQUIRE_ERROR(parse_text(swap(with_line(15, "memory = 6K"), "stack = 64K", "stack = 8K")),
                  "line 15: app 'periodic': memory 6 KiB is not a multiple of 4 KiB");
    REQUIRE_ERROR(parse_text(with_line(15, "memory = 0")), "line 15: app 'periodic': memory must not be zero");
    REQUIRE_ERROR(parse_text(with_line(15, "memory = 2Q")),
                  "line 15: app 'periodic': memory '2Q' has an unknown suffix (use K, M or G)");
    REQUIRE_ERROR(parse_text(with_line(16, "stack = 4K")),
                  "line 16: app 'periodic': stack 4 KiB is below the minimum of 8 KiB");
    REQUIRE_ERROR(parse_text(with_line(16, "stack = 10K")),
                  "line 16: app 'periodic': stack 10 KiB is not a multiple of 4 KiB");
    REQUIRE_ERROR(parse_text(with_line(16, "stack = 0")), "line 16: app 'periodic': stack must not be zero");
    REQUIRE_ERROR(parse_text(with_line(16, "stack = lots")),
                  "line 16: app 'periodic': stack 'lots' is not a number (write bytes, or use a K, M or G suffix)");
    REQUIRE_ERROR(parse_text(with_line(16, "stack = 2M")),
                  "line 16: app 'periodic': stack 2 MiB must be smaller than memory 2 MiB (which also holds the app's "
                  "segments)");
    // With the default stack (64 KiB), the memory line is named; with both defaults, the header.
    REQUIRE_ERROR(parse_text(swap(with_line(16, ""), "memory = 2M", "memory = 64K")),
                  "line 15: app 'periodic': stack 64 KiB must be smaller than memory 64 KiB");
    auto p = parse_text(swap(with_line(15, "memory = 12K"), "stack = 64K", "stack = 8K"));
    REQUIRE_OK(p);
    CHECK(p->config.apps[0].memory == 12 * KiB);
    CHECK(p->config.apps[0].stack == 8 * KiB);
    // A bad memory is one message, without a stack comparison on top.
    p = parse_text(with_line(15, "memory = 7K"));
    CHECK(p->diag.count == 1);
}

TEST_CASE("config apps: args", "[config]")
{
    std::string longest(kMaxArgsLength, 'a');
    auto p = parse_text(with_line(17, "args = " + longest));
    REQUIRE_OK(p);
    CHECK(std::string(p->config.apps[0].args) == longest);
    p = parse_text(with_line(17, "args =  a b=c,d;e\"f'g   "));
    REQUIRE_OK(p);
    CHECK(std::string(p->config.apps[0].args) == "a b=c,d;e\"f'g"); // trimmed, like every value
    p = parse_text(with_line(17, "args = a # the rest is a comment"));
    REQUIRE_OK(p);
    CHECK(std::string(p->config.apps[0].args) == "a");

    REQUIRE_ERROR(parse_text(with_line(17, "args = " + longest + "b")),
                  "line 17: app 'periodic': args is 64 characters long; the limit is 63");
    REQUIRE_ERROR(parse_text(with_line(17, "args = a\tb")),
                  "line 17: app 'periodic': args: byte 0x09 at column 9 is not printable ASCII");
    REQUIRE_ERROR(parse_text(with_line(17, "args =")), "line 17: app 'periodic': 'args' has no value");
    REQUIRE_ERROR(parse_text(with_line(17, "args = a\nargs = b")),
                  "line 18: app 'periodic': 'args' is already set on line 17");
    REQUIRE_ERROR(parse_text(with_line(17, "args = \xc3\xa9")), "line 17: non-ASCII byte 0xc3 at column 8");
}

TEST_CASE("config apps: scheduling and priorities", "[config]")
{
    // Explicit: every vcpu names its priority, and it is kept.
    auto p = parse_text(explicit_rt("vcpu = main 1ms 20ms priority 0\nvcpu = slow 4ms 40ms priority 4294967295\n"));
    REQUIRE_OK(p);
    CHECK(p->config.partitions[0].scheduling == Scheduling::Explicit);
    CHECK(p->config.apps[0].vcpus[0].has_priority);
    CHECK(p->config.apps[0].vcpus[0].priority == 0);
    CHECK(p->config.apps[0].vcpus[1].priority == 4294967295u);

    REQUIRE_ERROR(parse_text(explicit_rt("vcpu = main 1ms 20ms priority 1\nvcpu = slow 4ms 40ms\n")),
                  "line 17: app 'periodic': vcpu 'slow' needs 'priority N' (partition 'rt' has scheduling = explicit)");
    REQUIRE_ERROR(parse_text(with_line(20, "vcpu = slow 4ms 40ms priority 3")),
                  "line 20: app 'periodic': vcpu 'slow': 'priority' needs scheduling = explicit (partition 'rt' is "
                  "rate-monotonic)");
    p = parse_text(with_line(7, "memory = 64M\nscheduling = rate-monotonic"));
    REQUIRE_OK(p);
    CHECK(p->config.partitions[0].scheduling == Scheduling::RateMonotonic);

    REQUIRE_ERROR(parse_text(with_line(7, "memory = 64M\nscheduling = edf")),
                  "line 8: partition 'rt': unknown scheduling 'edf' (expected rate-monotonic or explicit)");
    REQUIRE_ERROR(parse_text(with_line(7, "memory = 64M\nscheduling =")), "line 8: partition 'rt': 'scheduling' has no value");
    REQUIRE_ERROR(parse_text(with_line(7, "scheduling = explicit\nscheduling = explicit")),
                  "line 8: partition 'rt': 'scheduling' is already set on line 7");
    REQUIRE_ERROR(parse_text(with_line(11, "memory = 256M\nscheduling = explicit")),
                  "line 12: partition 'linux': 'scheduling' applies only to kind = rt partitions");
    REQUIRE_ERROR(parse_text(with_line(9, "scheduling = rate-monotonic\nkind = linux")),
                  "line 9: partition 'linux': 'scheduling' applies only to kind = rt partitions");
    // An unknown scheduling is one message: no priority complaints on top.
    p = parse_text(with_line(7, "memory = 64M\nscheduling = EDF"));
    CHECK(p->diag.count == 1);
    p = parse_text(swap(explicit_rt("vcpu = main 1ms 20ms\n"), "explicit", "edf"));
    CHECK(p->diag.count == 1);
    // Priorities on an app whose cpu is wrong are not judged.
    p = parse_text(swap(with_line(14, "cpu = 3"), "vcpu = slow 4ms 40ms", "vcpu = slow 4ms 40ms priority 1"));
    CHECK(p->diag.count == 1);
}

TEST_CASE("config apps: app memory fits in the rt partition with 4 MiB for the monitor", "[config]")
{
    // 64 MiB partition: apps may use 60 MiB.
    auto p = parse_text(with_line(15, "memory = 60M"));
    REQUIRE_OK(p);
    REQUIRE_ERROR(parse_text(with_line(15, "memory = 61M")),
                  "line 4: partition 'rt': its 1 app need 61 MiB but only 60 MiB of its 64 MiB are for apps (4 MiB "
                  "stay for the monitor)");
    std::string two = std::string(kApps) + "[app other]\nmodule = periodic\ncpu = 0\nmemory = 59M\nvcpu = m 1ms 10ms\n";
    REQUIRE_ERROR(parse_text(two), "line 4: partition 'rt': its 2 apps need 61 MiB but only 60 MiB of its 64 MiB");
    // A partition smaller than the reserve has no room at all.
    REQUIRE_ERROR(parse_text(swap(kApps, "memory = 64M", "memory = 2M")), "its 1 app need 2 MiB but only 0 bytes of its 2 MiB are for apps");
    // Sizes that would overflow a sum saturate rather than wrap around.
    std::string huge = std::string(kApps) + "[app other]\nmodule = x\ncpu = 0\nmemory = 0xfffffffffffff000\n"
                                            "stack = 8K\nvcpu = m 1ms 10ms\n";
    REQUIRE_ERROR(parse_text(huge), "its 2 apps need 18446744073709551615 bytes but only 60 MiB");
    // An rt partition without apps needs no reserve.
    p = parse_text(swap(std::string(kApps).substr(0, std::string(kApps).find("[app")), "memory = 64M", "memory = 2M"));
    REQUIRE_OK(p);
}

TEST_CASE("config apps: app sections", "[config]")
{
    REQUIRE_ERROR(parse_text(with_line(12, "[app]")), "line 12: [app] needs a name, as in [app periodic]");
    REQUIRE_ERROR(parse_text(with_line(12, "[app Periodic]")),
                  "line 12: app name 'Periodic' is invalid: use only a-z, 0-9, '_' and '-'");
    REQUIRE_ERROR(parse_text(with_line(12, "[app abcdefghijklmnop]")),
                  "line 12: app name 'abcdefghijklmnop' is longer than 15 characters");
    REQUIRE_ERROR(parse_text(std::string(kApps) + "[app periodic]\n"),
                  "line 21: duplicate section [app periodic] (first on line 12)");
    // App names and partition names are separate: an app may be called rt.
    auto p = parse_text(with_line(12, "[app rt]"));
    REQUIRE_OK(p);

    std::string nine = std::string(kApps).substr(0, std::string(kApps).find("[app periodic]"));
    for (int i = 0; i < 9; ++i)
        nine += "[app a" + std::to_string(i) + "]\nmodule = m\ncpu = 0\nvcpu = v 1ms 100ms\n";
    p = parse_text(nine);
    REQUIRE_ERROR(p, "line 44: too many apps (the limit is 8)");
    CHECK(p->diag.count == 1); // the ninth app's keys are skipped silently
    nine.resize(nine.rfind("[app a8]"));
    p = parse_text(nine);
    REQUIRE_OK(p);
    CHECK(p->config.app_count == kMaxApps);
}

TEST_CASE("config apps: errors are all collected", "[config]")
{
    std::string text = swap(kApps, "module = periodic", "module = a b");
    text = swap(text, "cpu = 1", "cpu = 3");
    text = swap(text, "stack = 64K", "stack = 4K");
    text = swap(text, "vcpu = fast 1ms 5ms", "vcpu = fast 9ms 5ms");
    auto p = parse_text(text);
    INFO(p->messages());
    CHECK(p->diag.count == 4);
    CHECK_THAT(p->messages(), Contains("line 13:") && Contains("line 14:") && Contains("line 16:") &&
                                  Contains("line 19:"));
    for (size_t i = 0; i < p->diag.count; ++i)
        CHECK(p->diag.messages[i].length() < kMaxDiagnosticLength - 1); // no message is cut short
}

TEST_CASE("config apps: the longest messages fit", "[config]")
{
    // Longest names everywhere: no message reaches the cap (which would cut it short).
    const std::string n15 = "abcdefghijklmno";
    std::string text = "version = 1\n[monitor]\nmemory = 32M\n[partition " + n15 + "]\nkind = rt\ncpus = 0\n" +
                       "memory = 2M\n[partition " + n15 + "x]\n[app " + n15 + "]\nmodule = " + n15 +
                       "\ncpu = 0\nstack = 0xfffffffffffff000\nvcpu = " + n15 + " 99999999999999999999999999999999ms " +
                       std::string(40, '9') + "\nvcpu = " + n15 + " 1ms 2ms priority " + std::string(40, '9') +
                       "\nvcpu = " + n15 + " 2ms 1ms\n" + "vcpu = " + n15 + " 1ms 20ms priority 1\n";
    auto p = parse_text(text);
    INFO(p->messages());
    CHECK_FALSE(p->ok);
    CHECK(p->diag.count >= 5);
    for (size_t i = 0; i < p->diag.count; ++i)
        CHECK(p->diag.messages[i].length() < kMaxDiagnosticLength - 1);
}

TEST_CASE("config apps: malformed input never crashes", "[config]")
{
    std::mt19937_64 rng(20250502);
    auto check_one = [](const std::string& text) {
        auto p = parse_text(text);
        CHECK(p->diag.count <= kMaxDiagnostics);
        for (size_t i = 0; i < p->diag.count; ++i)
            REQUIRE(p->diag.messages[i].length() < kMaxDiagnosticLength);
        if (!p->ok)
            return;
        // Whatever got through obeys every rule the kernel relies on.
        const Config& c = p->config;
        REQUIRE(c.app_count <= kMaxApps);
        uint64_t used[kMaxPartitions] = {};
        for (size_t i = 0; i < c.app_count; ++i) {
            const App& a = c.apps[i];
            int owner = partition_of_cpu(c, a.cpu);
            REQUIRE(owner >= 0);
            const Partition& part = c.partitions[owner];
            REQUIRE(part.kind == Kind::Rt);
            REQUIRE(strlen(a.module) > 0);
            REQUIRE(strlen(a.args) <= kMaxArgsLength);
            REQUIRE(a.memory % kAppAlign == 0);
            REQUIRE(a.stack % kAppAlign == 0);
            REQUIRE(a.stack >= kMinAppStack);
            REQUIRE(a.stack < a.memory);
            REQUIRE(a.vcpu_count >= 1);
            REQUIRE(a.vcpu_count <= kMaxAppVcpus);
            used[owner] += a.memory;
            REQUIRE(used[owner] + kRtMonitorReserve <= part.memory.size);
            for (size_t v = 0; v < a.vcpu_count; ++v) {
                const VcpuSpec& s = a.vcpus[v];
                REQUIRE(s.budget_ns > 0);
                REQUIRE(s.budget_ns <= s.period_ns);
                REQUIRE(s.period_ns <= kMaxVcpuPeriodNs);
                REQUIRE(s.has_priority == (part.scheduling == Scheduling::Explicit));
                for (size_t w = 0; w < v; ++w)
                    REQUIRE(strcmp(a.vcpus[w].name, s.name) != 0);
            }
        }
    };

    SECTION("garbage from the format's own alphabet")
    {
        const std::string alphabet = "[]=#,- \t\n\r0123456789xKMGabcdefghijklmnopqrstuvwxyz_.\xff";
        const char* words[] = {"version = 1\n", "[monitor]\nmemory = 32M\n", "[partition rt]\nkind = rt\n", "[app a]\n",
                               "app", "module", "cpu", "cpus", "memory", "stack", "args", "vcpu", "scheduling",
                               "explicit", "rate-monotonic", "priority", "kind", "rt", "= ", "\n", "[", "]", "1ms",
                               "20ms", "10s", "ns", "us", "64K", "2M", "0-1", " "};
        for (int round = 0; round < 2000; ++round) {
            std::string text;
            size_t pieces = rng() % 200;
            for (size_t i = 0; i < pieces; ++i) {
                if (rng() % 2)
                    text += words[rng() % (sizeof words / sizeof words[0])];
                else
                    text += alphabet[rng() % alphabet.size()];
            }
            check_one(text);
        }
    }
    SECTION("mutations of a valid file with apps")
    {
        const std::string bases[] = {kApps, explicit_rt("vcpu = main 1ms 20ms priority 2\nvcpu = io 1us 2us priority 0\n")};
        for (int round = 0; round < 4000; ++round) {
            std::string text = bases[round % 2];
            int edits = 1 + static_cast<int>(rng() % 4);
            for (int e = 0; e < edits && !text.empty(); ++e) {
                size_t at = rng() % text.size();
                switch (rng() % 5) {
                case 0: text[at] = static_cast<char>(rng()); break;
                case 1: text.erase(at, 1 + rng() % 8); break;
                case 2: text.insert(at, std::string(1 + rng() % 3, static_cast<char>(rng()))); break;
                case 3: text.resize(at); break; // truncated: no trailing newline
                case 4: text[at] = "0123456789 msu"[rng() % 14]; break; // digits and units
                }
            }
            check_one(text);
        }
    }
    SECTION("very long values")
    {
        check_one(with_line(18, "vcpu = " + std::string(kMaxTextLength - 500, ' ') + "m 1ms 2ms"));
        check_one(with_line(18, "vcpu = m " + std::string(kMaxTextLength - 500, '9') + "ms 2ms"));
        check_one(with_line(18, "vcpu = m 1ms 2ms priority " + std::string(kMaxTextLength - 500, '9')));
        check_one(with_line(17, "args = " + std::string(kMaxTextLength - 500, 'a')));
        check_one(with_line(13, "module = " + std::string(kMaxTextLength - 500, 'a')));
        check_one(with_line(14, "cpu = " + std::string(kMaxTextLength - 500, ',')));
        std::string many = kApps;
        while (many.size() < kMaxTextLength - 30)
            many += "vcpu = x 1ms 2ms\n";
        check_one(many);
    }
}
