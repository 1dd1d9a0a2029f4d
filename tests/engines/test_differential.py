"""Differential testing: random valid programs must behave identically on the C interpreter and
the LLVM JIT (same r0, same final memory, same error kind and pc).

The programs come from the one random-program generator, `ebpfjit.oracle.fuzzgen`
(`differential_program`: structured fragments covering every ALU/ALU64 K/X op incl.
sdiv/smod/movsx, neg, le/be/bswap, lddw, forward JMP/JMP32 branches, counted loops, loads,
stores and ldsx of every size to the stack and a mem buffer, atomics, helper and local calls;
rarely an out-of-bounds access or a tiny budget), its choices drawn through hypothesis so that
a failing program shrinks.

EBPFJIT_DIFF_EXAMPLES scales the number of programs (default 1200 at O2, plus 240 at O0 and
120 without bounds checks: thousands of cases in CI, about a minute and a half).
"""
from __future__ import annotations

import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebpfjit.errors import ExecutionError
from ebpfjit.isa.insn import CALL_LOCAL, decode, iter_pcs
from ebpfjit.isa.opcodes import Class, Kind
from ebpfjit.jit import compile as jit
from ebpfjit.oracle.fuzzgen import DIFF_MEM_SIZE, differential_program
from ebpfjit.runtime import Env, LoadedProgram
from tests.support.engines import identity

EXAMPLES = int(os.environ.get("EBPFJIT_DIFF_EXAMPLES", "1200"))


class _Draws:
    """The generator's choices (the random.Random subset it uses) drawn from hypothesis."""

    def __init__(self, draw):
        self._draw = draw

    def choice(self, seq):
        return self._draw(st.sampled_from(seq))

    def randint(self, lo: int, hi: int) -> int:
        return self._draw(st.integers(lo, hi))

    def randbytes(self, n: int) -> bytes:
        return self._draw(st.binary(min_size=n, max_size=n))


@st.composite
def programs(draw):
    return differential_program(_Draws(draw))


_ENV = None


def _env():
    global _ENV
    if _ENV is None:
        _ENV = Env()
        _ENV.register_helper(5, identity)
    return _ENV


def _run(loaded, engine, mem, budget):
    buf = bytearray(mem)
    try:
        return ("ok", loaded.run(buf, engine=engine, budget=budget)), bytes(buf)
    except ExecutionError as exc:
        return ("error", exc.kind, exc.pc, exc.size), bytes(buf)


def check_program(code: bytes, mem: bytes, budget, opt_level: int):
    decode(code)   # valid by construction
    loaded = LoadedProgram(code, _env())
    compiled = jit.compile_program(code, opt_level=opt_level, cache=False)
    loaded.set_jit_function(compiled.address, compiled)
    expected = _run(loaded, "interp", mem, budget)
    got = _run(loaded, "jit", mem, budget)
    assert got == expected, f"O{opt_level} jit {got[0]} != interp {expected[0]}\n{code.hex()}"


SETTINGS = dict(deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(max_examples=EXAMPLES, **SETTINGS)
@given(programs())
def test_differential_O2(prog):
    check_program(*prog, opt_level=2)


@settings(max_examples=max(EXAMPLES // 5, 10), **SETTINGS)
@given(programs())
def test_differential_O0(prog):
    check_program(*prog, opt_level=0)


@settings(max_examples=max(EXAMPLES // 10, 10), **SETTINGS)
@given(programs())
def test_differential_no_bounds_checks_in_bounds(prog):
    # Without bounds checks only in-bounds programs are meaningful: compare those that pass the
    # interpreter (its checks prove every access was in bounds).
    code, mem, budget = prog
    loaded = LoadedProgram(code, _env())
    expected = _run(loaded, "interp", mem, budget)
    if expected[0][0] != "ok" and expected[0][1] in ("oob_load", "oob_store"):
        return
    compiled = jit.compile_program(code, opt_level=2, bounds_checks=False, cache=False)
    loaded.set_jit_function(compiled.address, compiled)
    assert _run(loaded, "jit", mem, budget) == expected


def test_generator_covers_isa_classes():
    # The generator itself (driven by random.Random here): valid programs of every class, with
    # local calls, loops (backward jumps), atomics and helper calls among them.
    rng = random.Random(0xD1FF)
    classes, kinds, local_calls, backward = set(), set(), 0, 0
    for _ in range(200):
        code, mem, budget = differential_program(rng)
        assert len(mem) == DIFF_MEM_SIZE and (budget is None or 1 <= budget <= 60)
        for _, ins in iter_pcs(decode(code)):
            classes.add(ins.info.cls)
            kinds.add(ins.kind)
            local_calls += ins.kind is Kind.CALL and ins.src == CALL_LOCAL
            backward += ins.kind is Kind.JCOND and ins.off < 0
    assert {Class.ALU, Class.ALU64, Class.JMP, Class.JMP32, Class.LDX, Class.ST,
            Class.STX} <= classes
    assert {Kind.ATOMIC, Kind.LDXSX, Kind.NEG, Kind.ENDIAN, Kind.LDDW, Kind.CALLX} <= kinds
    assert local_calls and backward
