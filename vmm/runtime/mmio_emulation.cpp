#include "vmm/runtime/mmio_emulation.hpp"

#include <string.h>

#include "lib/format.hpp"
#include "vmm/decode/guest_page_walk.hpp"
#include "vmm/decode/mmio_decode.hpp"

namespace vlibos::vmm {

namespace {

// Guest RAM as the page walk reads it: only regions the guest may read, through their host
// frames (the monitor maps all of physical memory at its own address: HPA == VA).
class GuestRamReader final : public decode::GuestPhysReader {
public:
    explicit GuestRamReader(const GuestMemory& memory) : memory_(memory) {}

    bool read(uint64_t gpa, void* out, size_t len) override
    {
        auto* to = static_cast<uint8_t*>(out);
        while (len > 0) {
            auto t = memory_.translate(gpa);
            if (!t || !t.value().access.read)
                return false;
            size_t chunk = len < t.value().bytes_left_in_region ? len : static_cast<size_t>(t.value().bytes_left_in_region);
            memcpy(to, reinterpret_cast<const void*>(t.value().host_physical), chunk);
            to += chunk;
            gpa += chunk;
            len -= chunk;
        }
        return true;
    }

private:
    const GuestMemory& memory_;
};

constexpr uint64_t kEferLma = 1ull << 10;

} // namespace

bool emulate_mmio(Vcpu& vcpu, GuestRegisters& regs, const ExitInfo& exit, const GuestMemory& memory,
                  MmioDevice& device, char* why, size_t why_size)
{
    Vcpu::ControlState c = vcpu.control_state();
    Vcpu::CodeSegment cs = vcpu.code_segment();
    decode::FetchRequest request;
    request.paging = decode::PagingRegisters{c.cr0, c.cr3, c.cr4, c.efer, 52};
    request.code_size = decode::code_size((c.efer & kEferLma) != 0, cs.long_mode, cs.default_big);
    request.rip = vcpu.rip();
    request.cs_base = cs.base;
    request.user = vcpu.cpl() == 3;

    GuestRamReader reader(memory);
    auto fetched = decode::fetch_instruction(request, reader);
    if (!fetched) {
        format(why, why_size, "cannot fetch the instruction at rip %#llx: %s (level %u)",
               static_cast<unsigned long long>(request.rip), decode::describe(fetched.error().error),
               fetched.error().level);
        return false;
    }
    const decode::FetchedInstruction& f = fetched.value();
    auto decoded = decode::decode_mmio(f.bytes, f.length, request.code_size);
    if (!decoded) {
        format(why, why_size, "cannot emulate the instruction at rip %#llx: %s (byte %#x at offset %u)",
               static_cast<unsigned long long>(request.rip), decode::describe(decoded.error().error),
               decoded.error().byte, decoded.error().offset);
        return false;
    }
    const decode::MmioInstruction& insn = decoded.value();
    if (!decode::matches_access(insn, exit.npf.write)) {
        format(why, why_size, "the instruction at rip %#llx is not the %s the CPU reported (the code changed?)",
               static_cast<unsigned long long>(request.rip), exit.npf.write ? "write" : "read");
        return false;
    }

    const uint64_t gpa = exit.npf.guest_physical;
    uint64_t stored = 0;
    if (insn.direction != decode::MmioDirection::Read) {
        auto value = decode::write_value(insn, regs);
        if (!value) {
            format(why, why_size, "the instruction at rip %#llx: %s", static_cast<unsigned long long>(request.rip),
                   decode::describe(value.error()));
            return false;
        }
        stored = value.value();
    }
    if (insn.direction != decode::MmioDirection::Write) {
        uint64_t loaded = 0;
        if (!device.mmio_read(gpa, insn.size, loaded))
            loaded = ~uint64_t{0};
        auto done = decode::complete_read(insn, regs, loaded);
        if (!done) {
            format(why, why_size, "the instruction at rip %#llx: %s", static_cast<unsigned long long>(request.rip),
                   decode::describe(done.error()));
            return false;
        }
    }
    if (insn.direction != decode::MmioDirection::Read)
        (void)device.mmio_write(gpa, insn.size, stored);  // a refused write is dropped (counted by the device)
    vcpu.set_rip(vcpu.rip() + insn.length);
    return true;
}

} // namespace vlibos::vmm
