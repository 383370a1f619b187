// The master's table of outstanding RPC calls on one channel: which calls Linux owes a reply,
// with what each reply may contain. The reply validator (reply_validator.hpp) checks every
// response against it.
//
// Entry i is call index i and owns data slot i for as long as Linux may write into it. An entry
// goes through:
//
//     Free --issue()--> Pending --valid or malformed reply--> Free
//                          |
//                          +--time_out() / expire() / cancel()--> Abandoned --late reply--> Free
//
// Abandoned keeps the slot lent to Linux: its caller already has its error, but Linux may still be
// writing the slot, so it is not handed to another call until Linux answers (the late reply) or
// the channel is reset. A Linux that never answers thus uses up the table, and new calls fail
// fast with TableFull rather than sharing a slot.
//
// Each entry's generation grows by one per call issued on it and is part of the call id
// (wire.h), so a reply naming an older generation is recognised as stale, and one naming a
// generation never issued as unknown.
//
// Pure logic: no hardware, no heap. Not thread-safe: the master serialises access per channel.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"
#include "rpc/wire.h"

namespace vlibos::rpc {

enum class CallState : uint8_t { Free, Pending, Abandoned };

enum class CallError : uint8_t {
    TableFull,       // every slot is pending or abandoned
    NotPending,      // time_out()/cancel() of an id that is not a pending call
};

const char* describe(CallError error);

// What a reply to a call may contain, fixed when the call is issued.
struct CallBounds {
    uint32_t out_capacity = 0;  // bytes of reply data the caller can take (<= slot size)
    uint64_t count_limit = 0;   // RESULT_COUNT: the most elements the result may report
};

struct CallEntry {
    CallState state = CallState::Free;
    uint32_t opcode = 0;
    uint64_t generation = 0;  // of the current or last call; 0 before the first
    uint64_t deadline = 0;    // expire() abandons the call at this time
    CallBounds bounds;
};

struct IssuedCall {
    uint64_t id = 0;
    uint32_t index = 0;  // also the data slot
};

class CallTable {
public:
    static constexpr uint32_t kMaxCalls = VLIBOS_RPC_MAX_SLOTS;
    static constexpr uint64_t kMaxGeneration = (uint64_t{1} << (64 - VLIBOS_RPC_ID_INDEX_BITS)) - 1;

    CallTable() = default;
    // `capacity` entries (the channel's slot count), clamped to [1, kMaxCalls].
    explicit CallTable(uint32_t capacity);

    uint32_t capacity() const { return capacity_; }

    // Takes the lowest free entry for a call of `opcode`, abandoned at `deadline` by expire().
    Result<IssuedCall, CallError> issue(uint32_t opcode, const CallBounds& bounds, uint64_t deadline);
    // The caller gives up on a pending call (timeout or cancellation): it becomes Abandoned.
    Status<CallError> abandon(uint64_t id);
    // Abandons every pending call with deadline <= now; writes up to `max` of their ids to `ids`
    // (all are abandoned either way) and returns how many were abandoned.
    size_t expire(uint64_t now, uint64_t* ids, size_t max);
    // Channel reset: Linux is stopped and every slot is back. Pending and abandoned calls become
    // Free; generations are kept, so replies from before the reset stay recognisable as stale.
    // Returns how many pending calls were dropped (their callers must be told).
    size_t reset(uint64_t* pending_ids, size_t max);

    // Lookup by index (index < capacity()).
    const CallEntry& entry(uint32_t index) const { return entries_[index]; }
    // Pending -> Free or Abandoned -> Free: the reply validator's transitions.
    void release(uint32_t index) { entries_[index].state = CallState::Free; }

    uint32_t count(CallState state) const;

private:
    CallEntry entries_[kMaxCalls];
    uint32_t capacity_ = 1;
};

inline uint32_t call_index(uint64_t id) { return static_cast<uint32_t>(id & VLIBOS_RPC_ID_INDEX_MASK); }
inline uint64_t call_generation(uint64_t id) { return id >> VLIBOS_RPC_ID_INDEX_BITS; }

} // namespace vlibos::rpc
