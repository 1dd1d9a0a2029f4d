"""`Program.from_bytes(code, type=...)`: raw bytecode run as the kernel runs that program type."""
from __future__ import annotations

import pytest
from test_objects import PACKETS

from ebpfjit import Program
from ebpfjit.asm import assemble
from ebpfjit.errors import EbpfError, VerifierError
from ebpfjit.spec import ProgType

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
