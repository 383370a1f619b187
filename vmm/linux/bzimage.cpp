// bzImage parser. See bzimage.hpp; field offsets and rules are from Linux's
// Documentation/arch/x86/boot.rst and arch/x86/include/uapi/asm/bootparam.h.
#include "vmm/linux/bzimage.hpp"

#include "lib/bytes.hpp"
#include "lib/format.hpp"

namespace vlibos::vmm::linux_boot {

namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the bzImage parser reads little-endian fields natively");

using namespace setup_header;

constexpr uint64_t kPage = 4096;
// An alignment above 1 GiB is no kernel's (CONFIG_PHYSICAL_ALIGN is at most 16 MiB); refusing it
// keeps the layout's alignment arithmetic far from overflow.
constexpr uint64_t kMaxAlignment = 1ull << 30;
constexpr uint64_t kFourGiB = 1ull << 32;
// Longest version string accepted ("6.1.0-18-amd64 (debian-kernel@lists.debian.org) #1 SMP ...").
constexpr uint64_t kMaxVersionLength = 256;

constexpr bool is_power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

unsigned long long ull(uint64_t v) { return static_cast<unsigned long long>(v); }

Failure<BzImageError> refuse(BzImageErrorKind kind, uint64_t value = 0, uint64_t limit = 0)
{
    return fail(BzImageError{kind, value, limit});
}

// The kernel_version field points at a NUL-terminated string inside the setup code (boot.rst
// "kernel_version": "should be less than (0x200*setup_sects)"). It is only displayed, so a bad one
// is ignored rather than refused.
void find_version(const uint8_t* image, BzImage& out)
{
    uint16_t field = read_u16(image + kKernelVersion);
    out.version_offset = 0;
    out.version_length = 0;
    if (field == 0)
        return;
    uint64_t start = uint64_t{field} + 0x200;
    uint64_t end = out.kernel_offset; // the setup code ends where the protected-mode kernel starts
    if (start >= end)
        return;
    if (end - start > kMaxVersionLength + 1)
        end = start + kMaxVersionLength + 1;
    for (uint64_t i = start; i < end; ++i) {
        uint8_t c = image[i];
        if (c == 0) {
            if (i > start) {
                out.version_offset = start;
                out.version_length = i - start;
            }
            return;
        }
        if (c < 0x20 || c > 0x7e)
            return; // not printable text
    }
}

} // namespace

Result<BzImage, BzImageError> parse_bzimage(const uint8_t* image, size_t size)
{
    if (image == nullptr || size < kRequiredEnd)
        return refuse(BzImageErrorKind::TooSmall, size, kRequiredEnd);
    uint16_t boot_flag = read_u16(image + kBootFlag);
    if (boot_flag != kBootFlagValue)
        return refuse(BzImageErrorKind::NoBootFlag, boot_flag);
    uint32_t magic = read_u32(image + kHeader);
    if (magic != kHeaderMagic)
        return refuse(BzImageErrorKind::NoHeaderSignature, magic);

    BzImage out{};
    out.protocol = read_u16(image + kVersion);
    // 2.12 brings xloadflags, which say whether the 64-bit entry exists and whether the kernel
    // may sit above 4 GiB; all older fields the VMM reads (init_size, pref_address) are there too.
    if (out.protocol < kMinProtocol)
        return refuse(BzImageErrorKind::ProtocolTooOld, out.protocol);

    // boot.rst "jump": 0xEB followed by a signed offset relative to 0x202; the header ends there.
    uint8_t jump_offset = image[kJump + 1];
    if (image[kJump] != kJumpOpcode || jump_offset >= 0x80)
        return refuse(BzImageErrorKind::BadHeaderJump, read_u16(image + kJump));
    out.header_end = 0x202 + uint64_t{jump_offset};
    if (out.header_end < kRequiredEnd)
        return refuse(BzImageErrorKind::HeaderTooShort, out.header_end, kRequiredEnd);
    if (out.header_end > size)
        return refuse(BzImageErrorKind::HeaderOutsideImage, out.header_end, size);

    out.loadflags = image[kLoadflags];
    out.syssize = read_u32(image + kSyssize);
    out.code32_start = read_u32(image + kCode32Start);
    out.initrd_addr_max = read_u32(image + kInitrdAddrMax);
    out.kernel_alignment = read_u32(image + kKernelAlignment);
    out.relocatable = image[kRelocatableKernel] != 0;
    out.min_alignment = image[kMinAlignment];
    out.xloadflags = read_u16(image + kXloadflags);
    out.cmdline_size = read_u32(image + kCmdlineSize);
    out.pref_address = read_u64(image + kPrefAddress);
    out.init_size = read_u32(image + kInitSize);

    // boot.rst "Loading The Rest of The Kernel": a bzImage has LOADED_HIGH; a zImage wants 0x10000.
    if ((out.loadflags & kLoadedHigh) == 0)
        return refuse(BzImageErrorKind::NotBzImage);
    // The kernel goes where the partition's RAM is (GPA == HPA), never at a fixed address.
    if (!out.relocatable)
        return refuse(BzImageErrorKind::NotRelocatable);
    // min_alignment (2.10+) is the least the kernel boots with; kernel_alignment, what it prefers,
    // is what the layout uses, so it must be a sane power of two at least that large.
    uint64_t min_alignment = out.min_alignment < 31 ? 1ull << out.min_alignment : kMaxAlignment * 2;
    if (!is_power_of_two(out.kernel_alignment) || out.kernel_alignment < kPage ||
        out.kernel_alignment > kMaxAlignment || out.kernel_alignment < min_alignment)
        return refuse(BzImageErrorKind::BadKernelAlignment, out.kernel_alignment, min_alignment);

    // boot.rst note (1): a setup_sects of 0 means 4. The boot sector is one more sector.
    out.setup_sects = image[kSetupSects] == 0 ? 4 : image[kSetupSects];
    out.kernel_offset = (uint64_t{out.setup_sects} + 1) * kSectorSize;
    if (out.kernel_offset >= size)
        return refuse(BzImageErrorKind::SetupOutsideImage, out.kernel_offset, size);
    out.kernel_size = size - out.kernel_offset;
    if (uint64_t{out.syssize} * 16 > out.kernel_size)
        return refuse(BzImageErrorKind::KernelTruncated, uint64_t{out.syssize} * 16, out.kernel_size);
    // init_size counts from the runtime start, where the loaded image also starts: the image
    // must fit in it, or the decompressor's copy of itself would run past the window.
    if (out.init_size < out.kernel_size)
        return refuse(BzImageErrorKind::InitSizeTooSmall, out.init_size, out.kernel_size);
    // pref_address is LOAD_PHYSICAL_ADDR, the lowest address the kernel runs at (the decompressor
    // in arch/x86/boot/compressed/head_64.S compares it as a 32-bit value); it is aligned by
    // construction, and the layout relies on that.
    if (out.pref_address >= kFourGiB || out.pref_address % out.kernel_alignment != 0)
        return refuse(BzImageErrorKind::BadPrefAddress, out.pref_address, out.kernel_alignment);
    // code32_start is where the 32-bit entry is when the kernel is loaded at 1 MiB; relocated, it
    // keeps its offset from the load address (as GRUB relocates it).
    if (out.code32_start < kDefaultLoadAddress || out.code32_start - kDefaultLoadAddress >= out.kernel_size)
        return refuse(BzImageErrorKind::Code32StartOutside, out.code32_start, kDefaultLoadAddress + out.kernel_size);
    if (out.has_entry64() && kEntry64Offset >= out.kernel_size)
        return refuse(BzImageErrorKind::Entry64OutsideKernel, kEntry64Offset, out.kernel_size);

    find_version(image, out);
    return out;
}

const char* describe(BzImageErrorKind kind)
{
    switch (kind) {
    case BzImageErrorKind::None: return "no error";
    case BzImageErrorKind::TooSmall: return "the kernel image is too small to hold a Linux setup header";
    case BzImageErrorKind::NoBootFlag: return "not a bzImage: no boot flag 0xAA55 at offset 0x1fe";
    case BzImageErrorKind::NoHeaderSignature: return "not a bzImage: no 'HdrS' signature at offset 0x202";
    case BzImageErrorKind::ProtocolTooOld: return "the kernel's boot protocol is too old: vlibos needs 2.12 or later (Linux 3.8+)";
    case BzImageErrorKind::BadHeaderJump: return "the setup header does not start with a forward short jump (0xEB xx at 0x200), so its length is unknown";
    case BzImageErrorKind::HeaderTooShort: return "the setup header is too short for boot protocol 2.12";
    case BzImageErrorKind::HeaderOutsideImage: return "the setup header runs past the end of the image";
    case BzImageErrorKind::NotBzImage: return "the kernel is a zImage (LOADED_HIGH clear): only bzImage kernels are supported";
    case BzImageErrorKind::NotRelocatable: return "kernel is not relocatable (CONFIG_RELOCATABLE=n)";
    case BzImageErrorKind::BadKernelAlignment: return "the kernel's kernel_alignment is not a power of two between 4 KiB and 1 GiB, or is below its min_alignment";
    case BzImageErrorKind::SetupOutsideImage: return "the image ends inside its real-mode setup: there is no protected-mode kernel";
    case BzImageErrorKind::KernelTruncated: return "the image ends before its protected-mode kernel does (syssize)";
    case BzImageErrorKind::InitSizeTooSmall: return "the kernel's init_size is smaller than the protected-mode kernel itself";
    case BzImageErrorKind::BadPrefAddress: return "the kernel's pref_address is not below 4 GiB and a multiple of kernel_alignment";
    case BzImageErrorKind::Code32StartOutside: return "the kernel's code32_start lies outside its protected-mode code";
    case BzImageErrorKind::Entry64OutsideKernel: return "the kernel claims a 64-bit entry point (XLF_KERNEL_64) at offset 0x200, but its protected-mode code is shorter";
    }
    return "unknown bzImage error";
}

size_t format_bzimage_error(char* buffer, size_t size, const BzImageError& e)
{
    switch (e.kind) {
    case BzImageErrorKind::TooSmall:
        return format(buffer, size,
                      "the kernel image is %llu bytes, too small to hold a Linux setup header (at least %llu bytes)",
                      ull(e.value), ull(e.limit));
    case BzImageErrorKind::NoBootFlag:
        return format(buffer, size, "not a bzImage: no boot flag 0xAA55 at offset 0x1fe (found 0x%04llx)", ull(e.value));
    case BzImageErrorKind::NoHeaderSignature:
        return format(buffer, size, "not a bzImage: no 'HdrS' signature at offset 0x202");
    case BzImageErrorKind::ProtocolTooOld:
        return format(buffer, size, "boot protocol %llu.%02llu is too old: vlibos needs 2.12 or later (Linux 3.8+)",
                      ull(e.value >> 8), ull(e.value & 0xff));
    case BzImageErrorKind::BadHeaderJump:
        return format(buffer, size,
                      "the setup header does not start with a forward short jump (found %02llx %02llx at 0x200, "
                      "expected eb 00-7f), so its length is unknown",
                      ull(e.value & 0xff), ull(e.value >> 8));
    case BzImageErrorKind::HeaderTooShort:
        return format(buffer, size,
                      "the setup header ends at 0x%llx, but boot protocol 2.12 fields reach 0x%llx", ull(e.value),
                      ull(e.limit));
    case BzImageErrorKind::HeaderOutsideImage:
        return format(buffer, size, "the setup header ends at 0x%llx, past the end of the %llu-byte image",
                      ull(e.value), ull(e.limit));
    case BzImageErrorKind::BadKernelAlignment:
        return format(buffer, size,
                      "kernel_alignment 0x%llx is not a power of two between 4 KiB and 1 GiB, or is below the "
                      "kernel's min_alignment (0x%llx)",
                      ull(e.value), ull(e.limit));
    case BzImageErrorKind::SetupOutsideImage:
        return format(buffer, size,
                      "the image is %llu bytes, but its real-mode setup alone takes %llu: there is no protected-mode kernel",
                      ull(e.limit), ull(e.value));
    case BzImageErrorKind::KernelTruncated:
        return format(buffer, size,
                      "the image is truncated: syssize says the protected-mode kernel is %llu bytes, only %llu follow the setup",
                      ull(e.value), ull(e.limit));
    case BzImageErrorKind::InitSizeTooSmall:
        return format(buffer, size, "init_size 0x%llx is smaller than the protected-mode kernel (%llu bytes)",
                      ull(e.value), ull(e.limit));
    case BzImageErrorKind::BadPrefAddress:
        return format(buffer, size,
                      "pref_address 0x%llx is not below 4 GiB and a multiple of kernel_alignment 0x%llx",
                      ull(e.value), ull(e.limit));
    case BzImageErrorKind::Code32StartOutside:
        return format(buffer, size,
                      "code32_start 0x%llx lies outside the protected-mode kernel, which spans 0x100000-0x%llx when "
                      "loaded at 1 MiB",
                      ull(e.value), ull(e.limit));
    case BzImageErrorKind::Entry64OutsideKernel:
        return format(buffer, size,
                      "the kernel claims a 64-bit entry point (XLF_KERNEL_64) at offset 0x%llx, but its "
                      "protected-mode code is only %llu bytes",
                      ull(e.value), ull(e.limit));
    case BzImageErrorKind::None:
    case BzImageErrorKind::NotBzImage:
    case BzImageErrorKind::NotRelocatable:
        break;
    }
    return format(buffer, size, "%s", describe(e.kind));
}

} // namespace vlibos::vmm::linux_boot
