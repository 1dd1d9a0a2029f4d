"""Builtin helpers and contexts: formatting, probe reads, XDP adjust limits measured against the
kernel (6.18: frame header 40 bytes, 3520-byte linear frame, metadata <= 252 bytes, 4-aligned)."""
from __future__ import annotations

import struct

import pytest
from test_objects import PACKETS, obj

from ebpfjit.runtime.helpers import format_printk

ENGINES = ("interp", "jit")


@pytest.mark.parametrize("fmt, args, text", [
    (b"x=%d", [-5 & 0xFFFFFFFF], "x=-5"),
    (b"%u %x %X", [7, 255, 255], "7 ff FF"),
    (b"%ld %lu", [-1 & (1 << 64) - 1, 3], "-1 3"),
    (b"%llx|%lld", [0x1122334455667788, 1 << 40], "1122334455667788|1099511627776"),
    (b"%5d|%-4u|%08x", [42, 7, 0xBEEF], "   42|7   |0000beef"),
    (b"%c%c", [ord("o"), ord("k")], "ok"),
    (b"100%%", [], "100%"),
    (b"%i", [2**32 - 1], "-1"),
    (b"%px", [0x1234], "0x0000000000001234"),
], ids=lambda v: v.decode() if isinstance(v, bytes) else None)
def test_format(fmt, args, text):
    assert format_printk(fmt, args) == text


@pytest.mark.parametrize("fmt, args", [
    (b"%d %d", [1]),        # more specifiers than arguments
    (b"%q", [1]),           # unknown conversion
    (b"%pI8", [1]),
    (b"%sx", [0]),          # %s must be followed by space/punctuation
    (b"\x01", []),          # unprintable
])
def test_format_rejects_like_the_kernel(fmt, args):
    with pytest.raises(ValueError):
        format_printk(fmt, args)


def test_string_arg_outside_known_memory_prints_empty():
    assert format_printk(b"[%s]", [0x1000]) == "[]"


@pytest.mark.parametrize("engine", ENGINES)
def test_xdp_test_run_repeat_and_duration(engine):
    p = obj("xdp_drop_ip").program()
    r = p.test_run(PACKETS["tcp443"], repeat=100, engine=engine)
    assert r.retval == 2 and r.data_out == PACKETS["tcp443"] and r.duration_ns > 0


@pytest.mark.parametrize("engine", ENGINES)
def test_xdp_ctx_meta(engine):
    p = obj("xdp_drop_ip").program()
    pkt = PACKETS["tcp443"]
    r = p.test_run(bytes(8) + pkt, engine=engine,
                   ctx_in=struct.pack("<6I", 8, 8 + len(pkt), 0, 0, 0, 0))
    assert r.data_out == bytes(8) + pkt
    assert struct.unpack("<6I", r.ctx_out) == (8, 8 + len(pkt), 0, 0, 0, 0)


@pytest.mark.parametrize("ctx", [
    struct.pack("<6I", 0, 10, 0, 0, 0, 0),      # data_end != size
    struct.pack("<6I", 2, 64, 0, 0, 0, 0),      # metadata not 4-aligned
    struct.pack("<6I", 0, 64, 4, 0, 0, 0),      # data_meta must be 0
    struct.pack("<6I", 0, 64, 0, 0, 1, 0),      # rx queue without a device
    struct.pack("<6I", 0, 64, 0, 0, 0, 3),      # egress_ifindex
])
def test_xdp_ctx_refused(ctx):
    import ebpfjit
    p = obj("xdp_drop_ip").program()
    with pytest.raises(ebpfjit.EbpfError, match="EINVAL"):
        p.test_run(bytes(64), engine="interp", ctx_in=ctx)


def test_bytearray_is_resized_in_place():
    p = obj("xdp_encap").program()
    pkt = bytearray(PACKETS["udp_dns"])
    p.run(pkt)
    assert len(pkt) == len(PACKETS["udp_dns"]) + 20


@pytest.mark.kernel
@pytest.mark.parametrize("helper, expected", [(113, -34), (115, -34), (112, -14), (114, -14)],
                         ids=["probe_read_kernel", "probe_read_kernel_str", "probe_read_user",
                              "probe_read_user_str"])
def test_probe_read_errno_matches_kernel(kernel, helper, expected):
    """An address the runtime does not know: the _kernel variants refuse a user-half address with
    -ERANGE before reading, the _user variants fault with -EFAULT, as in the kernel."""
    from ebpfjit import Program
    from ebpfjit.isa.asm import assemble
    from ebpfjit.objects.spec import ProgType
    code = assemble(f"mov %r1, %r10\nadd %r1, -8\nmov %r2, 8\nlddw %r3, 0x1000\ncall {helper}\nexit")
    want = kernel.KernelProgram(ProgType.XDP, code, "GPL").test_run(bytes(64)).retval
    assert want == expected & 0xFFFFFFFF
    for engine in ("interp", "jit"):
        assert Program.from_bytes(code, type="xdp").run(bytes(64), engine=engine) & 0xFFFFFFFF == want
