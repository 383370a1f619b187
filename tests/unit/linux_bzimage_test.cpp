// bzImage parser: a synthetic protocol-2.15 kernel (fixtures/linux/synthetic_bzimage.hpp), one
// minimal change per error, every truncation, and random mutations that must never read outside
// the image.
#include <catch2/catch.hpp>

#include <stdint.h>
#include <string.h>

#include <set>
#include <string>

#include "fixtures/linux/synthetic_bzimage.hpp"
#include "test_random.hpp"
#include "vmm/linux/bzimage.hpp"

using namespace vlibos;
using namespace vlibos::vmm::linux_boot;
using namespace vlibos::test;

namespace {

Result<BzImage, BzImageError> parse_exact(const Bytes& bytes)
{
    ExactCopy copy(bytes);
    return parse_bzimage(copy.data.get(), copy.size);
}

BzImage parse_ok(const Bytes& bytes)
{
    auto result = parse_exact(bytes);
    if (!result) {
        char text[256];
        format_bzimage_error(text, sizeof text, result.error());
        FAIL("refused: " << text);
    }
    return result.value();
}

BzImageError error_of(const Bytes& bytes)
{
    auto result = parse_exact(bytes);
    REQUIRE_FALSE(result.ok());
    return result.error();
}

BzImageErrorKind kind_of(const SyntheticKernel& k) { return error_of(k.bytes()).kind; }

std::string message(const BzImageError& e)
{
    char text[256];
    size_t n = format_bzimage_error(text, sizeof text, e);
    CHECK(n < sizeof text);
    return text;
}

} // namespace

TEST_CASE("linux bzimage: a typical 64-bit kernel", "[linux]")
{
    SyntheticKernel k;
    Bytes bytes = k.bytes();
    BzImage b = parse_ok(bytes);
    CHECK(b.protocol == 0x020f);
    CHECK(b.protocol_major() == 2);
    CHECK(b.protocol_minor() == 15);
    CHECK(b.setup_sects == 4);
    CHECK(b.kernel_offset == 5 * 512);
    CHECK(b.kernel_size == 0x10000);
    CHECK(b.kernel_offset + b.kernel_size == bytes.size());
    CHECK(b.header_end == 0x26c);
    CHECK(b.loadflags == 0x01);
    CHECK(b.syssize == 0x1000);
    CHECK(b.code32_start == 0x100000);
    CHECK(b.initrd_addr_max == 0x7fffffff);
    CHECK(b.kernel_alignment == 0x200000);
    CHECK(b.min_alignment == 21);
    CHECK(b.relocatable);
    CHECK(b.xloadflags == 3);
    CHECK(b.has_entry64());
    CHECK(b.can_load_above_4g());
    CHECK(b.cmdline_size == 2047);
    CHECK(b.pref_address == 0x1000000);
    CHECK(b.init_size == 0x2000000);
    REQUIRE(b.version_length == k.version.size());
    CHECK(b.version_offset == 0x400);
    CHECK(std::string(reinterpret_cast<const char*>(bytes.data() + b.version_offset), b.version_length) == k.version);
}

TEST_CASE("linux bzimage: the setup header of a real Linux 6.1 kernel", "[linux]")
{
    // Bytes 0x1f1-0x26b of the Debian 6.1.192 bzImage that tools/vlibos builds for the Linux guest
    // (x86_64, CONFIG_RELOCATABLE=y, CONFIG_PHYSICAL_START=0x1000000), in a 4 MiB image of the
    // size syssize gives.
    static const uint8_t header[] = {
        0x1f, 0x01, 0x00, 0x40, 0x06, 0x04, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x55, 0xaa, 0xeb,
        0x6a, 0x48, 0x64, 0x72, 0x53, 0x0f, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x20, 0x37, 0x00,
        0x01, 0x00, 0x80, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x20, 0x50, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x7f, 0x00,
        0x00, 0x20, 0x00, 0x01, 0x15, 0x23, 0x00, 0xff, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc4, 0x02, 0x00, 0x00, 0x02, 0x05, 0x40, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x80, 0x18, 0x01, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x51, 0x40, 0x00,
    };
    static_assert(sizeof header == 0x26c - 0x1f1);
    Bytes image(0x4000 + 0x40640 * 16, 0); // syssize 0x40640 paragraphs
    memcpy(image.data() + 0x1f1, header, sizeof header);
    BzImage b = parse_ok(image);
    CHECK(b.protocol == 0x020f);
    CHECK(b.setup_sects == 31);
    CHECK(b.kernel_offset == 0x4000);
    CHECK(b.kernel_size == 4219904);
    CHECK(b.header_end == 0x26c);
    CHECK(b.loadflags == 0x01);
    CHECK(b.code32_start == 0x100000);
    CHECK(b.initrd_addr_max == 0x7fffffff);
    CHECK(b.kernel_alignment == 0x200000);
    CHECK(b.min_alignment == 21);
    CHECK(b.relocatable);
    CHECK(b.xloadflags == 0x23); // XLF_KERNEL_64, XLF_CAN_BE_LOADED_ABOVE_4G, XLF_5LEVEL
    CHECK(b.cmdline_size == 2047);
    CHECK(b.pref_address == 0x1000000);
    CHECK(b.init_size == 0x1188000);
    CHECK(b.version_length == 0); // the string itself (at 0x3920) is not in this copy
}

TEST_CASE("linux bzimage: accepted variations", "[linux]")
{
    SECTION("setup_sects 0 means 4")
    {
        SyntheticKernel k;
        k.setup_sects = 0;
        BzImage b = parse_ok(k.bytes());
        CHECK(b.setup_sects == 4);
        CHECK(b.kernel_offset == 0xa00);
    }
    SECTION("a larger setup")
    {
        SyntheticKernel k;
        k.setup_sects = 30;
        BzImage b = parse_ok(k.bytes());
        CHECK(b.kernel_offset == 31 * 512);
        CHECK(b.kernel_size == k.kernel_bytes);
    }
    SECTION("protocol 2.12 with a header that ends right after init_size's successor")
    {
        SyntheticKernel k;
        k.protocol = 0x020c;
        k.jump_offset = 0x62; // ends at 0x264, the minimum
        BzImage b = parse_ok(k.bytes());
        CHECK(b.header_end == 0x264);
    }
    SECTION("a 32-bit-only kernel")
    {
        SyntheticKernel k;
        k.xloadflags = 0;
        BzImage b = parse_ok(k.bytes());
        CHECK_FALSE(b.has_entry64());
        CHECK_FALSE(b.can_load_above_4g());
    }
    SECTION("trailing bytes after syssize (a signed image)")
    {
        SyntheticKernel k;
        k.syssize = static_cast<uint32_t>(k.kernel_bytes / 16 - 64);
        BzImage b = parse_ok(k.bytes());
        CHECK(b.kernel_size == k.kernel_bytes);
    }
    SECTION("kernel_alignment exactly 1 << min_alignment, 16 MiB, pref_address 0")
    {
        SyntheticKernel k;
        k.kernel_alignment = 0x1000000;
        k.min_alignment = 24;
        k.pref_address = 0;
        BzImage b = parse_ok(k.bytes());
        CHECK(b.kernel_alignment == 0x1000000);
        CHECK(b.pref_address == 0);
    }
    SECTION("code32_start at the last byte of the kernel")
    {
        SyntheticKernel k;
        k.code32_start = static_cast<uint32_t>(0x100000 + k.kernel_bytes - 1);
        CHECK(parse_ok(k.bytes()).code32_start == k.code32_start);
    }
    SECTION("init_size exactly the kernel's size")
    {
        SyntheticKernel k;
        k.init_size = static_cast<uint32_t>(k.kernel_bytes);
        CHECK(parse_ok(k.bytes()).init_size == k.kernel_bytes);
    }
}

TEST_CASE("linux bzimage: the version string is optional and bounded", "[linux]")
{
    SyntheticKernel k;
    SECTION("no kernel_version field")
    {
        k.kernel_version = 0;
        CHECK(parse_ok(k.bytes()).version_length == 0);
    }
    SECTION("pointing past the setup code")
    {
        k.kernel_version = 0x800; // 0xa00 is where the protected-mode kernel starts
        CHECK(parse_ok(k.bytes()).version_length == 0);
    }
    SECTION("not printable")
    {
        k.version = std::string("6.1\x01", 4);
        CHECK(parse_ok(k.bytes()).version_length == 0);
    }
    SECTION("no NUL before the end of the setup code")
    {
        Bytes b = k.bytes();
        memset(b.data() + 0x400, 'x', 0xa00 - 0x400);
        CHECK(parse_ok(b).version_length == 0);
    }
    SECTION("too long")
    {
        k.setup_sects = 10;
        k.version = std::string(300, 'v');
        CHECK(parse_ok(k.bytes()).version_length == 0);
        k.version = std::string(256, 'v');
        CHECK(parse_ok(k.bytes()).version_length == 256);
    }
    SECTION("empty")
    {
        k.version = "";
        CHECK(parse_ok(k.bytes()).version_length == 0);
    }
}

TEST_CASE("linux bzimage: not a bzImage", "[linux]")
{
    CHECK(error_of(Bytes{}).kind == BzImageErrorKind::TooSmall);
    CHECK(error_of(Bytes(0x263, 0)).kind == BzImageErrorKind::TooSmall);
    CHECK(parse_bzimage(nullptr, 4096).error().kind == BzImageErrorKind::TooSmall);
    CHECK(message(error_of(Bytes(100, 0))) ==
          "the kernel image is 100 bytes, too small to hold a Linux setup header (at least 612 bytes)");

    SyntheticKernel k;
    k.boot_flag = 0x55aa;
    BzImageError e = error_of(k.bytes());
    CHECK(e.kind == BzImageErrorKind::NoBootFlag);
    CHECK(message(e) == "not a bzImage: no boot flag 0xAA55 at offset 0x1fe (found 0x55aa)");

    k = SyntheticKernel{};
    k.magic = 0x53726449;
    e = error_of(k.bytes());
    CHECK(e.kind == BzImageErrorKind::NoHeaderSignature);
    CHECK(message(e) == "not a bzImage: no 'HdrS' signature at offset 0x202");

    // An ELF file (vmlinux) is not a bzImage either.
    Bytes elf = SyntheticKernel{}.bytes();
    memset(elf.data(), 0, 0x300);
    memcpy(elf.data(), "\x7f" "ELF", 4);
    CHECK(error_of(elf).kind == BzImageErrorKind::NoBootFlag);

    k = SyntheticKernel{};
    k.loadflags = 0x00;
    CHECK(kind_of(k) == BzImageErrorKind::NotBzImage);
    k.loadflags = 0xfe;
    CHECK(kind_of(k) == BzImageErrorKind::NotBzImage);
}

TEST_CASE("linux bzimage: protocol version", "[linux]")
{
    SyntheticKernel k;
    for (uint16_t old : {uint16_t{0x0200}, uint16_t{0x0206}, uint16_t{0x020a}, uint16_t{0x020b}, uint16_t{0x0105}}) {
        k.protocol = old;
        CHECK(kind_of(k) == BzImageErrorKind::ProtocolTooOld);
    }
    k.protocol = 0x020a;
    CHECK(message(error_of(k.bytes())) == "boot protocol 2.10 is too old: vlibos needs 2.12 or later (Linux 3.8+)");
    k.protocol = 0x0204;
    CHECK(message(error_of(k.bytes())) == "boot protocol 2.04 is too old: vlibos needs 2.12 or later (Linux 3.8+)");
    k.protocol = 0x020c;
    CHECK(parse_exact(k.bytes()).ok());
    k.protocol = 0x0300; // a future major version is still read as the same header
    CHECK(parse_exact(k.bytes()).ok());
}

TEST_CASE("linux bzimage: header length", "[linux]")
{
    SyntheticKernel k;
    k.jump_opcode = 0xe9; // a near jump: no length
    BzImageError e = error_of(k.bytes());
    CHECK(e.kind == BzImageErrorKind::BadHeaderJump);
    CHECK(message(e) ==
          "the setup header does not start with a forward short jump (found e9 6a at 0x200, expected eb 00-7f), so "
          "its length is unknown");
    k = SyntheticKernel{};
    k.jump_offset = 0x80; // backwards
    CHECK(kind_of(k) == BzImageErrorKind::BadHeaderJump);
    k.jump_offset = 0xff;
    CHECK(kind_of(k) == BzImageErrorKind::BadHeaderJump);

    k = SyntheticKernel{};
    k.jump_offset = 0x61; // ends at 0x263: init_size not wholly inside
    e = error_of(k.bytes());
    CHECK(e.kind == BzImageErrorKind::HeaderTooShort);
    CHECK(message(e) == "the setup header ends at 0x263, but boot protocol 2.12 fields reach 0x264");
    k.jump_offset = 0;
    CHECK(kind_of(k) == BzImageErrorKind::HeaderTooShort);

    // The longest header (0x281) is fine; an image that ends inside the header is not.
    k = SyntheticKernel{};
    k.jump_offset = 0x7f;
    CHECK(parse_ok(k.bytes()).header_end == 0x281);
    Bytes b = SyntheticKernel{}.bytes();
    b.resize(0x26b);
    e = error_of(b);
    CHECK(e.kind == BzImageErrorKind::HeaderOutsideImage);
    CHECK(message(e) == "the setup header ends at 0x26c, past the end of the 619-byte image");
}

TEST_CASE("linux bzimage: relocation fields", "[linux]")
{
    SyntheticKernel k;
    k.relocatable = 0;
    BzImageError e = error_of(k.bytes());
    CHECK(e.kind == BzImageErrorKind::NotRelocatable);
    CHECK(message(e) == "kernel is not relocatable (CONFIG_RELOCATABLE=n)");

    for (uint32_t alignment : {0u, 1u, 0x800u, 0x300000u, 0x80000000u, 0x7fffffffu, 0x100000u}) {
        k = SyntheticKernel{};
        k.kernel_alignment = alignment; // 1 MiB is below min_alignment (2 MiB)
        INFO("kernel_alignment " << alignment);
        CHECK(kind_of(k) == BzImageErrorKind::BadKernelAlignment);
    }
    k = SyntheticKernel{};
    k.min_alignment = 200; // nonsense
    CHECK(kind_of(k) == BzImageErrorKind::BadKernelAlignment);
    k = SyntheticKernel{};
    k.kernel_alignment = 0x300000;
    CHECK(message(error_of(k.bytes())) ==
          "kernel_alignment 0x300000 is not a power of two between 4 KiB and 1 GiB, or is below the kernel's "
          "min_alignment (0x200000)");

    k = SyntheticKernel{};
    k.pref_address = 0x1100000; // not a multiple of 2 MiB
    e = error_of(k.bytes());
    CHECK(e.kind == BzImageErrorKind::BadPrefAddress);
    CHECK(message(e) == "pref_address 0x1100000 is not below 4 GiB and a multiple of kernel_alignment 0x200000");
    k.pref_address = 4 * GiB;
    CHECK(kind_of(k) == BzImageErrorKind::BadPrefAddress);
    k.pref_address = UINT64_MAX - 0x1fffff;
    CHECK(kind_of(k) == BzImageErrorKind::BadPrefAddress);
}

TEST_CASE("linux bzimage: setup and kernel sizes", "[linux]")
{
    SyntheticKernel k;
    Bytes b = k.bytes();
    b.resize(0xa00); // nothing after the setup
    BzImageError e = error_of(b);
    CHECK(e.kind == BzImageErrorKind::SetupOutsideImage);
    CHECK(message(e) ==
          "the image is 2560 bytes, but its real-mode setup alone takes 2560: there is no protected-mode kernel");
    b = SyntheticKernel{}.bytes();
    b[0x1f1] = 255; // 128 KiB of setup in a 66 KiB image
    CHECK(error_of(b).kind == BzImageErrorKind::SetupOutsideImage);

    k = SyntheticKernel{};
    k.syssize = static_cast<uint32_t>(k.kernel_bytes / 16 + 1);
    e = error_of(k.bytes());
    CHECK(e.kind == BzImageErrorKind::KernelTruncated);
    CHECK(message(e) ==
          "the image is truncated: syssize says the protected-mode kernel is 65552 bytes, only 65536 follow the setup");
    k.syssize = 0xffffffff;
    CHECK(kind_of(k) == BzImageErrorKind::KernelTruncated);

    k = SyntheticKernel{};
    k.init_size = static_cast<uint32_t>(k.kernel_bytes - 1);
    e = error_of(k.bytes());
    CHECK(e.kind == BzImageErrorKind::InitSizeTooSmall);
    CHECK(message(e) == "init_size 0xffff is smaller than the protected-mode kernel (65536 bytes)");
    k.init_size = 0;
    CHECK(kind_of(k) == BzImageErrorKind::InitSizeTooSmall);
}

TEST_CASE("linux bzimage: entry points", "[linux]")
{
    SyntheticKernel k;
    for (uint32_t start : {0u, 0xfffffu, 0x110000u, 0xffffffffu}) {
        k.code32_start = start;
        INFO("code32_start " << std::hex << start);
        CHECK(kind_of(k) == BzImageErrorKind::Code32StartOutside);
    }
    k.code32_start = 0x110000;
    CHECK(message(error_of(k.bytes())) ==
          "code32_start 0x110000 lies outside the protected-mode kernel, which spans 0x100000-0x110000 when loaded at "
          "1 MiB");

    k = SyntheticKernel{};
    k.kernel_bytes = 0x200;
    BzImageError e = error_of(k.bytes());
    CHECK(e.kind == BzImageErrorKind::Entry64OutsideKernel);
    CHECK(message(e) ==
          "the kernel claims a 64-bit entry point (XLF_KERNEL_64) at offset 0x200, but its protected-mode code is "
          "only 512 bytes");
    k.xloadflags = 0; // without the 64-bit entry, 512 bytes are a (tiny) kernel
    CHECK(parse_exact(k.bytes()).ok());
}

TEST_CASE("linux bzimage: every error has a sentence", "[linux]")
{
    std::set<std::string> seen;
    for (int e = static_cast<int>(BzImageErrorKind::TooSmall); e <= static_cast<int>(BzImageErrorKind::Entry64OutsideKernel);
         ++e) {
        const char* text = describe(static_cast<BzImageErrorKind>(e));
        REQUIRE(text != nullptr);
        CHECK(strlen(text) > 20);
        CHECK(seen.insert(text).second);
        char formatted[256];
        CHECK(format_bzimage_error(formatted, sizeof formatted, BzImageError{static_cast<BzImageErrorKind>(e), 1, 2}) > 20);
    }
    CHECK(std::string(describe(static_cast<BzImageErrorKind>(200))) == "unknown bzImage error");
}

TEST_CASE("linux bzimage: every truncation is refused without reading past the end", "[linux]")
{
    SyntheticKernel k;
    k.kernel_bytes = 0x400;
    Bytes full = k.bytes();
    for (size_t size = 0; size < full.size(); ++size) {
        Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(size));
        auto result = parse_exact(cut);
        INFO("size " << size);
        // Shorter than syssize says, the kernel is truncated; every shorter image is refused.
        CHECK_FALSE(result.ok());
    }
    CHECK(parse_exact(full).ok());
}

TEST_CASE("linux bzimage: random mutations never read out of bounds", "[linux][fuzz]")
{
    SyntheticKernel k;
    k.kernel_bytes = 0x800;
    const Bytes valid = k.bytes();
    test::Lcg rng{0xb21a6e};
    static const uint32_t values[] = {0, 1, 0x1f, 0x7f, 0x80, 0xff, 0x200, 0xa00, 0x1000, 0x100000, 0x200000,
                                      0x1000000, 0x7fffffff, 0x80000000, 0xffffffff};
    size_t accepted = 0;
    std::set<int> errors;
    for (int iteration = 0; iteration < 20000; ++iteration) {
        Bytes bytes = valid;
        uint64_t mutations = 1 + rng.below(4);
        for (uint64_t m = 0; m < mutations; ++m) {
            // Most changes hit the setup header, where the parser looks.
            size_t at = static_cast<size_t>(rng.below(8) == 0 ? rng.below(bytes.size()) : 0x1f1 + rng.below(0x90));
            switch (rng.below(3)) {
            case 0: bytes[at] = static_cast<uint8_t>(rng.next()); break;
            case 1: bytes[at] ^= static_cast<uint8_t>(1u << rng.below(8)); break;
            default: {
                uint32_t v = values[rng.below(sizeof(values) / sizeof(values[0]))];
                size_t field = (at & ~size_t{3}) % (bytes.size() - 3);
                memcpy(bytes.data() + field, &v, 4);
                break;
            }
            }
        }
        if (rng.below(6) == 0)
            bytes.resize(static_cast<size_t>(rng.below(bytes.size() + 1)));
        auto result = parse_exact(bytes);
        if (!result) {
            REQUIRE(std::string(describe(result.error().kind)) != "unknown bzImage error");
            errors.insert(static_cast<int>(result.error().kind));
            continue;
        }
        ++accepted;
        const BzImage& b = result.value();
        // What parse_bzimage() promises about anything it accepts.
        REQUIRE(b.protocol >= 0x020c);
        REQUIRE(b.header_end >= 0x264);
        REQUIRE(b.header_end <= 0x281);
        REQUIRE(b.header_end <= bytes.size());
        REQUIRE(b.kernel_offset + b.kernel_size == bytes.size());
        REQUIRE(b.kernel_size > 0);
        REQUIRE(uint64_t{b.syssize} * 16 <= b.kernel_size);
        REQUIRE(b.init_size >= b.kernel_size);
        REQUIRE((b.loadflags & 1) != 0);
        REQUIRE(b.relocatable);
        REQUIRE((b.kernel_alignment & (b.kernel_alignment - 1)) == 0);
        REQUIRE(b.kernel_alignment >= 4096);
        REQUIRE(b.pref_address % b.kernel_alignment == 0);
        REQUIRE(b.code32_start >= 0x100000);
        REQUIRE(b.code32_start - 0x100000 < b.kernel_size);
        if (b.version_length != 0)
            REQUIRE(b.version_offset + b.version_length < b.kernel_offset);
    }
    CHECK(accepted > 1000);
    CHECK(errors.size() >= 12);
}
