"""The runtime layer: the Python face of the C module `ebpfjit._rt` and its only importer.

`env` (envs, loaded programs, runs, faults, the state layout and symbols the JIT builds on),
`maps` (user-facing maps), `helpers` (builtin helper installation, the trace_printk log) and
`testrun` (the XDP/skb/ctx test-run models of BPF_PROG_TEST_RUN). This package re-exports `env`'s
names so that `from ebpfjit import runtime` reads as before.

Imports: ebpfjit.runtime.env
"""
from __future__ import annotations

from .env import (
    COUNTED_VERDICTS,
    DEFAULT_BUDGET,
    ENGINE_INTERP,
    ENGINE_JIT,
    KINDS,
    MAX_FRAMES,
    MAX_HELPERS,
    PKT_OUT_MAX,
    PKT_SKB_L2,
    PKT_SKB_L3,
    PKT_XDP,
    STACK_SIZE,
    U64,
    Env,
    LoadedProgram,
    count_verdicts,
    describe_address,
    ebpfjit_py_helper,
    fault_line,
    fault_to_error,
    ffi,
    helper_symbols,
    lib,
    pcap_scan,
    reclaim,
    retire,
    state_layout,
    thread_state,
)

__all__ = [
    "COUNTED_VERDICTS", "DEFAULT_BUDGET", "ENGINE_INTERP", "ENGINE_JIT", "KINDS", "MAX_FRAMES",
    "MAX_HELPERS", "PKT_OUT_MAX", "PKT_SKB_L2", "PKT_SKB_L3", "PKT_XDP", "STACK_SIZE", "U64", "Env",
    "LoadedProgram", "count_verdicts", "describe_address", "ebpfjit_py_helper", "fault_line",
    "fault_to_error", "ffi", "helper_symbols", "lib", "pcap_scan", "reclaim", "retire",
    "state_layout", "thread_state",
]
