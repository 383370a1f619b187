// Validation of Linux's RPC replies. Every response record (copied out of the ring by
// RingConsumer, so it cannot change under us) is checked against the call table and the call's
// description from calls.def before the master uses any of its fields.
//
// accept() has three outcomes:
//   - ok, fault == None: a valid reply; wake the caller with `result` and, if data_length > 0,
//     copy [data_offset, data_offset + data_length) of its slot out once.
//   - ok, fault != None: the reply names a pending call but is malformed; that call completes
//     with result -VLIBOS_RPC_EPROTO and no data. No other call is touched.
//   - error: the reply names no call anyone waits for (unknown, stale, duplicate, late); it is
//     dropped and counted. A late reply frees its abandoned slot.
// Nothing Linux writes can make accept() read or write outside the table, or hand one call's
// slot to another.
//
// Pure logic: no hardware, no heap. Not thread-safe: the master serialises access per channel.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/result.hpp"
#include "rpc/call_table.hpp"
#include "rpc/wire.h"

namespace vlibos::rpc {

// The interface description: vlibos_rpc_calls[] from the generated vlibos/rpc_calls.h, indexed
// by opcode. Passed in, so this file does not depend on generated code (and tests can use a
// hand-made one).
struct Catalog {
    const vlibos_rpc_call_desc* calls = nullptr;
    uint32_t count = 0;

    // The call with this opcode, or nullptr.
    const vlibos_rpc_call_desc* find(uint32_t opcode) const;
};

enum class CatalogError : uint8_t {
    OpcodeMismatch,   // entry i does not describe opcode i
    TooManyArgs,
    BadArgKind,
    BadResultKind,
    BadCountArg,      // RESULT_COUNT without a buffer to count, or count_arg set otherwise
    BadOutArg,        // out_arg is not the one output buffer
    BadElemSize,      // a buffer without an element size, or a scalar with one
};

const char* describe(CatalogError error);

// Checks the generated table is self-consistent (the generator's output is tested with this).
Status<CatalogError> check_catalog(const Catalog& catalog);

enum class ReplyError : uint8_t {
    None,
    // Dropped: no caller is waiting for this reply.
    UnknownCall,    // index beyond the table, or a generation never issued
    StaleCall,      // a generation older than the entry's current call
    Duplicate,      // the call has already completed
    Late,           // the call was abandoned (timeout, cancel); its slot is free again
    // The named pending call completes with -EPROTO.
    WrongOpcode,    // not the opcode of the call
    WrongSlot,      // not the slot of the call
    BadStatus,      // negative, but below -VLIBOS_RPC_MAX_ERRNO
    BadResult,      // a success value the opcode cannot return (e.g. read of more than asked)
    DataOnError,    // an error result with data
    DataOutOfSlot,  // data_offset/data_length reach past the slot
    DataTooLong,    // more data than the call's buffer holds
    BadObjectSize,  // an object reply of the wrong size, or a partial array element
};

constexpr size_t kReplyErrorCount = static_cast<size_t>(ReplyError::BadObjectSize) + 1;

const char* describe(ReplyError error);

// True for the errors after which the call is completed with -EPROTO (see above).
constexpr bool completes_call(ReplyError error) { return error >= ReplyError::WrongOpcode; }

struct Completion {
    uint64_t id = 0;
    uint32_t index = 0;         // the call's table entry and data slot
    uint32_t opcode = 0;
    int64_t result = 0;         // as the opcode defines, or -errno
    uint32_t data_offset = 0;   // in the slot, within bounds (0 when data_length is 0)
    uint32_t data_length = 0;
    ReplyError fault = ReplyError::None;
};

// What the master's marshalling knows of a call as it sends it.
struct CallShape {
    uint32_t opcode = 0;
    uint32_t in_length = 0;          // input bytes placed in the slot
    uint32_t counted_in_length = 0;  // bytes of the input buffer a RESULT_COUNT counts (write, send)
    uint32_t out_capacity = 0;       // bytes the caller can take back (OUT_OBJ: ignored)
};

enum class IssueError : uint8_t {
    UnknownOpcode,
    DoesNotFitSlot,   // input or output larger than the slot: the stub must split the call
    TableFull,        // every slot is in use
};

const char* describe(IssueError error);

class ReplyValidator {
public:
    struct Stats {
        uint64_t issued = 0;
        uint64_t completed = 0;                   // valid replies
        uint64_t rejected[kReplyErrorCount] = {}; // by error; [None] unused
    };

    ReplyValidator() = default;
    // `slot_count` and `slot_size` from the master's private copy of the channel header.
    ReplyValidator(const Catalog& catalog, uint32_t slot_count, uint32_t slot_size);

    // Registers a call before its request is published; the id and slot go into the request.
    Result<IssuedCall, IssueError> issue(const CallShape& shape, uint64_t deadline);
    Result<Completion, ReplyError> accept(const vlibos_rpc_response& reply);

    CallTable& calls() { return table_; }
    const CallTable& calls() const { return table_; }
    const Stats& stats() const { return stats_; }
    uint32_t slot_size() const { return slot_size_; }

private:
    ReplyError check(const CallEntry& entry, const vlibos_rpc_call_desc& desc, uint32_t index,
                     const vlibos_rpc_response& reply) const;

    Catalog catalog_;
    CallTable table_;
    uint32_t slot_size_ = 0;
    Stats stats_;
};

} // namespace vlibos::rpc
