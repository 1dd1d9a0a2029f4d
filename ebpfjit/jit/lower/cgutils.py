"""Small builder-first helpers for the lowering (numba's cgutils idea, for eBPF's needs).

Must not import: ebpfjit.jit, ebpfjit.runtime.

Imports: ebpfjit.jit.lower.lowering_context
"""
from __future__ import annotations

from llvmlite import ir

from .lowering_context import I8, I64, PTR


def const(typ: ir.IntType, value: int) -> ir.Constant:
    """An integer constant of `typ`, given any Python int (wrapped to the type's width)."""
    return ir.Constant(typ, value & ((1 << typ.width) - 1))


def alloca_once(builder: ir.IRBuilder, typ, name: str = "", align: int | None = None):
    """An alloca in the function's entry block (so mem2reg/SROA can promote it)."""
    with builder.goto_entry_block():
        slot = builder.alloca(typ, name=name)
        if align:
            slot.align = align
    return slot


def byte_gep(builder: ir.IRBuilder, base, offset, name: str = ""):
    """`getelementptr i8, ptr base, i64 offset` (offset an int or an i64 value)."""
    if isinstance(offset, int):
        offset = const(I64, offset)
    return as_ptr(builder, builder.gep(as_ptr(builder, base), [offset], source_etype=I8, name=name))


def pointer_cast(builder: ir.IRBuilder, value, typ):
    """`bitcast value to typ` even where llvmlite considers the pointer types equal."""
    instr = ir.instructions.CastInstr(builder.block, "bitcast", value, typ)
    builder._insert(instr)
    return instr


def as_ptr(builder: ir.IRBuilder, value):
    """`value` as an opaque `ptr` (llvmlite.ir may still type pointers; LLVM 22 never does)."""
    if isinstance(value.type, ir.PointerType) and not value.type.is_opaque:
        # builder.bitcast() skips casts between "equal" pointer types; insert it directly.
        return pointer_cast(builder, value, PTR)
    return value


def cbranch_likely(builder: ir.IRBuilder, cond, likely_block, unlikely_block, weights):
    """Conditional branch whose first target is the hot path (`!prof` branch weights)."""
    br = builder.cbranch(cond, likely_block, unlikely_block)
    br.set_metadata("prof", weights)
    return br


def cbranch_unlikely(builder: ir.IRBuilder, cond, unlikely_block, likely_block, weights):
    """Conditional branch to `unlikely_block` when `cond` holds (a fault), else continue.

    `weights` must be the `[1, N]` branch weights (context.unlikely_weights()).
    """
    br = builder.cbranch(cond, unlikely_block, likely_block)
    br.set_metadata("prof", weights)
    return br


def zext_or_trunc(builder: ir.IRBuilder, value, typ: ir.IntType):
    if value.type.width < typ.width:
        return builder.zext(value, typ)
    if value.type.width > typ.width:
        return builder.trunc(value, typ)
    return value


def sext_or_trunc(builder: ir.IRBuilder, value, typ: ir.IntType):
    if value.type.width < typ.width:
        return builder.sext(value, typ)
    if value.type.width > typ.width:
        return builder.trunc(value, typ)
    return value


def declare_intrinsic(module: ir.Module, name: str, ret, args) -> ir.Function:
    """Get or declare an LLVM intrinsic (e.g. `llvm.bswap.i32`)."""
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return ir.Function(module, ir.FunctionType(ret, args), name)
