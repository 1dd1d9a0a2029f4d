"""The ISA's edge cases, one table run on every engine: assembly text (bytes where the assembler
cannot write the program) -> the expected r0, or the expected fault.

Every case runs on the C interpreter and on the JIT at O0 and O2, through `Both`, which asserts
the engines agree to the final memory and the fault's kind, pc and size. These are the semantics
that must hold without the bpf_conformance vectors (RFC 9669 and the kernel's behaviour where
the RFC is silent); the conformance suite itself is in test_conformance.py.
"""
from __future__ import annotations

import struct
from typing import NamedTuple

import pytest

from ebpfjit.isa.asm import assemble
from ebpfjit.isa.insn import Instruction, encode
from tests.support.engines import U64, Both


class Fault(NamedTuple):
    kind: str
    pc: int
    size: int | None


MEM16 = struct.pack("<QQ", 0, 1)     # the mem of the stack and atomics cases: 0, then 1
PKT = bytes(range(16))               # the packet of the legacy packet loads

# The decoder rejects a program whose *last* instruction falls through, so the callee f that
# falls off is followed by a function g (the target of a never-executed call):
# 0: call f   1: exit   2: f: mov r0, 1 (falls off)   3: g: exit   4: call g   5: exit
FALL_OFF_CALLEE = encode([Instruction(0x85, src=1, imm=1), Instruction(0x95), Instruction(0xB7, imm=1),
                          Instruction(0x95), Instruction(0x85, src=1, imm=-2), Instruction(0x95)])

CASES = [
    # (id, program, mem, expected r0 or Fault)
    # ALU: division and modulo by zero and INT_MIN / -1, masked shifts, 32-bit results zero-extended,
    # 64-bit immediates sign-extended, movsx, byte order, lddw
    ("div32-by-zero-reg", "mov %r0, 7\nmov %r1, 0\ndiv32 %r0, %r1\nexit", b"", 0),
    ("div32-by-zero-imm", "mov %r0, 7\ndiv32 %r0, 0\nexit", b"", 0),
    ("div64-by-zero-reg", "mov %r0, 7\nmov %r1, 0\ndiv %r0, %r1\nexit", b"", 0),
    ("div64-by-zero-imm", "mov %r0, 7\ndiv %r0, 0\nexit", b"", 0),
    ("mod64-by-zero", "lddw %r0, 0x100000005\nmov %r1, 0\nmod %r0, %r1\nexit", b"", 0x100000005),
    ("mod32-by-zero", "lddw %r0, 0x100000005\nmov %r1, 0\nmod32 %r0, %r1\nexit", b"", 5),
    ("mod32-by-zero-imm", "lddw %r0, 0x100000005\nmod32 %r0, 0\nexit", b"", 5),
    ("div32-uses-low-halves", "lddw %r0, 0x100000010\nlddw %r1, 0x100000004\ndiv32 %r0, %r1\nexit", b"", 4),
    ("div64-imm-sign-extended", "mov %r0, -1\ndiv %r0, -1\nexit", b"", 1),
    ("sdiv64-intmin-by-minus1", "lddw %r0, 0x8000000000000000\nsdiv %r0, -1\nexit", b"", 1 << 63),
    ("sdiv64-intmin-by-minus1-reg", "lddw %r0, 0x8000000000000000\nmov %r1, -1\nsdiv %r0, %r1\nexit",
     b"", 1 << 63),
    ("smod64-intmin-mod-minus1", "lddw %r0, 0x8000000000000000\nsmod %r0, -1\nexit", b"", 0),
    ("sdiv32-intmin-by-minus1", "mov32 %r0, 0x80000000\nsdiv32 %r0, -1\nexit", b"", 0x80000000),
    ("smod32-intmin-mod-minus1", "mov32 %r0, 0x80000000\nmov %r1, -1\nsmod32 %r0, %r1\nexit", b"", 0),
    ("sdiv64-by-zero", "mov %r0, -7\nsdiv %r0, 0\nexit", b"", 0),
    ("sdiv32-by-zero", "mov %r0, -7\nmov %r1, 0\nsdiv32 %r0, %r1\nexit", b"", 0),
    ("smod64-by-zero", "mov %r0, -7\nsmod %r0, 0\nexit", b"", U64 - 6),
    ("smod32-by-zero", "lddw %r0, 0xffffffff80000001\nsmod32 %r0, 0\nexit", b"", 0x80000001),
    ("sdiv64-neg", "mov %r0, -7\nsdiv %r0, 2\nexit", b"", U64 - 2),
    ("smod64-neg-dividend", "mov %r0, -7\nsmod %r0, 2\nexit", b"", U64),
    ("smod64-neg-divisor", "mov %r0, 7\nsmod %r0, -2\nexit", b"", 1),
    ("sdiv32-neg", "mov32 %r0, -7\nsdiv32 %r0, 2\nexit", b"", 0xFFFFFFFD),
    ("smod32-neg", "mov32 %r0, -7\nsmod32 %r0, 2\nexit", b"", 0xFFFFFFFF),
    ("lsh32-imm-60", "mov %r0, 1\nlsh32 %r0, 60\nexit", b"", 1 << 28),
    ("lsh32-imm-minus4", "mov %r0, 1\nlsh32 %r0, -4\nexit", b"", 1 << 28),
    ("lsh64-reg-65", "mov %r0, 1\nmov %r1, 65\nlsh %r0, %r1\nexit", b"", 2),
    ("rsh32-reg-33", "mov32 %r0, 0x80000000\nmov %r1, 33\nrsh32 %r0, %r1\nexit", b"", 0x40000000),
    ("rsh64-imm-68", "lddw %r0, 0x8000000000000000\nrsh %r0, 68\nexit", b"", 1 << 59),
    ("arsh32", "mov32 %r0, 0x80000000\narsh32 %r0, 4\nexit", b"", 0xF8000000),
    ("arsh32-reg-36", "mov32 %r0, 0x80000000\nmov %r1, 36\narsh32 %r0, %r1\nexit", b"", 0xF8000000),
    ("arsh64", "lddw %r0, 0x8000000000000000\narsh %r0, 63\nexit", b"", U64),
    ("arsh64-reg-127", "lddw %r0, 0x8000000000000000\nmov %r1, 127\narsh %r0, %r1\nexit", b"", U64),
    ("add32-wraps", "mov %r0, -1\nadd32 %r0, 1\nexit", b"", 0),
    ("add32-zero-extends", "mov %r0, -1\nadd32 %r0, 0\nexit", b"", 0xFFFFFFFF),
    ("mov32-imm", "mov32 %r0, -1\nexit", b"", 0xFFFFFFFF),
    ("mov32-reg", "mov %r1, -1\nmov32 %r0, %r1\nexit", b"", 0xFFFFFFFF),
    ("add64-imm-sign-extends", "mov %r0, 0\nadd %r0, -1\nexit", b"", U64),
    ("and64-imm-sign-extends", "mov %r0, -1\nand %r0, 0xffff0000\nexit", b"", 0xFFFFFFFFFFFF0000),
    ("mul32", "mov32 %r0, 0x10000\nmul32 %r0, 0x10001\nexit", b"", 0x10000),
    ("mul64", "lddw %r0, 0x100000001\nmul %r0, -1\nexit", b"", (-0x100000001) & U64),
    ("sub32", "mov %r0, 0\nsub32 %r0, 1\nexit", b"", 0xFFFFFFFF),
    ("xor-or", "mov %r0, 0xf0\nxor %r0, 0xff\nor %r0, 0x100\nexit", b"", 0x10F),
    ("neg32", "mov %r0, 1\nneg32 %r0\nexit", b"", 0xFFFFFFFF),
    ("neg64", "mov %r0, 1\nneg %r0\nexit", b"", U64),
    ("neg32-intmin", "mov32 %r0, 0x80000000\nneg32 %r0\nexit", b"", 0x80000000),
    ("movsx864", "mov %r1, 0x80\nmovsx864 %r0, %r1\nexit", b"", 0xFFFFFFFFFFFFFF80),
    ("movsx832", "mov %r1, 0x180\nmovsx832 %r0, %r1\nexit", b"", 0xFFFFFF80),
    ("movsx1664", "mov %r1, 0x8000\nmovsx1664 %r0, %r1\nexit", b"", 0xFFFFFFFFFFFF8000),
    ("movsx1632", "mov %r1, 0x18000\nmovsx1632 %r0, %r1\nexit", b"", 0xFFFF8000),
    ("movsx3264", "mov32 %r1, 0x80000000\nmovsx3264 %r0, %r1\nexit", b"", 0xFFFFFFFF80000000),
    ("movsx864-positive", "mov %r1, 0x17f\nmovsx864 %r0, %r1\nexit", b"", 0x7F),
    ("le16", "lddw %r0, 0x1122334455667788\nle16 %r0\nexit", b"", 0x7788),
    ("le32", "lddw %r0, 0x1122334455667788\nle32 %r0\nexit", b"", 0x55667788),
    ("le64", "lddw %r0, 0x1122334455667788\nle64 %r0\nexit", b"", 0x1122334455667788),
    ("be16", "lddw %r0, 0x1122334455667788\nbe16 %r0\nexit", b"", 0x8877),
    ("be32", "lddw %r0, 0x1122334455667788\nbe32 %r0\nexit", b"", 0x88776655),
    ("be64", "lddw %r0, 0x1122334455667788\nbe64 %r0\nexit", b"", 0x8877665544332211),
    ("bswap16", "lddw %r0, 0x1122334455667788\nbswap16 %r0\nexit", b"", 0x8877),
    ("bswap32", "lddw %r0, 0x1122334455667788\nbswap32 %r0\nexit", b"", 0x88776655),
    ("bswap64", "lddw %r0, 0x1122334455667788\nbswap64 %r0\nexit", b"", 0x8877665544332211),
    ("lddw", "lddw %r0, 0xfedcba9876543210\nexit", b"", 0xFEDCBA9876543210),
    ("udiv32-by-zero", "mov %r0, -1\ndiv32 %r0, 0\nexit", b"", 0),
    ("umod64-by-zero", "mov %r0, -7\nmod %r0, 0\nexit", b"", U64 - 6),
    ("umod32-by-zero-truncates", "lddw %r0, 0x1234567800000009\nmov %r1, 0\nmod32 %r0, %r1\nexit", b"", 9),
    ("sdiv32-int-min-by-minus1", "mov32 %r0, 0x80000000\nmov32 %r1, -1\nsdiv32 %r0, %r1\nexit",
     b"", 0x80000000),
    ("smod32-int-min-by-minus1", "mov32 %r0, 0x80000000\nsmod32 %r0, -1\nexit", b"", 0),
    ("sdiv64-by-zero-alu", "mov %r0, -5\nmov %r1, 0\nsdiv %r0, %r1\nexit", b"", 0),
    ("smod64-by-zero-alu", "mov %r0, -5\nsmod %r0, 0\nexit", b"", U64 - 4),
    ("smod32-by-zero-alu", "mov %r0, -5\nmov %r1, 0\nsmod32 %r0, %r1\nexit", b"", 0xFFFFFFFB),
    ("lsh32-imm-high", "mov %r0, 1\nlsh32 %r0, 33\nexit", b"", 2),
    ("rsh32-masked-reg", "mov %r0, -1\nmov %r1, 36\nrsh32 %r0, %r1\nexit", b"", 0x0FFFFFFF),
    ("arsh64-masked", "mov %r0, -16\narsh %r0, 66\nexit", b"", U64 - 3),
    ("rsh64-imm-high", "mov %r0, -1\nrsh %r0, 65\nexit", b"", U64 >> 1),
    ("lsh64-imm-neg", "mov %r0, 1\nlsh %r0, -1\nexit", b"", 1 << 63),
    ("arsh32-imm-neg", "mov32 %r0, 0x80000000\narsh32 %r0, -1\nexit", b"", 0xFFFFFFFF),
    ("udiv32-reg-high-bits-ignored", "mov %r0, 12\nlddw %r1, 0x100000000\ndiv32 %r0, %r1\nexit", b"", 0),
    ("mov32-zero-extends", "mov %r0, -1\nmov32 %r0, %r0\nexit", b"", 0xFFFFFFFF),
    ("movsx1632-alu", "mov %r1, 0x8000\nmovsx1632 %r0, %r1\nexit", b"", 0xFFFF8000),

    # jumps: JMP32 reads the low halves, signed and unsigned conditions, gotol, loops
    ("jmp32-compares-low-half", "lddw %r1, 0x100000000\nmov %r0, 1\njeq32 %r1, 0, +1\nmov %r0, 2\nexit",
     b"", 1),
    ("jmp64-sees-high-half", "lddw %r1, 0x100000000\nmov %r0, 1\njeq %r1, 0, +1\nmov %r0, 2\nexit", b"", 2),
    ("jsgt32-signed", "mov32 %r1, -1\nmov %r0, 1\njsgt32 %r1, 0, +1\nmov %r0, 2\nexit", b"", 2),
    ("jgt32-unsigned", "mov32 %r1, -1\nmov %r0, 1\njgt32 %r1, 0, +1\nmov %r0, 2\nexit", b"", 1),
    ("jslt64-imm-sign-extended", "mov %r1, -2\nmov %r0, 1\njslt %r1, -1, +1\nmov %r0, 2\nexit", b"", 1),
    ("jgt64-imm-sign-extended", "mov %r1, 5\nmov %r0, 1\njgt %r1, -1, +1\nmov %r0, 2\nexit", b"", 2),
    ("jset-reg", "mov %r1, 6\nmov %r2, 4\nmov %r0, 1\njset %r1, %r2, +1\nmov %r0, 2\nexit", b"", 1),
    ("jne32-reg", "lddw %r1, 0x100000007\nmov %r2, 7\nmov %r0, 1\njne32 %r1, %r2, +1\nmov %r0, 2\nexit",
     b"", 2),
    ("jsle32-reg", "mov32 %r1, 0x80000000\nmov %r2, 0\nmov %r0, 1\njsle32 %r1, %r2, +1\nmov %r0, 2\nexit",
     b"", 1),
    ("gotol", "mov %r0, 1\nja32 +1\nmov %r0, 2\nexit", b"", 1),
    ("gotol-backward", "mov %r0, 0\nja32 +2\nmov %r0, 5\nexit\nja32 -3", b"", 5),
    ("loop", "mov %r0, 0\nmov %r1, 10\nloop:\nadd %r0, %r1\nsub %r1, 1\njne %r1, 0, loop\nexit", b"", 55),
    ("jmp32-ignores-high", "lddw %r1, 0x100000001\nmov %r0, 0\njeq32 %r1, 1, +1\nexit\nmov %r0, 1\nexit",
     b"", 1),
    ("jsgt-signed", "mov %r1, -1\nmov %r0, 0\njsgt %r1, 0, +1\nmov %r0, 1\nexit", b"", 1),
    ("jset", "mov %r1, 6\nmov %r0, 0\njset %r1, 2, +1\nexit\nmov %r0, 1\nexit", b"", 1),

    # stack memory and atomics: sign-extending loads, immediates, alignment, fetch forms, cmpxchg (mem =
    # MEM16)
    ("ldxsb", "mov %r1, 0x80\nstxb [%r10-1], %r1\nldxsb %r0, [%r10-1]\nexit", MEM16, 0xFFFFFFFFFFFFFF80),
    ("ldxsh", "mov %r1, 0x8001\nstxh [%r10-2], %r1\nldxsh %r0, [%r10-2]\nexit", MEM16, 0xFFFFFFFFFFFF8001),
    ("ldxsw", "mov32 %r1, 0x80000000\nstxw [%r10-4], %r1\nldxsw %r0, [%r10-4]\nexit",
     MEM16, 0xFFFFFFFF80000000),
    ("ldxb-zero-extends", "mov %r1, 0x80\nstxb [%r10-1], %r1\nldxb %r0, [%r10-1]\nexit", MEM16, 0x80),
    ("stdw-imm-sign-extends", "stdw [%r10-8], -1\nldxdw %r0, [%r10-8]\nexit", MEM16, U64),
    ("stw-imm", "stdw [%r10-8], 0\nstw [%r10-8], -1\nldxdw %r0, [%r10-8]\nexit", MEM16, 0xFFFFFFFF),
    ("stack-starts-zeroed", "ldxdw %r0, [%r10-512]\nexit", MEM16, 0),
    ("unaligned-stack", "stdw [%r10-11], -1\nldxw %r0, [%r10-9]\nexit", MEM16, 0xFFFFFFFF),
    ("add64", "stdw [%r10-8], 10\nmov %r1, 5\nlock add [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit",
     MEM16, 15),
    ("fetch-add64-old", "stdw [%r10-8], 10\nmov %r1, 5\nlock fetch add [%r10-8], %r1\nmov %r0, %r1\nexit",
     MEM16, 10),
    ("or64", "stdw [%r10-8], 0x10\nmov %r1, 1\nlock or [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit",
     MEM16, 0x11),
    ("fetch-or64", "stdw [%r10-8], 0x10\nmov %r1, 1\nlock fetch or [%r10-8], %r1\nmov %r0, %r1\nexit",
     MEM16, 0x10),
    ("and64", "stdw [%r10-8], 0x13\nmov %r1, 6\nlock and [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit",
     MEM16, 2),
    ("fetch-and64", "stdw [%r10-8], 0x13\nmov %r1, 6\nlock fetch and [%r10-8], %r1\nmov %r0, %r1\nexit",
     MEM16, 0x13),
    ("xor64", "stdw [%r10-8], 0x13\nmov %r1, 6\nlock xor [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit",
     MEM16, 0x15),
    ("fetch-xor64", "stdw [%r10-8], 0x13\nmov %r1, 6\nlock fetch xor [%r10-8], %r1\nmov %r0, %r1\nexit",
     MEM16, 0x13),
    ("xchg64", "stdw [%r10-8], 7\nmov %r1, 9\nlock xchg [%r10-8], %r1\nldxdw %r0, [%r10-8]\nlsh %r0, 8\n"
     "or %r0, %r1\nexit", MEM16, 0x907),
    ("cmpxchg64-success", "stdw [%r10-8], 7\nmov %r0, 7\nmov %r1, 9\nlock cmpxchg [%r10-8], %r1\n"
     "ldxdw %r2, [%r10-8]\nlsh %r0, 8\nor %r0, %r2\nexit", MEM16, 0x709),
    ("cmpxchg64-failure", "stdw [%r10-8], 7\nmov %r0, 8\nmov %r1, 9\nlock cmpxchg [%r10-8], %r1\n"
     "ldxdw %r2, [%r10-8]\nlsh %r0, 8\nor %r0, %r2\nexit", MEM16, 0x707),
    ("add32-keeps-high-half", "stdw [%r10-8], -1\nmov %r1, 1\nlock add32 [%r10-8], %r1\n"
     "ldxdw %r0, [%r10-8]\nexit", MEM16, 0xFFFFFFFF00000000),
    ("fetch-add32-zero-extends", "stdw [%r10-8], -1\nmov %r1, 1\nlock fetch add32 [%r10-8], %r1\n"
     "mov %r0, %r1\nexit", MEM16, 0xFFFFFFFF),
    ("fetch-or32", "stdw [%r10-8], -1\nlddw %r1, 0x100000000\nlock fetch or32 [%r10-8], %r1\n"
     "mov %r0, %r1\nexit", MEM16, 0xFFFFFFFF),
    ("fetch-and32", "stdw [%r10-8], 0x13\nmov %r1, 6\nlock fetch and32 [%r10-8], %r1\n"
     "ldxw %r0, [%r10-8]\nlsh %r0, 8\nor %r0, %r1\nexit", MEM16, 0x213),
    ("fetch-xor32", "stdw [%r10-8], 0x13\nmov %r1, 6\nlock fetch xor32 [%r10-8], %r1\n"
     "ldxw %r0, [%r10-8]\nlsh %r0, 8\nor %r0, %r1\nexit", MEM16, 0x1513),
    ("or32-and32-xor32", "stdw [%r10-8], 0\nmov %r1, 0xff\nlock or32 [%r10-8], %r1\nmov %r1, 0x3c\n"
     "lock and32 [%r10-8], %r1\nmov %r1, 0x11\nlock xor32 [%r10-8], %r1\nldxdw %r0, [%r10-8]\nexit",
     MEM16, 0x2D),
    ("xchg32-zero-extends", "stdw [%r10-8], -1\nmov %r1, 9\nlock xchg32 [%r10-8], %r1\nmov %r0, %r1\nexit",
     MEM16, 0xFFFFFFFF),
    ("cmpxchg32-compares-low-half-of-r0", "stdw [%r10-8], 7\nlddw %r0, 0x100000007\nmov %r1, 9\n"
     "lock cmpxchg32 [%r10-8], %r1\nldxdw %r2, [%r10-8]\nlsh %r0, 8\nor %r0, %r2\nexit", MEM16, 0x709),
    ("cmpxchg32-failure", "stdw [%r10-8], -1\nmov %r0, 8\nmov %r1, 9\nlock cmpxchg32 [%r10-8], %r1\nexit",
     MEM16, 0xFFFFFFFF),
    ("atomic-on-mem", "mov %r2, 3\nlock add [%r1+8], %r2\nldxdw %r0, [%r1+8]\nexit", MEM16, 4),
    ("atomic-misaligned", "stdw [%r10-16], 0\nstdw [%r10-8], 0\nmov %r1, 3\n"
     "lock fetch add [%r10-12], %r1\nldxdw %r0, [%r10-12]\nexit", MEM16, 3),
    ("ldxsb-mem", "stb [%r10-1], 0x80\nldxsb %r0, [%r10-1]\nexit", b"", U64 - 127),
    ("ldxsh-mem", "sth [%r10-2], 0x8001\nldxsh %r0, [%r10-2]\nexit", b"", 0xFFFFFFFFFFFF8001),
    ("ldxsw-mem", "stw [%r10-4], -2\nldxsw %r0, [%r10-4]\nexit", b"", U64 - 1),
    ("stack-zeroed", "ldxdw %r0, [%r10-8]\nexit", b"", 0),
    ("fetch-add32-zero-extends-mem", "stw [%r10-4], -1\nmov %r1, 1\nlock fetch add32 [%r10-4], %r1\n"
     "mov %r0, %r1\nexit", b"", 0xFFFFFFFF),
    ("xchg64-mem", "stdw [%r10-8], 5\nmov %r1, 9\nlock xchg [%r10-8], %r1\nldxdw %r0, [%r10-8]\n"
     "add %r0, %r1\nexit", b"", 14),
    ("cmpxchg-match", "stdw [%r10-8], 5\nmov %r0, 5\nmov %r1, 7\nlock cmpxchg [%r10-8], %r1\n"
     "ldxdw %r2, [%r10-8]\nlsh %r0, 8\nor %r0, %r2\nexit", b"", 0x507),
    ("cmpxchg-miss", "stdw [%r10-8], 5\nmov %r0, 4\nmov %r1, 7\nlock cmpxchg [%r10-8], %r1\n"
     "ldxdw %r2, [%r10-8]\nlsh %r0, 8\nor %r0, %r2\nexit", b"", 0x505),
    ("cmpxchg32-zero-extends", "stw [%r10-4], -1\nmov %r0, -1\nmov %r1, 7\nlock cmpxchg32 [%r10-4], %r1\n"
     "exit", b"", 0xFFFFFFFF),

    # memory through r1 (the mem buffer)
    ("store-load-mem", "stw [%r1+4], 0x11223344\nldxh %r0, [%r1+6]\nexit", bytes(8), 0x1122),
    ("atomic-add-mem", "mov %r2, 5\nlock add [%r1], %r2\nldxdw %r0, [%r1]\nexit", bytes(8), 5),
    ("atomic-fetch-or32-mem", "stw [%r1], 1\nmov %r2, 6\nlock fetch or32 [%r1+0], %r2\nldxw %r0, [%r1]\n"
     "lsh %r0, 8\nor %r0, %r2\nexit", bytes(8), 0x701),
    ("unaligned-mem", "stdw [%r1+3], -1\nldxdw %r0, [%r1+2]\nexit", bytes(16), 0xFFFFFFFFFFFFFF00),

    # legacy packet loads (mem = PKT): out of range ends the run with r0 = 0
    ("ldabsw", "ldabsw 4\nexit", PKT, 0x04050607),
    ("ldabsh", "ldabsh 0\nexit", PKT, 0x0001),
    ("ldabsb", "ldabsb 15\nexit", PKT, 0x0F),
    ("ldindw", "mov %r2, 4\nldindw %r2, 2\nexit", PKT, 0x06070809),
    ("ldindh-neg-imm", "mov %r2, 4\nldindh %r2, -2\nexit", PKT, 0x0203),
    ("ldabsw-out-of-range-ends-with-0", "mov %r0, 7\nldabsw 13\nmov %r0, 99\nexit", PKT, 0),
    ("ldabsb-just-past-end", "ldabsb 16\nmov %r0, 99\nexit", PKT, 0),
    ("ldind-negative-offset", "mov %r2, -10\nldindb %r2, 0\nmov %r0, 99\nexit", PKT, 0),
    ("ldind-huge-offset", "lddw %r2, 0x100000000\nldindb %r2, 1\nexit", PKT, 1),
    ("out-of-range-in-subprogram-ends-the-run", "call local f\nmov %r0, 99\nexit\nf:\nldabsw 100\n"
     "mov %r0, 5\nexit", PKT, 0),

    # local calls, the frame pointer, helpers and callx
    ("local-call-preserves-r6", "mov %r6, 3\ncall local f\nadd %r0, %r6\nexit\nf:\nmov %r6, 100\n"
     "mov %r0, 4\nexit", b"", 7),
    ("local-call-own-stack", "stdw [%r10-8], 1\ncall local f\nldxdw %r1, [%r10-8]\nadd %r0, %r1\nexit\n"
     "f:\nstdw [%r10-8], 50\nldxdw %r0, [%r10-8]\nexit", b"", 51),
    ("pointer-to-caller-frame", "stdw [%r10-8], 11\nmov %r1, %r10\nadd %r1, -8\ncall local f\n"
     "ldxdw %r0, [%r10-8]\nexit\nf:\nldxdw %r0, [%r1]\nadd %r0, 1\nstxdw [%r1], %r0\nexit", b"", 12),
    ("frame-pointer-escapes", "mov %r1, %r10\nadd %r1, -16\nstdw [%r1], 9\nmov %r2, %r1\nand %r2, -8\n"
     "ldxdw %r0, [%r2]\nexit", b"", 9),
    ("helper-return-r1", "mov %r1, 42\ncall 5\nexit", b"", 42),
    ("callx", "mov %r1, 43\nmov %r2, 5\ncall %r2\nexit", b"", 43),

    # faults: (kind, pc, size), the same on both engines
    ("oob-load-past-mem", "ldxw %r0, [%r1+6]\nexit", bytes(8), Fault("oob_load", 0, 4)),
    ("oob-store-before-mem", "mov %r0, 0\nstb [%r1-1], 1\nexit", bytes(8), Fault("oob_store", 1, 1)),
    ("oob-null", "mov %r1, 0\nldxdw %r0, [%r1]\nexit", bytes(0), Fault("oob_load", 1, 8)),
    ("oob-stack-below", "ldxdw %r0, [%r10-520]\nexit", bytes(0), Fault("oob_load", 0, 8)),
    ("oob-stack-above", "stdw [%r10], 1\nexit", bytes(0), Fault("oob_store", 0, 8)),
    ("oob-atomic", "mov %r2, 1\nlock add [%r1+8], %r2\nexit", bytes(8), Fault("oob_store", 1, 8)),
    ("oob-in-callee", "call local f\nexit\nf:\nmov %r0, 0\nldxb %r0, [%r0]\nexit",
     bytes(0), Fault("oob_load", 3, 1)),
    ("unknown-helper", "call 77\nexit", bytes(0), Fault("unknown_helper", 0, None)),
    ("unknown-callx", "mov %r3, 999\ncall %r3\nexit", bytes(0), Fault("unknown_helper", 1, None)),
    ("fall-off-callee", FALL_OFF_CALLEE, bytes(0), Fault("fall_off", 2, None)),
]
OPT_LEVELS = (0, 2)


@pytest.mark.parametrize("opt_level", OPT_LEVELS, ids=lambda o: f"O{o}")
@pytest.mark.parametrize("name, program, mem, expected", CASES, ids=[c[0] for c in CASES])
def test_edge_case(name, program, mem, expected, opt_level):
    code = assemble(program) if isinstance(program, str) else program
    result, _ = Both(code, opt_level).both(mem)      # the interpreter's result, the JIT's equal
    if isinstance(expected, Fault):
        assert result[0] == "error"
        assert result[1:] == tuple(expected)
    else:
        assert result == expected


def test_case_ids_are_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))
