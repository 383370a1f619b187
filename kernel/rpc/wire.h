/* The inter-VM RPC wire format: the one contract between the monitor (C++), the Linux driver
 * (C, built against the guest kernel tree) and vlibosd (C). docs/rpc.md has the picture.
 *
 * A channel is one shared region:
 *
 *   offset 0                       struct vlibos_rpc_header (written once by the master)
 *   VLIBOS_RPC_REQUEST_CTL_OFFSET  struct vlibos_rpc_ring_ctl for the request ring
 *   VLIBOS_RPC_RESPONSE_CTL_OFFSET struct vlibos_rpc_ring_ctl for the response ring
 *   request_ring_offset            request_entries  x struct vlibos_rpc_request
 *   response_ring_offset           response_entries x struct vlibos_rpc_response
 *   slots_offset                   slot_count x slot_size bytes of call data
 *
 * The master produces requests and consumes responses; Linux does the opposite. Every field is
 * little-endian (both sides are x86-64) and of fixed size; the _Static_asserts below pin the
 * layout so a C and a C++ compiler cannot disagree.
 *
 * Trust: Linux can rewrite any byte of the region at any time. The master never reads back what
 * it owns (the header, its own ring index); it keeps private copies and validates each value
 * Linux owns (the other ring index, response records, reply data) once, after copying it out.
 *
 * No casts and no narrowing in the inline code: this header is compiled with the monitor's
 * -Wold-style-cast -Wconversion as well as by C compilers. */
#ifndef VLIBOS_RPC_WIRE_H
#define VLIBOS_RPC_WIRE_H

#ifdef __KERNEL__
#include <linux/types.h> /* the Linux driver: no libc headers */
#else
#include <stdint.h>
#endif

#ifdef __cplusplus
extern "C" {
#define VLIBOS_RPC_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define VLIBOS_RPC_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

#define VLIBOS_RPC_MAGIC 0x43505256u /* "VRPC" as little-endian bytes */
#define VLIBOS_RPC_VERSION 1u        /* bumped on any incompatible layout change */

/* Bounds on the sizes chosen at channel creation. Ring sizes are powers of two so that a
 * free-running index maps to an entry with a mask; slots are whole pages so they could later be
 * mapped elsewhere (zero copy) without moving data. */
#define VLIBOS_RPC_MIN_RING_ENTRIES 2u
#define VLIBOS_RPC_MAX_RING_ENTRIES 1024u
#define VLIBOS_RPC_MIN_SLOTS 1u
#define VLIBOS_RPC_MAX_SLOTS 256u             /* also the most calls in flight per channel */
#define VLIBOS_RPC_SLOT_ALIGN 4096u
#define VLIBOS_RPC_MAX_SLOT_SIZE (1024u * 1024u)

#define VLIBOS_RPC_MAX_ARGS 5u
/* Linux's MAX_ERRNO: a result in [-4095, -1] is -errno; anything below is malformed. */
#define VLIBOS_RPC_MAX_ERRNO 4095
/* The master completes a call with -EPROTO when Linux's reply for it is malformed. */
#define VLIBOS_RPC_EPROTO 71
#define VLIBOS_RPC_ETIMEDOUT 110

/* Fixed offsets of page 0: each ring index on a cache line of its own, so the two sides never
 * write the same line. */
#define VLIBOS_RPC_CACHE_LINE 64u
#define VLIBOS_RPC_REQUEST_CTL_OFFSET 256u
#define VLIBOS_RPC_RESPONSE_CTL_OFFSET 384u
#define VLIBOS_RPC_RINGS_OFFSET 4096u

/* Call ids: bits 15:0 = the call's index in the master's call table (also its data slot),
 * bits 63:16 = that entry's generation, which starts at 1 and grows with every call issued on
 * it. An id therefore names one call, once; 0 is never a valid id. */
#define VLIBOS_RPC_ID_INDEX_BITS 16u
#define VLIBOS_RPC_ID_INDEX_MASK 0xffffu

struct vlibos_rpc_header {
    uint32_t magic;             /* VLIBOS_RPC_MAGIC */
    uint32_t version;           /* VLIBOS_RPC_VERSION */
    uint32_t header_size;       /* sizeof(struct vlibos_rpc_header) */
    uint32_t request_entries;   /* power of two in [MIN_RING_ENTRIES, MAX_RING_ENTRIES] */
    uint32_t response_entries;  /* same bounds */
    uint32_t slot_count;        /* [MIN_SLOTS, MAX_SLOTS] */
    uint32_t slot_size;         /* multiple of SLOT_ALIGN, at most MAX_SLOT_SIZE */
    uint32_t reserved0;         /* 0 */
    uint64_t request_ring_offset;
    uint64_t response_ring_offset;
    uint64_t slots_offset;      /* SLOT_ALIGN aligned */
    uint64_t total_size;        /* bytes of the whole channel */
    uint64_t reserved[8];       /* 0 */
};

/* One ring's indices. Both count entries ever produced/consumed and wrap at 2^32; the entry of
 * index i is i & (entries - 1). head - tail (mod 2^32) is the fill, never above entries. */
struct vlibos_rpc_ring_ctl {
    uint32_t head;              /* written by the producer only */
    uint8_t pad0[VLIBOS_RPC_CACHE_LINE - 4];
    uint32_t tail;              /* written by the consumer only */
    uint8_t pad1[VLIBOS_RPC_CACHE_LINE - 4];
};

/* Master -> Linux. Scalar arguments are stored as the value (signed ones sign-extended). An
 * input buffer (string, bytes, object) is copied into the call's slot and its argument is
 * (offset << 32) | length within the slot; an output buffer's argument is its capacity in bytes
 * (at most the slot size). calls.def gives each opcode's arguments. */
struct vlibos_rpc_request {
    uint64_t call_id;
    uint32_t opcode;            /* enum vlibos_rpc_opcode (generated from calls.def) */
    uint32_t flags;             /* 0 */
    uint32_t data_slot;         /* == call_id & VLIBOS_RPC_ID_INDEX_MASK */
    uint32_t data_length;       /* bytes of input data in the slot, from offset 0 */
    uint64_t args[VLIBOS_RPC_MAX_ARGS];
};

/* Linux -> master. */
struct vlibos_rpc_response {
    uint64_t call_id;           /* the request's, unchanged */
    uint32_t opcode;            /* the request's, unchanged */
    uint32_t data_slot;         /* the request's, unchanged */
    int64_t result;             /* >= 0 as the opcode defines, or -errno in [-MAX_ERRNO, -1] */
    uint32_t data_offset;       /* reply data in the slot: [offset, offset + length) */
    uint32_t data_length;       /* 0 on error, and for calls without an output buffer */
};

/* Objects passed through slots (argument kinds IN_OBJ, OUT_OBJ, OUT_ARRAY). */
struct vlibos_rpc_stat {
    uint64_t dev;
    uint64_t ino;
    uint32_t mode;
    uint32_t nlink;
    uint32_t uid;
    uint32_t gid;
    uint64_t rdev;
    int64_t size;
    int64_t blksize;
    int64_t blocks;
    int64_t atime_ns;           /* nanoseconds since the Unix epoch */
    int64_t mtime_ns;
    int64_t ctime_ns;
};

struct vlibos_rpc_timespec {
    int64_t sec;                /* since the Unix epoch (CLOCK_REALTIME) */
    int64_t nsec;               /* [0, 1e9) */
};

/* An IPv4 or IPv6 socket address, in host byte order except addr (network order, as on the
 * wire). family is Linux's AF_INET (2) or AF_INET6 (10). */
struct vlibos_rpc_sockaddr {
    uint16_t family;
    uint16_t port;
    uint32_t scope_id;          /* IPv6 only */
    uint8_t addr[16];           /* IPv4 uses the first 4 bytes */
};

/* One record of a directory listing (getdents): this header, then name_length bytes of name
 * and a NUL, padded so record_length is a multiple of 8. */
struct vlibos_rpc_dirent {
    uint64_t ino;
    uint16_t record_length;
    uint8_t type;               /* Linux's DT_* */
    uint8_t name_length;
    uint32_t reserved;
};

VLIBOS_RPC_STATIC_ASSERT(sizeof(struct vlibos_rpc_header) == 128, "header layout");
VLIBOS_RPC_STATIC_ASSERT(__builtin_offsetof(struct vlibos_rpc_header, request_ring_offset) == 32, "header layout");
VLIBOS_RPC_STATIC_ASSERT(__builtin_offsetof(struct vlibos_rpc_header, total_size) == 56, "header layout");
VLIBOS_RPC_STATIC_ASSERT(sizeof(struct vlibos_rpc_ring_ctl) == 2 * VLIBOS_RPC_CACHE_LINE, "ring control layout");
VLIBOS_RPC_STATIC_ASSERT(__builtin_offsetof(struct vlibos_rpc_ring_ctl, tail) == VLIBOS_RPC_CACHE_LINE, "ring control layout");
VLIBOS_RPC_STATIC_ASSERT(sizeof(struct vlibos_rpc_request) == 64, "request layout");
VLIBOS_RPC_STATIC_ASSERT(__builtin_offsetof(struct vlibos_rpc_request, args) == 24, "request layout");
VLIBOS_RPC_STATIC_ASSERT(sizeof(struct vlibos_rpc_response) == 32, "response layout");
VLIBOS_RPC_STATIC_ASSERT(__builtin_offsetof(struct vlibos_rpc_response, result) == 16, "response layout");
VLIBOS_RPC_STATIC_ASSERT(__builtin_offsetof(struct vlibos_rpc_response, data_length) == 28, "response layout");
VLIBOS_RPC_STATIC_ASSERT(sizeof(struct vlibos_rpc_stat) == 88, "stat layout");
VLIBOS_RPC_STATIC_ASSERT(sizeof(struct vlibos_rpc_timespec) == 16, "timespec layout");
VLIBOS_RPC_STATIC_ASSERT(sizeof(struct vlibos_rpc_sockaddr) == 24, "sockaddr layout");
VLIBOS_RPC_STATIC_ASSERT(sizeof(struct vlibos_rpc_dirent) == 16, "dirent layout");
VLIBOS_RPC_STATIC_ASSERT(VLIBOS_RPC_RESPONSE_CTL_OFFSET >= VLIBOS_RPC_REQUEST_CTL_OFFSET + sizeof(struct vlibos_rpc_ring_ctl),
                         "ring controls overlap");
VLIBOS_RPC_STATIC_ASSERT(VLIBOS_RPC_RINGS_OFFSET >= VLIBOS_RPC_RESPONSE_CTL_OFFSET + sizeof(struct vlibos_rpc_ring_ctl),
                         "ring control overlaps the rings");
VLIBOS_RPC_STATIC_ASSERT(VLIBOS_RPC_MAX_SLOTS - 1u <= VLIBOS_RPC_ID_INDEX_MASK, "slot index must fit a call id");

/* ---- The interface description (not in shared memory): what calls.def says of each opcode,
 * generated into vlibos/rpc_calls.h as vlibos_rpc_calls[], indexed by opcode. ---- */

enum vlibos_rpc_arg_kind {
    VLIBOS_RPC_ARG_NONE = 0,
    VLIBOS_RPC_ARG_I32,         /* scalars */
    VLIBOS_RPC_ARG_U32,
    VLIBOS_RPC_ARG_I64,
    VLIBOS_RPC_ARG_U64,
    VLIBOS_RPC_ARG_FD,          /* int32 file or socket descriptor of the Linux side */
    VLIBOS_RPC_ARG_IN_STR,      /* NUL-terminated string, copied into the slot with its NUL */
    VLIBOS_RPC_ARG_IN_BYTES,    /* (pointer, length) copied into the slot */
    VLIBOS_RPC_ARG_IN_OBJ,      /* one object of elem_size bytes copied into the slot */
    VLIBOS_RPC_ARG_OUT_BYTES,   /* (pointer, capacity): reply data of at most capacity bytes */
    VLIBOS_RPC_ARG_OUT_OBJ,     /* one object of elem_size bytes, exactly, on success */
    VLIBOS_RPC_ARG_OUT_ARRAY    /* (pointer, count): whole objects of elem_size bytes */
};

/* What a successful result may be. A result in [-MAX_ERRNO, -1] is always allowed. */
enum vlibos_rpc_result_kind {
    VLIBOS_RPC_RESULT_INVALID = 0, /* no such opcode */
    VLIBOS_RPC_RESULT_ZERO,        /* exactly 0 */
    VLIBOS_RPC_RESULT_FD,          /* [0, INT32_MAX] */
    VLIBOS_RPC_RESULT_COUNT,       /* elements of the buffer count_arg: at most its capacity; for
                                      an output buffer also data_length == result * elem_size */
    VLIBOS_RPC_RESULT_OFFSET,      /* any value >= 0 */
    VLIBOS_RPC_RESULT_WAIT_STATUS  /* [0, 0xffff], a Linux wait status */
};

#define VLIBOS_RPC_NO_ARG 0xffu

struct vlibos_rpc_arg_desc {
    const char* name;
    uint8_t kind;               /* enum vlibos_rpc_arg_kind */
    uint8_t reserved[3];
    uint32_t elem_size;         /* buffers: bytes per element (1 for bytes and strings) */
};

struct vlibos_rpc_call_desc {
    const char* name;           /* NULL: no call has this opcode */
    uint32_t opcode;
    uint8_t arg_count;
    uint8_t result_kind;        /* enum vlibos_rpc_result_kind */
    uint8_t count_arg;          /* RESULT_COUNT: the buffer argument counted, else NO_ARG */
    uint8_t out_arg;            /* the one output buffer argument, or NO_ARG */
    struct vlibos_rpc_arg_desc args[VLIBOS_RPC_MAX_ARGS];
};

/* ---- Channel layout arithmetic, shared by both sides so they cannot disagree. ---- */

enum vlibos_rpc_layout_error {
    VLIBOS_RPC_LAYOUT_OK = 0,
    VLIBOS_RPC_LAYOUT_BAD_RING,     /* ring entries not a power of two within bounds */
    VLIBOS_RPC_LAYOUT_BAD_SLOTS,    /* slot count out of bounds */
    VLIBOS_RPC_LAYOUT_BAD_SLOT_SIZE,/* not a SLOT_ALIGN multiple in (0, MAX_SLOT_SIZE] */
    VLIBOS_RPC_LAYOUT_TOO_SMALL,    /* the region cannot hold the channel */
    VLIBOS_RPC_LAYOUT_BAD_HEADER    /* magic, version, size, reserved fields or offsets differ */
};

static inline int vlibos_rpc_ring_entries_valid(uint32_t entries)
{
    return entries >= VLIBOS_RPC_MIN_RING_ENTRIES && entries <= VLIBOS_RPC_MAX_RING_ENTRIES &&
           (entries & (entries - 1u)) == 0u;
}

static inline uint64_t vlibos_rpc_align_up(uint64_t value, uint64_t align)
{
    return (value + align - 1u) / align * align;
}

/* Fills *h for the given sizes (every bound checked; all arithmetic in 64 bits, which the
 * bounds keep far from overflow) and checks it fits in region_size bytes. */
static inline enum vlibos_rpc_layout_error vlibos_rpc_layout(struct vlibos_rpc_header* h, uint32_t request_entries,
                                                             uint32_t response_entries, uint32_t slot_count,
                                                             uint32_t slot_size, uint64_t region_size)
{
    uint64_t request_ring = VLIBOS_RPC_RINGS_OFFSET;
    uint64_t response_ring;
    uint64_t slots;
    uint32_t i;

    if (!vlibos_rpc_ring_entries_valid(request_entries) || !vlibos_rpc_ring_entries_valid(response_entries))
        return VLIBOS_RPC_LAYOUT_BAD_RING;
    if (slot_count < VLIBOS_RPC_MIN_SLOTS || slot_count > VLIBOS_RPC_MAX_SLOTS)
        return VLIBOS_RPC_LAYOUT_BAD_SLOTS;
    if (slot_size == 0u || slot_size > VLIBOS_RPC_MAX_SLOT_SIZE || slot_size % VLIBOS_RPC_SLOT_ALIGN != 0u)
        return VLIBOS_RPC_LAYOUT_BAD_SLOT_SIZE;

    response_ring = request_ring + sizeof(struct vlibos_rpc_request) * request_entries;
    slots = vlibos_rpc_align_up(response_ring + sizeof(struct vlibos_rpc_response) * response_entries,
                                VLIBOS_RPC_SLOT_ALIGN);

    h->magic = VLIBOS_RPC_MAGIC;
    h->version = VLIBOS_RPC_VERSION;
    h->header_size = sizeof(struct vlibos_rpc_header);
    h->request_entries = request_entries;
    h->response_entries = response_entries;
    h->slot_count = slot_count;
    h->slot_size = slot_size;
    h->reserved0 = 0u;
    h->request_ring_offset = request_ring;
    h->response_ring_offset = response_ring;
    h->slots_offset = slots;
    h->total_size = slots + 1ull * slot_count * slot_size;
    for (i = 0u; i < sizeof(h->reserved) / sizeof(h->reserved[0]); ++i)
        h->reserved[i] = 0u;
    if (h->total_size > region_size)
        return VLIBOS_RPC_LAYOUT_TOO_SMALL;
    return VLIBOS_RPC_LAYOUT_OK;
}

/* The Linux side's check of a header it reads (from a private copy): exactly what
 * vlibos_rpc_layout() gives for the sizes it names, and within the region it was given. */
static inline enum vlibos_rpc_layout_error vlibos_rpc_header_check(const struct vlibos_rpc_header* h,
                                                                   uint64_t region_size)
{
    struct vlibos_rpc_header expected;
    enum vlibos_rpc_layout_error error;
    uint32_t i;

    if (h->magic != VLIBOS_RPC_MAGIC || h->version != VLIBOS_RPC_VERSION ||
        h->header_size != sizeof(struct vlibos_rpc_header))
        return VLIBOS_RPC_LAYOUT_BAD_HEADER;
    error = vlibos_rpc_layout(&expected, h->request_entries, h->response_entries, h->slot_count, h->slot_size,
                              region_size);
    if (error != VLIBOS_RPC_LAYOUT_OK)
        return error;
    if (h->reserved0 != 0u || h->request_ring_offset != expected.request_ring_offset ||
        h->response_ring_offset != expected.response_ring_offset || h->slots_offset != expected.slots_offset ||
        h->total_size != expected.total_size)
        return VLIBOS_RPC_LAYOUT_BAD_HEADER;
    for (i = 0u; i < sizeof(h->reserved) / sizeof(h->reserved[0]); ++i)
        if (h->reserved[i] != 0u)
            return VLIBOS_RPC_LAYOUT_BAD_HEADER;
    return VLIBOS_RPC_LAYOUT_OK;
}

static inline uint64_t vlibos_rpc_call_id(uint32_t index, uint64_t generation)
{
    return (generation << VLIBOS_RPC_ID_INDEX_BITS) | (index & VLIBOS_RPC_ID_INDEX_MASK);
}

#ifdef __cplusplus
}
#endif

#undef VLIBOS_RPC_STATIC_ASSERT

#endif
