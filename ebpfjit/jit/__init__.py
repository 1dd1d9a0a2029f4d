"""The JIT layer: eBPF -> LLVM IR (`lower/`, split by pass), compilation and loading of machine code
(`compile`), and the on-disk object cache (`cache`). llvmlite is imported only here.

Imports: (nothing)
"""
