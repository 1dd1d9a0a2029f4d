"""The oracle layer: the running kernel as the reference (bpf(2), BPF_PROG_TEST_RUN) and the
developer tools built on it: `kernel` (the syscall wrapper and kernel objects), `compare`
(`ebpfjit compare`: interp vs JIT vs kernel), `asmalign` (kernel jited image vs our instructions),
`fuzzgen` (the kernel-differential fuzzer). The core (isa ... api) never imports it.

Imports: (nothing)
"""
