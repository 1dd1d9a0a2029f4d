"""The kernel's JIT output as text: the one capstone set-up (`capstone_for_host`) and the
disassembly of a loaded program's jited image (`jited_disassembly`, `format_jited`).

Imports: ebpfjit.errors, ebpfjit.oracle.kernel_objects
"""
from __future__ import annotations

import platform

from ..errors import KernelUnavailable
from .kernel_objects import ProgInfo


def capstone_for_host(*, att: bool = False, skipdata: bool = False):
    """The one capstone set-up: a disassembler for the host (x86-64 or arm64), AT&T syntax on
    x86-64 with `att`, `.byte` for undecodable bytes with `skipdata`."""
    # Lazy: capstone costs start-up time and only the jited-image views need it.
    import capstone
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        if att:
            md.syntax = capstone.CS_OPT_SYNTAX_ATT
        md.skipdata = skipdata
        return md
    if machine in ("aarch64", "arm64"):
        arch = getattr(capstone, "CS_ARCH_ARM64", None)
        if arch is None:
            arch = capstone.CS_ARCH_AARCH64   # capstone 6 renamed it
        md = capstone.Cs(arch, capstone.CS_MODE_ARM)
        md.skipdata = skipdata
        return md
    raise KernelUnavailable(f"no capstone disassembler set up for host architecture {machine}")


def jited_disassembly(info: ProgInfo) -> list[list[str]]:
    """The kernel's jited image as text, one list of lines per function (jited_func_lens).

    Each line is `<offset in image, hex>: <bytes>  <mnemonic> <operands>`; bytes capstone
    cannot decode appear as `.byte`.
    """
    md = capstone_for_host(skipdata=True)
    image = info.jited
    lens = info.jited_func_lens or [len(image)]
    funcs: list[list[str]] = []
    start = 0
    for length in lens:
        chunk = image[start:start + length]
        lines = []
        for insn in md.disasm(chunk, start):
            text = f"{insn.mnemonic} {insn.op_str}".rstrip()
            lines.append(f"{insn.address:#06x}: {insn.bytes.hex(' '):<24} {text}")
        funcs.append(lines)
        start += length
    return funcs


def format_jited(info: ProgInfo) -> str:
    """jited_disassembly as one text, with a header per function."""
    out = []
    for i, lines in enumerate(jited_disassembly(info)):
        addr = f" at {info.jited_ksyms[i]:#x}" if i < len(info.jited_ksyms) else ""
        out.append(f"{info.name or 'prog'}: function {i}{addr}:")
        out.extend("  " + ln for ln in lines)
    return "\n".join(out)
