"""Hypothesis strategies for the verifier's domains: concrete sets and the abstract values
that hold them (shared by test_tnum.py and test_scalar.py)."""
from __future__ import annotations

from hypothesis import strategies as st

from ebpfjit.verifier.scalar import Scalar
from ebpfjit.verifier.tnum import U64, Tnum

# Values near the edges where the kernel's bounds logic has had its bugs: 0, the sign bits,
# the 32-bit boundary, all ones.
_EDGES = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
          0x100000000, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, U64]
u64 = st.one_of(
    st.sampled_from(_EDGES),
    st.sampled_from(_EDGES).flatmap(lambda e: st.integers(-4, 4).map(lambda d: (e + d) & U64)),
    st.integers(0, 0xFF),
    st.integers(-0x100, 0x100).map(lambda v: v & U64),
    st.integers(0, U64),
)
masks = st.one_of(st.sampled_from([0, 1, 0xF, 0xFF, 0xFFFFFFFF, 0xFFFFFFFF00000000, U64]),
                  st.integers(0, U64), st.integers(0, 0xFFFF))


@st.composite
def tnum_and_members(draw):
    """A tnum and a few concrete members of it."""
    value, mask = draw(u64), draw(masks)
    t = Tnum(value & ~mask & U64, mask)
    members = draw(st.lists(st.integers(0, U64).map(lambda r: t.value | (r & t.mask)),
                            min_size=1, max_size=4))
    return t, members


@st.composite
def scalar_and_members(draw):
    """A Scalar and concrete members it must hold: the join of a few values (which then
    gives ranges and a tnum), or a tnum with its members, or a small range."""
    kind = draw(st.sampled_from(["join", "tnum", "range", "const"]))
    if kind == "const":
        v = draw(u64)
        return Scalar.const(v), [v]
    if kind == "tnum":
        t, members = draw(tnum_and_members())
        return Scalar.from_tnum(t), members
    if kind == "range":
        lo = draw(u64)
        hi = min(U64, lo + draw(st.integers(0, 1 << draw(st.integers(0, 64)))))
        members = [lo, hi] + draw(st.lists(st.integers(lo, hi), max_size=3))
        return Scalar.urange(lo, hi), members
    members = draw(st.lists(u64, min_size=1, max_size=4))
    s = Scalar.const(members[0])
    for v in members[1:]:
        s = s.join(Scalar.const(v))
    return s, members


@st.composite
def derived_scalar_and_members(draw):
    """A Scalar reached as the walker reaches them: a base set through a few ALU operations
    with constants and branch refinements (either side), its members carried concretely. Gives
    the mixed 32/64-bit, signed/unsigned states that plain joins do not."""
    from ebpfjit.verifier.scalar import ALU_OPS, JMP_OPS, alu, branch, concrete_alu, concrete_branch

    s, xs = draw(scalar_and_members())
    for _ in range(draw(st.integers(1, 3))):
        c = draw(u64)
        if draw(st.booleans()):
            name = draw(st.sampled_from(sorted(ALU_OPS)))
            is64 = name == "MOVSX32" or draw(st.booleans())
            if name == "MOV" or name.startswith("MOVSX"):
                src, ys = s, xs            # a move of the register itself
                s = alu(name, Scalar.unknown(), src, is64)
                xs = [concrete_alu(name, 0, y, is64) for y in ys]
                continue
            s = alu(name, s, Scalar.const(c), is64)
            xs = [concrete_alu(name, x, c, is64) for x in xs]
        else:
            name = draw(st.sampled_from(JMP_OPS))
            is32 = draw(st.booleans())
            taken, fall = branch(name, s, Scalar.const(c), is32)
            keep_taken = draw(st.booleans())
            side = taken if keep_taken else fall
            kept = [x for x in xs if concrete_branch(name, x, c, is32) == keep_taken]
            if side is None or not kept:
                continue               # the drawn side holds none of the members
            s, xs = side[0], kept
    return s, xs


any_scalar = st.one_of(scalar_and_members(), derived_scalar_and_members())
