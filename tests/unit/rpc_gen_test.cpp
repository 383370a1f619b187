// The generated RPC interface (tools/rpcgen.py from kernel/rpc/calls.def): the opcode enum, the
// descriptor table the validator uses and the stub declarations; and the generator itself, run
// on broken and extended copies of calls.def.
#include "vlibos/rpc_calls.h"
#include "vlibos/rpc_opcodes.h"
#include "vlibos/rpc_stubs.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <type_traits>
#include <unistd.h>

#include "rpc/reply_validator.hpp"

using namespace vlibos::rpc;

namespace {

Catalog generated() { return Catalog{vlibos_rpc_calls, VLIBOS_RPC_OP_LIMIT}; }

const vlibos_rpc_call_desc& desc(uint32_t op)
{
    const vlibos_rpc_call_desc* d = generated().find(op);
    REQUIRE(d != nullptr);
    return *d;
}

struct Run {
    int status;
    std::string output;
};

// Runs rpcgen.py on `def_text` into a fresh directory; returns its exit status and stderr.
Run rpcgen(const std::string& def_text, std::string* out_dir = nullptr)
{
    char dir[] = "/tmp/vlibos-rpcgen-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    std::string def = std::string(dir) + "/calls.def";
    std::ofstream(def) << def_text;
    std::string cmd = std::string(VLIBOS_PYTHON) + " " + VLIBOS_RPCGEN + " " + def + " --out-dir " + dir + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    std::string output;
    char buf[256];
    while (size_t n = fread(buf, 1, sizeof buf, p))
        output.append(buf, n);
    int status = pclose(p);
    if (out_dir)
        *out_dir = dir;
    else
        std::filesystem::remove_all(dir);
    return Run{WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::string slurp(const std::string& path)
{
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

} // namespace

TEST_CASE("rpcgen: opcodes are calls.def's wire numbers", "[rpc][gen]")
{
    CHECK(VLIBOS_RPC_OP_NULL == 1);
    CHECK(VLIBOS_RPC_OP_READ == 4);
    CHECK(VLIBOS_RPC_OP_WRITE == 5);
    CHECK(VLIBOS_RPC_OP_SOCKET == 32);
    CHECK(VLIBOS_RPC_OP_CLOCK_REALTIME == 48);
    CHECK(VLIBOS_RPC_OP_RUN == 56);
    CHECK(VLIBOS_RPC_OP_LIMIT == 57);
    CHECK(sizeof(vlibos_rpc_calls) / sizeof(vlibos_rpc_calls[0]) == VLIBOS_RPC_OP_LIMIT);
}

TEST_CASE("rpcgen: the descriptor table is consistent and covers issue 6's calls", "[rpc][gen]")
{
    REQUIRE(check_catalog(generated()).ok());
    int named = 0;
    for (uint32_t op = 0; op < VLIBOS_RPC_OP_LIMIT; ++op) {
        if (vlibos_rpc_calls[op].name == nullptr)
            continue;
        ++named;
        CHECK(vlibos_rpc_calls[op].opcode == op);
    }
    CHECK(named == 27);
    CHECK(generated().find(0) == nullptr);
    CHECK(generated().find(17) == nullptr);  // a gap
    CHECK(generated().find(VLIBOS_RPC_OP_LIMIT) == nullptr);

    const char* wanted[] = {"open", "openat", "read", "write", "pread", "pwrite", "lseek", "close", "fstat",
                            "stat", "unlink", "mkdir", "rename", "fsync", "getdents", "socket", "connect", "bind",
                            "listen", "accept", "send", "recv", "shutdown", "resolve", "clock_realtime", "run"};
    for (const char* name : wanted) {
        bool found = false;
        for (uint32_t op = 0; op < VLIBOS_RPC_OP_LIMIT; ++op)
            found = found || (vlibos_rpc_calls[op].name && std::string(vlibos_rpc_calls[op].name) == name);
        INFO(name);
        CHECK(found);
    }
}

TEST_CASE("rpcgen: descriptors say what the validator needs", "[rpc][gen]")
{
    const auto& read = desc(VLIBOS_RPC_OP_READ);
    CHECK(std::string(read.name) == "read");
    CHECK(read.arg_count == 2);
    CHECK(read.result_kind == VLIBOS_RPC_RESULT_COUNT);
    CHECK(read.count_arg == 1);
    CHECK(read.out_arg == 1);
    CHECK(read.args[0].kind == VLIBOS_RPC_ARG_FD);
    CHECK(read.args[1].kind == VLIBOS_RPC_ARG_OUT_BYTES);
    CHECK(read.args[1].elem_size == 1);
    CHECK(std::string(read.args[1].name) == "buf");

    const auto& write = desc(VLIBOS_RPC_OP_WRITE);
    CHECK(write.count_arg == 1);
    CHECK(write.out_arg == VLIBOS_RPC_NO_ARG);
    CHECK(write.args[1].kind == VLIBOS_RPC_ARG_IN_BYTES);

    const auto& fstat = desc(VLIBOS_RPC_OP_FSTAT);
    CHECK(fstat.result_kind == VLIBOS_RPC_RESULT_ZERO);
    CHECK(fstat.args[1].kind == VLIBOS_RPC_ARG_OUT_OBJ);
    CHECK(fstat.args[1].elem_size == sizeof(vlibos_rpc_stat));

    const auto& resolve = desc(VLIBOS_RPC_OP_RESOLVE);
    CHECK(resolve.count_arg == 2);
    CHECK(resolve.args[2].kind == VLIBOS_RPC_ARG_OUT_ARRAY);
    CHECK(resolve.args[2].elem_size == sizeof(vlibos_rpc_sockaddr));

    CHECK(desc(VLIBOS_RPC_OP_ACCEPT).result_kind == VLIBOS_RPC_RESULT_FD);
    CHECK(desc(VLIBOS_RPC_OP_LSEEK).result_kind == VLIBOS_RPC_RESULT_OFFSET);
    CHECK(desc(VLIBOS_RPC_OP_RUN).result_kind == VLIBOS_RPC_RESULT_WAIT_STATUS);
    CHECK(desc(VLIBOS_RPC_OP_CONNECT).args[1].elem_size == sizeof(vlibos_rpc_sockaddr));
    CHECK(desc(VLIBOS_RPC_OP_RENAME).arg_count == 2);

    // The generated table drives the validator: a read of 10 bytes may not return 11.
    ReplyValidator v(generated(), 2, 4096);
    CallShape s;
    s.opcode = VLIBOS_RPC_OP_READ;
    s.out_capacity = 10;
    auto c = v.issue(s, 0);
    REQUIRE(c.ok());
    vlibos_rpc_response r{c.value().id, VLIBOS_RPC_OP_READ, c.value().index, 11, 0, 11};
    CHECK(v.accept(r).value().fault == ReplyError::DataTooLong);
}

TEST_CASE("rpcgen: stub declarations have POSIX-like signatures plus a timeout", "[rpc][gen]")
{
    STATIC_REQUIRE(std::is_same_v<decltype(&vlibos_stub_read), int64_t (*)(int32_t, void*, uint64_t, uint64_t)>);
    STATIC_REQUIRE(
        std::is_same_v<decltype(&vlibos_stub_write), int64_t (*)(int32_t, const void*, uint64_t, uint64_t)>);
    STATIC_REQUIRE(std::is_same_v<decltype(&vlibos_stub_openat),
                                  int64_t (*)(int32_t, const char*, int32_t, uint32_t, uint64_t)>);
    STATIC_REQUIRE(std::is_same_v<decltype(&vlibos_stub_fstat), int64_t (*)(int32_t, vlibos_rpc_stat*, uint64_t)>);
    STATIC_REQUIRE(std::is_same_v<decltype(&vlibos_stub_connect),
                                  int64_t (*)(int32_t, const vlibos_rpc_sockaddr*, uint64_t)>);
    STATIC_REQUIRE(std::is_same_v<decltype(&vlibos_stub_resolve),
                                  int64_t (*)(const char*, const char*, vlibos_rpc_sockaddr*, uint64_t, uint64_t)>);
    STATIC_REQUIRE(std::is_same_v<decltype(&vlibos_stub_run),
                                  int64_t (*)(const char*, const void*, uint64_t, void*, uint64_t, uint64_t)>);
    STATIC_REQUIRE(std::is_same_v<decltype(&vlibos_stub_null), int64_t (*)(uint64_t)>);
}

TEST_CASE("rpcgen: adding a call is adding one line", "[rpc][gen]")
{
    std::string def = slurp(VLIBOS_CALLS_DEF);
    REQUIRE(!def.empty());
    std::string dir;
    Run run = rpcgen(def + "truncate 60 zero path:in_str length:i64\n", &dir);
    INFO(run.output);
    REQUIRE(run.status == 0);
    std::string opcodes = slurp(dir + "/vlibos/rpc_opcodes.h");
    CHECK(opcodes.find("VLIBOS_RPC_OP_TRUNCATE = 60,") != std::string::npos);
    CHECK(opcodes.find("VLIBOS_RPC_OP_LIMIT = 61") != std::string::npos);
    CHECK(slurp(dir + "/vlibos/rpc_stubs.h").find("int64_t vlibos_stub_truncate(const char* path, int64_t length, "
                                                  "uint64_t timeout_ns);") != std::string::npos);
    CHECK(slurp(dir + "/vlibos/rpc_calls.h").find("{\"truncate\", VLIBOS_RPC_OP_TRUNCATE, 2, VLIBOS_RPC_RESULT_ZERO")
          != std::string::npos);
    std::filesystem::remove_all(dir);
}

TEST_CASE("rpcgen: a broken calls.def is refused with its line named", "[rpc][gen]")
{
    struct Case {
        const char* def;
        const char* message;
    } cases[] = {
        {"null 1 zero\nnull 2 zero\n", "calls.def:2: call 'null' is defined twice"},
        {"a 1 zero\nb 1 zero\n", "share opcode 1"},
        {"a 0 zero\n", "opcode '0' is not 1-255"},
        {"a 256 zero\n", "opcode '256'"},
        {"Bad 1 zero\n", "not a lower-case C identifier"},
        {"a 1 maybe\n", "result 'maybe'"},
        {"a 1 count\n", "result 'count'"},
        {"a 1 count(x) fd:fd\n", "count(x) must name"},
        {"a 1 count(fd) fd:fd\n", "count(fd) must name"},
        {"a 1 zero fd:float\n", "unknown kind 'float'"},
        {"a 1 zero st:out_obj\n", "needs a (TYPE)"},
        {"a 1 zero st:out_obj(inode)\n", "unknown type 'inode'"},
        {"a 1 zero b:out_bytes(stat)\n", "takes no (TYPE)"},
        {"a 1 zero x:i32 x:i32\n", "same name"},
        {"a 1 zero a:out_bytes b:out_bytes\n", "more than one output"},
        {"a 1 zero a:i32 b:i32 c:i32 d:i32 e:i32 f:i32\n", "at most 5"},
        {"a 1 zero timeout_ns:u64\n", "timeout_ns"},
        {"a 1 zero x\n", "is not NAME:KIND"},
        {"a 1\n", "expected: name opcode result"},
        {"# only a comment\n", "no calls"},
    };
    for (const Case& c : cases) {
        Run run = rpcgen(c.def);
        INFO(c.def << "-> " << run.output);
        CHECK(run.status == 1);
        CHECK(run.output.find(c.message) != std::string::npos);
        CHECK(run.output.rfind("rpcgen: error: ", 0) == 0);
    }
}
