"""The instruction budget's charge points (runtime_api.h "Budget"; the interpreter computes the
same table in csrc/interp.c segment_step).

Code between two charge points is a forward-only segment: it starts at a function entry, a loop
header (a back-edge target) or a local call's return point. A segment ends at a local call, an
exit, or an edge into a loop header (the back-edge itself, and the forward edges entering the
loop: so a loop header always starts a segment and nothing executed before it is charged again
per iteration). There it charges its worst case: the longest forward path from a segment start,
in instructions, the instruction at the end included. Every forward edge goes to a later slot,
so one pass in slot order computes it. Charging only there keeps the cost at one subtract and
branch per loop iteration, yet every executed instruction is paid for.

Imports: ebpfjit.isa
"""
from __future__ import annotations

from ...isa.insn import CALL_LOCAL, Instruction
from ...isa.opcodes import Kind


def loop_headers(insns: dict[int, Instruction]) -> set[int]:
    """Targets of backward jumps (target <= pc)."""
    heads = set()
    for pc, insn in insns.items():
        if insn.kind in (Kind.JA, Kind.JCOND):
            target = insn.branch_target(pc)
            if target is not None and target <= pc:
                heads.add(target)
    return heads


def segment_charges(insns: dict[int, Instruction], starts) -> tuple[dict[int, int], set[int]]:
    """(pc -> instructions charged when an edge from pc enters a loop header, or when pc is a
    local call or an exit; the loop headers). `starts` are the function entries."""
    heads = loop_headers(insns)
    acc: dict[int, int] = {}
    charges: dict[int, int] = {}

    def reach(pc: int, target: int, value: int) -> None:
        if target in heads:
            charges[pc] = value
        elif target not in starts and acc.get(target, 0) < value:
            acc[target] = value

    for pc in sorted(insns):
        insn = insns[pc]
        here = acc.get(pc, 0) + 1
        kind = insn.kind
        if kind is Kind.EXIT or (kind is Kind.CALL and insn.src == CALL_LOCAL):
            charges[pc] = here
            continue
        if kind in (Kind.JA, Kind.JCOND):
            reach(pc, insn.branch_target(pc), here)
            if kind is Kind.JA:
                continue
        reach(pc, pc + insn.slots, here)
    return charges, heads
