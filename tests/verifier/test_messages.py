"""Unsafe programs rejected with the kernel's words: one assembly case per error message, each
also loaded into the running kernel (where bpf() works) to check that it rejects the program and
that its log holds the same error line. Safe near-misses are accepted by both.
"""
from __future__ import annotations

import dataclasses

import pytest

from ebpfjit.errors import KernelError, VerifierError
from ebpfjit.isa.asm import assemble_insns
from ebpfjit.isa.insn import encode
from ebpfjit.objects.spec import PSEUDO_MAP_FD, MapSpec, MapType, ProgType
from ebpfjit.verifier import verify

ARRAY = MapSpec("m", MapType.ARRAY, 4, 8, 1)
HASH = MapSpec("h", MapType.HASH, 4, 8, 1)
RINGBUF = MapSpec("rb", MapType.RINGBUF, 0, 0, 4096)

LOOKUP = """
    stw [%r10-4], 0
    mov %r2, %r10
    add %r2, -4
    lddw %r1, 0
    call 1
"""
RESERVE = """
    lddw %r1, 0
    mov %r2, 16
    mov %r3, 0
    call 131
"""


@dataclasses.dataclass
class Case:
    name: str
    text: str
    error: str | None            # None: accepted
    prog_type: ProgType = ProgType.XDP
    maps: tuple = ()
    kernel: bool = True          # compare with the kernel (False: it needs BTF we do not give)


CASES = [
    Case("no_data_end_check", "ldxw %r2, [%r1+0]\nldxb %r0, [%r2+14]\nexit",
         "invalid access to packet, off=14 size=1, R2(id=0,off=14,r=0)\n"
         "R2 offset is outside of the packet"),
    Case("data_end_checked", """
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        mov %r4, %r2
        add %r4, 15
        mov %r0, 1
        jgt %r4, %r3, +1
        ldxb %r0, [%r2+14]
        exit""", None),
    Case("data_end_off_by_one", """
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        mov %r4, %r2
        add %r4, 14
        mov %r0, 1
        jgt %r4, %r3, +1
        ldxb %r0, [%r2+14]
        exit""", "invalid access to packet, off=14 size=1, R2(id=0,off=14,r=14)\n"
         "R2 offset is outside of the packet"),
    Case("uninit_r0", "exit", "R0 !read_ok"),
    Case("uninit_r2", "mov %r0, %r2\nexit", "R2 !read_ok"),
    Case("scalar_deref", "mov %r1, 0\nldxb %r0, [%r1+0]\nexit", "R1 invalid mem access 'scalar'"),
    Case("pkt_end_deref", "ldxw %r2, [%r1+4]\nldxb %r0, [%r2+0]\nexit",
         "R2 invalid mem access 'pkt_end'"),
    Case("null_map_value", LOOKUP + "ldxdw %r0, [%r0+0]\nexit",
         "R0 invalid mem access 'map_value_or_null'", maps=(HASH,)),
    # An array lookup with a constant key below max_entries cannot fail (kernel >= 6.13).
    Case("array_const_key_not_null", LOOKUP + "ldxdw %r0, [%r0+0]\nexit", None, maps=(ARRAY,)),
    Case("array_key_out_of_range", LOOKUP.replace("stw [%r10-4], 0", "stw [%r10-4], 1")
         + "ldxdw %r0, [%r0+0]\nexit", "R0 invalid mem access 'map_value_or_null'",
         maps=(ARRAY,)),
    Case("null_checked", LOOKUP + "jeq %r0, 0, +1\nldxdw %r0, [%r0+0]\nmov %r0, 0\nexit", None,
         maps=(ARRAY,)),
    Case("map_value_overrun", LOOKUP + "jeq %r0, 0, +1\nldxdw %r0, [%r0+4]\nmov %r0, 0\nexit",
         "invalid access to map value, value_size=8 off=4 size=8", maps=(ARRAY,)),
    Case("map_value_unbounded_index", LOOKUP + """
        jeq %r0, 0, +3
        ldxdw %r1, [%r0+0]
        add %r0, %r1
        ldxb %r0, [%r0+0]
        mov %r0, 0
        exit""", "math between map_value pointer and register with unbounded min value is not "
         "allowed", maps=(ARRAY,)),
    Case("map_value_bounded_index", LOOKUP + """
        jeq %r0, 0, +4
        ldxdw %r1, [%r0+0]
        and %r1, 7
        add %r0, %r1
        ldxb %r0, [%r0+0]
        mov %r0, 0
        exit""", None, maps=(ARRAY,)),
    Case("map_value_signed_check_only", LOOKUP + """
        jeq %r0, 0, +5
        ldxdw %r1, [%r0+0]
        jsgt %r1, 7, +3
        add %r0, %r1
        ldxb %r0, [%r0+0]
        mov %r0, 0
        mov %r0, 0
        exit""", "math between map_value pointer and register with unbounded min value is not "
         "allowed", maps=(ARRAY,)),
    Case("map_value_u32_truncated_index", LOOKUP + """
        jeq %r0, 0, +5
        ldxdw %r1, [%r0+0]
        jgt %r1, 7, +3
        add %r0, %r1
        ldxb %r0, [%r0+0]
        mov %r0, 0
        mov %r0, 0
        exit""", None, maps=(ARRAY,)),
    Case("spilled_pointer_partly_overwritten", """
        stxdw [%r10-8], %r1
        stb [%r10-8], 0
        ldxdw %r1, [%r10-8]
        ldxw %r0, [%r1+0]
        exit""", "R1 invalid mem access 'scalar'"),
    Case("spilled_pointer_filled", """
        stxdw [%r10-8], %r1
        ldxdw %r1, [%r10-8]
        ldxw %r0, [%r1+12]
        exit""", None),
    # Privileged mode, as the kernel for root: uninitialised stack reads as an unknown scalar
    # (run-time memory safety does not depend on it), directly and through a helper's key.
    Case("uninit_stack_read", "ldxdw %r0, [%r10-8]\nexit", None),
    Case("uninit_stack_key", "mov %r2, %r10\nadd %r2, -4\nlddw %r1, 0\ncall 1\nmov %r0, 0\n"
         "exit", None, maps=(HASH,)),
    Case("stack_below_frame", "mov %r0, 0\nstdw [%r10-520], 1\nexit",
         "invalid write to stack R10 off=-520 size=8"),
    Case("stack_above_fp", "mov %r0, 0\nstdw [%r10+8], 1\nexit",
         "invalid write to stack R10 off=8 size=8"),
    Case("write_r10", "mov %r10, 0\nmov %r0, 0\nexit", "frame pointer is read only"),
    Case("ctx_bad_offset", "ldxw %r0, [%r1+100]\nexit", "invalid bpf_context access off=100 size=4"),
    Case("ctx_write_readonly", "stw [%r1+0], 1\nmov %r0, 0\nexit",
         "invalid bpf_context access off=0 size=4"),
    Case("ptr_alu32", "add32 %r1, 1\nmov %r0, 0\nexit", "R1 32-bit pointer arithmetic prohibited"),
    Case("ptr_mul", "mul %r1, 2\nmov %r0, 0\nexit",
         "R1 pointer arithmetic with *= operator prohibited"),
    Case("unknown_helper", "call 9999\nexit", "invalid func unknown#9999"),
    Case("helper_not_for_type", "call 26\nexit",
         "program of this type cannot use helper bpf_skb_load_bytes#26"),
    Case("jump_out_of_range", "ja +5\nexit", "jump out of range from insn 0 to 6"),
    Case("no_exit", "mov %r0, 0", "last insn is not an exit or jmp"),
    Case("ringbuf_leak", RESERVE + "jeq %r0, 0, +0\nmov %r0, 0\nexit",
         "Unreleased reference id=2 alloc_insn=4\n"
         "BPF_EXIT instruction in main prog would lead to reference leak", maps=(RINGBUF,)),
    Case("ringbuf_submitted", RESERVE + """
        jeq %r0, 0, +3
        mov %r1, %r0
        mov %r2, 0
        call 132
        mov %r0, 0
        exit""", None, maps=(RINGBUF,)),
    Case("ringbuf_double_submit", RESERVE + """
        jeq %r0, 0, +6
        mov %r6, %r0
        mov %r1, %r6
        mov %r2, 0
        call 132
        mov %r1, %r6
        call 132
        mov %r0, 0
        exit""", "R1 type=scalar expected=ringbuf_mem", maps=(RINGBUF,)),
    Case("ringbuf_use_after_submit", RESERVE + """
        jeq %r0, 0, +6
        mov %r6, %r0
        mov %r1, %r6
        mov %r2, 0
        call 132
        stdw [%r6+0], 1
        mov %r0, 0
        exit""", "R6 invalid mem access 'scalar'", maps=(RINGBUF,)),
    Case("ringbuf_overrun", RESERVE + """
        jeq %r0, 0, +5
        stdw [%r0+12], 1
        mov %r1, %r0
        mov %r2, 0
        call 132
        mov %r0, 0
        exit""", "invalid access to memory, mem_size=16 off=12 size=8", maps=(RINGBUF,)),
    Case("infinite_loop", "mov %r0, 0\njeq %r0, 0, +1\nexit\nja -1",
         "infinite loop detected at insn 3"),
    Case("bounded_loop", """
        mov %r0, 0
        mov %r1, 0
        add %r1, 1
        add %r0, 2
        jlt %r1, 10, -3
        exit""", None),
    Case("stale_pkt_after_adjust_head", """
        mov %r6, %r1
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        mov %r4, %r2
        add %r4, 8
        jgt %r4, %r3, +6
        mov %r7, %r2
        mov %r1, %r6
        mov %r2, 4
        call 44
        ldxb %r0, [%r7+0]
        exit
        mov %r0, 0
        exit""", "R7 invalid mem access 'scalar'"),
    Case("skb_ldabs_in_xdp", "mov %r6, %r1\nldabsb 12\nexit",
         "BPF_LD_[ABS|IND] instructions not allowed for this program type"),
    Case("skb_ldabs", "mov %r6, %r1\nldabsb 12\nexit", None, prog_type=ProgType.SOCKET_FILTER),
    Case("callback_bad_return", """
        mov %r1, 4
        lddw %r2, 0
        mov %r3, 0
        mov %r4, 0
        call 181
        mov %r0, 0
        exit
        mov %r0, 2
        exit""", "At callback return the register R0 has smin=2 smax=2 should have been in "
         "[0, 1]", kernel=False),
]


def _code(case: Case) -> bytes:
    insns = assemble_insns(case.text)
    out = []
    for pc_ins in insns:
        ins = pc_ins
        if ins.kind.name == "LDDW" and case.maps:
            ins = dataclasses.replace(ins, src=PSEUDO_MAP_FD)
        elif ins.kind.name == "LDDW" and case.name.startswith("callback"):
            ins = dataclasses.replace(ins, src=4, imm=6)   # lddw r2, func (the callback at pc 8)
        out.append(ins)
    return encode(out)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_verdict_and_message(case):
    code = _code(case)
    if case.error is None:
        verify(code, case.prog_type, maps=case.maps)
        return
    with pytest.raises(VerifierError) as info:
        verify(code, case.prog_type, maps=case.maps)
    first = case.error.split("\n")
    log = info.value.log.splitlines()
    assert info.value.reason == case.error
    for line in first:
        assert line in log, info.value.log


@pytest.mark.kernel
@pytest.mark.parametrize("case", [c for c in CASES if c.kernel], ids=lambda c: c.name)
def test_kernel_agrees(kernel, case):
    code = _code(case)
    kmaps = [kernel.KernelMap(m) for m in case.maps]
    try:
        try:
            kernel.KernelProgram(case.prog_type, code, map_fds=kmaps, log_level=1).close()
        except KernelError as exc:
            assert case.error is not None, f"the kernel rejects it:\n{exc.log}"
            klog = exc.log.splitlines()
            for line in case.error.split("\n"):
                assert line in klog, exc.log
            return
        assert case.error is None, "the kernel accepts it"
    finally:
        for m in kmaps:
            m.close()


def test_processed_instruction_limit():
    # The kernel's limit and wording; the default limit is 1,000,000 (lowered here for time).
    code = _code(Case("long_loop", """
        mov %r0, 0
        mov %r1, 0
        add %r1, 1
        jlt %r1, 2000000, -2
        exit""", None))
    with pytest.raises(VerifierError) as info:
        verify(code, ProgType.XDP, insn_limit=3000)
    assert info.value.reason == "BPF program is too large. Processed 3001 insn"
    assert info.value.log.splitlines()[-1].startswith("processed 3001 insns (limit 3000) ")
    # A loop that ends within the limit is simulated to its end.
    verify(_code(Case("loop", "mov %r0, 0\nmov %r1, 0\nadd %r1, 1\njlt %r1, 900, -2\nexit",
                      None)), ProgType.XDP, insn_limit=3000)


def _falls_into_subprog() -> bytes:
    # pc 0 calls the function at pc 2; pc 1 falls through into it instead of exiting.
    insns = assemble_insns("call 1\nmov %r0, 0\nmov %r0, 1\nexit")
    insns[0] = dataclasses.replace(insns[0], src=1, imm=1)
    return encode(insns)


def test_function_falling_into_the_next_is_rejected():
    with pytest.raises(VerifierError) as info:
        verify(_falls_into_subprog(), ProgType.XDP)
    assert info.value.reason == "last insn is not an exit or jmp"


@pytest.mark.kernel
def test_function_falling_into_the_next_kernel(kernel):
    with pytest.raises(KernelError) as info:
        kernel.KernelProgram(ProgType.XDP, _falls_into_subprog(), log_level=1)
    assert "last insn is not an exit or jmp" in info.value.log.splitlines()
