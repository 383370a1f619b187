#include "core/percpu.hpp"

#include "arch/x86_64/cpu.hpp"

namespace vlibos {

PerCpu g_cpus[kMaxCpus];
uint32_t g_cpu_count = 0;

void install_percpu(PerCpu& cpu)
{
    cpu.self = &cpu;
    x86::write_msr(x86::Msr::GsBase, reinterpret_cast<uint64_t>(&cpu));
}

} // namespace vlibos
