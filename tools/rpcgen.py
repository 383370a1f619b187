#!/usr/bin/env python3
"""rpcgen: generate the RPC interface headers from kernel/rpc/calls.def (docs/rpc.md).

usage: rpcgen.py CALLS_DEF --out-dir DIR [--wire-include rpc/wire.h]

Writes DIR/vlibos/rpc_opcodes.h (the opcode enum), DIR/vlibos/rpc_calls.h (the descriptor table
vlibos_rpc_calls[], indexed by opcode, that the master's reply validator uses) and
DIR/vlibos/rpc_stubs.h (the C stub declarations of libos-stubs). All three are C11 and C++.
A file whose content would not change is left alone, so nothing rebuilds needlessly.
"""
import argparse
import os
import re
import sys

MAX_ARGS = 5        # VLIBOS_RPC_MAX_ARGS
MAX_OPCODE = 255
IDENT = re.compile(r"[a-z_][a-z0-9_]*\Z")
OBJECTS = ("stat", "timespec", "sockaddr")   # struct vlibos_rpc_<T> in rpc/wire.h
SCALARS = {"i32": "int32_t", "u32": "uint32_t", "i64": "int64_t", "u64": "uint64_t", "fd": "int32_t"}
BUFFERS = ("in_str", "in_bytes", "in_obj", "out_bytes", "out_obj", "out_array")
RESULTS = ("zero", "fd", "count", "offset", "wait_status")


class DefError(Exception):
    pass


class Arg:
    def __init__(self, name, kind, obj):
        self.name, self.kind, self.obj = name, kind, obj

    @property
    def is_output(self):
        return self.kind.startswith("out_")

    def elem_size(self):
        if self.kind in SCALARS:
            return "0"
        return f"sizeof(struct vlibos_rpc_{self.obj})" if self.obj else "1"

    def params(self):
        """The stub's C parameters for this argument."""
        n, o = self.name, f"struct vlibos_rpc_{self.obj}"
        return {
            "in_str": [f"const char* {n}"],
            "in_bytes": [f"const void* {n}", f"uint64_t {n}_len"],
            "in_obj": [f"const {o}* {n}"],
            "out_bytes": [f"void* {n}", f"uint64_t {n}_len"],
            "out_obj": [f"{o}* {n}"],
            "out_array": [f"{o}* {n}", f"uint64_t {n}_count"],
        }.get(self.kind, [f"{SCALARS.get(self.kind)} {n}"])


class Call:
    def __init__(self, name, opcode, result, count_arg, args):
        self.name, self.opcode, self.result, self.count_arg, self.args = name, opcode, result, count_arg, args

    def index_of(self, arg_name):
        return next(i for i, a in enumerate(self.args) if a.name == arg_name)


def parse_arg(text):
    m = re.fullmatch(r"([a-z_][a-z0-9_]*):([a-z_0-9]+)(?:\(([a-z_]+)\))?", text)
    if not m:
        raise DefError(f"argument '{text}' is not NAME:KIND or NAME:KIND(TYPE)")
    name, kind, obj = m.groups()
    if kind not in SCALARS and kind not in BUFFERS:
        raise DefError(f"argument '{name}': unknown kind '{kind}'")
    wants_obj = kind in ("in_obj", "out_obj", "out_array")
    if wants_obj != (obj is not None):
        raise DefError(f"argument '{name}': kind {kind} " + ("needs a (TYPE)" if wants_obj else "takes no (TYPE)"))
    if obj is not None and obj not in OBJECTS:
        raise DefError(f"argument '{name}': unknown type '{obj}' (known: {', '.join(OBJECTS)})")
    if name == "timeout_ns":
        raise DefError("'timeout_ns' is the stub's own last parameter")
    return Arg(name, kind, obj)


def parse_call(fields):
    if len(fields) < 3:
        raise DefError("expected: name opcode result argument...")
    name, opcode_text, result_text = fields[:3]
    if not IDENT.match(name):
        raise DefError(f"call name '{name}' is not a lower-case C identifier")
    if not opcode_text.isdigit() or not 1 <= int(opcode_text) <= MAX_OPCODE:
        raise DefError(f"call '{name}': opcode '{opcode_text}' is not 1-{MAX_OPCODE}")
    m = re.fullmatch(r"([a-z_]+)(?:\(([a-z_0-9]+)\))?", result_text)
    if not m or m.group(1) not in RESULTS or (m.group(1) == "count") != (m.group(2) is not None):
        raise DefError(f"call '{name}': result '{result_text}' is not one of zero, fd, offset, wait_status, count(ARG)")
    args = [parse_arg(f) for f in fields[3:]]
    if len(args) > MAX_ARGS:
        raise DefError(f"call '{name}': {len(args)} arguments, at most {MAX_ARGS}")
    names = [a.name for a in args]
    if len(set(names)) != len(names):
        raise DefError(f"call '{name}': two arguments have the same name")
    if sum(a.is_output for a in args) > 1:
        raise DefError(f"call '{name}': more than one output buffer")
    count_arg = m.group(2)
    if count_arg is not None:
        counted = next((a for a in args if a.name == count_arg), None)
        if counted is None or counted.kind not in ("in_str", "in_bytes", "out_bytes", "out_array"):
            raise DefError(f"call '{name}': count({count_arg}) must name a bytes, string or array argument")
    return Call(name, int(opcode_text), m.group(1), count_arg, args)


def parse(path):
    calls = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            try:
                call = parse_call(fields)
                for other in calls:
                    if other.name == call.name:
                        raise DefError(f"call '{call.name}' is defined twice")
                    if other.opcode == call.opcode:
                        raise DefError(f"calls '{other.name}' and '{call.name}' share opcode {call.opcode}")
            except DefError as e:
                raise DefError(f"{path}:{number}: {e}") from None
            calls.append(call)
    if not calls:
        raise DefError(f"{path}: no calls")
    return sorted(calls, key=lambda c: c.opcode)


PREAMBLE = """/* Generated by tools/rpcgen.py from kernel/rpc/calls.def: do not edit. */
#ifndef {guard}
#define {guard}

"""
CPP_OPEN = "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
CPP_CLOSE = "\n#ifdef __cplusplus\n}\n#endif\n"


def opcodes_h(calls):
    lines = [PREAMBLE.format(guard="VLIBOS_RPC_OPCODES_H"), "enum vlibos_rpc_opcode {\n"]
    lines += [f"    VLIBOS_RPC_OP_{c.name.upper()} = {c.opcode},\n" for c in calls]
    lines.append(f"    VLIBOS_RPC_OP_LIMIT = {calls[-1].opcode + 1} /* one past the highest opcode */\n}};\n")
    lines.append("\n#endif\n")
    return "".join(lines)


def desc_entry(call):
    if call is None:  # a gap in the opcode numbers
        args = ", ".join(["{0, 0, {0, 0, 0}, 0}"] * MAX_ARGS)
        return f"    {{0, 0, 0, VLIBOS_RPC_RESULT_INVALID, VLIBOS_RPC_NO_ARG, VLIBOS_RPC_NO_ARG, {{{args}}}}},\n"
    args = [f"{{\"{a.name}\", VLIBOS_RPC_ARG_{a.kind.upper()}, {{0, 0, 0}}, {a.elem_size()}}}" for a in call.args]
    args += ["{0, 0, {0, 0, 0}, 0}"] * (MAX_ARGS - len(call.args))
    count = call.index_of(call.count_arg) if call.count_arg else "VLIBOS_RPC_NO_ARG"
    out = next((i for i, a in enumerate(call.args) if a.is_output), "VLIBOS_RPC_NO_ARG")
    body = ",\n        ".join(args)
    return (f"    {{\"{call.name}\", VLIBOS_RPC_OP_{call.name.upper()}, {len(call.args)}, "
            f"VLIBOS_RPC_RESULT_{call.result.upper()}, {count}, {out},\n        {{{body}}}}},\n")


def calls_h(calls, wire_include):
    by_opcode = {c.opcode: c for c in calls}
    lines = [PREAMBLE.format(guard="VLIBOS_RPC_CALLS_H"), f"#include \"{wire_include}\"\n",
             "#include \"vlibos/rpc_opcodes.h\"\n\n", CPP_OPEN,
             "/* Indexed by opcode; entries with a NULL name are gaps in the numbering. */\n",
             "static const struct vlibos_rpc_call_desc vlibos_rpc_calls[VLIBOS_RPC_OP_LIMIT]\n",
             "    __attribute__((unused)) = {\n"]
    lines += [desc_entry(by_opcode.get(op)) for op in range(calls[-1].opcode + 1)]
    lines += ["};\n", CPP_CLOSE, "\n#endif\n"]
    return "".join(lines)


def stubs_h(calls, wire_include):
    lines = [PREAMBLE.format(guard="VLIBOS_RPC_STUBS_H"), f"#include \"{wire_include}\"\n\n", CPP_OPEN,
             "/* One stub per call: >= 0 as calls.def says, or -errno (-ETIMEDOUT when timeout_ns,\n",
             " * 0 meaning the application's default, passes without a reply). */\n"]
    for c in calls:
        params = [p for a in c.args for p in a.params()] + ["uint64_t timeout_ns"]
        lines.append(f"int64_t vlibos_stub_{c.name}({', '.join(params)});\n")
    lines += [CPP_CLOSE, "\n#endif\n"]
    return "".join(lines)


def write_if_changed(path, text):
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main(argv):
    parser = argparse.ArgumentParser(description="Generate the vlibos RPC headers from calls.def.")
    parser.add_argument("calls_def")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--wire-include", default="rpc/wire.h", help="how the outputs include rpc/wire.h")
    options = parser.parse_args(argv)
    try:
        calls = parse(options.calls_def)
    except (DefError, OSError) as e:
        print(f"rpcgen: error: {e}", file=sys.stderr)
        return 1
    out = os.path.join(options.out_dir, "vlibos")
    write_if_changed(os.path.join(out, "rpc_opcodes.h"), opcodes_h(calls))
    write_if_changed(os.path.join(out, "rpc_calls.h"), calls_h(calls, options.wire_include))
    write_if_changed(os.path.join(out, "rpc_stubs.h"), stubs_h(calls, options.wire_include))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
