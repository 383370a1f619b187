#include "rpc/ring.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "test_random.hpp"

using namespace vlibos::rpc;

namespace {

// A channel-sized, 4 KiB-aligned piece of "shared memory".
struct Region {
    explicit Region(size_t bytes) : words((bytes + 7) / 8 + 512, 0) {}
    uint8_t* base()
    {
        auto p = reinterpret_cast<uintptr_t>(words.data());
        return reinterpret_cast<uint8_t*>((p + 4095) & ~uintptr_t{4095});
    }
    std::vector<uint64_t> words;
};

// A ring of four requests with both ends, as the master and Linux would hold them.
struct RequestRing {
    explicit RequestRing(uint32_t start = 0)
        : producer(&ctl, records, 4, start), consumer(&ctl, records, 4, start)
    {
        ctl.head = start;
        ctl.tail = start;
    }
    alignas(64) vlibos_rpc_ring_ctl ctl{};
    vlibos_rpc_request records[4]{};
    RequestProducer producer;
    RequestConsumer consumer;
};

vlibos_rpc_request request(uint64_t id)
{
    vlibos_rpc_request r{};
    r.call_id = id;
    r.opcode = static_cast<uint32_t>(id * 3);
    r.data_length = static_cast<uint32_t>(id);
    for (uint32_t i = 0; i < VLIBOS_RPC_MAX_ARGS; ++i)
        r.args[i] = id * 100 + i;
    return r;
}

} // namespace

TEST_CASE("rpc wire: the channel layout for given sizes", "[rpc][ring]")
{
    vlibos_rpc_header h{};
    REQUIRE(vlibos_rpc_layout(&h, 64, 128, 16, 8192, 1 << 20) == VLIBOS_RPC_LAYOUT_OK);
    CHECK(h.magic == VLIBOS_RPC_MAGIC);
    CHECK(std::memcmp(&h.magic, "VRPC", 4) == 0);
    CHECK(h.version == VLIBOS_RPC_VERSION);
    CHECK(h.header_size == sizeof(vlibos_rpc_header));
    CHECK(h.request_ring_offset == 4096);
    CHECK(h.response_ring_offset == 4096 + 64 * 64);
    CHECK(h.slots_offset == 12288);  // 8192 + 128 * 32 = 12288, already page aligned
    CHECK(h.total_size == 12288 + 16 * 8192);
    CHECK(vlibos_rpc_header_check(&h, h.total_size) == VLIBOS_RPC_LAYOUT_OK);

    // Largest channel: every offset still far inside 64 bits, slots page aligned.
    REQUIRE(vlibos_rpc_layout(&h, 1024, 1024, 256, VLIBOS_RPC_MAX_SLOT_SIZE, ~uint64_t{0}) == VLIBOS_RPC_LAYOUT_OK);
    CHECK(h.slots_offset % VLIBOS_RPC_SLOT_ALIGN == 0);
    CHECK(h.total_size == h.slots_offset + 256ull * VLIBOS_RPC_MAX_SLOT_SIZE);
    CHECK(h.response_ring_offset + 1024 * sizeof(vlibos_rpc_response) <= h.slots_offset);
}

TEST_CASE("rpc wire: sizes outside the documented bounds are refused", "[rpc][ring]")
{
    vlibos_rpc_header h{};
    for (uint32_t entries : {0u, 1u, 3u, 6u, 1000u, 2048u, 0x8000'0000u})
        CHECK(vlibos_rpc_layout(&h, entries, 4, 1, 4096, ~uint64_t{0}) == VLIBOS_RPC_LAYOUT_BAD_RING);
    CHECK(vlibos_rpc_layout(&h, 4, 3, 1, 4096, ~uint64_t{0}) == VLIBOS_RPC_LAYOUT_BAD_RING);
    CHECK(vlibos_rpc_layout(&h, 4, 4, 0, 4096, ~uint64_t{0}) == VLIBOS_RPC_LAYOUT_BAD_SLOTS);
    CHECK(vlibos_rpc_layout(&h, 4, 4, 257, 4096, ~uint64_t{0}) == VLIBOS_RPC_LAYOUT_BAD_SLOTS);
    for (uint32_t size : {0u, 100u, 4095u, 4097u, VLIBOS_RPC_MAX_SLOT_SIZE + 4096u, 0xffff'f000u})
        CHECK(vlibos_rpc_layout(&h, 4, 4, 1, size, ~uint64_t{0}) == VLIBOS_RPC_LAYOUT_BAD_SLOT_SIZE);
    REQUIRE(vlibos_rpc_layout(&h, 4, 4, 2, 4096, ~uint64_t{0}) == VLIBOS_RPC_LAYOUT_OK);
    CHECK(vlibos_rpc_layout(&h, 4, 4, 2, 4096, h.total_size - 1) == VLIBOS_RPC_LAYOUT_TOO_SMALL);
}

TEST_CASE("rpc wire: Linux's header check refuses every tampered field", "[rpc][ring]")
{
    vlibos_rpc_header good{};
    REQUIRE(vlibos_rpc_layout(&good, 8, 8, 4, 4096, 1 << 20) == VLIBOS_RPC_LAYOUT_OK);
    CHECK(vlibos_rpc_header_check(&good, good.total_size - 1) == VLIBOS_RPC_LAYOUT_TOO_SMALL);

    // Flip one bit of each 32-bit word in turn: the result is never accepted as valid.
    for (size_t word = 0; word < sizeof(good) / 4; ++word) {
        for (uint32_t bit : {0u, 5u, 31u}) {
            vlibos_rpc_header h = good;
            uint32_t w;
            std::memcpy(&w, reinterpret_cast<uint8_t*>(&h) + 4 * word, 4);
            w ^= 1u << bit;
            std::memcpy(reinterpret_cast<uint8_t*>(&h) + 4 * word, &w, 4);
            INFO("word " << word << " bit " << bit);
            CHECK(vlibos_rpc_header_check(&h, 1 << 20) != VLIBOS_RPC_LAYOUT_OK);
        }
    }
}

TEST_CASE("rpc ring: create_master_channel publishes the header and empty rings", "[rpc][ring]")
{
    Region region(64 * 1024);
    std::memset(region.base(), 0xa5, 64 * 1024);
    auto made = create_master_channel(region.base(), 64 * 1024, 8, 16, 4, 8192);
    REQUIRE(made.ok());
    MasterChannel& ch = made.value();
    vlibos_rpc_header seen;
    std::memcpy(&seen, region.base(), sizeof(seen));
    CHECK(vlibos_rpc_header_check(&seen, 64 * 1024) == VLIBOS_RPC_LAYOUT_OK);
    CHECK(seen.slot_count == 4);
    CHECK(ch.slot(0) == region.base() + seen.slots_offset);
    CHECK(ch.slot(3) == region.base() + seen.slots_offset + 3 * 8192);
    CHECK(ch.slot(4) == nullptr);
    CHECK(ch.requests.space().value() == 8);
    CHECK(ch.responses.pop().error() == RingError::Empty);

    // Linux rewriting the header afterwards changes nothing the master uses.
    std::memset(region.base(), 0xff, sizeof(vlibos_rpc_header));
    CHECK(ch.header.slot_size == 8192);
    CHECK(ch.slot(1) == region.base() + seen.slots_offset + 8192);

    CHECK(create_master_channel(region.base(), 64 * 1024, 8, 16, 8, 8192).error() == VLIBOS_RPC_LAYOUT_TOO_SMALL);
    CHECK(create_master_channel(region.base(), 64 * 1024, 7, 16, 1, 4096).error() == VLIBOS_RPC_LAYOUT_BAD_RING);
}

TEST_CASE("rpc ring: records go through in order; full and empty", "[rpc][ring]")
{
    RequestRing ring;
    CHECK(ring.consumer.pop().error() == RingError::Empty);
    for (uint64_t i = 1; i <= 4; ++i)
        REQUIRE(ring.producer.push(request(i)).ok());
    CHECK(ring.producer.push(request(5)).error() == RingError::Full);
    CHECK(ring.consumer.available().value() == 4);
    for (uint64_t i = 1; i <= 4; ++i) {
        auto r = ring.consumer.pop();
        REQUIRE(r.ok());
        CHECK(std::memcmp(&r.value(), &ring.records[(i - 1) % 4], sizeof(vlibos_rpc_request)) == 0);
        CHECK(r.value().call_id == i);
        CHECK(r.value().args[4] == i * 100 + 4);
    }
    CHECK(ring.consumer.pop().error() == RingError::Empty);
    CHECK(ring.producer.space().value() == 4);
    CHECK(ring.ctl.head == 4);
    CHECK(ring.ctl.tail == 4);
}

TEST_CASE("rpc ring: the free-running indices cross 2^32", "[rpc][ring]")
{
    RequestRing ring(0xffff'fffdu);
    std::deque<uint64_t> expected;
    uint64_t next = 1;
    // Enough traffic to wrap both the entry index and the 32-bit counters several times.
    for (int round = 0; round < 50; ++round) {
        while (ring.producer.space().value() < 3) {
            REQUIRE(ring.consumer.pop().value().call_id == expected.front());
            expected.pop_front();
        }
        for (int i = 0; i < 3; ++i) {
            REQUIRE(ring.producer.push(request(next)).ok());
            expected.push_back(next++);
        }
        for (int i = 0; i < 2; ++i) {
            auto r = ring.consumer.pop();
            REQUIRE(r.ok());
            CHECK(r.value().call_id == expected.front());
            expected.pop_front();
        }
    }
    CHECK(ring.ctl.head < 0x1000u);  // wrapped
    CHECK(ring.ctl.head - ring.ctl.tail == expected.size());
}

TEST_CASE("rpc ring: the consumer refuses an impossible head, and stays refused", "[rpc][ring]")
{
    for (uint32_t bad_head : {5u, 6u, 0x8000'0000u, 0xffff'ffffu}) {
        RequestRing ring;
        REQUIRE(ring.producer.push(request(1)).ok());
        __atomic_store_n(&ring.ctl.head, bad_head, __ATOMIC_RELAXED);  // Linux lies
        INFO("head " << bad_head);
        CHECK(ring.consumer.pop().error() == RingError::Corrupt);
        CHECK(ring.consumer.corrupt());
        CHECK(ring.consumer.index() == 0);
        CHECK(ring.ctl.tail == 0);  // nothing consumed, nothing published
        // Even a plausible head afterwards is not believed: the ring is poisoned.
        ring.ctl.head = 1;
        CHECK(ring.consumer.pop().error() == RingError::Corrupt);
        CHECK(ring.consumer.available().error() == RingError::Corrupt);
        ring.consumer.reset();
        CHECK(!ring.consumer.corrupt());
        CHECK(ring.consumer.pop().error() == RingError::Empty);
    }

    // A head that moves backwards past the consumer's tail.
    RequestRing ring;
    for (uint64_t i = 1; i <= 3; ++i)
        REQUIRE(ring.producer.push(request(i)).ok());
    REQUIRE(ring.consumer.pop().ok());
    REQUIRE(ring.consumer.pop().ok());
    ring.ctl.head = 1;
    CHECK(ring.consumer.pop().error() == RingError::Corrupt);
}

TEST_CASE("rpc ring: the producer refuses an impossible tail and never reads back its head", "[rpc][ring]")
{
    for (uint32_t bad_tail : {3u, 0xffff'fffbu, 0x8000'0000u}) {
        RequestRing ring;
        REQUIRE(ring.producer.push(request(1)).ok());
        REQUIRE(ring.producer.push(request(2)).ok());
        // tail 3 claims an entry never produced; 2 - 0xfffffffb = 7 entries in use > 4.
        ring.ctl.tail = bad_tail;
        INFO("tail " << bad_tail);
        CHECK(ring.producer.push(request(3)).error() == RingError::Corrupt);
        CHECK(ring.producer.space().error() == RingError::Corrupt);
        CHECK(ring.ctl.head == 2);
    }

    RequestRing ring;
    REQUIRE(ring.producer.push(request(1)).ok());
    ring.ctl.head = 0xdead'beef;  // Linux scribbles over the master's index
    REQUIRE(ring.producer.push(request(2)).ok());
    CHECK(ring.ctl.head == 2);  // republished from the private copy
    CHECK(ring.records[1].call_id == 2);
    // A tail the consumer moves ahead legitimately frees entries.
    ring.ctl.tail = 2;
    CHECK(ring.producer.space().value() == 4);
}

TEST_CASE("rpc ring: a popped record is a private copy", "[rpc][ring]")
{
    RequestRing ring;
    REQUIRE(ring.producer.push(request(7)).ok());
    auto r = ring.consumer.pop();
    REQUIRE(r.ok());
    // Linux rewrites the entry right after we copied it: our copy does not change.
    std::memset(&ring.records[0], 0xee, sizeof(ring.records[0]));
    CHECK(r.value().call_id == 7);
    CHECK(r.value().args[0] == 700);

    // A torn record (head published before the record is complete) comes out as whatever
    // was there: the consumer copies it without judging it; the validator does that.
    ring.records[1] = request(9);
    ring.records[1].opcode = 0xffff'ffff;
    ring.ctl.head = 2;
    auto torn = ring.consumer.pop();
    REQUIRE(torn.ok());
    CHECK(torn.value().opcode == 0xffff'ffff);
    CHECK(ring.ctl.tail == 2);
}

TEST_CASE("rpc ring: random traffic against a model, with random hostile indices", "[rpc][ring][random]")
{
    vlibos::test::Lcg rng{0x5eed'0006};
    for (int trial = 0; trial < 200; ++trial) {
        auto start = static_cast<uint32_t>(rng.next() << 8);  // anywhere, often near 2^32
        RequestRing ring(start);
        std::deque<uint64_t> model;
        uint64_t next = 1;
        bool poisoned = false;
        for (int step = 0; step < 200 && !poisoned; ++step) {
            switch (rng.below(10)) {
            case 0: case 1: case 2: case 3: {
                auto pushed = ring.producer.push(request(next));
                CHECK(pushed.ok() == (model.size() < 4));
                if (pushed.ok())
                    model.push_back(next);
                ++next;
                break;
            }
            case 4: case 5: case 6: case 7: {
                auto popped = ring.consumer.pop();
                CHECK(popped.ok() == !model.empty());
                if (popped.ok()) {
                    CHECK(popped.value().call_id == model.front());
                    CHECK(popped.value().args[2] == model.front() * 100 + 2);
                    model.pop_front();
                }
                break;
            }
            case 8: {
                // The hostile consumer writes a random tail: believed only if it is possible.
                uint32_t head = ring.producer.index();
                uint32_t tail = rng.below(2) ? head - static_cast<uint32_t>(rng.below(6))
                                             : static_cast<uint32_t>(rng.next());
                ring.ctl.tail = tail;
                auto space = ring.producer.space();
                if (head - tail <= 4) {
                    REQUIRE(space.ok());
                    CHECK(space.value() == 4 - (head - tail));
                } else {
                    CHECK(space.error() == RingError::Corrupt);
                    poisoned = true;
                }
                ring.ctl.tail = ring.consumer.index();
                break;
            }
            default: {
                // The hostile producer writes a random head.
                uint32_t tail = ring.consumer.index();
                uint32_t head = rng.below(2) ? tail + static_cast<uint32_t>(rng.below(6))
                                             : static_cast<uint32_t>(rng.next());
                ring.ctl.head = head;
                auto ready = ring.consumer.available();
                if (head - tail <= 4) {
                    REQUIRE(ready.ok());
                    CHECK(ready.value() == head - tail);
                } else {
                    CHECK(ready.error() == RingError::Corrupt);
                    poisoned = true;
                }
                // Back to the honest producer's view, so the model still holds.
                ring.ctl.head = ring.producer.index();
                break;
            }
            }
        }
    }
    CHECK(std::string(describe(RingError::Corrupt)).find("poisoned") != std::string::npos);
}
