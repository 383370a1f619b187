#include "rt/core_scheduler.hpp"

#include "lib/format.hpp"

namespace vlibos::rt {

namespace {

constexpr Ppm clamp_ppm(uint64_t ppm) { return ppm > 0xffffffffu ? 0xffffffffu : static_cast<Ppm>(ppm); }

unsigned whole_part(Ppm ppm) { return ppm / PPM_ONE; }
unsigned fraction_part(Ppm ppm) { return ppm % PPM_ONE; }

} // namespace

const char* describe(AdmissionErrorKind kind)
{
    switch (kind) {
    case AdmissionErrorKind::None:
        return "no error";
    case AdmissionErrorKind::InvalidParameters:
        return "invalid VCPU parameters";
    case AdmissionErrorKind::TooManyVcpus:
        return "the core's run queue is full";
    case AdmissionErrorKind::UtilisationBound:
        return "the rate-monotonic utilisation bound would be exceeded";
    case AdmissionErrorKind::ResponseTime:
        return "a Main VCPU's worst-case response time would exceed its period";
    case AdmissionErrorKind::IoNeedsRateMonotonic:
        return "I/O VCPUs need a rate-monotonic core";
    }
    return "unknown admission error";
}

size_t format_admission_error(char* buffer, size_t size, const AdmissionError& e)
{
    switch (e.kind) {
    case AdmissionErrorKind::UtilisationBound:
        return format(buffer, size,
                      "admission refused: utilisation %u.%06u (before %u.%06u) would exceed the rate-monotonic "
                      "bound n(2^(1/n)-1) = %u.%06u for n = %u Main VCPUs (Liu & Layland; each I/O VCPU "
                      "counts (2-U)U, as in Quest)",
                      whole_part(e.utilisation_after), fraction_part(e.utilisation_after),
                      whole_part(e.utilisation_before), fraction_part(e.utilisation_before), whole_part(e.bound),
                      fraction_part(e.bound), e.main_vcpus);
    case AdmissionErrorKind::ResponseTime: {
        char who[24];
        if (e.victim == IDLE)
            format(who, sizeof who, "the new VCPU");
        else
            format(who, sizeof who, "VCPU %u", static_cast<unsigned>(e.victim));
        return format(buffer, size,
                      "admission refused: with explicit priorities %s would have a worst-case response time "
                      "above %llu ticks, beyond its period of %llu ticks (exact response-time analysis; "
                      "utilisation %u.%06u, before %u.%06u)",
                      who, static_cast<unsigned long long>(e.response), static_cast<unsigned long long>(e.deadline),
                      whole_part(e.utilisation_after), fraction_part(e.utilisation_after),
                      whole_part(e.utilisation_before), fraction_part(e.utilisation_before));
    }
    case AdmissionErrorKind::InvalidParameters:
        return format(buffer, size,
                      "admission refused: a Main VCPU needs 0 < budget <= period <= 2^43 ticks, an I/O VCPU "
                      "0 < U <= 1");
    case AdmissionErrorKind::TooManyVcpus:
        return format(buffer, size, "admission refused: the core's run queue is full (%u VCPUs)",
                      static_cast<unsigned>(CoreScheduler::MAX_VCPUS));
    case AdmissionErrorKind::IoNeedsRateMonotonic:
        return format(buffer, size,
                      "admission refused: I/O VCPUs are admitted only on rate-monotonic cores, where Quest's "
                      "bound for them holds");
    case AdmissionErrorKind::None:
        break;
    }
    return format(buffer, size, "admission: %s", describe(e.kind));
}

const char* describe(SchedError error)
{
    switch (error) {
    case SchedError::NoSuchVcpu:
        return "no such VCPU on this core";
    case SchedError::NotMainVcpu:
        return "the VCPU is not a Main VCPU";
    case SchedError::NotIoVcpu:
        return "the VCPU is not an I/O VCPU";
    }
    return "unknown scheduler error";
}

// ---------------------------------------------------------------------------------------------
// Admission

Ppm CoreScheduler::load_with(const VcpuParams* extra) const
{
    uint64_t sum = 0;
    auto add = [&](VcpuKind kind, Ticks budget, Ticks period, Ppm u) {
        if (kind == VcpuKind::Main)
            sum += utilisation_ppm(budget, period);
        else if (policy_ == PriorityPolicy::RateMonotonic)
            sum += io_admission_term_ppm(u);
        else
            sum += u;
    };
    for (size_t i = 0; i < count_; ++i) {
        const Slot& s = slots_[i];
        if (!s.retired)
            add(s.kind, s.main.budget(), s.main.period(), s.io.utilisation());
    }
    if (extra)
        add(extra->kind, extra->budget, extra->period, extra->utilisation);
    return clamp_ppm(sum);
}

Ppm CoreScheduler::utilisation() const { return load_with(nullptr); }

Status<AdmissionError> CoreScheduler::check(const VcpuParams& params) const
{
    AdmissionError error;
    error.utilisation_before = load_with(nullptr);
    error.utilisation_after = load_with(&params);

    if (policy_ == PriorityPolicy::RateMonotonic) {
        uint32_t mains = params.kind == VcpuKind::Main ? 1 : 0;
        for (size_t i = 0; i < count_; ++i)
            mains += slots_[i].kind == VcpuKind::Main && !slots_[i].retired ? 1 : 0;
        // Quest's theorem counts n Main VCPUs; with none yet, the bound is that of one (1.0).
        error.main_vcpus = mains;
        error.bound = liu_layland_bound_ppm(mains);
        if (error.utilisation_after > error.bound) {
            error.kind = AdmissionErrorKind::UtilisationBound;
            return fail(error);
        }
        return {};
    }

    if (params.kind == VcpuKind::Io) {
        error.kind = AdmissionErrorKind::IoNeedsRateMonotonic;
        return fail(error);
    }
    RtaTask tasks[MAX_VCPUS];
    VcpuId ids[MAX_VCPUS];
    size_t n = 0;
    for (size_t i = 0; i < count_; ++i) {
        if (slots_[i].retired)
            continue;
        tasks[n] = RtaTask{slots_[i].main.budget(), slots_[i].main.period(), slots_[i].priority};
        ids[n++] = static_cast<VcpuId>(i);
    }
    tasks[n] = RtaTask{params.budget, params.period, params.priority};
    ids[n++] = IDLE;
    for (size_t i = 0; i < n; ++i) {
        Ticks response = worst_response_time(tasks, n, i);
        if (response > tasks[i].period) {
            error.kind = AdmissionErrorKind::ResponseTime;
            error.victim = ids[i];
            error.response = response;
            error.deadline = tasks[i].period;
            return fail(error);
        }
    }
    return {};
}

Result<VcpuId, AdmissionError> CoreScheduler::admit(const VcpuParams& params, Ticks now)
{
    now = clamp(now);
    AdmissionError error;
    bool valid = params.kind == VcpuKind::Main
                     ? params.budget > 0 && params.budget <= params.period && params.period <= MAX_TICKS
                     : params.utilisation > 0 && params.utilisation <= PPM_ONE;
    if (!valid) {
        error.kind = AdmissionErrorKind::InvalidParameters;
        return fail(error);
    }
    size_t index = count_;
    for (size_t i = 0; i < count_; ++i)
        if (slots_[i].retired) {
            index = i;
            break;
        }
    if (index == MAX_VCPUS) {
        error.kind = AdmissionErrorKind::TooManyVcpus;
        return fail(error);
    }
    TRY(check(params));

    Slot& slot = slots_[index];
    slot = Slot{};
    slot.kind = params.kind;
    if (params.kind == VcpuKind::Main) {
        slot.main = MainVcpu(params.budget, params.period, now);
        slot.priority = params.priority;
    } else {
        slot.io = IoVcpu(params.utilisation);
    }
    if (index == count_)
        ++count_;
    return static_cast<VcpuId>(index);
}

// ---------------------------------------------------------------------------------------------
// Dispatching

Ticks CoreScheduler::clamp(Ticks now)
{
    if (now < last_now_)
        return last_now_;
    last_now_ = now;
    return now;
}

Ticks CoreScheduler::longest_main_period() const
{
    Ticks longest = 0;
    for (size_t i = 0; i < count_; ++i)
        if (slots_[i].kind == VcpuKind::Main && !slots_[i].retired && slots_[i].main.period() > longest)
            longest = slots_[i].main.period();
    return longest == 0 ? MAX_TICKS : longest;
}

uint64_t CoreScheduler::urgency(VcpuId id) const
{
    const Slot& s = slots_[id];
    if (s.kind == VcpuKind::Io)
        return s.io.period() != 0 ? s.io.period() : longest_main_period();  // inherited (RM only)
    return policy_ == PriorityPolicy::RateMonotonic ? s.main.period() : s.priority;
}

bool CoreScheduler::more_urgent(VcpuId a, VcpuId b) const
{
    uint64_t ua = urgency(a);
    uint64_t ub = urgency(b);
    return ua < ub || (ua == ub && a < b);
}

Ticks CoreScheduler::capacity(VcpuId id, Ticks now) const
{
    const Slot& s = slots_[id];
    return s.kind == VcpuKind::Main ? s.main.capacity(now) : s.io.capacity(now);
}

Ticks CoreScheduler::eligible_at(VcpuId id, Ticks now) const
{
    const Slot& s = slots_[id];
    return s.kind == VcpuKind::Main ? s.main.eligible_at(now) : s.io.eligible_at(now);
}

bool CoreScheduler::preempts(VcpuId id, Ticks now) const
{
    if (id == current_ || capacity(id, now) == 0)
        return false;
    return current_ == IDLE || more_urgent(id, current_);
}

void CoreScheduler::account(Ticks now)
{
    now = clamp(now);
    if (current_ != IDLE && now > charged_until_) {
        Slot& s = slots_[current_];
        Ticks used = now - charged_until_;
        uint32_t posted = s.kind == VcpuKind::Main ? s.main.charge(used, now) : s.io.charge(used, now);
        s.stats.budget_used += used;
        s.stats.replenishments += posted;
    }
    charged_until_ = now;
    for (size_t i = 0; i < count_; ++i)
        slots_[i].log.check_deadlines(now, slots_[i].stats);
}

VcpuId CoreScheduler::pick(Ticks now)
{
    account(now);
    now = last_now_;
    VcpuId best = IDLE;
    for (size_t i = 0; i < count_; ++i) {
        VcpuId id = static_cast<VcpuId>(i);
        if (!runnable(id) || capacity(id, now) == 0)
            continue;
        if (best == IDLE || more_urgent(id, best))
            best = id;
    }
    current_ = best;
    charged_until_ = now;
    return best;
}

Ticks CoreScheduler::next_event(Ticks now) const
{
    if (now < last_now_)
        now = last_now_;
    Ticks event = NEVER;
    if (current_ != IDLE) {
        // Budget left as of the last charge, spent from then on.
        Ticks end = charged_until_ + capacity(current_, charged_until_);
        event = end > now ? end : now;
    }
    for (size_t i = 0; i < count_; ++i) {
        VcpuId id = static_cast<VcpuId>(i);
        if (id == current_ || !runnable(id))
            continue;
        if (current_ != IDLE && !more_urgent(id, current_))
            continue;  // its budget coming back cannot change the choice
        Ticks at = eligible_at(id, now);
        if (at < event)
            event = at;
    }
    return event;
}

// ---------------------------------------------------------------------------------------------
// Work arriving and finishing

Result<bool, SchedError> CoreScheduler::wake(VcpuId id, Ticks now, Ticks release)
{
    if (id >= count_ || slots_[id].retired)
        return fail(SchedError::NoSuchVcpu);
    account(now);
    now = last_now_;
    Slot& s = slots_[id];
    bool was_runnable = runnable(id);
    Ticks period;
    if (s.kind == VcpuKind::Main) {
        if (!was_runnable)
            s.main.wake(now);
        period = s.main.period();
    } else {
        if (!was_runnable)
            s.io.trigger(s.io.period() != 0 ? s.io.period() : longest_main_period(), now);
        period = s.io.period();
    }
    s.log.release(release < now ? release : now, period, s.stats);
    return preempts(id, now);
}

Result<bool, SchedError> CoreScheduler::wake_io(VcpuId io, VcpuId on_behalf_of, Ticks now)
{
    if (io >= count_ || on_behalf_of >= count_ || slots_[io].retired || slots_[on_behalf_of].retired)
        return fail(SchedError::NoSuchVcpu);
    if (slots_[io].kind != VcpuKind::Io)
        return fail(SchedError::NotIoVcpu);
    if (slots_[on_behalf_of].kind != VcpuKind::Main)
        return fail(SchedError::NotMainVcpu);
    account(now);
    now = last_now_;
    Slot& s = slots_[io];
    s.io.trigger(slots_[on_behalf_of].main.period(), now);
    s.log.release(now, s.io.period(), s.stats);
    return preempts(io, now);
}

Status<SchedError> CoreScheduler::block(VcpuId id, Ticks now)
{
    if (id >= count_ || slots_[id].retired)
        return fail(SchedError::NoSuchVcpu);
    account(now);
    now = last_now_;
    Slot& s = slots_[id];
    s.log.complete(now, s.stats);
    if (s.log.pending() > 0)
        return {};
    uint32_t posted = s.kind == VcpuKind::Main ? s.main.block(now) : s.io.block(now);
    s.stats.replenishments += posted;
    if (current_ == id)
        current_ = IDLE;
    return {};
}

Status<SchedError> CoreScheduler::retire(VcpuId id, Ticks now)
{
    if (id >= count_ || slots_[id].retired)
        return fail(SchedError::NoSuchVcpu);
    account(now);
    slots_[id].log.clear();
    slots_[id].retired = true;
    if (current_ == id)
        current_ = IDLE;
    return {};
}

} // namespace vlibos::rt
