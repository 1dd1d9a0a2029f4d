"""A bpf_spin_lock is taken and released within one frame: a function (a bpf-to-bpf callee, a
callback, the program) that returns holding it, or a call made while holding it, faults at that
instruction and the lock is released, on both engines (the kernel verifier rejects these with
"bpf_spin_unlock is missing" / "function calls are not allowed while holding a lock")."""
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
def test_callee_returning_with_lock_held_faults_at_its_exit(engine):
    obj = ebpfjit.load(OBJ)
    prog = obj.programs["lock_in_callee"]
    with pytest.raises(ExecutionError) as info:
        prog.run(bytes(64), engine=engine)
    err = info.value
    assert err.kind == "helper" and "bpf_spin_unlock is missing" in str(err)
    assert err.insn_text == "exit" and err.line is not None
    assert _lock_word(obj) == 0                     # released
    # The object stays usable: a balanced program runs, and takes the lock again.
    assert obj.programs["lock_balanced"].run(bytes(64), engine=engine) == 2
    assert _lock_word(obj) == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_callback_returning_with_lock_held_faults(engine):
    obj = ebpfjit.load(OBJ)
    with pytest.raises(ExecutionError) as info:
        obj.programs["lock_in_callback"].run(bytes(64), engine=engine)
    err = info.value
    assert err.kind == "helper" and "bpf_spin_unlock is missing" in str(err)
    assert err.insn_text == "exit"
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
def test_local_call_while_holding_a_lock_faults_at_the_call(engine):
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
    with pytest.raises(ExecutionError) as info:
        loaded.run(b"", engine=engine)
    err = info.value
    assert err.kind == "helper" and err.pc == 11
    assert "function calls are not allowed while holding a lock" in str(err)
    assert _lock_word(obj) == 0
