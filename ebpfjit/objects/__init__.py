"""The object layer: process-independent descriptions of eBPF objects (cilium/ebpf's Spec).

`spec` (ObjectSpec, ProgramSpec, MapSpec and the uapi numbers), `elf` (ELF -> ObjectSpec; the only
pyelftools importer), `btf` (BTF parsing; the one home of the BTF kinds), `ctx_layout` (context
layouts and the load-time ctx-access conversion), `helper_names` (helper names and prototypes),
`verdicts` (return-code names per program type). Reading the same ELF anywhere gives the same
spec; nothing here touches the C runtime, LLVM or the kernel.

Imports: (nothing)
"""
