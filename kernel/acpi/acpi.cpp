// ACPI table parser. See acpi.hpp; section numbers refer to ACPI 6.5.
#include "acpi/acpi.hpp"
#include "lib/bytes.hpp"

#include <string.h>

namespace vlibos::acpi {

namespace {

// §5.2.5.3 RSDP layout.
constexpr size_t kRsdpV1Length = 20;
constexpr size_t kRsdpV2Length = 36;
constexpr size_t kRsdpOemIdOffset = 9;
constexpr size_t kRsdpRevisionOffset = 15;
constexpr size_t kRsdpRsdtOffset = 16;
constexpr size_t kRsdpLengthOffset = 20;
constexpr size_t kRsdpXsdtOffset = 24;
constexpr uint32_t kRsdpMaxLength = 64; // the RSDP is 36 bytes today; leave room for growth

// §5.2.6 system description table header.
constexpr size_t kHeaderLength = 36;
constexpr size_t kHeaderLengthOffset = 4;

// §5.2.12 MADT.
constexpr size_t kMadtLapicAddressOffset = 36;
constexpr size_t kMadtFlagsOffset = 40;
constexpr size_t kMadtEntriesOffset = 44;
constexpr uint32_t kMadtPcatCompat = 1u << 0;
constexpr uint8_t kMadtLocalApic = 0;          // §5.2.12.2
constexpr uint8_t kMadtIoApic = 1;             // §5.2.12.3
constexpr uint8_t kMadtSourceOverride = 2;     // §5.2.12.5
constexpr uint8_t kMadtLapicAddrOverride = 5;  // §5.2.12.8
constexpr uint8_t kMadtLocalX2Apic = 9;        // §5.2.12.12
constexpr uint32_t kLapicEnabled = 1u << 0;
constexpr uint32_t kLapicOnlineCapable = 1u << 1;

// §5.2.9 FADT field offsets.
constexpr size_t kFadtMinLength = 116; // the ACPI 1.0 layout ends before RESET_REG
constexpr size_t kFadtDsdtOffset = 40;
constexpr size_t kFadtPm1aControlOffset = 64;
constexpr size_t kFadtPm1bControlOffset = 68;
constexpr size_t kFadtFlagsOffset = 112;
constexpr size_t kFadtResetRegOffset = 116;
constexpr size_t kFadtResetValueOffset = 128;
constexpr size_t kFadtXDsdtOffset = 140;
constexpr size_t kFadtXPm1aControlOffset = 172;
constexpr size_t kFadtXPm1bControlOffset = 184;
constexpr size_t kFadtSleepControlOffset = 244;
constexpr uint32_t kFadtResetRegSupported = 1u << 10;
constexpr uint32_t kFadtHwReducedAcpi = 1u << 20;

// §5.2.3.2 Generic Address Structure.
constexpr size_t kGasLength = 12;
constexpr size_t kGasAddressOffset = 4;
constexpr uint64_t kMaxIoPort = 0xffff;

// §20.2 AML encodings used by the \_S5_ search.
constexpr uint8_t kAmlNameOp = 0x08;
constexpr uint8_t kAmlRootChar = 0x5c;
constexpr uint8_t kAmlPackageOp = 0x12;
constexpr uint8_t kAmlZeroOp = 0x00;
constexpr uint8_t kAmlOneOp = 0x01;
constexpr uint8_t kAmlBytePrefix = 0x0a;
constexpr uint8_t kAmlWordPrefix = 0x0b;
constexpr uint8_t kAmlDWordPrefix = 0x0c;
constexpr uint8_t kMaxSleepType = 7; // SLP_TYPx is a 3-bit field (§4.8.3.2.1)

// §5.2.5.1 legacy RSDP search areas.
constexpr uint64_t kEbdaSegmentPointer = 0x40e;
constexpr uint64_t kEbdaSearchLength = 1024;
constexpr uint64_t kBiosAreaStart = 0xe0000;
constexpr uint64_t kBiosAreaEnd = 0x100000;
constexpr uint64_t kRsdpAlignment = 16;

uint8_t sum_bytes(const uint8_t* data, size_t length)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < length; ++i)
        sum = static_cast<uint8_t>(sum + data[i]);
    return sum;
}

// Reads [phys, phys + length) rejecting address wrap-around before asking the memory.
bool read_physical(const PhysicalMemory& memory, uint64_t phys, void* out, size_t length)
{
    if (length > UINT64_MAX - phys)
        return false;
    return memory.read(phys, out, length);
}

// Sums `length` bytes of physical memory in small chunks so no large buffer sits on the stack.
bool sum_physical(const PhysicalMemory& memory, uint64_t phys, size_t length, uint8_t& sum)
{
    uint8_t chunk[64];
    sum = 0;
    for (size_t done = 0; done < length;) {
        size_t n = length - done < sizeof(chunk) ? length - done : sizeof(chunk);
        if (!read_physical(memory, phys + done, chunk, n))
            return false;
        sum = static_cast<uint8_t>(sum + sum_bytes(chunk, n));
        done += n;
    }
    return true;
}

// A table whose header, length and checksum were verified. Every field read is bounds-checked
// against the table length, so a short table yields a failed read, never a stray one.
class Table {
public:
    Table() = default;
    Table(const PhysicalMemory& memory, uint64_t phys, uint32_t length)
        : memory_(&memory), phys_(phys), length_(length) {}

    uint32_t length() const { return length_; }

    bool read(size_t offset, void* out, size_t n) const
    {
        if (memory_ == nullptr || offset > length_ || n > length_ - offset)
            return false;
        return read_physical(*memory_, phys_ + offset, out, n);
    }

    template <typename T>
    bool read_value(size_t offset, T& value) const
    {
        uint8_t bytes[sizeof(T)];
        if (!read(offset, bytes, sizeof(T)))
            return false;
        value = load<T>(bytes);
        return true;
    }

private:
    const PhysicalMemory* memory_ = nullptr;
    uint64_t phys_ = 0;
    uint32_t length_ = 0;
};

// The errors one kind of table reports, so describe() can name the table.
struct TableErrors {
    Error bad_signature;
    Error too_short;
    Error too_large;
    Error bad_checksum;
};

constexpr TableErrors kRootErrors{Error::RootTableBadSignature, Error::RootTableTooShort,
                                  Error::RootTableTooLarge, Error::RootTableBadChecksum};
// MADT and FADT are found by their signature, so a wrong one cannot happen.
constexpr TableErrors kMadtErrors{Error::MadtTooShort, Error::MadtTooShort, Error::MadtTooLarge,
                                  Error::MadtBadChecksum};
constexpr TableErrors kFadtErrors{Error::FadtTooShort, Error::FadtTooShort, Error::FadtTooLarge,
                                  Error::FadtBadChecksum};
constexpr TableErrors kDsdtErrors{Error::DsdtBadSignature, Error::DsdtTooShort, Error::DsdtTooLarge,
                                  Error::DsdtBadChecksum};

// Verifies a table's header (§5.2.6): signature, length bounds, and that all bytes sum to zero.
Result<Table, Error> open_table(const PhysicalMemory& memory, uint64_t phys, const char* signature,
                                uint32_t max_length, const TableErrors& errors)
{
    uint8_t header[kHeaderLength];
    if (!read_physical(memory, phys, header, sizeof(header)))
        return fail(Error::UnreadableMemory);
    if (memcmp(header, signature, 4) != 0)
        return fail(errors.bad_signature);
    uint32_t length = load<uint32_t>(header + kHeaderLengthOffset);
    if (length < kHeaderLength)
        return fail(errors.too_short);
    if (length > max_length)
        return fail(errors.too_large);
    uint8_t sum = 0;
    if (!sum_physical(memory, phys, length, sum))
        return fail(Error::UnreadableMemory);
    if (sum != 0)
        return fail(errors.bad_checksum);
    return Table(memory, phys, length);
}

void reset(Platform& out)
{
    memset(out.oem_id, 0, sizeof(out.oem_id));
    out.rsdp_revision = 0;
    out.lapic_address = 0;
    out.pcat_compat = false;
    out.cpu_count = 0;
    out.ioapic_count = 0;
    out.override_count = 0;
    out.has_fadt = false;
    out.hw_reduced = false;
    out.pm1a_control_port = 0;
    out.pm1b_control_port = 0;
    out.has_s5 = false;
    out.s5_sleep_type_a = 0;
    out.s5_sleep_type_b = 0;
    out.has_reset_register = false;
    out.reset_space_id = 0;
    out.reset_address = 0;
    out.reset_value = 0;
    out.has_sleep_control = false;
    out.sleep_control_space_id = 0;
    out.sleep_control_address = 0;
}

// ---- MADT (§5.2.12) ----

Status<Error> add_cpu(Platform& out, uint32_t apic_id, uint32_t uid, uint32_t flags, bool x2apic)
{
    if (out.cpu_count == kMaxCpus)
        return fail(Error::TooManyCpus);
    out.cpus[out.cpu_count++] = Cpu{apic_id, uid, (flags & kLapicEnabled) != 0,
                                    (flags & kLapicOnlineCapable) != 0, x2apic};
    return {};
}

Status<Error> parse_madt_entry(const uint8_t* entry, uint8_t type, uint8_t length, Platform& out)
{
    // Known entries have fixed lengths; a mismatch means we would misread their fields.
    switch (type) {
    case kMadtLocalApic:
        if (length != 8)
            return fail(Error::MadtBadEntryLength);
        return add_cpu(out, entry[3], entry[2], load<uint32_t>(entry + 4), false);
    case kMadtLocalX2Apic:
        if (length != 16)
            return fail(Error::MadtBadEntryLength);
        return add_cpu(out, load<uint32_t>(entry + 4), load<uint32_t>(entry + 12),
                       load<uint32_t>(entry + 8), true);
    case kMadtIoApic:
        if (length != 12)
            return fail(Error::MadtBadEntryLength);
        if (out.ioapic_count == kMaxIoApics)
            return fail(Error::TooManyIoApics);
        out.ioapics[out.ioapic_count++] =
            IoApic{entry[2], load<uint32_t>(entry + 4), load<uint32_t>(entry + 8)};
        return {};
    case kMadtSourceOverride:
        if (length != 10)
            return fail(Error::MadtBadEntryLength);
        if (out.override_count == kMaxOverrides)
            return fail(Error::TooManyOverrides);
        out.overrides[out.override_count++] =
            InterruptOverride{entry[2], entry[3], load<uint32_t>(entry + 4), load<uint16_t>(entry + 8)};
        return {};
    case kMadtLapicAddrOverride:
        if (length != 12)
            return fail(Error::MadtBadEntryLength);
        out.lapic_address = load<uint64_t>(entry + 4);
        return {};
    default:
        return {}; // NMI sources, GIC entries, ...: not needed, skipped by length
    }
}

Status<Error> check_cpus(const Platform& out)
{
    bool any_usable = false;
    for (size_t i = 0; i < out.cpu_count; ++i) {
        const Cpu& cpu = out.cpus[i];
        if (!cpu.enabled && !cpu.online_capable)
            continue;
        any_usable = true;
        // Two usable CPUs with one APIC ID could not be told apart by IPIs.
        for (size_t j = 0; j < i; ++j) {
            const Cpu& other = out.cpus[j];
            if ((other.enabled || other.online_capable) && other.apic_id == cpu.apic_id)
                return fail(Error::DuplicateApicId);
        }
    }
    if (!any_usable)
        return fail(Error::NoUsableCpu);
    return {};
}

Status<Error> parse_madt(const Table& madt, Platform& out)
{
    uint32_t lapic_address = 0, flags = 0;
    if (madt.length() < kMadtEntriesOffset)
        return fail(Error::MadtTooShort);
    if (!madt.read_value(kMadtLapicAddressOffset, lapic_address) || !madt.read_value(kMadtFlagsOffset, flags))
        return fail(Error::UnreadableMemory);
    out.lapic_address = lapic_address;
    out.pcat_compat = (flags & kMadtPcatCompat) != 0;

    // Each entry starts with {u8 type, u8 length}; length >= 2 guarantees progress.
    uint8_t entry[255];
    for (size_t offset = kMadtEntriesOffset; offset < madt.length();) {
        if (madt.length() - offset < 2)
            return fail(Error::MadtEntryOverrun);
        if (!madt.read(offset, entry, 2))
            return fail(Error::UnreadableMemory);
        uint8_t type = entry[0], length = entry[1];
        if (length < 2)
            return fail(Error::MadtBadEntryLength);
        if (length > madt.length() - offset)
            return fail(Error::MadtEntryOverrun);
        if (!madt.read(offset, entry, length))
            return fail(Error::UnreadableMemory);
        TRY(parse_madt_entry(entry, type, length, out));
        offset += length;
    }
    return check_cpus(out);
}

// ---- DSDT \_S5_ search (§7.4.2, AML §20.2) ----

// Byte access to a table through a small cache, for scanning AML without a big buffer.
class ByteWindow {
public:
    explicit ByteWindow(const Table& table) : table_(table) {}

    bool at(size_t offset, uint8_t& byte)
    {
        if (offset >= table_.length())
            return false;
        if (offset < start_ || offset - start_ >= count_) {
            size_t n = table_.length() - offset;
            count_ = n < sizeof(cache_) ? n : sizeof(cache_);
            start_ = offset;
            if (!table_.read(offset, cache_, count_)) {
                count_ = 0;
                return false;
            }
        }
        byte = cache_[offset - start_];
        return true;
    }

private:
    const Table& table_;
    uint8_t cache_[256];
    size_t start_ = 0;
    size_t count_ = 0;
};

// Decodes one small integer package element: ZeroOp, OneOp, or a Byte/Word/DWord constant.
bool aml_integer(ByteWindow& aml, size_t& offset, uint32_t& value)
{
    uint8_t op = 0;
    if (!aml.at(offset++, op))
        return false;
    size_t bytes = 0;
    switch (op) {
    case kAmlZeroOp: value = 0; return true;
    case kAmlOneOp: value = 1; return true;
    case kAmlBytePrefix: bytes = 1; break;
    case kAmlWordPrefix: bytes = 2; break;
    case kAmlDWordPrefix: bytes = 4; break;
    default: return false;
    }
    value = 0;
    for (size_t i = 0; i < bytes; ++i) {
        uint8_t b = 0;
        if (!aml.at(offset++, b))
            return false;
        value |= static_cast<uint32_t>(b) << (8 * i);
    }
    return true;
}

// Tries to decode `Name(\_S5_, Package(){a, b, ...})` with "_S5_" at `offset`.
bool match_s5(ByteWindow& aml, size_t offset, uint8_t& type_a, uint8_t& type_b)
{
    uint8_t b = 0;
    const char name[] = "_S5_";
    for (size_t i = 0; i < 4; ++i) {
        if (!aml.at(offset + i, b) || b != static_cast<uint8_t>(name[i]))
            return false;
    }
    // NameOp, optionally followed by the root prefix, must precede the name.
    if (offset < 1 || !aml.at(offset - 1, b))
        return false;
    if (b == kAmlRootChar) {
        if (offset < 2 || !aml.at(offset - 2, b))
            return false;
    }
    if (b != kAmlNameOp)
        return false;

    size_t p = offset + 4;
    if (!aml.at(p++, b) || b != kAmlPackageOp)
        return false;
    // PkgLength (§20.2.4): bits 7:6 of the lead byte count the bytes that follow it.
    if (!aml.at(p++, b))
        return false;
    p += static_cast<size_t>(b >> 6);
    uint8_t elements = 0;
    if (!aml.at(p++, elements) || elements < 1)
        return false;
    uint32_t a = 0, c = 0;
    if (!aml_integer(aml, p, a))
        return false;
    c = a; // a one-element package gives both registers the same value
    if (elements >= 2 && !aml_integer(aml, p, c))
        return false;
    if (a > kMaxSleepType || c > kMaxSleepType)
        return false;
    type_a = static_cast<uint8_t>(a);
    type_b = static_cast<uint8_t>(c);
    return true;
}

void find_s5(const Table& dsdt, Platform& out)
{
    ByteWindow aml(dsdt);
    uint8_t b = 0;
    for (size_t offset = kHeaderLength; offset < dsdt.length(); ++offset) {
        if (!aml.at(offset, b))
            return;
        if (b == '_' && match_s5(aml, offset, out.s5_sleep_type_a, out.s5_sleep_type_b)) {
            out.has_s5 = true;
            return;
        }
    }
}

// ---- FADT (§5.2.9) ----

// Reads a Generic Address Structure if the table is long enough to hold it.
bool read_gas(const Table& fadt, size_t offset, uint8_t& space_id, uint64_t& address)
{
    uint8_t gas[kGasLength];
    if (!fadt.read(offset, gas, sizeof(gas)))
        return false;
    space_id = gas[0];
    address = load<uint64_t>(gas + kGasAddressOffset);
    return true;
}

// PM1x control port: the X_ field wins when present and nonzero (§5.2.9), if it is an I/O port.
uint32_t pm1_control_port(const Table& fadt, size_t legacy_offset, size_t extended_offset)
{
    uint8_t space = 0;
    uint64_t address = 0;
    if (read_gas(fadt, extended_offset, space, address) && address != 0 && space == kAddressSpaceIo
        && address <= kMaxIoPort)
        return static_cast<uint32_t>(address);
    uint32_t port = 0;
    if (!fadt.read_value(legacy_offset, port))
        return 0;
    return port;
}

Status<Error> parse_fadt(const PhysicalMemory& memory, const Table& fadt, Platform& out)
{
    if (fadt.length() < kFadtMinLength)
        return fail(Error::FadtTooShort);
    out.has_fadt = true;

    uint32_t flags = 0;
    if (!fadt.read_value(kFadtFlagsOffset, flags))
        return fail(Error::UnreadableMemory);
    out.hw_reduced = (flags & kFadtHwReducedAcpi) != 0;
    out.pm1a_control_port = pm1_control_port(fadt, kFadtPm1aControlOffset, kFadtXPm1aControlOffset);
    out.pm1b_control_port = pm1_control_port(fadt, kFadtPm1bControlOffset, kFadtXPm1bControlOffset);

    // RESET_REG and RESET_VALUE exist from FADT revision 2; the flag says whether they are valid.
    uint8_t reset_space = 0, reset_value = 0;
    uint64_t reset_address = 0;
    if ((flags & kFadtResetRegSupported) != 0 && read_gas(fadt, kFadtResetRegOffset, reset_space, reset_address)
        && fadt.read_value(kFadtResetValueOffset, reset_value) && reset_address != 0) {
        out.has_reset_register = true;
        out.reset_space_id = reset_space;
        out.reset_address = reset_address;
        out.reset_value = reset_value;
    }

    uint8_t sleep_space = 0;
    uint64_t sleep_address = 0;
    if (read_gas(fadt, kFadtSleepControlOffset, sleep_space, sleep_address) && sleep_address != 0) {
        out.has_sleep_control = true;
        out.sleep_control_space_id = sleep_space;
        out.sleep_control_address = sleep_address;
    }

    uint64_t dsdt_address = 0;
    if (!fadt.read_value(kFadtXDsdtOffset, dsdt_address) || dsdt_address == 0) {
        uint32_t dsdt32 = 0;
        if (!fadt.read_value(kFadtDsdtOffset, dsdt32))
            return fail(Error::UnreadableMemory);
        dsdt_address = dsdt32;
    }
    if (dsdt_address == 0)
        return {};
    Table dsdt = TRY(open_table(memory, dsdt_address, "DSDT", kMaxAmlTableLength, kDsdtErrors));
    find_s5(dsdt, out);
    return {};
}

// ---- RSDP (§5.2.5) and root table (§5.2.7, §5.2.8) ----

struct RootPointer {
    uint64_t address = 0;
    bool extended = false; // XSDT with 64-bit entries, else RSDT with 32-bit entries
};

Result<RootPointer, Error> parse_rsdp(const uint8_t* rsdp, size_t rsdp_length, Platform& out)
{
    if (rsdp == nullptr || rsdp_length < kRsdpV1Length)
        return fail(Error::RsdpTooShort);
    if (memcmp(rsdp, "RSD PTR ", 8) != 0)
        return fail(Error::RsdpBadSignature);
    if (sum_bytes(rsdp, kRsdpV1Length) != 0)
        return fail(Error::RsdpBadChecksum);

    for (size_t i = 0; i < 6; ++i) {
        uint8_t c = rsdp[kRsdpOemIdOffset + i];
        out.oem_id[i] = c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
    }
    out.oem_id[6] = '\0';
    out.rsdp_revision = rsdp[kRsdpRevisionOffset];

    RootPointer root;
    root.address = load<uint32_t>(rsdp + kRsdpRsdtOffset);
    // Revision 0 is ACPI 1.0; from ACPI 2.0 on the revision is 2 and the extended fields exist.
    if (out.rsdp_revision >= 2) {
        if (rsdp_length < kRsdpV2Length)
            return fail(Error::RsdpTooShort);
        uint32_t length = load<uint32_t>(rsdp + kRsdpLengthOffset);
        if (length < kRsdpV2Length || length > rsdp_length)
            return fail(Error::RsdpBadLength);
        if (sum_bytes(rsdp, length) != 0)
            return fail(Error::RsdpBadExtendedChecksum);
        uint64_t xsdt = load<uint64_t>(rsdp + kRsdpXsdtOffset);
        if (xsdt != 0) {
            root.address = xsdt;
            root.extended = true;
        }
    }
    if (root.address == 0)
        return fail(Error::NoRootTable);
    return root;
}

} // namespace

const char* describe(Error error)
{
    switch (error) {
    case Error::RsdpTooShort: return "the ACPI RSDP is too short";
    case Error::RsdpBadSignature: return "the ACPI RSDP signature is not \"RSD PTR \"";
    case Error::RsdpBadChecksum: return "the ACPI RSDP checksum is wrong";
    case Error::RsdpBadLength: return "the ACPI RSDP length field is out of range";
    case Error::RsdpBadExtendedChecksum: return "the ACPI RSDP extended checksum is wrong";
    case Error::RsdpNotFound: return "no ACPI RSDP was found in the EBDA or BIOS area";
    case Error::NoRootTable: return "the ACPI RSDP points to neither an RSDT nor an XSDT";
    case Error::UnreadableMemory: return "an ACPI table lies in memory that cannot be read";
    case Error::RootTableBadSignature: return "the ACPI RSDT/XSDT signature is wrong";
    case Error::RootTableTooShort: return "the ACPI RSDT/XSDT is shorter than its header";
    case Error::RootTableTooLarge: return "the ACPI RSDT/XSDT is implausibly large";
    case Error::RootTableBadChecksum: return "the ACPI RSDT/XSDT checksum is wrong";
    case Error::RootTableBadLength: return "the ACPI RSDT/XSDT length is not a whole number of entries";
    case Error::MadtMissing: return "there is no MADT (ACPI \"APIC\" table)";
    case Error::MadtDuplicate: return "the ACPI root table lists two MADTs";
    case Error::MadtTooShort: return "the MADT is too short";
    case Error::MadtTooLarge: return "the MADT is implausibly large";
    case Error::MadtBadChecksum: return "the MADT checksum is wrong";
    case Error::MadtBadEntryLength: return "a MADT entry has an invalid length";
    case Error::MadtEntryOverrun: return "a MADT entry runs past the end of the table";
    case Error::TooManyCpus: return "the MADT lists more CPUs than the kernel supports";
    case Error::TooManyIoApics: return "the MADT lists more I/O APICs than the kernel supports";
    case Error::TooManyOverrides: return "the MADT lists more interrupt overrides than the kernel supports";
    case Error::DuplicateApicId: return "two usable CPUs in the MADT share an APIC ID";
    case Error::NoUsableCpu: return "the MADT lists no enabled or online-capable CPU";
    case Error::FadtDuplicate: return "the ACPI root table lists two FADTs";
    case Error::FadtTooShort: return "the FADT is too short";
    case Error::FadtTooLarge: return "the FADT is implausibly large";
    case Error::FadtBadChecksum: return "the FADT checksum is wrong";
    case Error::DsdtBadSignature: return "the FADT's DSDT pointer does not point to a DSDT";
    case Error::DsdtTooShort: return "the DSDT is shorter than its header";
    case Error::DsdtTooLarge: return "the DSDT is implausibly large";
    case Error::DsdtBadChecksum: return "the DSDT checksum is wrong";
    }
    return "unknown ACPI error";
}

Status<Error> parse(const uint8_t* rsdp, size_t rsdp_length, const PhysicalMemory& memory, Platform& out)
{
    reset(out);
    RootPointer root = TRY(parse_rsdp(rsdp, rsdp_length, out));
    Table root_table = TRY(open_table(memory, root.address, root.extended ? "XSDT" : "RSDT",
                                      kMaxTableLength, kRootErrors));

    size_t entry_size = root.extended ? 8 : 4;
    size_t entries_bytes = root_table.length() - kHeaderLength;
    if (entries_bytes % entry_size != 0)
        return fail(Error::RootTableBadLength);

    uint64_t madt_address = 0, fadt_address = 0;
    for (size_t offset = kHeaderLength; offset < root_table.length(); offset += entry_size) {
        uint64_t address = 0;
        bool ok = true;
        if (root.extended) {
            ok = root_table.read_value(offset, address); // XSDT entries are only 4-byte aligned
        } else {
            uint32_t address32 = 0;
            ok = root_table.read_value(offset, address32);
            address = address32;
        }
        if (!ok)
            return fail(Error::UnreadableMemory);
        if (address == 0)
            continue; // some firmware leaves empty slots
        char signature[4];
        if (!read_physical(memory, address, signature, sizeof(signature)))
            return fail(Error::UnreadableMemory);
        if (memcmp(signature, "APIC", 4) == 0) {
            if (madt_address != 0)
                return fail(Error::MadtDuplicate);
            madt_address = address;
        } else if (memcmp(signature, "FACP", 4) == 0) {
            if (fadt_address != 0)
                return fail(Error::FadtDuplicate);
            fadt_address = address;
        }
    }

    if (madt_address == 0)
        return fail(Error::MadtMissing);
    Table madt = TRY(open_table(memory, madt_address, "APIC", kMaxTableLength, kMadtErrors));
    TRY(parse_madt(madt, out));

    if (fadt_address != 0) {
        Table fadt = TRY(open_table(memory, fadt_address, "FACP", kMaxTableLength, kFadtErrors));
        TRY(parse_fadt(memory, fadt, out));
    }
    return {};
}

Status<Error> parse_at(uint64_t rsdp_address, const PhysicalMemory& memory, Platform& out)
{
    uint8_t rsdp[kRsdpMaxLength];
    if (!read_physical(memory, rsdp_address, rsdp, kRsdpV1Length))
        return fail(Error::UnreadableMemory);
    size_t length = kRsdpV1Length;
    if (rsdp[kRsdpRevisionOffset] >= 2) {
        if (!read_physical(memory, rsdp_address, rsdp, kRsdpV2Length))
            return fail(Error::UnreadableMemory);
        uint32_t declared = load<uint32_t>(rsdp + kRsdpLengthOffset);
        if (declared < kRsdpV2Length || declared > kRsdpMaxLength)
            return fail(Error::RsdpBadLength);
        if (!read_physical(memory, rsdp_address, rsdp, declared))
            return fail(Error::UnreadableMemory);
        length = declared;
    }
    return parse(rsdp, length, memory, out);
}

namespace {

// Checks one candidate of the legacy search: signature, v1 checksum, and for ACPI 2.0+ the
// extended checksum, which rules out stray "RSD PTR " strings in the BIOS image.
bool is_rsdp_at(const PhysicalMemory& memory, uint64_t phys)
{
    uint8_t rsdp[kRsdpV2Length];
    if (!read_physical(memory, phys, rsdp, kRsdpV1Length))
        return false;
    if (memcmp(rsdp, "RSD PTR ", 8) != 0 || sum_bytes(rsdp, kRsdpV1Length) != 0)
        return false;
    if (rsdp[kRsdpRevisionOffset] < 2)
        return true;
    if (!read_physical(memory, phys, rsdp, kRsdpV2Length))
        return false;
    uint32_t length = load<uint32_t>(rsdp + kRsdpLengthOffset);
    if (length < kRsdpV2Length || length > kRsdpMaxLength)
        return false;
    uint8_t sum = 0;
    return sum_physical(memory, phys, length, sum) && sum == 0;
}

bool search_area(const PhysicalMemory& memory, uint64_t start, uint64_t end, uint64_t& found)
{
    for (uint64_t phys = start; phys + kRsdpV1Length <= end; phys += kRsdpAlignment) {
        if (is_rsdp_at(memory, phys)) {
            found = phys;
            return true;
        }
    }
    return false;
}

} // namespace

Result<uint64_t, Error> find_rsdp(const PhysicalMemory& memory)
{
    uint64_t found = 0;
    // The BIOS data area holds the EBDA's real-mode segment (§5.2.5.1).
    uint16_t segment = 0;
    if (read_physical(memory, kEbdaSegmentPointer, &segment, sizeof(segment)) && segment != 0) {
        uint64_t ebda = static_cast<uint64_t>(segment) << 4;
        if (search_area(memory, ebda, ebda + kEbdaSearchLength, found))
            return found;
    }
    if (search_area(memory, kBiosAreaStart, kBiosAreaEnd, found))
        return found;
    return fail(Error::RsdpNotFound);
}

} // namespace vlibos::acpi
