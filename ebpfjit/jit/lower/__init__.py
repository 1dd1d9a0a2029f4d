"""eBPF -> LLVM IR lowering (llvmlite.ir). `lower_program` is the entry point.

Must not import: ebpfjit.jit, ebpfjit.runtime (jit.py passes the runtime's state layout in).

Imports: ebpfjit.jit.lower.analysis, ebpfjit.jit.lower.entries,
    ebpfjit.jit.lower.lowering_context
"""
from __future__ import annotations

# The lowering imports llvmlite.ir, and a cache hit must not pay for that: its names are
# imported on first use (PEP 562), LOWERING_VERSION is read without them.
_FROM_ANALYSIS = ("analyze_program", "describe")
_FROM_CONTEXT = ("CALLBACK_NAME", "ENTRY_NAME", "RUNTIME_DECLS", "LoweringContext",
                 "LoweringOptions", "StateLayout")


def __getattr__(name: str):
    if name in _FROM_ANALYSIS:
        from . import analysis as module
    elif name == "lower_program":
        from . import entries as module
    elif name in _FROM_CONTEXT:
        from . import lowering_context as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value
    return value


# Bump whenever generated code changes meaning or shape (part of the compile-cache key).
LOWERING_VERSION = 17

__all__ = ["CALLBACK_NAME", "ENTRY_NAME", "LOWERING_VERSION", "RUNTIME_DECLS", "LoweringContext",
           "LoweringOptions", "StateLayout", "analyze_program", "describe", "lower_program"]
