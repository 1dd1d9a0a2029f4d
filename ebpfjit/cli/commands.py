"""The `ebpfjit` command line: assemble, disassemble, run, inspect JIT output, run the suite.

Exit status: 0 success, 1 a program or input error, 2 usage. Errors print `ebpfjit: error: ...`
without a traceback unless --debug is given. As in bpftool, `-j` prints JSON (`-p` indented) and
a closed pipe on stdout (`ebpfjit disasm x.o | head -1`) ends quietly.

Imports: ebpfjit.engine, ebpfjit.api, ebpfjit.capture, ebpfjit.cli.conformance, ebpfjit.cli.testdata,
    ebpfjit.cli.verify,
    ebpfjit.errors, ebpfjit.isa, ebpfjit.jit, ebpfjit.objects, ebpfjit.oracle, ebpfjit.version
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

from ..api.program import Program
from ..engine import DEFAULT_ENGINE, Engine
from ..errors import EbpfError
from ..isa.asm import assemble
from ..jit.cache import CacheWarning, CompileCache, cache_enabled
from ..objects.records import decode_records
from ..objects.spec import MapType
from ..objects.verdicts import verdict_name as name_of
from ..oracle.compare import add_compare_parser
from ..version import __version__
from . import testdata
from .conformance import conformance_program, run_case
from .verify import add_verify_parser

ELF_MAGIC = b"\x7fELF"
RAW_SUFFIXES = (".bin", ".raw")      # taken as raw bytecode without --raw
ENGINE_CHOICES = tuple(e.value for e in Engine)
CONFORMANCE_ENGINES = (*ENGINE_CHOICES, *(f"jit-O{n}" for n in range(4)))


class UsageError(EbpfError):
    """A command-line mistake found after parsing (exit status 2, like argparse's)."""


def _emit_json(args, value) -> None:
    print(json.dumps(value, indent=4 if getattr(args, "pretty", False) else None))


def _wants_json(args) -> bool:
    return bool(getattr(args, "json", False) or getattr(args, "pretty", False))


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as f:
        return f.read()


def _load_programs(path: str, program: str | None = None, section: str | None = None,
                   raw: bool = False):
    """Programs in FILE: an ELF object, a `.data` test, assembly text (.s/.asm) or raw bytecode
    (with `raw`, a `.bin`/`.raw` name or stdin; any other file is an error, not a guess).

    Returns a list of (name, Program, mem) where mem is the test memory of a `.data` file.
    """
    blob = _read_input(path)
    if blob.startswith(ELF_MAGIC):
        # Lazy: the C module (ebpfjit._rt): commands that do not run programs report without it.
        from ..api.loader import load
        obj = load(blob if path == "-" else path)
        if program or section:
            prog = obj.program(program, section=section)
            return [(prog.name, prog, None)]
        return [(name, prog, None) for name, prog in obj.programs.items()]
    name = os.path.basename(path)
    if path.endswith(".data"):
        case = testdata.load(path)
        return [(name, conformance_program(case.code), case.mem)]
    if path.endswith((".s", ".asm")):
        return [(name, Program.from_asm(blob.decode()), None)]
    if not (raw or path == "-" or path.endswith(RAW_SUFFIXES)):
        raise UsageError(f"{path} is not an ELF object, a .data test or .s/.asm assembly; give "
                         "--raw to take it as raw bytecode")
    return [(name, Program.from_bytes(blob), None)]


def _one_program(args):
    progs = _load_programs(args.file, getattr(args, "program", None), getattr(args, "section", None),
                           getattr(args, "raw", False))
    if len(progs) != 1:
        names = ", ".join(name for name, _, _ in progs)
        raise EbpfError(f"{args.file} holds {len(progs)} programs ({names}); choose one with --program")
    return progs[0]


def cmd_asm(args) -> int:
    code = assemble(_read_input(args.file).decode())
    if _wants_json(args):
        if args.output not in (None, "-"):
            with open(args.output, "wb") as f:
                f.write(code)
        _emit_json(args, {"insns": len(code) // 8, "bytes": len(code), "hex": code.hex(),
                          "output": args.output if args.output not in (None, "-") else None})
        return 0
    if args.output in (None, "-"):
        sys.stdout.buffer.write(code) if args.binary else print(code.hex())
    else:
        with open(args.output, "wb") as f:
            f.write(code)
    return 0


def cmd_disasm(args) -> int:
    progs = _load_programs(args.file, args.program, args.section, args.raw)
    if _wants_json(args):
        _emit_json(args, [{"name": name, "xlated": bool(args.xlated and hasattr(prog, "spec")),
                           "insns": _disassembly(prog, args).splitlines()} for name, prog, _ in progs])
        return 0
    for name, prog, _ in progs:
        if len(progs) > 1 or prog.name != "prog":
            print(f"{name}:")
        if args.xlated and hasattr(prog, "spec"):
            print("; xlated: after the load-time context-access rewrite")
        print(_disassembly(prog, args))
    return 0


def _disassembly(prog, args) -> str:
    if hasattr(prog, "spec"):     # an object's program: as the object has it, or --xlated
        return prog.disassemble(syntax=args.syntax, xlated=args.xlated)
    return prog.disassemble(syntax=args.syntax)


def _mem_from_args(args, default: bytes | None) -> bytearray:
    if args.mem is not None:
        try:
            return bytearray.fromhex(args.mem)
        except ValueError as exc:
            raise EbpfError(f"--data: {exc}") from None
    if args.mem_file is not None:
        return bytearray(_read_input(args.mem_file))
    return bytearray(default or b"")


def verdict_name(prog, retval: int) -> str:
    return name_of(prog.type, retval)


def cmd_run(args) -> int:
    name, prog, mem = _one_program(args)
    is_object_prog = hasattr(prog, "test_run")
    report: dict = {"program": name, "engine": args.engine}
    if args.ctx_in and not is_object_prog:
        raise UsageError("--ctx-in needs a program from an ELF object")
    if args.pcap:
        if not is_object_prog:
            raise UsageError("--pcap needs a program from an ELF object (XDP, tc or socket filter)")
        # Lazy: the C module (ebpfjit._rt); deadline is the runs' wall-clock limit.
        from ..api.loader import deadline
        from ..capture.stream import Progress, run_pcap_command
        progress = Progress(label=f"{name}: ")
        with deadline(args.timeout, name):     # bounds the whole capture
            failed = run_pcap_command(prog, name, args, progress, report=report,
                                      quiet=_wants_json(args))
        if failed:
            if _wants_json(args):
                _emit_json(args, report)
            return 2
    elif is_object_prog and prog.type != 0:
        data = _mem_from_args(args, mem)
        ctx_in = _read_input(args.ctx_in) if args.ctx_in else None
        retval, data_out, ns = prog.test_run(bytes(data), repeat=args.repeat, engine=args.engine,
                                             ctx_in=ctx_in, budget=args.budget,
                                             timeout=args.timeout)
        report.update(retval=retval, verdict=verdict_name(prog, retval), data_out=data_out.hex(),
                      duration=ns)
        if _wants_json(args):
            pass
        elif args.repeat > 1:
            # bpftool prog run's line: the duration is the mean of the --repeat runs.
            print(f"Return value: {retval} ({verdict_name(prog, retval)}), "
                  f"duration (average): {round(ns)}ns")
        else:
            print(f"retval {retval:#x} ({verdict_name(prog, retval)})")
        if args.output:
            with open(args.output, "wb") as f:
                f.write(data_out)
    else:
        if args.repeat != 1:
            raise UsageError("--repeat needs a program from an ELF object (it uses test_run)")
        data = _mem_from_args(args, mem)
        r0 = prog.run(data, engine=args.engine, budget=args.budget, timeout=args.timeout)
        report.update(retval=r0)
        if not _wants_json(args):
            print(f"{r0:#x}")
        if args.output:
            with open(args.output, "wb") as f:
                f.write(bytes(data))
    records = _emitted(prog.object, report, not _wants_json(args)) if is_object_prog else {}
    if args.dump_maps and is_object_prog:
        if _wants_json(args):
            report["maps"] = {map_name: m.dump() for map_name, m in prog.object.maps.items()
                              if map_name not in records}
        else:
            for map_name, m in prog.object.maps.items():
                print(f"map {map_name}:")
                if map_name in records:
                    n = len(records[map_name])
                    print(f"  ({n} record{'' if n == 1 else 's'} pending after the run, "
                          "shown above)")
                else:
                    print(format_map_summary(m))
    if _wants_json(args):
        _emit_json(args, report)
    return 0


def _emitted(obj, report: dict, show: bool) -> dict[str, list[bytes]]:
    """What the run emitted, printed (or put in `report`): bpf_printk lines as trace_pipe shows
    them, then every ring-buffer record (consumed, as a libbpf reader would), decoded through
    BTF when ebpfjit.objects.records finds its type, else in hex. Returns the records of each
    ring buffer."""

    trace = obj.trace_log()
    records = {name: decode_records(obj.spec.btf, m.spec, m.poll())
               for name, m in obj.maps.items() if m.spec.type is MapType.RINGBUF}
    report["trace"] = trace
    report["ringbuf"] = {name: [r.to_json() for r in recs] for name, recs in records.items()}
    if show:
        for line in trace:
            print(f"bpf_printk: {line}")
        for name, recs in records.items():
            for index, rec in enumerate(recs):
                if rec.type_name is not None:
                    print(f"ringbuf {name} record {index} ({rec.type_name}): "
                          f"{json.dumps(rec.value)}")
                else:
                    print(f"ringbuf {name} record {index} ({len(rec.data)} bytes): "
                          f"{rec.data.hex(' ')}")
    return records


def format_map_summary(m) -> str:
    """One line per entry, decoded through BTF where possible; all-zero array slots elided
    (a run summary, unlike `map dump`, which prints what bpftool prints)."""

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
    # Lazy: the C module (ebpfjit._rt): commands that do not run programs report without it.
    from ..api.loader import load
    obj = load(args.file)
    if args.map_command == "list":
        if _wants_json(args):
            _emit_json(args, [{"index": index, "name": map_name,
                               "type": m.spec.type.name.lower(), "flags": m.spec.flags,
                               "key_size": m.spec.key_size, "value_size": m.spec.value_size,
                               "max_entries": m.spec.max_entries}
                              for index, (map_name, m) in enumerate(obj.maps.items())])
            return 0
        for index, (map_name, m) in enumerate(obj.maps.items()):
            spec = m.spec
            print(f"{index}: {spec.type.name.lower()}  name {map_name}  flags {spec.flags:#x}")
            print(f"\tkey {spec.key_size}B  value {spec.value_size}B  max_entries {spec.max_entries}")
        return 0
    names = [args.map] if args.map else list(obj.maps)
    for map_name in names:
        if map_name not in obj.maps:
            raise EbpfError(f"{args.file}: no map named {map_name!r}; maps: {', '.join(obj.maps)}")
    if _wants_json(args):
        # One document: a map's entries (bpftool's JSON), or {name: entries} for every map.
        dumps = {map_name: obj.maps[map_name].dump() for map_name in names}
        _emit_json(args, dumps[args.map] if args.map else dumps)
        return 0
    for map_name in names:
        if len(names) > 1:
            print(f"map {map_name}:")
        print(format_map_dump(obj.maps[map_name], json_output=False))
    return 0


def cmd_dump(args) -> int:
    _, prog, _ = _one_program(args)
    prog.opt_level = args.opt_level
    if _wants_json(args):
        report = {}
        if args.ir:
            report["ir"] = prog.llvm_ir(optimized=args.optimized).splitlines()
        if args.asm or not args.ir:
            report["asm"] = prog.native_asm(target=args.target).splitlines()
        _emit_json(args, report)
        return 0
    if args.ir:
        print(prog.llvm_ir(optimized=args.optimized))
    if args.asm or not args.ir:
        print(prog.native_asm(target=args.target))
    return 0


def cmd_compile(args) -> int:
    # Lazy: llvmlite, only for `compile`.
    from ..jit.compile import emit_object
    _, prog, _ = _one_program(args)
    obj = emit_object(prog.code, target=args.target, opt_level=args.opt_level,
                      maps=prog._jit_maps())
    with open(args.output, "wb") as f:
        f.write(obj)
    if _wants_json(args):
        _emit_json(args, {"output": args.output, "bytes": len(obj),
                          "target": args.target or "host"})
    return 0


def cmd_conformance(args) -> int:
    if not os.path.isdir(args.directory):
        raise UsageError(f"{args.directory}: no such directory")
    paths = testdata.iter_dir(args.directory)
    if not paths:
        raise UsageError(f"{args.directory}: no .data files")
    outcomes = [run_case(testdata.load(path), args.engine) for path in paths]
    failed = [o for o in outcomes if not o.passed]
    if _wants_json(args):
        _emit_json(args, {"engine": args.engine, "passed": len(outcomes) - len(failed),
                          "failed": len(failed),
                          "failures": [{"name": o.name, "detail": o.detail} for o in failed]})
        return 1 if failed else 0
    for outcome in outcomes:
        if not outcome.passed:
            print(f"FAIL {outcome.name}: {outcome.detail}")
        elif args.verbose:
            print(f"PASS {outcome.name}")
    print(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def cmd_cache(args) -> int:
    """`cache info` / `cache clear` for the on-disk JIT cache (ebpfjit.cache)."""

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheWarning)   # reported below, in the command's words
        cache = CompileCache(args.dir)
        info = cache.info()
    if args.cache_command == "clear":
        removed = cache.clear() if info["trusted"] else 0
        if _wants_json(args):
            _emit_json(args, {"directory": info["directory"], "removed": removed,
                              "refused": info["refused"]})
        elif info["trusted"]:
            print(f"removed {removed} entries from {info['directory']}")
    else:
        info = {k: info[k] for k in ("directory", "trusted", "refused", "entries", "bytes",
                                     "max_bytes")}
        info["enabled"] = cache_enabled()
        if _wants_json(args):
            _emit_json(args, info)
        else:
            state = "private" if info["trusted"] else "refused"
            if not info["enabled"]:
                state += " (disabled by EBPFJIT_CACHE=0)"
            print(f"directory: {info['directory']}\nstate:     {state}\n"
                  f"entries:   {info['entries']}\n"
                  f"bytes:     {info['bytes']} ({info['bytes'] / 2**20:.1f} MiB)\n"
                  f"limit:     {info['max_bytes']} ({info['max_bytes'] / 2**20:.1f} MiB, "
                  f"EBPFJIT_CACHE_MAX_BYTES)")
    if not info["trusted"]:
        print(f"ebpfjit: error: cache not usable: {info['refused']}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ebpfjit", allow_abbrev=False,
                                     description="Userspace eBPF: interpreter and LLVM JIT.")
    parser.add_argument("--version", action="version", version=f"ebpfjit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser = sub.add_parser

    def add_sub(*a, **kw):
        # One spelling per option: no abbreviations (`--data` must never become `--data-file`).
        return add_parser(*a, allow_abbrev=False, **kw)
    sub.add_parser = add_sub

    def add_json_args(p):
        p.add_argument("-j", "--json", action="store_true", help="JSON output (as bpftool -j)")
        p.add_argument("-p", "--pretty", action="store_true", help="indented JSON (implies -j)")

    def add_prog_args(p):
        p.add_argument("file", help="ELF object, .data test, .s assembly or raw bytecode ('-' = stdin)")
        p.add_argument("--program", help="program (function) name in an ELF object")
        p.add_argument("--section", help="program section in an ELF object")
        p.add_argument("--raw", action="store_true",
                       help="FILE is raw bytecode (implied for .bin/.raw names and stdin)")

    p = sub.add_parser("asm", help="assemble bpf_conformance-dialect text into bytecode")
    p.add_argument("file")
    p.add_argument("-o", "--output", help="output file (default: hex on stdout)")
    p.add_argument("--binary", action="store_true", help="write raw bytes to stdout")
    add_json_args(p)
    p.set_defaults(func=cmd_asm)

    p = sub.add_parser("disasm", help="disassemble bytecode or an ELF object")
    add_prog_args(p)
    p.add_argument("--syntax", choices=("llvm", "conformance"), default="llvm")
    p.add_argument("--xlated", action="store_true",
                   help="an object's program after the load-time context-access rewrite")
    add_json_args(p)
    p.set_defaults(func=cmd_disasm)

    p = sub.add_parser("run", help="run a program once and print r0 (or the verdict)")
    add_prog_args(p)
    p.add_argument("--engine", choices=ENGINE_CHOICES, default=str(DEFAULT_ENGINE))
    g = p.add_mutually_exclusive_group()
    g.add_argument("--data", "--mem", dest="mem", metavar="HEX",
                   help="input packet/memory as hex (--mem: the same)")
    g.add_argument("--data-file", "--mem-file", dest="mem_file", metavar="F",
                   help="input packet/memory from a file")
    g.add_argument("--pcap", help="run every packet of a pcap file (ELF programs)")
    p.add_argument("-o", "--output", help="write the memory/packet(s) after the run to this file "
                                          "(a pcap with --pcap)")
    p.add_argument("--keep", choices=("all", "pass", "drop"), default="all",
                   help="with --pcap -o: which output packets to write (default all)")
    p.add_argument("--dump-maps", action="store_true", help="print the object's maps afterwards")
    p.add_argument("-v", "--verbose", action="store_true", help="one line per packet")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="run N times (test_run's repeat) and print the average duration")
    p.add_argument("--budget", type=int, default=None, metavar="N",
                   help="instruction budget (taken back-edges, calls; default 10^8)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="wall-clock limit of the run (with --pcap: of the whole capture)")
    p.add_argument("--ctx-in", metavar="FILE", help="context struct (xdp_md, __sk_buff) bytes")
    add_json_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("map", help="inspect the maps of an object, bpftool style")
    map_sub = p.add_subparsers(dest="map_command", required=True)
    q = map_sub.add_parser("dump", help="dump a map's entries (as after loading)")
    q.add_argument("file")
    q.add_argument("--map", help="map name (default: every map)")
    add_json_args(q)
    q.set_defaults(func=cmd_map)
    q = map_sub.add_parser("list", help="list the maps of an object")
    q.add_argument("file")
    add_json_args(q)
    q.set_defaults(func=cmd_map)

    p = sub.add_parser("dump", help="print the LLVM IR and/or native assembly of a program")
    add_prog_args(p)
    p.add_argument("--ir", action="store_true", help="LLVM IR")
    p.add_argument("--asm", action="store_true", help="native assembly (default)")
    p.add_argument("--optimized", action="store_true", help="IR after optimisation")
    p.add_argument("--target", choices=("x86_64", "aarch64"), default=None)
    p.add_argument("-O", dest="opt_level", type=int, default=2, choices=(0, 1, 2, 3))
    add_json_args(p)
    p.set_defaults(func=cmd_dump)

    p = sub.add_parser("compile", help="emit a relocatable native object file")
    add_prog_args(p)
    p.add_argument("--target", choices=("x86_64", "aarch64"), default=None)
    p.add_argument("-O", dest="opt_level", type=int, default=2, choices=(0, 1, 2, 3))
    p.add_argument("-o", "--output", required=True)
    add_json_args(p)
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("conformance", help="run a directory of bpf_conformance .data files")
    p.add_argument("directory")
    p.add_argument("--engine", default=str(DEFAULT_ENGINE), choices=CONFORMANCE_ENGINES)
    p.add_argument("-v", "--verbose", action="store_true")
    add_json_args(p)
    p.set_defaults(func=cmd_conformance)

    p = sub.add_parser("cache", help="inspect or clear the on-disk JIT cache")
    cache_sub = p.add_subparsers(dest="cache_command", required=True)
    for name, text in (("info", "folder, entries, bytes and size limit"),
                       ("clear", "delete every entry")):
        q = cache_sub.add_parser(name, help=text)
        q.add_argument("--dir", help="cache folder (default: EBPFJIT_CACHE_DIR, XDG_CACHE_HOME/ebpfjit "
                                     "or ~/.cache/ebpfjit)")
        add_json_args(q)
        q.set_defaults(func=cmd_cache)

    add_compare_parser(sub)
    add_verify_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as cat does; keep the interpreter's
        # final flush from raising again on the dead pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except UsageError as exc:
        if args.debug:
            raise
        print(f"ebpfjit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (EbpfError, OSError, KeyError) as exc:
        if args.debug:
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"ebpfjit: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
