"""Tnum operations: soundness against concrete 64-bit arithmetic, and the kernel's formats."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from verifier_strategies import tnum_and_members, u64

from ebpfjit.verifier.tnum import U32, U64, Tnum

OPS = {
    "add": (lambda a, b: a.add(b), lambda x, y: (x + y) & U64),
    "sub": (lambda a, b: a.sub(b), lambda x, y: (x - y) & U64),
    "mul": (lambda a, b: a.mul(b), lambda x, y: (x * y) & U64),
    "and": (lambda a, b: a.and_(b), lambda x, y: x & y),
    "or": (lambda a, b: a.or_(b), lambda x, y: x | y),
    "xor": (lambda a, b: a.xor(b), lambda x, y: x ^ y),
    "union": (lambda a, b: a.union(b), None),
}


@pytest.mark.parametrize("name", sorted(OPS))
@given(a=tnum_and_members(), b=tnum_and_members())
@settings(max_examples=300, deadline=None)
def test_binary_sound(name, a, b):
    abstract, concrete = OPS[name]
    (ta, xs), (tb, ys) = a, b
    r = abstract(ta, tb)
    assert r.value & r.mask == 0
    if concrete is None:       # a join holds both operands
        assert r.in_(ta) and r.in_(tb)
        return
    for x in xs:
        for y in ys:
            assert r.contains(concrete(x, y)), (ta, tb, x, y, r)


@given(a=tnum_and_members(), shift=st.integers(0, 63))
@settings(max_examples=300, deadline=None)
def test_shifts_neg_casts_sound(a, shift):
    t, xs = a
    for x in xs:
        sx = x - (1 << 64) if x >> 63 else x
        sx32 = (x & U32) - (1 << 32) if x & 0x80000000 else x & U32
        assert t.lshift(shift).contains(x << shift)
        assert t.rshift(shift).contains(x >> shift)
        assert t.arshift(shift).contains(sx >> shift)
        assert t.arshift(shift & 31, 32).contains((sx32 >> (shift & 31)) & U32)
        assert t.neg().contains(-x)
        assert t.subreg().contains(x & U32)
        for size in (1, 2, 4):
            bits = size * 8
            low = x & ((1 << bits) - 1)
            sign = 1 << (bits - 1)
            assert t.cast(size).contains(low)
            assert t.sext(size).contains((low ^ sign) - sign)
        for size in (2, 4, 8):
            assert t.bswap(size).contains(int.from_bytes(
                (x & ((1 << size * 8) - 1)).to_bytes(size, "little"), "big"))


@given(lo=u64, hi=u64)
def test_range_holds_its_ends(lo, hi):
    lo, hi = min(lo, hi), max(lo, hi)
    t = Tnum.range(lo, hi)
    assert t.contains(lo) and t.contains(hi) and t.contains((lo + hi) // 2)


@given(a=tnum_and_members(), b=tnum_and_members())
@settings(max_examples=300, deadline=None)
def test_intersect_and_in(a, b):
    (ta, xs), (tb, ys) = a, b
    r = ta.intersect(tb)
    for x in xs + ys:
        if ta.contains(x) and tb.contains(x):
            assert ta.overlaps(tb) and r.contains(x)
    assert ta.in_(r) or not ta.overlaps(tb)
    u = ta.union(tb)
    assert u.in_(ta) and u.in_(tb)
    assert ta.in_(ta) and Tnum.unknown().in_(ta)


def test_kernel_examples():
    assert Tnum.range(0, 255).format() == "(0x0; 0xff)"
    assert Tnum.range(16, 31) == Tnum(16, 15)
    assert Tnum.range(0, U64).is_unknown()
    assert str(Tnum.unknown().cast(4)) == "(0x0; 0xffffffff)"
    assert Tnum.const(5).add(Tnum.const(7)) == Tnum.const(12)
    # r1 = (0x0; 0xff) * 4 keeps the low two bits known zero
    assert Tnum(0, 0xFF).mul(Tnum.const(4)) == Tnum(0, 0x3FC)
    assert Tnum(0, 0xFF).and_(Tnum.const(0x0F)) == Tnum(0, 0xF)
    assert Tnum.const(0x12).or_(Tnum(0, 0x100)) == Tnum(0x12, 0x100)
    assert Tnum(0x80, 0x7F).arshift(4, 32) == Tnum(0x8, 0x7)
    assert Tnum(0x80000000, 0).arshift(4, 32) == Tnum(0xF8000000, 0)
    assert Tnum(0, 0xFF).sext(1) == Tnum(0, U64)
    assert Tnum(0x80, 0x7F).sext(1) == Tnum(0xFFFFFFFFFFFFFF80, 0x7F)
    assert Tnum(0x12, 0x300).bswap(2) == Tnum(0x1200, 0x3)
    assert not Tnum(1, 0).overlaps(Tnum(2, 1))


@given(a=tnum_and_members(), z=u64)
@settings(max_examples=500, deadline=None)
def test_next_ge(a, z):
    t, _ = a
    got = t.next_ge(z)
    if got is None:
        assert t.umax() < z
        return
    assert got >= z and t.contains(got)
    # the least such member: no member of t in [z, got) (t.umin() is its least member)
    assert got == z or not t.contains(z)
    if got > z and got - 1 >= z:
        assert not t.contains(got - 1) or got - 1 < z


def test_next_ge_small_exhaustive():
    for value in range(16):
        for mask in range(16):
            if value & mask:
                continue
            t = Tnum(value, mask)
            members = sorted({value | s for s in range(16) if s & ~mask == 0})
            for z in range(18):
                expect = next((x for x in members if x >= z), None)
                assert t.next_ge(z) == expect, (t, z)
