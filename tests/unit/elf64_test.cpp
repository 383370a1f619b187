// ELF64 program parser: images built here (one valid layout, then one minimal mutation per
// error), two real static executables made by GCC and GNU ld (fixtures/elf, see build.sh), every
// truncation of a real one, and random mutations that must never read outside the buffer.
#include <catch2/catch.hpp>

#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "elf/elf64.hpp"
#include "test_random.hpp"

using namespace vlibos;
using namespace vlibos::elf;

namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint32_t PT_NULL = 0, PT_LOAD = 1, PT_DYNAMIC = 2, PT_INTERP = 3, PT_NOTE = 4, PT_PHDR = 6, PT_TLS = 7;
constexpr uint32_t PT_GNU_STACK = 0x6474e551, PT_GNU_RELRO = 0x6474e552, PT_GNU_PROPERTY = 0x6474e553;
constexpr uint32_t PF_X = 1, PF_W = 2, PF_R = 4;
constexpr uint64_t kUserLimit = kLowerHalfEnd;

// Elf64_Ehdr offsets, for mutations.
constexpr size_t kOsAbi = 7, kType = 16, kMachine = 18, kVersion = 20, kEntry = 24, kPhoff = 32, kEhsize = 52,
                 kPhentsize = 54, kPhnum = 56;

void put16(Bytes& b, size_t offset, uint16_t v) { memcpy(b.data() + offset, &v, 2); }
void put32(Bytes& b, size_t offset, uint32_t v) { memcpy(b.data() + offset, &v, 4); }
void put64(Bytes& b, size_t offset, uint64_t v) { memcpy(b.data() + offset, &v, 8); }

struct Phdr {
    uint32_t type;
    uint32_t flags;
    uint64_t offset, vaddr, filesz, memsz, align;
};

Phdr load(uint32_t flags, uint64_t offset, uint64_t vaddr, uint64_t filesz, uint64_t memsz, uint64_t align = 0x1000)
{
    return Phdr{PT_LOAD, flags, offset, vaddr, filesz, memsz, align};
}

Phdr other(uint32_t type, uint32_t flags = PF_R) { return Phdr{type, flags, 0, 0, 0, 0, 8}; }

// An ELF64 executable: header at 0, program headers right after it, and `file_size` bytes in
// all (the payload is a recognisable pattern; the parser never looks at it).
struct Image {
    uint64_t entry = 0x401000;
    std::vector<Phdr> phdrs;
    size_t file_size = 0x3000;

    // Laid out like GNU ld's output for a static program: headers R, text R-X, data+bss RW-.
    static Image typical()
    {
        Image image;
        image.phdrs = {
            load(PF_R, 0, 0x400000, 0x120, 0x120),
            load(PF_R | PF_X, 0x1000, 0x401000, 0x40, 0x40),
            load(PF_R | PF_W, 0x2000, 0x402000, 0x10, 0x2020),
            other(PT_GNU_STACK, PF_R | PF_W),
        };
        return image;
    }

    Bytes bytes() const
    {
        Bytes b(file_size);
        for (size_t i = 0; i < b.size(); ++i)
            b[i] = static_cast<uint8_t>(i * 7 + 3);
        const uint8_t ident[16] = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0};
        REQUIRE(b.size() >= 64 + phdrs.size() * 56);
        memcpy(b.data(), ident, sizeof(ident));
        put16(b, kType, 2);     // ET_EXEC
        put16(b, kMachine, 62); // EM_X86_64
        put32(b, kVersion, 1);
        put64(b, kEntry, entry);
        put64(b, kPhoff, 64);
        put64(b, 40, 0);        // e_shoff: no section headers
        put32(b, 48, 0);        // e_flags
        put16(b, kEhsize, 64);
        put16(b, kPhentsize, 56);
        put16(b, kPhnum, static_cast<uint16_t>(phdrs.size()));
        put16(b, 58, 64);       // e_shentsize
        put16(b, 60, 0);        // e_shnum
        put16(b, 62, 0);        // e_shstrndx
        for (size_t i = 0; i < phdrs.size(); ++i) {
            size_t at = 64 + i * 56;
            const Phdr& p = phdrs[i];
            put32(b, at + 0, p.type);
            put32(b, at + 4, p.flags);
            put64(b, at + 8, p.offset);
            put64(b, at + 16, p.vaddr);
            put64(b, at + 24, p.vaddr); // p_paddr
            put64(b, at + 32, p.filesz);
            put64(b, at + 40, p.memsz);
            put64(b, at + 48, p.align);
        }
        return b;
    }
};

// Parses from a heap block of exactly the image's size, so ASan catches any read past its end.
Status<Error> parse_exact(const Bytes& bytes, Program& out, uint64_t user_limit = kUserLimit)
{
    std::unique_ptr<uint8_t[]> exact(new uint8_t[bytes.size() + 1]); // +1: new[0] is not a usable pointer
    if (!bytes.empty())
        memcpy(exact.get(), bytes.data(), bytes.size());
    return parse(exact.get(), bytes.size(), user_limit, out);
}

Error error_of(const Bytes& bytes, uint64_t user_limit = kUserLimit)
{
    Program program;
    Status<Error> status = parse_exact(bytes, program, user_limit);
    REQUIRE_FALSE(status.ok());
    CHECK(program.segment_count == 0);
    CHECK(program.entry == 0);
    return status.error();
}

Error error_of(const Image& image, uint64_t user_limit = kUserLimit) { return error_of(image.bytes(), user_limit); }

Program parse_ok(const Bytes& bytes, uint64_t user_limit = kUserLimit)
{
    Program program;
    Status<Error> status = parse_exact(bytes, program, user_limit);
    INFO("error: " << (status.ok() ? "none" : describe(status.error())));
    REQUIRE(status.ok());
    return program;
}

Program parse_ok(const Image& image, uint64_t user_limit = kUserLimit) { return parse_ok(image.bytes(), user_limit); }

void check_segment(const Segment& s, uint64_t vaddr, uint64_t memsz, uint64_t offset, uint64_t filesz, const char* rwx)
{
    INFO("segment at " << std::hex << s.vaddr);
    CHECK(s.vaddr == vaddr);
    CHECK(s.memsz == memsz);
    CHECK(s.file_offset == offset);
    CHECK(s.filesz == filesz);
    CHECK(s.read == (rwx[0] == 'r'));
    CHECK(s.write == (rwx[1] == 'w'));
    CHECK(s.execute == (rwx[2] == 'x'));
}

Bytes load_fixture(const char* name)
{
    std::string path = std::string(VLIBOS_FIXTURES_DIR) + "/elf/" + name;
    std::ifstream file(path, std::ios::binary);
    Bytes bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    INFO("fixture " << path);
    REQUIRE(bytes.size() > 64);
    return bytes;
}

// What parse() promises about any plan it accepts, checked independently of how it checks it.
void check_invariants(const Program& p, size_t image_size, uint64_t user_limit)
{
    REQUIRE(p.segment_count >= 1);
    REQUIRE(p.segment_count <= kMaxSegments);
    uint64_t limit = user_limit < kLowerHalfEnd ? user_limit : kLowerHalfEnd;
    bool entry_ok = false;
    for (size_t i = 0; i < p.segment_count; ++i) {
        const Segment& s = p.segments[i];
        REQUIRE(s.memsz > 0);
        REQUIRE(s.filesz <= s.memsz);
        REQUIRE(s.file_offset <= image_size);
        REQUIRE(s.filesz <= image_size - s.file_offset);
        REQUIRE(s.vaddr >= kPageSize);
        REQUIRE(s.vaddr < limit);
        REQUIRE(s.memsz <= limit - s.vaddr);
        REQUIRE(page_end(s) <= limit);
        REQUIRE(s.vaddr % kPageSize == s.file_offset % kPageSize);
        REQUIRE_FALSE((s.write && s.execute));
        for (size_t j = 0; j < i; ++j) {
            const Segment& o = p.segments[j];
            REQUIRE((page_end(s) <= page_base(o) || page_end(o) <= page_base(s)));
        }
        if (s.execute && p.entry >= s.vaddr && p.entry - s.vaddr < s.filesz)
            entry_ok = true;
    }
    REQUIRE(entry_ok);
}

} // namespace

// ---- Valid images ----

TEST_CASE("elf: a typical static executable gives its entry and segments", "[elf]")
{
    Program p = parse_ok(Image::typical());
    CHECK(p.entry == 0x401000);
    REQUIRE(p.segment_count == 3);
    check_segment(p.segments[0], 0x400000, 0x120, 0, 0x120, "r--");
    check_segment(p.segments[1], 0x401000, 0x40, 0x1000, 0x40, "r-x");
    check_segment(p.segments[2], 0x402000, 0x2020, 0x2000, 0x10, "rw-");
    CHECK(page_base(p.segments[2]) == 0x402000);
    CHECK(page_end(p.segments[2]) == 0x405000);
    check_invariants(p, 0x3000, kUserLimit);
}

TEST_CASE("elf: other program header types are ignored, empty loads skipped", "[elf]")
{
    Image image = Image::typical();
    image.phdrs.insert(image.phdrs.begin(), other(PT_PHDR));
    image.phdrs.push_back(other(PT_NULL));
    image.phdrs.push_back(other(PT_NOTE));
    image.phdrs.push_back(other(PT_TLS));
    image.phdrs.push_back(other(PT_GNU_RELRO));
    image.phdrs.push_back(other(PT_GNU_PROPERTY));
    image.phdrs.push_back(other(0x60000000)); // PT_LOOS
    image.phdrs.push_back(load(PF_R | PF_W | PF_X, 0x2fff, 0, 0, 0, 0)); // maps nothing, so nothing is checked but the file range
    Program p = parse_ok(image);
    CHECK(p.segment_count == 3);
}

TEST_CASE("elf: edge cases that are accepted", "[elf]")
{
    SECTION("no PT_GNU_STACK")
    {
        Image image = Image::typical();
        image.phdrs.pop_back();
        CHECK(parse_ok(image).segment_count == 3);
    }
    SECTION("a segment that is not page-aligned but congruent with its offset")
    {
        Image image = Image::typical();
        image.phdrs[2] = load(PF_R | PF_W, 0x2010, 0x402010, 0x10, 0x100);
        Program p = parse_ok(image);
        CHECK(page_base(p.segments[2]) == 0x402000);
        CHECK(page_end(p.segments[2]) == 0x403000);
    }
    SECTION("2 MiB alignment, congruent")
    {
        Image image = Image::typical();
        image.phdrs[1] = load(PF_R | PF_X, 0x1000, 0x601000, 0x40, 0x40, 0x200000);
        image.entry = 0x601000;
        CHECK(parse_ok(image).segments[1].vaddr == 0x601000);
    }
    SECTION("a segment with no permissions, and one that is only executable")
    {
        Image image = Image::typical();
        image.phdrs[0].flags = 0;
        image.phdrs[1].flags = PF_X;
        Program p = parse_ok(image);
        check_segment(p.segments[0], 0x400000, 0x120, 0, 0x120, "---");
        check_segment(p.segments[1], 0x401000, 0x40, 0x1000, 0x40, "--x");
    }
    SECTION("the entry at the last file byte of the text")
    {
        Image image = Image::typical();
        image.entry = 0x401000 + 0x3f;
        CHECK(parse_ok(image).entry == 0x40103f);
    }
    SECTION("segments in any order, on adjacent pages")
    {
        Image image = Image::typical();
        std::swap(image.phdrs[0], image.phdrs[2]);
        CHECK(parse_ok(image).segment_count == 3);
    }
    SECTION("the last page ends exactly at the user limit")
    {
        Image image = Image::typical();
        CHECK(parse_ok(image, 0x405000).segment_count == 3);
        image.phdrs[2].vaddr = kLowerHalfEnd - 0x3000;
        image.phdrs[2].memsz = 0x3000;
        CHECK(parse_ok(image, UINT64_MAX).segments[2].vaddr == kLowerHalfEnd - 0x3000);
    }
    SECTION("exactly kMaxSegments loads")
    {
        Image image;
        image.file_size = 0x2000;
        image.phdrs.push_back(load(PF_R | PF_X, 0x1000, 0x401000, 0x10, 0x10));
        while (image.phdrs.size() < kMaxSegments)
            image.phdrs.push_back(load(PF_R, 0x1000, 0x401000 + 0x1000 * image.phdrs.size(), 0x10, 0x10));
        CHECK(parse_ok(image).segment_count == kMaxSegments);
    }
    SECTION("EI_OSABI GNU")
    {
        Bytes b = Image::typical().bytes();
        b[kOsAbi] = 3;
        CHECK(parse_ok(b).segment_count == 3);
    }
    SECTION("the program headers at the very end of the file")
    {
        Image image = Image::typical();
        Bytes b = image.bytes();
        size_t table = image.phdrs.size() * 56;
        Bytes moved(b.begin(), b.begin() + 0x3000);
        moved.insert(moved.end(), b.begin() + 64, b.begin() + 64 + static_cast<std::ptrdiff_t>(table));
        put64(moved, kPhoff, 0x3000);
        CHECK(parse_ok(moved).segment_count == 3);
    }
}

TEST_CASE("elf: the image needs no alignment", "[elf]")
{
    // Under UBSan a field read through a cast pointer would trap here.
    Bytes b = Image::typical().bytes();
    for (size_t shift = 1; shift < 8; ++shift) {
        Bytes buffer(shift, 0xee);
        buffer.insert(buffer.end(), b.begin(), b.end());
        Program p;
        REQUIRE(parse(buffer.data() + shift, b.size(), kUserLimit, p).ok());
        CHECK(p.segment_count == 3);
    }
}

TEST_CASE("elf: a failed parse resets the plan", "[elf]")
{
    Program p = parse_ok(Image::typical());
    Image bad = Image::typical();
    bad.entry = 0x400000;
    Bytes b = bad.bytes();
    CHECK_FALSE(parse(b.data(), b.size(), kUserLimit, p).ok());
    CHECK(p.segment_count == 0);
    CHECK(p.entry == 0);
}

// ---- Real executables from GCC and GNU ld (fixtures/elf/build.sh) ----

TEST_CASE("elf: loop.elf matches readelf", "[elf]")
{
    Bytes b = load_fixture("loop.elf");
    Program p = parse_ok(b);
    // readelf -lW loop.elf: entry 0x401000; GNU_STACK RW is not kept.
    CHECK(p.entry == 0x401000);
    REQUIRE(p.segment_count == 3);
    check_segment(p.segments[0], 0x400000, 0x120, 0x000000, 0x120, "r--");
    check_segment(p.segments[1], 0x401000, 0x004, 0x001000, 0x004, "r-x");
    check_segment(p.segments[2], 0x402000, 0x02c, 0x002000, 0x02c, "r--");
    check_invariants(p, b.size(), kUserLimit);
}

TEST_CASE("elf: data.elf matches readelf", "[elf]")
{
    Bytes b = load_fixture("data.elf");
    Program p = parse_ok(b);
    CHECK(p.entry == 0x401000);
    REQUIRE(p.segment_count == 4);
    check_segment(p.segments[0], 0x400000, 0x158, 0x000000, 0x158, "r--");
    check_segment(p.segments[1], 0x401000, 0x039, 0x001000, 0x039, "r-x");
    check_segment(p.segments[2], 0x402000, 0x044, 0x002000, 0x044, "r--");
    check_segment(p.segments[3], 0x403000, 0x2020, 0x003000, 0x008, "rw-"); // .data + .bss
    check_invariants(p, b.size(), kUserLimit);
    // A user limit below the .bss end refuses it; one at its last page accepts it.
    CHECK(error_of(b, 0x405000) == Error::SegmentNotCanonicalUser);
    CHECK(parse_ok(b, 0x406000).segment_count == 4);
}

TEST_CASE("elf: every truncation of a real executable", "[elf]")
{
    // Section headers are never read, so the image is complete once the last segment's file
    // bytes are there; every shorter prefix must be refused.
    for (const char* name : {"loop.elf", "data.elf"}) {
        Bytes b = load_fixture(name);
        Program full = parse_ok(b);
        uint64_t needed = 0;
        for (size_t i = 0; i < full.segment_count; ++i)
            needed = std::max(needed, full.segments[i].file_offset + full.segments[i].filesz);
        uint16_t phnum;
        memcpy(&phnum, b.data() + kPhnum, 2);
        const size_t table_end = 64 + size_t{phnum} * 56; // GNU ld puts the table right after the header
        INFO(name << " needs " << needed << " of " << b.size() << " bytes");
        for (size_t length = 0; length <= b.size(); ++length) {
            Bytes prefix(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(length));
            Program p;
            Status<Error> status = parse_exact(prefix, p);
            INFO("length " << length);
            REQUIRE(status.ok() == (length >= needed));
            if (length < 64)
                REQUIRE(status.error() == Error::TooSmall);
            else if (length < table_end)
                REQUIRE(status.error() == Error::ProgramHeadersOutside);
            else if (!status.ok())
                REQUIRE(status.error() == Error::SegmentOutsideFile);
        }
    }
}

// ---- One minimal mutation per error ----

TEST_CASE("elf: header errors", "[elf]")
{
    const Bytes good = Image::typical().bytes();
    auto with = [&](auto mutate) {
        Bytes b = good;
        mutate(b);
        return error_of(b);
    };

    Program p;
    CHECK(parse(nullptr, 4096, kUserLimit, p).error() == Error::TooSmall);
    CHECK(error_of(Bytes()) == Error::TooSmall);
    CHECK(error_of(Bytes(good.begin(), good.begin() + 63)) == Error::TooSmall);

    CHECK(with([](Bytes& b) { b[0] = 0x7e; }) == Error::BadMagic);
    CHECK(with([](Bytes& b) { b[1] = 'e'; }) == Error::BadMagic);
    CHECK(with([](Bytes& b) { b[3] = 'f'; }) == Error::BadMagic);
    CHECK(with([](Bytes& b) { b[4] = 1; }) == Error::NotElf64); // ELFCLASS32
    CHECK(with([](Bytes& b) { b[4] = 0; }) == Error::NotElf64);
    CHECK(with([](Bytes& b) { b[5] = 2; }) == Error::NotLittleEndian); // ELFDATA2MSB
    CHECK(with([](Bytes& b) { b[5] = 0; }) == Error::NotLittleEndian);
    CHECK(with([](Bytes& b) { b[6] = 0; }) == Error::BadVersion);
    CHECK(with([](Bytes& b) { b[6] = 2; }) == Error::BadVersion);
    CHECK(with([](Bytes& b) { put32(b, kVersion, 0); }) == Error::BadVersion);
    CHECK(with([](Bytes& b) { put32(b, kVersion, 2); }) == Error::BadVersion);
    CHECK(with([](Bytes& b) { put16(b, kType, 3); }) == Error::NotExecutable); // ET_DYN (PIE)
    CHECK(with([](Bytes& b) { put16(b, kType, 1); }) == Error::NotExecutable); // ET_REL
    CHECK(with([](Bytes& b) { put16(b, kType, 4); }) == Error::NotExecutable); // ET_CORE
    CHECK(with([](Bytes& b) { put16(b, kType, 0); }) == Error::NotExecutable);
    CHECK(with([](Bytes& b) { put16(b, kMachine, 3); }) == Error::WrongMachine);   // EM_386
    CHECK(with([](Bytes& b) { put16(b, kMachine, 183); }) == Error::WrongMachine); // EM_AARCH64
    CHECK(with([](Bytes& b) { put16(b, kEhsize, 52); }) == Error::BadHeaderSize);  // an ELF32 header
    CHECK(with([](Bytes& b) { put16(b, kEhsize, 0); }) == Error::BadHeaderSize);
    CHECK(with([](Bytes& b) { put16(b, kEhsize, 65); }) == Error::BadHeaderSize);
    CHECK(with([](Bytes& b) { put16(b, kPhentsize, 32); }) == Error::BadProgramHeaderSize);
    CHECK(with([](Bytes& b) { put16(b, kPhentsize, 0); }) == Error::BadProgramHeaderSize);
    CHECK(with([](Bytes& b) { put16(b, kPhentsize, 64); }) == Error::BadProgramHeaderSize);
}

TEST_CASE("elf: program header table outside the image", "[elf]")
{
    const Bytes good = Image::typical().bytes();
    auto with = [&](auto mutate) {
        Bytes b = good;
        mutate(b);
        return error_of(b);
    };
    CHECK(with([](Bytes& b) { put64(b, kPhoff, b.size()); }) == Error::ProgramHeadersOutside);
    CHECK(with([](Bytes& b) { put64(b, kPhoff, b.size() - 4 * 56 + 1); }) == Error::ProgramHeadersOutside);
    CHECK(with([](Bytes& b) { put64(b, kPhoff, UINT64_MAX); }) == Error::ProgramHeadersOutside);
    CHECK(with([](Bytes& b) { put64(b, kPhoff, UINT64_MAX - 55); }) == Error::ProgramHeadersOutside); // would wrap
    CHECK(with([](Bytes& b) { put16(b, kPhnum, 0xffff); }) == Error::ProgramHeadersOutside);           // PN_XNUM
    CHECK(with([](Bytes& b) { put16(b, kPhnum, 0x3000 / 56); }) == Error::ProgramHeadersOutside);
    // Exactly at the end fits.
    Bytes fits = good;
    put64(fits, kPhoff, fits.size() - 4 * 56);
    memcpy(fits.data() + fits.size() - 4 * 56, good.data() + 64, 4 * 56);
    CHECK(parse_ok(fits).segment_count == 3);
}

TEST_CASE("elf: too many segments", "[elf]")
{
    Image image;
    image.file_size = 0x2000;
    image.phdrs.push_back(load(PF_R | PF_X, 0x1000, 0x401000, 0x10, 0x10));
    while (image.phdrs.size() < kMaxSegments + 1)
        image.phdrs.push_back(load(PF_R, 0x1000, 0x401000 + 0x1000 * image.phdrs.size(), 0x10, 0x10));
    CHECK(error_of(image) == Error::TooManySegments);
    // Empty loads do not count.
    image.phdrs.back().memsz = 0;
    image.phdrs.back().filesz = 0;
    CHECK(parse_ok(image).segment_count == kMaxSegments);
}

TEST_CASE("elf: segment file range", "[elf]")
{
    auto with_data = [](uint64_t offset, uint64_t filesz, uint64_t memsz) {
        Image image = Image::typical();
        image.phdrs[2].offset = offset;
        image.phdrs[2].filesz = filesz;
        image.phdrs[2].memsz = memsz;
        image.phdrs[2].align = 0x1000;
        image.phdrs[2].vaddr = 0x402000 + offset % 0x1000;
        return error_of(image);
    };
    CHECK(with_data(0x2000, 0x1001, 0x2000) == Error::SegmentOutsideFile);   // one byte past the end
    CHECK(with_data(0x3001, 0, 0x10) == Error::SegmentOutsideFile);          // starts past the end
    CHECK(with_data(UINT64_MAX, 2, 0x10) == Error::SegmentOutsideFile);      // offset + filesz wraps
    CHECK(with_data(0x2000, UINT64_MAX, UINT64_MAX) == Error::SegmentOutsideFile);
    CHECK(with_data(0x2000, 0x20, 0x10) == Error::FileSizeExceedsMemorySize);
    CHECK(with_data(0x2000, 0x10, 0) == Error::FileSizeExceedsMemorySize);   // not skipped as empty
}

TEST_CASE("elf: segment addresses", "[elf]")
{
    auto with_data = [](uint64_t vaddr, uint64_t memsz, uint64_t user_limit = kUserLimit) {
        Image image = Image::typical();
        image.phdrs[2].vaddr = vaddr;
        image.phdrs[2].memsz = memsz;
        image.phdrs[2].offset = vaddr % 0x1000 + 0x2000;
        image.phdrs[2].filesz = 0;
        return error_of(image, user_limit);
    };
    CHECK(with_data(0xffff'ffff'ffff'f000, 0x1000) == Error::SegmentWrapsAddress);
    CHECK(with_data(0x402000, UINT64_MAX) == Error::SegmentWrapsAddress);
    CHECK(with_data(0xffff'8000'0000'0000, 0x1000) == Error::SegmentNotCanonicalUser); // kernel half
    CHECK(with_data(kLowerHalfEnd - 0x1000, 0x1001) == Error::SegmentNotCanonicalUser);
    CHECK(with_data(kLowerHalfEnd, 0x1000, UINT64_MAX) == Error::SegmentNotCanonicalUser); // limit is clamped
    CHECK(with_data(0x402000, 0x2001, 0x404000) == Error::SegmentNotCanonicalUser);
    CHECK(with_data(0x402000, 0x1001, 0x403800) == Error::SegmentNotCanonicalUser); // its last page passes the limit
    CHECK(with_data(0x402000, 0x1000, 0) == Error::SegmentNotCanonicalUser);
    CHECK(with_data(0, 0x10) == Error::SegmentInNullPage);
    CHECK(with_data(0xff0, 0x10) == Error::SegmentInNullPage);
    CHECK(with_data(0xff0, 0x20) == Error::SegmentInNullPage); // reaches page 1, starts in page 0
}

TEST_CASE("elf: segment alignment", "[elf]")
{
    auto with_text = [](uint64_t offset, uint64_t vaddr, uint64_t align) {
        Image image = Image::typical();
        image.phdrs[1].offset = offset;
        image.phdrs[1].vaddr = vaddr;
        image.phdrs[1].align = align;
        image.entry = vaddr;
        return error_of(image);
    };
    CHECK(with_text(0x1000, 0x401000, 0) == Error::UnalignedSegment);
    CHECK(with_text(0x1000, 0x401000, 1) == Error::UnalignedSegment);
    CHECK(with_text(0x1000, 0x401000, 0x800) == Error::UnalignedSegment);
    CHECK(with_text(0x1000, 0x401000, 0x3000) == Error::UnalignedSegment); // not a power of two
    CHECK(with_text(0x1000, 0x401000, 1ull << 63 | 0x1000) == Error::UnalignedSegment);
    CHECK(with_text(0x1000, 0x401004, 0x1000) == Error::UnalignedSegment);
    CHECK(with_text(0x1004, 0x401000, 0x1000) == Error::UnalignedSegment);
    CHECK(with_text(0x1000, 0x412000, 0x200000) == Error::UnalignedSegment); // congruent by page, not by p_align
}

TEST_CASE("elf: overlapping segments", "[elf]")
{
    SECTION("data starts in the text's page")
    {
        Image image = Image::typical();
        image.phdrs[2].vaddr = 0x401800;
        image.phdrs[2].offset = 0x2800;
        CHECK(error_of(image) == Error::SegmentsOverlap);
    }
    SECTION("the headers segment's bss reaches the text's page")
    {
        Image image = Image::typical();
        image.phdrs[0].memsz = 0x1001;
        CHECK(error_of(image) == Error::SegmentsOverlap);
    }
    SECTION("a later segment below an earlier one")
    {
        Image image = Image::typical();
        image.phdrs[2].vaddr = 0x3ff000;
        image.phdrs[2].memsz = 0x1001;
        CHECK(error_of(image) == Error::SegmentsOverlap);
    }
    SECTION("one segment inside another")
    {
        Image image = Image::typical();
        image.phdrs[0].memsz = 0x10000;
        image.phdrs[0].flags = PF_R | PF_W;
        image.phdrs.erase(image.phdrs.begin() + 2);
        CHECK(error_of(image) == Error::SegmentsOverlap);
    }
    SECTION("the same segment twice")
    {
        Image image = Image::typical();
        image.phdrs.push_back(image.phdrs[1]);
        CHECK(error_of(image) == Error::SegmentsOverlap);
    }
}

TEST_CASE("elf: permissions and entry point", "[elf]")
{
    Image image = Image::typical();
    SECTION("writable text")
    {
        image.phdrs[1].flags = PF_R | PF_W | PF_X;
        CHECK(error_of(image) == Error::WritableAndExecutable);
    }
    SECTION("executable data")
    {
        image.phdrs[2].flags = PF_W | PF_X;
        CHECK(error_of(image) == Error::WritableAndExecutable);
    }
    SECTION("executable stack")
    {
        image.phdrs[3].flags = PF_R | PF_W | PF_X;
        CHECK(error_of(image) == Error::ExecutableStack);
        image.phdrs[3].flags = PF_X;
        CHECK(error_of(image) == Error::ExecutableStack);
    }
    SECTION("entry outside an executable segment's file bytes")
    {
        for (uint64_t entry : {uint64_t{0}, uint64_t{0x400000}, uint64_t{0x400fff}, uint64_t{0x401040},
                               uint64_t{0x402000}, uint64_t{0xffff'ffff'ffff'ffff}}) {
            image.entry = entry;
            INFO("entry " << std::hex << entry);
            CHECK(error_of(image) == Error::EntryNotInExecutableSegment);
        }
    }
    SECTION("entry in the zero-filled tail of the text")
    {
        image.phdrs[1].memsz = 0x80;
        image.entry = 0x401050;
        CHECK(error_of(image) == Error::EntryNotInExecutableSegment);
    }
    SECTION("no executable segment at all")
    {
        image.phdrs[1].flags = PF_R;
        CHECK(error_of(image) == Error::EntryNotInExecutableSegment);
    }
}

TEST_CASE("elf: no loadable segment, dynamic programs", "[elf]")
{
    Image image = Image::typical();
    SECTION("no program headers")
    {
        image.phdrs.clear();
        CHECK(error_of(image) == Error::NoLoadableSegment);
    }
    SECTION("only a stack header")
    {
        image.phdrs = {other(PT_GNU_STACK, PF_R | PF_W)};
        CHECK(error_of(image) == Error::NoLoadableSegment);
    }
    SECTION("only empty loads")
    {
        image.phdrs = {load(PF_R | PF_X, 0x1000, 0x401000, 0, 0)};
        CHECK(error_of(image) == Error::NoLoadableSegment);
    }
    SECTION("PT_INTERP")
    {
        image.phdrs.insert(image.phdrs.begin(), other(PT_INTERP));
        CHECK(error_of(image) == Error::Interpreter);
    }
    SECTION("PT_DYNAMIC")
    {
        image.phdrs.push_back(other(PT_DYNAMIC, PF_R | PF_W));
        CHECK(error_of(image) == Error::Dynamic);
    }
}

TEST_CASE("elf: every error has a description", "[elf]")
{
    std::set<std::string> seen;
    for (int e = static_cast<int>(Error::TooSmall); e <= static_cast<int>(Error::Dynamic); ++e) {
        const char* text = describe(static_cast<Error>(e));
        REQUIRE(text != nullptr);
        CHECK(strlen(text) > 10);
        CHECK(seen.insert(text).second);
    }
    CHECK(std::string(describe(static_cast<Error>(-1))) == "unknown ELF error");
}

// ---- Random mutations of a real executable ----

TEST_CASE("elf: random mutations of a real executable never read out of bounds", "[elf][fuzz]")
{
    const Bytes valid = load_fixture("data.elf");
    test::Lcg rng{0xE1F64};
    // Most flips hit the ELF header and program header table, where the parser looks.
    const size_t headers = 64 + 5 * 56;
    static const uint64_t values[] = {0, 1, 0xfff, 0x1000, 0x1001, 0x200000, 0x400000, 0x401000, kLowerHalfEnd,
                                      kLowerHalfEnd - 0x1000, 0x7fffffffffffffff, UINT64_MAX, UINT64_MAX - 0xfff};
    size_t accepted = 0;
    std::set<int> errors;
    for (int iteration = 0; iteration < 20000; ++iteration) {
        Bytes bytes = valid;
        uint64_t mutations = 1 + rng.below(6);
        for (uint64_t m = 0; m < mutations; ++m) {
            size_t at = static_cast<size_t>(rng.below(4) == 0 ? rng.below(bytes.size()) : rng.below(headers));
            switch (rng.below(4)) {
            case 0: bytes[at] = static_cast<uint8_t>(rng.next()); break;
            case 1: bytes[at] ^= static_cast<uint8_t>(1u << rng.below(8)); break;
            case 2: { // an interesting 64-bit value on an 8-byte field boundary
                size_t field = (at & ~size_t{7}) % (bytes.size() - 7);
                uint64_t v = values[rng.below(sizeof(values) / sizeof(values[0]))];
                memcpy(bytes.data() + field, &v, 8);
                break;
            }
            default: bytes[at] = 0; break;
            }
        }
        if (rng.below(4) == 0)
            bytes.resize(static_cast<size_t>(rng.below(bytes.size() + 1)));
        uint64_t user_limit = rng.below(8) == 0 ? 0x400000 + rng.below(0x8000) : kUserLimit;

        Program p;
        Status<Error> status = parse_exact(bytes, p, user_limit);
        if (!status.ok()) {
            REQUIRE(std::string(describe(status.error())) != "unknown ELF error");
            REQUIRE(p.segment_count == 0);
            errors.insert(static_cast<int>(status.error()));
            continue;
        }
        ++accepted;
        check_invariants(p, bytes.size(), user_limit);
    }
    CHECK(accepted > 1000);
    CHECK(errors.size() >= 20); // the mutations reach nearly every check (not TooManySegments: data.elf has 5 headers)
}
