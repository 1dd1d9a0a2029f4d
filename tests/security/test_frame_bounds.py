"""An access based on r10 itself addresses the current frame at a fixed offset: outside
[r10 - 512, r10) it is out of bounds on both engines, whatever memory lies there. A callee's
frame sits next to its caller's (above it in the JIT's native stack, below it in the
interpreter's frame array), so a runtime bounds check alone accepted a callee's `[r10 + 0]` on
one engine and a callee's `[r10 - 520]` on the other."""
from __future__ import annotations

import pytest
from ebpfjit._rt import lib

from ebpfjit.errors import ExecutionError
from ebpfjit.jit.compile import compile_program
from ebpfjit.objects.spec import MapSpec, MapType
from ebpfjit.runtime import Env, LoadedProgram
from ebpfjit.runtime.maps import Map

ENGINES = ["interp", "jit"]

# Found by tests/test_jit_fuzz.py (issue 10): HASH map, 4-byte key, 16-byte value. The callee
# at pc 14 reads [r10 + 0]; the JIT accepted it (the caller's frame lies there) and went on to
# fail the lookup at pc 6, the interpreter faulted at pc 14.
FUZZ_CASE = bytes.fromhex(
    "620afcff0300000018110000000000000000000000000000851000000a000000bfa200000000000007020000"
    "feffffff850000000100000085100000060000007900100000000000550001000000000095000000000000"
    "007900080000000000b700000000000000950000000000000061a1000000000000b7000000020000009500"
    "000000000000")


def _loaded(code: bytes, maps=(), opt_level: int = 2) -> LoadedProgram:
    env = Env()
    lib.ebpfjit_install_builtin_helpers(env.ptr)
    lib.ebpfjit_install_map_helpers(env.ptr)
    env.set_maps([m.ptr for m in maps])
    for m in maps:
        m.attach(env)
    prog = LoadedProgram(code, env)
    jit = compile_program(code, opt_level=opt_level, cache=False)
    prog.set_jit_function(jit.address, jit)
    prog._keep = (env, maps)
    return prog


def _fault(prog: LoadedProgram, engine: str) -> ExecutionError:
    with pytest.raises(ExecutionError) as info:
        prog.run(b"", engine=engine)
    return info.value


@pytest.mark.parametrize("opt_level", [0, 2])
@pytest.mark.parametrize("engine", ENGINES)
def test_fuzzer_case_callee_reads_above_its_frame(engine, opt_level):
    prog = _loaded(FUZZ_CASE, [Map(MapSpec("h", MapType.HASH, 4, 16, 4))], opt_level)
    err = _fault(prog, engine)
    assert (err.kind, err.pc, err.size) == ("oob_load", 14, 4)
    assert err.region == "stack" and err.offset == 0


def _callee_access(access: str) -> bytes:
    from ebpfjit.isa.asm import assemble
    # The caller's frame holds data the callee must not reach through its own r10.
    return assemble(f"""
        stdw [%r10-8], 7
        call local sub
        exit
    sub:
        mov %r0, 1
        {access}
        exit
    """)


CALLEE_ACCESSES = [
    ("ldxw %r1, [%r10]", "oob_load", 4),                  # just above the callee's frame
    ("ldxdw %r1, [%r10+504]", "oob_load", 8),             # inside the caller's frame (JIT)
    ("ldxdw %r1, [%r10-520]", "oob_load", 8),             # inside the caller's frame (interp)
    ("ldxb %r1, [%r10-513]", "oob_load", 1),              # one byte below the frame
    ("stw [%r10-2], 1", "oob_store", 4),                  # straddles the frame's end
    ("stxdw [%r10-1024], %r0", "oob_store", 8),
    ("lock add [%r10+8], %r0", "oob_store", 8),          # atomic
]


@pytest.mark.parametrize("opt_level", [0, 2])
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("access,kind,size", CALLEE_ACCESSES)
def test_callee_r10_access_outside_its_frame_faults(engine, access, kind, size, opt_level):
    err = _fault(_loaded(_callee_access(access), opt_level=opt_level), engine)
    assert (err.kind, err.pc, err.size) == (kind, 4, size)


@pytest.mark.parametrize("engine", ENGINES)
def test_entry_r10_access_above_frame_faults(engine):
    from ebpfjit.isa.asm import assemble
    err = _fault(_loaded(assemble("ldxdw %r0, [%r10]\nexit")), engine)
    assert (err.kind, err.pc) == ("oob_load", 0)


@pytest.mark.parametrize("engine", ENGINES)
def test_callee_reaches_caller_frame_through_a_passed_pointer(engine):
    # The legitimate way stays open: a pointer the caller passes in r1.
    from ebpfjit.isa.asm import assemble
    prog = _loaded(assemble("""
        stdw [%r10-8], 41
        mov %r1, %r10
        add %r1, -8
        call local sub
        exit
    sub:
        ldxdw %r0, [%r1]
        add %r0, 1
        exit
    """))
    assert prog.run(b"", engine=engine) == 42
