// Validation of Linux's RPC replies. See reply_validator.hpp; docs/rpc.md lists the rules.
#include "rpc/reply_validator.hpp"

namespace vlibos::rpc {

namespace {

constexpr int64_t kMaxFd = 0x7fff'ffff;
constexpr int64_t kMaxWaitStatus = 0xffff;

bool is_scalar(uint8_t kind)
{
    return kind >= VLIBOS_RPC_ARG_I32 && kind <= VLIBOS_RPC_ARG_FD;
}

bool is_input(uint8_t kind)
{
    return kind >= VLIBOS_RPC_ARG_IN_STR && kind <= VLIBOS_RPC_ARG_IN_OBJ;
}

bool is_output(uint8_t kind)
{
    return kind >= VLIBOS_RPC_ARG_OUT_BYTES && kind <= VLIBOS_RPC_ARG_OUT_ARRAY;
}

} // namespace

const vlibos_rpc_call_desc* Catalog::find(uint32_t opcode) const
{
    if (calls == nullptr || opcode >= count)
        return nullptr;
    const vlibos_rpc_call_desc* desc = &calls[opcode];
    if (desc->name == nullptr || desc->result_kind == VLIBOS_RPC_RESULT_INVALID)
        return nullptr;
    return desc;
}

const char* describe(CatalogError error)
{
    switch (error) {
    case CatalogError::OpcodeMismatch: return "a catalog entry is not at its opcode's index";
    case CatalogError::TooManyArgs: return "a call has more than VLIBOS_RPC_MAX_ARGS arguments";
    case CatalogError::BadArgKind: return "an argument kind is unknown";
    case CatalogError::BadResultKind: return "a result kind is unknown";
    case CatalogError::BadCountArg: return "a counted result does not name a buffer argument";
    case CatalogError::BadOutArg: return "out_arg does not name the call's one output buffer";
    case CatalogError::BadElemSize: return "a buffer argument has no element size, or a scalar has one";
    }
    return "unknown catalog error";
}

Status<CatalogError> check_catalog(const Catalog& catalog)
{
    for (uint32_t op = 0; op < catalog.count; ++op) {
        const vlibos_rpc_call_desc& d = catalog.calls[op];
        if (d.name == nullptr)
            continue;  // a gap in the opcode numbers
        if (d.opcode != op)
            return fail(CatalogError::OpcodeMismatch);
        if (d.arg_count > VLIBOS_RPC_MAX_ARGS)
            return fail(CatalogError::TooManyArgs);
        if (d.result_kind == VLIBOS_RPC_RESULT_INVALID || d.result_kind > VLIBOS_RPC_RESULT_WAIT_STATUS)
            return fail(CatalogError::BadResultKind);
        uint8_t out = VLIBOS_RPC_NO_ARG;
        for (uint8_t a = 0; a < d.arg_count; ++a) {
            uint8_t kind = d.args[a].kind;
            if (!is_scalar(kind) && !is_input(kind) && !is_output(kind))
                return fail(CatalogError::BadArgKind);
            if (is_scalar(kind) != (d.args[a].elem_size == 0))
                return fail(CatalogError::BadElemSize);
            if (is_output(kind)) {
                if (out != VLIBOS_RPC_NO_ARG)
                    return fail(CatalogError::BadOutArg);
                out = a;
            }
        }
        if (d.out_arg != out)
            return fail(CatalogError::BadOutArg);
        bool counted = d.result_kind == VLIBOS_RPC_RESULT_COUNT;
        if (counted != (d.count_arg != VLIBOS_RPC_NO_ARG))
            return fail(CatalogError::BadCountArg);
        if (counted) {
            if (d.count_arg >= d.arg_count)
                return fail(CatalogError::BadCountArg);
            uint8_t kind = d.args[d.count_arg].kind;
            // A count of objects makes no sense: an object is one.
            if (is_scalar(kind) || kind == VLIBOS_RPC_ARG_IN_OBJ || kind == VLIBOS_RPC_ARG_OUT_OBJ)
                return fail(CatalogError::BadCountArg);
        }
    }
    return {};
}

const char* describe(ReplyError error)
{
    switch (error) {
    case ReplyError::None: return "valid reply";
    case ReplyError::UnknownCall: return "reply to a call never issued";
    case ReplyError::StaleCall: return "reply to an earlier call of a reused slot";
    case ReplyError::Duplicate: return "second reply to a completed call";
    case ReplyError::Late: return "reply to a call that already timed out or was cancelled";
    case ReplyError::WrongOpcode: return "reply opcode differs from the call's";
    case ReplyError::WrongSlot: return "reply data slot differs from the call's";
    case ReplyError::BadStatus: return "reply status below -MAX_ERRNO";
    case ReplyError::BadResult: return "reply result impossible for the call";
    case ReplyError::DataOnError: return "error reply carries data";
    case ReplyError::DataOutOfSlot: return "reply data reaches past its slot";
    case ReplyError::DataTooLong: return "reply data longer than the call's buffer";
    case ReplyError::BadObjectSize: return "reply object of the wrong size";
    }
    return "unknown reply error";
}

const char* describe(IssueError error)
{
    switch (error) {
    case IssueError::UnknownOpcode: return "no call has that opcode";
    case IssueError::DoesNotFitSlot: return "call data larger than a channel slot";
    case IssueError::TableFull: return "every call slot of the channel is in use";
    }
    return "unknown issue error";
}

ReplyValidator::ReplyValidator(const Catalog& catalog, uint32_t slot_count, uint32_t slot_size)
    : catalog_(catalog), table_(slot_count), slot_size_(slot_size)
{
    // The table is generated and trusted, but an inconsistent one would index past args[]: with
    // it, every call is refused instead.
    if (!check_catalog(catalog))
        catalog_ = Catalog{};
}

Result<IssuedCall, IssueError> ReplyValidator::issue(const CallShape& shape, uint64_t deadline)
{
    const vlibos_rpc_call_desc* desc = catalog_.find(shape.opcode);
    if (desc == nullptr)
        return fail(IssueError::UnknownOpcode);

    CallBounds bounds;
    if (desc->out_arg != VLIBOS_RPC_NO_ARG) {
        const vlibos_rpc_arg_desc& out = desc->args[desc->out_arg];
        if (out.kind == VLIBOS_RPC_ARG_OUT_OBJ)
            bounds.out_capacity = out.elem_size;
        else  // whole elements only (bytes: elem_size 1)
            bounds.out_capacity = shape.out_capacity / out.elem_size * out.elem_size;
    }
    if (shape.in_length > slot_size_ || bounds.out_capacity > slot_size_ || shape.counted_in_length > shape.in_length)
        return fail(IssueError::DoesNotFitSlot);
    if (desc->count_arg != VLIBOS_RPC_NO_ARG) {
        const vlibos_rpc_arg_desc& counted = desc->args[desc->count_arg];
        uint32_t bytes = counted.kind == VLIBOS_RPC_ARG_IN_STR || counted.kind == VLIBOS_RPC_ARG_IN_BYTES
                             ? shape.counted_in_length
                             : bounds.out_capacity;
        bounds.count_limit = bytes / counted.elem_size;
    }

    auto issued = table_.issue(shape.opcode, bounds, deadline);
    if (!issued)
        return fail(IssueError::TableFull);
    ++stats_.issued;
    return issued.value();
}

ReplyError ReplyValidator::check(const CallEntry& entry, const vlibos_rpc_call_desc& desc, uint32_t index,
                                 const vlibos_rpc_response& reply) const
{
    if (reply.opcode != entry.opcode)
        return ReplyError::WrongOpcode;
    if (reply.data_slot != index)
        return ReplyError::WrongSlot;

    int64_t r = reply.result;
    if (r < -VLIBOS_RPC_MAX_ERRNO)
        return ReplyError::BadStatus;
    if (r < 0)
        return reply.data_length != 0 || reply.data_offset != 0 ? ReplyError::DataOnError : ReplyError::None;

    // Both in 32 bits, compared without an addition that could wrap.
    if (reply.data_offset > slot_size_ || reply.data_length > slot_size_ - reply.data_offset)
        return ReplyError::DataOutOfSlot;
    if (reply.data_length > entry.bounds.out_capacity)
        return ReplyError::DataTooLong;

    auto result = static_cast<uint64_t>(r);
    switch (desc.result_kind) {
    case VLIBOS_RPC_RESULT_ZERO:
        if (r != 0)
            return ReplyError::BadResult;
        break;
    case VLIBOS_RPC_RESULT_FD:
        if (r > kMaxFd)
            return ReplyError::BadResult;
        break;
    case VLIBOS_RPC_RESULT_COUNT: {
        if (result > entry.bounds.count_limit)
            return ReplyError::BadResult;
        // A count of output elements is exactly the data returned. count_limit <= slot size, so
        // the product cannot overflow.
        if (desc.count_arg == desc.out_arg && reply.data_length != result * desc.args[desc.count_arg].elem_size)
            return ReplyError::BadResult;
        break;
    }
    case VLIBOS_RPC_RESULT_OFFSET:
        break;
    case VLIBOS_RPC_RESULT_WAIT_STATUS:
        if (r > kMaxWaitStatus)
            return ReplyError::BadResult;
        break;
    default:
        return ReplyError::BadResult;
    }

    if (desc.out_arg != VLIBOS_RPC_NO_ARG) {
        const vlibos_rpc_arg_desc& out = desc.args[desc.out_arg];
        if (out.kind == VLIBOS_RPC_ARG_OUT_OBJ && reply.data_length != out.elem_size)
            return ReplyError::BadObjectSize;
        if (out.kind == VLIBOS_RPC_ARG_OUT_ARRAY && reply.data_length % out.elem_size != 0)
            return ReplyError::BadObjectSize;
    }
    return ReplyError::None;
}

Result<Completion, ReplyError> ReplyValidator::accept(const vlibos_rpc_response& reply)
{
    uint32_t index = call_index(reply.call_id);
    uint64_t generation = call_generation(reply.call_id);
    ReplyError drop = ReplyError::None;
    if (index >= table_.capacity()) {
        drop = ReplyError::UnknownCall;
    } else {
        const CallEntry& entry = table_.entry(index);
        if (generation == 0 || generation > entry.generation)
            drop = ReplyError::UnknownCall;
        else if (generation < entry.generation)
            drop = ReplyError::StaleCall;
        else if (entry.state == CallState::Free)
            drop = ReplyError::Duplicate;
        else if (entry.state == CallState::Abandoned) {
            // Linux is done with the slot at last: it may serve another call now.
            table_.release(index);
            drop = ReplyError::Late;
        }
    }
    if (drop != ReplyError::None) {
        ++stats_.rejected[static_cast<size_t>(drop)];
        return fail(drop);
    }

    const CallEntry& entry = table_.entry(index);
    Completion done;
    done.id = reply.call_id;
    done.index = index;
    done.opcode = entry.opcode;
    // The entry's opcode was found in the catalog when the call was issued.
    const vlibos_rpc_call_desc* desc = catalog_.find(entry.opcode);
    done.fault = desc == nullptr ? ReplyError::WrongOpcode : check(entry, *desc, index, reply);
    table_.release(index);

    if (done.fault != ReplyError::None) {
        ++stats_.rejected[static_cast<size_t>(done.fault)];
        done.result = -VLIBOS_RPC_EPROTO;
        return done;
    }
    ++stats_.completed;
    done.result = reply.result;
    if (reply.result >= 0 && reply.data_length > 0) {
        done.data_offset = reply.data_offset;
        done.data_length = reply.data_length;
    }
    return done;
}

} // namespace vlibos::rpc
