// Partition planning: CPU ownership, then memory placement. Fixed-base regions are checked and
// carved out first, then sized regions are placed first-fit, largest first (big partitions are
// the hardest to fit, so they get the pick of the contiguous blocks).
#include "config/partition_plan.hpp"

namespace vlibos::config {

namespace {

unsigned long long ull(uint64_t v) { return static_cast<unsigned long long>(v); }


bool single(uint64_t mask) { return (mask & (mask - 1)) == 0; }

// Free memory as a sorted list of disjoint, non-adjacent ranges. Each carve splits at most one
// range in two, so room for one extra range per placed region is enough.
class FreeList {
public:
    static constexpr size_t kCapacity = kMaxFreeRanges + kMaxPartitions + kMaxShared + 1;

    // Adds a range, keeping the list sorted and merging overlaps and neighbours.
    bool add(Range r)
    {
        if (r.base >= r.end)
            return true;
        size_t i = 0;
        while (i < count_ && ranges_[i].end < r.base)
            ++i;
        // Absorb every range that touches r.
        size_t j = i;
        while (j < count_ && ranges_[j].base <= r.end) {
            if (ranges_[j].base < r.base)
                r.base = ranges_[j].base;
            if (ranges_[j].end > r.end)
                r.end = ranges_[j].end;
            ++j;
        }
        size_t absorbed = j - i;
        if (absorbed == 0) {
            if (count_ == kCapacity)
                return false;
            for (size_t k = count_; k > i; --k)
                ranges_[k] = ranges_[k - 1];
            ++count_;
        } else {
            for (size_t k = j; k < count_; ++k)
                ranges_[k - absorbed + 1] = ranges_[k];
            count_ -= absorbed - 1;
        }
        ranges_[i] = r;
        return true;
    }

    // The free range wholly containing r, or count() if none does.
    size_t containing(Range r) const
    {
        for (size_t i = 0; i < count_; ++i)
            if (ranges_[i].base <= r.base && r.end <= ranges_[i].end)
                return i;
        return count_;
    }

    // Removes r, which must lie inside one free range.
    bool carve(Range r)
    {
        size_t i = containing(r);
        if (i == count_ || r.base >= r.end)
            return false;
        Range& f = ranges_[i];
        if (f.base < r.base && r.end < f.end) {
            if (count_ == kCapacity)
                return false;
            for (size_t k = count_; k > i + 1; --k)
                ranges_[k] = ranges_[k - 1];
            ++count_;
            ranges_[i + 1] = Range{r.end, f.end};
            f.end = r.base;
        } else if (f.base < r.base) {
            f.end = r.base;
        } else if (r.end < f.end) {
            f.base = r.end;
        } else {
            for (size_t k = i + 1; k < count_; ++k)
                ranges_[k - 1] = ranges_[k];
            --count_;
        }
        return true;
    }

    // Lowest `align`-aligned block of `size` bytes, first fit.
    bool find(uint64_t size, uint64_t align, Range& out) const
    {
        for (size_t i = 0; i < count_; ++i) {
            uint64_t base = 0;
            if (!align_up(ranges_[i].base, align, base) || base >= ranges_[i].end)
                continue;
            if (ranges_[i].end - base >= size) {
                out = Range{base, base + size};
                return true;
            }
        }
        return false;
    }

    // The biggest block usable at this alignment, so "largest free block" never names a block
    // the request could not actually use.
    uint64_t largest(uint64_t align) const
    {
        uint64_t best = 0;
        for (size_t i = 0; i < count_; ++i) {
            uint64_t base = 0;
            if (!align_up(ranges_[i].base, align, base) || base >= ranges_[i].end)
                continue;
            uint64_t usable = (ranges_[i].end - base) / align * align;
            if (usable > best)
                best = usable;
        }
        return best;
    }

    uint64_t total() const
    {
        uint64_t sum = 0;
        for (size_t i = 0; i < count_; ++i)
            sum += ranges_[i].size(); // disjoint ranges below 2^64 cannot sum past 2^64
        return sum;
    }

    size_t count() const { return count_; }

private:
    Range ranges_[kCapacity] = {};
    size_t count_ = 0;

    static bool align_up(uint64_t value, uint64_t align, uint64_t& out)
    {
        uint64_t mask = align - 1;
        if (value > UINT64_MAX - mask)
            return false;
        out = (value + mask) & ~mask;
        return true;
    }
};

// One region to place: a partition's RAM, a shared region or the monitor pool.
struct Request {
    char label[40]; // "partition 'rt'", for messages
    unsigned line;
    uint64_t size;
    uint64_t align;
    bool fixed;
    uint64_t base;
    Range* out;
    bool placed;
};

class Planner {
public:
    Planner(const Config& config, const Machine& machine, Plan& out, Diagnostics& errors, Diagnostics& warnings)
        : config_(config), machine_(machine), out_(out), errors_(errors), warnings_(warnings)
    {
    }

    void run()
    {
        if (!check_shapes())
            return;
        assign_cpus();
        place_memory();
    }

private:
    const Config& config_;
    const Machine& machine_;
    Plan& out_;
    Diagnostics& errors_;
    Diagnostics& warnings_;
    Request requests_[kMaxPartitions + kMaxShared + 1] = {};
    size_t request_count_ = 0;
    FreeList free_;

    // parse() guarantees these; a Config built another way gets a message instead of a crash.
    bool check_shapes()
    {
        bool ok = true;
        if (config_.partition_count > kMaxPartitions || config_.shared_count > kMaxShared) {
            errors_.add("config: %zu partitions and %zu shared regions exceed the limits (%zu, %zu)",
                        config_.partition_count, config_.shared_count, kMaxPartitions, kMaxShared);
            return false;
        }
        for (size_t i = 0; i < config_.shared_count; ++i) {
            const SharedRegion& s = config_.shared[i];
            bool bad = s.partition_count > kMaxPartitions;
            for (size_t k = 0; !bad && k < s.partition_count; ++k)
                bad = s.partitions[k] >= config_.partition_count;
            if (bad) {
                errors_.add("line %u: shared '%s': refers to a partition that does not exist", s.line, s.name);
                ok = false;
            }
        }
        if (machine_.free_count > kMaxFreeRanges) {
            errors_.add("machine: %zu free RAM ranges exceed the limit of %zu", machine_.free_count, kMaxFreeRanges);
            ok = false;
        }
        if (machine_.cpu_count == 0) {
            errors_.add("machine: no CPUs reported");
            ok = false;
        }
        return ok;
    }

    void assign_cpus()
    {
        unsigned present = machine_.cpu_count;
        if (present > kMaxCpus) {
            warnings_.add("the machine has %u CPUs; a configuration can name only cpus 0-%zu, the rest stay parked",
                          present, kMaxCpus - 1);
            present = kMaxCpus;
        }
        out_.cpu_count = present;
        uint64_t present_mask = present == kMaxCpus ? ~uint64_t{0} : (uint64_t{1} << present) - 1;
        for (auto& owner : out_.cpu_owner)
            owner = kNoPartition;

        size_t rt = config_.partition_count;
        for (size_t i = 0; i < config_.partition_count; ++i) {
            const Partition& p = config_.partitions[i];
            out_.partitions[i].cpus = p.cpus;
            if (p.kind == Kind::Rt && rt == config_.partition_count)
                rt = i;
            if (p.cpus == 0)
                errors_.add("line %u: partition '%s': has no CPUs", p.line, p.name);
            uint64_t missing = p.cpus & ~present_mask;
            if (missing != 0)
                errors_.add("line %u: partition '%s': %s %s %s not present (the machine has %u CPU%s)", p.line,
                            p.name, single(missing) ? "cpu" : "cpus", cpu_text(missing).text,
                            single(missing) ? "is" : "are", machine_.cpu_count, machine_.cpu_count == 1 ? "" : "s");
            for (unsigned cpu = 0; cpu < present; ++cpu) {
                if ((p.cpus & (uint64_t{1} << cpu)) == 0)
                    continue;
                uint8_t owner = out_.cpu_owner[cpu];
                if (owner != kNoPartition) {
                    const Partition& other = config_.partitions[owner];
                    errors_.add("line %u: partition '%s': cpu %u is also in partition '%s' (line %u)", p.line, p.name,
                                cpu, other.name, other.line);
                    continue;
                }
                out_.cpu_owner[cpu] = static_cast<uint8_t>(i);
            }
        }
        out_.partition_count = config_.partition_count;

        // The boot path of the monitor continues on CPU 0 as the RT sandbox's first core.
        uint8_t boot_owner = out_.cpu_owner[0];
        const char* rt_name = rt < config_.partition_count ? config_.partitions[rt].name : "";
        if (boot_owner == kNoPartition)
            errors_.add("cpu 0 (the boot CPU) is in no partition; it must belong to the rt partition%s%s%s",
                        rt_name[0] != '\0' ? " '" : "", rt_name, rt_name[0] != '\0' ? "'" : "");
        else if (config_.partitions[boot_owner].kind != Kind::Rt)
            errors_.add("line %u: partition '%s': cpu 0 is the boot CPU and must belong to the rt partition%s%s%s",
                        config_.partitions[boot_owner].line, config_.partitions[boot_owner].name,
                        rt_name[0] != '\0' ? " '" : "", rt_name, rt_name[0] != '\0' ? "'" : "");

        uint64_t parked = 0;
        for (unsigned cpu = 0; cpu < present; ++cpu)
            if (out_.cpu_owner[cpu] == kNoPartition)
                parked |= uint64_t{1} << cpu;
        if (parked != 0)
            warnings_.add("%s %s %s in no partition and stay%s parked", single(parked) ? "cpu" : "cpus",
                          cpu_text(parked).text, single(parked) ? "is" : "are", single(parked) ? "s" : "");
    }

    void add_request(const char* what, const char* name, unsigned line, const MemorySpec& memory, uint64_t align,
                     Range* out)
    {
        Request& r = requests_[request_count_++];
        if (name[0] != '\0')
            format(r.label, sizeof r.label, "%s '%s'", what, name);
        else
            format(r.label, sizeof r.label, "%s", what);
        r.line = line;
        r.size = memory.size;
        r.align = align;
        r.fixed = memory.fixed;
        r.base = memory.base;
        r.out = out;
        r.placed = false;
    }

    bool load_free_ranges()
    {
        for (size_t i = 0; i < machine_.free_count; ++i) {
            Range r = machine_.free[i];
            if (r.base > r.end) {
                errors_.add("machine: free RAM range %zu (0x%llx-0x%llx) ends before it starts", i, ull(r.base),
                            ull(r.end));
                return false;
            }
            if (!free_.add(r)) {
                errors_.add("machine: too many free RAM ranges");
                return false;
            }
        }
        return true;
    }

    // A request whose numbers parse() would have rejected; reported here for hand-built Configs.
    bool well_formed(const Request& r)
    {
        if (r.size == 0 || r.size % r.align != 0) {
            errors_.add("line %u: %s: memory %s is not a non-zero multiple of %s", r.line, r.label,
                        size_text(r.size).text, size_text(r.align).text);
            return false;
        }
        if (r.fixed && (r.base % r.align != 0 || r.base > UINT64_MAX - r.size)) {
            errors_.add("line %u: %s: base 0x%llx is not aligned to %s or runs past 2^64", r.line, r.label,
                        ull(r.base), size_text(r.align).text);
            return false;
        }
        return true;
    }

    void place_memory()
    {
        add_request("monitor", "", config_.monitor_line, MemorySpec{config_.monitor_memory, false, 0}, kMonitorAlign,
                    &out_.monitor_pool);
        for (size_t i = 0; i < config_.partition_count; ++i) {
            const Partition& p = config_.partitions[i];
            add_request("partition", p.name, p.line, p.memory, kPartitionAlign, &out_.partitions[i].memory);
        }
        for (size_t i = 0; i < config_.shared_count; ++i) {
            const SharedRegion& s = config_.shared[i];
            add_request("shared", s.name, s.line, s.memory, kSharedAlign, &out_.shared[i]);
        }
        out_.shared_count = config_.shared_count;
        if (!load_free_ranges())
            return;

        bool usable[kMaxPartitions + kMaxShared + 1] = {};
        for (size_t i = 0; i < request_count_; ++i)
            usable[i] = well_formed(requests_[i]);

        // Fixed regions: each must be RAM and must not overlap an earlier fixed region. All are
        // checked against the original free list before any is carved, so an overlap is reported
        // as an overlap, not as "not usable RAM".
        for (size_t i = 0; i < request_count_; ++i) {
            Request& r = requests_[i];
            if (!r.fixed || !usable[i])
                continue;
            Range want{r.base, r.base + r.size};
            if (free_.containing(want) == free_.count()) {
                errors_.add("line %u: %s: 0x%llx-0x%llx is not usable RAM", r.line, r.label, ull(want.base),
                            ull(want.end - 1));
                usable[i] = false;
                continue;
            }
            for (size_t j = 0; j < i; ++j) {
                const Request& o = requests_[j];
                if (!o.fixed || !usable[j])
                    continue;
                uint64_t lo = want.base > o.base ? want.base : o.base;
                uint64_t hi = want.end < o.base + o.size ? want.end : o.base + o.size;
                if (lo < hi) {
                    errors_.add("line %u: %s: 0x%llx-0x%llx overlaps %s (line %u) at 0x%llx-0x%llx", r.line, r.label,
                                ull(want.base), ull(want.end - 1), o.label, o.line, ull(lo), ull(hi - 1));
                    usable[i] = false;
                    break;
                }
            }
        }
        for (size_t i = 0; i < request_count_; ++i) {
            Request& r = requests_[i];
            if (!r.fixed || !usable[i])
                continue;
            Range want{r.base, r.base + r.size};
            if (!free_.carve(want)) {
                errors_.add("line %u: %s: could not reserve 0x%llx-0x%llx", r.line, r.label, ull(want.base),
                            ull(want.end - 1));
                continue;
            }
            *r.out = want;
            r.placed = true;
        }

        // Sized regions, largest first; equal sizes keep their order (monitor, partitions, shared).
        size_t order[kMaxPartitions + kMaxShared + 1];
        size_t sized = 0;
        for (size_t i = 0; i < request_count_; ++i) {
            if (requests_[i].fixed || !usable[i])
                continue;
            size_t k = sized++;
            while (k > 0 && requests_[order[k - 1]].size < requests_[i].size) {
                order[k] = order[k - 1];
                --k;
            }
            order[k] = i;
        }
        for (size_t n = 0; n < sized; ++n) {
            Request& r = requests_[order[n]];
            Range got{};
            if (!free_.find(r.size, r.align, got) || !free_.carve(got)) {
                errors_.add("line %u: %s: %s does not fit: largest free block is %s, %s free in total", r.line,
                            r.label, size_text(r.size).text, size_text(free_.largest(r.align)).text,
                            size_text(free_.total()).text);
                continue;
            }
            *r.out = got;
            r.placed = true;
        }
    }
};

} // namespace

bool plan(const Config& config, const Machine& machine, Plan& out, Diagnostics& errors, Diagnostics& warnings)
{
    size_t errors_before = errors.total();
    out = Plan{};
    Planner planner(config, machine, out, errors, warnings);
    planner.run();
    return errors.total() == errors_before;
}

} // namespace vlibos::config
