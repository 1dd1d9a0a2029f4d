"""`native_asm` / `ebpfjit dump --asm`: machine code annotated with the eBPF pc it came from."""
from __future__ import annotations

import re

import pytest
from conftest import CONFORMANCE_DIR, PROGS_DIR, needs_conformance

from ebpfjit.cli import testdata
from ebpfjit.jit.compile import native_asm

PC_LINE = re.compile(r"^\t# pc (\d+): (.+)$", re.M)


@needs_conformance
@pytest.mark.parametrize("target", ("x86_64", "aarch64"))
def test_every_surviving_line_names_its_pc_and_instruction(target):
    case = testdata.load(CONFORMANCE_DIR / "subnet.data")
    asm = native_asm(case.code, target=target)
    marks = PC_LINE.findall(asm)
    assert len({int(pc) for pc, _ in marks}) >= 8
    assert ("2", "if r3 != 0x81 goto +0x3") in marks
    assert ".loc" not in asm and ".debug_" not in asm and ".cfi_" not in asm
    assert "ret" in asm


@needs_conformance
def test_annotation_does_not_change_the_code():
    case = testdata.load(CONFORMANCE_DIR / "prime.data")
    plain = native_asm(case.code, annotate=False)
    annotated = native_asm(case.code)

    def instructions(text):
        return [line.split()[0] for line in text.splitlines()
                if line.startswith("\t") and not line.startswith(("\t.", "\t#"))]
    assert instructions(plain) == instructions(annotated)


def test_object_programs_with_subprograms_and_helpers():
    from ebpfjit import load
    prog = load(PROGS_DIR / "subprog_calls.o").programs["xdp_subprogs"]
    asm = prog.native_asm()
    pcs = {int(pc) for pc, _ in PC_LINE.findall(asm)}
    assert len(pcs) > 20
    assert "call" in asm
