"""eBPF -> LLVM IR lowering (llvmlite.ir). `lower_program` is the entry point.

Must not import: ebpfjit.jit, ebpfjit.runtime (jit.py passes the runtime's state layout in).

Imports: ebpfjit.jit.lower.analysis, ebpfjit.jit.lower.entries,
    ebpfjit.jit.lower.lowering_context
"""
from __future__ import annotations

from .analysis import analyze_program, describe
from .entries import lower_program
from .lowering_context import (
    CALLBACK_NAME,
    ENTRY_NAME,
    RUNTIME_DECLS,
    LoweringContext,
    LoweringOptions,
    StateLayout,
)

# Bump whenever generated code changes meaning or shape (part of the compile-cache key).
LOWERING_VERSION = 17

__all__ = ["CALLBACK_NAME", "ENTRY_NAME", "LOWERING_VERSION", "RUNTIME_DECLS", "LoweringContext",
           "LoweringOptions", "StateLayout", "analyze_program", "describe", "lower_program"]
