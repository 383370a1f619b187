// Parser for the partition configuration (format: docs/configuration.md).
// The text is untrusted: it is read through bounded views, never copied into fixed buffers
// unchecked, and every problem becomes a diagnostic naming the line and the section.
#include "config/config.hpp"

#include <stdarg.h>
#include <string.h>

namespace vlibos::config {

void Diagnostics::add(const char* fmt, ...)
{
    if (count >= kMaxDiagnostics) {
        ++dropped;
        return;
    }
    char text[kMaxDiagnosticLength];
    va_list args;
    va_start(args, fmt);
    format_v(text, sizeof text, fmt, args);
    va_end(args);
    messages[count].clear();
    messages[count].append("%s", text);
    ++count;
}

void Diagnostics::clear()
{
    for (auto& message : messages)
        message.clear();
    count = 0;
    dropped = 0;
}

const char* kind_name(Kind kind)
{
    switch (kind) {
    case Kind::Rt: return "rt";
    case Kind::Linux: return "linux";
    }
    return "?";
}

namespace {

unsigned long long ull(uint64_t v) { return static_cast<unsigned long long>(v); }

bool digit_value(char c, unsigned base, unsigned& out)
{
    unsigned v;
    if (c >= '0' && c <= '9')
        v = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f')
        v = static_cast<unsigned>(c - 'a') + 10;
    else if (c >= 'A' && c <= 'F')
        v = static_cast<unsigned>(c - 'A') + 10;
    else
        return false;
    if (v >= base)
        return false;
    out = v;
    return true;
}

bool has_hex_prefix(const char* text, size_t length)
{
    return length >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
}

// Length of the leading run of characters that can belong to a number.
size_t number_prefix(const char* text, size_t length)
{
    unsigned base = 10;
    size_t i = 0;
    if (has_hex_prefix(text, length)) {
        base = 16;
        i = 2;
    }
    unsigned digit;
    while (i < length && digit_value(text[i], base, digit))
        ++i;
    return i;
}

uint64_t suffix_multiplier(char c)
{
    switch (c) {
    case 'k': case 'K': return KiB;
    case 'm': case 'M': return MiB;
    case 'g': case 'G': return GiB;
    default: return 0;
    }
}

} // namespace

Result<uint64_t, NumberError> parse_number(const char* text, size_t length)
{
    if (text == nullptr || length == 0)
        return fail(NumberError::Empty);
    unsigned base = 10;
    size_t i = 0;
    if (has_hex_prefix(text, length)) {
        base = 16;
        i = 2;
    }
    if (i == length)
        return fail(NumberError::NotANumber);
    // Validate every character first so "99999999999999999999x" is reported as not a number.
    unsigned digit;
    for (size_t j = i; j < length; ++j)
        if (!digit_value(text[j], base, digit))
            return fail(NumberError::NotANumber);
    uint64_t value = 0;
    for (; i < length; ++i) {
        digit_value(text[i], base, digit);
        if (value > (UINT64_MAX - digit) / base)
            return fail(NumberError::Overflow);
        value = value * base + digit;
    }
    return value;
}

Result<uint64_t, NumberError> parse_size(const char* text, size_t length)
{
    if (text == nullptr || length == 0)
        return fail(NumberError::Empty);
    size_t digits = number_prefix(text, length);
    uint64_t multiplier = 1;
    if (digits != length) {
        if (digits == 0 || (has_hex_prefix(text, length) && digits == 2))
            return fail(NumberError::NotANumber);
        if (digits + 1 != length || suffix_multiplier(text[digits]) == 0)
            return fail(NumberError::BadSuffix);
        multiplier = suffix_multiplier(text[digits]);
    }
    auto number = parse_number(text, digits);
    if (!number)
        return fail(number.error());
    if (number.value() > UINT64_MAX / multiplier)
        return fail(NumberError::Overflow);
    return number.value() * multiplier;
}

size_t format_size(char* buffer, size_t size, uint64_t bytes)
{
    if (bytes != 0 && bytes % GiB == 0)
        return format(buffer, size, "%llu GiB", ull(bytes / GiB));
    if (bytes != 0 && bytes % MiB == 0)
        return format(buffer, size, "%llu MiB", ull(bytes / MiB));
    if (bytes != 0 && bytes % KiB == 0)
        return format(buffer, size, "%llu KiB", ull(bytes / KiB));
    return format(buffer, size, "%llu bytes", ull(bytes));
}

size_t format_cpus(char* buffer, size_t size, uint64_t mask)
{
    if (mask == 0)
        return format(buffer, size, "none");
    size_t used = 0;
    bool first = true;
    unsigned cpu = 0;
    while (cpu < kMaxCpus) {
        if ((mask & (uint64_t{1} << cpu)) == 0) {
            ++cpu;
            continue;
        }
        unsigned last = cpu;
        while (last + 1 < kMaxCpus && (mask & (uint64_t{1} << (last + 1))) != 0)
            ++last;
        char* at = used < size ? buffer + used : nullptr;
        size_t room = used < size ? size - used : 0;
        const char* sep = first ? "" : ",";
        used += last == cpu ? format(at, room, "%s%u", sep, cpu) : format(at, room, "%s%u-%u", sep, cpu, last);
        first = false;
        cpu = last + 1;
    }
    return used;
}

namespace {

// A view into the configuration text; never NUL-terminated.
struct Text {
    const char* p;
    size_t n;
};

bool is_blank(char c) { return c == ' ' || c == '\t'; }

Text trim(Text t)
{
    while (t.n > 0 && is_blank(t.p[0])) {
        ++t.p;
        --t.n;
    }
    while (t.n > 0 && is_blank(t.p[t.n - 1]))
        --t.n;
    return t;
}

// Index of the first `c` in `t`, or t.n (the kernel's string.h has no memchr).
size_t find(Text t, char c)
{
    size_t i = 0;
    while (i < t.n && t.p[i] != c)
        ++i;
    return i;
}

bool equals(Text t, const char* s)
{
    size_t len = strlen(s);
    return t.n == len && memcmp(t.p, s, len) == 0;
}

// Copy of a token for a message: printable (the lexer has rejected control bytes outside
// comments) and cut short with "..." so one long token cannot crowd out the rest of the message.
struct Quoted {
    static constexpr size_t kShown = 32;
    char text[kShown + 4];
};

Quoted quote(Text t)
{
    Quoted q{};
    size_t n = t.n > Quoted::kShown ? Quoted::kShown : t.n;
    memcpy(q.text, t.p, n);
    if (t.n > Quoted::kShown)
        memcpy(q.text + n, "...", 4);
    else
        q.text[n] = '\0';
    return q;
}


// "cpu 3 is" / "cpus 2-3 are": messages read naturally for one CPU or several.
const char* cpu_noun(uint64_t mask) { return (mask & (mask - 1)) == 0 ? "cpu" : "cpus"; }
const char* cpu_verb(uint64_t mask) { return (mask & (mask - 1)) == 0 ? "is" : "are"; }

enum class NameProblem : uint8_t { None, Empty, TooLong, BadChar };

NameProblem check_name(Text t)
{
    if (t.n == 0)
        return NameProblem::Empty;
    if (t.n > kMaxNameLength)
        return NameProblem::TooLong;
    for (size_t i = 0; i < t.n; ++i) {
        char c = t.p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok)
            return NameProblem::BadChar;
    }
    return NameProblem::None;
}

enum class Section : uint8_t { Top, Monitor, Partition, Shared, Skipped };

// Where each key was set (0 = not set) and whether its value was valid. A key with an invalid
// value still counts as set, so one mistake does not also produce a "missing key" error.
struct PartitionKeys {
    unsigned kind, cpus, memory, base;
    bool kind_ok, cpus_ok, memory_ok, base_ok;
};

struct SharedKeys {
    unsigned memory, base, between;
    bool memory_ok, base_ok, between_ok;
    Text names[kMaxPartitions];
    size_t name_count;
};

class Parser {
public:
    Parser(Config& cfg, Diagnostics& diag) : cfg_(cfg), diag_(diag) {}

    void run(const char* text, size_t length)
    {
        size_t pos = 0;
        while (pos < length) {
            size_t end = pos;
            while (end < length && text[end] != '\n')
                ++end;
            ++line_;
            handle_line(Text{text + pos, end - pos});
            pos = end + 1;
        }
        finish();
    }

private:
    Config& cfg_;
    Diagnostics& diag_;
    unsigned line_ = 0;
    Section section_ = Section::Top;
    size_t index_ = 0;        // current partition or shared region
    char context_[40] = {};   // "partition 'rt'", for messages
    bool seen_statement_ = false;
    unsigned version_line_ = 0;
    unsigned first_statement_line_ = 0; // when the first statement is not the version
    unsigned monitor_memory_line_ = 0;
    PartitionKeys pkeys_[kMaxPartitions] = {};
    SharedKeys skeys_[kMaxShared] = {};

    void handle_line(Text raw)
    {
        if (raw.n > 0 && raw.p[raw.n - 1] == '\r')
            --raw.n; // CRLF line endings
        size_t content_end = raw.n;
        for (size_t i = 0; i < raw.n; ++i) {
            auto byte = static_cast<unsigned char>(raw.p[i]);
            bool in_comment = i >= content_end;
            if (byte == '#' && !in_comment)
                content_end = i;
            if (byte == 0) {
                diag_.add("line %u: NUL byte at column %zu", line_, i + 1);
                return;
            }
            if ((byte < 0x20 && byte != '\t') || byte == 0x7f) {
                diag_.add("line %u: control character 0x%02x at column %zu", line_, byte, i + 1);
                return;
            }
            if (byte >= 0x80 && !in_comment) {
                diag_.add("line %u: non-ASCII byte 0x%02x at column %zu (only comments may hold non-ASCII text)",
                          line_, byte, i + 1);
                return;
            }
        }
        Text content = trim(Text{raw.p, content_end});
        if (content.n == 0)
            return;
        bool first = !seen_statement_;
        seen_statement_ = true;
        if (content.p[0] == '[')
            header(content, first);
        else
            key_value(content, first);
    }

    // Reported in finish(), and only if no version follows: then version() names the real problem.
    void require_version_first(bool first)
    {
        if (first)
            first_statement_line_ = line_;
    }

    void header(Text content, bool first)
    {
        require_version_first(first);
        section_ = Section::Skipped; // until the header proves valid
        if (content.p[content.n - 1] != ']') {
            if (find(content, ']') < content.n)
                diag_.add("line %u: unexpected text after ']' in section header", line_);
            else
                diag_.add("line %u: section header is missing ']'", line_);
            return;
        }
        Text inner = trim(Text{content.p + 1, content.n - 2});
        size_t w = 0;
        while (w < inner.n && !is_blank(inner.p[w]))
            ++w;
        Text word{inner.p, w};
        Text name = trim(Text{inner.p + w, inner.n - w});

        if (equals(word, "monitor")) {
            if (name.n != 0) {
                diag_.add("line %u: [monitor] takes no name", line_);
                return;
            }
            if (cfg_.monitor_line != 0) {
                diag_.add("line %u: duplicate section [monitor] (first on line %u)", line_, cfg_.monitor_line);
                return;
            }
            cfg_.monitor_line = line_;
            section_ = Section::Monitor;
            format(context_, sizeof context_, "monitor");
            return;
        }
        bool is_partition = equals(word, "partition");
        if (!is_partition && !equals(word, "shared")) {
            diag_.add("line %u: unknown section '[%s]' (expected [monitor], [partition NAME] or [shared NAME])",
                      line_, quote(inner).text);
            return;
        }
        const char* what = is_partition ? "partition" : "shared";
        switch (check_name(name)) {
        case NameProblem::None: break;
        case NameProblem::Empty:
            diag_.add("line %u: [%s] needs a name, as in [%s %s]", line_, what, what, is_partition ? "rt" : "rpc");
            return;
        case NameProblem::TooLong:
            diag_.add("line %u: %s name '%s' is longer than %zu characters", line_, what, quote(name).text,
                      kMaxNameLength);
            return;
        case NameProblem::BadChar:
            diag_.add("line %u: %s name '%s' is invalid: use only a-z, 0-9, '_' and '-'", line_, what,
                      quote(name).text);
            return;
        }
        if (is_partition)
            open_partition(name);
        else
            open_shared(name);
    }

    void open_partition(Text name)
    {
        for (size_t i = 0; i < cfg_.partition_count; ++i) {
            Partition& p = cfg_.partitions[i];
            if (equals(name, p.name)) {
                diag_.add("line %u: duplicate section [partition %s] (first on line %u)", line_, p.name, p.line);
                return;
            }
        }
        if (cfg_.partition_count == kMaxPartitions) {
            diag_.add("line %u: too many partitions (the limit is %zu)", line_, kMaxPartitions);
            return;
        }
        index_ = cfg_.partition_count++;
        Partition& p = cfg_.partitions[index_];
        memcpy(p.name, name.p, name.n);
        p.name[name.n] = '\0';
        p.line = line_;
        section_ = Section::Partition;
        format(context_, sizeof context_, "partition '%s'", p.name);
    }

    void open_shared(Text name)
    {
        for (size_t i = 0; i < cfg_.shared_count; ++i) {
            SharedRegion& s = cfg_.shared[i];
            if (equals(name, s.name)) {
                diag_.add("line %u: duplicate section [shared %s] (first on line %u)", line_, s.name, s.line);
                return;
            }
        }
        if (cfg_.shared_count == kMaxShared) {
            diag_.add("line %u: too many shared regions (the limit is %zu)", line_, kMaxShared);
            return;
        }
        index_ = cfg_.shared_count++;
        SharedRegion& s = cfg_.shared[index_];
        memcpy(s.name, name.p, name.n);
        s.name[name.n] = '\0';
        s.line = line_;
        section_ = Section::Shared;
        format(context_, sizeof context_, "shared '%s'", s.name);
    }

    void key_value(Text content, bool first)
    {
        size_t key_len = find(content, '=');
        if (key_len == content.n) {
            require_version_first(first);
            diag_.add("line %u: expected 'key = value' or '[section]', found '%s'", line_, quote(content).text);
            return;
        }
        Text key = trim(Text{content.p, key_len});
        Text value = trim(Text{content.p + key_len + 1, content.n - key_len - 1});
        if (equals(key, "version")) {
            version(value, first);
            return;
        }
        require_version_first(first);
        if (key.n == 0) {
            diag_.add("line %u: missing key before '='", line_);
            return;
        }
        switch (section_) {
        case Section::Top:
            diag_.add("line %u: '%s' must be inside a section such as [partition NAME]", line_, quote(key).text);
            return;
        case Section::Skipped: return; // the bad header was already reported
        case Section::Monitor: monitor_key(key, value); return;
        case Section::Partition: partition_key(key, value); return;
        case Section::Shared: shared_key(key, value); return;
        }
    }

    void version(Text value, bool first)
    {
        if (version_line_ != 0) {
            diag_.add("line %u: 'version' is already set on line %u", line_, version_line_);
            return;
        }
        version_line_ = line_;
        if (!first)
            diag_.add("line %u: 'version' must come before everything else", line_);
        auto number = parse_number(value.p, value.n);
        if (!number) {
            diag_.add("line %u: version '%s' is not a number", line_, quote(value).text);
            return;
        }
        if (number.value() != kVersion) {
            diag_.add("line %u: unsupported version %llu (this monitor reads version %u)", line_,
                      ull(number.value()), kVersion);
            return;
        }
        cfg_.version = kVersion;
    }

    // Records that `key` was set on this line; false (with a message) if it was set before
    // or has no value.
    bool claim(unsigned& slot, const char* key, Text value)
    {
        if (slot != 0) {
            diag_.add("line %u: %s: '%s' is already set on line %u", line_, context_, key, slot);
            return false;
        }
        slot = line_;
        if (value.n == 0) {
            diag_.add("line %u: %s: '%s' has no value", line_, context_, key);
            return false;
        }
        return true;
    }

    bool size_value(const char* key, Text value, uint64_t& out)
    {
        auto size = parse_size(value.p, value.n);
        if (size) {
            out = size.value();
            return true;
        }
        switch (size.error()) {
        case NumberError::Empty: // claim() has already reported an empty value
        case NumberError::NotANumber:
            diag_.add("line %u: %s: %s '%s' is not a number (write bytes, or use a K, M or G suffix)", line_,
                      context_, key, quote(value).text);
            break;
        case NumberError::BadSuffix:
            diag_.add("line %u: %s: %s '%s' has an unknown suffix (use K, M or G)", line_, context_, key,
                      quote(value).text);
            break;
        case NumberError::Overflow:
            diag_.add("line %u: %s: %s '%s' does not fit in 64 bits", line_, context_, key, quote(value).text);
            break;
        }
        return false;
    }

    // A memory size: non-zero and a whole number of `align` bytes.
    bool memory_value(Text value, uint64_t align, uint64_t& out)
    {
        if (!size_value("memory", value, out))
            return false;
        if (out == 0) {
            diag_.add("line %u: %s: memory must not be zero", line_, context_);
            return false;
        }
        if (out % align != 0) {
            diag_.add("line %u: %s: memory %s is not a multiple of %s", line_, context_, size_text(out).text,
                      size_text(align).text);
            return false;
        }
        return true;
    }

    bool base_value(Text value, uint64_t align, uint64_t& out)
    {
        if (!size_value("base", value, out))
            return false;
        if (out % align != 0) {
            diag_.add("line %u: %s: base 0x%llx is not a multiple of %s", line_, context_, ull(out),
                      size_text(align).text);
            return false;
        }
        return true;
    }

    void monitor_key(Text key, Text value)
    {
        if (!equals(key, "memory")) {
            diag_.add("line %u: monitor: unknown key '%s' (expected memory)", line_, quote(key).text);
            return;
        }
        if (!claim(monitor_memory_line_, "memory", value))
            return;
        uint64_t size = 0;
        if (memory_value(value, kMonitorAlign, size))
            cfg_.monitor_memory = size;
    }

    void partition_key(Text key, Text value)
    {
        Partition& p = cfg_.partitions[index_];
        PartitionKeys& k = pkeys_[index_];
        if (equals(key, "kind")) {
            if (!claim(k.kind, "kind", value))
                return;
            if (equals(value, "rt"))
                p.kind = Kind::Rt;
            else if (equals(value, "linux"))
                p.kind = Kind::Linux;
            else {
                diag_.add("line %u: %s: unknown kind '%s' (expected rt or linux)", line_, context_,
                          quote(value).text);
                return;
            }
            k.kind_ok = true;
        } else if (equals(key, "cpus")) {
            if (claim(k.cpus, "cpus", value))
                k.cpus_ok = cpu_list(value, p.cpus);
        } else if (equals(key, "memory")) {
            if (claim(k.memory, "memory", value))
                k.memory_ok = memory_value(value, kPartitionAlign, p.memory.size);
        } else if (equals(key, "base")) {
            if (claim(k.base, "base", value)) {
                k.base_ok = base_value(value, kPartitionAlign, p.memory.base);
                p.memory.fixed = k.base_ok;
            }
        } else {
            diag_.add("line %u: %s: unknown key '%s' (expected kind, cpus, memory or base)", line_, context_,
                      quote(key).text);
        }
    }

    void shared_key(Text key, Text value)
    {
        SharedRegion& s = cfg_.shared[index_];
        SharedKeys& k = skeys_[index_];
        if (equals(key, "memory")) {
            if (claim(k.memory, "memory", value))
                k.memory_ok = memory_value(value, kSharedAlign, s.memory.size);
        } else if (equals(key, "base")) {
            if (claim(k.base, "base", value)) {
                k.base_ok = base_value(value, kSharedAlign, s.memory.base);
                s.memory.fixed = k.base_ok;
            }
        } else if (equals(key, "between")) {
            if (claim(k.between, "between", value))
                k.between_ok = name_list(value, k);
        } else {
            diag_.add("line %u: %s: unknown key '%s' (expected memory, base or between)", line_, context_,
                      quote(key).text);
        }
    }

    // Calls `item(Text)` for each comma-separated entry, trimmed; empty entries included.
    template <typename F>
    static void for_each_item(Text list, F&& item)
    {
        size_t i = 0;
        for (;;) {
            size_t j = i;
            while (j < list.n && list.p[j] != ',')
                ++j;
            item(trim(Text{list.p + i, j - i}));
            if (j >= list.n)
                return;
            i = j + 1;
        }
    }

    bool cpu_number(Text t, unsigned& out)
    {
        auto number = parse_number(t.p, t.n);
        if (!number && number.error() != NumberError::Overflow) {
            diag_.add("line %u: %s: cpus: '%s' is not a CPU number", line_, context_, quote(t).text);
            return false;
        }
        if (!number || number.value() >= kMaxCpus) {
            diag_.add("line %u: %s: cpu %s is out of range (CPUs are numbered 0-%zu)", line_, context_,
                      quote(t).text, kMaxCpus - 1);
            return false;
        }
        out = static_cast<unsigned>(number.value());
        return true;
    }

    // "0,2-3": single CPUs and inclusive ranges.
    bool cpu_list(Text value, uint64_t& mask)
    {
        bool ok = true;
        uint64_t twice = 0;
        mask = 0;
        for_each_item(value, [&](Text item) {
            if (item.n == 0) {
                diag_.add("line %u: %s: cpus: empty entry in '%s'", line_, context_, quote(value).text);
                ok = false;
                return;
            }
            size_t left = find(item, '-');
            unsigned lo = 0;
            unsigned hi = 0;
            if (left == item.n) {
                if (!cpu_number(item, lo)) {
                    ok = false;
                    return;
                }
                hi = lo;
            } else {
                if (!cpu_number(trim(Text{item.p, left}), lo) ||
                    !cpu_number(trim(Text{item.p + left + 1, item.n - left - 1}), hi)) {
                    ok = false;
                    return;
                }
                if (lo > hi) {
                    diag_.add("line %u: %s: cpus: range %u-%u runs backwards", line_, context_, lo, hi);
                    ok = false;
                    return;
                }
            }
            for (unsigned cpu = lo; cpu <= hi; ++cpu) {
                uint64_t bit = uint64_t{1} << cpu;
                if ((mask & bit) != 0)
                    twice |= bit;
                mask |= bit;
            }
        });
        if (twice != 0) {
            diag_.add("line %u: %s: %s %s %s listed twice", line_, context_, cpu_noun(twice),
                      cpu_text(twice).text, cpu_verb(twice));
            ok = false;
        }
        return ok;
    }

    // "rt, linux": names are resolved to partitions in finish(), once all sections are read.
    bool name_list(Text value, SharedKeys& k)
    {
        bool ok = true;
        k.name_count = 0;
        for_each_item(value, [&](Text item) {
            switch (check_name(item)) {
            case NameProblem::None: break;
            case NameProblem::Empty:
                diag_.add("line %u: %s: between: empty entry in '%s'", line_, context_, quote(value).text);
                ok = false;
                return;
            case NameProblem::TooLong:
            case NameProblem::BadChar:
                diag_.add("line %u: %s: between: '%s' is not a partition name", line_, context_, quote(item).text);
                ok = false;
                return;
            }
            if (k.name_count == kMaxPartitions) {
                if (ok)
                    diag_.add("line %u: %s: between names more than %zu partitions", line_, context_,
                              kMaxPartitions);
                ok = false;
                return;
            }
            k.names[k.name_count++] = item;
        });
        return ok;
    }

    void finish()
    {
        if (!seen_statement_)
            diag_.add("line 1: the configuration is empty; it must start with 'version = %u'", kVersion);
        else if (version_line_ == 0)
            diag_.add("line %u: the file must start with 'version = %u'", first_statement_line_, kVersion);

        if (cfg_.monitor_line == 0)
            diag_.add("missing [monitor] section (it sets the monitor's own memory)");
        else if (monitor_memory_line_ == 0)
            diag_.add("line %u: monitor: missing 'memory'", cfg_.monitor_line);

        check_partitions();
        check_kinds();
        check_cpu_overlap();
        check_shared();
    }

    void check_fixed(const char* what, const char* name, unsigned line, const MemorySpec& m, bool both_ok)
    {
        if (both_ok && m.fixed && m.base > UINT64_MAX - m.size)
            diag_.add("line %u: %s '%s': base 0x%llx + memory %s runs past the end of the address space", line,
                      what, name, ull(m.base), size_text(m.size).text);
    }

    void check_partitions()
    {
        for (size_t i = 0; i < cfg_.partition_count; ++i) {
            const Partition& p = cfg_.partitions[i];
            const PartitionKeys& k = pkeys_[i];
            if (k.kind == 0)
                diag_.add("line %u: partition '%s': missing 'kind' (rt or linux)", p.line, p.name);
            if (k.cpus == 0)
                diag_.add("line %u: partition '%s': missing 'cpus'", p.line, p.name);
            if (k.memory == 0)
                diag_.add("line %u: partition '%s': missing 'memory'", p.line, p.name);
            check_fixed("partition", p.name, p.line, p.memory, k.memory_ok && k.base_ok);
        }
    }

    void check_kinds()
    {
        const Partition* first_rt = nullptr;
        const Partition* first_linux = nullptr;
        for (size_t i = 0; i < cfg_.partition_count; ++i) {
            const Partition& p = cfg_.partitions[i];
            if (!pkeys_[i].kind_ok)
                continue;
            const Partition*& first = p.kind == Kind::Rt ? first_rt : first_linux;
            if (first == nullptr)
                first = &p;
            else
                diag_.add("line %u: partition '%s': only one partition may be kind = %s ('%s' on line %u already is)",
                          p.line, p.name, kind_name(p.kind), first->name, first->line);
        }
        // Without any valid kind the missing-kind messages already explain the problem.
        bool any_kind_unknown = false;
        for (size_t i = 0; i < cfg_.partition_count; ++i)
            any_kind_unknown |= !pkeys_[i].kind_ok;
        if (first_rt == nullptr && !any_kind_unknown)
            diag_.add("no partition has 'kind = rt' (exactly one is required)");
    }

    void check_cpu_overlap()
    {
        for (size_t j = 0; j < cfg_.partition_count; ++j) {
            if (!pkeys_[j].cpus_ok)
                continue;
            const Partition& b = cfg_.partitions[j];
            for (size_t i = 0; i < j; ++i) {
                if (!pkeys_[i].cpus_ok)
                    continue;
                const Partition& a = cfg_.partitions[i];
                uint64_t both = a.cpus & b.cpus;
                if (both != 0)
                    diag_.add("line %u: partition '%s': %s %s %s also in partition '%s' (line %u)", b.line, b.name,
                              cpu_noun(both), cpu_text(both).text, cpu_verb(both), a.name, a.line);
            }
        }
    }

    void check_shared()
    {
        for (size_t i = 0; i < cfg_.shared_count; ++i) {
            SharedRegion& s = cfg_.shared[i];
            const SharedKeys& k = skeys_[i];
            if (k.memory == 0)
                diag_.add("line %u: shared '%s': missing 'memory'", s.line, s.name);
            if (k.between == 0)
                diag_.add("line %u: shared '%s': missing 'between' (the partitions that map it)", s.line, s.name);
            check_fixed("shared", s.name, s.line, s.memory, k.memory_ok && k.base_ok);
            if (k.between_ok)
                resolve_between(s, k);
        }
    }

    void resolve_between(SharedRegion& s, const SharedKeys& k)
    {
        bool ok = true;
        s.partition_count = 0;
        for (size_t n = 0; n < k.name_count; ++n) {
            Text name = k.names[n];
            bool repeated = false;
            for (size_t m = 0; m < n; ++m)
                repeated |= k.names[m].n == name.n && memcmp(k.names[m].p, name.p, name.n) == 0;
            if (repeated) {
                diag_.add("line %u: shared '%s': 'between' names partition '%s' twice", k.between, s.name,
                          quote(name).text);
                ok = false;
                continue;
            }
            size_t found = cfg_.partition_count;
            for (size_t i = 0; i < cfg_.partition_count; ++i)
                if (equals(name, cfg_.partitions[i].name))
                    found = i;
            if (found == cfg_.partition_count) {
                diag_.add("line %u: shared '%s': 'between' names unknown partition '%s'", k.between, s.name,
                          quote(name).text);
                ok = false;
                continue;
            }
            s.partitions[s.partition_count++] = static_cast<uint8_t>(found);
        }
        if (ok && s.partition_count < 2)
            diag_.add("line %u: shared '%s': 'between' must name at least 2 partitions", k.between, s.name);
    }
};

} // namespace

bool parse(const char* text, size_t length, Config& out, Diagnostics& diag)
{
    size_t errors_before = diag.total();
    out = Config{};
    if (length > kMaxTextLength) {
        diag.add("the configuration is %zu bytes; the limit is %zu", length, kMaxTextLength);
        return false;
    }
    if (text == nullptr)
        length = 0;
    Parser parser(out, diag);
    parser.run(text, length);
    return diag.total() == errors_before;
}

} // namespace vlibos::config
