"""Tristate numbers: the kernel's bit-level abstraction of a 64-bit value (kernel/bpf/tnum.c).

A `Tnum(value, mask)` stands for every 64-bit x with `x & ~mask == value`: bits set in `mask`
are unknown, the others equal the bits of `value` (always `value & mask == 0`). The operations
below over-approximate the concrete ones (the result contains every concrete result of members
of the operands); they follow the kernel's formulas so that logs and verdicts agree with it.

Imports: (nothing)

>>> Tnum.range(0, 255)
(0x0; 0xff)
>>> Tnum.const(3).add(Tnum.unknown()).is_unknown()
True
>>> Tnum(0, 0xff).and_(Tnum.const(0x0f))
(0x0; 0xf)
"""
from __future__ import annotations

U64 = (1 << 64) - 1
U32 = (1 << 32) - 1
S64_MIN = -(1 << 63)
S64_MAX = (1 << 63) - 1
S32_MIN = -(1 << 31)
S32_MAX = (1 << 31) - 1
SIGN64 = 1 << 63
SIGN32 = 1 << 31
HI32 = U64 ^ U32


class Tnum:
    """An immutable tristate number. `value` and `mask` are unsigned 64-bit Python ints."""

    __slots__ = ("value", "mask")

    def __init__(self, value: int, mask: int):
        self.value = value
        self.mask = mask

    # --- constructors ----------------------------------------------------------------------

    @staticmethod
    def const(value: int) -> Tnum:
        return Tnum(value & U64, 0)

    @staticmethod
    def unknown() -> Tnum:
        return UNKNOWN

    @staticmethod
    def range(umin: int, umax: int) -> Tnum:
        """The smallest tnum holding [umin, umax] (unsigned, umin <= umax): known high bits
        where both ends agree, unknown below the highest bit where they differ."""
        bits = (umin ^ umax).bit_length()
        if bits > 63:
            return UNKNOWN
        delta = (1 << bits) - 1
        return Tnum(umin & ~delta, delta)

    # --- predicates --------------------------------------------------------------------------

    def is_const(self) -> bool:
        return not self.mask

    def is_unknown(self) -> bool:
        return self.mask == U64

    def contains(self, x: int) -> bool:
        """Whether the concrete 64-bit value x (any int, taken modulo 2**64) is a member."""
        return (x & U64) & ~self.mask == self.value

    def in_(self, other: Tnum) -> bool:
        """Whether `other` is a subset of self (the kernel's tnum_in(self, other))."""
        if other.mask & ~self.mask:
            return False
        return self.value == other.value & ~self.mask

    def overlaps(self, other: Tnum) -> bool:
        """Whether the two sets share a member: their known bits agree wherever both know."""
        return not ((self.value ^ other.value) & ~(self.mask | other.mask))

    def is_aligned(self, size: int) -> bool:
        if not size:
            return True
        return not ((self.value | self.mask) & (size - 1))

    def next_ge(self, z: int) -> int | None:
        """The smallest member >= z, or None (the kernel's tnum_step(t, z - 1)). Bit
        arithmetic, no loop: find the highest known bit where z disagrees with the tnum."""
        if z > U64:
            return None
        v, m = self.value, self.mask
        d = (z ^ v) & ~m
        if not d:
            return z                    # z's known bits are the tnum's: z is a member
        i = d.bit_length() - 1
        if v >> i & 1:
            # the tnum has a 1 where z has a 0: z's bits above, that 1, the least below
            low = (1 << i) - 1
            return (z & ~((low << 1) | 1)) | (1 << i) | (v & low)
        # a 0 where z has a 1: raise the lowest unknown bit above i that z has clear
        cand = m & ~z & ~((1 << (i + 1)) - 1)
        if not cand:
            return None
        j = (cand & -cand).bit_length() - 1
        low = (1 << j) - 1
        return (z & ~((low << 1) | 1)) | (1 << j) | (v & low)

    def umin(self) -> int:
        return self.value

    def umax(self) -> int:
        return self.value | self.mask

    # --- arithmetic --------------------------------------------------------------------------

    def add(self, b: Tnum) -> Tnum:
        sm = self.mask + b.mask
        sv = self.value + b.value
        sigma = sm + sv
        chi = (sigma ^ sv) & U64
        mu = chi | self.mask | b.mask
        return Tnum(sv & ~mu & U64, mu)

    def sub(self, b: Tnum) -> Tnum:
        dv = (self.value - b.value) & U64
        alpha = dv + self.mask
        beta = (dv - b.mask) & U64
        chi = (alpha ^ beta) & U64
        mu = chi | self.mask | b.mask
        return Tnum(dv & ~mu, mu)

    def neg(self) -> Tnum:
        return ZERO.sub(self)

    def mul(self, b: Tnum) -> Tnum:
        """Long multiplication over the bits of self (the kernel's tnum_mul): a known 1 adds the
        unknown part of b, an unknown bit adds all of b's possible bits as uncertainty."""
        a_v, a_m = self.value, self.mask
        acc_v = (a_v * b.value) & U64
        acc_m = ZERO
        b_v, b_m = b.value, b.mask
        while a_v or a_m:
            if a_v & 1:
                acc_m = acc_m.add(Tnum(0, b_m))
            elif a_m & 1:
                acc_m = acc_m.add(Tnum(0, b_v | b_m))
            a_v >>= 1
            a_m >>= 1
            b_v = (b_v << 1) & U64
            b_m = (b_m << 1) & U64
        return Tnum(acc_v, 0).add(acc_m)

    def and_(self, b: Tnum) -> Tnum:
        alpha = self.value | self.mask
        beta = b.value | b.mask
        v = self.value & b.value
        return Tnum(v, alpha & beta & ~v)

    def or_(self, b: Tnum) -> Tnum:
        v = self.value | b.value
        return Tnum(v, (self.mask | b.mask) & ~v)

    def xor(self, b: Tnum) -> Tnum:
        mu = self.mask | b.mask
        return Tnum((self.value ^ b.value) & ~mu, mu)

    def lshift(self, shift: int) -> Tnum:
        return Tnum((self.value << shift) & U64, (self.mask << shift) & U64)

    def rshift(self, shift: int) -> Tnum:
        return Tnum(self.value >> shift, self.mask >> shift)

    def arshift(self, shift: int, bits: int = 64) -> Tnum:
        """Arithmetic shift right of the low `bits` (32 or 64) bits; a 32-bit result is
        zero-extended (the kernel's tnum_arshift with insn_bitness)."""
        if bits == 32:
            v, m = self.value & U32, self.mask & U32
            return Tnum(((v ^ SIGN32) - SIGN32) >> shift & U32, ((m ^ SIGN32) - SIGN32) >> shift & U32)
        v, m = self.value, self.mask
        return Tnum(((v ^ SIGN64) - SIGN64) >> shift & U64, ((m ^ SIGN64) - SIGN64) >> shift & U64)

    # --- lattice -----------------------------------------------------------------------------

    def intersect(self, b: Tnum) -> Tnum:
        """Members of both (the kernel's tnum_intersect). Where the known bits disagree the
        intersection is empty; the result is then meaningless: check `overlaps` first when
        emptiness matters."""
        mu = self.mask & b.mask
        return Tnum((self.value | b.value) & ~mu, mu)

    def union(self, b: Tnum) -> Tnum:
        """The smallest tnum holding both (the kernel's tnum_union): a join."""
        mu = (self.value ^ b.value) | self.mask | b.mask
        return Tnum(self.value & b.value & ~mu, mu)

    join = union

    # --- sizes -------------------------------------------------------------------------------

    def cast(self, size: int) -> Tnum:
        """Zero-extension of the low `size` bytes (1, 2, 4 or 8)."""
        if size >= 8:
            return self
        m = (1 << (size * 8)) - 1
        return Tnum(self.value & m, self.mask & m)

    def subreg(self) -> Tnum:
        return Tnum(self.value & U32, self.mask & U32)

    def clear_subreg(self) -> Tnum:
        return Tnum(self.value & HI32, self.mask & HI32)

    def with_subreg(self, sub: Tnum) -> Tnum:
        """The upper half of self with the low 32 bits of `sub`."""
        return Tnum((self.value & HI32) | (sub.value & U32), (self.mask & HI32) | (sub.mask & U32))

    def subreg_is_const(self) -> bool:
        return not (self.mask & U32)

    def sext(self, size: int) -> Tnum:
        """Sign-extension of the low `size` bytes to 64 bits: an unknown sign bit makes every
        upper bit unknown."""
        if size >= 8:
            return self
        bits = size * 8
        low = (1 << bits) - 1
        sign = 1 << (bits - 1)
        v, m = self.value & low, self.mask & low
        high = U64 ^ low
        if m & sign:
            return Tnum(v, m | high)
        if v & sign:
            return Tnum(v | high, m)
        return Tnum(v, m)

    def bswap(self, size: int) -> Tnum:
        """Byte reversal of the low `size` bytes (2, 4, 8), zero above: bits move, knowledge
        moves with them."""
        return Tnum(_bswap(self.value, size), _bswap(self.mask, size))

    # --- values ------------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tnum) and self.value == other.value and self.mask == other.mask

    def __hash__(self) -> int:
        return hash((self.value, self.mask))

    def __repr__(self) -> str:
        return self.format()

    def format(self) -> str:
        """The kernel's tnum_strn: `(0x0; 0xff)` (the kernel's %#llx prints 0 as 0x0)."""
        return f"({self.value:#x}; {self.mask:#x})"


def _bswap(x: int, size: int) -> int:
    return int.from_bytes((x & ((1 << (size * 8)) - 1)).to_bytes(size, "little"), "big")


ZERO = Tnum(0, 0)
UNKNOWN = Tnum(0, U64)
UNKNOWN32 = Tnum(0, U32)
