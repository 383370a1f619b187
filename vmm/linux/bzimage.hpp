// bzImage parser: reads the real-mode setup header of a Linux x86 kernel image and checks that
// the VMM can boot it through the 32-bit or 64-bit boot protocol. It loads nothing itself; the
// result says where the protected-mode kernel lies in the file, which setup header bytes go into
// the zero page, and the header fields the layout needs.
//
// The image is untrusted (a GRUB module). Every offset is checked against the buffer, fields are
// read with memcpy (no alignment needed), and every header field the VMM relies on is validated.
// The reference is Linux's Documentation/arch/x86/boot.rst ("The Real-Mode Kernel Header",
// "32-bit Boot Protocol", "64-bit Boot Protocol") and arch/x86/include/uapi/asm/bootparam.h.
//
// Accepted: boot protocol 2.12 or later (Linux 3.8+, the first with xloadflags), a bzImage
// (LOADED_HIGH), a relocatable kernel (the VMM loads it where the partition's RAM is, GPA == HPA).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"

namespace vlibos::vmm::linux_boot {

// Setup header fields: offsets in the image file, which are also their offsets in the zero page
// (struct boot_params embeds struct setup_header at 0x1f1). boot.rst, "The Real-Mode Kernel Header".
namespace setup_header {
constexpr size_t kStart = 0x1f1;            // first byte of the header (setup_sects)
constexpr size_t kSetupSects = 0x1f1;       // u8, 0 means 4
constexpr size_t kRootFlags = 0x1f2;        // u16
constexpr size_t kSyssize = 0x1f4;          // u32, protected-mode size in 16-byte paragraphs (2.04+)
constexpr size_t kVidMode = 0x1fa;          // u16
constexpr size_t kRootDev = 0x1fc;          // u16
constexpr size_t kBootFlag = 0x1fe;         // u16, 0xAA55
constexpr size_t kJump = 0x200;             // u8 0xEB + s8 offset relative to 0x202
constexpr size_t kHeader = 0x202;           // u32, "HdrS"
constexpr size_t kVersion = 0x206;          // u16, (major << 8) | minor
constexpr size_t kKernelVersion = 0x20e;    // u16, version string offset - 0x200
constexpr size_t kTypeOfLoader = 0x210;     // u8
constexpr size_t kLoadflags = 0x211;        // u8
constexpr size_t kSetupMoveSize = 0x212;    // u16
constexpr size_t kCode32Start = 0x214;      // u32
constexpr size_t kRamdiskImage = 0x218;     // u32
constexpr size_t kRamdiskSize = 0x21c;      // u32
constexpr size_t kHeapEndPtr = 0x224;       // u16
constexpr size_t kExtLoaderVer = 0x226;     // u8
constexpr size_t kExtLoaderType = 0x227;    // u8
constexpr size_t kCmdLinePtr = 0x228;       // u32
constexpr size_t kInitrdAddrMax = 0x22c;    // u32
constexpr size_t kKernelAlignment = 0x230;  // u32
constexpr size_t kRelocatableKernel = 0x234; // u8
constexpr size_t kMinAlignment = 0x235;     // u8, log2
constexpr size_t kXloadflags = 0x236;       // u16 (2.12+)
constexpr size_t kCmdlineSize = 0x238;      // u32 (2.06+)
constexpr size_t kHardwareSubarch = 0x23c;  // u32 (2.07+)
constexpr size_t kHardwareSubarchData = 0x240; // u64
constexpr size_t kPayloadOffset = 0x248;    // u32 (2.08+)
constexpr size_t kPayloadLength = 0x24c;    // u32
constexpr size_t kSetupData = 0x250;        // u64 (2.09+)
constexpr size_t kPrefAddress = 0x258;      // u64 (2.10+)
constexpr size_t kInitSize = 0x260;         // u32 (2.10+)
constexpr size_t kHandoverOffset = 0x264;   // u32 (2.11+)
// The fields up to init_size are what the VMM reads; a 2.12 header always reaches this far.
constexpr size_t kRequiredEnd = 0x264;
// The header ends at 0x202 + a positive s8 jump offset, so at most here (boot.rst: "setup_header
// is permanently limited to 144 bytes"); boot_params has room up to 0x290.
constexpr size_t kMaxEnd = 0x202 + 0x7f;

constexpr uint16_t kBootFlagValue = 0xaa55;
constexpr uint32_t kHeaderMagic = 0x53726448; // "HdrS"
constexpr uint8_t kJumpOpcode = 0xeb;         // short jmp
} // namespace setup_header

// loadflags (boot.rst "loadflags", bootparam.h).
constexpr uint8_t kLoadedHigh = 1u << 0;
constexpr uint8_t kKaslrFlag = 1u << 1;
constexpr uint8_t kQuietFlag = 1u << 5;
constexpr uint8_t kKeepSegments = 1u << 6;
constexpr uint8_t kCanUseHeap = 1u << 7;

// xloadflags (boot.rst "xloadflags", bootparam.h).
constexpr uint16_t kXlfKernel64 = 1u << 0;            // 64-bit entry at load address + 0x200
constexpr uint16_t kXlfCanBeLoadedAbove4G = 1u << 1;  // kernel, boot_params, cmdline, ramdisk may be above 4 GiB

constexpr uint16_t kMinProtocol = 0x020c;  // 2.12
constexpr size_t kSectorSize = 512;
// bzImage kernels are linked to run at 1 MiB; code32_start defaults to it (boot.rst "code32_start").
constexpr uint32_t kDefaultLoadAddress = 0x100000;
// The 64-bit entry point's offset from the load address (boot.rst "64-bit Boot Protocol").
constexpr uint64_t kEntry64Offset = 0x200;

struct BzImage {
    uint16_t protocol;          // e.g. 0x020f for 2.15
    unsigned setup_sects;       // effective (a 0 in the header means 4)

    // The protected-mode kernel: image[kernel_offset, kernel_offset + kernel_size) is copied to the
    // load address. It is everything after the setup sectors, as GRUB and kexec load it (a signed
    // image carries its signature at the end; the kernel ignores it).
    uint64_t kernel_offset;     // (setup_sects + 1) * 512
    uint64_t kernel_size;

    // image[setup_header::kStart, header_end) is copied to the same offsets of the zero page.
    uint64_t header_end;        // 0x202 + the byte at 0x201

    uint8_t loadflags;
    uint32_t syssize;           // 16-byte paragraphs
    uint32_t code32_start;      // as linked (normally 0x100000); the VMM relocates it
    uint32_t initrd_addr_max;   // highest address an initrd byte may occupy
    uint32_t kernel_alignment;  // a power of two, >= 4 KiB
    uint8_t min_alignment;      // log2 of the least alignment the kernel boots with
    bool relocatable;
    uint16_t xloadflags;
    uint32_t cmdline_size;      // longest command line, without its NUL
    uint64_t pref_address;      // the kernel never runs below it (LOAD_PHYSICAL_ADDR)
    uint32_t init_size;         // bytes from the runtime start the kernel needs before it reads e820

    // The kernel's version string ("6.1.0 (builder@host) #1 SMP ..."), if the header has a
    // valid one: image[version_offset, version_offset + version_length), no NUL included.
    uint64_t version_offset;
    uint64_t version_length;    // 0 if none

    constexpr bool has_entry64() const { return (xloadflags & kXlfKernel64) != 0; }
    constexpr bool can_load_above_4g() const { return (xloadflags & kXlfCanBeLoadedAbove4G) != 0; }
    constexpr unsigned protocol_major() const { return protocol >> 8; }
    constexpr unsigned protocol_minor() const { return protocol & 0xffu; }
};

enum class BzImageErrorKind : uint8_t {
    None,
    TooSmall,             // value: image size; limit: bytes a 2.12 header needs
    NoBootFlag,           // value: the u16 at 0x1fe
    NoHeaderSignature,    // value: the u32 at 0x202
    ProtocolTooOld,       // value: the version
    BadHeaderJump,        // value: the two bytes at 0x200 (little-endian)
    HeaderTooShort,       // value: header end; limit: kRequiredEnd
    HeaderOutsideImage,   // value: header end; limit: image size
    NotBzImage,           // LOADED_HIGH clear (a zImage loaded at 0x10000)
    NotRelocatable,       // relocatable_kernel is 0
    BadKernelAlignment,   // value: kernel_alignment; limit: 1 << min_alignment
    SetupOutsideImage,    // value: setup bytes ((setup_sects + 1) * 512); limit: image size
    KernelTruncated,      // value: syssize * 16; limit: bytes after the setup
    InitSizeTooSmall,     // value: init_size; limit: kernel size
    BadPrefAddress,       // value: pref_address; limit: kernel_alignment
    Code32StartOutside,   // value: code32_start; limit: end of the kernel when loaded at 1 MiB
    Entry64OutsideKernel, // XLF_KERNEL_64 set; value: 0x200; limit: kernel size
};

// Why parse() refused, with the numbers the message prints.
struct BzImageError {
    BzImageErrorKind kind = BzImageErrorKind::None;
    uint64_t value = 0;
    uint64_t limit = 0;
};

const char* describe(BzImageErrorKind kind);
// One sentence with the numbers, e.g. "boot protocol 2.10 is too old: vlibos needs 2.12 or later
// (Linux 3.8+)". Returns the length the full message has, like snprintf.
size_t format_bzimage_error(char* buffer, size_t size, const BzImageError& error);

// Parses and validates the bzImage in [image, image + size). The first problem found is returned.
Result<BzImage, BzImageError> parse_bzimage(const uint8_t* image, size_t size);

} // namespace vlibos::vmm::linux_boot
