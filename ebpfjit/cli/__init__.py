"""The command line: `commands` (the `ebpfjit` command), `conformance` (how a bpf_conformance case is
judged), `plugin` (the bpf_conformance plugin protocol), `testdata` (the `.data` format parser
shared by pytest, the CLI and the benchmarks).

Imports: (nothing)
"""
