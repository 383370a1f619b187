// Single-producer/single-consumer rings over the RPC channel's shared memory (rpc/wire.h),
// written for a peer that is not trusted: Linux may write any value into its ring index and its
// records at any moment, including while we read them.
//
// Rules, each enforced here:
//   - Our own index lives in this object, never read back from shared memory: we only publish it.
//   - The peer's index is read once per operation into a local and checked: the fill
//     (head - tail, mod 2^32) can never exceed the ring size. A value that breaks this poisons the
//     ring (RingError::Corrupt, sticky until reset()), since no later value can be trusted either.
//   - A record is copied out word by word, each word read exactly once, before anyone looks at
//     it; validation works on the private copy (no double fetch). A torn record (the peer still
//     writing) is just a record with odd values, which the validator rejects or attributes to
//     one call.
//
// Memory ordering (x86-64 is TSO, but the compiler is not; the __atomic orders say what we need):
//   producer: store the record words (relaxed) -> store head (release)
//   consumer: load head (acquire) -> load the record words (relaxed) -> store tail (release)
//   producer: load tail (acquire) before reusing an entry, so the consumer's reads of it are done.
//
// Pure logic: no hardware, no heap; both ends of a ring can be driven from one thread in tests.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"
#include "rpc/wire.h"

namespace vlibos::rpc {

enum class RingError : uint8_t {
    Empty,    // consumer: nothing to take
    Full,     // producer: every entry is in use
    Corrupt,  // the peer's index is impossible; the ring stays unusable until reset()
};

const char* describe(RingError error);

// The ring machinery without a record type: a control block, `entries` records of `record_size`
// bytes (a multiple of 8, records 8-byte aligned) and our private index.
class RingEnd {
public:
    RingEnd() = default;
    // `entries` must satisfy vlibos_rpc_ring_entries_valid(); the master passes the sizes from
    // its private copy of the header. A fresh channel starts at index 0; both ends must start at
    // the same index (tests start near 2^32 to cross the wrap).
    RingEnd(vlibos_rpc_ring_ctl* control, void* records, uint32_t entries, uint32_t record_size,
            uint32_t start_index = 0);

    bool corrupt() const { return corrupt_; }
    uint32_t entries() const { return entries_; }
    // Our private index: entries produced (producer) or consumed (consumer) so far.
    uint32_t index() const { return index_; }
    // Back to index 0 with both shared indices zeroed: only when the peer is known to be stopped
    // (a channel reset).
    void reset();

protected:
    // Producer: how many entries are free, from one read of the consumer's tail.
    Result<uint32_t, RingError> free_entries();
    // Consumer: how many entries are ready, from one read of the producer's head.
    Result<uint32_t, RingError> ready_entries();
    void write_record(const void* record);  // at index_, then publish index_ + 1 as head
    void read_record(void* record);         // at index_, then publish index_ + 1 as tail

private:
    uint64_t* record_words(uint32_t index) const;

    vlibos_rpc_ring_ctl* control_ = nullptr;
    uint8_t* records_ = nullptr;
    uint32_t entries_ = 0;
    uint32_t record_words_ = 0;
    uint32_t index_ = 0;
    bool corrupt_ = false;
};

template <typename Record>
class RingProducer : public RingEnd {
    static_assert(sizeof(Record) % 8 == 0, "records are copied as 64-bit words");

public:
    RingProducer() = default;
    RingProducer(vlibos_rpc_ring_ctl* control, Record* records, uint32_t entries, uint32_t start_index = 0)
        : RingEnd(control, records, entries, sizeof(Record), start_index) {}

    Status<RingError> push(const Record& record)
    {
        uint32_t free = TRY(free_entries());
        if (free == 0)
            return fail(RingError::Full);
        write_record(&record);
        return {};
    }
    Result<uint32_t, RingError> space() { return free_entries(); }
};

template <typename Record>
class RingConsumer : public RingEnd {
    static_assert(sizeof(Record) % 8 == 0, "records are copied as 64-bit words");

public:
    RingConsumer() = default;
    RingConsumer(vlibos_rpc_ring_ctl* control, Record* records, uint32_t entries, uint32_t start_index = 0)
        : RingEnd(control, records, entries, sizeof(Record), start_index) {}

    // The next record, copied out of shared memory; its entry is handed back to the producer.
    Result<Record, RingError> pop()
    {
        uint32_t ready = TRY(ready_entries());
        if (ready == 0)
            return fail(RingError::Empty);
        Record record;
        read_record(&record);
        return record;
    }
    Result<uint32_t, RingError> available() { return ready_entries(); }
};

using RequestProducer = RingProducer<vlibos_rpc_request>;
using RequestConsumer = RingConsumer<vlibos_rpc_request>;
using ResponseProducer = RingProducer<vlibos_rpc_response>;
using ResponseConsumer = RingConsumer<vlibos_rpc_response>;

// The master's end of a channel: its private copy of the header and both rings.
struct MasterChannel {
    vlibos_rpc_header header{};
    uint8_t* base = nullptr;
    RequestProducer requests;
    ResponseConsumer responses;

    // Slot `index`'s first byte; nullptr for an index beyond the channel's slots.
    uint8_t* slot(uint32_t index) const
    {
        if (index >= header.slot_count)
            return nullptr;
        return base + header.slots_offset + uint64_t{index} * header.slot_size;
    }
};

// Lays out a fresh channel in [base, base + size) (8-byte aligned): writes the header, zeroes the
// ring indices and returns the master's end. Records and slots are left as they are.
Result<MasterChannel, vlibos_rpc_layout_error> create_master_channel(void* base, uint64_t size, uint32_t request_entries,
                                                                     uint32_t response_entries, uint32_t slot_count,
                                                                     uint32_t slot_size);

} // namespace vlibos::rpc
