"""The verifier's view of the scalar domain: the few operations the walk needs, over
ebpfjit.verifier.scalar (tnum + u/s 64/32 bounds, written separately and tested exhaustively).

Keeping the walk behind this small interface lets the domain change without touching it.

Imports: ebpfjit.verifier.scalar
"""
from __future__ import annotations

from . import scalar as _scalar
from .scalar import Scalar

MASK64 = (1 << 64) - 1
S64_MIN = -(1 << 63)
S64_MAX = (1 << 63) - 1


def unknown() -> Scalar:
    return Scalar.unknown()


def const(value: int) -> Scalar:
    return Scalar.const(value & MASK64)


def unknown_bits(bits: int) -> Scalar:
    """An unknown value of `bits` bits, zero-extended (a narrow load)."""
    return Scalar.unknown_bytes(bits // 8)


def signed_bits(bits: int) -> Scalar:
    """An unknown value of `bits` bits, sign-extended to 64 (a sign-extending load)."""
    return Scalar.srange(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def is_const(s: Scalar) -> bool:
    return s.is_const()


def const_value(s: Scalar) -> int:
    """The unsigned 64-bit value of a constant."""
    return s.var_off.value


def signed_value(s: Scalar) -> int:
    v = s.var_off.value
    return v - (1 << 64) if v >> 63 else v


def smin(s: Scalar) -> int:
    return s.smin


def smax(s: Scalar) -> int:
    return s.smax


def umin(s: Scalar) -> int:
    return s.umin


def umax(s: Scalar) -> int:
    return s.umax


def alu(op: str, dst: Scalar, src: Scalar, is64: bool) -> Scalar:
    """dst op src; `op` an ALU_OPS name of the domain, any case ("add", "sdiv", "movsx8",
    "le16", ...)."""
    return _scalar.alu(op.upper(), dst, src, is64)


def branch(op: str, dst: Scalar, src: Scalar, is32: bool):
    """(taken (dst, src) | None, fallthrough (dst, src) | None); src of a K form is the
    constant of the sign-extended immediate."""
    return _scalar.branch(op.upper(), dst, src, is32)


def concrete_branch(op: str, a: int, b: int, is32: bool) -> bool:
    """Whether `if a op b` jumps, for two constants (unsigned 64-bit values)."""
    return _scalar.concrete_branch(op.upper(), a, b, is32)


def within(cur: Scalar, old: Scalar) -> bool:
    """Every value of `cur` is a value of `old`."""
    return cur.within(old)


def format(s: Scalar) -> str:
    return s.format()
