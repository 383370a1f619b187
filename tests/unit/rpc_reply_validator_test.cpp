#include "rpc/reply_validator.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "rpc/ring.hpp"
#include "test_random.hpp"

using namespace vlibos::rpc;

namespace {

// A hand-made catalog, independent of calls.def, with one call of each result and buffer kind.
enum : uint32_t { kNull = 1, kOpen = 2, kRead = 3, kWrite = 4, kFstat = 5, kResolve = 6, kRun = 7, kLseek = 8 };

constexpr vlibos_rpc_arg_desc arg(const char* name, uint8_t kind, uint32_t elem = 0)
{
    return vlibos_rpc_arg_desc{name, kind, {0, 0, 0}, elem};
}

vlibos_rpc_call_desc call(const char* name, uint32_t op, uint8_t result, uint8_t count_arg, uint8_t out_arg,
                          std::initializer_list<vlibos_rpc_arg_desc> args)
{
    vlibos_rpc_call_desc d{};
    d.name = name;
    d.opcode = op;
    d.result_kind = result;
    d.count_arg = count_arg;
    d.out_arg = out_arg;
    for (const auto& a : args)
        d.args[d.arg_count++] = a;
    return d;
}

constexpr uint8_t NO = VLIBOS_RPC_NO_ARG;

std::vector<vlibos_rpc_call_desc> test_calls()
{
    std::vector<vlibos_rpc_call_desc> c(9);  // index 0 stays a gap
    c[kNull] = call("null", kNull, VLIBOS_RPC_RESULT_ZERO, NO, NO, {});
    c[kOpen] = call("open", kOpen, VLIBOS_RPC_RESULT_FD, NO, NO,
                    {arg("path", VLIBOS_RPC_ARG_IN_STR, 1), arg("flags", VLIBOS_RPC_ARG_I32)});
    c[kRead] = call("read", kRead, VLIBOS_RPC_RESULT_COUNT, 1, 1,
                    {arg("fd", VLIBOS_RPC_ARG_FD), arg("buf", VLIBOS_RPC_ARG_OUT_BYTES, 1)});
    c[kWrite] = call("write", kWrite, VLIBOS_RPC_RESULT_COUNT, 1, NO,
                     {arg("fd", VLIBOS_RPC_ARG_FD), arg("buf", VLIBOS_RPC_ARG_IN_BYTES, 1)});
    c[kFstat] = call("fstat", kFstat, VLIBOS_RPC_RESULT_ZERO, NO, 1,
                     {arg("fd", VLIBOS_RPC_ARG_FD), arg("st", VLIBOS_RPC_ARG_OUT_OBJ, sizeof(vlibos_rpc_stat))});
    c[kResolve] = call("resolve", kResolve, VLIBOS_RPC_RESULT_COUNT, 1, 1,
                       {arg("host", VLIBOS_RPC_ARG_IN_STR, 1),
                        arg("addrs", VLIBOS_RPC_ARG_OUT_ARRAY, sizeof(vlibos_rpc_sockaddr))});
    c[kRun] = call("run", kRun, VLIBOS_RPC_RESULT_WAIT_STATUS, NO, 1,
                   {arg("path", VLIBOS_RPC_ARG_IN_STR, 1), arg("output", VLIBOS_RPC_ARG_OUT_BYTES, 1)});
    c[kLseek] = call("lseek", kLseek, VLIBOS_RPC_RESULT_OFFSET, NO, NO,
                     {arg("fd", VLIBOS_RPC_ARG_FD), arg("offset", VLIBOS_RPC_ARG_I64), arg("whence", VLIBOS_RPC_ARG_I32)});
    return c;
}

constexpr uint32_t kSlots = 4;
constexpr uint32_t kSlotSize = 8192;

struct Fixture {
    std::vector<vlibos_rpc_call_desc> calls = test_calls();
    ReplyValidator v{Catalog{calls.data(), static_cast<uint32_t>(calls.size())}, kSlots, kSlotSize};

    IssuedCall issue(uint32_t op, uint32_t out = 0, uint32_t in = 0, uint64_t deadline = 1000)
    {
        CallShape s;
        s.opcode = op;
        s.in_length = in;
        s.counted_in_length = in;
        s.out_capacity = out;
        auto r = v.issue(s, deadline);
        REQUIRE(r.ok());
        return r.value();
    }
};

vlibos_rpc_response reply(const IssuedCall& c, uint32_t op, int64_t result, uint32_t offset = 0, uint32_t length = 0)
{
    vlibos_rpc_response r{};
    r.call_id = c.id;
    r.opcode = op;
    r.data_slot = c.index;
    r.result = result;
    r.data_offset = offset;
    r.data_length = length;
    return r;
}

// The fault a reply earns for a freshly issued call of `op`.
ReplyError fault_of(uint32_t op, uint32_t out, uint32_t in, int64_t result, uint32_t offset, uint32_t length)
{
    Fixture f;
    IssuedCall c = f.issue(op, out, in);
    auto done = f.v.accept(reply(c, op, result, offset, length));
    REQUIRE(done.ok());  // a reply to a pending call always completes it
    CHECK(f.v.calls().entry(c.index).state == CallState::Free);
    if (done.value().fault != ReplyError::None) {
        CHECK(done.value().result == -VLIBOS_RPC_EPROTO);
        CHECK(done.value().data_length == 0);
    }
    return done.value().fault;
}

} // namespace

TEST_CASE("rpc calls: issue takes the lowest free slot; ids carry a growing generation", "[rpc][validator]")
{
    Fixture f;
    IssuedCall a = f.issue(kNull);
    IssuedCall b = f.issue(kNull);
    CHECK(a.index == 0);
    CHECK(b.index == 1);
    CHECK(call_index(a.id) == 0);
    CHECK(call_generation(a.id) == 1);
    CHECK(a.id != 0);
    REQUIRE(f.v.accept(reply(a, kNull, 0)).ok());
    IssuedCall c = f.issue(kNull);
    CHECK(c.index == 0);
    CHECK(call_generation(c.id) == 2);
    CHECK(c.id != a.id);
    f.issue(kNull);
    f.issue(kNull);
    CallShape s;
    s.opcode = kNull;
    CHECK(f.v.issue(s, 0).error() == IssueError::TableFull);
    CHECK(f.v.calls().count(CallState::Pending) == kSlots);
    CHECK(f.v.stats().issued == 5);
}

TEST_CASE("rpc calls: issue refuses unknown opcodes and data that does not fit a slot", "[rpc][validator]")
{
    Fixture f;
    CallShape s;
    for (uint32_t op : {0u, 9u, 1000u, 0xffff'ffffu}) {
        s.opcode = op;
        CHECK(f.v.issue(s, 0).error() == IssueError::UnknownOpcode);
    }
    s.opcode = kRead;
    s.out_capacity = kSlotSize + 1;
    CHECK(f.v.issue(s, 0).error() == IssueError::DoesNotFitSlot);
    s.opcode = kWrite;
    s.out_capacity = 0;
    s.in_length = kSlotSize + 1;
    CHECK(f.v.issue(s, 0).error() == IssueError::DoesNotFitSlot);
    s.in_length = 10;
    s.counted_in_length = 11;
    CHECK(f.v.issue(s, 0).error() == IssueError::DoesNotFitSlot);
    CHECK(f.v.calls().count(CallState::Free) == kSlots);
    CHECK(std::string(describe(IssueError::TableFull)).find("in use") != std::string::npos);
}

TEST_CASE("rpc validator: valid replies of each kind", "[rpc][validator]")
{
    Fixture f;
    IssuedCall c = f.issue(kRead, 100);
    auto done = f.v.accept(reply(c, kRead, 60, 8, 60));
    REQUIRE(done.ok());
    CHECK(done.value().fault == ReplyError::None);
    CHECK(done.value().result == 60);
    CHECK(done.value().data_offset == 8);
    CHECK(done.value().data_length == 60);
    CHECK(done.value().index == c.index);
    CHECK(done.value().opcode == kRead);

    CHECK(fault_of(kRead, 100, 0, 0, 0, 0) == ReplyError::None);          // end of file
    CHECK(fault_of(kRead, 100, 0, 100, kSlotSize - 100, 100) == ReplyError::None);  // the very end of the slot
    CHECK(fault_of(kWrite, 0, 50, 50, 0, 0) == ReplyError::None);
    CHECK(fault_of(kWrite, 0, 50, 7, 0, 0) == ReplyError::None);           // short write
    CHECK(fault_of(kOpen, 0, 10, 0x7fff'ffff, 0, 0) == ReplyError::None);
    CHECK(fault_of(kFstat, 0, 0, 0, 0, sizeof(vlibos_rpc_stat)) == ReplyError::None);
    CHECK(fault_of(kResolve, 3 * sizeof(vlibos_rpc_sockaddr), 5, 2, 0, 2 * sizeof(vlibos_rpc_sockaddr)) ==
          ReplyError::None);
    CHECK(fault_of(kRun, 4096, 5, 0x100, 0, 4096) == ReplyError::None);
    CHECK(fault_of(kLseek, 0, 0, INT64_MAX, 0, 0) == ReplyError::None);
    CHECK(fault_of(kNull, 0, 0, 0, 0, 0) == ReplyError::None);

    // Errors: any -errno, without data.
    for (int64_t e : {int64_t{-1}, int64_t{-2}, int64_t{-110}, int64_t{-VLIBOS_RPC_MAX_ERRNO}})
        CHECK(fault_of(kRead, 100, 0, e, 0, 0) == ReplyError::None);
    CHECK(f.v.stats().completed == 1);
}

TEST_CASE("rpc validator: malformed replies complete their call with -EPROTO", "[rpc][validator]")
{
    // Status outside the errno range.
    CHECK(fault_of(kNull, 0, 0, -VLIBOS_RPC_MAX_ERRNO - 1, 0, 0) == ReplyError::BadStatus);
    CHECK(fault_of(kNull, 0, 0, INT64_MIN, 0, 0) == ReplyError::BadStatus);
    // Error with data.
    CHECK(fault_of(kRead, 100, 0, -5, 0, 10) == ReplyError::DataOnError);
    CHECK(fault_of(kRead, 100, 0, -5, 16, 0) == ReplyError::DataOnError);
    // Results the call cannot return.
    CHECK(fault_of(kNull, 0, 0, 1, 0, 0) == ReplyError::BadResult);
    CHECK(fault_of(kOpen, 0, 10, 0x8000'0000, 0, 0) == ReplyError::BadResult);
    CHECK(fault_of(kRead, 100, 0, 101, 0, 100) == ReplyError::BadResult);   // more than asked
    CHECK(fault_of(kRead, 100, 0, 50, 0, 49) == ReplyError::BadResult);    // count != data returned
    CHECK(fault_of(kRead, 100, 0, INT64_MAX, 0, 100) == ReplyError::BadResult);
    CHECK(fault_of(kWrite, 0, 50, 51, 0, 0) == ReplyError::BadResult);     // wrote more than given
    CHECK(fault_of(kRun, 4096, 5, 0x10000, 0, 0) == ReplyError::BadResult);
    CHECK(fault_of(kResolve, 3 * sizeof(vlibos_rpc_sockaddr), 5, 4, 0, 0) == ReplyError::BadResult);
    // Data outside the slot, including offset + length wrapping 32 bits.
    CHECK(fault_of(kRead, 100, 0, 10, kSlotSize - 5, 10) == ReplyError::DataOutOfSlot);
    CHECK(fault_of(kRead, 100, 0, 10, kSlotSize + 1, 0) == ReplyError::DataOutOfSlot);
    CHECK(fault_of(kRead, 100, 0, 2, 0xffff'ffff, 2) == ReplyError::DataOutOfSlot);
    CHECK(fault_of(kRead, 100, 0, 0, 0, 0xffff'ffff) == ReplyError::DataOutOfSlot);
    // More data than the call's buffer, or data for a call without an output buffer.
    CHECK(fault_of(kRead, 100, 0, 101, 0, 101) == ReplyError::DataTooLong);
    CHECK(fault_of(kWrite, 0, 50, 1, 0, 1) == ReplyError::DataTooLong);
    CHECK(fault_of(kNull, 0, 0, 0, 0, 8) == ReplyError::DataTooLong);
    CHECK(fault_of(kRun, 4096, 5, 0, 0, 4097) == ReplyError::DataTooLong);
    // Objects of the wrong size; a partial array element.
    CHECK(fault_of(kFstat, 0, 0, 0, 0, 0) == ReplyError::BadObjectSize);
    CHECK(fault_of(kFstat, 0, 0, 0, 0, sizeof(vlibos_rpc_stat) + 1) == ReplyError::DataTooLong);
    CHECK(fault_of(kResolve, 3 * sizeof(vlibos_rpc_sockaddr), 5, 1, 0, sizeof(vlibos_rpc_sockaddr) + 1) ==
          ReplyError::BadResult);

    // Wrong opcode or slot.
    Fixture f;
    IssuedCall c = f.issue(kRead, 100);
    auto done = f.v.accept(reply(c, kWrite, 0));
    REQUIRE(done.ok());
    CHECK(done.value().fault == ReplyError::WrongOpcode);
    CHECK(done.value().opcode == kRead);  // the call's, not the reply's
    c = f.issue(kRead, 100);
    vlibos_rpc_response r = reply(c, kRead, 0);
    r.data_slot = c.index + 1;
    CHECK(f.v.accept(r).value().fault == ReplyError::WrongSlot);
    CHECK(f.v.stats().rejected[static_cast<size_t>(ReplyError::WrongSlot)] == 1);
    CHECK(f.v.stats().completed == 0);
    CHECK(completes_call(ReplyError::WrongSlot));
    CHECK(!completes_call(ReplyError::Late));
}

TEST_CASE("rpc validator: output capacity rounds to whole objects", "[rpc][validator]")
{
    Fixture f;
    // 100 bytes hold 4 sockaddrs (96 bytes): the 5th element's bytes are not the caller's.
    IssuedCall c = f.issue(kResolve, 100, 5);
    CHECK(f.v.calls().entry(c.index).bounds.out_capacity == 4 * sizeof(vlibos_rpc_sockaddr));
    CHECK(f.v.calls().entry(c.index).bounds.count_limit == 4);
    IssuedCall s = f.issue(kFstat, 12345);
    CHECK(f.v.calls().entry(s.index).bounds.out_capacity == sizeof(vlibos_rpc_stat));
}

TEST_CASE("rpc validator: unknown, stale, duplicate and late replies are dropped", "[rpc][validator]")
{
    Fixture f;
    IssuedCall a = f.issue(kNull);
    IssuedCall b = f.issue(kNull);

    // Unknown: index beyond the table, generation 0, a generation never issued.
    CHECK(f.v.accept(reply(IssuedCall{vlibos_rpc_call_id(kSlots, 1), kSlots}, kNull, 0)).error() ==
          ReplyError::UnknownCall);
    CHECK(f.v.accept(reply(IssuedCall{vlibos_rpc_call_id(0xffff, 1), 0xffff}, kNull, 0)).error() ==
          ReplyError::UnknownCall);
    CHECK(f.v.accept(reply(IssuedCall{vlibos_rpc_call_id(0, 0), 0}, kNull, 0)).error() == ReplyError::UnknownCall);
    CHECK(f.v.accept(reply(IssuedCall{vlibos_rpc_call_id(0, 2), 0}, kNull, 0)).error() == ReplyError::UnknownCall);
    CHECK(f.v.accept(reply(IssuedCall{vlibos_rpc_call_id(2, 1), 2}, kNull, 0)).error() == ReplyError::UnknownCall);
    CHECK(f.v.calls().count(CallState::Pending) == 2);

    // Duplicate: a second (even well-formed) reply to a completed call.
    REQUIRE(f.v.accept(reply(a, kNull, 0)).ok());
    CHECK(f.v.accept(reply(a, kNull, 0)).error() == ReplyError::Duplicate);
    // Stale: the slot went to a new call; the old id no longer matches it.
    IssuedCall a2 = f.issue(kRead, 64);
    CHECK(a2.index == a.index);
    CHECK(f.v.accept(reply(a, kNull, 0)).error() == ReplyError::StaleCall);
    CHECK(f.v.calls().entry(a2.index).state == CallState::Pending);

    // Late: the call was abandoned; its slot stays lent to Linux until the late reply comes.
    REQUIRE(f.v.calls().abandon(b.id).ok());
    CHECK(f.v.calls().abandon(b.id).error() == CallError::NotPending);
    IssuedCall c = f.issue(kNull);
    CHECK(c.index == 2);  // not b's slot
    CHECK(f.v.accept(reply(b, kNull, 0)).error() == ReplyError::Late);
    CHECK(f.v.calls().entry(b.index).state == CallState::Free);
    CHECK(f.v.accept(reply(b, kNull, 0)).error() == ReplyError::Duplicate);
    CHECK(f.v.stats().rejected[static_cast<size_t>(ReplyError::UnknownCall)] == 5);
    CHECK(f.v.stats().rejected[static_cast<size_t>(ReplyError::Late)] == 1);
    CHECK(std::string(describe(ReplyError::Late)).find("timed out") != std::string::npos);
}

TEST_CASE("rpc calls: expiry, a hung Linux fills the table, reset frees it", "[rpc][validator]")
{
    Fixture f;
    IssuedCall early = f.issue(kNull, 0, 0, 100);
    IssuedCall late = f.issue(kNull, 0, 0, 300);
    uint64_t ids[4] = {};
    CHECK(f.v.calls().expire(99, ids, 4) == 0);
    CHECK(f.v.calls().expire(100, ids, 4) == 1);
    CHECK(ids[0] == early.id);
    CHECK(f.v.calls().entry(early.index).state == CallState::Abandoned);
    CHECK(f.v.calls().entry(late.index).state == CallState::Pending);
    CHECK(f.v.calls().expire(1000, nullptr, 0) == 1);  // counted even without room for ids

    // Linux never answers: abandoned calls keep their slots, new calls fail fast.
    f.issue(kNull, 0, 0, 5000);
    f.issue(kNull, 0, 0, 5000);
    CHECK(f.v.calls().expire(5000, ids, 1) == 2);
    CallShape s;
    s.opcode = kNull;
    CHECK(f.v.issue(s, 0).error() == IssueError::TableFull);
    CHECK(f.v.calls().count(CallState::Abandoned) == 4);

    // The channel is reset (Linux restarted): every slot is back, old replies stay harmless.
    IssuedCall fresh;
    CHECK(f.v.calls().reset(ids, 4) == 0);  // nothing was pending
    CHECK(f.v.calls().count(CallState::Free) == kSlots);
    fresh = f.issue(kNull);
    CHECK(call_generation(fresh.id) == 2);
    CHECK(f.v.accept(reply(early, kNull, 0)).error() == ReplyError::StaleCall);
    CHECK(f.v.accept(reply(late, kNull, 0)).error() == ReplyError::Duplicate);  // slot 1: not reused yet
    f.issue(kRead, 8);
    CHECK(f.v.calls().reset(ids, 4) == 2);
    CHECK(std::string(describe(CallError::TableFull)).find("in use") != std::string::npos);
}

TEST_CASE("rpc catalog: inconsistent descriptions are refused", "[rpc][validator]")
{
    auto calls = test_calls();
    Catalog good{calls.data(), static_cast<uint32_t>(calls.size())};
    REQUIRE(check_catalog(good).ok());
    CHECK(good.find(0) == nullptr);
    CHECK(good.find(9) == nullptr);
    CHECK(good.find(kRead)->name == std::string("read"));
    CHECK(Catalog{}.find(1) == nullptr);

    auto broken = [&](auto mutate) {
        auto c = test_calls();
        mutate(c);
        Catalog cat{c.data(), static_cast<uint32_t>(c.size())};
        auto status = check_catalog(cat);
        REQUIRE(!status.ok());
        // A validator given a broken catalog refuses every call instead of trusting it.
        ReplyValidator v(cat, 2, 4096);
        CallShape s;
        s.opcode = kNull;
        CHECK(v.issue(s, 0).error() == IssueError::UnknownOpcode);
        return status.error();
    };
    CHECK(broken([](auto& c) { c[kRead].opcode = kWrite; }) == CatalogError::OpcodeMismatch);
    CHECK(broken([](auto& c) { c[kRead].arg_count = 6; }) == CatalogError::TooManyArgs);
    CHECK(broken([](auto& c) { c[kRead].args[0].kind = 99; }) == CatalogError::BadArgKind);
    CHECK(broken([](auto& c) { c[kRead].result_kind = 42; }) == CatalogError::BadResultKind);
    CHECK(broken([](auto& c) { c[kRead].count_arg = 0; }) == CatalogError::BadCountArg);   // a scalar
    CHECK(broken([](auto& c) { c[kRead].count_arg = 4; }) == CatalogError::BadCountArg);   // past the args
    CHECK(broken([](auto& c) { c[kNull].count_arg = 0; }) == CatalogError::BadCountArg);   // not counted
    CHECK(broken([](auto& c) { c[kFstat].result_kind = VLIBOS_RPC_RESULT_COUNT; c[kFstat].count_arg = 1; }) ==
          CatalogError::BadCountArg);  // an object is not counted
    CHECK(broken([](auto& c) { c[kRead].out_arg = NO; }) == CatalogError::BadOutArg);
    CHECK(broken([](auto& c) { c[kRun].args[0].kind = VLIBOS_RPC_ARG_OUT_BYTES; }) == CatalogError::BadOutArg);
    CHECK(broken([](auto& c) { c[kRead].args[1].elem_size = 0; }) == CatalogError::BadElemSize);
    CHECK(broken([](auto& c) { c[kRead].args[0].elem_size = 4; }) == CatalogError::BadElemSize);
    CHECK(std::string(describe(CatalogError::BadOutArg)).find("output") != std::string::npos);
}

TEST_CASE("rpc validator: a call's whole trip through the channel, with a hostile reply ring", "[rpc][validator]")
{
    std::vector<uint64_t> memory(64 * 1024 / 8);
    auto* base = reinterpret_cast<uint8_t*>(memory.data());
    auto made = create_master_channel(base, 64 * 1024, 4, 4, kSlots, kSlotSize);
    REQUIRE(made.ok());
    MasterChannel master = made.value();
    auto calls = test_calls();
    ReplyValidator v(Catalog{calls.data(), static_cast<uint32_t>(calls.size())}, master.header.slot_count,
                     master.header.slot_size);

    // Linux's ends, built from the header it reads (checked first).
    vlibos_rpc_header h;
    std::memcpy(&h, base, sizeof(h));
    REQUIRE(vlibos_rpc_header_check(&h, 64 * 1024) == VLIBOS_RPC_LAYOUT_OK);
    auto* req_ctl = reinterpret_cast<vlibos_rpc_ring_ctl*>(base + VLIBOS_RPC_REQUEST_CTL_OFFSET);
    auto* resp_ctl = reinterpret_cast<vlibos_rpc_ring_ctl*>(base + VLIBOS_RPC_RESPONSE_CTL_OFFSET);
    RequestConsumer linux_requests(req_ctl, reinterpret_cast<vlibos_rpc_request*>(base + h.request_ring_offset),
                                   h.request_entries);
    ResponseProducer linux_responses(resp_ctl, reinterpret_cast<vlibos_rpc_response*>(base + h.response_ring_offset),
                                     h.response_entries);

    // The master issues a read of 32 bytes.
    CallShape shape;
    shape.opcode = kRead;
    shape.out_capacity = 32;
    auto issued = v.issue(shape, 1000);
    REQUIRE(issued.ok());
    vlibos_rpc_request rq{};
    rq.call_id = issued.value().id;
    rq.opcode = kRead;
    rq.data_slot = issued.value().index;
    rq.args[0] = 3;
    rq.args[1] = 32;
    REQUIRE(master.requests.push(rq).ok());

    // Linux serves it: 11 bytes at offset 16 of the slot, then sends a duplicate.
    auto got = linux_requests.pop();
    REQUIRE(got.ok());
    CHECK(got.value().call_id == rq.call_id);
    uint8_t* slot = base + h.slots_offset + uint64_t{got.value().data_slot} * h.slot_size;
    std::memcpy(slot + 16, "hello world", 11);
    vlibos_rpc_response rs{};
    rs.call_id = got.value().call_id;
    rs.opcode = got.value().opcode;
    rs.data_slot = got.value().data_slot;
    rs.result = 11;
    rs.data_offset = 16;
    rs.data_length = 11;
    REQUIRE(linux_responses.push(rs).ok());
    REQUIRE(linux_responses.push(rs).ok());

    auto first = master.responses.pop();
    REQUIRE(first.ok());
    auto done = v.accept(first.value());
    REQUIRE(done.ok());
    REQUIRE(done.value().fault == ReplyError::None);
    CHECK(std::memcmp(master.slot(done.value().index) + done.value().data_offset, "hello world",
                      done.value().data_length) == 0);
    CHECK(v.accept(master.responses.pop().value()).error() == ReplyError::Duplicate);

    // Then Linux claims 1000 responses are ready: the ring is poisoned, no record is taken.
    __atomic_store_n(&resp_ctl->head, 1002u, __ATOMIC_RELEASE);
    CHECK(master.responses.pop().error() == RingError::Corrupt);
    CHECK(v.calls().count(CallState::Free) == kSlots);
}

TEST_CASE("rpc validator: random hostile replies never break the table's invariants", "[rpc][validator][random]")
{
    vlibos::test::Lcg rng{0x6006'1e5};
    auto calls = test_calls();
    for (int trial = 0; trial < 100; ++trial) {
        auto slots = static_cast<uint32_t>(1 + rng.below(6));
        ReplyValidator v(Catalog{calls.data(), static_cast<uint32_t>(calls.size())}, slots, kSlotSize);
        std::vector<IssuedCall> live;
        std::vector<uint32_t> capacity(slots, 0);
        for (int step = 0; step < 300; ++step) {
            uint64_t what = rng.below(10);
            if (what < 3) {
                CallShape s;
                s.opcode = static_cast<uint32_t>(rng.below(10));
                s.in_length = static_cast<uint32_t>(rng.below(kSlotSize + 2));
                s.counted_in_length = static_cast<uint32_t>(rng.below(s.in_length + 1));
                s.out_capacity = static_cast<uint32_t>(rng.below(kSlotSize + 2));
                auto r = v.issue(s, rng.below(100));
                if (r.ok()) {
                    live.push_back(r.value());
                    capacity[r.value().index] = v.calls().entry(r.value().index).bounds.out_capacity;
                }
            } else if (what == 3) {
                v.calls().expire(rng.below(100), nullptr, 0);
            } else {
                // A reply with random fields, often aimed at a live call so it gets past the id.
                vlibos_rpc_response r{};
                r.call_id = !live.empty() && rng.below(4) != 0 ? live[rng.below(live.size())].id : rng.next();
                r.opcode = rng.below(2) ? v.calls().entry(call_index(r.call_id) % slots).opcode
                                        : static_cast<uint32_t>(rng.next());
                r.data_slot = rng.below(2) ? call_index(r.call_id) : static_cast<uint32_t>(rng.below(8));
                uint64_t k = rng.below(4);
                r.result = k == 0 ? -static_cast<int64_t>(rng.below(5000))
                         : k == 1 ? static_cast<int64_t>(rng.below(200))
                                  : static_cast<int64_t>(rng.next() << 31);
                r.data_offset = static_cast<uint32_t>(rng.below(2) ? rng.below(kSlotSize + 10) : rng.next());
                r.data_length = static_cast<uint32_t>(rng.below(2) ? rng.below(300) : rng.next());
                uint32_t index = call_index(r.call_id);
                CallState before = index < slots ? v.calls().entry(index).state : CallState::Free;
                auto done = v.accept(r);
                if (done.ok()) {
                    const Completion& c = done.value();
                    REQUIRE(before == CallState::Pending);
                    REQUIRE(c.index == index);
                    REQUIRE(uint64_t{c.data_offset} + c.data_length <= kSlotSize);
                    REQUIRE(c.data_length <= capacity[index]);
                    REQUIRE(c.result >= -VLIBOS_RPC_MAX_ERRNO);
                    if (c.fault != ReplyError::None)
                        REQUIRE((c.result == -VLIBOS_RPC_EPROTO && c.data_length == 0));
                } else {
                    REQUIRE(!completes_call(done.error()));
                }
                if (index < slots && (done.ok() || done.error() == ReplyError::Late))
                    REQUIRE(v.calls().entry(index).state == CallState::Free);
            }
            uint32_t total = v.calls().count(CallState::Free) + v.calls().count(CallState::Pending) +
                             v.calls().count(CallState::Abandoned);
            REQUIRE(total == slots);
        }
    }
}
