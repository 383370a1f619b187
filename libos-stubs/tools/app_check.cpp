// vlibos_app_check ELF...: runs the kernel's own ELF parser (kernel/elf/elf64.cpp) over built RT
// applications, so an image the loader would refuse fails the build, not the boot. Also checks
// what the parser cannot know: every segment lies in the RT user window. Quiet on success.
#include <stdint.h>
#include <stdio.h>

#include <fstream>
#include <iterator>
#include <vector>

#include "elf/elf64.hpp"

namespace {

// The RT sandbox's user window (libos-stubs/app.ld).
constexpr uint64_t kWindowBase = 0x0000'4000'0000'0000;
constexpr uint64_t kWindowEnd = kWindowBase + (uint64_t{1} << 30);

bool check(const char* path)
{
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        fprintf(stderr, "vlibos_app_check: %s: cannot read\n", path);
        return false;
    }
    std::vector<uint8_t> image{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
    vlibos::elf::Program program{};
    auto status = vlibos::elf::parse(image.data(), image.size(), kWindowEnd, program);
    if (!status) {
        fprintf(stderr, "vlibos_app_check: %s: the kernel's loader would refuse it: %s\n", path,
                vlibos::elf::describe(status.error()));
        return false;
    }
    for (size_t i = 0; i < program.segment_count; ++i) {
        const vlibos::elf::Segment& s = program.segments[i];
        if (vlibos::elf::page_base(s) < kWindowBase) {
            fprintf(stderr, "vlibos_app_check: %s: segment %zu at %#llx lies below the user window %#llx\n", path, i,
                    static_cast<unsigned long long>(s.vaddr), static_cast<unsigned long long>(kWindowBase));
            return false;
        }
    }
    return true;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: vlibos_app_check ELF...\n");
        return 2;
    }
    bool ok = true;
    for (int i = 1; i < argc; ++i)
        ok = check(argv[i]) && ok;
    return ok ? 0 : 1;
}
