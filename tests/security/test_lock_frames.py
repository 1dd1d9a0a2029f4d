"""Spin locks across frames, as the kernel (6.8+) has them: a static bpf-to-bpf callee may be
called, and may return, holding a lock (the kernel accepts `lock_in_callee`, see
tests/verifier/test_kernel_oracle.py); the program's exit and a callback's return must have
released it ("bpf_spin_unlock is missing"), and a callback is not invoked while one is held. A
violation faults, the lock is released, and the object stays usable, on both engines."""
from __future__ import annotations

from pathlib import Path

import pytest

import ebpfjit
from ebpfjit.errors import ExecutionError

ENGINES = ["interp", "jit"]
OBJ = Path(__file__).parent / "progs" / "runaway.o"


def _lock_word(obj) -> int:
    return int.from_bytes(obj.maps["locked"][0][:4], "little")


@pytest.mark.parametrize("engine", ENGINES)
def test_callee_may_return_holding_the_lock_its_caller_releases(engine):
    obj = ebpfjit.load(OBJ)
    prog = obj.programs["lock_in_callee"]
    # value 0 -> 1: odd, XDP_PASS; then 2: even, XDP_DROP (the callee's increment under the lock)
    assert prog.run(bytes(64), engine=engine) == 2
    assert prog.run(bytes(64), engine=engine) == 1
    assert _lock_word(obj) == 0                     # the caller released it
    assert obj.programs["lock_balanced"].run(bytes(64), engine=engine) == 2


@pytest.mark.parametrize("engine", ENGINES)
def test_callback_returning_with_lock_held_faults(engine):
    obj = ebpfjit.load(OBJ)
    with pytest.raises(ExecutionError) as info:
        obj.programs["lock_in_callback"].run(bytes(64), engine=engine)
    err = info.value
    assert err.kind == "helper" and "bpf_spin_unlock is missing" in str(err)
    assert "callback returned" in str(err)
    assert err.insn_text == "call 0xb5"             # the bpf_loop whose callback returned
    assert _lock_word(obj) == 0
    assert obj.programs["lock_balanced"].run(bytes(64), engine=engine) == 2


def _asm_lock_then(call: str) -> bytes:
    from ebpfjit.isa.asm import assemble
    return assemble(f"""
        stw [%r10-4], 0
        lddw %r1, 0
        mov %r2, %r10
        add %r2, -4
        call 1
        jne %r0, 0, found
        exit
    found:
        mov %r6, %r0
        mov %r1, %r0
        call 93
        {call}
        mov %r1, %r6
        call 94
        mov %r0, 0
        exit
    sub:
        mov %r0, 1
        exit
    """)


@pytest.mark.parametrize("engine", ENGINES)
def test_static_call_while_holding_a_lock_runs(engine):
    obj = ebpfjit.load(OBJ)
    lock_map = list(obj.maps).index("locked")
    code = bytearray(_asm_lock_then("call local sub"))
    code[8 + 1] = 0x11      # lddw r1, map (src=1)
    code[8 + 4] = lock_map
    prog = obj.programs["lock_balanced"]
    from ebpfjit.jit.compile import compile_program
    from ebpfjit.runtime import LoadedProgram
    loaded = LoadedProgram(bytes(code), prog.env)
    jit = compile_program(bytes(code), cache=False)
    loaded.set_jit_function(jit.address, jit)
    # The kernel accepts a static subprogram call under a lock; the caller unlocks after it.
    assert loaded.run(b"", engine=engine) == 0
    assert _lock_word(obj) == 0
