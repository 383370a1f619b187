// The guest's I/O APIC. See virtual_ioapic.hpp; section numbers are the 82093AA datasheet's.
#include "vmm/devices/virtual_ioapic.hpp"

namespace vlibos::vmm::devices {

namespace {

// Redirection entry fields (3.2.4).
constexpr uint64_t kVectorMask = 0xff;
constexpr unsigned kDeliveryShift = 8;
constexpr uint64_t kDestModeLogical = 1u << 11;
constexpr uint64_t kDeliveryStatus = 1u << 12;
constexpr uint64_t kActiveLow = 1u << 13;
constexpr uint64_t kRemoteIrr = 1u << 14;
constexpr uint64_t kLevelTriggered = 1u << 15;
constexpr uint64_t kMasked = 1u << 16;
constexpr unsigned kDestinationShift = 56;

constexpr uint32_t kIdShift = 24;
constexpr uint32_t kIdMask = 0xf;  // 3.2.1: IOAPICID bits 27:24

bool sendable(DeliveryMode mode)
{
    // 3.2.4: 010b SMI (never to a guest), 011b and 110b reserved.
    return mode != DeliveryMode::Smi && mode != DeliveryMode::Reserved3 && mode != DeliveryMode::Startup;
}

} // namespace

const char* describe(IoapicError error)
{
    switch (error) {
    case IoapicError::BadOffset: return "I/O APIC access outside IOREGSEL (+0x00) and IOWIN (+0x10)";
    case IoapicError::BadSize: return "I/O APIC access of a size other than 4 bytes";
    case IoapicError::UnknownRegister: return "IOWIN access with IOREGSEL naming no register";
    case IoapicError::ReadOnly: return "write to a read-only I/O APIC register";
    case IoapicError::BadPin: return "I/O APIC pin number out of range";
    case IoapicError::PinNotOwned: return "I/O APIC pin not owned by the guest";
    }
    return "unknown I/O APIC error";
}

RedirectionEntry RedirectionEntry::decode(uint64_t raw)
{
    RedirectionEntry e;
    e.vector = static_cast<uint8_t>(raw & kVectorMask);
    e.delivery = static_cast<DeliveryMode>((raw >> kDeliveryShift) & 7u);
    e.destination_mode = (raw & kDestModeLogical) ? DestinationMode::Logical : DestinationMode::Physical;
    e.delivery_pending = (raw & kDeliveryStatus) != 0;
    e.active_low = (raw & kActiveLow) != 0;
    e.remote_irr = (raw & kRemoteIrr) != 0;
    e.level_triggered = (raw & kLevelTriggered) != 0;
    e.masked = (raw & kMasked) != 0;
    e.destination = static_cast<uint8_t>(raw >> kDestinationShift);
    return e;
}

VirtualIoapic::VirtualIoapic(uint32_t owned_pins, uint8_t id)
    : owned_(owned_pins & kAllPins), id_(static_cast<uint8_t>(id & kIdMask))
{
    for (uint64_t& e : entries_)
        e = kEntryReset;
}

IoapicError VirtualIoapic::refuse(IoapicError error)
{
    ++stats_.errors;
    return error;
}

uint64_t VirtualIoapic::raw_entry(uint8_t pin) const
{
    if (!owns(pin))
        return kEntryReset;
    return entries_[pin];
}

Result<uint32_t, IoapicError> VirtualIoapic::read(uint32_t offset, uint8_t size)
{
    ++stats_.reads;
    if (offset != kRegSelect && offset != kWindow)
        return fail(refuse(IoapicError::BadOffset));
    if (size != 4)
        return fail(refuse(IoapicError::BadSize));
    if (offset == kRegSelect)
        return uint32_t{select_};

    switch (select_) {
    case kRegId: return uint32_t{id_} << kIdShift;
    case kRegVersion: return kVersionValue;
    case kRegArbitration: return uint32_t{id_} << kIdShift;  // 3.2.3: loaded from the ID
    default: break;
    }
    if (select_ >= kRegRedirection && select_ < kRegRedirection + 2 * kPins) {
        auto pin = static_cast<uint8_t>((select_ - kRegRedirection) / 2);
        uint64_t raw = raw_entry(pin);
        return static_cast<uint32_t>((select_ & 1u) ? raw >> 32 : raw);
    }
    return fail(refuse(IoapicError::UnknownRegister));
}

Result<IoapicDelivery, IoapicError> VirtualIoapic::write(uint32_t offset, uint8_t size, uint32_t value)
{
    ++stats_.writes;
    if (offset != kRegSelect && offset != kWindow)
        return fail(refuse(IoapicError::BadOffset));
    if (size != 4)
        return fail(refuse(IoapicError::BadSize));
    if (offset == kRegSelect) {
        select_ = static_cast<uint8_t>(value & 0xff);  // 3.1: IOREGSEL bits 7:0
        return IoapicDelivery{};
    }

    switch (select_) {
    case kRegId:
        id_ = static_cast<uint8_t>((value >> kIdShift) & kIdMask);
        return IoapicDelivery{};
    case kRegVersion:
    case kRegArbitration:
        return fail(refuse(IoapicError::ReadOnly));
    default:
        break;
    }
    if (select_ < kRegRedirection || select_ >= kRegRedirection + 2 * kPins)
        return fail(refuse(IoapicError::UnknownRegister));

    auto pin = static_cast<uint8_t>((select_ - kRegRedirection) / 2);
    if (!owns(pin)) {
        // Not the guest's interrupt: it keeps reading the reset (masked) value.
        ++stats_.unowned_writes;
        stats_.last_unowned_pin = pin;
        return IoapicDelivery{};
    }
    bool high = (select_ & 1u) != 0;
    uint64_t half = high ? 0xffff'ffff'0000'0000ull : 0x0000'0000'ffff'ffffull;
    uint64_t writable = kEntryWritable & half;
    uint64_t shifted = high ? uint64_t{value} << 32 : uint64_t{value};
    uint64_t entry = (entries_[pin] & ~writable) | (shifted & writable);
    if (!(entry & kLevelTriggered))
        entry &= ~kRemoteIrr;  // Remote IRR means nothing for an edge-triggered pin
    entries_[pin] = entry;
    // A level-triggered line that is still asserted is sent once it is unmasked.
    if ((entry & kLevelTriggered) && asserted(pin))
        return service(pin);
    return IoapicDelivery{};
}

IoapicDelivery VirtualIoapic::send(uint8_t pin)
{
    RedirectionEntry e = RedirectionEntry::decode(entries_[pin]);
    IoapicDelivery d;
    d.deliver = true;
    d.pin = pin;
    d.message.vector = e.vector;
    d.message.delivery = e.delivery;
    d.message.destination_mode = e.destination_mode;
    d.message.shorthand = Shorthand::None;
    d.message.destination = e.destination;
    d.message.level_triggered = e.level_triggered;
    ++stats_.deliveries;
    return d;
}

IoapicDelivery VirtualIoapic::service(uint8_t pin)
{
    uint64_t entry = entries_[pin];
    if (entry & kMasked) {
        ++stats_.masked;
        return IoapicDelivery{};
    }
    if (entry & kRemoteIrr)
        return IoapicDelivery{};  // the previous one is not EOI'd yet: it is sent again after EOI
    if (!sendable(static_cast<DeliveryMode>((entry >> kDeliveryShift) & 7u))) {
        ++stats_.refused_modes;
        return IoapicDelivery{};
    }
    entries_[pin] = entry | kRemoteIrr;
    return send(pin);
}

Result<IoapicDelivery, IoapicError> VirtualIoapic::raise(uint8_t pin)
{
    if (pin >= kPins)
        return fail(refuse(IoapicError::BadPin));
    if (!owns(pin))
        return fail(refuse(IoapicError::PinNotOwned));
    uint64_t entry = entries_[pin];
    if (entry & kLevelTriggered) {
        lines_ |= 1u << pin;
        return service(pin);
    }
    if (entry & kMasked) {
        ++stats_.masked;  // an edge while masked is lost, as on the 82093AA
        return IoapicDelivery{};
    }
    if (!sendable(static_cast<DeliveryMode>((entry >> kDeliveryShift) & 7u))) {
        ++stats_.refused_modes;
        return IoapicDelivery{};
    }
    return send(pin);
}

Status<IoapicError> VirtualIoapic::lower(uint8_t pin)
{
    if (pin >= kPins)
        return fail(refuse(IoapicError::BadPin));
    if (!owns(pin))
        return fail(refuse(IoapicError::PinNotOwned));
    lines_ &= ~(1u << pin);
    return {};
}

VirtualIoapic::Deliveries VirtualIoapic::eoi(uint8_t vector)
{
    Deliveries out;
    for (uint8_t pin = 0; pin < kPins; ++pin) {
        if (!owns(pin))
            continue;
        uint64_t entry = entries_[pin];
        if (!(entry & kLevelTriggered) || !(entry & kRemoteIrr) || (entry & kVectorMask) != vector)
            continue;
        entries_[pin] = entry & ~kRemoteIrr;
        ++stats_.eois;
        if (asserted(pin)) {
            IoapicDelivery d = service(pin);
            if (d.deliver)
                out.items[out.count++] = d;
        }
    }
    return out;
}

} // namespace vlibos::vmm::devices
