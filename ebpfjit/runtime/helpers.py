"""Builtin helpers: installing the C implementations into an Env, and the trace_printk log.

The helpers themselves are C (csrc/helpers_misc.c, csrc/contexts.c, csrc/helpers_maps.c), so
both engines call the same code. bpf_trace_printk lines go into a per-env log kept in C; this
module drains it the way a reader of /sys/kernel/tracing/trace_pipe would: each read returns the
lines written since the previous read.

Must not import: lower, jit, kernel, cli, program, loader.

Imports: ebpfjit._rt
"""
from __future__ import annotations

import weakref

from .._rt import ffi, lib

# Helper ids installed by ebpfjit_install_builtin_helpers, besides the maps engineer's.
BUILTIN_HELPER_IDS = frozenset({
    4, 5, 6, 7, 8, 9, 10, 11, 14, 16, 26, 28, 44, 45, 54, 65, 112, 113, 114, 115, 125, 160, 165,
    181, 182,
})


def _disable_trace(address: int) -> None:
    lib.ebpfjit_trace_disable(ffi.cast("struct ebpfjit_env *", address))


def install_builtin_helpers(env) -> None:
    """Install every builtin helper into `env` (a runtime.Env) and start its trace log.

    The log lives until the Env is garbage-collected.
    """
    if getattr(env, "_builtin_helpers", False):
        return
    lib.ebpfjit_install_builtin_helpers(env.ptr)
    if lib.ebpfjit_trace_enable(env.ptr) != 0:
        raise MemoryError("cannot allocate the trace_printk log")
    address = int(ffi.cast("uintptr_t", env.ptr))
    # The address, not the cdata: the finalizer must not keep the C env alive.
    weakref.finalize(env, _disable_trace, address)
    env._builtin_helpers = True
    env._trace_lines = []


def read_trace(env) -> list[str]:
    """Lines bpf_trace_printk wrote for `env` since the last read (message part only, as
    trace_pipe shows after "bpf_trace_printk: ")."""
    size = 1 << 16
    while True:
        buf = ffi.new("char[]", size)
        n = lib.ebpfjit_trace_read(env.ptr, buf, size)
        if n >= 0:
            break
        size = -n
    if not n:
        return []
    text = ffi.buffer(buf, n)[:].decode("utf-8", "replace")
    return text.split("\n")[:-1]


def format_printk(fmt: bytes, args=(), *, size: int = 1024) -> str:
    """Format as bpf_snprintf would (kernel bprintf subset); raises ValueError on a format the
    kernel rejects. Pointer arguments (%s) are not readable outside a run and print as ""."""
    fmtbuf = ffi.new("char[]", bytes(fmt) + b"\0")
    argv = ffi.new("uint64_t[]", [int(a) & (1 << 64) - 1 for a in args] or [0])
    out = ffi.new("char[]", size)
    n = lib.ebpfjit_format(ffi.NULL, out, size, fmtbuf, len(fmt) + 1, argv, len(args))
    if n < 0:
        raise ValueError(f"invalid format {fmt!r} (errno {-n})")
    return ffi.string(out).decode("utf-8", "replace")
