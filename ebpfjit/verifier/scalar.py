"""The verifier's scalar domain: a tnum plus unsigned/signed 64- and 32-bit ranges, kept in sync.

This is the kernel's `bpf_reg_state` scalar part (kernel/bpf/verifier.c): `var_off` (a Tnum),
`umin/umax/smin/smax` over 64 bits and `u32_min/u32_max/s32_min/s32_max` over the low 32 bits.
Every concrete value a register may hold lies in all of them at once; `bounds_sync` is the
kernel's `reg_bounds_sync` (each component tightened from the others).

- `alu(name, dst, src, is64)`: the transfer function of every ALU/ALU64 operation of RFC 9669
  v1-v4, keyed by `ALU_OPS` names, which derive from ebpfjit.isa.opcodes (`AluOp` member names, plus
  `SDIV`/`SMOD`, `MOVSX8/16/32` and `LE16`..`BSWAP64` for the v4 and endian forms);
  `alu_op_name(info, off, imm)` maps an instruction to its name. 32-bit operations zero-extend.
  The K form's src is `Scalar.const(sign-extended imm)`, as the kernel builds it.
- `branch(name, dst, src, is32)`: both sides of a JMP/JMP32 comparison (`JMP_OPS`, the
  `JmpOp` names), `None` for a side that cannot be taken (the kernel's is_branch_taken, then
  reg_set_min_max, then an emptiness check that prunes a refined side holding no value).
- `Scalar.format()`: the kernel's log syntax; `Scalar.within(other)`: subsumption for pruning.

Signed bounds are held as Python signed ints, unsigned bounds and tnums as non-negative ints.
The formulas follow the kernel where it is precise and sound; where this module is more precise
(division, modulo, byte swaps, sign extension, constant folding of every operation), the comment
says so. Soundness is checked by tests/verifier against the interpreter's concrete semantics.

Imports: ebpfjit.isa.opcodes, ebpfjit.errors, ebpfjit.verifier.tnum
"""
from __future__ import annotations

from ..errors import VerifierError
from ..isa.opcodes import ENDIAN_WIDTHS, MOVSX_OFFS_32, MOVSX_OFFS_64, OPCODES, SIGNED_OFF, AluOp, JmpOp, Kind
from .tnum import (
    HI32,
    S32_MAX,
    S32_MIN,
    S64_MAX,
    S64_MIN,
    SIGN32,
    SIGN64,
    U32,
    U64,
    UNKNOWN,
    Tnum,
)

_TWO64 = 1 << 64


def _s64(x: int) -> int:
    return ((x & U64) ^ SIGN64) - SIGN64


def _s32(x: int) -> int:
    return ((x & U32) ^ SIGN32) - SIGN32


class Scalar:
    """A set of 64-bit values: the intersection of a tnum and four ranges.

    Mutable on purpose (the walker refines copies in place); operations below return new
    objects and never modify their operands."""

    __slots__ = ("var_off", "umin", "umax", "smin", "smax", "u32_min", "u32_max", "s32_min",
                 "s32_max")

    def __init__(self, var_off: Tnum = UNKNOWN, umin: int = 0, umax: int = U64,
                 smin: int = S64_MIN, smax: int = S64_MAX, u32_min: int = 0, u32_max: int = U32,
                 s32_min: int = S32_MIN, s32_max: int = S32_MAX):
        self.var_off = var_off
        self.umin = umin
        self.umax = umax
        self.smin = smin
        self.smax = smax
        self.u32_min = u32_min
        self.u32_max = u32_max
        self.s32_min = s32_min
        self.s32_max = s32_max

    # --- constructors ----------------------------------------------------------------------

    @staticmethod
    def const(v: int) -> Scalar:
        v &= U64
        lo = v & U32
        return Scalar(Tnum(v, 0), v, v, _s64(v), _s64(v), lo, lo, _s32(lo), _s32(lo))

    @staticmethod
    def unknown() -> Scalar:
        return Scalar()

    @staticmethod
    def from_tnum(t: Tnum) -> Scalar:
        s = Scalar(t)
        s.bounds_sync()
        return s

    @staticmethod
    def urange(umin: int, umax: int) -> Scalar:
        """Every value in [umin, umax] (unsigned 64-bit, umin <= umax)."""
        s = Scalar(Tnum.range(umin, umax), umin, umax)
        s.bounds_sync()
        return s

    @staticmethod
    def srange(smin: int, smax: int) -> Scalar:
        """Every value in [smin, smax] (signed 64-bit, smin <= smax)."""
        s = Scalar(UNKNOWN, 0, U64, smin, smax)
        s.bounds_sync()
        return s

    @staticmethod
    def unknown_bytes(size: int) -> Scalar:
        """An unknown value of `size` bytes, zero-extended (what a load of that size gives)."""
        if size >= 8:
            return Scalar()
        return Scalar.from_tnum(Tnum(0, (1 << (size * 8)) - 1))

    def copy(self) -> Scalar:
        return Scalar(self.var_off, self.umin, self.umax, self.smin, self.smax, self.u32_min,
                      self.u32_max, self.s32_min, self.s32_max)

    # --- predicates --------------------------------------------------------------------------

    def is_const(self) -> bool:
        return not self.var_off.mask

    def is_subreg_const(self) -> bool:
        return not self.var_off.mask & U32

    @property
    def value(self) -> int:
        """The constant (unsigned 64-bit); meaningful when is_const()."""
        return self.var_off.value

    def is_unknown(self) -> bool:
        return (self.var_off.mask == U64 and self.umin == 0 and self.umax == U64
                and self.smin == S64_MIN and self.smax == S64_MAX and self.u32_min == 0
                and self.u32_max == U32 and self.s32_min == S32_MIN and self.s32_max == S32_MAX)

    def contains(self, x: int) -> bool:
        """Whether the concrete value x (taken modulo 2**64) is a member of the set."""
        x &= U64
        s = _s64(x)
        lo = x & U32
        s32 = _s32(lo)
        return (self.var_off.contains(x) and self.umin <= x <= self.umax
                and self.smin <= s <= self.smax and self.u32_min <= lo <= self.u32_max
                and self.s32_min <= s32 <= self.s32_max)

    def is_empty(self) -> bool:
        """Whether the components contradict each other: the set holds no value (a branch
        that refines a register to this is dead). Not complete: a set may be empty without
        any component showing it; every set this says is empty is."""
        t = self.var_off
        if t.value & t.mask:
            return True
        return (self.umin > self.umax or self.smin > self.smax or self.u32_min > self.u32_max
                or self.s32_min > self.s32_max or t.value > self.umax
                or (t.value | t.mask) < self.umin)

    def within(self, other: Scalar) -> bool:
        """Whether every value of self is in `other` (the kernel's regsafe for scalars:
        range_within(other, self) and tnum_in(other.var_off, self.var_off))."""
        return (other.umin <= self.umin and self.umax <= other.umax
                and other.smin <= self.smin and self.smax <= other.smax
                and other.u32_min <= self.u32_min and self.u32_max <= other.u32_max
                and other.s32_min <= self.s32_min and self.s32_max <= other.s32_max
                and other.var_off.in_(self.var_off))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Scalar) and self.var_off == other.var_off
                and self.umin == other.umin and self.umax == other.umax
                and self.smin == other.smin and self.smax == other.smax
                and self.u32_min == other.u32_min and self.u32_max == other.u32_max
                and self.s32_min == other.s32_min and self.s32_max == other.s32_max)

    def __hash__(self) -> int:
        return hash((self.var_off.value, self.var_off.mask, self.umin, self.umax, self.smin,
                     self.smax, self.u32_min, self.u32_max, self.s32_min, self.s32_max))

    # --- lattice -----------------------------------------------------------------------------

    def join(self, other: Scalar) -> Scalar:
        """The smallest Scalar of this domain holding both sets."""
        s = Scalar(self.var_off.union(other.var_off), min(self.umin, other.umin),
                   max(self.umax, other.umax), min(self.smin, other.smin),
                   max(self.smax, other.smax), min(self.u32_min, other.u32_min),
                   max(self.u32_max, other.u32_max), min(self.s32_min, other.s32_min),
                   max(self.s32_max, other.s32_max))
        s.bounds_sync()
        return s

    # --- the kernel's reg_bounds_sync ------------------------------------------------------

    def update_bounds(self) -> None:
        """__update_reg_bounds: tighten the four ranges from the tnum."""
        t = self.var_off
        v, m = t.value, t.mask
        v32, m32 = v & U32, m & U32
        # signed min: the sign bit set if unknown, the known bits; signed max: the reverse
        x = v32 | (m32 & SIGN32)
        if x & SIGN32:
            x -= 0x100000000
        if x > self.s32_min:
            self.s32_min = x
        x = v32 | (m32 & S32_MAX)
        if x & SIGN32:
            x -= 0x100000000
        if x < self.s32_max:
            self.s32_max = x
        if v32 > self.u32_min:
            self.u32_min = v32
        x = v32 | m32
        if x < self.u32_max:
            self.u32_max = x
        x = v | (m & SIGN64)
        if x & SIGN64:
            x -= _TWO64
        if x > self.smin:
            self.smin = x
        x = v | (m & S64_MAX)
        if x & SIGN64:
            x -= _TWO64
        if x < self.smax:
            self.smax = x
        if v > self.umin:
            self.umin = v
        x = v | m
        if x < self.umax:
            self.umax = x

    def deduce_bounds(self) -> bool:
        """__reg_deduce_bounds: 64 -> 32, signed <-> unsigned, then 32 -> 64 (kernel 6.x).
        Returns whether anything changed. (Sign tests below stand for the kernel's casts:
        for a non-empty range, `(s32)min <= (s32)max` of a u32 range holds exactly when both
        ends have the same sign bit, and likewise for the other three.)"""
        umin, umax, smin, smax = self.umin, self.umax, self.smin, self.smax
        u32_min, u32_max, s32_min, s32_max = self.u32_min, self.u32_max, self.s32_min, self.s32_max
        before = (umin, umax, smin, smax, u32_min, u32_max, s32_min, s32_max)
        # __reg32_deduce_bounds. Upper halves equal across the u64 range: its low halves form
        # a u32 range (and an s32 one when they do not cross the s32 sign boundary).
        hi_lo, hi_hi = umin >> 32, umax >> 32
        if hi_lo == hi_hi:
            lo, hi = umin & U32, umax & U32
            if lo > u32_min:
                u32_min = lo
            if hi < u32_max:
                u32_max = hi
            if lo & SIGN32:
                lo -= 0x100000000
            if hi & SIGN32:
                hi -= 0x100000000
            if lo <= hi:
                if lo > s32_min:
                    s32_min = lo
                if hi < s32_max:
                    s32_max = hi
        elif (hi_lo + 1) & U32 == hi_hi:
            # Upper halves two consecutive numbers while the low halves go from negative to
            # non-negative: the low halves still form an s32 range.
            lo, hi = umin & U32, umax & U32
            if lo & SIGN32 and not hi & SIGN32:
                lo -= 0x100000000
                if lo > s32_min:
                    s32_min = lo
                if hi < s32_max:
                    s32_max = hi
        hi_lo, hi_hi = smin >> 32, smax >> 32
        if hi_lo == hi_hi:
            lo, hi = smin & U32, smax & U32
            if lo <= hi:
                if lo > u32_min:
                    u32_min = lo
                if hi < u32_max:
                    u32_max = hi
            if lo & SIGN32:
                lo -= 0x100000000
            if hi & SIGN32:
                hi -= 0x100000000
            if lo <= hi:
                if lo > s32_min:
                    s32_min = lo
                if hi < s32_max:
                    s32_max = hi
        elif (hi_lo + 1) & U32 == hi_hi & U32:
            lo, hi = smin & U32, smax & U32
            if lo & SIGN32 and not hi & SIGN32:
                lo -= 0x100000000
                if lo > s32_min:
                    s32_min = lo
                if hi < s32_max:
                    s32_max = hi
        # A u32 range that does not cross the s32 sign boundary is an s32 range, and back.
        if not (u32_min ^ u32_max) & SIGN32:
            lo, hi = u32_min, u32_max
            if lo & SIGN32:
                lo -= 0x100000000
                hi -= 0x100000000
            if lo > s32_min:
                s32_min = lo
            if hi < s32_max:
                s32_max = hi
        if (s32_min < 0) == (s32_max < 0):
            lo, hi = s32_min & U32, s32_max & U32
            if lo > u32_min:
                u32_min = lo
            if hi < u32_max:
                u32_max = hi
        elif u32_max < s32_min & U32:
            # The s32 range wraps through the top of the u32 space and the u32 range touches
            # only its non-negative piece (or only its negative piece, below): as for 64 bits.
            s32_min = u32_min - 0x100000000 if u32_min & SIGN32 else u32_min
            if s32_max < u32_max:
                u32_max = s32_max
        elif s32_max < u32_min:
            s32_max = u32_max - 0x100000000 if u32_max & SIGN32 else u32_max
            lo = s32_min & U32
            if lo > u32_min:
                u32_min = lo
        # __reg64_deduce_bounds: the same between u64 and s64.
        if not (umin ^ umax) & SIGN64:
            lo, hi = umin, umax
            if lo & SIGN64:
                lo -= _TWO64
                hi -= _TWO64
            if lo > smin:
                smin = lo
            if hi < smax:
                smax = hi
        if (smin < 0) == (smax < 0):
            lo, hi = smin & U64, smax & U64
            if lo > umin:
                umin = lo
            if hi < umax:
                umax = hi
        elif umax < smin & U64:
            # The s64 range wraps through the top of the u64 space: a u64 range that touches
            # only one of its two pieces bounds that piece.
            smin = umin - _TWO64 if umin & SIGN64 else umin
            if smax < umax:
                umax = smax
        elif smax < umin:
            smax = umax - _TWO64 if umax & SIGN64 else umax
            lo = smin & U64
            if lo > umin:
                umin = lo
        # __reg_deduce_mixed_bounds: the 32-bit ranges tighten the low halves of the 64-bit
        # ends (always a well-formed range).
        x = (umin & HI32) | u32_min
        if x > umin:
            umin = x
        x = (umax & HI32) | u32_max
        if x < umax:
            umax = x
        x = (smin & HI32) | u32_min
        if x & SIGN64:
            x -= _TWO64
        if x > smin:
            smin = x
        x = (smax & HI32) | u32_max
        if x & SIGN64:
            x -= _TWO64
        if x < smax:
            smax = x
        # A value in [S32_MIN, S32_MAX] whose low half is a non-negative s32 is that s32.
        if s32_min >= 0 and smin >= S32_MIN and smax <= S32_MAX:
            smin = umin = s32_min
            smax = umax = s32_max
            if s32_min <= s32_max:
                self.var_off = self.var_off.intersect(Tnum.range(s32_min, s32_max))
        self.umin, self.umax, self.smin, self.smax = umin, umax, smin, smax
        self.u32_min, self.u32_max, self.s32_min, self.s32_max = u32_min, u32_max, s32_min, s32_max
        return before != (umin, umax, smin, smax, u32_min, u32_max, s32_min, s32_max)

    def bound_offset(self) -> None:
        """__reg_bound_offset: learn tnum bits from the unsigned ranges."""
        umin, umax = self.umin, self.umax
        if umin > umax or self.u32_min > self.u32_max:
            return      # empty: bounds_sync reports it
        t = self.var_off
        v, m = t.value, t.mask
        bits = (umin ^ umax).bit_length()
        if bits < 64:
            # intersect with Tnum.range(umin, umax)
            delta = (1 << bits) - 1
            m &= delta
            v = (v | (umin & ~delta)) & ~m
        lo, hi = self.u32_min, self.u32_max
        bits = (lo ^ hi).bit_length()
        if bits < 32:
            delta = (1 << bits) - 1
            m32 = m & delta
            v = (v & HI32) | (((v & U32) | (lo & ~delta)) & ~m32)
            m = (m & HI32) | m32
        self.var_off = Tnum(v, m)

    def bounds_sync(self) -> bool:
        """The kernel's reg_bounds_sync. Returns False when the set turned out empty (the
        caller prunes the path), True otherwise."""
        t = self.var_off
        if t.value & t.mask:
            return False
        if not t.mask:
            # A constant: every range is that value, if they all hold it.
            v = t.value
            if not self.contains(v):
                return False
            lo = v & U32
            self.umin = self.umax = v
            self.smin = self.smax = v - _TWO64 if v & SIGN64 else v
            self.u32_min = self.u32_max = lo
            self.s32_min = self.s32_max = lo - 0x100000000 if lo & SIGN32 else lo
            return True
        if self.umax <= S32_MAX:
            return self._sync_small()
        return self._sync_general()

    def _sync_general(self) -> bool:
        self.update_bounds()
        # Three rounds, as Linux 6.16+ (each can enable the next); a round that changes
        # nothing is a fixpoint, so the rest are skipped.
        if self.deduce_bounds() and self.deduce_bounds():
            self.deduce_bounds()
        t = self.var_off
        if t.value & t.mask:
            return False
        self.bound_offset()
        self.update_bounds()
        if self.is_empty():
            return False
        return self._single_value()

    def _single_value(self) -> bool:
        """The u64 range and the tnum meeting in one value make the register that constant
        (Linux 6.16+'s tnum_step check in __update_reg64_bounds); meeting in none, empty."""
        t = self.var_off
        first = t.next_ge(self.umin)
        if first is None or first > self.umax:
            return False
        if first < self.umax:
            second = t.next_ge(first + 1)
            if second is not None and second <= self.umax:
                return True
        if not self.contains(first):
            return False
        v = first
        lo = v & U32
        self.var_off = Tnum(v, 0)
        self.umin = self.umax = v
        self.smin = self.smax = v - _TWO64 if v & SIGN64 else v
        self.u32_min = self.u32_max = lo
        self.s32_min = self.s32_max = lo - 0x100000000 if lo & SIGN32 else lo
        return True

    def _sync_small(self) -> bool:
        """reg_bounds_sync when every value is in [0, 2**31): then a value, its low half and
        both their signed readings are one number, so the four ranges are one range (their
        intersection) and the tnum's upper half is zero. Same result as the general path,
        several times faster (tests hold the two equal)."""
        t = self.var_off
        v, m = t.value, t.mask
        lo = self.umin
        for x in (self.smin, self.u32_min, self.s32_min, v):
            if x > lo:
                lo = x
        hi = self.umax
        for x in (self.smax, self.u32_max, self.s32_max, v | m):
            if x < hi:
                hi = x
        if lo > hi:
            return False
        bits = (lo ^ hi).bit_length()
        delta = (1 << bits) - 1
        if (v ^ lo) & ~(delta | m):
            return False        # the tnum's known bits miss the range
        m &= delta
        v = (v | (lo & ~delta)) & ~m
        if v > lo:
            lo = v
        if v | m < hi:
            hi = v | m
        if lo > hi:
            return False
        self.var_off = Tnum(v, m)
        self.umin = self.smin = self.u32_min = self.s32_min = lo
        self.umax = self.smax = self.u32_max = self.s32_max = hi
        return self._single_value() if m else True

    # --- narrowing ---------------------------------------------------------------------------

    def subreg(self) -> Scalar:
        """The low 32 bits, zero-extended (the kernel's zext_32_to_64 of a copy)."""
        if self.is_subreg_const():
            return Scalar.const(self.var_off.value & U32)
        return _from32(self.var_off.subreg(), self.u32_min, self.u32_max, self.s32_min,
                       self.s32_max)

    def cast(self, size: int) -> Scalar:
        """The low `size` bytes, zero-extended (the kernel's coerce_reg_to_size)."""
        if size >= 8:
            return self.copy()
        if size == 4:
            return self.subreg()
        bits = size * 8
        m = (1 << bits) - 1
        if self.umin >> bits == self.umax >> bits:
            lo, hi = self.umin & m, self.umax & m
        else:
            lo, hi = 0, m
        s = Scalar(self.var_off.cast(size), lo, hi, lo, hi, lo, hi, lo, hi)
        s.bounds_sync()
        return s

    def sext(self, size: int, is64: bool = True) -> Scalar:
        """The low `size` bytes sign-extended to 64 bits (is64) or to 32 bits and then
        zero-extended (movsx in ALU32). More precise than the kernel's coerce_reg_to_size_sx
        when the source range crosses a 2**bits boundary (the tnum still gives the bits)."""
        bits = size * 8
        if bits >= 64:
            return self.copy()
        m = (1 << bits) - 1
        sign = 1 << (bits - 1)
        t = self.var_off.sext(size)
        # Range of the low `bits` bits as unsigned, when the upper bits stay constant.
        if self.umin >> bits == self.umax >> bits:
            lo, hi = self.umin & m, self.umax & m
        elif bits == 32 and self.u32_min <= self.u32_max:
            lo, hi = self.u32_min, self.u32_max
        else:
            lo, hi = self.var_off.value & m, (self.var_off.value | self.var_off.mask) & m
        if hi < sign or lo >= sign:
            slo, shi = ((lo ^ sign) - sign), ((hi ^ sign) - sign)
        else:
            slo, shi = -sign, sign - 1
        if is64:
            s = Scalar(t, 0, U64, slo, shi)
        else:
            t32 = t.subreg()
            if 0 <= slo or shi < 0:
                s = _from32(t32, slo & U32, shi & U32, slo, shi)
            else:
                s = _from32(t32, 0, U32, slo, shi)
            return s
        s.bounds_sync()
        return s

    # --- formatting --------------------------------------------------------------------------

    def format(self, id: int = 0, precise: bool = False) -> str:
        """The register as the kernel's log prints a scalar (print_reg_state and
        print_scalar_ranges): `0`, `-1`, `0x1000` for constants, `scalar()` when nothing is
        known, else `scalar(smin=...,umax=...,var_off=(0x0; 0xff))` with equal values merged
        as `smax=umax=255`. `id` is the register's id (0: none); `precise` adds the `P`."""
        p = "P" if precise else ""
        if not self.var_off.mask:
            return p + _snum(_s64(self.var_off.value))
        s32_min, s32_max = self.s32_min, self.s32_max
        fields = [
            ["smin", self.smin & U64, self.smin == S64_MIN],
            ["smax", self.smax & U64, self.smax == S64_MAX],
            ["umin", self.umin, self.umin == 0],
            ["umax", self.umax, self.umax == U64],
            # In hex, a negative s32 prints as its u32 (no sign extension to 64 bits).
            ["smin32", s32_min & U64 if _is_snum_decimal(s32_min) else s32_min & U32,
             s32_min == S32_MIN],
            ["smax32", s32_max & U64 if _is_snum_decimal(s32_max) else s32_max & U32,
             s32_max == S32_MAX],
            ["umin32", self.u32_min, self.u32_min == 0],
            ["umax32", self.u32_max, self.u32_max == U32],
        ]
        parts = []
        if id:
            parts.append(f"id={id}")
        for i, (name, val, omit) in enumerate(fields):
            if omit:
                continue
            neg1 = name[0] == "s" and val >= SIGN64
            names = [name]
            for f2 in fields[i + 2::2]:
                if f2[2] or f2[1] != val:
                    continue
                if (f2[0][0] == "s" and f2[1] >= SIGN64) != neg1:
                    continue
                f2[2] = True
                names.append(f2[0])
            text = _snum(_s64(val)) if name[0] == "s" else _unum(val)
            parts.append("=".join(names) + "=" + text)
        if not self.var_off.is_unknown():
            parts.append("var_off=" + self.var_off.format())
        return p + "scalar(" + ",".join(parts) + ")"

    def __repr__(self) -> str:
        return self.format()

    def debug(self) -> str:
        """Every component, unmerged (for test failures)."""
        return (f"Scalar(var_off={self.var_off}, u=[{self.umin:#x}, {self.umax:#x}], "
                f"s=[{self.smin}, {self.smax}], u32=[{self.u32_min:#x}, {self.u32_max:#x}], "
                f"s32=[{self.s32_min}, {self.s32_max}])")


def _is_snum_decimal(v: int) -> bool:
    return -32768 <= v <= 32767


def _snum(v: int) -> str:
    return str(v) if _is_snum_decimal(v) else f"{v & U64:#x}"


def _unum(v: int) -> str:
    return str(v) if v <= 0xFFFF else f"{v:#x}"


def _from32(t32: Tnum, u32_min: int, u32_max: int, s32_min: int, s32_max: int) -> Scalar:
    """A zero-extended 32-bit result: the 64-bit ranges are the u32 range (the kernel's
    __reg_assign_32_into_64, with the s64 range taken from the u32 one, which is exact)."""
    s = Scalar(t32, u32_min, u32_max, u32_min, u32_max, u32_min, u32_max, s32_min, s32_max)
    s.bounds_sync()
    return s


# --- interval arithmetic at a width (32 or 64) ---------------------------------------------

def _wrap_u(lo: int, hi: int, bits: int) -> tuple[int, int]:
    """[lo, hi] (exact integers) taken modulo 2**bits, as one unsigned range."""
    m = (1 << bits) - 1
    if hi - lo > m:
        return 0, m
    nlo = lo & m
    nhi = nlo + (hi - lo)
    if nhi > m:
        return 0, m
    return nlo, nhi


def _wrap_s(lo: int, hi: int, bits: int) -> tuple[int, int]:
    """[lo, hi] (exact integers) taken modulo 2**bits, as one signed range."""
    m = (1 << bits) - 1
    sign = 1 << (bits - 1)
    if hi - lo > m:
        return -sign, sign - 1
    nlo = ((lo & m) ^ sign) - sign
    nhi = nlo + (hi - lo)
    if nhi >= sign:
        return -sign, sign - 1
    return nlo, nhi


def _s_from_u(umin: int, umax: int, bits: int) -> tuple[int, int]:
    """An unsigned range read as signed: exact when it does not cross the sign boundary."""
    sign = 1 << (bits - 1)
    if umax < sign or umin >= sign:
        return ((umin ^ sign) - sign), ((umax ^ sign) - sign)
    return -sign, sign - 1


# A view is (tnum, umin, umax, smin, smax) at one width; the tnum of a 32-bit view has its
# upper half clear. Each op below maps two views to one (the tnum may carry garbage above the
# width: the caller truncates).

def _view64(s: Scalar):
    return s.var_off, s.umin, s.umax, s.smin, s.smax


def _view32(s: Scalar):
    return s.var_off.subreg(), s.u32_min, s.u32_max, s.s32_min, s.s32_max


def _full(bits):
    m = (1 << bits) - 1
    return 0, m, -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def _v_add(bits, a, b):
    ulo, uhi = _wrap_u(a[1] + b[1], a[2] + b[2], bits)
    slo, shi = _wrap_s(a[3] + b[3], a[4] + b[4], bits)
    return a[0].add(b[0]), ulo, uhi, slo, shi


def _v_sub(bits, a, b):
    ulo, uhi = _wrap_u(a[1] - b[2], a[2] - b[1], bits)
    slo, shi = _wrap_s(a[3] - b[4], a[4] - b[3], bits)
    return a[0].sub(b[0]), ulo, uhi, slo, shi


def _v_neg(bits, a, b):
    ulo, uhi = _wrap_u(-a[2], -a[1], bits)
    slo, shi = _wrap_s(-a[4], -a[3], bits)
    return a[0].neg(), ulo, uhi, slo, shi


def _v_mul(bits, a, b):
    # Unsigned products are monotone in both operands, signed ones reach their extremes at
    # the corners (newer kernels' scalar_min_max_mul; older ones gave up on signs).
    ulo, uhi = _wrap_u(a[1] * b[1], a[2] * b[2], bits)
    corners = (a[3] * b[3], a[3] * b[4], a[4] * b[3], a[4] * b[4])
    slo, shi = _wrap_s(min(corners), max(corners), bits)
    return a[0].mul(b[0]), ulo, uhi, slo, shi


def _v_and(bits, a, b):
    t = a[0].and_(b[0])
    ulo, uhi = t.value, min(a[2], b[2])
    slo, shi = _s_from_u(ulo, uhi, bits)
    return t, ulo, uhi, slo, shi


def _v_or(bits, a, b):
    t = a[0].or_(b[0])
    ulo, uhi = max(a[1], b[1]), t.value | t.mask
    slo, shi = _s_from_u(ulo, uhi, bits)
    return t, ulo, uhi, slo, shi


def _v_xor(bits, a, b):
    t = a[0].xor(b[0])
    ulo, uhi = t.value, t.value | t.mask
    slo, shi = _s_from_u(ulo, uhi, bits)
    return t, ulo, uhi, slo, shi


def _v_div(bits, a, b):
    # x / 0 = 0 and x / y <= x: [umin / umax_y, umax / umin_y] with 0 when y may be 0.
    # (More precise than kernels before 6.19, which gave up on division.)
    ulo = a[1] // b[2] if b[1] else 0
    uhi = a[2] // max(b[1], 1)
    slo, shi = _s_from_u(ulo, uhi, bits)
    return _range_tnum(ulo, uhi), ulo, uhi, slo, shi


def _v_mod(bits, a, b):
    # x % 0 = x and x % y < y, x % y <= x; all of x < y: x itself.
    if a[2] < b[1]:
        return a
    uhi = a[2] if b[1] == 0 else min(a[2], b[2] - 1)
    slo, shi = _s_from_u(0, uhi, bits)
    return _range_tnum(0, uhi), 0, uhi, slo, shi


def _v_sdiv(bits, a, b):
    # Truncating division: |x / y| <= |x| (x / 0 = 0; INT_MIN / -1 = INT_MIN, which the
    # magnitude bound covers by giving up when |x| can be 2**(bits-1)). By a constant other
    # than -1 the quotient is monotone in x.
    sign = 1 << (bits - 1)
    if b[3] == b[4] and b[3] not in (0, -1):
        c = b[3]
        q1, q2 = _tdiv(a[3], c), _tdiv(a[4], c)
        slo, shi = min(q1, q2), max(q1, q2)
    else:
        mag = max(-a[3], a[4], 0)
        if mag >= sign:
            slo, shi = -sign, sign - 1
        else:
            slo, shi = -mag, mag
    ulo, uhi = _u_from_s(slo, shi, bits)
    return _range_tnum(ulo, uhi), ulo, uhi, slo, shi


def _v_smod(bits, a, b):
    # Truncating remainder: the sign of x, |r| < |y| and |r| <= |x|; x % 0 = x (so the range
    # of x is kept whenever y may be 0), INT_MIN % -1 = 0.
    ymag = max(-b[3], b[4])
    lim = max(ymag - 1, 0)
    slo = max(a[3], -lim) if a[3] < 0 else 0
    shi = min(a[4], lim) if a[4] > 0 else 0
    if b[3] <= 0 <= b[4]:
        slo, shi = min(slo, a[3]), max(shi, a[4])
    ulo, uhi = _u_from_s(slo, shi, bits)
    return _range_tnum(ulo, uhi), ulo, uhi, slo, shi


def _tdiv(x: int, y: int) -> int:
    q = abs(x) // abs(y)
    return q if (x < 0) == (y < 0) else -q


def _u_from_s(slo: int, shi: int, bits: int) -> tuple[int, int]:
    m = (1 << bits) - 1
    if slo >= 0 or shi < 0:
        return slo & m, shi & m
    return 0, m


def _range_tnum(ulo: int, uhi: int) -> Tnum:
    return Tnum.range(ulo, uhi)


def _v_lsh(bits, a, c):
    m = (1 << bits) - 1
    sign = 1 << (bits - 1)
    t = a[0].lshift(c)
    if a[2] << c <= m:
        ulo, uhi = a[1] << c, a[2] << c
    else:
        ulo, uhi = 0, m
    # Signed bounds are dropped and come back from the tnum, as in the kernel (which keeps
    # them only for the <<32 of a 64-bit shift, handled by the caller).
    return t, ulo, uhi, -sign, sign - 1


def _v_rsh(bits, a, c):
    ulo, uhi = a[1] >> c, a[2] >> c
    slo, shi = _s_from_u(ulo, uhi, bits)
    return a[0].rshift(c), ulo, uhi, slo, shi


def _v_arsh(bits, a, c):
    slo, shi = a[3] >> c, a[4] >> c
    ulo, uhi = _u_from_s(slo, shi, bits)
    return a[0].arshift(c, bits), ulo, uhi, slo, shi


_BINARY = {"ADD": _v_add, "SUB": _v_sub, "MUL": _v_mul, "AND": _v_and, "OR": _v_or,
           "XOR": _v_xor, "NEG": _v_neg, "DIV": _v_div, "MOD": _v_mod, "SDIV": _v_sdiv,
           "SMOD": _v_smod}
_SHIFTS = {"LSH": _v_lsh, "RSH": _v_rsh, "ARSH": _v_arsh}
# Operations whose low 32 bits depend only on the low 32 bits of the operands: a 64-bit one
# also computes its 32-bit ranges from the 32-bit ranges (as the kernel does for these).
_LOW_HALF_EXACT = ("ADD", "SUB", "MUL", "AND", "OR", "XOR", "NEG")


def _build(view, bits: int) -> Scalar:
    t, ulo, uhi, slo, shi = view
    if bits == 32:
        t = t.subreg()
        s = Scalar(t, ulo, uhi, ulo, uhi, ulo, uhi, slo, shi)
    else:
        s = Scalar(t, ulo, uhi, slo, shi)
    return s


# --- the concrete semantics (RFC 9669), also the constant folder ---------------------------

def concrete_alu(name: str, dst: int, src: int, is64: bool) -> int:
    """The concrete result of one ALU operation on unsigned 64-bit register values (32-bit
    operations zero-extend), as ebpfjit's interpreter computes it (tests check the two
    agree)."""
    bits = 64 if is64 else 32
    m = (1 << bits) - 1
    sign = 1 << (bits - 1)
    a, b = dst & m, src & m
    if name == "ADD":
        r = a + b
    elif name == "SUB":
        r = a - b
    elif name == "MUL":
        r = a * b
    elif name == "DIV":
        r = a // b if b else 0
    elif name == "MOD":
        r = a % b if b else a
    elif name == "SDIV" or name == "SMOD":
        sa, sb = (a ^ sign) - sign, (b ^ sign) - sign
        if name == "SDIV":
            r = _tdiv(sa, sb) if sb else 0
        else:
            r = sa - _tdiv(sa, sb) * sb if sb else sa
    elif name == "OR":
        r = a | b
    elif name == "AND":
        r = a & b
    elif name == "XOR":
        r = a ^ b
    elif name == "LSH":
        r = a << (b & (bits - 1))
    elif name == "RSH":
        r = a >> (b & (bits - 1))
    elif name == "ARSH":
        r = ((a ^ sign) - sign) >> (b & (bits - 1))
    elif name == "NEG":
        r = -a
    elif name == "MOV":
        r = b
    elif name.startswith("MOVSX"):
        n = int(name[5:])
        sn = 1 << (n - 1)
        r = ((src & ((1 << n) - 1)) ^ sn) - sn
    elif name.startswith(("LE", "BE", "BSWAP")):
        n = int(name.lstrip("LEBSWAP"))
        v = dst & ((1 << n) - 1)
        r = v if name.startswith("LE") else _bswap_int(v, n // 8)
        return r
    else:
        raise VerifierError(f"unknown ALU operation {name!r}")
    return r & m


def _bswap_int(v: int, size: int) -> int:
    return int.from_bytes(v.to_bytes(size, "little"), "big")


# --- the ALU transfer functions ------------------------------------------------------------

def _alu_mov(dst: Scalar, src: Scalar, is64: bool) -> Scalar:
    return src.copy() if is64 else src.subreg()


def _endian(name: str, size: int):
    def op(dst: Scalar, src: Scalar, is64: bool) -> Scalar:
        if name == "LE":       # on a little-endian host: truncation to `size` bytes
            return dst.cast(size)
        # be / bswap: the bytes move and their knowledge with them; the ranges follow from
        # the tnum (more precise than the kernel, which forgets the register).
        return Scalar.from_tnum(dst.var_off.bswap(size))
    return op


def _movsx(size: int):
    def op(dst: Scalar, src: Scalar, is64: bool) -> Scalar:
        return src.sext(size, is64)
    return op


def _arith(name: str):
    vop = _BINARY.get(name)
    shift = _SHIFTS.get(name)

    def op(dst: Scalar, src: Scalar, is64: bool) -> Scalar:
        bits = 64 if is64 else 32
        if shift is not None:
            # The kernel computes shifts only by a constant below the width (an out-of-range
            # constant count, masked by the RFC, is folded by the constant case in `alu`).
            c = src.var_off.value & U32 if not is64 else src.var_off.value
            if (src.var_off.mask if is64 else src.var_off.mask & U32) or c >= bits:
                return Scalar() if is64 else Scalar.unknown_bytes(4)
            if is64:
                r = _build(shift(64, _view64(dst), c), 64)
                if name == "LSH" and c < 32:
                    lo = _v_lsh(32, _view32(dst), c)
                    r.u32_min, r.u32_max, r.s32_min, r.s32_max = lo[1], lo[2], lo[3], lo[4]
                elif name == "LSH" and c == 32:
                    # x << 32 is the low half's s32 times 2**32 (the compilers' sign-extension
                    # idiom `<<32 s>>32` relies on this).
                    r.smin = max(r.smin, dst.s32_min << 32)
                    r.smax = min(r.smax, dst.s32_max << 32)
            else:
                r = _build(shift(32, _view32(dst), c), 32)
            r.bounds_sync()
            return r
        if is64:
            r = _build(vop(64, _view64(dst), _view64(src)), 64)
            if name in _LOW_HALF_EXACT:
                lo = vop(32, _view32(dst), _view32(src))
                r.u32_min, r.u32_max, r.s32_min, r.s32_max = lo[1], lo[2], lo[3], lo[4]
        else:
            r = _build(vop(32, _view32(dst), _view32(src)), 32)
        r.bounds_sync()
        return r
    return op


def _build_ops() -> dict:
    ops = {}
    for op in AluOp:
        if op is AluOp.END:
            continue
        ops[op.name] = _alu_mov if op is AluOp.MOV else _arith(op.name)
    for op in (AluOp.DIV, AluOp.MOD):
        ops["S" + op.name] = _arith("S" + op.name)
    for off in MOVSX_OFFS_64:
        ops[f"MOVSX{off}"] = _movsx(off // 8)
    for info in OPCODES.values():
        if info.kind is Kind.ENDIAN:
            for width in ENDIAN_WIDTHS:
                ops[f"{info.name}{width}"] = _endian(info.name, width // 8)
    return ops


ALU_OPS: dict = _build_ops()
_UNARY = frozenset(n for n in ALU_OPS if n == "NEG" or n.startswith(("LE", "BE", "BSWAP")))
_MOVES = frozenset(n for n in ALU_OPS if n.startswith("MOV"))     # MOV, MOVSX8/16/32


def alu_op_name(info, off: int = 0, imm: int = 0) -> str:
    """The ALU_OPS name of an ALU/NEG/ENDIAN instruction (its OpInfo, off and imm)."""
    if info.kind is Kind.ENDIAN:
        return f"{info.name}{imm}"
    name = info.op.name
    if info.op in (AluOp.DIV, AluOp.MOD) and off == SIGNED_OFF:
        return "S" + name
    if info.op is AluOp.MOV and off:
        return f"MOVSX{off}"
    return name


def alu(name: str, dst: Scalar, src: Scalar, is64: bool) -> Scalar:
    """dst = dst `name` src over sets; 32-bit operations zero-extend. Unary operations (NEG,
    the byte swaps) ignore src. Returns a new Scalar; never modifies the operands."""
    fn = ALU_OPS.get(name)
    if fn is None:
        raise VerifierError(f"unknown ALU operation {name!r}")
    if not is64 and name == "MOVSX32":
        raise VerifierError("movsx32 exists only in ALU64 (RFC 9669 MOVSX widths "
                            f"{MOVSX_OFFS_32} for ALU)")
    # Constants fold exactly (the kernel folds most operations through the tnum anyway).
    dt = dst.var_off
    if name in _UNARY:
        if not dt.mask:
            return Scalar.const(concrete_alu(name, dt.value, 0, is64))
    elif not src.var_off.mask and (not dt.mask or name in _MOVES):
        return Scalar.const(concrete_alu(name, dt.value, src.var_off.value, is64))
    return fn(dst, src, is64)


# --- conditional jumps ---------------------------------------------------------------------

JMP_OPS = tuple(op.name for op in JmpOp if op not in (JmpOp.JA, JmpOp.CALL, JmpOp.EXIT))
# The condition's negation (fallthrough) and the same condition with operands swapped.
_REVERSE = {"JEQ": "JNE", "JNE": "JEQ", "JGT": "JLE", "JLE": "JGT", "JGE": "JLT", "JLT": "JGE",
            "JSGT": "JSLE", "JSLE": "JSGT", "JSGE": "JSLT", "JSLT": "JSGE", "JSET": "JNSET",
            "JNSET": "JSET"}
_FLIP = {"JGT": "JLT", "JGE": "JLE", "JSGT": "JSLT", "JSGE": "JSLE"}
assert set(JMP_OPS) <= set(_REVERSE), JMP_OPS


def concrete_branch(name: str, a: int, b: int, is32: bool) -> bool:
    """Whether a JMP (JMP32 when is32) comparison of the register values a, b is taken."""
    m = U32 if is32 else U64
    sign = SIGN32 if is32 else SIGN64
    a &= m
    b &= m
    sa, sb = (a ^ sign) - sign, (b ^ sign) - sign
    if name == "JEQ":
        return a == b
    if name == "JNE":
        return a != b
    if name == "JGT":
        return a > b
    if name == "JGE":
        return a >= b
    if name == "JLT":
        return a < b
    if name == "JLE":
        return a <= b
    if name == "JSGT":
        return sa > sb
    if name == "JSGE":
        return sa >= sb
    if name == "JSLT":
        return sa < sb
    if name == "JSLE":
        return sa <= sb
    if name == "JSET":
        return bool(a & b)
    raise VerifierError(f"unknown conditional jump {name!r}")


def is_branch_taken(name: str, dst: Scalar, src: Scalar, is32: bool) -> int:
    """1 when the condition always holds, 0 when it never does, -1 when it depends (the
    kernel's is_scalar_branch_taken, plus the tnum's known bits for JEQ/JNE/JSET)."""
    if is32:
        t1, t2 = dst.var_off.subreg(), src.var_off.subreg()
        umin1, umax1, smin1, smax1 = dst.u32_min, dst.u32_max, dst.s32_min, dst.s32_max
        umin2, umax2, smin2, smax2 = src.u32_min, src.u32_max, src.s32_min, src.s32_max
    else:
        t1, t2 = dst.var_off, src.var_off
        umin1, umax1, smin1, smax1 = dst.umin, dst.umax, dst.smin, dst.smax
        umin2, umax2, smin2, smax2 = src.umin, src.umax, src.smin, src.smax
    if name == "JEQ" or name == "JNE":
        hit = 1 if name == "JEQ" else 0
        if not t1.mask and not t2.mask:
            return hit if t1.value == t2.value else 1 - hit
        if (umin1 > umax2 or umax1 < umin2 or smin1 > smax2 or smax1 < smin2
                or not t1.overlaps(t2)):
            return 1 - hit
        if not is32 and (dst.u32_min > src.u32_max or dst.u32_max < src.u32_min
                         or dst.s32_min > src.s32_max or dst.s32_max < src.s32_min):
            return 1 - hit
        return -1
    if name == "JSET":
        if t1.value & t2.value:
            return 1
        if not ((t1.value | t1.mask) & (t2.value | t2.mask)):
            return 0
        return -1
    if name == "JNSET":
        r = is_branch_taken("JSET", dst, src, is32)
        return r if r < 0 else 1 - r
    if name in _FLIP:
        name = _FLIP[name]
        umin1, umax1, smin1, smax1, umin2, umax2, smin2, smax2 = \
            umin2, umax2, smin2, smax2, umin1, umax1, smin1, smax1
    if name == "JLT":
        return 1 if umax1 < umin2 else 0 if umin1 >= umax2 else -1
    if name == "JLE":
        return 1 if umax1 <= umin2 else 0 if umin1 > umax2 else -1
    if name == "JSLT":
        return 1 if smax1 < smin2 else 0 if smin1 >= smax2 else -1
    if name == "JSLE":
        return 1 if smax1 <= smin2 else 0 if smin1 > smax2 else -1
    raise VerifierError(f"unknown conditional jump {name!r}")


def _refine(name: str, r1: Scalar, r2: Scalar, is32: bool) -> None:
    """Narrow r1 and r2 (copies, in place) to the values for which `r1 name r2` holds (the
    kernel's regs_refine_cond_op)."""
    if name in _FLIP:
        name = _FLIP[name]
        r1, r2 = r2, r1
    if name == "JEQ":
        # Equal registers share every component of the width compared (as the kernel: a
        # 64-bit equality intersects the 32-bit ranges only through the tnum and the sync).
        if is32:
            lo, hi = max(r1.u32_min, r2.u32_min), min(r1.u32_max, r2.u32_max)
            r1.u32_min = r2.u32_min = lo
            r1.u32_max = r2.u32_max = hi
            lo, hi = max(r1.s32_min, r2.s32_min), min(r1.s32_max, r2.s32_max)
            r1.s32_min = r2.s32_min = lo
            r1.s32_max = r2.s32_max = hi
            t = r1.var_off.subreg().intersect(r2.var_off.subreg())
            if not r1.var_off.subreg().overlaps(r2.var_off.subreg()):
                r1.u32_min, r1.u32_max = 1, 0     # empty
            r1.var_off = r1.var_off.with_subreg(t)
            r2.var_off = r2.var_off.with_subreg(t)
        else:
            lo, hi = max(r1.umin, r2.umin), min(r1.umax, r2.umax)
            r1.umin = r2.umin = lo
            r1.umax = r2.umax = hi
            lo, hi = max(r1.smin, r2.smin), min(r1.smax, r2.smax)
            r1.smin = r2.smin = lo
            r1.smax = r2.smax = hi
            if not r1.var_off.overlaps(r2.var_off):
                r1.umin, r1.umax = 1, 0           # empty
            r1.var_off = r2.var_off = r1.var_off.intersect(r2.var_off)
        return
    if name == "JNE" or name == "JSET" or name == "JNSET":
        if not (r2.is_subreg_const() if is32 else r2.is_const()):
            r1, r2 = r2, r1
        if not (r2.is_subreg_const() if is32 else r2.is_const()):
            return
        val = r2.var_off.value
        if name == "JNE":
            # A constant at an edge of a range moves that edge.
            if is32:
                val &= U32
                if r1.u32_min == val:
                    r1.u32_min += 1
                if r1.u32_max == val:
                    r1.u32_max -= 1
                if r1.s32_min == _s32(val):
                    r1.s32_min += 1
                if r1.s32_max == _s32(val):
                    r1.s32_max -= 1
            else:
                if r1.umin == val:
                    r1.umin += 1
                if r1.umax == val:
                    r1.umax -= 1
                if r1.smin == _s64(val):
                    r1.smin += 1
                if r1.smax == _s64(val):
                    r1.smax -= 1
            return
        if is32:
            val &= U32
        if name == "JSET":
            # Some bit of val is set in r1: with a single bit, that bit is known.
            if val & (val - 1) or not val:
                return
            t = Tnum(val, 0)
            r1.var_off = (r1.var_off.with_subreg(r1.var_off.subreg().or_(t)) if is32
                          else r1.var_off.or_(t))
        else:
            # No bit of val is set in r1.
            if r1.var_off.value & val:
                r1.umin, r1.umax = 1, 0           # a known 1 contradicts: empty
            t = Tnum(~val & (U32 if is32 else U64), 0)
            r1.var_off = (r1.var_off.with_subreg(r1.var_off.subreg().and_(t)) if is32
                          else r1.var_off.and_(t))
        return
    # JLE / JLT / JSLE / JSLT: r1's max comes down, r2's min goes up.
    if is32:
        if name == "JLE":
            r1.u32_max = min(r1.u32_max, r2.u32_max)
            r2.u32_min = max(r1.u32_min, r2.u32_min)
        elif name == "JLT":
            r1.u32_max = min(r1.u32_max, r2.u32_max - 1)
            r2.u32_min = max(r1.u32_min + 1, r2.u32_min)
        elif name == "JSLE":
            r1.s32_max = min(r1.s32_max, r2.s32_max)
            r2.s32_min = max(r1.s32_min, r2.s32_min)
        else:
            r1.s32_max = min(r1.s32_max, r2.s32_max - 1)
            r2.s32_min = max(r1.s32_min + 1, r2.s32_min)
    else:
        if name == "JLE":
            r1.umax = min(r1.umax, r2.umax)
            r2.umin = max(r1.umin, r2.umin)
        elif name == "JLT":
            r1.umax = min(r1.umax, r2.umax - 1)
            r2.umin = max(r1.umin + 1, r2.umin)
        elif name == "JSLE":
            r1.smax = min(r1.smax, r2.smax)
            r2.smin = max(r1.smin, r2.smin)
        else:
            r1.smax = min(r1.smax, r2.smax - 1)
            r2.smin = max(r1.smin + 1, r2.smin)


def _side(name: str, dst: Scalar, src: Scalar, is32: bool):
    d, s = dst.copy(), src.copy()
    _refine(name, d, s, is32)
    if d.is_empty() or s.is_empty() or not d.bounds_sync() or not s.bounds_sync():
        return None
    return d, s


def branch(name: str, dst: Scalar, src: Scalar, is32: bool):
    """Both outcomes of `if dst name src` (JMP32 when is32): (taken, fallthrough), each a
    refined (dst, src) pair or None when that outcome is impossible. The K form's src is
    Scalar.const of the sign-extended immediate."""
    pred = is_branch_taken(name, dst, src, is32)
    taken = _side(name, dst, src, is32) if pred != 0 else None
    fall = _side(_REVERSE[name], dst, src, is32) if pred != 1 else None
    return taken, fall


def parse_scalar(text: str) -> Scalar:
    """The inverse of Scalar.format: a scalar as the kernel's log prints it (`-3`, `0x10`,
    `scalar()`, `scalar(smin=umin=1,smax=umax=9,var_off=(0x0; 0xf))`; an `id=`, a `P` and the
    fixed offset `+N` of a linked register are ignored), synced as the kernel's state is."""
    text = text.strip()
    if text.startswith("P"):
        text = text[1:]
    if not text.startswith("scalar("):
        try:
            return Scalar.const(int(text, 0))
        except ValueError:
            raise VerifierError(f"not a scalar in the kernel's syntax: {text!r}") from None
    if not text.endswith(")"):
        raise VerifierError(f"not a scalar in the kernel's syntax: {text!r}")
    body = text[len("scalar("):-1]
    s = Scalar()
    var_off = body.find("var_off=(")
    if var_off >= 0:
        v, m = body[var_off + len("var_off=("):].rstrip(")").split(";")
        s.var_off = Tnum(int(v, 0), int(m, 0))
        body = body[:var_off]
    for part in filter(None, body.split(",")):
        *names, value = part.split("=")
        if not names or names[0] == "id" or part.startswith("+"):
            continue
        v = int(value, 0)
        for name in names:
            if name in ("smin", "smax"):
                setattr(s, name, _s64(v))
            elif name in ("umin", "umax"):
                setattr(s, name, v)
            elif name in ("smin32", "smax32"):
                setattr(s, name[:1] + "32_" + name[1:4], _s32(v))
            elif name in ("umin32", "umax32"):
                setattr(s, name[:1] + "32_" + name[1:4], v)
            else:
                raise VerifierError(f"unknown scalar field {name!r} in {text!r}")
    s.bounds_sync()
    return s
