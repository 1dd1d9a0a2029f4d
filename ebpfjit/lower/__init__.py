"""eBPF -> LLVM IR lowering (llvmlite.ir). `lower_program` is the entry point.

Must not import: ebpfjit.jit, ebpfjit.runtime (jit.py passes the runtime's state layout in).
"""
from __future__ import annotations

from .context import (
    CALLBACK_NAME,
    ENTRY_NAME,
    RUNTIME_DECLS,
    LoweringContext,
    LoweringOptions,
    StateLayout,
)
from .program import analyze_program, describe, lower_program

# Bump whenever generated code changes meaning or shape (part of the compile-cache key).
LOWERING_VERSION = 15

__all__ = ["CALLBACK_NAME", "ENTRY_NAME", "LOWERING_VERSION", "RUNTIME_DECLS", "LoweringContext",
           "LoweringOptions", "StateLayout", "analyze_program", "describe", "lower_program"]
