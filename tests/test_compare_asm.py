"""`compare --asm`: rows per original eBPF instruction, aligned with the kernel's xlated image
through its line info, even where the kernel inlines an ARRAY map lookup."""
from __future__ import annotations

from pathlib import Path

import pytest

import ebpfjit
from ebpfjit.api.loader import spec_of
from ebpfjit.isa.insn import Instruction, decode, iter_pcs
from ebpfjit.oracle import asmalign, compare

PROGS = Path(__file__).parent / "progs"


def _shape(insn):
    return (insn.opcode & 0x07, insn.dst, insn.src)


def _check_rows(rows, code, xlated):
    orig = list(iter_pcs(decode(code, validate=False)))
    xl = dict(iter_pcs(decode(xlated, validate=False)))
    assert [r.pc for r in rows] == [pc for pc, _ in orig]      # one row per instruction
    seen = [x for r in rows for x in r.xlated]
    assert seen == sorted(xl)                                    # every xlated insn, in order
    inlined = 0
    for row, (_, insn) in zip(rows, orig):
        first = xl[row.xlated[0]]
        if insn.opcode == 0x85 and insn.src == 0:
            # A helper call: still a call, or inlined into several instructions.
            assert first.opcode == 0x85 or len(row.xlated) > 1, (row.pc, row.xlated)
            inlined += len(row.xlated) > 1
        else:
            # The kernel's instruction for this row is the original one (rewritten in place).
            assert _shape(first) == _shape(insn), (row.pc, row.insn)
            assert len(row.xlated) == 1, (row.pc, row.insn, row.xlated)
    return inlined


@pytest.mark.kernel
@pytest.mark.parametrize("name, program", [("xdp_parser_counters", "xdp_count_protocols"),
                                           ("xdp_rate_limit", None)])
def test_rows_follow_the_kernels_mapping(kernel, name, program):
    obj = ebpfjit.load(PROGS / f"{name}.o")
    prog = obj.program(program)
    kobj = kernel.KernelObject(spec_of(obj))
    try:
        info = kobj.programs[prog.name].info()
    finally:
        kobj.close()
    rows = compare.aligned_asm_rows(info, prog)
    inlined = _check_rows(rows, prog.spec.code, info.xlated)
    if name == "xdp_parser_counters":       # ARRAY lookups: array_map_gen_lookup inlines them
        assert len(info.xlated) > len(prog.spec.code) and inlined >= 1
    assert any(r.source for r in rows) and all(r.insn for r in rows)
    assert any(r.ours for r in rows) and any(r.kernel for r in rows)
    text = asmalign.format_rows(rows)
    assert "total native instructions: ours " in text
    assert "map[" in text


@pytest.mark.kernel
def test_rows_without_line_info_account_for_the_expansion(kernel):
    obj = ebpfjit.load(PROGS / "xdp_parser_counters.o")
    prog = obj.program("xdp_count_protocols")
    kobj = kernel.KernelObject(spec_of(obj))
    try:
        info = kobj.programs[prog.name].info()
    finally:
        kobj.close()
    mapping = asmalign.xlated_mapping(prog.spec.code, info.xlated, [], b"")
    with_lines = compare.aligned_asm_rows(info, prog)
    assert {r.pc: r.xlated for r in with_lines} == mapping


def test_align_range_gives_an_inlined_call_its_expansion():
    lddw = Instruction(0x18, dst=1, src=1, imm=0)
    orig = [(0, Instruction(0xb7, dst=2, imm=0)), (1, lddw), (3, Instruction(0x85, imm=1)),
            (4, Instruction(0x15, dst=0, off=1)), (5, Instruction(0x95))]
    xlated = [(0, Instruction(0xb7, dst=2, imm=0)), (1, lddw),
              (3, Instruction(0x07, dst=1, imm=0x110)), (4, Instruction(0x61, dst=0, src=2)),
              (5, Instruction(0x35, dst=0, imm=1, off=3)), (6, Instruction(0x67, dst=0, imm=3)),
              (7, Instruction(0x0f, dst=0, src=1)), (8, Instruction(0x05, off=1)),
              (9, Instruction(0xb7, dst=0, imm=0)),
              (10, Instruction(0x15, dst=0, off=1)), (11, Instruction(0x95))]
    assert asmalign.align_range(orig, xlated) == {0: [0], 1: [1], 3: [3, 4, 5, 6, 7, 8, 9],
                                                   4: [10], 5: [11]}
