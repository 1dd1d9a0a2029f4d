"""Context-access conversion (the kernel's convert_ctx_accesses) on assembly and real objects."""
from __future__ import annotations

import pytest
from conftest import PROGS_DIR

from ebpfjit.errors import VerifierError
from ebpfjit.isa.asm import assemble_insns
from ebpfjit.isa.insn import iter_pcs
from ebpfjit.objects.ctx_layout import (
    SK_BUFF_SOCKET_FILTER,
    SK_BUFF_TC,
    XDP_MD,
    find_context_accesses,
    rewrite_context_accesses,
)


def _rewrite(text, layout=XDP_MD):
    insns = assemble_insns(text)
    return insns, rewrite_context_accesses(insns, layout)


@pytest.mark.parametrize("text, pc, opcode, off", [
    # data / data_end / data_meta become 64-bit loads of the shadow pointer slots.
    ("ldxw %r2, [%r1]\nexit", 0, 0x79, 24),
    ("ldxw %r3, [%r1+4]\nexit", 0, 0x79, 32),
    ("ldxw %r3, [%r1+8]\nexit", 0, 0x79, 40),
    # Integer fields keep their uapi offset.
    ("ldxw %r3, [%r1+12]\nexit", 0, 0x61, 12),
    # Copies, ctx+const and spills/fills are followed.
    ("mov %r6, %r1\nldxw %r3, [%r6+4]\nexit", 1, 0x79, 32),
    ("add %r1, 4\nldxw %r3, [%r1]\nexit", 1, 0x79, 28),
    ("stxdw [%r10-8], %r1\nmov %r1, 0\nldxdw %r7, [%r10-8]\nldxw %r2, [%r7]\nexit", 3, 0x79, 24),
])
def test_xdp_conversion(text, pc, opcode, off):
    _, out = _rewrite(text)
    rewritten = dict(iter_pcs(out))[pc]
    assert (rewritten.opcode, rewritten.off) == (opcode, off)


def test_context_passed_to_subprogram_is_followed():
    text = """
        call local sub
        exit
    sub:
        ldxw %r0, [%r1+4]
        exit
    """
    _, out = _rewrite(text)
    assert dict(iter_pcs(out))[2].opcode == 0x79


def test_non_context_accesses_are_untouched():
    text = "mov %r1, %r10\nldxw %r0, [%r1-4]\nexit"
    insns, out = _rewrite(text)
    assert out == insns
    assert find_context_accesses(insns) == {}


@pytest.mark.parametrize("text, layout, message", [
    ("stw [%r1], 0\nexit", XDP_MD, "read-only"),
    ("ldxw %r0, [%r1+24]\nexit", XDP_MD, "invalid context access"),
    ("ldxh %r0, [%r1]\nexit", XDP_MD, "only 32-bit loads"),
    ("ldxw %r0, [%r1+76]\nexit", SK_BUFF_SOCKET_FILTER, "invalid context access"),
    ("stw [%r1+8], 1\nexit", SK_BUFF_SOCKET_FILTER, "read-only"),
    ("ldxw %r0, [%r1+160]\nexit", SK_BUFF_SOCKET_FILTER, "invalid context access"),
    ("jeq %r2, 0, +1\nmov %r1, %r10\nldxw %r0, [%r1-4]\nexit", XDP_MD, "on some paths only"),
])
def test_invalid_context_accesses_name_the_pc(text, layout, message):
    with pytest.raises(VerifierError, match=message) as info:
        _rewrite(text, layout)
    assert info.value.pc is not None


def test_tc_may_write_mark_and_cb():
    _, out = _rewrite("stw [%r1+8], 1\nstw [%r1+48], 2\nldxw %r2, [%r1+76]\nexit", SK_BUFF_TC)
    assert dict(iter_pcs(out))[2].off == 192


def test_real_objects_convert():
    from ebpfjit.isa.insn import decode
    from ebpfjit.objects.elf import load_spec
    from ebpfjit.objects.spec import ProgType
    layouts = {ProgType.XDP: XDP_MD, ProgType.SCHED_CLS: SK_BUFF_TC,
               ProgType.SOCKET_FILTER: SK_BUFF_SOCKET_FILTER}
    converted = 0
    for path in sorted(PROGS_DIR.glob("*.o")):
        for prog in load_spec(str(path)).programs.values():
            if prog.type in layouts:
                insns = decode(prog.code)
                out = rewrite_context_accesses(insns, layouts[prog.type])
                converted += sum(a != b for a, b in zip(insns, out))
    assert converted >= 20
