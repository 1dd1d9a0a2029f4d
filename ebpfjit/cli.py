"""The `ebpfjit` command line: assemble, disassemble, run, inspect JIT output, run the suite.

Exit status: 0 success, 1 a program or input error, 2 usage. Errors print `ebpfjit: error: ...`
without a traceback unless --debug is given.
"""
from __future__ import annotations

import argparse
import os
import sys

from .errors import EbpfError

ELF_MAGIC = b"\x7fELF"


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as f:
        return f.read()


def _load_programs(path: str, program: str | None = None, section: str | None = None):
    """Programs in FILE: an ELF object, a `.data` test, assembly text (.s/.asm) or raw bytecode.

    Returns a list of (name, Program, mem) where mem is the test memory of a `.data` file.
    """
    from .program import Program
    blob = _read_input(path)
    if blob.startswith(ELF_MAGIC):
        from .loader import load
        obj = load(blob if path == "-" else path)
        if program or section:
            prog = obj.programs[program] if program else obj.program(section=section)
            return [(prog.name, prog, None)]
        return [(name, prog, None) for name, prog in obj.programs.items()]
    name = os.path.basename(path)
    if path.endswith(".data"):
        from . import testdata
        from .conformance import conformance_program
        case = testdata.load(path)
        return [(name, conformance_program(case.code), case.mem)]
    if path.endswith((".s", ".asm")):
        return [(name, Program.from_asm(blob.decode()), None)]
    return [(name, Program.from_bytes(blob), None)]


def _one_program(args):
    progs = _load_programs(args.file, getattr(args, "program", None), getattr(args, "section", None))
    if len(progs) != 1:
        names = ", ".join(name for name, _, _ in progs)
        raise EbpfError(f"{args.file} holds {len(progs)} programs ({names}); choose one with --program")
    return progs[0]


def cmd_asm(args) -> int:
    from .asm import assemble
    code = assemble(_read_input(args.file).decode())
    if args.output in (None, "-"):
        sys.stdout.buffer.write(code) if args.binary else print(code.hex())
    else:
        with open(args.output, "wb") as f:
            f.write(code)
    return 0


def cmd_disasm(args) -> int:
    progs = _load_programs(args.file, args.program, args.section)
    for name, prog, _ in progs:
        if len(progs) > 1 or prog.name != "prog":
            print(f"{name}:")
        print(prog.disassemble(syntax=args.syntax))
    return 0


def _mem_from_args(args, default: bytes | None) -> bytearray:
    if args.mem is not None:
        try:
            return bytearray.fromhex(args.mem)
        except ValueError as exc:
            raise EbpfError(f"--mem: {exc}") from None
    if args.mem_file is not None:
        return bytearray(_read_input(args.mem_file))
    return bytearray(default or b"")


VERDICTS = {
    "XDP": {0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX", 4: "XDP_REDIRECT"},
    "SCHED_CLS": {-1: "TC_ACT_UNSPEC", 0: "TC_ACT_OK", 1: "TC_ACT_RECLASSIFY", 2: "TC_ACT_SHOT",
                  3: "TC_ACT_PIPE", 4: "TC_ACT_STOLEN", 5: "TC_ACT_QUEUED", 6: "TC_ACT_REPEAT",
                  7: "TC_ACT_REDIRECT"},
}


def verdict_name(prog, retval: int) -> str:
    names = VERDICTS.get(prog.type.name, {})
    signed = retval - (1 << 32) if retval & 0x80000000 else retval
    return names.get(signed, f"{retval:#x}")


def cmd_run(args) -> int:
    name, prog, mem = _one_program(args)
    is_object_prog = hasattr(prog, "test_run")
    if args.pcap:
        if not is_object_prog:
            raise EbpfError("--pcap needs a program from an ELF object (XDP, tc or socket filter)")
        from .stream import Progress, run_pcap_command
        progress = Progress(label=f"{name}: ")
        if run_pcap_command(prog, name, args, progress):
            return 2
    elif is_object_prog and prog.type != 0:
        data = _mem_from_args(args, mem)
        retval, data_out, _ = prog.test_run(bytes(data), engine=args.engine)
        print(f"retval {retval:#x} ({verdict_name(prog, retval)})")
        if args.output:
            with open(args.output, "wb") as f:
                f.write(data_out)
    else:
        data = _mem_from_args(args, mem)
        r0 = prog.run(data, engine=args.engine)
        print(f"{r0:#x}")
        if args.output:
            with open(args.output, "wb") as f:
                f.write(bytes(data))
    if args.dump_maps and is_object_prog:
        for map_name, m in prog.object.maps.items():
            print(f"map {map_name}:")
            print(format_map_summary(m))
    return 0


def format_map_summary(m) -> str:
    """One line per entry, decoded through BTF where possible; all-zero array slots elided
    (a run summary, unlike `map dump`, which prints what bpftool prints)."""
    import json

    from .spec import MapType
    lines, hidden = [], 0
    array_like = m.spec.type in (MapType.ARRAY, MapType.PERCPU_ARRAY)
    for entry in m.dump():
        shown = entry.get("formatted", entry)
        values = entry.get("values") or [{"value": entry.get("value", [])}]
        if array_like and all(b == "0x00" for v in values for b in v["value"]):
            hidden += 1
            continue
        value = shown.get("value", shown.get("values"))
        lines.append(f"  {json.dumps(shown['key'])}: {json.dumps(value)}")
    if hidden:
        lines.append(f"  ({hidden} all-zero entries not shown)")
    return "\n".join(lines) if lines else "  (empty)"


def format_map_dump(m, json_output: bool) -> str:
    """A map's contents as `bpftool map dump` prints them (`-j`: its JSON)."""
    import json
    entries = m.dump()
    if json_output:
        return json.dumps(entries)
    if m.btf is not None and any("formatted" in e for e in entries):
        return json.dumps([e["formatted"] for e in entries], indent=4)
    lines = []
    for entry in entries:
        key = " ".join(b[2:] for b in entry["key"])
        if "values" in entry:
            lines.append(f"key:\n{key}")
            for per_cpu in entry["values"]:
                value = " ".join(b[2:] for b in per_cpu["value"])
                lines.append(f"value (CPU {per_cpu['cpu']:02d}): {value}")
        else:
            value = " ".join(b[2:] for b in entry["value"])
            lines.append(f"key: {key}  value: {value}")
    noun = "element" if len(entries) == 1 else "elements"
    lines.append(f"Found {len(entries)} {noun}")
    return "\n".join(lines)


def cmd_map(args) -> int:
    from .loader import load
    obj = load(args.file)
    if args.map_command == "list":
        for index, (map_name, m) in enumerate(obj.maps.items()):
            spec = m.spec
            print(f"{index}: {spec.type.name.lower()}  name {map_name}  flags {spec.flags:#x}")
            print(f"\tkey {spec.key_size}B  value {spec.value_size}B  max_entries {spec.max_entries}")
        return 0
    names = [args.map] if args.map else list(obj.maps)
    for map_name in names:
        if map_name not in obj.maps:
            raise EbpfError(f"{args.file}: no map named {map_name!r}; maps: {', '.join(obj.maps)}")
        if len(names) > 1 and not args.json:
            print(f"map {map_name}:")
        print(format_map_dump(obj.maps[map_name], json_output=args.json))
    return 0


def cmd_dump(args) -> int:
    _, prog, _ = _one_program(args)
    prog.opt_level = args.opt_level
    if args.ir:
        print(prog.llvm_ir(optimized=args.optimized))
    if args.asm or not args.ir:
        print(prog.native_asm(target=args.target))
    return 0


def cmd_compile(args) -> int:
    from .jit import emit_object
    _, prog, _ = _one_program(args)
    obj = emit_object(prog.code, target=args.target, opt_level=args.opt_level,
                      maps=prog._jit_maps())
    with open(args.output, "wb") as f:
        f.write(obj)
    return 0


def cmd_conformance(args) -> int:
    import glob

    from . import testdata
    from .conformance import run_case
    paths = sorted(glob.glob(os.path.join(args.directory, "*.data")))
    failed = 0
    for path in paths:
        outcome = run_case(testdata.load(path), args.engine)
        if not outcome.passed:
            failed += 1
            print(f"FAIL {outcome.name}: {outcome.detail}")
        elif args.verbose:
            print(f"PASS {outcome.name}")
    print(f"{len(paths) - failed} passed, {failed} failed")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ebpfjit", description="Userspace eBPF: interpreter and LLVM JIT.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    def add_prog_args(p):
        p.add_argument("file", help="ELF object, .data test, .s assembly or raw bytecode ('-' = stdin)")
        p.add_argument("--program", help="program (function) name in an ELF object")
        p.add_argument("--section", help="program section in an ELF object")

    p = sub.add_parser("asm", help="assemble bpf_conformance-dialect text into bytecode")
    p.add_argument("file")
    p.add_argument("-o", "--output", help="output file (default: hex on stdout)")
    p.add_argument("--binary", action="store_true", help="write raw bytes to stdout")
    p.set_defaults(func=cmd_asm)

    p = sub.add_parser("disasm", help="disassemble bytecode or an ELF object")
    add_prog_args(p)
    p.add_argument("--syntax", choices=("llvm", "conformance"), default="llvm")
    p.set_defaults(func=cmd_disasm)

    p = sub.add_parser("run", help="run a program once and print r0 (or the verdict)")
    add_prog_args(p)
    p.add_argument("--engine", choices=("interp", "jit"), default="interp")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--mem", help="input memory as hex")
    g.add_argument("--mem-file", "--data-file", dest="mem_file", help="input memory from a file")
    g.add_argument("--pcap", help="run every packet of a pcap file (ELF programs)")
    p.add_argument("-o", "--output", help="write the memory/packet(s) after the run to this file "
                                          "(a pcap with --pcap)")
    p.add_argument("--keep", choices=("all", "pass", "drop"), default="all",
                   help="with --pcap -o: which output packets to write (default all)")
    p.add_argument("--dump-maps", action="store_true", help="print the object's maps afterwards")
    p.add_argument("-v", "--verbose", action="store_true", help="one line per packet")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("map", help="inspect the maps of an object, bpftool style")
    map_sub = p.add_subparsers(dest="map_command", required=True)
    q = map_sub.add_parser("dump", help="dump a map's entries (as after loading)")
    q.add_argument("file")
    q.add_argument("--map", help="map name (default: every map)")
    q.add_argument("-j", "--json", action="store_true", help="bpftool's JSON format")
    q.set_defaults(func=cmd_map)
    q = map_sub.add_parser("list", help="list the maps of an object")
    q.add_argument("file")
    q.set_defaults(func=cmd_map)

    p = sub.add_parser("dump", help="print the LLVM IR and/or native assembly of a program")
    add_prog_args(p)
    p.add_argument("--ir", action="store_true", help="LLVM IR")
    p.add_argument("--asm", action="store_true", help="native assembly (default)")
    p.add_argument("--optimized", action="store_true", help="IR after optimisation")
    p.add_argument("--target", choices=("x86_64", "aarch64"), default=None)
    p.add_argument("-O", dest="opt_level", type=int, default=2, choices=(0, 1, 2, 3))
    p.set_defaults(func=cmd_dump)

    p = sub.add_parser("compile", help="emit a relocatable native object file")
    add_prog_args(p)
    p.add_argument("--target", choices=("x86_64", "aarch64"), default=None)
    p.add_argument("-O", dest="opt_level", type=int, default=2, choices=(0, 1, 2, 3))
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("conformance", help="run a directory of bpf_conformance .data files")
    p.add_argument("directory")
    p.add_argument("--engine", default="interp", help="interp, jit or jit-O0..3")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=cmd_conformance)

    from .compare import add_compare_parser
    add_compare_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (EbpfError, OSError, KeyError) as exc:
        if args.debug:
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"ebpfjit: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
