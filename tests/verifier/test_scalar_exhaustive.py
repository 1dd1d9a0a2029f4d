"""Exhaustive soundness over small universes, and a random sampler for long runs.

Every abstract value built from a small universe of edge values (each non-empty subset,
joined) against every other, for every ALU operation and every branch: each concrete result
must be in the abstract one. The universes sit on the boundaries where the kernel's own bugs
were (the 32-bit and 64-bit sign bits, the 32-bit carry, 0 and all ones). Then a random
sampler over the same check, `EBPFJIT_VERIFIER_SAMPLES` abstract pairs per operation (default
a few hundred; set 10**6 or more for a long run)."""
from __future__ import annotations

import itertools
import os
import random

import pytest

from ebpfjit.verifier.scalar import (
    ALU_OPS,
    JMP_OPS,
    Scalar,
    alu,
    branch,
    concrete_alu,
    concrete_branch,
)
from ebpfjit.verifier.tnum import U64, Tnum

UNIVERSES = {
    "sign64": [0, 1, (1 << 63) - 1, 1 << 63, U64],
    "sign32": [0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100000000, 0xFFFFFFFF80000000],
    "small": [0, 3, 8, 0x7F, 0xFFFFFFFFFFFFFFF8],
}
ALU_CASES = [(n, is64) for n in sorted(ALU_OPS) for is64 in (True, False)
             if not (n == "MOVSX32" and not is64)]


def _abstract_sets(universe):
    out = []
    for k in range(1, len(universe) + 1):
        for members in itertools.combinations(universe, k):
            s = Scalar.const(members[0])
            for v in members[1:]:
                s = s.join(Scalar.const(v))
            out.append((s, members))
    return out


def _check_alu(name, is64, ad, xs, as_, ys):
    r = alu(name, ad, as_, is64)
    for x in xs:
        for y in ys:
            c = concrete_alu(name, x, y, is64)
            assert r.contains(c), (name, is64, ad.debug(), as_.debug(), hex(x), hex(y), hex(c),
                                   r.debug())


def _check_branch(name, is32, ad, xs, as_, ys):
    taken, fall = branch(name, ad, as_, is32)
    for x in xs:
        for y in ys:
            side = taken if concrete_branch(name, x, y, is32) else fall
            assert side is not None and side[0].contains(x) and side[1].contains(y), (
                name, is32, ad.debug(), as_.debug(), hex(x), hex(y))


@pytest.mark.parametrize("universe", sorted(UNIVERSES))
def test_alu_exhaustive(universe):
    sets = _abstract_sets(UNIVERSES[universe])
    for name, is64 in ALU_CASES:
        for (ad, xs), (as_, ys) in itertools.product(sets, sets):
            _check_alu(name, is64, ad, xs, as_, ys)


@pytest.mark.parametrize("universe", sorted(UNIVERSES))
def test_branch_exhaustive(universe):
    sets = _abstract_sets(UNIVERSES[universe])
    for name in JMP_OPS:
        for is32 in (False, True):
            for (ad, xs), (as_, ys) in itertools.product(sets, sets):
                _check_branch(name, is32, ad, xs, as_, ys)


def test_tnum_ops_exhaustive():
    """Every tnum whose unknown bits lie in {0, 1, 31, 32, 63} (3**5 of them, other bits
    drawn once) against every other, for the binary operations, on all their members."""
    positions = (0, 1, 31, 32, 63)
    rng = random.Random(9669)
    base = rng.getrandbits(64)
    tnums = []
    for trits in itertools.product((0, 1, 2), repeat=len(positions)):
        v, m = base, 0
        for pos, trit in zip(positions, trits):
            v &= ~(1 << pos)
            if trit == 1:
                v |= 1 << pos
            elif trit == 2:
                m |= 1 << pos
        t = Tnum(v & ~m, m)
        members = [t.value | sum(1 << p for i, p in enumerate(positions) if (bits >> i) & 1)
                   for bits in range(1 << len(positions)) if not any(
                       (bits >> i) & 1 and not (m >> p) & 1 for i, p in enumerate(positions))]
        tnums.append((t, members))
    ops = ((Tnum.add, lambda x, y: (x + y) & U64), (Tnum.sub, lambda x, y: (x - y) & U64),
           (Tnum.mul, lambda x, y: (x * y) & U64), (Tnum.and_, int.__and__),
           (Tnum.or_, int.__or__), (Tnum.xor, int.__xor__))
    sample = tnums[::7]          # all tnums on the left, every 7th on the right: ~9,000 pairs
    for op, concrete in ops:
        for (ta, xs), (tb, ys) in itertools.product(tnums, sample):
            r = op(ta, tb)
            for x in xs:
                for y in ys:
                    assert r.contains(concrete(x, y)), (op.__name__, ta, tb, x, y, r)


def _random_set(rng):
    edges = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, (1 << 63) - 1,
             1 << 63, U64]

    def value():
        k = rng.random()
        if k < 0.3:
            return (rng.choice(edges) + rng.randint(-3, 3)) & U64
        if k < 0.5:
            return rng.randint(0, 300)
        return rng.getrandbits(64) & (rng.choice([0xFF, 0xFFFF, U64 >> 32, U64]))

    members = [value() for _ in range(rng.randint(1, 4))]
    s = Scalar.const(members[0])
    for v in members[1:]:
        s = s.join(Scalar.const(v))
    return s, members


SAMPLES = int(os.environ.get("EBPFJIT_VERIFIER_SAMPLES", "300"))


@pytest.mark.parametrize("name,is64", ALU_CASES)
def test_alu_random_samples(name, is64):
    rng = random.Random(f"{name}{is64}")
    for _ in range(SAMPLES):
        (ad, xs), (as_, ys) = _random_set(rng), _random_set(rng)
        _check_alu(name, is64, ad, xs, as_, ys)


@pytest.mark.parametrize("name", JMP_OPS)
def test_branch_random_samples(name):
    rng = random.Random(name)
    for _ in range(SAMPLES):
        (ad, xs), (as_, ys) = _random_set(rng), _random_set(rng)
        _check_branch(name, rng.random() < 0.5, ad, xs, as_, ys)
