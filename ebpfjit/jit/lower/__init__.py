"""eBPF -> LLVM IR lowering (llvmlite.ir). `lower_program` is the entry point.

Must not import: ebpfjit.jit, ebpfjit.runtime (jit.py passes the runtime's state layout in).

Imports: ebpfjit.jit.lower.function, ebpfjit.jit.lower.lowering_context
"""
from __future__ import annotations

from .function import analyze_program, describe, lower_program
from .lowering_context import (
    CALLBACK_NAME,
    ENTRY_NAME,
    RUNTIME_DECLS,
    LoweringContext,
    LoweringOptions,
    StateLayout,
)

# Bump whenever generated code changes meaning or shape (part of the compile-cache key).
LOWERING_VERSION = 14

__all__ = ["CALLBACK_NAME", "ENTRY_NAME", "LOWERING_VERSION", "RUNTIME_DECLS", "LoweringContext",
           "LoweringOptions", "StateLayout", "analyze_program", "describe", "lower_program"]
