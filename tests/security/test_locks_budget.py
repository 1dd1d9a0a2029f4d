"""Hostile programs against the budget, helpers and spin locks (issue 10, findings 5 and 6), on
both engines. Hang reproducers run in a subprocess with a timeout, so this module never hangs."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from ebpfjit.errors import EbpfError, ExecutionError
from ebpfjit.isa.insn import Instruction, encode
from ebpfjit.runtime import Env, LoadedProgram

ENGINES = ("interp", "jit")


def _in_subprocess(body: str, timeout: float = 60.0) -> str:
    """Run `body` in a fresh interpreter; a hang fails the test instead of hanging it."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(body)], capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize("engine", ENGINES)
def test_long_loop_body_is_stopped_by_the_instruction_budget(engine):
    # 200,000 straight-line instructions inside an infinite loop: with a budget that counted
    # back-edges this ran for days; counting instructions, budget 10^6 stops it in 5 passes.
    out = _in_subprocess(f"""
        from ebpfjit import Program
        from ebpfjit.errors import ExecutionError
        from ebpfjit.isa.insn import Instruction, encode
        # r0 = 0; loop: 200,000 x (r0 += 1); gotol loop (imm: beyond ja's 16-bit offset)
        insns = ([Instruction(0xB7, dst=0, imm=0)] + [Instruction(0x07, dst=0, imm=1)] * 200_000
                 + [Instruction(0x06, imm=-200_001)])
        p = Program.from_bytes(encode(insns))
        try:
            p.run(b"", engine={engine!r}, budget=1_000_000)
        except ExecutionError as e:
            print(e.kind, e.pc)
    """, timeout=300)
    assert out == "budget 200001"


def test_program_of_1000001_instructions_is_rejected():
    code = encode([Instruction(0xB7, dst=0, imm=0)] * 1_000_000 + [Instruction(0x95)])
    with pytest.raises(EbpfError, match="1000001 instructions, more than the kernel's limit"):
        LoadedProgram(code, Env())


def test_program_of_1000000_instructions_loads():
    code = encode([Instruction(0xB7, dst=0, imm=0)] * 999_999 + [Instruction(0x95)])
    assert LoadedProgram(code, Env()).run(b"") == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_trace_printk_huge_width_is_capped(engine):
    # "%2147483600d" reached glibc as is (~4.7 s per call); the kernel clamps widths to
    # 2^23 - 1 and the output to its 1024-byte buffer.
    out = _in_subprocess(f"""
        from ebpfjit import Program
        fmt = b"%2147483600d\\0"
        fmt += bytes(-len(fmt) % 8)
        stores = "".join(f"lddw %r1, {{int.from_bytes(fmt[i:i+8], 'little')}}\\n"
                         f"stxdw [%r10-{{len(fmt) - i}}], %r1\\n" for i in range(0, len(fmt), 8))
        p = Program.from_asm(stores + f"mov %r1, %r10\\nadd %r1, -{{len(fmt)}}\\n"
                             f"mov %r2, {{len(fmt)}}\\nmov %r3, 7\\ncall 6\\nexit")
        r = p.run(b"", engine={engine!r})
        print(r)
    """, timeout=60)
    # the length bstr_printf reports: the width clamped to FIELD_WIDTH_MAX
    assert int(out) == (1 << 23) - 1


@pytest.mark.parametrize("engine", ENGINES)
def test_spin_lock_on_a_stack_address_is_rejected(engine):
    text = ("mov %r1, %r10\nadd %r1, -8\ncall 93\nmov %r1, %r10\nadd %r1, -8\ncall 94\n"
            "mov %r0, 0\nexit")
    with pytest.raises(ExecutionError, match="not the struct bpf_spin_lock field") as info:
        from ebpfjit import Program
        Program.from_asm(text).run(b"", engine=engine)
    assert info.value.pc == 2

