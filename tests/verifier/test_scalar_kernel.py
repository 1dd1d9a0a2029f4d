"""The scalar domain against the running kernel's verifier: straight-line programs over an
unknown value (bpf_get_prandom_u32) loaded at log level 2; every register the kernel prints
after an instruction (the fallthrough side of a branch), and the taken side of each branch
(its `from X to Y:` line), must print the same from our Scalar.

Register ids (`id=N`, the kernel's copies-linking) and precision marks (`P`) are not part of
the scalar domain and are dropped from the kernel's text before comparing."""
from __future__ import annotations

import os
import re

import pytest

from ebpfjit.isa.asm import assemble
from ebpfjit.isa.insn import decode
from ebpfjit.isa.opcodes import Kind, Source
from ebpfjit.verifier.scalar import Scalar, alu, alu_op_name, branch, parse_scalar

SEQUENCES = {
    "and-shift-neg": """
        and r0, 0xff
        lsh r0, 32
        mov r1, r0
        arsh r1, 60
        mov32 r2, r0
        neg r0
        mov r3, -5
        add r3, 1000000""",
    "branches": """
        mov r1, r0
        and r0, 0xff
        jgt r0, 10, +1
        add r0, 1
        jsgt r1, -3, +2
        jset r1, 8, +1
        mov32 r1, r1
        jlt32 r1, 0x7ffffff0, +0
        mov r2, r1""",
    "alu32-wrap": """
        mov32 r1, r0
        add32 r1, 0x7fffffff
        mov32 r2, r0
        and32 r2, 0xffff
        sub32 r2, 0x10000
        mul32 r2, 3
        xor r2, 0xf0
        or r2, 0x100
        rsh r2, 4""",
    "signed-compares": """
        mov r1, r0
        or r1, 0
        jsgt r1, 100, +6
        jslt r1, -100, +5
        add r1, 100
        mov r2, r1
        or r2, 0
        jsge32 r1, 50, +1
        rsh32 r2, 1""",
    "sign-extension": """
        mov32 r1, r0
        lsh r1, 32
        arsh r1, 32
        jsle r1, 0, +1
        mov r2, r1
        and r0, 0x3f
        sub r0, 32
        mov r3, r0
        mul r3, r0""",
    "jeq-jne-32": """
        mov r1, r0
        and r1, 0xf0
        jne r1, 0x10, +1
        mov r2, r1
        mov32 r3, r0
        jeq32 r3, 0, +1
        jle32 r3, 1, +0
        mov r4, r3""",
    "unsigned-range": """
        mov r1, r0
        or r1, 0
        lddw r3, 0x100000000
        jge r1, r3, +3
        jle r1, 0xffff, +2
        lsh r1, 2
        mov32 r2, r1
        jlt r0, 16, +0
        and r0, 0xffff
        mul r0, r1""",
}
# Where this domain is more precise than the kernel (6.x before range tracking for division
# and byte swaps): ours must be a subset of the kernel's state, not print the same.
AT_LEAST = {
    "div-mod-bswap": """
        mov r1, r0
        and r1, 0xfff
        mov r2, r1
        div r2, 10
        mov r3, r1
        mod r3, 7
        mov32 r4, r1
        sdiv32 r4, -3
        mov r5, r1
        be16 r5
        mov r6, r1
        smod r6, 5
        mov r7, r0
        movsx864 r7, r1
        mov32 r8, r0
        movsx1632 r8, r8
        mov r9, r0
        movsx3264 r9, r9
        bswap32 r9""",
}

_TRAILER = re.compile(r"^(\d+): \([0-9a-f]{2}\) .*?;\s*(R\d.*)$")
_FROM = re.compile(r"^from (\d+) to (\d+): (R.*)$")
_REG = re.compile(r"R(\d+)(?:_w)?=(.*?)(?= R\d+(?:_w)?=|$)")


def _normal(text: str) -> str:
    text = re.sub(r"id=\d+(?:[+-]\d+)?,?", "", text)
    text = text.replace(",)", ")")
    return text[1:] if text.startswith("P") else text


def _regs(text: str) -> dict[int, str]:
    return {int(r): _normal(v) for r, v in _REG.findall(text)
            if v.startswith(("scalar", "-", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9"))}


def _simulate(code: bytes):
    """Our states along the fallthrough path: after each pc, and the taken side of each
    conditional jump (keyed by pc)."""
    regs: dict[int, Scalar] = {}
    after, taken_at = {}, {}
    pc = 0
    for insn in decode(code):
        info = insn.info
        src = (regs.get(insn.src) if info.source is Source.X
               else Scalar.const(insn.imm))
        if info.kind is Kind.LDDW:
            regs[insn.dst] = Scalar.const(insn.imm)
        elif info.kind is Kind.CALL:
            regs = {r: s for r, s in regs.items() if r > 5}
            regs[0] = Scalar.unknown()
        elif info.kind in (Kind.ALU, Kind.NEG, Kind.ENDIAN):
            regs[insn.dst] = alu(alu_op_name(info, insn.off, insn.imm), regs.get(insn.dst, Scalar()),
                                 src if src is not None else Scalar(), info.width == 64)
        elif info.kind is Kind.JCOND:
            taken, fall = branch(info.op.name, regs[insn.dst], src, info.width == 32)
            side = {}
            if taken is not None:
                side = dict(regs)
                side[insn.dst] = taken[0]
                if info.source is Source.X:
                    side[insn.src] = taken[1]
            taken_at[pc] = side
            if fall is None:
                break
            regs[insn.dst] = fall[0]
            if info.source is Source.X:
                regs[insn.src] = fall[1]
        after[pc] = dict(regs)
        pc += insn.slots
    return after, taken_at


@pytest.mark.kernel
@pytest.mark.parametrize("name", sorted(SEQUENCES) + sorted(AT_LEAST))
def test_states_print_as_the_kernel_prints_them(kernel, name):
    from ebpfjit.objects.spec import ProgType

    exact = name in SEQUENCES
    code = assemble("call 7\n" + (SEQUENCES.get(name) or AT_LEAST[name]) + "\nmov r0, 0\nexit\n")

    def check(ours: Scalar, text: str, line: str):
        assert ours.within(parse_scalar(text)), (name, line, ours.debug())
        if exact:
            assert ours.format() == text, (name, line, ours.debug())

    log = kernel.KernelProgram(ProgType.SOCKET_FILTER, code, log_level=2).verifier_log
    after, taken_at = _simulate(code)
    seen, compared = set(), 0
    for line in log.splitlines():
        m = _TRAILER.match(line)
        if m and int(m.group(1)) not in seen and int(m.group(1)) in after:
            pc = int(m.group(1))
            seen.add(pc)
            for reg, text in _regs(m.group(2)).items():
                check(after[pc][reg], text, line)
                compared += 1
        m = _FROM.match(line)
        if m and int(m.group(1)) in taken_at:
            pc = int(m.group(1))
            for reg, text in _regs(m.group(3)).items():
                check(taken_at[pc][reg], text, line)
                compared += 1
            del taken_at[pc]
    assert compared >= 5, log


_IMMS = [0, 1, 3, 7, 8, 15, 31, 32, 63, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, -1, -2, -8, -256,
         -0x80000000, 0x12345678]
_ALU = ["add", "sub", "mul", "and", "or", "xor", "neg", "lsh", "rsh", "arsh", "mov", "le16",
        "be16", "be32", "bswap64"]
_JMP = ["jeq", "jne", "jgt", "jge", "jlt", "jle", "jsgt", "jsge", "jslt", "jsle", "jset"]


def _random_program(rng) -> str:
    """Straight-line code over two independent unknowns (r6 and r0): ALU with immediates or
    the other register, and conditional jumps by +0 (both sides land on the next
    instruction, so the kernel prints both: the trailer and a `from X to X+1:` line)."""
    lines = ["mov r6, r0", "call 7"]
    for _ in range(rng.randint(6, 14)):
        dst = rng.choice(["r0", "r6"])
        w = rng.choice(["", "32"])
        if rng.random() < 0.6:
            op = rng.choice(_ALU)
            if op in ("le16", "be16", "be32", "bswap64"):
                lines.append(f"{op} {dst}")
            elif op == "neg":
                lines.append(f"neg{w} {dst}")
            elif op in ("lsh", "rsh", "arsh"):
                lines.append(f"{op}{w} {dst}, {rng.randint(0, 31 if w else 63)}")
            elif rng.random() < 0.3 and op != "mov":
                lines.append(f"{op}{w} {dst}, {'r6' if dst == 'r0' else 'r0'}")
            else:
                lines.append(f"{op}{w} {dst}, {rng.choice(_IMMS):#x}".replace("0x-", "-0x"))
        else:
            op = rng.choice(_JMP)
            other = rng.choice(_IMMS) if rng.random() < 0.7 else ("r6" if dst == "r0" else "r0")
            other = f"{other:#x}".replace("0x-", "-0x") if isinstance(other, int) else other
            lines.append(f"{op}{w} {dst}, {other}, +0")
    return "\n".join(lines)


@pytest.mark.kernel
@pytest.mark.parametrize("seed", range(int(os.environ.get("EBPFJIT_VERIFIER_KERNEL_SEEDS", "40"))))
def test_random_sequences_print_as_the_kernel_prints_them(kernel, seed):
    import random

    from ebpfjit.objects.spec import ProgType
    rng = random.Random(seed)
    src = _random_program(rng)
    code = assemble("call 7\n" + src + "\nmov r0, 0\nexit\n")
    log = kernel.KernelProgram(ProgType.SOCKET_FILTER, code, log_level=2).verifier_log
    after, taken_at = _simulate(code)
    # The first path the kernel walks is our fallthrough path (it pushes every taken side);
    # the first `from X to Y:` line is the taken side of that path's last branch. Later
    # lines belong to other paths.
    mismatches, compared = [], 0
    lines = log.splitlines()
    first_from = next((i for i, line in enumerate(lines) if _FROM.match(line)), len(lines))
    checks = []
    for line in lines[:first_from]:
        m = _TRAILER.match(line)
        if m and int(m.group(1)) in after:
            checks.append((line, after[int(m.group(1))], m.group(2)))
    if first_from < len(lines):
        m = _FROM.match(lines[first_from])
        if int(m.group(1)) in taken_at:
            checks.append((lines[first_from], taken_at[int(m.group(1))], m.group(3)))
    # After a JSET's fallthrough the kernel (6.18) keeps only what the tnum says, while this
    # domain keeps the ranges too: from there on ours need only be within the kernel's.
    jset = re.search(r"^(\d+): \([0-9a-f]{2}\) if \w+ & ", log, re.M)
    jset_pc = int(jset.group(1)) if jset else None
    for line, state, printed in checks:
        for reg, text in _regs(printed).items():
            ours = state.get(reg)
            if ours is None:
                continue
            compared += 1
            assert ours.within(parse_scalar(text)), (src, line, ours.debug())
            pc = int(re.match(r"(?:from )?(\d+)", line).group(1))
            if ours.format() != text and (jset_pc is None or pc < jset_pc):
                mismatches.append((line, ours.format()))
    assert compared >= 3, (src, log)
    assert not mismatches, (src, mismatches)
