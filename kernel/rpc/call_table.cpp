// The master's outstanding-call table. See call_table.hpp for the states.
#include "rpc/call_table.hpp"

namespace vlibos::rpc {

const char* describe(CallError error)
{
    switch (error) {
    case CallError::TableFull: return "every call slot of the channel is in use (Linux owes replies)";
    case CallError::NotPending: return "no pending call has that id";
    }
    return "unknown call-table error";
}

CallTable::CallTable(uint32_t capacity)
    : capacity_(capacity == 0 ? 1 : (capacity > kMaxCalls ? kMaxCalls : capacity))
{
}

Result<IssuedCall, CallError> CallTable::issue(uint32_t opcode, const CallBounds& bounds, uint64_t deadline)
{
    for (uint32_t i = 0; i < capacity_; ++i) {
        CallEntry& e = entries_[i];
        if (e.state != CallState::Free)
            continue;
        // 2^48 calls on one entry cannot happen in practice; wrapping to 1 keeps 0 invalid.
        e.generation = e.generation >= kMaxGeneration ? 1 : e.generation + 1;
        e.state = CallState::Pending;
        e.opcode = opcode;
        e.deadline = deadline;
        e.bounds = bounds;
        return IssuedCall{vlibos_rpc_call_id(i, e.generation), i};
    }
    return fail(CallError::TableFull);
}

Status<CallError> CallTable::abandon(uint64_t id)
{
    uint32_t index = call_index(id);
    if (index >= capacity_)
        return fail(CallError::NotPending);
    CallEntry& e = entries_[index];
    if (e.state != CallState::Pending || e.generation != call_generation(id))
        return fail(CallError::NotPending);
    e.state = CallState::Abandoned;
    return {};
}

size_t CallTable::expire(uint64_t now, uint64_t* ids, size_t max)
{
    size_t expired = 0;
    for (uint32_t i = 0; i < capacity_; ++i) {
        CallEntry& e = entries_[i];
        if (e.state != CallState::Pending || e.deadline > now)
            continue;
        e.state = CallState::Abandoned;
        if (expired < max)
            ids[expired] = vlibos_rpc_call_id(i, e.generation);
        ++expired;
    }
    return expired;
}

size_t CallTable::reset(uint64_t* pending_ids, size_t max)
{
    size_t pending = 0;
    for (uint32_t i = 0; i < capacity_; ++i) {
        CallEntry& e = entries_[i];
        if (e.state == CallState::Pending) {
            if (pending < max)
                pending_ids[pending] = vlibos_rpc_call_id(i, e.generation);
            ++pending;
        }
        e.state = CallState::Free;
    }
    return pending;
}

uint32_t CallTable::count(CallState state) const
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < capacity_; ++i)
        n += entries_[i].state == state ? 1 : 0;
    return n;
}

} // namespace vlibos::rpc
