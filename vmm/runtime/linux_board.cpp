#include "vmm/runtime/linux_board.hpp"

#include <new>

#include "lib/format.hpp"

namespace vlibos::vmm {

using namespace devices;

void LinuxBoard::init(size_t vcpus, uint64_t tsc_hz, uint32_t owned_pins, uint8_t ioapic_id)
{
    count_ = vcpus < kMaxVcpus ? vcpus : kMaxVcpus;
    // The APIC timer's input clock runs at the TSC's rate (divided as the guest asks); Linux
    // uses TSC-deadline mode, where the bus rate does not matter. A periodic timer fires at most
    // every 100 us, so a guest cannot make the monitor spend its CPU on timer exits.
    VirtualLapic::Clock clock{tsc_hz, tsc_hz, tsc_hz / 10'000};
    for (size_t i = 0; i < count_; ++i)
        lapics_[i] = new (lapic_storage_[i]) VirtualLapic(static_cast<uint8_t>(i), i == 0, clock);
    ioapic_ = new (ioapic_storage_) VirtualIoapic(owned_pins, ioapic_id);
}

bool LinuxBoard::is_device_page(uint64_t gpa)
{
    return (gpa >= kLapicPage && gpa < kLapicPage + kPageSize) || (gpa >= kIoapicPage && gpa < kIoapicPage + kPageSize);
}

bool LinuxBoard::mmio_read(size_t vcpu, uint64_t gpa, uint8_t size, uint64_t& value, uint64_t now)
{
    if (vcpu >= count_)
        return false;
    SpinlockGuard guard(lock_);
    if (gpa >= kLapicPage && gpa < kLapicPage + kPageSize) {
        auto r = lapics_[vcpu]->read(static_cast<uint32_t>(gpa - kLapicPage), size, now);
        if (!r) {
            ++stats_.mmio_errors;
            value = 0;  // the model counts it; the guest reads 0 as from a reserved register
            return true;
        }
        value = r.value();
        return true;
    }
    if (gpa >= kIoapicPage && gpa < kIoapicPage + kPageSize) {
        auto r = ioapic_->read(static_cast<uint32_t>(gpa - kIoapicPage), size);
        if (!r) {
            ++stats_.mmio_errors;
            return false;
        }
        value = r.value();
        return true;
    }
    return false;
}

bool LinuxBoard::mmio_write(size_t vcpu, uint64_t gpa, uint8_t size, uint64_t value, uint64_t now)
{
    if (vcpu >= count_)
        return false;
    VcpuSet woken = 0;
    {
        SpinlockGuard guard(lock_);
        if (gpa >= kLapicPage && gpa < kLapicPage + kPageSize) {
            auto r = lapics_[vcpu]->write(static_cast<uint32_t>(gpa - kLapicPage), size, static_cast<uint32_t>(value),
                                          now);
            if (!r) {
                ++stats_.mmio_errors;
                return false;
            }
            apply(vcpu, r.value(), woken);
        } else if (gpa >= kIoapicPage && gpa < kIoapicPage + kPageSize) {
            auto r = ioapic_->write(static_cast<uint32_t>(gpa - kIoapicPage), size, static_cast<uint32_t>(value));
            if (!r) {
                ++stats_.mmio_errors;
                return false;
            }
            deliver_ioapic(r.value(), woken);
        } else {
            return false;
        }
    }
    wake(woken, vcpu);
    return true;
}

bool LinuxBoard::msr_read(size_t vcpu, uint32_t index, uint64_t& value)
{
    if (vcpu >= count_ || (index != VirtualLapic::kApicBaseMsr && index != VirtualLapic::kTscDeadlineMsr))
        return false;
    SpinlockGuard guard(lock_);
    value = index == VirtualLapic::kApicBaseMsr ? lapics_[vcpu]->apic_base() : lapics_[vcpu]->tsc_deadline();
    return true;
}

bool LinuxBoard::msr_write(size_t vcpu, uint32_t index, uint64_t value, bool& fault)
{
    fault = false;
    if (vcpu >= count_ || (index != VirtualLapic::kApicBaseMsr && index != VirtualLapic::kTscDeadlineMsr))
        return false;
    SpinlockGuard guard(lock_);
    if (index == VirtualLapic::kTscDeadlineMsr) {
        lapics_[vcpu]->write_tsc_deadline(value);
        return true;
    }
    auto r = lapics_[vcpu]->write_apic_base(value);
    fault = !r;  // x2APIC, a moved base, reserved bits: #GP as on a CPU without them
    return true;
}

void LinuxBoard::raise(uint8_t pin)
{
    VcpuSet woken = 0;
    {
        SpinlockGuard guard(lock_);
        auto r = ioapic_->raise(pin);
        if (r)
            deliver_ioapic(r.value(), woken);
    }
    wake(woken, kMaxVcpus);
}

void LinuxBoard::set_forwarded_pins(uint32_t pins, void (*eoi)(uint32_t, void*), void* context)
{
    SpinlockGuard guard(lock_);
    forwarded_pins_ = pins & devices::VirtualIoapic::kAllPins;
    forwarded_eoi_ = eoi;
    forwarded_context_ = context;
}

void LinuxBoard::lower(uint8_t pin)
{
    SpinlockGuard guard(lock_);
    (void)ioapic_->lower(pin);
}

uint64_t LinuxBoard::next_deadline(size_t vcpu)
{
    if (vcpu >= count_)
        return kNever;
    SpinlockGuard guard(lock_);
    return lapics_[vcpu]->next_timer_deadline();
}

void LinuxBoard::expire_timers(size_t vcpu, uint64_t now)
{
    if (vcpu >= count_)
        return;
    SpinlockGuard guard(lock_);
    if (lapics_[vcpu]->next_timer_deadline() <= now)
        lapics_[vcpu]->on_timer(now);
}

uint8_t LinuxBoard::pending_vector(size_t vcpu)
{
    if (vcpu >= count_)
        return 0;
    SpinlockGuard guard(lock_);
    return lapics_[vcpu]->pending_vector();
}

void LinuxBoard::acknowledge(size_t vcpu, uint8_t vector)
{
    if (vcpu >= count_)
        return;
    SpinlockGuard guard(lock_);
    (void)lapics_[vcpu]->acknowledge(vector);
}

bool LinuxBoard::take_nmi(size_t vcpu)
{
    if (vcpu >= count_)
        return false;
    SpinlockGuard guard(lock_);
    bool nmi = nmi_[vcpu];
    nmi_[vcpu] = false;
    return nmi;
}

LinuxBoard::StartRequest LinuxBoard::take_start_request(size_t vcpu)
{
    if (vcpu >= count_)
        return {};
    SpinlockGuard guard(lock_);
    StartRequest r = start_[vcpu];
    start_[vcpu].startup = false;
    start_[vcpu].init = false;
    return r;
}

void LinuxBoard::set_kick(void (*kick)(size_t, void*), void* context)
{
    kick_ = kick;
    kick_context_ = context;
}

LinuxBoard::Stats LinuxBoard::stats()
{
    SpinlockGuard guard(lock_);
    return stats_;
}

VirtualLapic::Stats LinuxBoard::lapic_stats(size_t vcpu)
{
    SpinlockGuard guard(lock_);
    return vcpu < count_ ? lapics_[vcpu]->stats() : VirtualLapic::Stats{};
}

VirtualIoapic::Stats LinuxBoard::ioapic_stats()
{
    SpinlockGuard guard(lock_);
    return ioapic_->stats();
}

IpiFilter::Stats LinuxBoard::ipi_stats()
{
    SpinlockGuard guard(lock_);
    return filter_.stats();
}

void LinuxBoard::format_last_dropped(char* buffer, size_t size)
{
    SpinlockGuard guard(lock_);
    if (filter_.last_dropped().valid)
        format_dropped(buffer, size, filter_.last_dropped());
    else if (size > 0)
        buffer[0] = '\0';
}

// Carries out what a LAPIC access asked for. Timer effects need nothing here: the vCPU's loop
// re-reads next_deadline() after every exit.
void LinuxBoard::apply(size_t source, const LapicEffect& effect, VcpuSet& woken)
{
    switch (effect.kind) {
    case LapicEffect::Kind::Ipi:
        deliver(effect.ipi, static_cast<uint32_t>(source), woken);
        break;
    case LapicEffect::Kind::Eoi:
        if (effect.level) {
            // A forwarded line is lowered before the EOI: whether the device still asserts it
            // only the real pin can tell, once the monitor unmasks it.
            uint32_t resampled = 0;
            for (uint8_t pin = 0; pin < devices::VirtualIoapic::kPins; ++pin) {
                if (!(forwarded_pins_ & (1u << pin)))
                    continue;
                devices::RedirectionEntry e = ioapic_->entry(pin);
                if (e.remote_irr && e.level_triggered && e.vector == effect.vector) {
                    (void)ioapic_->lower(pin);
                    resampled |= 1u << pin;
                }
            }
            auto again = ioapic_->eoi(effect.vector);
            for (size_t i = 0; i < again.count; ++i)
                deliver_ioapic(again.items[i], woken);
            if (resampled != 0 && forwarded_eoi_ != nullptr)
                forwarded_eoi_(resampled, forwarded_context_);
        }
        break;
    case LapicEffect::Kind::Timer:
    case LapicEffect::Kind::None:
        break;
    }
}

void LinuxBoard::deliver(const InterruptMessage& message, uint32_t source, VcpuSet& woken)
{
    GuestApics apics;
    apics.count = count_;
    for (size_t i = 0; i < count_; ++i)
        apics.logical[i] = lapics_[i]->logical_id();
    Route route = filter_.route(message, apics, source);
    if (route.verdict != RouteVerdict::Deliver) {
        if (route.verdict != RouteVerdict::None)
            ++stats_.ipis_blocked;
        return;
    }
    for (size_t i = 0; i < count_; ++i) {
        if (((route.targets >> i) & 1u) == 0)
            continue;
        switch (message.delivery) {
        case DeliveryMode::Fixed:
        case DeliveryMode::LowestPriority:
            if (lapics_[i]->post(message.vector, message.level_triggered))
                woken |= VcpuSet{1} << i;
            break;
        case DeliveryMode::Nmi:
            nmi_[i] = true;
            ++stats_.nmis;
            woken |= VcpuSet{1} << i;
            break;
        case DeliveryMode::Init:
            // INIT resets the target's APIC and puts it into wait-for-SIPI (SDM Vol. 3A 8.4.4).
            lapics_[i]->reset();
            start_[i] = StartRequest{true, false, 0};
            ++stats_.inits;
            woken |= VcpuSet{1} << i;
            break;
        case DeliveryMode::Startup:
            start_[i].startup = true;
            start_[i].vector = message.vector;
            ++stats_.startups;
            woken |= VcpuSet{1} << i;
            break;
        default:
            break;  // Smi, ExtInt, reserved: the filter refuses them
        }
    }
}

void LinuxBoard::deliver_ioapic(const IoapicDelivery& delivery, VcpuSet& woken)
{
    if (delivery.deliver)
        deliver(delivery.message, kNoSource, woken);
}

void LinuxBoard::wake(VcpuSet woken, size_t self)
{
    if (kick_ == nullptr)
        return;
    for (size_t i = 0; i < count_; ++i)
        if (i != self && ((woken >> i) & 1u) != 0)
            kick_(i, kick_context_);
}

} // namespace vlibos::vmm
