"""`Program.from_bytes(code, type=...)`: raw bytecode run as the kernel runs that program type."""
from __future__ import annotations

import pytest
from test_objects import PACKETS

from ebpfjit import Program
from ebpfjit.errors import EbpfError, ExecutionError, VerifierError
from ebpfjit.isa.asm import assemble
from ebpfjit.objects.spec import ProgType

# XDP: drop IPv4 TCP, pass the rest (ctx->data / ctx->data_end as the kernel's programs use them).
XDP = """
    ldxw %r2, [%r1+0]
    ldxw %r3, [%r1+4]
    mov %r4, %r2
    add %r4, 34
    jgt %r4, %r3, pass
    ldxh %r5, [%r2+12]
    jne %r5, 0x0008, pass
    ldxb %r5, [%r2+23]
    jne %r5, 6, pass
    mov %r0, 1
    exit
pass:
    mov %r0, 2
    exit
"""
# Socket filter: keep skb->len bytes of IPv4, drop the rest (LD_ABS on the network header; the
# kernel wants the skb in r6 for legacy loads).
SOCKET = """
    mov %r6, %r1
    ldxw %r7, [%r6+0]
    ldabsb 0
    rsh %r0, 4
    jne %r0, 4, drop
    mov %r0, %r7
    exit
drop:
    mov %r0, 0
    exit
"""
CASES = [("xdp", ProgType.XDP, XDP), ("socket_filter", ProgType.SOCKET_FILTER, SOCKET)]


@pytest.mark.parametrize("engine", ("interp", "jit"))
@pytest.mark.parametrize("type_name, prog_type, text", CASES, ids=[c[0] for c in CASES])
def test_typed_raw_programs_match_the_kernel(kernel, engine, type_name, prog_type, text):
    code = assemble(text)
    kprog = kernel.KernelProgram(prog_type, code, "GPL")
    prog = Program.from_bytes(code, type=type_name)
    for name, pkt in PACKETS.items():
        k = kprog.test_run(pkt)
        retval, data_out, _ = prog.test_run(pkt, engine=engine)
        assert (retval, data_out) == (k.retval, bytes(k.data_out)), name
        assert prog.run(pkt, engine=engine) == k.retval


def test_verdicts_without_the_kernel():
    prog = Program.from_asm(XDP, type="xdp")
    assert prog.run(PACKETS["tcp443"]) == 1
    assert prog.run(PACKETS["udp_dns"], engine="jit") == 2
    assert prog.run(PACKETS["short"]) == 2


def test_context_rules_apply_at_load():
    with pytest.raises(VerifierError, match="read-only"):
        Program.from_asm("stw [%r1+0], 1\nexit", type="xdp")
    with pytest.raises(EbpfError, match="env"):
        Program.from_bytes(assemble("mov %r0, 0\nexit"), type="xdp", env=object())


# After a Python helper (bpf_ktime_get_ns overridden) that runs another program, reads its
# context again: the nested run must use a state of its own, not this run's context, memory
# regions and budget.
NESTED_PACKET = """
    mov %r6, %r1
    call 5
    mov %r7, %r0
    ldxw %r2, [%r6+{data}]
    ldxw %r3, [%r6+{end}]
    mov %r4, %r2
    add %r4, 1
    jgt %r4, %r3, short
    ldxb %r0, [%r2+0]
    add %r0, %r7
    exit
short:
    mov %r0, 0
    exit
"""
NESTED_CTX = "mov %r6, %r1\ncall 5\nldxb %r1, [%r6+0]\nadd %r0, %r1\nexit"


@pytest.mark.parametrize("engine", ("interp", "jit"))
@pytest.mark.parametrize("type_name, text", [
    ("xdp", NESTED_PACKET.format(data=0, end=4)),           # struct xdp_md: data, data_end
    ("tc", NESTED_PACKET.format(data=76, end=80)),          # struct __sk_buff: data, data_end
    ("kprobe", NESTED_CTX),                                 # the context is a user buffer
], ids=("xdp", "tc", "kprobe"))
def test_nested_run_from_a_python_helper_during_a_test_run(engine, type_name, text):
    inner = Program.from_asm("ldxb %r0, [%r1+1]\nexit")
    outer = Program.from_asm(text, type=type_name)
    outer.register_helper(5, lambda *args: inner.run(b"\x05\x07", engine=engine))
    packet = bytes([40]) + bytes(63)
    assert outer.test_run(packet, engine=engine, repeat=3).retval == 47
    assert outer.run(packet, engine=engine) == 47
    if type_name != "kprobe":
        assert outer.run_batch([packet, packet], engine=engine) == [47, 47]


@pytest.mark.parametrize("type_name", ("xdp", "tc", "kprobe"))
def test_test_runs_nested_too_deep_raise(type_name):
    prog = Program.from_asm("call 5\nexit", type=type_name)
    depth = []

    def recurse(*args):
        depth.append(1)
        return prog.test_run(bytes(64)).retval

    prog.register_helper(5, recurse)
    with pytest.raises(ExecutionError) as info:
        prog.test_run(bytes(64), engine="interp")
    assert "nested more than 16 deep" in str(info.value.__cause__ or info.value)
    assert len(depth) == 16
