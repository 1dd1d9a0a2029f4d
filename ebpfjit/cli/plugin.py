"""`ebpfjit-conformance-plugin`: the bpf_conformance runner's plugin protocol.

argv: [<memory hex>] [--engine interp|jit|jit-O0..3] [--jit] [--interpret] [--elf]
stdin: the program as hex bytes (or, with --elf, the hex of an ELF object whose `.text`, or `xdp`
section, holds it). On success r0 is printed in hex and the exit status is 0; a rejected or
aborted program prints one line and exits 1 (the runner compares that line with `-- error`).

Imports: ebpfjit.engine, ebpfjit.cli.conformance, ebpfjit.errors, ebpfjit.objects
"""
from __future__ import annotations

import sys

from ..engine import DEFAULT_ENGINE
from ..errors import EbpfError, ElfError, EngineError
from ..objects.elf import first_code_section
from .conformance import U64, conformance_program, engine_and_level

USAGE = "usage: ebpfjit-conformance-plugin [MEMORY_HEX] [--engine interp|jit|jit-O<n>] [--elf]"


def _hex_bytes(text: str) -> bytes:
    return bytes(int(tok, 16) & 0xFF for tok in text.split())


def _program_from_elf(blob: bytes) -> bytes:
    try:
        code = first_code_section(blob)
    except ElfError as exc:
        raise EbpfError(str(exc)) from exc
    if code is None:
        raise EbpfError("ELF input has no .text section")
    return code


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    memory = b""
    if args and not args[0].startswith("--"):
        memory = _hex_bytes(args.pop(0))
    engine, elf = str(DEFAULT_ENGINE), False
    while args:
        arg = args.pop(0)
        if arg == "--engine" and args:
            engine = args.pop(0)
        elif arg.startswith("--engine="):
            engine = arg.split("=", 1)[1]
        elif arg == "--jit":
            engine = "jit"
        elif arg in ("--interpret", "--interp"):
            engine = "interp"
        elif arg == "--elf":
            elf = True
        elif arg == "":
            continue   # the runner splits --plugin_options on single spaces
        elif arg in ("-h", "--help"):
            print(USAGE)
            print(__doc__.split("\n", 2)[2].strip())
            return 0
        else:
            print(f"unknown option {arg!r}; {USAGE}")
            return 2
    try:
        data = sys.stdin.read()
        code = _hex_bytes(data)
        if elf:
            code = _program_from_elf(code)
        try:
            kind, level = engine_and_level(engine)
        except EngineError:
            print(f"unknown engine {engine!r}; {USAGE}")
            return 2
        r0 = conformance_program(code, opt_level=level).run(bytearray(memory), engine=kind)
    except (EbpfError, ValueError) as exc:
        print(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return 1
    print(format(r0 & U64, "x"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
