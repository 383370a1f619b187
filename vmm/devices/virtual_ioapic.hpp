// The guest's I/O APIC, emulated in software: an Intel 82093AA (datasheet, order no. 290566,
// section 3 "Register Description") at 0xFEC00000 with 24 pins.
//
// The guest programs its own view through IOREGSEL (+0x00, register index) and IOWIN (+0x10,
// data), 32-bit accesses only. The VMM drives the pins of the devices it gives the guest:
//   - raise(pin): the line is asserted. An edge-triggered pin sends one interrupt per call; a
//     level-triggered pin sends one and sets Remote IRR until the guest's EOI.
//   - lower(pin): a level-triggered line is deasserted.
//   - eoi(vector): a level-triggered EOI from a guest local APIC (LapicEffect::Eoi with `level`):
//     clears Remote IRR on the pins with that vector and re-sends those still asserted.
// Each interrupt comes back as an IoapicDelivery: route its message with IpiFilter/
// resolve_destinations(..., kNoSource) and post the vector (level-triggered as the entry says)
// to each target vCPU's VirtualLapic.
//
// Policy: the guest owns only the pins of its devices (`owned_pins`). Writes to the redirection
// entry of any other pin are ignored and counted, and the entry reads back masked with no vector
// or destination, so Linux can neither see nor reroute an interrupt of the RT partition; raise()
// on such a pin is refused. Pin polarity is stored for the guest but not modelled: raise()
// means "asserted". Delivery modes SMI and the reserved 011b/110b are never sent.
//
// Pure logic: no hardware, no heap. One per VM; not thread-safe (the VMM serialises access).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"
#include "vmm/devices/interrupt_routing.hpp"

namespace vlibos::vmm::devices {

enum class IoapicError : uint8_t {
    BadOffset,        // not IOREGSEL (+0x00) or IOWIN (+0x10)
    BadSize,          // not a 32-bit access
    UnknownRegister,  // IOWIN with IOREGSEL naming no register: reads 0, writes ignored
    ReadOnly,         // a write to the version or arbitration register: ignored
    BadPin,           // pin number 24 or above
    PinNotOwned,      // raise()/lower() of a pin the guest does not own
};

const char* describe(IoapicError error);

// One redirection entry as the guest programmed it (82093AA 3.2.4).
struct RedirectionEntry {
    uint8_t vector = 0;
    DeliveryMode delivery = DeliveryMode::Fixed;
    DestinationMode destination_mode = DestinationMode::Physical;
    bool delivery_pending = false;  // delivery status; always idle here
    bool active_low = false;        // polarity (not modelled)
    bool remote_irr = false;        // level-triggered: sent, EOI not yet received
    bool level_triggered = false;
    bool masked = true;
    uint8_t destination = 0;        // bits 63:56

    static RedirectionEntry decode(uint64_t raw);
};

struct IoapicDelivery {
    bool deliver = false;
    uint8_t pin = 0;
    InterruptMessage message;  // shorthand None; level_triggered from the entry
};

class VirtualIoapic {
public:
    static constexpr uint64_t kBase = 0xfec0'0000;
    static constexpr uint32_t kPins = 24;
    static constexpr uint32_t kAllPins = (1u << kPins) - 1;

    // MMIO offsets and register indexes (82093AA 3.1, 3.2).
    static constexpr uint32_t kRegSelect = 0x00;
    static constexpr uint32_t kWindow = 0x10;
    static constexpr uint8_t kRegId = 0x00;
    static constexpr uint8_t kRegVersion = 0x01;
    static constexpr uint8_t kRegArbitration = 0x02;
    static constexpr uint8_t kRegRedirection = 0x10;  // 0x10 + 2n: entry n bits 31:0; 0x11 + 2n: bits 63:32

    // Version register: version 0x11, maximum redirection entry 23 (82093AA 3.2.2).
    static constexpr uint32_t kVersionValue = 0x0017'0011;
    static constexpr uint64_t kEntryReset = 1u << 16;  // masked, everything else 0 (3.2.4)
    // Writable bits of an entry: vector, delivery mode, destination mode, polarity, trigger mode,
    // mask, destination. Delivery status (12) and Remote IRR (14) are read-only.
    static constexpr uint64_t kEntryWritable = 0xff00'0000'0001'afffull;

    struct Stats {
        uint64_t reads = 0;
        uint64_t writes = 0;
        uint64_t errors = 0;            // accesses refused with an IoapicError
        uint64_t unowned_writes = 0;    // redirection-entry writes to pins the guest does not own
        uint8_t last_unowned_pin = 0;
        uint64_t deliveries = 0;        // interrupts sent
        uint64_t masked = 0;            // raise() on a masked pin (an edge is lost, a level waits)
        uint64_t refused_modes = 0;     // entries with SMI or a reserved delivery mode, not sent
        uint64_t eois = 0;              // Remote IRR bits cleared
    };

    // `owned_pins`: bit n set = the guest owns pin n (bits 24 and above are ignored).
    explicit VirtualIoapic(uint32_t owned_pins, uint8_t id = 0);

    Result<uint32_t, IoapicError> read(uint32_t offset, uint8_t size);
    // A write of IOWIN that unmasks a level-triggered pin whose line is asserted sends it.
    Result<IoapicDelivery, IoapicError> write(uint32_t offset, uint8_t size, uint32_t value);

    Result<IoapicDelivery, IoapicError> raise(uint8_t pin);
    Status<IoapicError> lower(uint8_t pin);

    struct Deliveries {
        IoapicDelivery items[kPins];
        size_t count = 0;
    };
    Deliveries eoi(uint8_t vector);

    bool owns(uint8_t pin) const { return pin < kPins && ((owned_ >> pin) & 1u); }
    uint32_t owned_pins() const { return owned_; }
    // The entry as the guest reads it (unowned pins: the reset value).
    uint64_t raw_entry(uint8_t pin) const;
    RedirectionEntry entry(uint8_t pin) const { return RedirectionEntry::decode(raw_entry(pin)); }
    uint8_t id() const { return id_; }
    uint8_t select() const { return select_; }
    bool asserted(uint8_t pin) const { return pin < kPins && ((lines_ >> pin) & 1u); }
    const Stats& stats() const { return stats_; }

private:
    IoapicError refuse(IoapicError error);
    IoapicDelivery send(uint8_t pin);
    IoapicDelivery service(uint8_t pin);  // a level pin whose line is asserted: send if it may

    uint32_t owned_;
    uint8_t id_;
    uint8_t select_ = 0;
    uint32_t lines_ = 0;  // asserted level-triggered lines
    uint64_t entries_[kPins];
    Stats stats_;
};

} // namespace vlibos::vmm::devices
