// Partition configuration parser: syntax, every validation rule and the text of its message,
// and robustness against malformed input. Inputs are copied into exactly-sized heap buffers
// (no NUL terminator) so ASan catches any read past `length`.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

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

const char* const kValid = "version = 1\n"
                           "[monitor]\n"
                           "memory = 32M\n"
                           "[partition rt]\n"
                           "kind = rt\n"
                           "cpus = 0-1\n"
                           "memory = 64M\n"
                           "[partition linux]\n"
                           "kind = linux\n"
                           "cpus = 2-3\n"
                           "memory = 256M\n"
                           "[shared rpc]\n"
                           "memory = 4M\n"
                           "between = rt, linux\n";

// kValid with one line replaced (1-based), to test a rule in an otherwise valid file.
std::string with_line(unsigned line, const std::string& replacement)
{
    std::string text = kValid;
    size_t start = 0;
    for (unsigned l = 1; l < line; ++l)
        start = text.find('\n', start) + 1;
    size_t end = text.find('\n', start);
    return text.substr(0, start) + replacement + text.substr(end);
}

// The first lines of a file: version and monitor, then whatever the test adds.
std::string header() { return "version = 1\n[monitor]\nmemory = 32M\n"; }

#define REQUIRE_ERROR(parsed, fragment)                                                                       \
    do {                                                                                                       \
        INFO((parsed)->messages());                                                                            \
        CHECK_FALSE((parsed)->ok);                                                                             \
        CHECK_THAT((parsed)->messages(), Contains(fragment));                                                  \
    } while (0)

std::string read_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

} // namespace

TEST_CASE("config: a valid configuration fills every field", "[config]")
{
    auto p = parse_text(kValid);
    INFO(p->messages());
    REQUIRE(p->ok);
    const Config& c = p->config;
    CHECK(c.version == 1);
    CHECK(c.monitor_memory == 32 * MiB);
    CHECK(c.monitor_line == 2);
    REQUIRE(c.partition_count == 2);
    CHECK(std::string(c.partitions[0].name) == "rt");
    CHECK(c.partitions[0].kind == Kind::Rt);
    CHECK(c.partitions[0].cpus == 0x3);
    CHECK(c.partitions[0].memory.size == 64 * MiB);
    CHECK_FALSE(c.partitions[0].memory.fixed);
    CHECK(c.partitions[0].line == 4);
    CHECK(std::string(c.partitions[1].name) == "linux");
    CHECK(c.partitions[1].kind == Kind::Linux);
    CHECK(c.partitions[1].cpus == 0xc);
    CHECK(c.partitions[1].memory.size == 256 * MiB);
    REQUIRE(c.shared_count == 1);
    CHECK(std::string(c.shared[0].name) == "rpc");
    CHECK(c.shared[0].memory.size == 4 * MiB);
    REQUIRE(c.shared[0].partition_count == 2);
    CHECK(c.shared[0].partitions[0] == 0);
    CHECK(c.shared[0].partitions[1] == 1);
    CHECK(c.shared[0].line == 12);
    CHECK(std::string(kind_name(Kind::Rt)) == "rt");
    CHECK(std::string(kind_name(Kind::Linux)) == "linux");
}

TEST_CASE("config: comments, blank lines, tabs, CRLF and a missing final newline", "[config]")
{
    auto p = parse_text("# leading comment\r\n"
                        "\r\n"
                        "  version\t=\t1   # trailing comment\r\n"
                        "[ monitor ]   # comment after header\r\n"
                        "\tmemory = 0x2000000\r\n"
                        "[partition rt]\r\n"
                        "kind=rt\r\n"
                        "cpus = 0 , 2 - 3\r\n"
                        "memory = 1G\r\n"
                        "base = 0x40000000   # fixed\r\n"
                        "# comment with non-ASCII text: \xc3\xa9t\xc3\xa9\r\n"
                        "[partition rt_2-x]\nkind = linux\ncpus = 1\nmemory = 2048k");
    INFO(p->messages());
    REQUIRE(p->ok);
    CHECK(p->config.monitor_memory == 32 * MiB);
    CHECK(p->config.partitions[0].cpus == 0xd);
    CHECK(p->config.partitions[0].memory.size == GiB);
    CHECK(p->config.partitions[0].memory.fixed);
    CHECK(p->config.partitions[0].memory.base == GiB);
    CHECK(std::string(p->config.partitions[1].name) == "rt_2-x");
    CHECK(p->config.partitions[1].memory.size == 2 * MiB);
}

TEST_CASE("config: version must come first and be 1", "[config]")
{
    REQUIRE_ERROR(parse_text(""), "line 1: the configuration is empty; it must start with 'version = 1'");
    REQUIRE_ERROR(parse_text("# only a comment\n\n"), "the configuration is empty");
    REQUIRE_ERROR(parse_text("\n[monitor]\nmemory = 32M\n"), "line 2: the file must start with 'version = 1'");
    REQUIRE_ERROR(parse_text("[monitor]\nversion = 1\nmemory = 32M\n"),
                  "line 2: 'version' must come before everything else");
    REQUIRE_ERROR(parse_text(with_line(1, "version = 2")), "line 1: unsupported version 2 (this monitor reads version 1)");
    REQUIRE_ERROR(parse_text(with_line(1, "version = one")), "line 1: version 'one' is not a number");
    REQUIRE_ERROR(parse_text(with_line(1, "version =")), "line 1: version '' is not a number");
    REQUIRE_ERROR(parse_text(std::string("version = 1\n") + kValid), "line 2: 'version' is already set on line 1");
}

TEST_CASE("config: section headers", "[config]")
{
    REQUIRE_ERROR(parse_text(header() + "[partition rt\n"), "line 4: section header is missing ']'");
    REQUIRE_ERROR(parse_text(header() + "[partition rt] x\n"), "line 4: unexpected text after ']'");
    REQUIRE_ERROR(parse_text(header() + "[cell x]\n"),
                  "line 4: unknown section '[cell x]' (expected [monitor], [partition NAME], [shared NAME] or [app "
                  "NAME])");
    REQUIRE_ERROR(parse_text(with_line(2, "[monitor main]")), "line 2: [monitor] takes no name");
    REQUIRE_ERROR(parse_text(with_line(4, "[partition]")), "line 4: [partition] needs a name, as in [partition rt]");
    REQUIRE_ERROR(parse_text(with_line(12, "[shared]")), "line 12: [shared] needs a name, as in [shared rpc]");
    REQUIRE_ERROR(parse_text(std::string(kValid) + "[monitor]\n"), "line 15: duplicate section [monitor] (first on line 2)");
    REQUIRE_ERROR(parse_text(std::string(kValid) + "[partition linux]\n"),
                  "line 15: duplicate section [partition linux] (first on line 8)");
    REQUIRE_ERROR(parse_text(std::string(kValid) + "[shared rpc]\n"),
                  "line 15: duplicate section [shared rpc] (first on line 12)");
    REQUIRE_ERROR(parse_text("version = 1\n[partition rt]\nkind = rt\ncpus = 0\nmemory = 2M\n"),
                  "missing [monitor] section");
}

TEST_CASE("config: keys are checked per section", "[config]")
{
    REQUIRE_ERROR(parse_text("version = 1\nmemory = 32M\n" + std::string(kValid).substr(12)),
                  "line 2: 'memory' must be inside a section such as [partition NAME]");
    REQUIRE_ERROR(parse_text(with_line(3, "size = 32M")), "line 3: monitor: unknown key 'size' (expected memory)");
    REQUIRE_ERROR(parse_text(with_line(5, "type = rt")),
                  "line 5: partition 'rt': unknown key 'type' (expected kind, cpus, memory, base, scheduling or pci)");
    REQUIRE_ERROR(parse_text(with_line(5, "Kind = rt")), "unknown key 'Kind'");
    REQUIRE_ERROR(parse_text(with_line(14, "cpus = 0")),
                  "line 14: shared 'rpc': unknown key 'cpus' (expected memory, base or between)");
    REQUIRE_ERROR(parse_text(with_line(7, "cpus = 0")), "line 7: partition 'rt': 'cpus' is already set on line 6");
    REQUIRE_ERROR(parse_text(with_line(6, "cpus =")), "line 6: partition 'rt': 'cpus' has no value");
    REQUIRE_ERROR(parse_text(with_line(6, "cpus 0-1")), "line 6: expected 'key = value' or '[section]', found 'cpus 0-1'");
    REQUIRE_ERROR(parse_text(with_line(6, "= 0-1")), "line 6: missing key before '='");
    // A key with a bad value still counts as set: no extra "missing" message.
    auto p = parse_text(with_line(6, "cpus = x"));
    CHECK_THAT(p->messages(), !Contains("missing 'cpus'"));
}

TEST_CASE("config: partition and shared names", "[config]")
{
    REQUIRE_ERROR(parse_text(with_line(4, "[partition RT]")),
                  "line 4: partition name 'RT' is invalid: use only a-z, 0-9, '_' and '-'");
    REQUIRE_ERROR(parse_text(with_line(4, "[partition r t]")), "partition name 'r t' is invalid");
    REQUIRE_ERROR(parse_text(with_line(4, "[partition abcdefghijklmnop]")),
                  "line 4: partition name 'abcdefghijklmnop' is longer than 15 characters");
    REQUIRE_ERROR(parse_text(with_line(12, "[shared rpc.0]")), "line 12: shared name 'rpc.0' is invalid");
    // 15 characters is the limit, inclusive.
    std::string text = kValid;
    text.replace(text.find("[partition rt]"), 14, "[partition abcdefghijklmno]");
    text.replace(text.find("between = rt,"), 13, "between = abcdefghijklmno,");
    auto p = parse_text(text);
    INFO(p->messages());
    CHECK(p->ok);
    CHECK(std::string(p->config.partitions[0].name) == "abcdefghijklmno");
}

TEST_CASE("config: sizes and numbers", "[config]")
{
    auto size = [](const char* s) { return parse_size(s, strlen(s)); };
    CHECK(size("4096").value() == 4096);
    CHECK(size("4K").value() == 4 * KiB);
    CHECK(size("4k").value() == 4 * KiB);
    CHECK(size("64M").value() == 64 * MiB);
    CHECK(size("2G").value() == 2 * GiB);
    CHECK(size("0x1000").value() == 4096);
    CHECK(size("0x10M").value() == 16 * MiB);
    CHECK(size("16383P").error() == NumberError::BadSuffix);
    CHECK(size("64MB").error() == NumberError::BadSuffix);
    CHECK(size("64 M").error() == NumberError::BadSuffix);
    CHECK(size("M").error() == NumberError::NotANumber);
    CHECK(size("0x").error() == NumberError::NotANumber);
    CHECK(size("0xM").error() == NumberError::NotANumber);
    CHECK(size("-1").error() == NumberError::NotANumber);
    CHECK(size("").error() == NumberError::Empty);
    CHECK(size("18446744073709551615").value() == UINT64_MAX);
    CHECK(size("18446744073709551616").error() == NumberError::Overflow);
    CHECK(size("17179869184G").error() == NumberError::Overflow);
    CHECK(size("17179869183G").value() == 17179869183ull * GiB);
    CHECK(size("0xffffffffffffffff").value() == UINT64_MAX);
    CHECK(size("0x10000000000000000").error() == NumberError::Overflow);
    CHECK(parse_number("12", 2).value() == 12);
    CHECK(parse_number("12K", 3).error() == NumberError::NotANumber);
    CHECK(parse_number(nullptr, 0).error() == NumberError::Empty);

    char buffer[64];
    format_size(buffer, sizeof buffer, 64 * MiB);
    CHECK(std::string(buffer) == "64 MiB");
    format_size(buffer, sizeof buffer, 3 * GiB);
    CHECK(std::string(buffer) == "3 GiB");
    format_size(buffer, sizeof buffer, 12 * KiB);
    CHECK(std::string(buffer) == "12 KiB");
    format_size(buffer, sizeof buffer, 1000);
    CHECK(std::string(buffer) == "1000 bytes");
    format_size(buffer, sizeof buffer, 0);
    CHECK(std::string(buffer) == "0 bytes");
    format_cpus(buffer, sizeof buffer, 0);
    CHECK(std::string(buffer) == "none");
    format_cpus(buffer, sizeof buffer, 0b1011101);
    CHECK(std::string(buffer) == "0,2-4,6");
    format_cpus(buffer, sizeof buffer, UINT64_MAX);
    CHECK(std::string(buffer) == "0-63");
    format_cpus(buffer, sizeof buffer, uint64_t{1} << 63);
    CHECK(std::string(buffer) == "63");
    char tiny[4];
    CHECK(format_cpus(tiny, sizeof tiny, 0x5555555555555555ull) > sizeof tiny); // truncates, never overflows
    CHECK(strlen(tiny) == 3);
}

TEST_CASE("config: memory values are validated", "[config]")
{
    REQUIRE_ERROR(parse_text(with_line(7, "memory = 64Q")),
                  "line 7: partition 'rt': memory '64Q' has an unknown suffix (use K, M or G)");
    REQUIRE_ERROR(parse_text(with_line(7, "memory = lots")),
                  "line 7: partition 'rt': memory 'lots' is not a number (write bytes, or use a K, M or G suffix)");
    REQUIRE_ERROR(parse_text(with_line(7, "memory = 99999999999999999999")),
                  "line 7: partition 'rt': memory '99999999999999999999' does not fit in 64 bits");
    REQUIRE_ERROR(parse_text(with_line(7, "memory = 20000000000G")), "does not fit in 64 bits");
    REQUIRE_ERROR(parse_text(with_line(7, "memory = 0")), "line 7: partition 'rt': memory must not be zero");
    REQUIRE_ERROR(parse_text(with_line(7, "memory = 3M")), "line 7: partition 'rt': memory 3 MiB is not a multiple of 2 MiB");
    REQUIRE_ERROR(parse_text(with_line(7, "memory = 4K")), "memory 4 KiB is not a multiple of 2 MiB");
    REQUIRE_ERROR(parse_text(with_line(3, "memory = 1000")), "line 3: monitor: memory 1000 bytes is not a multiple of 4 KiB");
    REQUIRE_ERROR(parse_text(with_line(3, "memory = 0")), "line 3: monitor: memory must not be zero");
    REQUIRE_ERROR(parse_text(with_line(13, "memory = 6K")), "line 13: shared 'rpc': memory 6 KiB is not a multiple of 4 KiB");
    REQUIRE_ERROR(parse_text(with_line(7, "memory = 64M\nbase = 0x100000")),
                  "line 8: partition 'rt': base 0x100000 is not a multiple of 2 MiB");
    REQUIRE_ERROR(parse_text(with_line(13, "memory = 4M\nbase = 0x1800")),
                  "line 14: shared 'rpc': base 0x1800 is not a multiple of 4 KiB");
    REQUIRE_ERROR(parse_text(with_line(7, "memory = 64M\nbase = 0xffffffffffe00000")),
                  "line 4: partition 'rt': base 0xffffffffffe00000 + memory 64 MiB runs past the end of the address space");
    REQUIRE_ERROR(parse_text(with_line(13, "memory = 8K\nbase = 0xfffffffffffff000")),
                  "line 12: shared 'rpc': base 0xfffffffffffff000 + memory 8 KiB runs past the end");

    auto p = parse_text(with_line(13, "memory = 12K\nbase = 0x7000"));
    INFO(p->messages());
    REQUIRE(p->ok);
    CHECK(p->config.shared[0].memory.fixed);
    CHECK(p->config.shared[0].memory.base == 0x7000);
    CHECK(p->config.shared[0].memory.size == 12 * KiB);
}

TEST_CASE("config: required keys", "[config]")
{
    REQUIRE_ERROR(parse_text(with_line(3, "")), "line 2: monitor: missing 'memory'");
    REQUIRE_ERROR(parse_text(with_line(5, "")), "line 4: partition 'rt': missing 'kind' (rt or linux)");
    REQUIRE_ERROR(parse_text(with_line(10, "")), "line 8: partition 'linux': missing 'cpus'");
    REQUIRE_ERROR(parse_text(with_line(11, "")), "line 8: partition 'linux': missing 'memory'");
    REQUIRE_ERROR(parse_text(with_line(13, "")), "line 12: shared 'rpc': missing 'memory'");
    REQUIRE_ERROR(parse_text(with_line(14, "")), "line 12: shared 'rpc': missing 'between' (the partitions that map it)");
}

TEST_CASE("config: kinds: exactly one rt, at most one linux", "[config]")
{
    REQUIRE_ERROR(parse_text(with_line(5, "kind = vm")), "line 5: partition 'rt': unknown kind 'vm' (expected rt or linux)");
    REQUIRE_ERROR(parse_text(with_line(5, "kind = linux")), "no partition has 'kind = rt' (exactly one is required)");
    REQUIRE_ERROR(parse_text(with_line(9, "kind = rt")),
                  "line 8: partition 'linux': only one partition may be kind = rt ('rt' on line 4 already is)");
    REQUIRE_ERROR(parse_text(std::string(kValid) + "[partition linux2]\nkind = linux\ncpus = 4\nmemory = 2M\n"),
                  "line 15: partition 'linux2': only one partition may be kind = linux ('linux' on line 8 already is)");
    REQUIRE_ERROR(parse_text(header()), "no partition has 'kind = rt'");
    // An unparseable kind is reported once, without a second "no rt" message.
    auto p = parse_text(with_line(5, "kind = RT"));
    CHECK_THAT(p->messages(), !Contains("no partition has"));
}

TEST_CASE("config: cpu lists", "[config]")
{
    auto cpus_of = [](const std::string& list) {
        auto p = parse_text(with_line(10, "cpus = " + list));
        INFO(p->messages());
        REQUIRE(p->ok);
        return p->config.partitions[1].cpus;
    };
    CHECK(cpus_of("2") == 0x4);
    CHECK(cpus_of("2,3") == 0xc);
    CHECK(cpus_of("2-5") == 0x3c);
    CHECK(cpus_of("2,4-5, 7 ,9 - 10") == 0x6b4);
    CHECK(cpus_of("2-63") == (UINT64_MAX & ~uint64_t{3}));

    REQUIRE_ERROR(parse_text(with_line(10, "cpus = 2,3,3")), "line 10: partition 'linux': cpu 3 is listed twice");
    REQUIRE_ERROR(parse_text(with_line(10, "cpus = 2-5,3-4")), "line 10: partition 'linux': cpus 3-4 are listed twice");
    REQUIRE_ERROR(parse_text(with_line(10, "cpus = 5-2")), "line 10: partition 'linux': cpus: range 5-2 runs backwards");
    REQUIRE_ERROR(parse_text(with_line(10, "cpus = 64")),
                  "line 10: partition 'linux': cpu 64 is out of range (CPUs are numbered 0-63)");
    REQUIRE_ERROR(parse_text(with_line(10, "cpus = 2-99999999999999999999999")), "cpu 99999999999999999999999 is out of range");
    REQUIRE_ERROR(parse_text(with_line(10, "cpus = two")), "line 10: partition 'linux': cpus: 'two' is not a CPU number");
    REQUIRE_ERROR(parse_text(with_line(10, "cpus = 2-")), "cpus: '' is not a CPU number");
    REQUIRE_ERROR(parse_text(with_line(10, "cpus = -2")), "cpus: '' is not a CPU number");
    REQUIRE_ERROR(parse_text(with_line(10, "cpus = 2,,3")), "line 10: partition 'linux': cpus: empty entry in '2,,3'");
    REQUIRE_ERROR(parse_text(with_line(10, "cpus = 2,3,")), "cpus: empty entry in '2,3,'");
}

TEST_CASE("config: a cpu in two partitions", "[config]")
{
    REQUIRE_ERROR(parse_text(with_line(10, "cpus = 1-3")), "line 8: partition 'linux': cpu 1 is also in partition 'rt' (line 4)");
    REQUIRE_ERROR(parse_text(with_line(10, "cpus = 0-3")),
                  "line 8: partition 'linux': cpus 0-1 are also in partition 'rt' (line 4)");
}

// kValid with `pci = LIST` added to partition 'linux' as line 12 (the shared section moves down).
std::string with_pci(const std::string& list) { return with_line(11, "memory = 256M\npci = " + list); }

// Exactly one message, with this text.
#define REQUIRE_ONLY_ERROR(parsed, text)                                                                      \
    do {                                                                                                       \
        auto parsed_once = (parsed);                                                                           \
        INFO(parsed_once->messages());                                                                         \
        CHECK_FALSE(parsed_once->ok);                                                                          \
        CHECK(parsed_once->diag.total() == 1);                                                                 \
        CHECK(parsed_once->messages() == std::string(text) + "\n");                                            \
    } while (0)

TEST_CASE("config: pci functions of a linux partition", "[config][pci]")
{
    auto p = parse_text(kValid);
    REQUIRE(p->ok);
    CHECK(p->config.partitions[0].pci_count == 0);
    CHECK(p->config.partitions[1].pci_count == 0);

    auto pci_of = [](const std::string& list) {
        auto parsed = parse_text(with_pci(list));
        INFO(parsed->messages());
        REQUIRE(parsed->ok);
        const Partition& vm = parsed->config.partitions[1];
        std::string all;
        for (size_t i = 0; i < vm.pci_count; ++i)
            all += std::string(i ? " " : "") + pci_text(vm.pci[i]).text;
        return all;
    };
    CHECK(pci_of("00:03.0") == "00:03.0");
    CHECK(pci_of("00:03.0, 00:04.0") == "00:03.0 00:04.0");
    CHECK(pci_of("00:03.0,00:04.0") == "00:03.0 00:04.0");
    CHECK(pci_of("\t00:1f.7 ,  ff:1F.7,AB:0c.1   # passed through") == "00:1f.7 ff:1f.7 ab:0c.1");
    CHECK(pci_of("0:3.0, 1:0.0, 00:00.1") == "00:03.0 01:00.0 00:00.1");
    CHECK(pci_of("00:01.0, 00:02.0, 00:03.0, 00:04.0, 00:05.0, 00:06.0, 00:07.0, 00:08.0") ==
          "00:01.0 00:02.0 00:03.0 00:04.0 00:05.0 00:06.0 00:07.0 00:08.0");

    p = parse_text(with_pci("02:1e.5, 00:03.0"));
    REQUIRE(p->ok);
    const Partition& vm = p->config.partitions[1];
    REQUIRE(vm.pci_count == 2);
    CHECK(vm.pci[0].bus == 0x02);
    CHECK(vm.pci[0].device == 0x1e);
    CHECK(vm.pci[0].function == 5);
    CHECK(vm.pci[1].bus == 0);
    CHECK(vm.pci[1].device == 3);
    CHECK(vm.pci[1].function == 0);

    // Keys may come in any order within the section: `pci` before `kind` is fine.
    p = parse_text(header() + "[partition rt]\nkind = rt\ncpus = 0\nmemory = 64M\n"
                              "[partition linux]\npci = 00:03.0\nkind = linux\ncpus = 1\nmemory = 64M\n");
    INFO(p->messages());
    REQUIRE(p->ok);
    CHECK(p->config.partitions[1].pci_count == 1);
    CHECK(std::string(pci_text(PciFunction{0xff, 0x1f, 7}).text) == "ff:1f.7");
}

TEST_CASE("config: pci errors", "[config][pci]")
{
    REQUIRE_ONLY_ERROR(parse_text(with_line(7, "memory = 64M\npci = 00:03.0")),
                       "line 8: partition 'rt': pci is only for kind = linux partitions");
    // `kind` after `pci`: still refused, on the pci line.
    REQUIRE_ONLY_ERROR(parse_text(with_line(5, "pci = 00:03.0\nkind = rt")),
                       "line 5: partition 'rt': pci is only for kind = linux partitions");
    REQUIRE_ONLY_ERROR(parse_text(with_pci("00:03.0\npci = 00:04.0")),
                       "line 13: partition 'linux': 'pci' is already set on line 12");
    REQUIRE_ONLY_ERROR(parse_text(with_pci("")), "line 12: partition 'linux': 'pci' has no value");
    REQUIRE_ONLY_ERROR(parse_text(with_pci("   # none")), "line 12: partition 'linux': 'pci' has no value");
    REQUIRE_ONLY_ERROR(parse_text(with_pci("00:03.0,,00:04.0")),
                       "line 12: partition 'linux': pci: empty entry in '00:03.0,,00:04.0'");
    REQUIRE_ONLY_ERROR(parse_text(with_pci("00:03.0,")), "line 12: partition 'linux': pci: empty entry in '00:03.0,'");
    REQUIRE_ONLY_ERROR(parse_text(with_pci(",00:03.0")), "line 12: partition 'linux': pci: empty entry in ',00:03.0'");

    for (const char* bad : {"0000:00:03.0", "00:03", "03.0", "00-03.0", "00.03:0", "100:03.0", "00:003.0",
                            "00:03.10", "00:03.", ":03.0", "00:.0", "0x0:03.0", "00:03.0.1", "g0:03.0", "00 :03.0",
                            "00: 03.0", "00:03.0 00:04.0", "3", "linux"}) {
        INFO(bad);
        REQUIRE_ONLY_ERROR(parse_text(with_pci(bad)), "line 12: partition 'linux': pci: '" + std::string(bad) +
                                                          "' is not bus:device.function (BB:DD.F in hex, as in "
                                                          "00:03.0)");
    }
    REQUIRE_ONLY_ERROR(parse_text(with_pci("00:20.0")), "line 12: partition 'linux': pci: '00:20.0': device 20 is above 1f");
    REQUIRE_ONLY_ERROR(parse_text(with_pci("00:FF.0")), "line 12: partition 'linux': pci: '00:FF.0': device ff is above 1f");
    REQUIRE_ONLY_ERROR(parse_text(with_pci("00:03.8")), "line 12: partition 'linux': pci: '00:03.8': function 8 is above 7");
    REQUIRE_ONLY_ERROR(parse_text(with_pci("00:03.f")), "line 12: partition 'linux': pci: '00:03.f': function f is above 7");
    REQUIRE_ONLY_ERROR(parse_text(with_pci("00:00.0")),
                       "line 12: partition 'linux': pci: 00:00.0 is the host bridge; the VM gets an emulated one");
    REQUIRE_ONLY_ERROR(parse_text(with_pci("00:03.0, 0:0.0")),
                       "line 12: partition 'linux': pci: 00:00.0 is the host bridge; the VM gets an emulated one");

    // Every bad entry is reported, not just the first.
    auto p = parse_text(with_pci("00:20.0, 00:03.0, 00:03.8, x"));
    INFO(p->messages());
    CHECK(p->diag.total() == 3);
    CHECK_THAT(p->messages(), Contains("device 20 is above 1f"));
    CHECK_THAT(p->messages(), Contains("function 8 is above 7"));
    CHECK_THAT(p->messages(), Contains("'x' is not bus:device.function"));
}

TEST_CASE("config: a pci function is listed once", "[config][pci]")
{
    REQUIRE_ONLY_ERROR(parse_text(with_pci("00:03.0, 00:04.0, 0:3.0")),
                       "line 12: partition 'linux': pci 00:03.0 is listed twice");
    // Three times is still one message; two repeated functions are two.
    REQUIRE_ONLY_ERROR(parse_text(with_pci("00:03.0, 00:03.0, 00:03.0")),
                       "line 12: partition 'linux': pci 00:03.0 is listed twice");
    auto p = parse_text(with_pci("00:03.0, 00:04.0, 00:04.0, 00:03.0"));
    CHECK(p->messages() == "line 12: partition 'linux': pci 00:04.0 is listed twice\n"
                           "line 12: partition 'linux': pci 00:03.0 is listed twice\n");

    // In two partitions: both are named, with the lines of their pci keys.
    p = parse_text(with_pci("00:03.0, 00:04.0") +
                   "[partition linux2]\nkind = linux\ncpus = 4\nmemory = 64M\npci = 00:05.0, 00:04.0, 00:03.0\n");
    INFO(p->messages());
    CHECK_FALSE(p->ok);
    CHECK_THAT(p->messages(),
               Contains("line 20: partition 'linux2': pci 00:04.0 is also passed to partition 'linux' (line 12)"));
    CHECK_THAT(p->messages(),
               Contains("line 20: partition 'linux2': pci 00:03.0 is also passed to partition 'linux' (line 12)"));
    CHECK_THAT(p->messages(), !Contains("00:05.0"));

    // A refused pci key (rt partition) is reported once, not also as a clash.
    std::string text = with_line(7, "memory = 64M\npci = 00:03.0");
    text.replace(text.find("memory = 256M"), 13, "memory = 256M\npci = 00:03.0");
    p = parse_text(text);
    CHECK(p->messages() == "line 8: partition 'rt': pci is only for kind = linux partitions\n");
}

TEST_CASE("config: at most 8 pci functions per partition", "[config][pci]")
{
    std::string eight = "00:01.0, 00:02.0, 00:03.0, 00:04.0, 00:05.0, 00:06.0, 00:07.0, 00:08.0";
    auto p = parse_text(with_pci(eight));
    REQUIRE(p->ok);
    CHECK(p->config.partitions[1].pci_count == kMaxPciFunctions);
    REQUIRE_ONLY_ERROR(parse_text(with_pci(eight + ", 00:09.0")),
                       "line 12: partition 'linux': pci lists more than 8 functions");
    REQUIRE_ONLY_ERROR(parse_text(with_pci(eight + ", 00:09.0, 00:0a.0, 00:0b.0")),
                       "line 12: partition 'linux': pci lists more than 8 functions");
}

TEST_CASE("config: shared regions name existing, distinct partitions", "[config]")
{
    REQUIRE_ERROR(parse_text(with_line(14, "between = rt, lnx")),
                  "line 14: shared 'rpc': 'between' names unknown partition 'lnx'");
    REQUIRE_ERROR(parse_text(with_line(14, "between = rt, rt")), "line 14: shared 'rpc': 'between' names partition 'rt' twice");
    REQUIRE_ERROR(parse_text(with_line(14, "between = rt")), "line 14: shared 'rpc': 'between' must name at least 2 partitions");
    REQUIRE_ERROR(parse_text(with_line(14, "between = rt,,linux")), "line 14: shared 'rpc': between: empty entry in 'rt,,linux'");
    REQUIRE_ERROR(parse_text(with_line(14, "between = rt, Linux")), "shared 'rpc': between: 'Linux' is not a partition name");
    REQUIRE_ERROR(parse_text(with_line(14, "between = a,b,c,d,e,f,g,h,i")),
                  "line 14: shared 'rpc': between names more than 8 partitions");
    // Shared sections may come before the partitions they name.
    std::string text = header() + "[shared rpc]\nmemory = 4K\nbetween = linux, rt\n" +
                       "[partition rt]\nkind = rt\ncpus = 0\nmemory = 2M\n" +
                       "[partition linux]\nkind = linux\ncpus = 1\nmemory = 2M\n";
    auto p = parse_text(text);
    INFO(p->messages());
    REQUIRE(p->ok);
    CHECK(p->config.shared[0].partitions[0] == 1);
    CHECK(p->config.shared[0].partitions[1] == 0);
}

TEST_CASE("config: capacity limits", "[config]")
{
    std::string text = header();
    for (int i = 0; i < 9; ++i)
        text += "[partition p" + std::to_string(i) + "]\nkind = " + (i == 0 ? "rt" : "linux") + "\n";
    REQUIRE_ERROR(parse_text(text), "line 20: too many partitions (the limit is 8)");

    text = kValid; // already has one shared region
    for (int i = 0; i < 8; ++i)
        text += "[shared s" + std::to_string(i) + "]\nmemory = 4K\nbetween = rt, linux\n";
    auto p = parse_text(text);
    REQUIRE_ERROR(p, "line 36: too many shared regions (the limit is 8)");
    CHECK(p->diag.count == 1);

    // Eight of each is fine.
    text = header();
    for (int i = 0; i < 8; ++i)
        text += "[partition p" + std::to_string(i) + "]\nkind = " + (i == 0 ? "rt" : "linux") + "\ncpus = " +
                std::to_string(i) + "\nmemory = 2M\n";
    for (int i = 0; i < 8; ++i)
        text += "[shared s" + std::to_string(i) + "]\nmemory = 4K\nbetween = p0, p" + std::to_string(i == 0 ? 1 : i) + "\n";
    p = parse_text(text);
    // Seven linux partitions break the at-most-one-linux rule, but nothing about capacity.
    CHECK_THAT(p->messages(), !Contains("too many"));
}

TEST_CASE("config: errors are all collected, up to the cap", "[config]")
{
    // Three independent mistakes are all reported, in one pass.
    std::string text = kValid;
    text.replace(text.find("cpus = 0-1"), 10, "cpus = 0-1,1");
    text.replace(text.find("memory = 256M"), 13, "memory = 255M");
    text.replace(text.find("between = rt, linux"), 19, "between = rt, nobody");
    auto p = parse_text(text);
    CHECK(p->diag.count == 3);
    CHECK_THAT(p->messages(), Contains("line 6:") && Contains("line 11:") && Contains("line 14:"));

    text = header();
    for (int i = 0; i < 40; ++i)
        text += "bogus line\n";
    p = parse_text(text);
    CHECK_FALSE(p->ok);
    CHECK(p->diag.count == kMaxDiagnostics);
    CHECK(p->diag.dropped == 40 + 1 - kMaxDiagnostics); // + the missing rt partition
    CHECK(p->diag.total() == 41);
}

TEST_CASE("config: bytes that do not belong in a text file", "[config]")
{
    REQUIRE_ERROR(parse_text(std::string("version = 1\nmem\0ry = 1\n", 23)), "line 2: NUL byte at column 4");
    REQUIRE_ERROR(parse_text(with_line(6, "cpus = 0\x01")), "line 6: control character 0x01 at column 9");
    REQUIRE_ERROR(parse_text(with_line(6, "cpus = 0\x7f")), "line 6: control character 0x7f at column 9");
    REQUIRE_ERROR(parse_text(with_line(6, "cpus = 0\r1")), "line 6: control character 0x0d at column 9");
    REQUIRE_ERROR(parse_text(with_line(6, "cpus = \xc3\xa9")),
                  "line 6: non-ASCII byte 0xc3 at column 8 (only comments may hold non-ASCII text)");
    REQUIRE_ERROR(parse_text(with_line(6, "cpus = 0 # \x1b[31m")), "line 6: control character 0x1b at column 12");
    // A trailing NUL (a C string passed with its terminator) is an error too, not silently ignored.
    REQUIRE_ERROR(parse_text(std::string(kValid) + std::string(1, '\0')), "line 15: NUL byte at column 1");
}

TEST_CASE("config: size limit on the whole text", "[config]")
{
    std::string text = kValid;
    text += std::string(kMaxTextLength - text.size(), '\n');
    CHECK(parse_text(text)->ok);
    text += "\n";
    REQUIRE_ERROR(parse_text(text), "the configuration is 65537 bytes; the limit is 65536");
    Config config;
    Diagnostics diag;
    CHECK_FALSE(parse(nullptr, 0, config, diag));
    CHECK_THAT(std::string(diag.messages[0].c_str()), Contains("the configuration is empty"));
}

TEST_CASE("config: long tokens are shortened in messages", "[config]")
{
    std::string junk(60000, 'x');
    auto p = parse_text(with_line(6, "cpus = " + junk));
    REQUIRE_ERROR(p, "cpus: '" + std::string(32, 'x') + "...' is not a CPU number");
    p = parse_text(with_line(6, junk));
    REQUIRE_ERROR(p, "line 6: expected 'key = value' or '[section]', found '" + std::string(32, 'x') + "...'");
    p = parse_text(header() + "[" + junk + "]\n");
    REQUIRE_ERROR(p, "unknown section '[xxxx");
    for (size_t i = 0; i < p->diag.count; ++i)
        CHECK(p->diag.messages[i].length() < kMaxDiagnosticLength);
}

TEST_CASE("config: the default configurations parse", "[config]")
{
    const std::string dir = VLIBOS_FIXTURES_DIR "/../../../kernel/config/defaults/";
    for (const char* name : {"1cpu.cfg", "2cpu.cfg", "4cpu.cfg"}) {
        INFO(name);
        auto p = parse_text(read_file(dir + name));
        INFO(p->messages());
        CHECK(p->ok);
        CHECK(p->config.monitor_memory == 32 * MiB);
        CHECK(p->config.partitions[0].kind == Kind::Rt);
        CHECK((p->config.partitions[0].cpus & 1) == 1);
        CHECK(p->config.partitions[0].scheduling == Scheduling::RateMonotonic);
        // Each runs the demo app on an rt cpu: 0 where the rt partition has one cpu, else 1.
        REQUIRE(p->config.app_count == 1);
        const App& app = p->config.apps[0];
        CHECK(std::string(app.name) == "periodic");
        CHECK(std::string(app.module) == "periodic");
        CHECK(app.cpu == (std::string(name) == "4cpu.cfg" ? 1u : 0u));
        CHECK(partition_of_cpu(p->config, app.cpu) == 0);
        CHECK(app.memory == 2 * MiB);
        CHECK(app.stack == 64 * KiB);
        CHECK(std::string(app.args) == "periods=100");
        REQUIRE(app.vcpu_count == 4);
        const char* names[] = {"main", "fast", "mid", "slow"};
        const uint64_t budgets_ms[] = {1, 1, 2, 4};
        const uint64_t periods_ms[] = {20, 5, 10, 40};
        for (size_t v = 0; v < 4; ++v) {
            CHECK(std::string(app.vcpus[v].name) == names[v]);
            CHECK(app.vcpus[v].budget_ns == budgets_ms[v] * 1'000'000);
            CHECK(app.vcpus[v].period_ns == periods_ms[v] * 1'000'000);
            CHECK_FALSE(app.vcpus[v].has_priority);
        }
    }
}

TEST_CASE("config: malformed input never crashes", "[config]")
{
    std::mt19937_64 rng(20240611);
    auto check_one = [](const std::string& text) {
        auto p = parse_text(text);
        CHECK(p->diag.count <= kMaxDiagnostics);
        for (size_t i = 0; i < p->diag.count; ++i)
            REQUIRE(p->diag.messages[i].length() < kMaxDiagnosticLength);
        if (p->ok) {
            REQUIRE(p->config.partition_count <= kMaxPartitions);
            REQUIRE(p->config.shared_count <= kMaxShared);
            for (size_t i = 0; i < p->config.partition_count; ++i)
                REQUIRE(p->config.partitions[i].pci_count <= kMaxPciFunctions);
        }
    };

    SECTION("binary garbage")
    {
        for (int round = 0; round < 500; ++round) {
            std::string text(rng() % 2000, '\0');
            for (auto& c : text)
                c = static_cast<char>(rng());
            check_one(text);
        }
    }
    SECTION("garbage from the format's own alphabet")
    {
        const std::string alphabet = "[]=#,- \t\n\r0123456789xKMGabcdefghijklmnopqrstuvwxyz_\xff";
        const char* words[] = {"version", "monitor", "partition", "shared", "memory", "cpus", "kind", "base",
                               "between", "rt", "linux", "= ", "\n", "[", "]", "0x", "64M", "0-3", ",",
                               "app", "module", "cpu", "stack", "args", "vcpu", "scheduling", "explicit",
                               "rate-monotonic", "priority", "1ms", "20ms", " ", "pci", "00:03.0", ":", "."};
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
    SECTION("mutations of a valid file")
    {
        // kValid, and kValid with an app and an explicit-priority rt partition.
        std::string with_app = kValid;
        with_app.replace(with_app.find("memory = 64M\n"), 13, "memory = 64M\nscheduling = explicit\n");
        with_app.replace(with_app.find("memory = 256M\n"), 14, "memory = 256M\npci = 00:03.0, 00:1f.7\n");
        with_app += "[app periodic]\nmodule = periodic\ncpu = 1\nmemory = 2M\nstack = 8K\nargs = n=1\n"
                    "vcpu = main 1ms 20ms priority 1\nvcpu = fast 500us 5ms priority 0\n";
        REQUIRE(parse_text(with_app)->ok);
        for (int round = 0; round < 3000; ++round) {
            std::string text = round % 2 == 0 ? std::string(kValid) : with_app;
            int edits = 1 + static_cast<int>(rng() % 4);
            for (int e = 0; e < edits && !text.empty(); ++e) {
                size_t at = rng() % text.size();
                switch (rng() % 4) {
                case 0: text[at] = static_cast<char>(rng()); break;
                case 1: text.erase(at, 1 + rng() % 8); break;
                case 2: text.insert(at, std::string(1 + rng() % 3, static_cast<char>(rng()))); break;
                case 3: text.resize(at); break; // truncated: no trailing newline
                }
            }
            check_one(text);
        }
    }
    SECTION("very long lines")
    {
        check_one(std::string(kMaxTextLength, 'a'));
        check_one(std::string(kMaxTextLength, '['));
        check_one(std::string(kMaxTextLength, '='));
        check_one(std::string(kMaxTextLength, ','));
        check_one("version = 1\n[monitor]\nmemory = " + std::string(kMaxTextLength - 30, '9'));
        check_one("version = 1\n[partition a]\ncpus = " + std::string(kMaxTextLength - 40, ','));
        check_one(std::string(kMaxTextLength, '\n'));
        check_one(std::string(kMaxTextLength + 1, '\0'));
    }
}
