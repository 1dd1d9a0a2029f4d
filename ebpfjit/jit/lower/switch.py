"""Switch recovery: a tree of compares on one register, lowered as one LLVM `switch`.

`switch_tree` finds the tree rooted at a conditional jump and the leaf every value reaches;
`FunctionLowerer.lower_jcond` emits the `switch` when there is one.

Must not import: ebpfjit.jit, ebpfjit.runtime.

Imports: ebpfjit.isa, ebpfjit.jit.lower.analysis
"""
from __future__ import annotations

from ...isa.insn import Instruction
from ...isa.opcodes import Class, JmpOp, Kind, Source
from .analysis import FunctionInfo

SWITCH_MIN_NODES = 4       # compares in the tree (a shorter chain stays as branches)
SWITCH_MAX_RANGE = 256     # values enumerated as cases (max constant - min constant + 3)
SWITCH_MAX_NODES = 64

_TREE_OPS = {
    JmpOp.JEQ: lambda u, s, k, ks: u == k, JmpOp.JNE: lambda u, s, k, ks: u != k,
    JmpOp.JGT: lambda u, s, k, ks: u > k, JmpOp.JGE: lambda u, s, k, ks: u >= k,
    JmpOp.JLT: lambda u, s, k, ks: u < k, JmpOp.JLE: lambda u, s, k, ks: u <= k,
    JmpOp.JSGT: lambda u, s, k, ks: s > ks, JmpOp.JSGE: lambda u, s, k, ks: s >= ks,
    JmpOp.JSLT: lambda u, s, k, ks: s < ks, JmpOp.JSLE: lambda u, s, k, ks: s <= ks,
}


def _tree_compare(insn: Instruction, pc: int, fn: FunctionInfo, reg: int | None = None,
                  cls=None) -> bool:
    """Is `insn` at pc a forward `if reg <op> imm goto` (no JSET) whose both edges stay in
    the function (a possible switch-tree node)?"""
    info = insn.info
    if (insn.kind is not Kind.JCOND or info.source is not Source.K or info.op not in _TREE_OPS
            or reg is not None and (insn.dst != reg or info.cls is not cls)):
        return False
    target = insn.branch_target(pc)
    return pc < target < fn.end and pc + 1 < fn.end and pc + 1 in fn.leaders


def switch_tree(fn: FunctionInfo, by_pc: dict[int, Instruction], root: int):
    """The compare tree rooted at the jcond at `root`, as (width, {value: leaf pc}), else None.

    Nodes after the root are blocks holding nothing but `if R <op> K goto` on the root's
    register R and width (so R is the same value in all of them) with forward edges only (no
    budget is spent inside). A value's leaf is found by running the tree on it, so a `switch`
    with these cases (default: the root's own compare) is the program's control flow."""
    insn = by_pc[root]
    if not _tree_compare(insn, root, fn):
        return None
    reg, cls = insn.dst, insn.info.cls
    width = 32 if cls is Class.JMP32 else 64
    nodes = {}
    work = [root]
    while work:
        pc = work.pop()
        if pc in nodes:
            continue
        nodes[pc] = by_pc[pc]
        if len(nodes) > SWITCH_MAX_NODES:
            return None
        for succ in (pc + 1, by_pc[pc].branch_target(pc)):
            nxt = by_pc.get(succ)
            if (succ not in nodes and succ in fn.leaders and nxt is not None
                    and _tree_compare(nxt, succ, fn, reg, cls)):
                work.append(succ)
    if len(nodes) < SWITCH_MIN_NODES:
        return None
    mask = (1 << width) - 1
    sign = 1 << (width - 1)
    consts = [(n.imm & mask) - ((n.imm & mask & sign) << 1) for n in nodes.values()]
    lo, hi = min(consts) - 1, max(consts) + 1
    if hi - lo + 1 > SWITCH_MAX_RANGE:
        return None
    cases = {}
    for value in range(lo, hi + 1):
        u = value & mask
        signed = u - ((u & sign) << 1)
        pc = root
        while True:
            node = nodes[pc]
            k = node.imm & mask
            taken = _TREE_OPS[node.info.op](u, signed, k, k - ((k & sign) << 1))
            pc = node.branch_target(pc) if taken else pc + 1
            if pc not in nodes or pc == root:
                break
        cases[u] = pc
    if len(set(cases.values())) < SWITCH_MIN_NODES:
        return None
    return width, cases
