# vlibos_rpcgen(): generates the RPC interface headers from kernel/rpc/calls.def with
# tools/rpcgen.py into <build>/generated/rpc/vlibos/ (never into the source tree) and defines the
# INTERFACE target vlibos_rpc_gen: link it to include <vlibos/rpc_opcodes.h>, <vlibos/rpc_calls.h>
# and <vlibos/rpc_stubs.h> (they include "rpc/wire.h", so kernel/ must be on the include path).
# Calling it twice is harmless.
function(vlibos_rpcgen)
    if(TARGET vlibos_rpc_gen)
        return()
    endif()
    find_package(Python3 REQUIRED COMPONENTS Interpreter)
    set(def ${CMAKE_SOURCE_DIR}/kernel/rpc/calls.def)
    set(gen ${CMAKE_SOURCE_DIR}/tools/rpcgen.py)
    set(out ${CMAKE_BINARY_DIR}/generated/rpc)
    set(headers ${out}/vlibos/rpc_opcodes.h ${out}/vlibos/rpc_calls.h ${out}/vlibos/rpc_stubs.h)
    add_custom_command(
        OUTPUT ${headers}
        COMMAND ${Python3_EXECUTABLE} ${gen} ${def} --out-dir ${out}
        # rpcgen leaves unchanged files alone; touch them so the rule is not re-run every build.
        COMMAND ${CMAKE_COMMAND} -E touch ${headers}
        DEPENDS ${def} ${gen}
        COMMENT "Generating the RPC interface from calls.def"
        VERBATIM)
    add_custom_target(vlibos_rpc_headers DEPENDS ${headers})
    add_library(vlibos_rpc_gen INTERFACE)
    target_include_directories(vlibos_rpc_gen INTERFACE ${out} ${CMAKE_SOURCE_DIR}/kernel)
    # Followed transitively: whatever links vlibos_rpc_gen is built after the headers exist.
    add_dependencies(vlibos_rpc_gen vlibos_rpc_headers)
endfunction()
