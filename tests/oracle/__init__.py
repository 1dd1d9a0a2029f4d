"""The running kernel as an oracle: bpf(2), kernel objects, compare, the kernel fuzzer."""
