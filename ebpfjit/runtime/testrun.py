"""The C test-run models of BPF_PROG_TEST_RUN (csrc/contexts.c) driven from Python: an XDP frame,
an skb, or a raw/tracing context, run `repeat` times on a loaded program, with the kernel's
data_out / ctx_out conventions. `ebpfjit.api.loader.ObjectProgram.test_run` is the user face.

Imports: ebpfjit._rt, ebpfjit.errors, ebpfjit.runtime.env
"""
from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from typing import Any

from .._rt import ffi, lib
from ..errors import EbpfError
from . import env as runtime

XDP_MD_SIZE = 24
SKB_UAPI_SIZE = 192
ETH_HLEN = 14


def buffer_address(obj) -> tuple[int, int, bool, Any]:
    """(address, length, writable, keepalive) of a bytes-like, ctypes or cffi object."""
    if isinstance(obj, ffi.CData):
        t = ffi.typeof(obj)
        if t.kind == "pointer":
            return int(ffi.cast("uintptr_t", obj)), ffi.sizeof(t.item), True, obj
        return int(ffi.cast("uintptr_t", ffi.addressof(obj))), ffi.sizeof(obj), True, obj
    if isinstance(obj, (ctypes.Structure, ctypes.Union, ctypes.Array)):
        return ctypes.addressof(obj), ctypes.sizeof(obj), True, obj
    if isinstance(obj, bytes):
        buf = ffi.new("char[]", obj) if obj else ffi.new("char[]", 1)
        return int(ffi.cast("uintptr_t", buf)), len(obj), False, buf
    try:
        buf = ffi.from_buffer(obj, require_writable=True)
        return int(ffi.cast("uintptr_t", buf)), len(buf), True, buf
    except (TypeError, BufferError):
        data = bytes(memoryview(obj))
        buf = ffi.new("char[]", data or b"\0")
        return int(ffi.cast("uintptr_t", buf)), len(data), False, buf


def xdp_run(loaded, engine_code: int, budget: int | None, data: bytes, repeat: int, ctx_in,
            fail: Callable[[int], None]) -> tuple[int, bytes, float, bytes | None]:
    """(retval, data_out, ns, ctx_out) of an XDP test run; `fail(budget)` raises on a fault."""
    # One model per call: threads may test-run the same program at once.
    x = ffi.new("struct ebpfjit_xdp *")
    md = ffi.NULL
    if ctx_in is not None:
        md = ffi.new("struct ebpfjit_xdp_md *")
        ffi.memmove(md, ctx_in_bytes(ctx_in, XDP_MD_SIZE, "struct xdp_md"), XDP_MD_SIZE)
    rc = lib.ebpfjit_xdp_init(x, data, len(data), md)
    if rc == -7:
        raise EbpfError(f"XDP packet of {len(data)} bytes needs fragments (more than "
                        f"{lib.EBPFJIT_XDP_MAX_DATA} bytes): not supported")
    if rc:
        raise EbpfError(f"XDP test run refused the input (errno {-rc}, EINVAL as the "
                        f"kernel's bpf_prog_test_run_xdp): packet {len(data)} bytes, "
                        f"ctx_in {bytes(ctx_in or b'').hex() or 'none'}")
    budget = runtime.DEFAULT_BUDGET if budget is None else budget
    retval = ffi.new("uint32_t *")
    ns = ffi.new("double *")
    status = lib.ebpfjit_xdp_run(loaded.ptr, engine_code, budget, x, max(1, repeat), retval, ns)
    if status:
        fail(budget)
    out = ffi.buffer(x.frame)[x.meta:x.end]
    ctx_out = None
    if ctx_in is not None:
        ctx_out = _xdp_md_out(x, md)
    return retval[0], bytes(out), ns[0], ctx_out


def skb_run(loaded, engine_code: int, budget: int | None, data: bytes, repeat: int, ctx_in,
            is_l2: int, fail: Callable[[int], None]) -> tuple[int, bytes, float, bytes | None]:
    """(retval, data_out, ns, ctx_out) of an skb test run (`is_l2`: tc sees the Ethernet
    header; socket filters and cgroup_skb start at the network header)."""
    s = ffi.new("struct ebpfjit_skb *")
    cin = ffi.NULL
    if ctx_in is not None:
        cin = ffi.new("uint8_t[]", ctx_in_bytes(ctx_in, SKB_UAPI_SIZE, "struct __sk_buff"))
    rc = lib.ebpfjit_skb_init(s, data, len(data), is_l2, cin)
    if rc:
        raise EbpfError(f"skb test run refused the input (errno {-rc}, as the kernel's "
                        f"bpf_prog_test_run_skb): packet {len(data)} bytes")
    budget = runtime.DEFAULT_BUDGET if budget is None else budget
    retval = ffi.new("uint32_t *")
    ns = ffi.new("double *")
    status = lib.ebpfjit_skb_run(loaded.ptr, engine_code, budget, s, max(1, repeat), retval, ns)
    if status:
        fail(budget)
    out = bytes(ffi.buffer(s.buf)[s.data:s.data + s.len])
    if not s.is_l2:
        # The kernel pushes the pulled Ethernet header back as zeroes.
        out = bytes(ETH_HLEN) + out
    ctx_out = None
    if ctx_in is not None:
        ctx_out = _skb_ctx_out(bytes(ctx_in)[:SKB_UAPI_SIZE].ljust(SKB_UAPI_SIZE, b"\0"),
                               bytes(ffi.buffer(s.shadow, SKB_UAPI_SIZE)))
    return retval[0], out, ns[0], ctx_out


def ctx_run(loaded, engine_code: int, budget: int | None, ctx, repeat: int,
            fail: Callable[[int], None]) -> tuple[int, float]:
    """(r0, ns) of a run on a raw context: bytes-like, or a tracing context (a list of u64
    arguments, buffers passed by address and registered as regions)."""
    keep = []
    extra = []
    if isinstance(ctx, (list, tuple)):
        # A tracing context: u64 arguments; buffers are passed by address and registered.
        words = []
        for a in ctx:
            if isinstance(a, int):
                words.append(a & (1 << 64) - 1)
                continue
            addr, n, writable, k = buffer_address(a)
            keep.append(k)
            extra.append((addr, n, 1 if writable else 0))
            words.append(addr)
        args = ffi.new("uint64_t[]", words or [0])
        keep.append(args)
        caddr, clen, cw = int(ffi.cast("uintptr_t", args)), 8 * len(words), False
    elif ctx is None or (isinstance(ctx, (bytes, bytearray)) and not ctx):
        caddr, clen, cw = 0, 0, False
    else:
        caddr, clen, cw, k = buffer_address(ctx)
        keep.append(k)
    if len(extra) > 7:
        raise EbpfError("at most 7 pointer arguments can be passed to a program")
    regions = ffi.new("struct ebpfjit_region[]", max(1, len(extra)))
    for i, (a, n, w) in enumerate(extra):
        regions[i].base, regions[i].len, regions[i].writable = a, n, w
    budget = runtime.DEFAULT_BUDGET if budget is None else budget
    ns = ffi.new("double *")
    status = lib.ebpfjit_ctx_run(loaded.ptr, engine_code, budget,
                                 caddr, clen, 1 if cw else 0, caddr, clen, 1 if cw else 0,
                                 regions, len(extra), max(1, repeat), ns)
    st = runtime.thread_state()     # the state the run used (see ObjectProgram._fail)
    if status:
        fail(budget)
    return int(st.r0), ns[0]


def ctx_in_bytes(ctx_in, size: int, struct_name: str) -> bytes:
    """ctx_in as exactly `size` bytes: shorter is zero-padded; longer is refused unless the
    excess is zero, as the kernel's test_run (bpf_ctx_init) does."""
    raw = bytes(ctx_in).ljust(size, b"\0")
    if any(raw[size:]):
        raise EbpfError(f"ctx_in: bytes beyond {struct_name} must be zero (EINVAL)")
    return raw[:size]


def _xdp_md_out(x, md) -> bytes:
    ingress = int(md.ingress_ifindex)
    queue = int(md.rx_queue_index)
    return struct.pack("<6I", x.data - x.meta, x.end - x.meta, 0, ingress, queue, 0)


# convert_skb_to___skb: the fields a test run copies back (the rest is ctx_in unchanged).
_SKB_OUT_FIELDS = ((8, 4), (32, 4), (36, 4), (40, 4), (48, 20), (152, 8), (160, 4), (164, 4),
                   (184, 8))


def _skb_ctx_out(ctx_in: bytes, shadow: bytes) -> bytes:
    out = bytearray(ctx_in)
    for off, size in _SKB_OUT_FIELDS:
        out[off:off + size] = shadow[off:off + size]
    return bytes(out)
