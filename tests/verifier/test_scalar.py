"""The scalar domain: soundness of every ALU transfer function and every branch refinement
against the concrete semantics, the concrete model against ebpfjit's interpreter, and
precision and log-format checks on the kernel's own examples."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifier_strategies import any_scalar

from ebpfjit.verifier.scalar import (
    ALU_OPS,
    JMP_OPS,
    Scalar,
    alu,
    branch,
    concrete_alu,
    concrete_branch,
)
from ebpfjit.verifier.tnum import S64_MAX, S64_MIN, U32, U64, Tnum

ALU_CASES = [(name, is64) for name in sorted(ALU_OPS) for is64 in (True, False)
             if not (name == "MOVSX32" and not is64)]


def _check_invariants(s: Scalar):
    assert not s.is_empty(), s.debug()
    assert 0 <= s.umin <= s.umax <= U64 and S64_MIN <= s.smin <= s.smax <= S64_MAX, s.debug()
    assert 0 <= s.u32_min <= s.u32_max <= U32, s.debug()


@given(d=any_scalar)
@settings(max_examples=300, deadline=None)
def test_generated_scalars_hold_their_members(d):
    s, xs = d
    _check_invariants(s)
    for x in xs:
        assert s.contains(x), (s.debug(), x)


@pytest.mark.parametrize("name,is64", ALU_CASES)
@given(d=any_scalar, s=any_scalar)
@settings(max_examples=120, deadline=None)
def test_alu_sound(name, is64, d, s):
    (ad, xs), (as_, ys) = d, s
    r = alu(name, ad, as_, is64)
    _check_invariants(r)
    for x in xs:
        for y in ys:
            c = concrete_alu(name, x, y, is64)
            assert r.contains(c), (name, is64, ad.debug(), as_.debug(), x, y, c, r.debug())


@pytest.mark.parametrize("name", JMP_OPS)
@pytest.mark.parametrize("is32", [False, True])
@given(d=any_scalar, s=any_scalar)
@settings(max_examples=120, deadline=None)
def test_branch_sound(name, is32, d, s):
    (ad, xs), (as_, ys) = d, s
    taken, fall = branch(name, ad, as_, is32)
    for x in xs:
        for y in ys:
            side = taken if concrete_branch(name, x, y, is32) else fall
            assert side is not None, (name, is32, ad.debug(), as_.debug(), x, y)
            assert side[0].contains(x) and side[1].contains(y), (
                name, is32, ad.debug(), as_.debug(), x, y, side[0].debug(), side[1].debug())


# --- precision on the kernel's examples -------------------------------------------------------

def test_and_0xff():
    r = alu("AND", Scalar.unknown(), Scalar.const(0xFF), True)
    assert (r.umin, r.umax, r.var_off) == (0, 255, Tnum(0, 0xFF))
    assert r.format() == "scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))"


def test_jgt_refines_both_sides():
    r = alu("AND", Scalar.unknown(), Scalar.const(0xFF), True)
    taken, fall = branch("JGT", r, Scalar.const(10), False)
    assert (taken[0].umin, taken[0].umax) == (11, 255)
    assert (fall[0].umin, fall[0].umax, fall[0].var_off) == (0, 10, Tnum(0, 0xF))
    assert branch("JGT", r, Scalar.const(255), False)[0] is None
    assert branch("JLE", r, Scalar.const(255), False)[1] is None


def test_formats():
    assert Scalar.unknown().format() == "scalar()"
    assert Scalar.const(0).format() == "0"
    assert Scalar.const(-1).format() == "-1"
    assert Scalar.const(0x10000).format() == "0x10000"
    assert Scalar.unknown().format(id=3) == "scalar(id=3)"
    w = alu("MOV", Scalar.unknown(), Scalar.unknown(), False)
    assert w.format() == "scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))"
    s = Scalar.srange(-8, 7)
    assert s.format() == "scalar(smin=smin32=-8,smax=smax32=7)"


def test_within():
    small = Scalar.urange(4, 8)
    big = Scalar.urange(0, 16)
    assert small.within(big) and not big.within(small)
    assert Scalar.const(5).within(small) and not Scalar.const(9).within(small)
    assert small.within(Scalar.unknown())


def test_impossible_jmp32_after_and():
    r = alu("AND", Scalar.unknown(), Scalar.const(0xF0), True)
    taken, fall = branch("JEQ", r, Scalar.const(3), True)
    assert taken is None and fall is not None


# --- the concrete model against the interpreter ----------------------------------------------

def _insn_for(name: str, is64: bool):
    from ebpfjit.isa.opcodes import BY_NAME, SIGNED_OFF

    width = 64 if is64 else 32
    if name.startswith(("LE", "BE", "BSWAP")):
        base = name.rstrip("0123456789")
        return BY_NAME[base].opcode, 0, int(name[len(base):])
    if name.startswith("MOVSX"):
        return BY_NAME[f"MOV{width}_REG"].opcode, int(name[5:]), 0
    if name in ("SDIV", "SMOD"):
        return BY_NAME[f"{name[1:]}{width}_REG"].opcode, SIGNED_OFF, 0
    if name == "NEG":
        return BY_NAME[f"NEG{width}"].opcode, 0, 0
    return BY_NAME[f"{name}{width}_REG"].opcode, 0, 0


def test_concrete_model_matches_interpreter():
    from ebpfjit.api.program import Program
    from ebpfjit.isa.insn import LDDW, Instruction, encode

    rng = random.Random(13)
    edges = [0, 1, 2, 7, 31, 32, 33, 63, 64, 0x7F, 0x80, 0xFF, 0x7FFFFFFF, 0x80000000,
             0xFFFFFFFF, 1 << 32, (1 << 63) - 1, 1 << 63, U64, U64 - 1]
    for name, is64 in ALU_CASES:
        for _ in range(40):
            d = rng.choice(edges) if rng.random() < 0.5 else rng.getrandbits(64)
            s = rng.choice(edges) if rng.random() < 0.5 else rng.getrandbits(64)
            opcode, off, imm = _insn_for(name, is64)
            unary = name == "NEG" or name.startswith(("LE", "BE", "BSWAP"))
            code = encode([Instruction(LDDW, 0, 0, 0, d), Instruction(LDDW, 1, 0, 0, s),
                           Instruction(opcode, 0, 0 if unary else 1, off, imm),
                           Instruction(0x95)])
            got = Program.from_bytes(code).run()
            assert got == concrete_alu(name, d, s, is64), (name, is64, hex(d), hex(s))


@given(d=any_scalar, lo=st.integers(0, 0x7FFFFFFF), span=st.integers(0, 0x7FFFFFFF))
@settings(max_examples=400, deadline=None)
def test_small_sync_equals_general(d, lo, span):
    """The [0, 2**31) fast path of bounds_sync gives what the kernel's general sequence
    gives: start from any state with its u64 range cut below 2**31."""
    s, _ = d
    hi = min(lo + span, 0x7FFFFFFF)
    if s.umin > hi:
        return
    a = s.copy()
    a.umin, a.umax = max(a.umin, lo), min(a.umax, hi)
    b = a.copy()
    ok_fast = a._sync_small()
    ok_general = b._sync_general()
    if ok_fast and ok_general:
        assert a == b, (a.debug(), b.debug())
    else:
        assert not ok_fast     # the fast path may only see emptiness the general one misses
