"""The running kernel as a second eBPF engine: maps, program loads and test runs through bpf(2).

One import for the oracle's kernel side; the code lives in `bpf_syscall` (the system call, its
errors and permissions), `kernel_objects` (KernelMap, KernelProgram, KernelBtf, KernelObject),
`btf_writer` (BTF for BPF_BTF_LOAD) and `jited_disasm` (capstone, the jited image as text).
`ebpfjit.kernel` re-exports this module for one release.

Imports: ebpfjit.objects, ebpfjit.oracle.bpf_syscall, ebpfjit.oracle.jited_disasm,
    ebpfjit.oracle.kernel_objects
"""
from __future__ import annotations

from ..objects.spec import BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST
from .bpf_syscall import (
    BPF_F_SLEEPABLE,
    BPF_F_TEST_RUN_ON_CPU,
    BPF_LOG_LEVEL1,
    BPF_LOG_LEVEL2,
    BPF_LOG_STATS,
    Cmd,
    available,
    check,
    errno_name,
    possible_cpus,
)
from .jited_disasm import capstone_for_host, format_jited, jited_disassembly
from .kernel_objects import (
    KernelBtf,
    KernelMap,
    KernelObject,
    KernelProgram,
    ProgInfo,
    TestRun,
    relocate_maps,
)

__all__ = [
    "BPF_ANY", "BPF_NOEXIST", "BPF_EXIST", "BPF_F_LOCK", "BPF_F_TEST_RUN_ON_CPU", "BPF_F_SLEEPABLE",
    "BPF_LOG_LEVEL1", "BPF_LOG_LEVEL2", "BPF_LOG_STATS", "Cmd",
    "available", "check", "possible_cpus",
    "KernelBtf", "KernelMap", "KernelProgram", "KernelObject", "ProgInfo", "TestRun", "relocate_maps",
    "jited_disassembly", "format_jited", "errno_name", "capstone_for_host",
]
