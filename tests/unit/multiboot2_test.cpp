// Multiboot2 boot information parser: well-formed info built like GRUB builds it, then
// malformed and randomly mutated info that must be rejected without reading out of bounds.
#include <catch2/catch.hpp>

#include <stdint.h>
#include <string.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "boot/multiboot2.hpp"

using namespace vlibos;
using namespace vlibos::mb2;

namespace {

struct RawRegion {
    uint64_t base;
    uint64_t length;
    uint32_t type;
};

// Builds a boot information structure tag by tag, 8-byte padded, as GRUB does (spec §3.6).
class InfoBuilder {
public:
    InfoBuilder() : bytes_(8, 0) {}

    // A tag whose size field is 8 + payload size.
    InfoBuilder& tag(uint32_t type, const std::vector<uint8_t>& payload)
    {
        return tag_with_size(type, static_cast<uint32_t>(8 + payload.size()), payload);
    }

    // A tag with an explicit (possibly lying) size field.
    InfoBuilder& tag_with_size(uint32_t type, uint32_t size, const std::vector<uint8_t>& payload)
    {
        put32(type);
        put32(size);
        bytes_.insert(bytes_.end(), payload.begin(), payload.end());
        pad();
        return *this;
    }

    InfoBuilder& string_tag(uint32_t type, const char* text)
    {
        std::vector<uint8_t> payload(text, text + strlen(text) + 1);
        return tag(type, payload);
    }
    InfoBuilder& cmdline(const char* text) { return string_tag(1, text); }
    InfoBuilder& bootloader_name(const char* text) { return string_tag(2, text); }

    InfoBuilder& module(uint32_t start, uint32_t end, const char* text)
    {
        std::vector<uint8_t> payload;
        append32(payload, start);
        append32(payload, end);
        payload.insert(payload.end(), text, text + strlen(text) + 1);
        return tag(3, payload);
    }

    InfoBuilder& basic_meminfo(uint32_t lower_kib, uint32_t upper_kib)
    {
        std::vector<uint8_t> payload;
        append32(payload, lower_kib);
        append32(payload, upper_kib);
        return tag(4, payload);
    }

    InfoBuilder& memory_map(const std::vector<RawRegion>& regions, uint32_t entry_size = 24)
    {
        std::vector<uint8_t> payload;
        append32(payload, entry_size);
        append32(payload, 0); // entry_version
        for (const RawRegion& r : regions) {
            size_t start = payload.size();
            append64(payload, r.base);
            append64(payload, r.length);
            append32(payload, r.type);
            payload.resize(start + entry_size, 0);
        }
        return tag(6, payload);
    }

    InfoBuilder& acpi(uint32_t type, size_t rsdp_length)
    {
        std::vector<uint8_t> payload(rsdp_length, 0);
        memcpy(payload.data(), "RSD PTR ", 8);
        payload[15] = type == 15 ? 2 : 0;
        return tag(type, payload);
    }

    InfoBuilder& end() { return tag(0, {}); }

    // Finishes the header: total_size covers everything built so far.
    std::vector<uint8_t> finish() const
    {
        std::vector<uint8_t> out = bytes_;
        uint32_t total = static_cast<uint32_t>(out.size());
        memcpy(out.data(), &total, 4);
        return out;
    }

private:
    static void append32(std::vector<uint8_t>& v, uint32_t x)
    {
        uint8_t b[4];
        memcpy(b, &x, 4);
        v.insert(v.end(), b, b + 4);
    }
    static void append64(std::vector<uint8_t>& v, uint64_t x)
    {
        uint8_t b[8];
        memcpy(b, &x, 8);
        v.insert(v.end(), b, b + 8);
    }
    void put32(uint32_t x) { append32(bytes_, x); }
    void pad()
    {
        while (bytes_.size() % 8 != 0)
            bytes_.push_back(0);
    }

    std::vector<uint8_t> bytes_;
};

// Heap copy of exactly `size` bytes, so ASan flags any read past the end. malloc returns
// 16-byte aligned memory; `offset` shifts the start to test misalignment.
class Buffer {
public:
    explicit Buffer(const std::vector<uint8_t>& bytes, size_t offset = 0)
        : storage_(new uint8_t[bytes.size() + offset]), offset_(offset), size_(bytes.size())
    {
        if (!bytes.empty())
            memcpy(storage_.get() + offset_, bytes.data(), bytes.size());
    }
    const uint8_t* data() const { return storage_.get() + offset_; }
    uint8_t* data() { return storage_.get() + offset_; }
    size_t size() const { return size_; }

private:
    std::unique_ptr<uint8_t[]> storage_;
    size_t offset_;
    size_t size_;
};

std::vector<RawRegion> typical_map()
{
    return {
        {0x0, 0x9fc00, 1},
        {0x9fc00, 0x400, 2},
        {0xf0000, 0x10000, 2},
        {0x100000, 0x7fee0000, 1},
        {0x7ffe0000, 0x20000, 3},
        {0xfffc0000, 0x40000, 4},
        {0x100000000, 0x80000000, 5},
        {0x180000000, 0x1000, 20}, // a type from the future
    };
}

// What GRUB hands over on a BIOS machine.
InfoBuilder typical_info()
{
    InfoBuilder b;
    b.cmdline("vlibos.config=/boot/system.cfg debug")
        .bootloader_name("GRUB 2.06")
        .module(0x200000, 0x201234, "/boot/partition-a.elf role=a")
        .module(0x202000, 0x203000, "")
        .basic_meminfo(639, 2096000)
        .tag(5, std::vector<uint8_t>(12, 0xff)) // BIOS boot device: ignored
        .memory_map(typical_map())
        .acpi(14, 20)
        .acpi(15, 36)
        .end();
    return b;
}

// Parses a copy of `bytes`; the copy lives as long as this object, since the result points into it.
struct Parsed {
    explicit Parsed(const std::vector<uint8_t>& bytes)
        : buffer(bytes), status(parse(kBootloaderMagic, buffer.data(), buffer.size(), info))
    {
    }
    Buffer buffer;
    BootInfo info;
    Status<Error> status;
};

Error parse_error(const std::vector<uint8_t>& bytes)
{
    Parsed parsed(bytes);
    REQUIRE_FALSE(parsed.status.ok());
    return parsed.status.error();
}

} // namespace

TEST_CASE("multiboot2: GRUB-like boot information is parsed", "[multiboot2]")
{
    Buffer buffer(typical_info().finish());
    BootInfo info;
    auto status = parse(kBootloaderMagic, buffer.data(), buffer.size(), info);
    REQUIRE(status.ok());

    CHECK(std::string(info.cmdline) == "vlibos.config=/boot/system.cfg debug");
    CHECK(std::string(info.bootloader_name) == "GRUB 2.06");
    CHECK(info.total_size == buffer.size());

    REQUIRE(info.module_count == 2);
    CHECK(info.modules[0].start == 0x200000);
    CHECK(info.modules[0].end == 0x201234);
    CHECK(std::string(info.modules[0].cmdline) == "/boot/partition-a.elf role=a");
    CHECK(std::string(info.modules[1].cmdline).empty());

    REQUIRE(info.memory_count == 8);
    CHECK(info.memory[0].base == 0);
    CHECK(info.memory[0].length == 0x9fc00);
    CHECK(info.memory[0].type == MemoryType::Usable);
    CHECK(info.memory[1].type == MemoryType::Reserved);
    CHECK(info.memory[3].base == 0x100000);
    CHECK(info.memory[4].type == MemoryType::AcpiReclaimable);
    CHECK(info.memory[5].type == MemoryType::AcpiNvs);
    CHECK(info.memory[6].base == 0x100000000);
    CHECK(info.memory[6].type == MemoryType::Bad);
    CHECK(info.memory[7].type == MemoryType::Reserved); // unknown type 20

    // The new (ACPI 2.0) RSDP copy wins over the old one, and points into the info.
    REQUIRE(info.rsdp != nullptr);
    CHECK(info.rsdp_length == 36);
    CHECK(info.rsdp[15] == 2);
    CHECK(info.rsdp >= buffer.data());
    CHECK(info.rsdp + info.rsdp_length <= buffer.data() + buffer.size());
}

TEST_CASE("multiboot2: optional tags may be absent", "[multiboot2]")
{
    InfoBuilder b;
    b.memory_map({{0, 0x80000, 1}}).end();
    Parsed parsed(b.finish());
    REQUIRE(parsed.status.ok());
    const BootInfo& info = parsed.info;
    CHECK(std::string(info.cmdline).empty());
    CHECK(std::string(info.bootloader_name).empty());
    CHECK(info.module_count == 0);
    CHECK(info.rsdp == nullptr);
    CHECK(info.rsdp_length == 0);
    CHECK(info.memory_count == 1);
}

TEST_CASE("multiboot2: only the old ACPI tag gives the v1 RSDP", "[multiboot2]")
{
    InfoBuilder b;
    b.acpi(14, 20).memory_map({{0, 0x80000, 1}}).end();
    Parsed parsed(b.finish());
    REQUIRE(parsed.status.ok());
    const BootInfo& info = parsed.info;
    REQUIRE(info.rsdp != nullptr);
    CHECK(info.rsdp_length == 20);
    CHECK(info.rsdp[15] == 0);
}

TEST_CASE("multiboot2: the new ACPI tag wins even when it comes first", "[multiboot2]")
{
    InfoBuilder b;
    b.acpi(15, 36).acpi(14, 20).memory_map({{0, 0x80000, 1}}).end();
    Parsed parsed(b.finish());
    REQUIRE(parsed.status.ok());
    const BootInfo& info = parsed.info;
    CHECK(info.rsdp_length == 36);
}

TEST_CASE("multiboot2: larger memory map entries and zero-length regions", "[multiboot2]")
{
    InfoBuilder b;
    b.memory_map({{0, 0x1000, 1}, {0x1000, 0, 1}, {0x2000, 0x1000, 2}}, 32).end();
    Parsed parsed(b.finish());
    REQUIRE(parsed.status.ok());
    const BootInfo& info = parsed.info;
    REQUIRE(info.memory_count == 2); // the empty region is dropped
    CHECK(info.memory[1].base == 0x2000);
    CHECK(info.memory[1].type == MemoryType::Reserved);
}

TEST_CASE("multiboot2: a region ending exactly at 2^64 is accepted, one wrapping is not", "[multiboot2]")
{
    InfoBuilder ok;
    ok.memory_map({{0xfffffffffffff000, 0x1000, 2}}).end();
    Parsed parsed(ok.finish());
    REQUIRE(parsed.status.ok());
    CHECK(parsed.info.memory_count == 1);

    InfoBuilder bad;
    bad.memory_map({{0xfffffffffffff000, 0x2000, 2}}).end();
    CHECK(parse_error(bad.finish()) == Error::BadMemoryRegion);
}

TEST_CASE("multiboot2: wrong magic, null, misaligned", "[multiboot2]")
{
    auto bytes = typical_info().finish();
    Buffer buffer(bytes);
    BootInfo info;
    auto status = parse(0x2badb002, buffer.data(), buffer.size(), info); // Multiboot1 magic
    REQUIRE_FALSE(status.ok());
    CHECK(status.error() == Error::BadMagic);

    status = parse(kBootloaderMagic, nullptr, 4096, info);
    REQUIRE_FALSE(status.ok());
    CHECK(status.error() == Error::NullInfo);

    for (size_t offset : {size_t{1}, size_t{2}, size_t{4}}) {
        Buffer shifted(bytes, offset);
        status = parse(kBootloaderMagic, shifted.data(), shifted.size(), info);
        REQUIRE_FALSE(status.ok());
        CHECK(status.error() == Error::Misaligned);
    }
}

TEST_CASE("multiboot2: total_size out of range", "[multiboot2]")
{
    auto bytes = typical_info().finish();
    BootInfo info;

    SECTION("larger than the readable bytes")
    {
        Buffer buffer(bytes);
        auto status = parse(kBootloaderMagic, buffer.data(), buffer.size() - 8, info);
        REQUIRE_FALSE(status.ok());
        CHECK(status.error() == Error::TotalSizeTooLarge);
    }
    SECTION("below the 16-byte minimum")
    {
        for (uint32_t total : {0u, 8u, 15u}) {
            auto copy = bytes;
            memcpy(copy.data(), &total, 4);
            CHECK(parse_error(copy) == Error::TooShort);
        }
    }
    SECTION("fewer readable bytes than a header")
    {
        Buffer buffer(bytes);
        auto status = parse(kBootloaderMagic, buffer.data(), 12, info);
        REQUIRE_FALSE(status.ok());
        CHECK(status.error() == Error::TooShort);
    }
    SECTION("total_size cuts the tags short")
    {
        auto copy = bytes;
        uint32_t total = 40; // inside the command line tag
        memcpy(copy.data(), &total, 4);
        CHECK(parse_error(copy) == Error::TagOverrun);
    }
    SECTION("total_size ends right after a tag, before the end tag")
    {
        InfoBuilder b;
        b.memory_map({{0, 0x1000, 1}});
        auto no_end = b.finish();
        CHECK(parse_error(no_end) == Error::MissingEndTag);
    }
}

TEST_CASE("multiboot2: malformed tags", "[multiboot2]")
{
    SECTION("tag overrunning total_size")
    {
        InfoBuilder b;
        b.memory_map({{0, 0x1000, 1}}).tag_with_size(1, 4096, {'a', 0, 0, 0, 0, 0, 0, 0}).end();
        CHECK(parse_error(b.finish()) == Error::TagOverrun);
    }
    SECTION("zero-size tag")
    {
        InfoBuilder b;
        b.memory_map({{0, 0x1000, 1}}).tag_with_size(7, 0, {}).end();
        CHECK(parse_error(b.finish()) == Error::TagTooShort);
    }
    SECTION("tag smaller than its header")
    {
        InfoBuilder b;
        b.memory_map({{0, 0x1000, 1}}).tag_with_size(7, 7, {}).end();
        CHECK(parse_error(b.finish()) == Error::TagTooShort);
    }
    SECTION("end tag with a wrong size")
    {
        InfoBuilder b;
        b.memory_map({{0, 0x1000, 1}}).tag_with_size(0, 16, std::vector<uint8_t>(8, 0));
        CHECK(parse_error(b.finish()) == Error::BadEndTag);
    }
    SECTION("missing end tag, padding left over")
    {
        InfoBuilder b;
        b.memory_map({{0, 0x1000, 1}}).cmdline("abc");
        auto bytes = b.finish();
        CHECK(parse_error(bytes) == Error::MissingEndTag);
        // total_size ends inside the last tag's padding: its padded size overruns.
        uint32_t total = static_cast<uint32_t>(bytes.size() - 4);
        memcpy(bytes.data(), &total, 4);
        bytes.resize(total);
        CHECK(parse_error(bytes) == Error::MissingEndTag);
    }
    SECTION("unterminated command line")
    {
        InfoBuilder b;
        b.tag(1, {'a', 'b', 'c'}).memory_map({{0, 0x1000, 1}}).end();
        CHECK(parse_error(b.finish()) == Error::UnterminatedString);
    }
    SECTION("unterminated boot loader name, even with a NUL in the padding")
    {
        // The NUL that follows in the padding is outside the tag and must not count.
        InfoBuilder b;
        b.tag(2, {'G', 'R', 'U', 'B'}).memory_map({{0, 0x1000, 1}}).end();
        CHECK(parse_error(b.finish()) == Error::UnterminatedString);
    }
    SECTION("empty string tag")
    {
        InfoBuilder b;
        b.tag(1, {}).memory_map({{0, 0x1000, 1}}).end();
        CHECK(parse_error(b.finish()) == Error::TagTooShort);
    }
    SECTION("unterminated module string")
    {
        InfoBuilder b;
        b.tag(3, {0, 0, 0x10, 0, 0, 0, 0x20, 0, 'x'}).memory_map({{0, 0x1000, 1}}).end();
        CHECK(parse_error(b.finish()) == Error::UnterminatedString);
    }
    SECTION("module tag too short for its addresses")
    {
        InfoBuilder b;
        b.tag(3, {0, 0, 0x10, 0}).memory_map({{0, 0x1000, 1}}).end();
        CHECK(parse_error(b.finish()) == Error::TagTooShort);
    }
    SECTION("module ending before it starts, or empty")
    {
        InfoBuilder b1;
        b1.module(0x2000, 0x1000, "m").memory_map({{0, 0x1000, 1}}).end();
        CHECK(parse_error(b1.finish()) == Error::BadModuleRange);
        InfoBuilder b2;
        b2.module(0x2000, 0x2000, "m").memory_map({{0, 0x1000, 1}}).end();
        CHECK(parse_error(b2.finish()) == Error::BadModuleRange);
    }
    SECTION("duplicate command line")
    {
        InfoBuilder b;
        b.cmdline("a").cmdline("b").memory_map({{0, 0x1000, 1}}).end();
        CHECK(parse_error(b.finish()) == Error::DuplicateTag);
    }
    SECTION("duplicate memory map")
    {
        InfoBuilder b;
        b.memory_map({{0, 0x1000, 1}}).memory_map({{0, 0x1000, 1}}).end();
        CHECK(parse_error(b.finish()) == Error::DuplicateTag);
    }
    SECTION("ACPI tags too short for an RSDP")
    {
        InfoBuilder b1;
        b1.acpi(14, 19).memory_map({{0, 0x1000, 1}}).end();
        CHECK(parse_error(b1.finish()) == Error::BadAcpiTag);
        InfoBuilder b2;
        b2.acpi(15, 20).memory_map({{0, 0x1000, 1}}).end();
        CHECK(parse_error(b2.finish()) == Error::BadAcpiTag);
    }
}

TEST_CASE("multiboot2: memory map problems", "[multiboot2]")
{
    SECTION("no memory map, even with basic meminfo")
    {
        InfoBuilder b;
        b.cmdline("x").basic_meminfo(639, 1000).end();
        CHECK(parse_error(b.finish()) == Error::NoMemoryMap);
    }
    SECTION("entry size too small or not a multiple of 8")
    {
        for (uint32_t entry_size : {0u, 8u, 16u, 20u, 28u}) {
            InfoBuilder b;
            b.memory_map({}, entry_size).end();
            CHECK(parse_error(b.finish()) == Error::BadMemoryMapEntrySize);
        }
    }
    SECTION("tag shorter than its own header fields")
    {
        InfoBuilder b;
        b.tag(6, {24, 0, 0, 0}).end();
        CHECK(parse_error(b.finish()) == Error::TagTooShort);
    }
    SECTION("trailing partial entry")
    {
        std::vector<uint8_t> payload(8 + 24 + 8, 0);
        payload[0] = 24;
        InfoBuilder b;
        b.tag(6, payload).end();
        CHECK(parse_error(b.finish()) == Error::BadMemoryMapLength);
    }
    SECTION("too many regions")
    {
        std::vector<RawRegion> regions;
        for (uint64_t i = 0; i < kMaxMemoryRegions; ++i)
            regions.push_back({i * 0x1000, 0x1000, 1});
        InfoBuilder fits;
        fits.memory_map(regions).end();
        Parsed parsed(fits.finish());
        REQUIRE(parsed.status.ok());
        const BootInfo& info = parsed.info;
        CHECK(info.memory_count == kMaxMemoryRegions);

        regions.push_back({0x10000000, 0x1000, 1});
        InfoBuilder too_many;
        too_many.memory_map(regions).end();
        CHECK(parse_error(too_many.finish()) == Error::TooManyMemoryRegions);
    }
}

TEST_CASE("multiboot2: too many modules", "[multiboot2]")
{
    InfoBuilder fits, too_many;
    for (uint32_t i = 0; i < kMaxModules; ++i) {
        fits.module(0x100000 + i * 0x1000, 0x100800 + i * 0x1000, "m");
        too_many.module(0x100000 + i * 0x1000, 0x100800 + i * 0x1000, "m");
    }
    too_many.module(0x900000, 0x901000, "one too many");
    fits.memory_map({{0, 0x1000, 1}}).end();
    too_many.memory_map({{0, 0x1000, 1}}).end();
    Parsed parsed(fits.finish());
    REQUIRE(parsed.status.ok());
    const BootInfo& info = parsed.info;
    CHECK(info.module_count == kMaxModules);
    CHECK(parse_error(too_many.finish()) == Error::TooManyModules);
}

TEST_CASE("multiboot2: every error has a description", "[multiboot2]")
{
    for (int e = static_cast<int>(Error::BadMagic); e <= static_cast<int>(Error::BadAcpiTag); ++e) {
        const char* text = describe(static_cast<Error>(e));
        REQUIRE(text != nullptr);
        CHECK(strlen(text) > 10);
    }
}

TEST_CASE("multiboot2: random mutations never read out of bounds", "[multiboot2][fuzz]")
{
    const std::vector<uint8_t> valid = typical_info().finish();
    std::mt19937 rng(0x6d623221); // deterministic
    size_t accepted = 0;
    for (int iteration = 0; iteration < 20000; ++iteration) {
        std::vector<uint8_t> bytes = valid;
        int mutations = 1 + static_cast<int>(rng() % 8);
        for (int m = 0; m < mutations; ++m) {
            size_t at = rng() % bytes.size();
            switch (rng() % 4) {
            case 0: bytes[at] = static_cast<uint8_t>(rng()); break;
            case 1: bytes[at] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
            case 2: { // hit a size field with an interesting value
                size_t field = (at & ~size_t{3}) % (bytes.size() - 3);
                static const uint32_t values[] = {0, 1, 7, 8, 9, 16, 23, 24, 0x7fffffff, 0xffffffff, 0xfffffff8};
                uint32_t v = values[rng() % (sizeof(values) / sizeof(values[0]))];
                memcpy(bytes.data() + field, &v, 4);
                break;
            }
            default: bytes[at] = 0; break;
            }
        }
        // Sometimes also claim fewer readable bytes than the buffer holds.
        size_t available = bytes.size();
        if (rng() % 4 == 0)
            available = rng() % (bytes.size() + 1);
        std::vector<uint8_t> exact(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(available));
        Buffer buffer(exact);
        BootInfo info;
        auto status = parse(kBootloaderMagic, buffer.data(), available, info);
        if (!status.ok()) {
            CHECK(describe(status.error()) != nullptr);
            continue;
        }
        ++accepted;
        // Anything accepted must stay inside the buffer.
        const uint8_t* lo = buffer.data();
        const uint8_t* hi = buffer.data() + available;
        REQUIRE(info.total_size <= available);
        REQUIRE(info.memory_count <= kMaxMemoryRegions);
        REQUIRE(info.module_count <= kMaxModules);
        auto inside = [&](const char* s) {
            auto p = reinterpret_cast<const uint8_t*>(s);
            return (p >= lo && p < hi && memchr(p, 0, static_cast<size_t>(hi - p)) != nullptr) || s[0] == '\0';
        };
        REQUIRE(inside(info.cmdline));
        REQUIRE(inside(info.bootloader_name));
        for (size_t i = 0; i < info.module_count; ++i) {
            REQUIRE(inside(info.modules[i].cmdline));
            REQUIRE(info.modules[i].start < info.modules[i].end);
        }
        if (info.rsdp != nullptr) {
            REQUIRE(info.rsdp >= lo);
            REQUIRE(info.rsdp + info.rsdp_length <= hi);
            REQUIRE(info.rsdp_length >= 20);
        }
    }
    CHECK(accepted > 0);
}
