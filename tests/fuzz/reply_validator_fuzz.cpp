// libFuzzer target: the master's RPC reply path with every byte chosen by the fuzzer, as a
// hostile Linux would. The input is a script of operations (issue calls, feed response records,
// scribble over the response ring, expire, abandon, reset); a shadow model of the call table
// checks after each one that
//   - accepted data lies inside the call's slot and buffer, results are in range, and a fault
//     completes the call with -EPROTO and no data;
//   - only the call a reply names changes state, and only by an allowed transition;
//   - the response ring never hands out a record while its peer's index is impossible.
// A broken invariant traps (libFuzzer saves the input). Build: tests/fuzz/CMakeLists.txt.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rpc/reply_validator.hpp"
#include "rpc/ring.hpp"
#include "vlibos/rpc_calls.h"

using namespace vlibos::rpc;

namespace {

struct Input {
    Input(const uint8_t* d, size_t n) : data(d), size(n) {}

    const uint8_t* data;
    size_t size;
    size_t at = 0;

    bool empty() const { return at >= size; }
    uint8_t byte() { return at < size ? data[at++] : 0; }
    uint32_t u32()
    {
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i)
            v = (v << 8) | byte();
        return v;
    }
    void bytes(void* out, size_t n)
    {
        auto* o = static_cast<uint8_t*>(out);
        for (size_t i = 0; i < n; ++i)
            o[i] = byte();
    }
};

void require(bool ok)
{
    if (!ok)
        __builtin_trap();
}

struct Shadow {
    CallState state = CallState::Free;
    uint64_t generation = 0;
    uint64_t deadline = 0;
    uint32_t out_capacity = 0;
    uint64_t count_limit = 0;
};

// The reply rules of docs/rpc.md restated independently: what a valid success must look like.
bool plausible_success(const vlibos_rpc_call_desc& d, const Shadow& call, const Completion& c)
{
    auto result = static_cast<uint64_t>(c.result);
    switch (d.result_kind) {
    case VLIBOS_RPC_RESULT_ZERO: if (result != 0) return false; break;
    case VLIBOS_RPC_RESULT_FD: if (result > 0x7fff'ffffu) return false; break;
    case VLIBOS_RPC_RESULT_WAIT_STATUS: if (result > 0xffffu) return false; break;
    case VLIBOS_RPC_RESULT_COUNT:
        if (result > call.count_limit)
            return false;
        if (d.count_arg == d.out_arg && c.data_length != result * d.args[d.out_arg].elem_size)
            return false;
        break;
    default: break;
    }
    if (d.out_arg == VLIBOS_RPC_NO_ARG)
        return c.data_length == 0;
    const vlibos_rpc_arg_desc& out = d.args[d.out_arg];
    if (out.kind == VLIBOS_RPC_ARG_OUT_OBJ)
        return c.data_length == out.elem_size;
    return c.data_length % out.elem_size == 0;
}

constexpr uint32_t kRingEntries = 4;

struct Harness {
    Catalog catalog{vlibos_rpc_calls, VLIBOS_RPC_OP_LIMIT};
    ReplyValidator validator;
    Shadow shadow[VLIBOS_RPC_MAX_SLOTS];
    uint32_t slot_size;
    // A response ring of its own (the validator does not care where records come from).
    alignas(64) vlibos_rpc_ring_ctl ctl{};
    vlibos_rpc_response records[kRingEntries]{};
    ResponseConsumer ring{&ctl, records, kRingEntries};

    Harness(uint32_t slots, uint32_t slot_bytes) : validator(catalog, slots, slot_bytes), slot_size(slot_bytes) {}

    void check_table()
    {
        const CallTable& t = validator.calls();
        for (uint32_t i = 0; i < t.capacity(); ++i) {
            require(t.entry(i).state == shadow[i].state);
            require(t.entry(i).generation == shadow[i].generation);
        }
    }

    // An id that gets past the id checks more often than random bytes would.
    uint64_t pick_id(Input& in)
    {
        uint8_t how = in.byte();
        uint32_t index = in.byte() % (validator.calls().capacity() + 1);
        uint64_t generation = index < VLIBOS_RPC_MAX_SLOTS ? shadow[index].generation : 1;
        switch (how % 4) {
        case 0: return vlibos_rpc_call_id(index, generation);
        case 1: return vlibos_rpc_call_id(index, generation - 1);
        case 2: return vlibos_rpc_call_id(index, generation + 1);
        default: return (uint64_t{in.u32()} << 32) | in.u32();
        }
    }

    void issue(Input& in)
    {
        CallShape shape;
        shape.opcode = in.byte() % (VLIBOS_RPC_OP_LIMIT + 2);
        shape.in_length = in.u32() % (slot_size + 2);
        shape.counted_in_length = in.u32() % (shape.in_length + 2);
        shape.out_capacity = in.u32() % (slot_size + 2);
        uint64_t deadline = in.byte();
        auto issued = validator.issue(shape, deadline);
        if (!issued)
            return;
        uint32_t index = issued.value().index;
        require(index < validator.calls().capacity());
        require(shadow[index].state == CallState::Free);
        shadow[index].state = CallState::Pending;
        shadow[index].generation = call_generation(issued.value().id);
        require(shadow[index].generation != 0);
        shadow[index].deadline = deadline;
        shadow[index].out_capacity = validator.calls().entry(index).bounds.out_capacity;
        shadow[index].count_limit = validator.calls().entry(index).bounds.count_limit;
        require(shadow[index].out_capacity <= slot_size);
    }

    void reply(const vlibos_rpc_response& r)
    {
        uint32_t index = call_index(r.call_id);
        bool named = index < validator.calls().capacity();
        Shadow before = named ? shadow[index] : Shadow{};
        bool current = named && call_generation(r.call_id) == before.generation && before.generation != 0;

        auto done = validator.accept(r);
        if (done) {
            const Completion& c = done.value();
            require(current && before.state == CallState::Pending && c.index == index && c.id == r.call_id);
            require(c.result >= -VLIBOS_RPC_MAX_ERRNO);
            require(uint64_t{c.data_offset} + c.data_length <= slot_size);
            require(c.data_length <= before.out_capacity);
            if (c.fault != ReplyError::None) {
                require(completes_call(c.fault) && c.result == -VLIBOS_RPC_EPROTO && c.data_length == 0);
            } else if (c.result < 0) {
                require(c.data_length == 0 && c.data_offset == 0);
            } else {
                const vlibos_rpc_call_desc* d = catalog.find(c.opcode);
                require(d != nullptr && plausible_success(*d, before, c));
            }
            shadow[index].state = CallState::Free;
        } else {
            ReplyError e = done.error();
            require(!completes_call(e) && e != ReplyError::None);
            if (e == ReplyError::Late) {
                require(current && before.state == CallState::Abandoned);
                shadow[index].state = CallState::Free;
            }
            if (e == ReplyError::Duplicate)
                require(current && before.state == CallState::Free);
        }
        check_table();
    }

    void scribble_ring(Input& in)
    {
        // The peer writes any head and any records; then we drain what the ring will give.
        uint32_t head = in.u32();
        __atomic_store_n(&ctl.head, head, __ATOMIC_RELAXED);
        in.bytes(records, sizeof(records));
        for (uint32_t n = 0; n < kRingEntries + 1; ++n) {
            uint32_t before = ring.index();
            auto r = ring.pop();
            if (!r) {
                require(ring.index() == before);
                require(r.error() != RingError::Full);
                if (r.error() == RingError::Corrupt)
                    require(head - before > kRingEntries);
                break;
            }
            require(head - before >= 1 && head - before <= kRingEntries);
            require(ring.index() == before + 1);
            reply(r.value());
        }
        if (ring.corrupt())
            ring.reset();
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    Input in{data, size};
    uint32_t slots = 1 + in.byte() % 8u;
    uint32_t slot_size = VLIBOS_RPC_SLOT_ALIGN * (1 + in.byte() % 2u);
    Harness harness(slots, slot_size);
    Harness* h = &harness;

    while (!in.empty()) {
        switch (in.byte() % 7) {
        case 0:
        case 1:
            h->issue(in);
            break;
        case 2: {
            vlibos_rpc_response r;
            in.bytes(&r, sizeof(r));
            // Flag bits make a plausible reply likely, so the checks past the id are reached.
            uint8_t aim = in.byte();
            if (aim & 1)
                r.call_id = h->pick_id(in);
            uint32_t index = call_index(r.call_id) % h->validator.calls().capacity();
            if (aim & 2)
                r.opcode = h->validator.calls().entry(index).opcode;
            if (aim & 4)
                r.data_slot = call_index(r.call_id);
            if (aim & 8)
                r.result = static_cast<int16_t>(r.result);  // around -MAX_ERRNO and small counts
            if (aim & 16) {
                r.data_offset &= 0x1fff;
                r.data_length &= 0x1fff;
            }
            if (aim & 32)
                r.data_offset = r.data_length = 0;
            h->reply(r);
            break;
        }
        case 3: {
            uint64_t now = in.byte();
            uint64_t ids[4];
            size_t n = h->validator.calls().expire(now, ids, 4);
            size_t expected = 0;
            for (uint32_t i = 0; i < h->validator.calls().capacity(); ++i) {
                Shadow& s = h->shadow[i];
                if (s.state == CallState::Pending && s.deadline <= now) {
                    s.state = CallState::Abandoned;
                    if (expected < 4)
                        require(ids[expected] == vlibos_rpc_call_id(i, s.generation));
                    ++expected;
                }
            }
            require(n == expected);
            h->check_table();
            break;
        }
        case 4: {
            uint64_t id = h->pick_id(in);
            uint32_t index = call_index(id);
            bool pending = index < h->validator.calls().capacity() && h->shadow[index].state == CallState::Pending &&
                           h->shadow[index].generation == call_generation(id);
            require(h->validator.calls().abandon(id).ok() == pending);
            if (pending)
                h->shadow[index].state = CallState::Abandoned;
            h->check_table();
            break;
        }
        case 5: {
            uint64_t ids[VLIBOS_RPC_MAX_SLOTS];
            size_t pending = h->validator.calls().reset(ids, VLIBOS_RPC_MAX_SLOTS);
            size_t expected = 0;
            for (uint32_t i = 0; i < h->validator.calls().capacity(); ++i) {
                expected += h->shadow[i].state == CallState::Pending ? 1 : 0;
                h->shadow[i].state = CallState::Free;
            }
            require(pending == expected);
            h->check_table();
            break;
        }
        default:
            h->scribble_ring(in);
            break;
        }
    }
    return 0;
}
