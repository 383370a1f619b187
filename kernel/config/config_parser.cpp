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

const char* scheduling_name(Scheduling scheduling)
{
    switch (scheduling) {
    case Scheduling::RateMonotonic: return "rate-monotonic";
    case Scheduling::Explicit: return "explicit";
    }
    return "?";
}

int partition_of_cpu(const Config& config, unsigned cpu)
{
    if (cpu >= kMaxCpus)
        return -1;
    size_t count = config.partition_count < kMaxPartitions ? config.partition_count : kMaxPartitions;
    for (size_t i = 0; i < count; ++i)
        if ((config.partitions[i].cpus & (uint64_t{1} << cpu)) != 0)
            return static_cast<int>(i);
    return -1;
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

Result<uint64_t, NumberError> parse_time(const char* text, size_t length)
{
    if (text == nullptr || length == 0)
        return fail(NumberError::Empty);
    size_t digits = 0;
    while (digits < length && text[digits] >= '0' && text[digits] <= '9')
        ++digits;
    if (digits == 0)
        return fail(NumberError::NotANumber);
    const char* unit = text + digits;
    size_t unit_length = length - digits;
    uint64_t multiplier = 0;
    if (unit_length == 2 && unit[0] == 'n' && unit[1] == 's')
        multiplier = 1;
    else if (unit_length == 2 && unit[0] == 'u' && unit[1] == 's')
        multiplier = kNsPerUs;
    else if (unit_length == 2 && unit[0] == 'm' && unit[1] == 's')
        multiplier = kNsPerMs;
    else if (unit_length == 1 && unit[0] == 's')
        multiplier = kNsPerS;
    else
        return fail(NumberError::BadSuffix);
    auto number = parse_number(text, digits);
    if (!number)
        return fail(number.error());
    if (number.value() > UINT64_MAX / multiplier)
        return fail(NumberError::Overflow);
    return number.value() * multiplier;
}

size_t format_time(char* buffer, size_t size, uint64_t ns)
{
    if (ns != 0 && ns % kNsPerS == 0)
        return format(buffer, size, "%llu s", ull(ns / kNsPerS));
    if (ns != 0 && ns % kNsPerMs == 0)
        return format(buffer, size, "%llu ms", ull(ns / kNsPerMs));
    if (ns != 0 && ns % kNsPerUs == 0)
        return format(buffer, size, "%llu us", ull(ns / kNsPerUs));
    return format(buffer, size, "%llu ns", ull(ns));
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

size_t format_pci(char* buffer, size_t size, PciFunction function)
{
    return format(buffer, size, "%02x:%02x.%x", function.bus, function.device, function.function);
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

// The characters of a GRUB module name after "vlibos.app:".
bool is_module_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
}

// a + b, or UINT64_MAX if that overflows.
uint64_t saturating_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

enum class Section : uint8_t { Top, Monitor, Partition, Shared, App, Skipped };

// Where each key was set (0 = not set) and whether its value was valid. A key with an invalid
// value still counts as set, so one mistake does not also produce a "missing key" error.
struct PartitionKeys {
    unsigned kind, cpus, memory, base, scheduling, pci;
    bool kind_ok, cpus_ok, memory_ok, base_ok, scheduling_ok, pci_ok;
};

// `vcpu` may repeat: vcpu_lines counts its statements, valid or not (App::vcpus holds the valid ones).
struct AppKeys {
    unsigned module, cpu, memory, stack, args;
    bool cpu_ok, memory_ok, stack_ok;
    unsigned vcpu_lines;
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
    const char* line_start_ = nullptr; // of the current line, for column numbers
    size_t index_ = 0;        // current partition, shared region or app
    char context_[40] = {};   // "partition 'rt'", for messages
    bool seen_statement_ = false;
    unsigned version_line_ = 0;
    unsigned first_statement_line_ = 0; // when the first statement is not the version
    unsigned monitor_memory_line_ = 0;
    PartitionKeys pkeys_[kMaxPartitions] = {};
    SharedKeys skeys_[kMaxShared] = {};
    AppKeys akeys_[kMaxApps] = {};

    void handle_line(Text raw)
    {
        line_start_ = raw.p;
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
        bool is_app = equals(word, "app");
        if (!is_partition && !is_app && !equals(word, "shared")) {
            diag_.add("line %u: unknown section '[%s]' (expected [monitor], [partition NAME], [shared NAME] or "
                      "[app NAME])",
                      line_, quote(inner).text);
            return;
        }
        const char* what = is_partition ? "partition" : is_app ? "app" : "shared";
        switch (check_name(name)) {
        case NameProblem::None: break;
        case NameProblem::Empty:
            diag_.add("line %u: [%s] needs a name, as in [%s %s]", line_, what, what,
                      is_partition ? "rt" : is_app ? "periodic" : "rpc");
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
        else if (is_app)
            open_app(name);
        else
            open_shared(name);
    }

    // A new [KIND NAME] section in `items` (partitions, shared regions or apps): refused with
    // the same two messages for every kind when the name is taken or the list is full.
    template <class Item>
    Item* open_named(Item* items, size_t& count, size_t limit, Text name, const char* kind, const char* plural,
                     Section section)
    {
        for (size_t i = 0; i < count; ++i) {
            if (equals(name, items[i].name)) {
                diag_.add("line %u: duplicate section [%s %s] (first on line %u)", line_, kind, items[i].name,
                          items[i].line);
                return nullptr;
            }
        }
        if (count == limit) {
            diag_.add("line %u: too many %s (the limit is %zu)", line_, plural, limit);
            return nullptr;
        }
        index_ = count++;
        Item& item = items[index_];
        memcpy(item.name, name.p, name.n);
        item.name[name.n] = '\0';
        item.line = line_;
        section_ = section;
        format(context_, sizeof context_, "%s '%s'", kind, item.name);
        return &item;
    }

    void open_partition(Text name)
    {
        open_named(cfg_.partitions, cfg_.partition_count, kMaxPartitions, name, "partition", "partitions",
                   Section::Partition);
    }

    void open_shared(Text name)
    {
        open_named(cfg_.shared, cfg_.shared_count, kMaxShared, name, "shared", "shared regions", Section::Shared);
    }

    void open_app(Text name)
    {
        if (App* a = open_named(cfg_.apps, cfg_.app_count, kMaxApps, name, "app", "apps", Section::App)) {
            a->memory = kDefaultAppMemory;
            a->stack = kDefaultAppStack;
        }
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
        case Section::App: app_key(key, value); return;
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

    // A size for `key`: non-zero and a whole number of `align` bytes.
    bool memory_value(Text value, uint64_t align, uint64_t& out, const char* key = "memory")
    {
        uint64_t size = 0;
        if (!size_value(key, value, size))
            return false;
        if (size == 0) {
            diag_.add("line %u: %s: %s must not be zero", line_, context_, key);
            return false;
        }
        if (size % align != 0) {
            diag_.add("line %u: %s: %s %s is not a multiple of %s", line_, context_, key, size_text(size).text,
                      size_text(align).text);
            return false;
        }
        out = size;
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
        } else if (equals(key, "scheduling")) {
            if (!claim(k.scheduling, "scheduling", value))
                return;
            if (equals(value, "rate-monotonic"))
                p.scheduling = Scheduling::RateMonotonic;
            else if (equals(value, "explicit"))
                p.scheduling = Scheduling::Explicit;
            else {
                diag_.add("line %u: %s: unknown scheduling '%s' (expected rate-monotonic or explicit)", line_,
                          context_, quote(value).text);
                return;
            }
            k.scheduling_ok = true;
        } else if (equals(key, "pci")) {
            // Whether the partition may have it is checked in finish(): `kind` may come later.
            if (claim(k.pci, "pci", value))
                k.pci_ok = pci_list(value, p);
        } else {
            diag_.add("line %u: %s: unknown key '%s' (expected kind, cpus, memory, base, scheduling or pci)", line_,
                      context_, quote(key).text);
        }
    }

    void app_key(Text key, Text value)
    {
        App& a = cfg_.apps[index_];
        AppKeys& k = akeys_[index_];
        if (equals(key, "module")) {
            if (claim(k.module, "module", value))
                module_value(value, a);
        } else if (equals(key, "cpu")) {
            if (claim(k.cpu, "cpu", value))
                k.cpu_ok = app_cpu(value, a.cpu);
        } else if (equals(key, "memory")) {
            if (claim(k.memory, "memory", value))
                k.memory_ok = memory_value(value, kAppAlign, a.memory);
        } else if (equals(key, "stack")) {
            if (claim(k.stack, "stack", value))
                k.stack_ok = stack_value(value, a.stack);
        } else if (equals(key, "args")) {
            if (claim(k.args, "args", value))
                args_value(value, a);
        } else if (equals(key, "vcpu")) {
            vcpu_line(value, a, k);
        } else {
            diag_.add("line %u: %s: unknown key '%s' (expected module, cpu, memory, stack, args or vcpu)", line_,
                      context_, quote(key).text);
        }
    }

    void module_value(Text value, App& a)
    {
        if (value.n > kMaxNameLength) {
            diag_.add("line %u: %s: module name '%s' is longer than %zu characters", line_, context_,
                      quote(value).text, kMaxNameLength);
            return;
        }
        for (size_t i = 0; i < value.n; ++i) {
            if (!is_module_char(value.p[i])) {
                diag_.add("line %u: %s: module name '%s' is invalid: use only A-Z, a-z, 0-9, '_', '.' and '-'",
                          line_, context_, quote(value).text);
                return;
            }
        }
        memcpy(a.module, value.p, value.n);
        a.module[value.n] = '\0';
    }

    bool app_cpu(Text value, unsigned& out)
    {
        if (find(value, ',') < value.n || (value.n > 1 && find(Text{value.p + 1, value.n - 1}, '-') < value.n - 1)) {
            diag_.add("line %u: %s: cpu takes one CPU number, not a list ('%s'): an app runs on one CPU", line_,
                      context_, quote(value).text);
            return false;
        }
        return cpu_number(value, out, "cpu");
    }

    bool stack_value(Text value, uint64_t& out)
    {
        uint64_t size = 0;
        if (!memory_value(value, kAppAlign, size, "stack"))
            return false;
        if (size < kMinAppStack) {
            diag_.add("line %u: %s: stack %s is below the minimum of %s", line_, context_, size_text(size).text,
                      size_text(kMinAppStack).text);
            return false;
        }
        out = size;
        return true;
    }

    void args_value(Text value, App& a)
    {
        if (value.n > kMaxArgsLength) {
            diag_.add("line %u: %s: args is %zu characters long; the limit is %zu", line_, context_, value.n,
                      kMaxArgsLength);
            return;
        }
        for (size_t i = 0; i < value.n; ++i) {
            auto byte = static_cast<unsigned char>(value.p[i]);
            if (byte < 0x20 || byte > 0x7e) {
                diag_.add("line %u: %s: args: byte 0x%02x at column %zu is not printable ASCII", line_, context_,
                          byte, static_cast<size_t>(value.p + i - line_start_) + 1);
                return;
            }
        }
        memcpy(a.args, value.p, value.n);
        a.args[value.n] = '\0';
    }

    // Splits `t` at blanks into at most `max` words; returns how many there are (max + 1 if more).
    static size_t split_words(Text t, Text* words, size_t max)
    {
        size_t count = 0;
        size_t i = 0;
        while (i < t.n) {
            while (i < t.n && is_blank(t.p[i]))
                ++i;
            if (i == t.n)
                break;
            size_t start = i;
            while (i < t.n && !is_blank(t.p[i]))
                ++i;
            if (count == max)
                return max + 1;
            words[count++] = Text{t.p + start, i - start};
        }
        return count;
    }

    // A VCPU's budget or period: a time with a unit, non-zero, at most kMaxVcpuPeriodNs.
    bool time_value(const char* vcpu, const char* what, Text value, uint64_t& out)
    {
        auto time = parse_time(value.p, value.n);
        if (time) {
            out = time.value();
            if (out == 0) {
                diag_.add("line %u: %s: vcpu '%s': %s must not be zero", line_, context_, vcpu, what);
                return false;
            }
            if (out > kMaxVcpuPeriodNs) {
                diag_.add("line %u: %s: vcpu '%s': %s %s is longer than the limit of %s", line_, context_, vcpu,
                          what, time_text(out).text, time_text(kMaxVcpuPeriodNs).text);
                return false;
            }
            return true;
        }
        switch (time.error()) {
        case NumberError::Empty:
        case NumberError::NotANumber:
            diag_.add("line %u: %s: vcpu '%s': %s '%s' is not a time (write an integer and a unit, as in 20ms)",
                      line_, context_, vcpu, what, quote(value).text);
            break;
        case NumberError::BadSuffix: {
            size_t digits = 0;
            while (digits < value.n && value.p[digits] >= '0' && value.p[digits] <= '9')
                ++digits;
            diag_.add("line %u: %s: vcpu '%s': %s '%s' %s (use ns, us, ms or s)", line_, context_, vcpu, what,
                      quote(value).text, digits == value.n ? "has no unit" : "has an unknown unit");
            break;
        }
        case NumberError::Overflow:
            diag_.add("line %u: %s: vcpu '%s': %s '%s' is longer than the limit of %s", line_, context_, vcpu, what,
                      quote(value).text, time_text(kMaxVcpuPeriodNs).text);
            break;
        }
        return false;
    }

    // "NAME BUDGET PERIOD [priority N]". Only a fully valid line is added to the app.
    void vcpu_line(Text value, App& a, AppKeys& k)
    {
        ++k.vcpu_lines;
        if (k.vcpu_lines > kMaxAppVcpus) {
            if (k.vcpu_lines == kMaxAppVcpus + 1)
                diag_.add("line %u: %s: too many vcpus (the limit is %zu per app)", line_, context_, kMaxAppVcpus);
            return;
        }
        if (value.n == 0) {
            diag_.add("line %u: %s: 'vcpu' has no value", line_, context_);
            return;
        }
        Text words[6];
        size_t n = split_words(value, words, 6);
        if (n < 3) {
            diag_.add("line %u: %s: vcpu '%s' is incomplete (expected NAME BUDGET PERIOD [priority N], as in "
                      "'main 1ms 20ms')",
                      line_, context_, quote(value).text);
            return;
        }
        switch (check_name(words[0])) {
        case NameProblem::None: break;
        case NameProblem::Empty: return; // not possible: words are never empty
        case NameProblem::TooLong:
            diag_.add("line %u: %s: vcpu name '%s' is longer than %zu characters", line_, context_,
                      quote(words[0]).text, kMaxNameLength);
            return;
        case NameProblem::BadChar:
            diag_.add("line %u: %s: vcpu name '%s' is invalid: use only a-z, 0-9, '_' and '-'", line_, context_,
                      quote(words[0]).text);
            return;
        }
        VcpuSpec v{};
        memcpy(v.name, words[0].p, words[0].n);
        v.name[words[0].n] = '\0';
        v.line = line_;
        bool ok = time_value(v.name, "budget", words[1], v.budget_ns);
        ok = time_value(v.name, "period", words[2], v.period_ns) && ok;
        if (ok && v.budget_ns > v.period_ns) {
            diag_.add("line %u: %s: vcpu '%s': budget %s is longer than its period %s", line_, context_, v.name,
                      time_text(v.budget_ns).text, time_text(v.period_ns).text);
            ok = false;
        }
        if (n > 3) {
            if (!equals(words[3], "priority") || n > 5) {
                Text extra = equals(words[3], "priority") ? words[5] : words[3];
                diag_.add("line %u: %s: vcpu '%s': unexpected '%s' after the period (only 'priority N' may follow)",
                          line_, context_, v.name, quote(extra).text);
                ok = false;
            } else if (n == 4) {
                diag_.add("line %u: %s: vcpu '%s': 'priority' needs a number", line_, context_, v.name);
                ok = false;
            } else {
                auto number = parse_number(words[4].p, words[4].n);
                if (!number || number.value() > UINT32_MAX) {
                    diag_.add("line %u: %s: vcpu '%s': priority '%s' is not a number from 0 to %u", line_,
                              context_, v.name, quote(words[4]).text, UINT32_MAX);
                    ok = false;
                } else {
                    v.priority = static_cast<uint32_t>(number.value());
                    v.has_priority = true;
                }
            }
        }
        for (size_t i = 0; i < a.vcpu_count; ++i) {
            if (strcmp(a.vcpus[i].name, v.name) == 0) {
                diag_.add("line %u: %s: vcpu '%s' is already defined on line %u", line_, context_, v.name,
                          a.vcpus[i].line);
                ok = false;
                break;
            }
        }
        if (ok)
            a.vcpus[a.vcpu_count++] = v;
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

    bool cpu_number(Text t, unsigned& out, const char* key = "cpus")
    {
        auto number = parse_number(t.p, t.n);
        if (!number && number.error() != NumberError::Overflow) {
            diag_.add("line %u: %s: %s: '%s' is not a CPU number", line_, context_, key, quote(t).text);
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

    // 1 or 2 hex digits (`max` of them at most), either case.
    static bool hex_field(Text t, size_t max, unsigned& out)
    {
        if (t.n == 0 || t.n > max)
            return false;
        out = 0;
        for (size_t i = 0; i < t.n; ++i) {
            unsigned digit;
            if (!digit_value(t.p[i], 16, digit))
                return false;
            out = out * 16 + digit;
        }
        return true;
    }

    // One "BB:DD.F" entry of a pci list; false, with a message naming the entry, if it is not one.
    bool pci_entry(Text item, PciFunction& out)
    {
        size_t colon = find(item, ':');
        size_t dot = find(item, '.');
        unsigned bus = 0;
        unsigned device = 0;
        unsigned function = 0;
        if (colon >= dot || dot == item.n || !hex_field(Text{item.p, colon}, 2, bus) ||
            !hex_field(Text{item.p + colon + 1, dot - colon - 1}, 2, device) ||
            !hex_field(Text{item.p + dot + 1, item.n - dot - 1}, 1, function)) {
            diag_.add("line %u: %s: pci: '%s' is not bus:device.function (BB:DD.F in hex, as in 00:03.0)", line_,
                      context_, quote(item).text);
            return false;
        }
        if (device > 0x1f) {
            diag_.add("line %u: %s: pci: '%s': device %02x is above 1f", line_, context_, quote(item).text, device);
            return false;
        }
        if (function > 7) {
            diag_.add("line %u: %s: pci: '%s': function %x is above 7", line_, context_, quote(item).text, function);
            return false;
        }
        out = PciFunction{static_cast<uint8_t>(bus), static_cast<uint8_t>(device), static_cast<uint8_t>(function)};
        if (bus == 0 && device == 0 && function == 0) {
            diag_.add("line %u: %s: pci: 00:00.0 is the host bridge; the VM gets an emulated one", line_, context_);
            return false;
        }
        return true;
    }

    static bool same_pci(PciFunction a, PciFunction b)
    {
        return a.bus == b.bus && a.device == b.device && a.function == b.function;
    }

    // "00:03.0, 00:04.0": distinct functions, at most kMaxPciFunctions, kept in file order.
    bool pci_list(Text value, Partition& p)
    {
        bool ok = true;
        bool over = false;
        PciFunction twice[kMaxPciFunctions] = {}; // repeats already reported
        size_t twice_count = 0;
        p.pci_count = 0;
        for_each_item(value, [&](Text item) {
            if (item.n == 0) {
                diag_.add("line %u: %s: pci: empty entry in '%s'", line_, context_, quote(value).text);
                ok = false;
                return;
            }
            PciFunction f{};
            if (!pci_entry(item, f)) {
                ok = false;
                return;
            }
            for (size_t i = 0; i < p.pci_count; ++i) {
                if (!same_pci(p.pci[i], f))
                    continue;
                bool reported = false;
                for (size_t t = 0; t < twice_count; ++t)
                    reported |= same_pci(twice[t], f);
                if (!reported) {
                    diag_.add("line %u: %s: pci %s is listed twice", line_, context_, pci_text(f).text);
                    twice[twice_count++] = f; // a repeat is of a kept entry, so at most kMaxPciFunctions
                }
                ok = false;
                return;
            }
            if (p.pci_count == kMaxPciFunctions) {
                if (!over)
                    diag_.add("line %u: %s: pci lists more than %zu functions", line_, context_, kMaxPciFunctions);
                over = true;
                ok = false;
                return;
            }
            p.pci[p.pci_count++] = f;
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
        check_pci_overlap();
        check_shared();
        check_apps();
        check_app_memory();
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
            if (k.scheduling != 0 && k.kind_ok && p.kind != Kind::Rt)
                diag_.add("line %u: partition '%s': 'scheduling' applies only to kind = rt partitions", k.scheduling,
                          p.name);
            if (pci_refused(i))
                diag_.add("line %u: partition '%s': pci is only for kind = linux partitions", k.pci, p.name);
        }
    }

    // A `pci` key on a partition whose kind is known and not linux.
    bool pci_refused(size_t i) const
    {
        return pkeys_[i].pci != 0 && pkeys_[i].kind_ok && cfg_.partitions[i].kind != Kind::Linux;
    }

    // A function belongs to one VM. Lists that are invalid or refused were reported already.
    void check_pci_overlap()
    {
        for (size_t j = 0; j < cfg_.partition_count; ++j) {
            if (!pkeys_[j].pci_ok || pci_refused(j))
                continue;
            const Partition& b = cfg_.partitions[j];
            for (size_t i = 0; i < j; ++i) {
                if (!pkeys_[i].pci_ok || pci_refused(i))
                    continue;
                const Partition& a = cfg_.partitions[i];
                for (size_t x = 0; x < b.pci_count; ++x)
                    for (size_t y = 0; y < a.pci_count; ++y)
                        if (same_pci(b.pci[x], a.pci[y]))
                            diag_.add("line %u: partition '%s': pci %s is also passed to partition '%s' (line %u)",
                                      pkeys_[j].pci, b.name, pci_text(b.pci[x]).text, a.name, pkeys_[i].pci);
            }
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

    // CPUs of the valid kind = rt partitions, for hints.
    uint64_t rt_cpus() const
    {
        uint64_t mask = 0;
        for (size_t i = 0; i < cfg_.partition_count; ++i)
            if (pkeys_[i].kind_ok && pkeys_[i].cpus_ok && cfg_.partitions[i].kind == Kind::Rt)
                mask |= cfg_.partitions[i].cpus;
        return mask;
    }

    // The rt partition an app runs in, or -1 (with a message if the app's cpu is not an rt cpu).
    int app_partition(const App& a, const AppKeys& k)
    {
        if (!k.cpu_ok)
            return -1;
        bool all_known = true;
        for (size_t i = 0; i < cfg_.partition_count; ++i)
            all_known &= pkeys_[i].cpus_ok && pkeys_[i].kind_ok;
        int owner = partition_of_cpu(cfg_, a.cpu);
        if (owner < 0) {
            if (all_known) // otherwise a partition with a broken cpu list might have held it
                diag_.add("line %u: app '%s': cpu %u is in no partition; an app needs a cpu of the rt partition "
                          "(rt cpus: %s)",
                          k.cpu, a.name, a.cpu, cpu_text(rt_cpus()).text);
            return -1;
        }
        const auto index = static_cast<size_t>(owner);
        const Partition& p = cfg_.partitions[index];
        if (!pkeys_[index].kind_ok || !pkeys_[index].cpus_ok)
            return -1;
        if (p.kind != Kind::Rt) {
            diag_.add("line %u: app '%s': cpu %u belongs to partition '%s' (kind = %s); an app needs a cpu of the "
                      "rt partition (rt cpus: %s)",
                      k.cpu, a.name, a.cpu, p.name, kind_name(p.kind), cpu_text(rt_cpus()).text);
            return -1;
        }
        return owner;
    }

    void check_apps()
    {
        for (size_t i = 0; i < cfg_.app_count; ++i) {
            const App& a = cfg_.apps[i];
            const AppKeys& k = akeys_[i];
            if (k.module == 0)
                diag_.add("line %u: app '%s': missing 'module' (its ELF is the GRUB module vlibos.app:MODULE)", a.line,
                          a.name);
            if (k.cpu == 0)
                diag_.add("line %u: app '%s': missing 'cpu' (one cpu of the rt partition)", a.line, a.name);
            if (k.vcpu_lines == 0)
                diag_.add("line %u: app '%s': missing 'vcpu' (at least one: vcpu = NAME BUDGET PERIOD)", a.line,
                          a.name);
            bool memory_known = k.memory == 0 || k.memory_ok;
            bool stack_known = k.stack == 0 || k.stack_ok;
            if (memory_known && stack_known && a.stack >= a.memory)
                diag_.add("line %u: app '%s': stack %s must be smaller than memory %s (which also holds the app's "
                          "segments)",
                          k.stack != 0 ? k.stack : k.memory != 0 ? k.memory : a.line, a.name, size_text(a.stack).text,
                          size_text(a.memory).text);
            int owner = app_partition(a, k);
            if (owner >= 0)
                check_priorities(a, cfg_.partitions[owner], pkeys_[owner]);
        }
    }

    void check_priorities(const App& a, const Partition& p, const PartitionKeys& k)
    {
        if (k.scheduling != 0 && !k.scheduling_ok)
            return; // unknown scheduling: already reported
        for (size_t v = 0; v < a.vcpu_count; ++v) {
            const VcpuSpec& vcpu = a.vcpus[v];
            if (p.scheduling == Scheduling::Explicit && !vcpu.has_priority)
                diag_.add("line %u: app '%s': vcpu '%s' needs 'priority N' (partition '%s' has scheduling = explicit)",
                          vcpu.line, a.name, vcpu.name, p.name);
            if (p.scheduling == Scheduling::RateMonotonic && vcpu.has_priority)
                diag_.add("line %u: app '%s': vcpu '%s': 'priority' needs scheduling = explicit (partition '%s' is "
                          "rate-monotonic)",
                          vcpu.line, a.name, vcpu.name, p.name);
        }
    }

    // The apps of an rt partition live in its memory, next to kRtMonitorReserve for the monitor.
    void check_app_memory()
    {
        for (size_t i = 0; i < cfg_.partition_count; ++i) {
            const Partition& p = cfg_.partitions[i];
            const PartitionKeys& pk = pkeys_[i];
            if (!pk.kind_ok || !pk.cpus_ok || !pk.memory_ok || p.kind != Kind::Rt)
                continue;
            uint64_t used = 0;
            size_t apps = 0;
            for (size_t j = 0; j < cfg_.app_count; ++j) {
                const App& a = cfg_.apps[j];
                const AppKeys& ak = akeys_[j];
                if (!ak.cpu_ok || (ak.memory != 0 && !ak.memory_ok) || partition_of_cpu(cfg_, a.cpu) != static_cast<int>(i))
                    continue;
                used = saturating_add(used, a.memory);
                ++apps;
            }
            if (apps == 0 || saturating_add(used, kRtMonitorReserve) <= p.memory.size)
                continue;
            uint64_t room = p.memory.size > kRtMonitorReserve ? p.memory.size - kRtMonitorReserve : 0;
            diag_.add("line %u: partition '%s': its %zu app%s need %s but only %s of its %s are for apps (%s stay for "
                      "the monitor)",
                      p.line, p.name, apps, apps == 1 ? "" : "s", size_text(used).text, size_text(room).text,
                      size_text(p.memory.size).text, size_text(kRtMonitorReserve).text);
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
