// Untrusted-peer SPSC rings. See ring.hpp for the rules and the memory ordering.
#include "rpc/ring.hpp"

namespace vlibos::rpc {

const char* describe(RingError error)
{
    switch (error) {
    case RingError::Empty: return "ring empty";
    case RingError::Full: return "ring full";
    case RingError::Corrupt: return "the peer's ring index is impossible (ring poisoned)";
    }
    return "unknown ring error";
}

RingEnd::RingEnd(vlibos_rpc_ring_ctl* control, void* records, uint32_t entries, uint32_t record_size,
                 uint32_t start_index)
    : control_(control), records_(static_cast<uint8_t*>(records)), entries_(entries), record_words_(record_size / 8),
      index_(start_index)
{
}

void RingEnd::reset()
{
    index_ = 0;
    corrupt_ = false;
    __atomic_store_n(&control_->head, 0u, __ATOMIC_RELEASE);
    __atomic_store_n(&control_->tail, 0u, __ATOMIC_RELEASE);
}

uint64_t* RingEnd::record_words(uint32_t index) const
{
    // entries_ is a power of two, so the mask keeps any index inside the ring.
    uint64_t offset = uint64_t{index & (entries_ - 1)} * record_words_ * 8;
    // Records are 8-byte aligned by construction (the ring offsets in wire.h are).
    return reinterpret_cast<uint64_t*>(records_ + offset);
}

Result<uint32_t, RingError> RingEnd::free_entries()
{
    if (corrupt_)
        return fail(RingError::Corrupt);
    // Acquire: the consumer's reads of the entries it hands back finish before we overwrite them.
    uint32_t tail = __atomic_load_n(&control_->tail, __ATOMIC_ACQUIRE);
    uint32_t used = index_ - tail;  // mod 2^32
    if (used > entries_) {
        // The consumer claims entries we never produced (or runs backwards).
        corrupt_ = true;
        return fail(RingError::Corrupt);
    }
    return entries_ - used;
}

Result<uint32_t, RingError> RingEnd::ready_entries()
{
    if (corrupt_)
        return fail(RingError::Corrupt);
    // Acquire: pairs with the producer's release of head, so the records below it are visible.
    uint32_t head = __atomic_load_n(&control_->head, __ATOMIC_ACQUIRE);
    uint32_t ready = head - index_;  // mod 2^32
    if (ready > entries_) {
        // More ready than the ring holds, or head moved backwards past our tail.
        corrupt_ = true;
        return fail(RingError::Corrupt);
    }
    return ready;
}

void RingEnd::write_record(const void* record)
{
    uint64_t* dst = record_words(index_);
    const auto* src = static_cast<const uint8_t*>(record);
    for (uint32_t i = 0; i < record_words_; ++i) {
        uint64_t word;
        __builtin_memcpy(&word, src + uint64_t{i} * 8, sizeof(word));
        __atomic_store_n(&dst[i], word, __ATOMIC_RELAXED);
    }
    ++index_;
    // Release: the record's words are visible before the new head.
    __atomic_store_n(&control_->head, index_, __ATOMIC_RELEASE);
}

void RingEnd::read_record(void* record)
{
    const uint64_t* src = record_words(index_);
    auto* dst = static_cast<uint8_t*>(record);
    for (uint32_t i = 0; i < record_words_; ++i) {
        // One relaxed atomic load per word: the compiler may not re-read it later, so what we
        // validate is what we use.
        uint64_t word = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
        __builtin_memcpy(dst + uint64_t{i} * 8, &word, sizeof(word));
    }
    ++index_;
    // Release: our reads of the entry are done before the producer may reuse it.
    __atomic_store_n(&control_->tail, index_, __ATOMIC_RELEASE);
}

Result<MasterChannel, vlibos_rpc_layout_error> create_master_channel(void* base, uint64_t size, uint32_t request_entries,
                                                                     uint32_t response_entries, uint32_t slot_count,
                                                                     uint32_t slot_size)
{
    MasterChannel channel;
    vlibos_rpc_layout_error error =
        vlibos_rpc_layout(&channel.header, request_entries, response_entries, slot_count, slot_size, size);
    if (error != VLIBOS_RPC_LAYOUT_OK)
        return fail(error);

    channel.base = static_cast<uint8_t*>(base);
    // The header is published once; from here on the master uses only channel.header.
    __builtin_memcpy(channel.base, &channel.header, sizeof(channel.header));
    auto* request_ctl = reinterpret_cast<vlibos_rpc_ring_ctl*>(channel.base + VLIBOS_RPC_REQUEST_CTL_OFFSET);
    auto* response_ctl = reinterpret_cast<vlibos_rpc_ring_ctl*>(channel.base + VLIBOS_RPC_RESPONSE_CTL_OFFSET);
    __builtin_memset(request_ctl, 0, sizeof(*request_ctl));
    __builtin_memset(response_ctl, 0, sizeof(*response_ctl));
    channel.requests = RequestProducer(
        request_ctl, reinterpret_cast<vlibos_rpc_request*>(channel.base + channel.header.request_ring_offset),
        request_entries);
    channel.responses = ResponseConsumer(
        response_ctl, reinterpret_cast<vlibos_rpc_response*>(channel.base + channel.header.response_ring_offset),
        response_entries);
    return channel;
}

} // namespace vlibos::rpc
