"""The C runtime and interpreter (csrc/runtime.c, csrc/interp.c) through ebpfjit.runtime.

Table-driven: one row per semantic rule of RFC 9669 / the kernel, faults with their exact kind,
pc and message, helpers (C, cffi, Python), and a fuzz loop that must never crash the process.
"""
from __future__ import annotations

import random
import struct
import threading

import pytest

from ebpfjit.errors import DecodeError, EbpfError, ExecutionError
from ebpfjit.isa import insn as _insn
from ebpfjit.isa.asm import assemble
from ebpfjit.isa.disasm import format_insn
from ebpfjit.isa.insn import Instruction as I
from ebpfjit.isa.opcodes import OPCODES, Kind

runtime = pytest.importorskip("ebpfjit.runtime")
Env, LoadedProgram, ffi, lib = runtime.Env, runtime.LoadedProgram, runtime.ffi, runtime.lib

U64 = (1 << 64) - 1


def identity(r1, r2, r3, r4, r5):
    return r1


def load(text_or_code, env=None) -> LoadedProgram:
    code = assemble(text_or_code) if isinstance(text_or_code, str) else text_or_code
    if env is None:
        env = Env()
        env.register_helper(5, identity)
    return LoadedProgram(code, env)


def run(text_or_code, mem=b"", env=None, **kw) -> int:
    return load(text_or_code, env).run(mem, **kw)


def fault(text_or_code, mem=b"", env=None, **kw) -> ExecutionError:
    with pytest.raises(ExecutionError) as info:
        run(text_or_code, mem, env, **kw)
    return info.value


# --- ALU -------------------------------------------------------------------------------------

ALU_CASES = [
    # division by zero gives 0 (32/64, imm/reg)
    ("div32 by zero reg", "mov %r0, 7\nmov %r1, 0\ndiv32 %r0, %r1\nexit", 0),
    ("div32 by zero imm", "mov %r0, 7\ndiv32 %r0, 0\nexit", 0),
    ("div64 by zero reg", "mov %r0, 7\nmov %r1, 0\ndiv %r0, %r1\nexit", 0),
    ("div64 by zero imm", "mov %r0, 7\ndiv %r0, 0\nexit", 0),
    # modulo by zero leaves dst; 32-bit keeps only the low half
    ("mod64 by zero", "lddw %r0, 0x100000005\nmov %r1, 0\nmod %r0, %r1\nexit", 0x100000005),
    ("mod32 by zero", "lddw %r0, 0x100000005\nmov %r1, 0\nmod32 %r0, %r1\nexit", 5),
    ("mod32 by zero imm", "lddw %r0, 0x100000005\nmod32 %r0, 0\nexit", 5),
    ("div32 uses low halves", "lddw %r0, 0x100000010\nlddw %r1, 0x100000004\ndiv32 %r0, %r1\nexit", 4),
    ("div64 imm sign-extended", "mov %r0, -1\ndiv %r0, -1\nexit", 1),
    # signed division: INT_MIN / -1 = INT_MIN, INT_MIN % -1 = 0, by zero 0 / dst
    ("sdiv64 intmin/-1", "lddw %r0, 0x8000000000000000\nsdiv %r0, -1\nexit", 1 << 63),
    ("sdiv64 intmin/-1 reg", "lddw %r0, 0x8000000000000000\nmov %r1, -1\nsdiv %r0, %r1\nexit", 1 << 63),
    ("smod64 intmin%-1", "lddw %r0, 0x8000000000000000\nsmod %r0, -1\nexit", 0),
    ("sdiv32 intmin/-1", "mov32 %r0, 0x80000000\nsdiv32 %r0, -1\nexit", 0x80000000),
    ("smod32 intmin%-1", "mov32 %r0, 0x80000000\nmov %r1, -1\nsmod32 %r0, %r1\nexit", 0),
    ("sdiv64 by zero", "mov %r0, -7\nsdiv %r0, 0\nexit", 0),
    ("sdiv32 by zero", "mov %r0, -7\nmov %r1, 0\nsdiv32 %r0, %r1\nexit", 0),
    ("smod64 by zero", "mov %r0, -7\nsmod %r0, 0\nexit", U64 - 6),
    ("smod32 by zero", "lddw %r0, 0xffffffff80000001\nsmod32 %r0, 0\nexit", 0x80000001),
    ("sdiv64 neg", "mov %r0, -7\nsdiv %r0, 2\nexit", U64 - 2),
    ("smod64 neg dividend", "mov %r0, -7\nsmod %r0, 2\nexit", U64),
    ("smod64 neg divisor", "mov %r0, 7\nsmod %r0, -2\nexit", 1),
    ("sdiv32 neg", "mov32 %r0, -7\nsdiv32 %r0, 2\nexit", 0xFFFFFFFD),
    ("smod32 neg", "mov32 %r0, -7\nsmod32 %r0, 2\nexit", 0xFFFFFFFF),
    # shifts are masked to 5 / 6 bits
    ("lsh32 imm 60", "mov %r0, 1\nlsh32 %r0, 60\nexit", 1 << 28),
    ("lsh32 imm -4", "mov %r0, 1\nlsh32 %r0, -4\nexit", 1 << 28),
    ("lsh64 reg 65", "mov %r0, 1\nmov %r1, 65\nlsh %r0, %r1\nexit", 2),
    ("rsh32 reg 33", "mov32 %r0, 0x80000000\nmov %r1, 33\nrsh32 %r0, %r1\nexit", 0x40000000),
    ("rsh64 imm 68", "lddw %r0, 0x8000000000000000\nrsh %r0, 68\nexit", 1 << 59),
    ("arsh32", "mov32 %r0, 0x80000000\narsh32 %r0, 4\nexit", 0xF8000000),
    ("arsh32 reg 36", "mov32 %r0, 0x80000000\nmov %r1, 36\narsh32 %r0, %r1\nexit", 0xF8000000),
    ("arsh64", "lddw %r0, 0x8000000000000000\narsh %r0, 63\nexit", U64),
    ("arsh64 reg 127", "lddw %r0, 0x8000000000000000\nmov %r1, 127\narsh %r0, %r1\nexit", U64),
    # 32-bit results zero-extended, 64-bit immediates sign-extended
    ("add32 wraps", "mov %r0, -1\nadd32 %r0, 1\nexit", 0),
    ("add32 zero-extends", "mov %r0, -1\nadd32 %r0, 0\nexit", 0xFFFFFFFF),
    ("mov32 imm", "mov32 %r0, -1\nexit", 0xFFFFFFFF),
    ("mov32 reg", "mov %r1, -1\nmov32 %r0, %r1\nexit", 0xFFFFFFFF),
    ("add64 imm sign-extends", "mov %r0, 0\nadd %r0, -1\nexit", U64),
    ("and64 imm sign-extends", "mov %r0, -1\nand %r0, 0xffff0000\nexit", 0xFFFFFFFFFFFF0000),
    ("mul32", "mov32 %r0, 0x10000\nmul32 %r0, 0x10001\nexit", 0x10000),
    ("mul64", "lddw %r0, 0x100000001\nmul %r0, -1\nexit", (-0x100000001) & U64),
    ("sub32", "mov %r0, 0\nsub32 %r0, 1\nexit", 0xFFFFFFFF),
    ("xor/or", "mov %r0, 0xf0\nxor %r0, 0xff\nor %r0, 0x100\nexit", 0x10F),
    ("neg32", "mov %r0, 1\nneg32 %r0\nexit", 0xFFFFFFFF),
    ("neg64", "mov %r0, 1\nneg %r0\nexit", U64),
    ("neg32 intmin", "mov32 %r0, 0x80000000\nneg32 %r0\nexit", 0x80000000),
    # movsx
    ("movsx864", "mov %r1, 0x80\nmovsx864 %r0, %r1\nexit", 0xFFFFFFFFFFFFFF80),
    ("movsx832", "mov %r1, 0x180\nmovsx832 %r0, %r1\nexit", 0xFFFFFF80),
    ("movsx1664", "mov %r1, 0x8000\nmovsx1664 %r0, %r1\nexit", 0xFFFFFFFFFFFF8000),
    ("movsx1632", "mov %r1, 0x18000\nmovsx1632 %r0, %r1\nexit", 0xFFFF8000),
    ("movsx3264", "mov32 %r1, 0x80000000\nmovsx3264 %r0, %r1\nexit", 0xFFFFFFFF80000000),
    ("movsx864 positive", "mov %r1, 0x17f\nmovsx864 %r0, %r1\nexit", 0x7F),
    # byte order on a little-endian host: le truncates, be/bswap swap (zero-extended)
    ("le16", "lddw %r0, 0x1122334455667788\nle16 %r0\nexit", 0x7788),
    ("le32", "lddw %r0, 0x1122334455667788\nle32 %r0\nexit", 0x55667788),
    ("le64", "lddw %r0, 0x1122334455667788\nle64 %r0\nexit", 0x1122334455667788),
    ("be16", "lddw %r0, 0x1122334455667788\nbe16 %r0\nexit", 0x8877),
    ("be32", "lddw %r0, 0x1122334455667788\nbe32 %r0\nexit", 0x88776655),
    ("be64", "lddw %r0, 0x1122334455667788\nbe64 %r0\nexit", 0x8877665544332211),
    ("bswap16", "lddw %r0, 0x1122334455667788\nbswap16 %r0\nexit", 0x8877),
    ("bswap32", "lddw %r0, 0x1122334455667788\nbswap32 %r0\nexit", 0x88776655),
    ("bswap64", "lddw %r0, 0x1122334455667788\nbswap64 %r0\nexit", 0x8877665544332211),
    # lddw
    ("lddw", "lddw %r0, 0xfedcba9876543210\nexit", 0xFEDCBA9876543210),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in ALU_CASES], ids=[c[0] for c in ALU_CASES])
def test_alu(text, expected):
    assert run(text) == expected


# --- jumps -----------------------------------------------------------------------------------

JUMP_CASES = [
    ("jmp32 compares low half", "lddw %r1, 0x100000000\nmov %r0, 1\njeq32 %r1, 0, +1\nmov %r0, 2\nexit", 1),
    ("jmp64 sees high half", "lddw %r1, 0x100000000\nmov %r0, 1\njeq %r1, 0, +1\nmov %r0, 2\nexit", 2),
    ("jsgt32 signed", "mov32 %r1, -1\nmov %r0, 1\njsgt32 %r1, 0, +1\nmov %r0, 2\nexit", 2),
    ("jgt32 unsigned", "mov32 %r1, -1\nmov %r0, 1\njgt32 %r1, 0, +1\nmov %r0, 2\nexit", 1),
    ("jslt64 imm sign-extended", "mov %r1, -2\nmov %r0, 1\njslt %r1, -1, +1\nmov %r0, 2\nexit", 1),
    ("jgt64 imm sign-extended", "mov %r1, 5\nmov %r0, 1\njgt %r1, -1, +1\nmov %r0, 2\nexit", 2),
    ("jset reg", "mov %r1, 6\nmov %r2, 4\nmov %r0, 1\njset %r1, %r2, +1\nmov %r0, 2\nexit", 1),
    ("jne32 reg", "lddw %r1, 0x100000007\nmov %r2, 7\nmov %r0, 1\njne32 %r1, %r2, +1\nmov %r0, 2\nexit", 2),
    ("jsle32 reg", "mov32 %r1, 0x80000000\nmov %r2, 0\nmov %r0, 1\njsle32 %r1, %r2, +1\nmov %r0, 2\nexit", 1),
    ("gotol", "mov %r0, 1\nja32 +1\nmov %r0, 2\nexit", 1),
    ("gotol backward", "mov %r0, 0\nja32 +2\nmov %r0, 5\nexit\nja32 -3", 5),
    ("loop", "mov %r0, 0\nmov %r1, 10\nloop:\nadd %r0, %r1\nsub %r1, 1\njne %r1, 0, loop\nexit", 55),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in JUMP_CASES],
                         ids=[c[0] for c in JUMP_CASES])
def test_jumps(text, expected):
    assert run(text) == expected


# --- memory and atomics ----------------------------------------------------------------------

MEM_CASES = [
    ("ldxsb", "mov %r1, 0x80\nstxb [%r10-1], %r1\nldxsb %r0, [%r10-1]\nexit", 0xFFFFFFFFFFFFFF80),
    ("ldxsh", "mov %r1, 0x8001\nstxh [%r10-2], %r1\nldxsh %r0, [%r10-2]\nexit", 0xFFFFFFFFFFFF8001),
    ("ldxsw", "mov32 %r1, 0x80000000\nstxw [%r10-4], %r1\nldxsw %r0, [%r10-4]\nexit",
     0xFFFFFFFF80000000),
    ("ldxb zero-extends", "mov %r1, 0x80\nstxb [%r10-1], %r1\nldxb %r0, [%r10-1]\nexit", 0x80),
    ("stdw imm sign-extends", "stdw [%r10-8], -1\nldxdw %r0, [%r10-8]\nexit", U64),
    ("stw imm", "stdw [%r10-8], 0\nstw [%r10-8], -1\nldxdw %r0, [%r10-8]\nexit", 0xFFFFFFFF),
    ("stack starts zeroed", "ldxdw %r0, [%r10-512]\nexit", 0),
    ("unaligned stack", "stdw [%r10-11], -1\nldxw %r0, [%r10-9]\nexit", 0xFFFFFFFF),
]
ATOMIC_CASES = [
    ("add64", "stdw [%r10-8], 10\nmov %r1, 5\nlock add [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit", 15),
    ("fetch add64 old", "stdw [%r10-8], 10\nmov %r1, 5\nlock fetch add [%r10-8], %r1\n"
     "mov %r0, %r1\nexit", 10),
    ("or64", "stdw [%r10-8], 0x10\nmov %r1, 1\nlock or [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit", 0x11),
    ("fetch or64", "stdw [%r10-8], 0x10\nmov %r1, 1\nlock fetch or [%r10-8], %r1\nmov %r0, %r1\nexit", 0x10),
    ("and64", "stdw [%r10-8], 0x13\nmov %r1, 6\nlock and [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit", 2),
    ("fetch and64", "stdw [%r10-8], 0x13\nmov %r1, 6\nlock fetch and [%r10-8], %r1\n"
     "mov %r0, %r1\nexit", 0x13),
    ("xor64", "stdw [%r10-8], 0x13\nmov %r1, 6\nlock xor [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit", 0x15),
    ("fetch xor64", "stdw [%r10-8], 0x13\nmov %r1, 6\nlock fetch xor [%r10-8], %r1\n"
     "mov %r0, %r1\nexit", 0x13),
    ("xchg64", "stdw [%r10-8], 7\nmov %r1, 9\nlock xchg [%r10-8], %r1\nldxdw %r0, [%r10-8]\n"
     "lsh %r0, 8\nor %r0, %r1\nexit", 0x907),
    ("cmpxchg64 success", "stdw [%r10-8], 7\nmov %r0, 7\nmov %r1, 9\nlock cmpxchg [%r10-8], %r1\n"
     "ldxdw %r2, [%r10-8]\nlsh %r0, 8\nor %r0, %r2\nexit", 0x709),
    ("cmpxchg64 failure", "stdw [%r10-8], 7\nmov %r0, 8\nmov %r1, 9\nlock cmpxchg [%r10-8], %r1\n"
     "ldxdw %r2, [%r10-8]\nlsh %r0, 8\nor %r0, %r2\nexit", 0x707),
    ("add32 keeps high half", "stdw [%r10-8], -1\nmov %r1, 1\nlock add32 [%r10-8], %r1\n"
     "ldxdw %r0, [%r10-8]\nexit", 0xFFFFFFFF00000000),
    ("fetch add32 zero-extends", "stdw [%r10-8], -1\nmov %r1, 1\nlock fetch add32 [%r10-8], %r1\n"
     "mov %r0, %r1\nexit", 0xFFFFFFFF),
    ("fetch or32", "stdw [%r10-8], -1\nlddw %r1, 0x100000000\nlock fetch or32 [%r10-8], %r1\n"
     "mov %r0, %r1\nexit", 0xFFFFFFFF),
    ("fetch and32", "stdw [%r10-8], 0x13\nmov %r1, 6\nlock fetch and32 [%r10-8], %r1\n"
     "ldxw %r0, [%r10-8]\nlsh %r0, 8\nor %r0, %r1\nexit", 0x213),
    ("fetch xor32", "stdw [%r10-8], 0x13\nmov %r1, 6\nlock fetch xor32 [%r10-8], %r1\n"
     "ldxw %r0, [%r10-8]\nlsh %r0, 8\nor %r0, %r1\nexit", 0x1513),
    ("or32/and32/xor32", "stdw [%r10-8], 0\nmov %r1, 0xff\nlock or32 [%r10-8], %r1\nmov %r1, 0x3c\n"
     "lock and32 [%r10-8], %r1\nmov %r1, 0x11\nlock xor32 [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit", 0x2D),
    ("xchg32 zero-extends", "stdw [%r10-8], -1\nmov %r1, 9\nlock xchg32 [%r10-8], %r1\nmov %r0, %r1\nexit",
     0xFFFFFFFF),
    ("cmpxchg32 compares low half of r0", "stdw [%r10-8], 7\nlddw %r0, 0x100000007\nmov %r1, 9\n"
     "lock cmpxchg32 [%r10-8], %r1\nldxdw %r2, [%r10-8]\nlsh %r0, 8\nor %r0, %r2\nexit", 0x709),
    ("cmpxchg32 failure", "stdw [%r10-8], -1\nmov %r0, 8\nmov %r1, 9\nlock cmpxchg32 [%r10-8], %r1\nexit",
     0xFFFFFFFF),
    ("atomic on mem", "mov %r2, 3\nlock add [%r1+8], %r2\nldxdw %r0, [%r1+8]\nexit", 4),
    ("atomic misaligned", "stdw [%r10-16], 0\nstdw [%r10-8], 0\nmov %r1, 3\nlock fetch add [%r10-12], %r1\n"
     "ldxdw %r0, [%r10-12]\nexit", 3),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in MEM_CASES + ATOMIC_CASES],
                         ids=[c[0] for c in MEM_CASES + ATOMIC_CASES])
def test_memory(text, expected):
    mem = bytearray(struct.pack("<QQ", 0, 1))
    assert run(text, mem) == expected


# --- mem convention --------------------------------------------------------------------------

def test_mem_convention():
    assert run("mov %r0, %r2\nexit", b"12345678") == 8
    assert run("mov %r0, %r1\nexit") == 0
    assert run("mov %r0, %r2\nexit") == 0
    assert run("ldxdw %r0, [%r1]\nexit", b"\x01\x02\x03\x04\x05\x06\x07\x08") == 0x0807060504030201
    assert run("ldxb %r0, [%r1+4999]\nexit", bytes(4999) + b"\x07") == 7   # heap-copied


def test_bytearray_modified_in_place_bytes_copied():
    prog = load("stb [%r1+1], 0x42\nmov %r0, 0\nexit")
    ba = bytearray(4)
    prog.run(ba)
    assert ba == bytearray(b"\x00\x42\x00\x00")
    mv = memoryview(bytearray(4))
    prog.run(mv)
    assert mv[1] == 0x42
    b = bytes(4)
    prog.run(b)
    assert b == bytes(4)
    ro = memoryview(bytes(4))
    prog.run(ro)
    assert ro.tobytes() == bytes(4)


def test_r1_r2_override():
    prog = load("mov %r0, %r1\nadd %r0, %r2\nexit")
    assert prog.run(r1=5, r2=6) == 11
    assert prog.run(b"abc", r2=10) != 10
    assert prog.run(b"abc", r1=1) == 4


# --- legacy packet loads ---------------------------------------------------------------------

PKT = bytes(range(16))
PACKET_CASES = [
    ("ldabsw", "ldabsw 4\nexit", 0x04050607),
    ("ldabsh", "ldabsh 0\nexit", 0x0001),
    ("ldabsb", "ldabsb 15\nexit", 0x0F),
    ("ldindw", "mov %r2, 4\nldindw %r2, 2\nexit", 0x06070809),
    ("ldindh neg imm", "mov %r2, 4\nldindh %r2, -2\nexit", 0x0203),
    ("ldabsw out of range ends with 0", "mov %r0, 7\nldabsw 13\nmov %r0, 99\nexit", 0),
    ("ldabsb just past end", "ldabsb 16\nmov %r0, 99\nexit", 0),
    ("ldind negative offset", "mov %r2, -10\nldindb %r2, 0\nmov %r0, 99\nexit", 0),
    ("ldind huge offset", "lddw %r2, 0x100000000\nldindb %r2, 1\nexit", 1),  # low 32 bits count
    ("out of range in subprogram ends the run", "call local f\nmov %r0, 99\nexit\nf:\nldabsw 100\n"
     "mov %r0, 5\nexit", 0),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in PACKET_CASES],
                         ids=[c[0] for c in PACKET_CASES])
def test_packet_loads(text, expected):
    assert run(text, PKT) == expected


def test_packet_loads_without_mem():
    assert run("mov %r0, 3\nldabsb 0\nexit") == 0


def test_ld_packet_c_contract():
    st = runtime.thread_state()
    buf = ffi.new("uint8_t[]", PKT)
    st.mem_base = int(ffi.cast("uintptr_t", buf))
    st.mem_len = len(PKT)
    ok = ffi.new("int *")
    assert lib.ebpfjit_ld_packet(st, 4, 4, 0, ok) == 0x04050607 and ok[0] == 1
    assert lib.ebpfjit_ld_packet(st, 13, 4, 0, ok) == 0 and ok[0] == 0
    assert lib.ebpfjit_ld_packet(st, (1 << 32) + 1, 1, 0, ok) == 1 and ok[0] == 1
    assert lib.ebpfjit_ld_packet(st, U64, 1, 0, ok) == 0 and ok[0] == 0
    st.mem_base = st.mem_len = 0


# --- local calls -----------------------------------------------------------------------------

def test_local_call_preserves_r6_r9_and_passes_r1_r5():
    text = """
        mov %r6, 6
        mov %r7, 7
        mov %r8, 8
        mov %r9, 9
        mov %r1, 1
        mov %r5, 5
        call local f
        mov %r1, %r6
        add %r1, %r7
        add %r1, %r8
        add %r1, %r9
        lsh %r0, 8
        or %r0, %r1
        exit
    f:
        mov %r6, 0
        mov %r7, 0
        mov %r8, 0
        mov %r9, 0
        mov %r0, %r1
        add %r0, %r5
        exit
    """
    assert run(text) == (6 << 8) | 30


def test_local_call_gets_a_fresh_frame_and_can_use_the_callers():
    text = """
        stdw [%r10-8], 11
        mov %r1, %r10
        sub %r1, 8
        call local f
        ldxdw %r1, [%r10-8]
        lsh %r0, 8
        or %r0, %r1
        exit
    f:
        ldxdw %r0, [%r10-8]
        stdw [%r10-8], 99
        ldxdw %r2, [%r1]
        add %r0, %r2
        exit
    """
    # callee's [r10-8] starts at 0 (own zeroed frame), reads 11 through the caller's pointer,
    # and its store does not touch the caller's slot.
    assert run(text) == (11 << 8) | 11


def _nested_calls(n: int) -> str:
    # r0 reads 0 at callee entry: each function adds 1 to what its callee returned.
    lines = ["mov %r0, 0", "call local f1", "exit"]
    for i in range(1, n + 1):
        lines.append(f"f{i}:")
        if i < n:
            lines.append(f"call local f{i + 1}")
        lines += ["add %r0, 1", "exit"]
    return "\n".join(lines)


def test_call_depth_limit():
    assert run(_nested_calls(7)) == 7            # 8 frames including main
    err = fault(_nested_calls(8))
    assert err.kind == "call_depth"
    assert str(err) == f"pc {3 + 3 * 6}: call depth exceeds 8 frames"


def test_infinite_recursion():
    err = fault("call local f\nexit\nf:\ncall local f\nexit")
    assert (err.kind, err.pc) == ("call_depth", 2)


def test_recursion_into_main_is_a_call():
    # The argument travels in r1 (r6 reads 0 at callee entry).
    assert run("mov %r0, 1\njeq %r1, 1, +3\nmov %r1, 1\ncall local main\nadd %r0, 1\nexit"
               .replace("main", "-4")) == 2


def test_fall_off_end_of_subprogram():
    code = assemble("call local f\ncall local g\nexit\nf:\nmov %r0, 1\ng:\nexit")
    err = fault(code)
    assert (err.kind, err.pc) == ("fall_off", 3)
    assert "past the end of the function" in str(err)


def test_fall_off_end_of_program():
    err = fault(I(0xb7, 0, imm=1).encode())
    assert (err.kind, err.pc) == ("fall_off", 0)


# --- helpers ---------------------------------------------------------------------------------

def test_python_helper_args_and_result():
    env = Env()
    seen = []

    def helper(*args):
        seen.append(args)
        return -1

    env.register_helper(7, helper)
    assert env.has_helper(7) and not env.has_helper(8)
    assert run("mov %r1, 1\nmov %r2, 2\nmov %r3, 3\nmov %r4, 4\nmov %r5, -5\ncall 7\nexit", env=env) == U64
    assert seen == [(1, 2, 3, 4, U64 - 4)]


def test_python_helper_exception_is_chained():
    env = Env()

    def boom(*args):
        raise ValueError("no such key")

    env.register_helper(12, boom)
    with pytest.raises(ExecutionError) as info:
        run("mov %r0, 0\ncall 12\nexit", env=env)
    err = info.value
    assert (err.kind, err.pc) == ("helper", 1)
    assert isinstance(err.__cause__, ValueError)
    assert str(err) == "pc 1: helper 12 failed: ValueError: no such key"
    # the next run is clean
    env.register_helper(12, identity)
    assert run("mov %r1, 3\ncall 12\nexit", env=env) == 3


def test_unknown_helper():
    err = fault("call 999\nexit", env=Env())
    assert (err.kind, err.pc, str(err)) == ("unknown_helper", 0, "pc 0: unknown helper 999")
    err = fault(I(0x85, imm=100000).encode() + I(0x95).encode(), env=Env())
    assert str(err) == "pc 0: unknown helper 100000"
    env = Env()
    env.register_helper(3, identity)
    env.unregister_helper(3)
    assert fault("call 3\nexit", env=env).kind == "unknown_helper"


def test_callx():
    assert run("mov %r1, 42\nmov %r2, 5\ncall %r2\nexit") == 42
    err = fault("mov %r2, 6\nmov %r0, 1\ncall %r2\nexit")
    assert (err.kind, err.pc, str(err)) == ("unknown_helper", 2, "pc 2: unknown helper 6")
    err = fault("mov %r2, -1\ncall %r2\nexit")
    assert err.kind == "unknown_helper"


def test_cffi_and_address_helpers():
    @ffi.callback("ebpfjit_helper_fn")
    def add(a, b, c, d, e):
        return a + b + c + d + e

    env = Env()
    env.register_helper(1, add)
    env.register_helper(2, int(ffi.cast("uintptr_t", add)))
    assert env.helper_address(1) == env.helper_address(2) != 0
    text = "mov %r1, 1\nmov %r2, 2\nmov %r3, 3\nmov %r4, 4\nmov %r5, 5\ncall 1\nmov %r1, %r0\ncall 2\nexit"
    assert run(text, env=env) == 15 + 14


def test_register_helper_rejects_bad_ids_and_values():
    env = Env()
    with pytest.raises(ValueError):
        env.register_helper(512, identity)
    with pytest.raises(ValueError):
        env.register_helper(-1, identity)
    with pytest.raises(TypeError):
        env.register_helper(1, "nope")


def test_helper_sees_current_state_and_can_fault():
    env = Env()

    def failing(*args):
        st = lib.ebpfjit_current()
        assert st != ffi.NULL and st.depth == 2
        lib.ebpfjit_fault(st, lib.EBPFJIT_ERR_HELPER, -1, 0, 0)
        return 0

    env.register_helper(9, failing)
    err = fault("call local f\nexit\nf:\ncall 9\nexit", env=env)
    assert (err.kind, err.pc) == ("helper", 2)


def test_nested_run_from_python_helper():
    inner = load("mov %r0, %r2\nexit")
    env = Env()
    env.register_helper(4, lambda *a: inner.run(b"x" * a[0]))
    assert run("mov %r1, 6\ncall 4\nadd %r0, 1\nexit", b"outer", env=env) == 7


def test_helper_calls_count_as_one_instruction():
    env = Env()
    env.register_helper(5, identity)
    # A run with budget B executes fewer than B instructions; a helper call is one of them.
    text = "call 5\ncall 5\ncall 5\nexit"
    assert run(text, env=env, budget=5) == 0
    assert fault(text, env=env, budget=4).pc == 3
    # 1 (pc 0, charged entering the loop) + 3 + 3 (two back-edges) + 4 (the last pass + exit)
    looped = "mov %r6, 3\nloop:\ncall 5\nsub %r6, 1\njne %r6, 0, loop\nexit"
    assert run(looped, env=env, budget=12) == 0
    assert fault(looped, env=env, budget=11).pc == 4
    assert fault(looped, env=env, budget=7).pc == 3
    assert fault(looped, env=env, budget=1).pc == 0


# --- lddw map forms --------------------------------------------------------------------------

def test_lddw_map_and_map_value():
    values = ffi.new("uint8_t[]", bytes(range(32)))
    m = ffi.new("struct ebpfjit_map_base *", {"value_size": 32, "max_entries": 1})
    m.values = values
    env = Env()
    env.set_maps([m])
    env.add_region(values, 32, writable=True)
    code = (I(0x18, dst=1, src=2, imm=(4 << 32) | 0).encode()
            + assemble("ldxw %r0, [%r1]\nexit"))
    assert run(code, env=env) == 0x07060504
    code = I(0x18, dst=0, src=1, imm=0).encode() + I(0x95).encode()
    assert run(code, env=env) == int(ffi.cast("uintptr_t", m))
    code = I(0x18, dst=0, src=1, imm=3).encode() + I(0x95).encode()
    err = fault(code, env=env)
    assert (err.kind, err.pc) == ("bad_insn", 0)
    assert "map index 3" in str(err)
    for src in (3, 4, 5, 6):
        assert fault(I(0x18, dst=0, src=src, imm=0).encode() + I(0x95).encode(), env=env).kind == "bad_insn"


def test_env_region_readonly():
    data = bytearray(b"\x2a" * 8)
    env = Env()
    env.add_region(bytes(data), 8, writable=False)
    addr = env._keep[next(k for k in env._keep if k[0] == "region")]
    base = int(ffi.cast("uintptr_t", addr))
    code = I(0x18, dst=1, imm=base).encode()
    assert run(code + assemble("ldxb %r0, [%r1+7]\nexit"), env=env) == 0x2A
    err = fault(code + assemble("stb [%r1], 1\nexit"), env=env)
    assert (err.kind, err.pc, err.size) == ("oob_store", 2, 1)


def test_kfunc_call_is_bad_insn():
    assert fault(I(0x85, src=2, imm=1).encode() + I(0x95).encode()).kind == "bad_insn"


# --- budget ----------------------------------------------------------------------------------

def test_budget_infinite_loop():
    err = fault("mov %r0, 0\nloop:\nadd %r0, 1\nja loop", budget=1000)
    assert (err.kind, err.pc) == ("budget", 2)
    assert str(err) == "pc 2: instruction budget of 1000 exhausted"


def test_budget_counts_exactly():
    text = "mov %r1, 10\nloop:\nsub %r1, 1\njne %r1, 0, loop\nexit"   # 22 instructions run
    assert run(text, budget=23) == 0
    assert fault(text, budget=22).kind == "budget"
    with pytest.raises(ValueError):
        run(text, budget=0)


def test_default_budget_message():
    err = fault("ja -1")
    assert str(err) == f"pc 0: instruction budget of {runtime.DEFAULT_BUDGET} exhausted"


# --- out-of-bounds ---------------------------------------------------------------------------

OOB_CASES = [
    ("stack top", "ldxb %r0, [%r10+0]\nexit", b"", "oob_load", 0, 1,
     'stack offset 0 of frame 0 (512 bytes)'),
    ("stack overflow +8", "ldxdw %r0, [%r10+8]\nexit", b"", "oob_load", 0, 8,
     'stack offset 8 of frame 0 (512 bytes)'),
    ("stack underflow -520", "ldxdw %r0, [%r10-520]\nexit", b"", "oob_load", 0, 8,
     'stack offset -520 of frame 0 (512 bytes)'),
    ("straddles stack bottom", "ldxdw %r0, [%r10-516]\nexit", b"", "oob_load", 0, 8,
     'stack offset -516 of frame 0 (512 bytes)'),
    ("mem + len", "ldxb %r0, [%r1+8]\nexit", bytes(8), "oob_load", 0, 1,
     'memory offset 8 of 8 bytes'),
    ("mem partial", "ldxdw %r0, [%r1+1]\nexit", bytes(8), "oob_load", 0, 8,
     'memory offset 1 of 8 bytes'),
    ("mem before", "ldxb %r0, [%r1-1]\nexit", bytes(8), "oob_load", 0, 1,
     'memory offset -1 of 8 bytes'),
    ("null", "mov %r1, 0\nldxw %r0, [%r1+0]\nexit", b"", "oob_load", 1, 4,
     'null pointer (address 0x0)'),
    ("store past mem", "stw [%r1+6], 1\nexit", bytes(8), "oob_store", 0, 4,
     'memory offset 6 of 8 bytes'),
    ("store below stack", "stxdw [%r10-513], %r1\nexit", b"", "oob_store", 0, 8,
     'stack offset -513 of frame 0 (512 bytes)'),
    ("atomic past mem", "mov %r2, 1\nlock add [%r1+8], %r2\nexit", bytes(8), "oob_store", 1, 8,
     'memory offset 8 of 8 bytes'),
    ("wrapping address", "lddw %r1, 0xfffffffffffffffc\nldxdw %r0, [%r1+0]\nexit", b"", "oob_load", 2, 8,
     'not in stack, memory or any map'),
    ("stale frame after return", "call local f\nldxdw %r0, [%r0-8]\nexit\nf:\nmov %r0, %r10\nexit",
     b"", "oob_load", 1, 8,
     'stack offset 504 of frame 0 (512 bytes)'),
]


@pytest.mark.parametrize("text, mem, kind, pc, size, where", [c[1:] for c in OOB_CASES],
                         ids=[c[0] for c in OOB_CASES])
def test_out_of_bounds(text, mem, kind, pc, size, where):
    err = fault(text, bytearray(mem))
    assert (err.kind, err.pc, err.size) == (kind, pc, size)
    what = "load" if kind == "oob_load" else "store"
    insn = next(i for p, i in _insn.iter_pcs(_insn.decode(assemble(text), validate=False))
                if p == pc)
    # The place relative to the region it is nearest to, the instruction; no host address.
    assert str(err) == (f"pc {pc}: out-of-bounds {what} of {size} bytes at {where}\n"
                        f"  insn {pc}: {format_insn(insn)}")
    assert err.insn_text == format_insn(insn)
    if err.addr >= 4096:
        assert f"{err.addr:x}" not in str(err)


def test_oob_messages_locate_the_address():
    err = fault("ldxdw %r0, [%r10-520]\nexit")
    assert (err.region, err.offset) == ("stack", -520)
    err = fault("ldxb %r0, [%r1+8]\nexit", bytes(8))
    assert (err.region, err.offset) == ("memory", 8)
    assert fault("mov %r1, 0\nldxw %r0, [%r1+0]\nexit").region == "null"


def test_bad_jump_target_faults_instead_of_escaping():
    code = I(0x05, off=100).encode() + I(0x95).encode()
    with pytest.raises(DecodeError):
        _insn.decode(code)
    err = fault(code)
    assert (err.kind, err.pc) == ("bad_insn", 0)
    code = I(0x85, src=1, imm=-5).encode() + I(0x95).encode()
    assert fault(code).kind == "bad_insn"
    # into the second slot of an lddw
    code = I(0x05, off=1).encode() + I(0x18, imm=1 << 40).encode() + I(0x95).encode()
    assert fault(code).kind == "bad_insn"


def test_engine_errors():
    prog = load("mov %r0, 1\nexit")
    with pytest.raises(ValueError):
        prog.run(engine="nope")
    with pytest.raises(EbpfError):
        prog.run(engine="jit")
    with pytest.raises(TypeError):
        prog.run("text")


# --- runner odds and ends --------------------------------------------------------------------

def test_run_repeat():
    prog = load("mov %r0, %r2\nexit")
    r0, ns = prog.run_repeat(b"abcd", 1000)
    assert r0 == 4 and ns > 0
    with pytest.raises(ExecutionError):
        load("ja -1").run_repeat(b"", 3, budget=10)


def test_threads_run_independently():
    prog = load("mov %r0, 0\nmov %r3, %r2\nloop:\nadd %r0, 1\nsub %r3, 1\njne %r3, 0, loop\nexit")
    errors = []

    def worker(n):
        try:
            for _ in range(200):
                assert prog.run(bytes(n)) == n
        except BaseException as exc:   # noqa: B036 - report any failure to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in (3, 50, 700)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_helper_symbols_and_state_layout():
    syms = runtime.helper_symbols()
    for name in ("ebpfjit_access_ok", "ebpfjit_fault", "ebpfjit_call_helper", "ebpfjit_ld_packet",
                 "ebpfjit_helper_status"):
        assert syms[name] > 0
    layout = runtime.state_layout()
    assert layout["state.r0"] == 0 and layout["r0"] == 0
    assert layout["state.status"] == 8
    assert layout["env.helpers"] == 0
    assert layout["env.maps"] == 8 * runtime.MAX_HELPERS
    assert layout["map_base.values"] == 24
    assert layout["sizeof.state"] == ffi.sizeof("struct ebpfjit_state")
    assert layout["state.frame_lo"] + 8 * runtime.MAX_FRAMES <= layout["state.nregions"]


def test_access_ok_slow_path():
    st = runtime.thread_state()
    lib.ebpfjit_state_reset(st, ffi.NULL, 1)
    st.nregions = 1
    st.regions[0].base = 0x10000
    st.regions[0].len = 0x100
    st.regions[0].writable = 0
    assert lib.ebpfjit_access_ok(st, 0x10000, 8, 0)
    assert lib.ebpfjit_access_ok(st, 0x100F8, 8, 0)
    assert not lib.ebpfjit_access_ok(st, 0x100F9, 8, 0)
    assert not lib.ebpfjit_access_ok(st, 0x10000, 8, 1)
    assert not lib.ebpfjit_access_ok(st, U64 - 3, 8, 0)
    st.nregions = 0


# --- fuzz ------------------------------------------------------------------------------------

_FUZZ_OPCODES = sorted(OPCODES)


def _random_insn(rng: random.Random, nslots: int) -> I:
    """A random instruction whose fields mostly satisfy insn.check_fields for its opcode."""
    opcode = rng.choice(_FUZZ_OPCODES)
    info = OPCODES[opcode]
    kind = info.kind
    dst = rng.choice((0, 1, 2, 3, 6, 10, rng.randrange(11)))
    src = rng.choice((0, 1, 2, 10, rng.randrange(11)))
    off = rng.choice((0, 1, -1, 8, -8, 16, 32, rng.randrange(-600, 600), rng.randrange(-8, 8)))
    imm = rng.choice((0, 1, -1, 5, 16, 32, 64, 0x7FFFFFFF, -0x80000000, rng.randrange(-50, 50),
                      rng.getrandbits(32) - (1 << 31)))
    if kind is Kind.ALU:
        if info.source is not None and info.source.name == "K":
            src = 0
        else:
            imm = 0
        off = rng.choice((0, 0, 0, 1, 8, 16, 32))
    elif kind is Kind.NEG:
        src = off = imm = 0
    elif kind is Kind.ENDIAN:
        src = off = 0
        imm = rng.choice((16, 32, 64))
    elif kind in (Kind.JA, Kind.JCOND):
        target = rng.randrange(-nslots, nslots)
        if kind is Kind.JA:
            dst = src = 0
            off, imm = (target, 0) if opcode == 0x05 else (0, target)
        else:
            off = target
            if info.source.name == "K":
                src = 0
            else:
                imm = 0
    elif kind is Kind.CALL:
        dst = off = 0
        src = rng.choice((0, 1, 1, 2))
        imm = rng.randrange(-nslots, nslots) if src == 1 else rng.choice((5, 6, 1000, imm))
    elif kind is Kind.CALLX:
        src = off = imm = 0
    elif kind is Kind.EXIT:
        dst = src = off = imm = 0
    elif kind is Kind.LDDW:
        off = 0
        src = rng.choice((0, 0, 0, 1, 2, 3))
        imm = rng.getrandbits(64) if src == 0 else rng.randrange(3) | (rng.randrange(70) << 32)
    elif kind is Kind.LDABS:
        dst = src = off = 0
        imm = rng.randrange(-4, 80)
    elif kind is Kind.LDIND:
        dst = off = 0
        imm = rng.randrange(-4, 80)
    elif kind in (Kind.LDX, Kind.LDXSX, Kind.STX):
        imm = 0
    elif kind is Kind.ST:
        src = 0
    elif kind is Kind.ATOMIC:
        imm = rng.choice((0x00, 0x40, 0x50, 0xA0, 0x01, 0x41, 0x51, 0xA1, 0xE1, 0xF1))
    if dst == 10 and rng.random() < 0.8:
        dst = rng.randrange(10)
    return I(opcode, dst, src, off, imm)


def test_fuzz_interpreter_never_crashes():
    rng = random.Random(20261121)
    env = Env()
    env.register_helper(5, identity)
    values = ffi.new("uint8_t[]", 64)
    m = ffi.new("struct ebpfjit_map_base *", {"value_size": 64, "max_entries": 1})
    m.values = values
    env.set_maps([m])
    env.add_region(values, 64, writable=True)
    cases = outcomes = 0
    kinds: dict[str, int] = {}
    while cases < 3000:
        n = rng.randrange(1, 24)
        insns = []
        while len(insns) < n:
            candidate = _random_insn(rng, n)
            if _insn.check_fields(candidate) is None:
                insns.append(candidate)
        if rng.random() < 0.7:
            insns.append(I(0x95))
        code = _insn.encode(insns)
        try:
            _insn.decode(code, validate=rng.random() < 0.3)
        except DecodeError:
            continue
        cases += 1
        mem = bytearray(rng.getrandbits(8) for _ in range(rng.choice((0, 8, 64))))
        try:
            r0 = LoadedProgram(code, env).run(mem, budget=rng.choice((1, 50, 2000)))
            assert 0 <= r0 <= U64
            outcomes += 1
        except ExecutionError as exc:
            kinds[exc.kind] = kinds.get(exc.kind, 0) + 1
    assert outcomes > 100 and len(kinds) >= 4, kinds


def test_lowering_takes_status_codes_and_imports_from_the_c_module():
    from ebpfjit.jit.lower import RUNTIME_DECLS
    from ebpfjit.jit.lower import lowering_context as context
    from ebpfjit.runtime.env import status_codes
    codes = status_codes()
    assert codes["OK"] == lib.EBPFJIT_OK and codes["ERR_TIMEOUT"] == lib.EBPFJIT_ERR_TIMEOUT
    assert {name: getattr(context, name) for name in codes} == codes   # every code has a name
    imports = runtime.helper_symbols()
    assert set(RUNTIME_DECLS) <= set(imports) and all(addr > 0 for addr in imports.values())
