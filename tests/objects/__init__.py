"""Objects: ELF, BTF, context layouts, loading clang-built programs of tests/progs."""
