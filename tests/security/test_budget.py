"""The run budget counts executed instructions, not loop iterations: a long loop body spends its
length on every pass, so a hostile program cannot stretch one unit of budget over a huge body."""
from __future__ import annotations

import struct

import pytest

import ebpfjit
from ebpfjit.errors import ExecutionError

BODY = 5_000        # straight-line instructions inside the loop


def _long_body_loop() -> ebpfjit.Program:
    # r1 = memory: each pass stores its pass count, so the passes made before the budget ran
    # out can be read back after the error.
    body = "\n".join(["add %r2, 1"] * BODY)
    text = f"mov %r6, 0\nloop:\nadd %r6, 1\nstxdw [%r1], %r6\n{body}\nja loop\nexit"
    return ebpfjit.Program.from_asm(text)


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_budget_bounds_executed_instructions(engine):
    budget = 1_000_000
    mem = bytearray(8)
    with pytest.raises(ExecutionError, match="budget"):
        _long_body_loop().run(mem, engine=engine, budget=budget)
    passes = struct.unpack("<Q", mem)[0]
    assert passes >= 1
    # Every pass executes BODY + 3 instructions; charging per back-edge would allow ~10^6 passes.
    assert passes * (BODY + 3) <= budget + BODY + 3
    assert passes * (BODY + 3) >= budget // 2
