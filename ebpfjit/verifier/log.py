"""The verifier log in the kernel's words: instructions in the kernel's syntax
(`14: (71) r3 = *(u8 *)(r2 +14)`, from the project's disassembler), source lines from
.BTF.ext line info, the level-2 register state and the stats line.

Imports: ebpfjit.isa, ebpfjit.objects.helper_names
"""
from __future__ import annotations

import bisect
import re

from ..isa.disasm import format_insn
from ..isa.insn import CALL_HELPER, CALL_LOCAL, Instruction
from ..isa.opcodes import Kind
from ..objects.helper_names import helper_name

_MEM = re.compile(r"\((r\d+) ([+-]) (-?0x[0-9a-f]+|\d+)\)")
_GOTO = re.compile(r"goto ([+-])0x([0-9a-f]+)")
_HEX = re.compile(r"(?<![\w.])(-?)0x([0-9a-f]+)(?! ll)")


def kernel_insn(ins: Instruction, map_names=None) -> str:
    """`(71) r3 = *(u8 *)(r2 +14)`: the opcode byte and the kernel's print_bpf_insn text."""
    if ins.kind is Kind.CALL and ins.src == CALL_HELPER:
        text = f"call {helper_name(ins.imm) or 'unknown'}#{ins.imm}"
    elif ins.kind is Kind.CALL and ins.src == CALL_LOCAL:
        text = f"call pc{ins.imm:+d}"
    else:
        text = format_insn(ins, map_names=map_names)
        if ins.kind is not Kind.LDDW:
            text = _MEM.sub(lambda m: f"({m[1]} {m[2]}{int(m[3], 0)})", text)
            text = _GOTO.sub(lambda m: f"goto pc{m[1]}{int(m[2], 16)}", text)
            text = _HEX.sub(lambda m: f"{m[1]}{int(m[2], 16)}", text)
    return f"({ins.opcode:02x}) {text}"


class LineInfo:
    """pc -> (file, line, text) of the nearest preceding .BTF.ext line record."""

    def __init__(self, records=()):
        recs = sorted(records, key=lambda r: r[0])
        self.pcs = [r[0] for r in recs]
        self.recs = recs

    def at(self, pc: int):
        i = bisect.bisect_right(self.pcs, pc) - 1
        if i < 0:
            return None
        _, path, line, text = self.recs[i]
        return path, line, text

    def exact(self, pc: int):
        i = bisect.bisect_left(self.pcs, pc)
        if i < len(self.pcs) and self.pcs[i] == pc:
            _, path, line, text = self.recs[i]
            return path, line, text
        return None


def source_line(rec) -> str:
    path, line, text = rec
    return f"; {(text or '').strip()} @ {path.rsplit('/', 1)[-1]}:{line}"


def stats_line(walk) -> str:
    return (f"processed {walk.processed} insns (limit {walk.insn_limit}) max_states_per_insn "
            f"{walk.max_states_per_insn} total_states {walk.total_states} peak_states "
            f"{walk.peak_states} mark_read 0")
