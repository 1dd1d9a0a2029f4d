"""The engines (C interpreter, LLVM JIT) and the C runtime: runs, faults, maps, helpers, cache."""
