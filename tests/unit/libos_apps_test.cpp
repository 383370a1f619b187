// The built RT applications (rt-apps/, linked by libos-stubs/app.ld) against the kernel's own ELF
// loader rules: each must parse with elf::parse in the RT user window, start at the runtime's
// _start, and be static, W^X, with a non-executable stack and no relocations or TLS.
//
// Needs the folder of the built applications: tests/CMakeLists.txt defines VLIBOS_RT_APPS_DIR
// (<build>/rt-apps) when the RT applications are part of the build; without it this file has no
// test cases.
#include <catch2/catch.hpp>

#ifdef VLIBOS_RT_APPS_DIR

#include <elf.h>
#include <string.h>

#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "elf/elf64.hpp"

using namespace vlibos;

namespace {

// The RT user window (libos-stubs/app.ld): applications are linked 64 KiB into it.
constexpr uint64_t kWindowBase = 0x0000'4000'0000'0000;
constexpr uint64_t kWindowEnd = 0x0000'4000'4000'0000;
constexpr uint64_t kImageBase = 0x0000'4000'0001'0000;

struct App {
    std::string name;
    std::vector<uint8_t> bytes;

    template <typename T>
    T at(uint64_t offset) const
    {
        REQUIRE(offset + sizeof(T) <= bytes.size());
        T value;
        memcpy(&value, bytes.data() + offset, sizeof(T));
        return value;
    }
    Elf64_Ehdr header() const { return at<Elf64_Ehdr>(0); }
    std::vector<Elf64_Phdr> program_headers() const
    {
        std::vector<Elf64_Phdr> out;
        for (size_t i = 0; i < header().e_phnum; ++i)
            out.push_back(at<Elf64_Phdr>(header().e_phoff + i * sizeof(Elf64_Phdr)));
        return out;
    }
    std::vector<Elf64_Shdr> section_headers() const
    {
        std::vector<Elf64_Shdr> out;
        for (size_t i = 0; i < header().e_shnum; ++i)
            out.push_back(at<Elf64_Shdr>(header().e_shoff + i * sizeof(Elf64_Shdr)));
        return out;
    }
    // Defined symbols of .symtab, by name.
    std::map<std::string, uint64_t> symbols() const
    {
        std::map<std::string, uint64_t> out;
        auto sections = section_headers();
        for (const Elf64_Shdr& s : sections) {
            if (s.sh_type != SHT_SYMTAB)
                continue;
            REQUIRE(s.sh_link < sections.size());
            const Elf64_Shdr& strtab = sections[s.sh_link];
            for (uint64_t off = s.sh_offset; off + sizeof(Elf64_Sym) <= s.sh_offset + s.sh_size;
                 off += sizeof(Elf64_Sym)) {
                auto sym = at<Elf64_Sym>(off);
                if (sym.st_shndx == SHN_UNDEF || sym.st_name >= strtab.sh_size)
                    continue;
                const char* text = reinterpret_cast<const char*>(bytes.data() + strtab.sh_offset + sym.st_name);
                out[std::string(text, strnlen(text, strtab.sh_size - sym.st_name))] = sym.st_value;
            }
        }
        return out;
    }
    // True if `text` occurs in the file bytes of a read-only, non-executable segment.
    bool rodata_contains(const elf::Program& program, const std::string& text) const
    {
        for (size_t i = 0; i < program.segment_count; ++i) {
            const elf::Segment& s = program.segments[i];
            if (s.write || s.execute)
                continue;
            std::string data(reinterpret_cast<const char*>(bytes.data() + s.file_offset), s.filesz);
            if (data.find(text) != std::string::npos)
                return true;
        }
        return false;
    }
};

App load_app(const std::string& name)
{
    std::string path = std::string(VLIBOS_RT_APPS_DIR) + "/" + name + ".elf";
    INFO(path);
    std::ifstream file(path, std::ios::binary);
    REQUIRE(file.good());
    App app{name, {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()}};
    REQUIRE(app.bytes.size() > sizeof(Elf64_Ehdr));
    return app;
}

elf::Program parse_ok(const App& app)
{
    elf::Program program{};
    auto status = elf::parse(app.bytes.data(), app.bytes.size(), kWindowEnd, program);
    INFO(app.name << ": " << (status ? "ok" : elf::describe(status.error())));
    REQUIRE(status.ok());
    return program;
}

// The kernel's own checks, plus everything the RT runtime's layout promises.
void check_layout(const App& app)
{
    INFO(app.name);
    elf::Program program = parse_ok(app);

    // Exactly text R-X, read-only data R--, data/bss RW-, in that order, inside the window.
    REQUIRE(program.segment_count == 3);
    const elf::Segment& text = program.segments[0];
    const elf::Segment& rodata = program.segments[1];
    const elf::Segment& data = program.segments[2];
    CHECK((text.read && !text.write && text.execute));
    CHECK((rodata.read && !rodata.write && !rodata.execute));
    CHECK((data.read && data.write && !data.execute));
    CHECK(text.vaddr == kImageBase);
    for (size_t i = 0; i < program.segment_count; ++i) {
        CHECK(elf::page_base(program.segments[i]) >= kWindowBase);
        CHECK(elf::page_end(program.segments[i]) <= kWindowEnd);
        CHECK(program.segments[i].vaddr % elf::kPageSize == 0);
    }

    // The entry is the runtime's _start, whose first instruction is xor %ebp, %ebp (crt0.S).
    auto symbols = app.symbols();
    REQUIRE(symbols.count("_start") == 1);
    CHECK(program.entry == symbols["_start"]);
    CHECK(symbols.count("main") == 1);
    CHECK(symbols.count("vlibos_rt_start") == 1);
    uint64_t entry_offset = text.file_offset + (program.entry - text.vaddr);
    CHECK(app.at<uint8_t>(entry_offset) == 0x31);
    CHECK(app.at<uint8_t>(entry_offset + 1) == 0xed);

    // Static and plain: a non-executable stack, no interpreter, dynamic section or TLS.
    Elf64_Ehdr header = app.header();
    CHECK(header.e_type == ET_EXEC);
    int stacks = 0;
    for (const Elf64_Phdr& ph : app.program_headers()) {
        CHECK(ph.p_type != PT_INTERP);
        CHECK(ph.p_type != PT_DYNAMIC);
        CHECK(ph.p_type != PT_TLS);
        if (ph.p_type == PT_GNU_STACK) {
            ++stacks;
            CHECK(ph.p_flags == (PF_R | PF_W));
        }
    }
    CHECK(stacks == 1);
    // No relocation the loader would have to apply (it applies none), no dynamic symbols, no
    // thread-local data (the runtime sets up no FS base).
    for (const Elf64_Shdr& s : app.section_headers()) {
        CHECK(s.sh_type != SHT_REL);
        CHECK(s.sh_type != SHT_RELA);
        CHECK(s.sh_type != SHT_DYNAMIC);
        CHECK(s.sh_type != SHT_DYNSYM);
        CHECK((s.sh_flags & SHF_TLS) == 0);
    }
}

} // namespace

TEST_CASE("libos apps: every RT application passes the kernel's ELF parser in the user window", "[libos]")
{
    for (const char* name : {"hello", "periodic", "misbehave", "heartbeat"})
        check_layout(load_app(name));
}

TEST_CASE("libos apps: the console formats integration tests rely on are in the images", "[libos]")
{
    struct Expect {
        const char* app;
        const char* text;
    };
    const Expect expected[] = {
        {"hello", "hello: hello from ring 3 at %llu ns"},
        {"periodic", "periodic: task %s periods=%llu jitter_max_ns=%llu jitter_avg_ns=%llu response_max_ns=%llu "
                     "misses=%llu budget_used_ns=%llu replenishments=%llu\n"},
        {"periodic", "periodic: done\n"},
        {"misbehave", "misbehave: %s%s -> %s ok\n"},
        {"misbehave", "misbehave: badptr all ok\n"},
        {"misbehave", "misbehave: overrun done periods=%llu misses=%llu\n"},
        {"misbehave", "misbehave: %s about to fault\n"},
        {"misbehave", "misbehave: %s NOT STOPPED\n"},
        {"heartbeat", "heartbeat %llu t_ms=%llu linux=%s\n"},
        {"heartbeat", "heartbeat done beats=%llu late=%llu\n"},
        {"heartbeat", "absent"},
        {"heartbeat", "starting"},
        {"heartbeat", "running"},
        {"heartbeat", "stopped"},
    };
    for (const Expect& e : expected) {
        INFO(e.app << ": " << e.text);
        App app = load_app(e.app);
        CHECK(app.rodata_contains(parse_ok(app), e.text));
    }
}

#endif // VLIBOS_RT_APPS_DIR
