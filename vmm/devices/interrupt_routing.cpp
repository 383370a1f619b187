// Guest interrupt destinations. See interrupt_routing.hpp; rules from Intel SDM Vol. 3A 11.6.2.
#include "vmm/devices/interrupt_routing.hpp"

#include "lib/format.hpp"

namespace vlibos::vmm::devices {

namespace {

VcpuSet first_n(size_t n)
{
    return n >= kMaxVcpus ? ~VcpuSet{0} : (VcpuSet{1} << n) - 1;
}

VcpuSet lowest_bit(VcpuSet set) { return set & (~set + 1); }

bool delivers_to_guest(DeliveryMode mode)
{
    return mode != DeliveryMode::Smi && mode != DeliveryMode::Reserved3;
}

} // namespace

const char* delivery_mode_name(DeliveryMode mode)
{
    switch (mode) {
    case DeliveryMode::Fixed: return "fixed";
    case DeliveryMode::LowestPriority: return "lowest-priority";
    case DeliveryMode::Smi: return "smi";
    case DeliveryMode::Reserved3: return "reserved";
    case DeliveryMode::Nmi: return "nmi";
    case DeliveryMode::Init: return "init";
    case DeliveryMode::Startup: return "startup";
    case DeliveryMode::ExtInt: return "extint";
    }
    return "unknown";
}

bool logical_match(const LogicalId& id, uint8_t mda)
{
    if (mda == kBroadcast)
        return true;
    uint32_t logical = id.ldr >> 24;  // LDR[31:24]: the logical APIC ID
    switch (id.dfr >> 28) {
    case kDfrModelFlat:
        return (logical & mda) != 0;
    case kDfrModelCluster:
        return (logical >> 4) == (uint32_t{mda} >> 4) && (logical & mda & 0xfu) != 0;
    default:
        return false;  // reserved model: the SDM defines no match
    }
}

VcpuSet GuestApics::all() const { return first_n(count); }

Route resolve_destinations(const InterruptMessage& message, const GuestApics& apics, uint32_t source)
{
    size_t count = apics.count < kMaxVcpus ? apics.count : kMaxVcpus;
    VcpuSet everyone = first_n(count);
    bool has_source = source < count;
    VcpuSet self = has_source ? VcpuSet{1} << source : 0;

    if (!delivers_to_guest(message.delivery))
        return Route{0, RouteVerdict::Refused};

    VcpuSet targets = 0;
    switch (message.shorthand) {
    case Shorthand::Self:
        if (!has_source)
            return Route{0, RouteVerdict::Blocked};
        targets = self;
        break;
    case Shorthand::AllIncludingSelf:
        if (!has_source)
            return Route{0, RouteVerdict::Blocked};
        targets = everyone;
        break;
    case Shorthand::AllExcludingSelf:
        targets = everyone & ~self;
        if (targets == 0)
            return Route{0, RouteVerdict::None};
        break;
    case Shorthand::None:
        if (message.destination_mode == DestinationMode::Physical) {
            if (message.destination == kBroadcast)
                targets = everyone;
            else if (message.destination < count)
                targets = VcpuSet{1} << message.destination;
        } else {
            for (size_t i = 0; i < count; ++i)
                if (logical_match(apics.logical[i], message.destination))
                    targets |= VcpuSet{1} << i;
        }
        if (targets == 0)
            return Route{0, RouteVerdict::Blocked};
        break;
    }
    if (message.delivery == DeliveryMode::LowestPriority)
        targets = lowest_bit(targets);
    return Route{targets, RouteVerdict::Deliver};
}

Route IpiFilter::route(const InterruptMessage& message, const GuestApics& apics, uint32_t source)
{
    Route r = resolve_destinations(message, apics, source);
    switch (r.verdict) {
    case RouteVerdict::Deliver: ++stats_.delivered; break;
    case RouteVerdict::None: ++stats_.empty; break;
    case RouteVerdict::Blocked: ++stats_.blocked; break;
    case RouteVerdict::Refused: ++stats_.refused; break;
    }
    if (r.verdict == RouteVerdict::Blocked || r.verdict == RouteVerdict::Refused)
        last_ = Dropped{true, message, source, r.verdict};
    return r;
}

size_t format_dropped(char* buffer, size_t size, const IpiFilter::Dropped& dropped)
{
    FormatBuffer<160> line;
    const InterruptMessage& m = dropped.message;
    const char* kind = dropped.source == kNoSource ? "interrupt" : "IPI";
    if (!dropped.valid) {
        line.append("no dropped interrupt");
        return format(buffer, size, "%s", line.c_str());
    }
    line.append("%s %s to ", dropped.verdict == RouteVerdict::Refused ? "refused" : "blocked", kind);
    switch (m.shorthand) {
    case Shorthand::None:
        if (m.destination_mode == DestinationMode::Physical)
            line.append("apic id %u", unsigned{m.destination});
        else
            line.append("logical destination 0x%02x", unsigned{m.destination});
        break;
    case Shorthand::Self: line.append("self"); break;
    case Shorthand::AllIncludingSelf: line.append("all"); break;
    case Shorthand::AllExcludingSelf: line.append("all but self"); break;
    }
    if (dropped.source == kNoSource)
        line.append(" from a device");
    else
        line.append(" from vcpu %u", dropped.source);
    line.append(": %s", delivery_mode_name(m.delivery));
    if (m.delivery == DeliveryMode::Fixed || m.delivery == DeliveryMode::LowestPriority ||
        m.delivery == DeliveryMode::Startup)
        line.append(" vector 0x%02x", unsigned{m.vector});
    return format(buffer, size, "%s", line.c_str());
}

} // namespace vlibos::vmm::devices
