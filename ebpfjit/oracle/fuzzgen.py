"""Differential fuzzing against the kernel: random verifier-friendly programs, run everywhere.

`generate(seed)` builds a deterministic random program (a `FuzzProgram`: a tree of units) that
the kernel verifier accepts as an XDP program in almost all cases. It covers every instruction
form: ALU/ALU64 with imm and reg for every op (incl. the v4 sdiv/smod, movsx and bswap), le/be,
all JMP/JMP32 conditions (forward branches, if/else with `ja` and `gotol`), loads and stores of
every size incl. ldsx on the stack and the packet, spill/fill, stack atomics, atomics on an
ARRAY map value (bpf_map_lookup_elem + NULL check), lddw, bounded loops, a bpf-to-bpf
subprogram, and lookup/update/delete on a HASH map.

Program shape (the invariant that lets units be removed freely while minimising: between two
units r0-r9 all hold scalars, the stack data area is initialised and the packet pointer is
spilled at r10-8):

    prologue   r2 = ctx->data, r3 = ctx->data_end; exit 1 unless len >= PKT_LEN; spill r2;
               load r0-r9 from packet[0:80]; zero the stack data area
    body       random units
    epilogue   packet[0:80] = r0-r9, packet[80:208] = the stack data area, return r0 & 3

The "raw" variant replaces the prologue's ctx loads with r1 = packet, r2 = length (the
conformance convention) and keeps the body identical; it runs on our engines without any
context conversion.

`run_case` runs one program on the kernel (the oracle) and on our engines and compares verdict,
output packet and map contents; `minimize` delta-debugs the body of a disagreeing program;
`Corpus` files (tests/regressions/*.json) keep them. `python -m ebpfjit.fuzzgen --seconds N`
is the long-run mode.

`random_insn` / `random_insns` are the unstructured side of the same generator: random
decodable instructions (not verifier-friendly) for the engine-only fuzzers of the test suite;
`differential_program` the structured engine-only side (valid programs that may fault, run out
of budget or read registers calls leave zero), for the interpreter-vs-JIT differential tests.

Must not import: cli.

Imports: ebpfjit.engine, ebpfjit.api, ebpfjit.errors, ebpfjit.isa, ebpfjit.jit, ebpfjit.objects,
    ebpfjit.oracle.kernel, ebpfjit.runtime
"""
from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import pathlib
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ..engine import Engine
from ..engine import parse_engine as _parse_engine
from ..errors import EbpfError, KernelError
from ..isa.disasm import disassemble
from ..isa.insn import Instruction, check_fields, decode, encode
from ..isa.insn import encode as encode_insns
from ..isa.opcodes import ATOMIC_IMMS, OPCODES, AluOp, AtomicOp, Class, JmpOp, Kind, Mode, Size, Source
from ..objects.spec import MapSpec, MapType, ObjectSpec, ProgramSpec, ProgType
from . import kernel

__all__ = ["PKT_LEN", "MAPS", "FuzzProgram", "generate", "packets_for", "random_insn", "random_insns",
           "reads_frame_address", "DIFF_MEM_SIZE", "differential_program", "Outcome", "Result",
           "KernelRunner", "OurRunner", "run_case", "minimize", "save_case", "load_case",
           "replay_case", "fuzz", "main"]

PKT_LEN = 256                 # every generated packet is this long; the prologue checks it
REG_OUT = 0                   # packet[0:80]: r0-r9 in and out
STACK_OUT = 80                # packet[80:208]: the stack data area at the end
PKT_SPILL = -8                # r10-8 holds the packet pointer (main frame)
SPARE = -16                   # r10-16: epilogue scratch
DATA_LO, DATA_HI = -144, -16  # main frame data area [DATA_LO, DATA_HI), 16 slots
SUB_LO, SUB_HI = -64, 0       # subprogram frame data area, 8 slots
ARRAY_VALUE = 64
HASH_MAX = 4

# Map index 0 and 1 in every program (lddw src=1, imm = index).
MAPS = (MapSpec("fz_array", MapType.ARRAY, 4, ARRAY_VALUE, 4),
        MapSpec("fz_hash", MapType.HASH, 4, 8, HASH_MAX))
MAP_ARRAY, MAP_HASH = 0, 1
HELPER_LOOKUP, HELPER_UPDATE, HELPER_DELETE = 1, 2, 3

XDP_DATA, XDP_DATA_END = 0, 4


# --------------------------------------------------------------------------------------------
# Instruction constructors
# --------------------------------------------------------------------------------------------

def _op(cls: int, code: int, src: int = Source.K) -> int:
    return cls | code | src


def alu(op: AluOp, dst: int, src: int | None = None, imm: int = 0, *, w64: bool = True,
        off: int = 0) -> Instruction:
    cls = Class.ALU64 if w64 else Class.ALU
    if src is None:
        return Instruction(_op(cls, op, Source.K), dst, 0, off, imm)
    return Instruction(_op(cls, op, Source.X), dst, src, off, 0)


def mov(dst: int, src: int | None = None, imm: int = 0, w64: bool = True) -> Instruction:
    return alu(AluOp.MOV, dst, src, imm, w64=w64)


def ldx(size: Size, dst: int, src: int, off: int, *, sx: bool = False) -> Instruction:
    return Instruction((Mode.MEMSX if sx else Mode.MEM) | size | Class.LDX, dst, src, off, 0)


def stx(size: Size, dst: int, off: int, src: int) -> Instruction:
    return Instruction(Mode.MEM | size | Class.STX, dst, src, off, 0)


def st(size: Size, dst: int, off: int, imm: int) -> Instruction:
    return Instruction(Mode.MEM | size | Class.ST, dst, 0, off, imm)


def atomic(size: Size, dst: int, off: int, src: int, op: int) -> Instruction:
    return Instruction(Mode.ATOMIC | size | Class.STX, dst, src, off, op)


def _cmpxchg32_zext(size: Size, op: int) -> list[Item]:
    """`w0 = w0` after a 32-bit cmpxchg. The x86-64 kernel JIT leaves r0's upper half unchanged
    when the compare succeeds unless its verifier inserts a zero-extension, which it can miss
    when state pruning cuts the path that reads r0 as 64 bits (tests/regressions has a case).
    RFC 9669 (and our engines) always zero-extend; the explicit move keeps fuzzing comparing
    specified behaviour instead of rediscovering that kernel bug."""
    if size is Size.W and op == AtomicOp.CMPXCHG:
        return [Instruction(Class.ALU | Source.X | AluOp.MOV, 0, 0, 0, 0)]
    return []


def lddw(dst: int, value: int, src: int = 0) -> Instruction:
    return Instruction(0x18, dst, src, 0, value & 0xFFFFFFFFFFFFFFFF)


def call_helper(helper: int) -> Instruction:
    return Instruction(JmpOp.CALL | Class.JMP, 0, 0, 0, helper)


EXIT = Instruction(JmpOp.EXIT | Class.JMP)


# --------------------------------------------------------------------------------------------
# The program tree
# --------------------------------------------------------------------------------------------

class Label:
    """A position in the emitted program; identity is the name."""
    __slots__ = ()


@dataclass
class Jump:
    """A jump to a label. `insn` carries the opcode, registers and imm; the offset (or the imm of
    `gotol`, or of a local call) is filled in at layout."""
    insn: Instruction
    target: Label


SUBPROG = Label()   # entry of the bpf-to-bpf subprogram

Item = Instruction | Label | Jump


@dataclass
class Unit:
    """One removable piece of the body. `kind` names it (stats, minimisation reports); `head`
    and `tail` are its own items; `blocks` are nested bodies laid out by `layout`."""
    kind: str
    items: list[Item] = field(default_factory=list)
    blocks: list[list[Unit]] = field(default_factory=list)
    # How to lay out the nested blocks: a callable(list of emitted blocks) -> items.
    shape: Callable[[list[list[Item]]], list[Item]] | None = None

    def emit(self) -> list[Item]:
        if self.shape is None:
            return list(self.items)
        return self.shape([emit_units(b) for b in self.blocks])


def emit_units(units: Iterable[Unit]) -> list[Item]:
    out: list[Item] = []
    for u in units:
        out.extend(u.emit())
    return out


def count_units(units: Iterable[Unit]) -> int:
    return sum(1 + sum(count_units(b) for b in u.blocks) for u in units)


def layout(items: Sequence[Item]) -> list[Instruction]:
    """Resolve labels: jumps get their offsets (gotol and local calls their imm)."""
    pcs: dict[int, int] = {}
    pc = 0
    for it in items:
        if isinstance(it, Label):
            pcs[id(it)] = pc
        else:
            pc += 2 if isinstance(it, Instruction) and it.opcode == 0x18 else 1
    out: list[Instruction] = []
    pc = 0
    for it in items:
        if isinstance(it, Label):
            continue
        if isinstance(it, Jump):
            rel = pcs[id(it.target)] - (pc + 1)
            i = it.insn
            if i.opcode == (JmpOp.JA | Class.JMP32) or i.opcode == (JmpOp.CALL | Class.JMP):
                out.append(Instruction(i.opcode, i.dst, i.src, 0, rel))
            else:
                if not -32768 <= rel < 32768:
                    raise ValueError(f"jump offset {rel} out of range")
                out.append(Instruction(i.opcode, i.dst, i.src, rel, i.imm))
            pc += 1
        else:
            out.append(it)
            pc += it.slots
    return out


@dataclass
class FuzzProgram:
    """A generated program: the body (main frame) and the subprogram's body."""
    seed: str
    body: list[Unit]
    sub: list[Unit]

    def uses_subprog(self) -> bool:
        return any(isinstance(it, Jump) and it.target is SUBPROG for it in emit_units(self.body))

    def uses_maps(self) -> bool:
        return any(isinstance(it, Instruction) and it.opcode == 0x18 and it.src == 1
                   for it in self.items())

    def items(self, variant: str = "xdp") -> list[Item]:
        out = _prologue(variant) + emit_units(self.body) + _epilogue()
        if self.uses_subprog():
            out += [SUBPROG] + _sub_prologue() + emit_units(self.sub) + [EXIT]
        return out

    def insns(self, variant: str = "xdp") -> list[Instruction]:
        return layout(self.items(variant))

    def code(self, variant: str = "xdp") -> bytes:
        return encode(self.insns(variant))

    def replace(self, body: list[Unit] | None = None, sub: list[Unit] | None = None) -> FuzzProgram:
        return FuzzProgram(self.seed, self.body if body is None else body,
                           self.sub if sub is None else sub)


def _prologue(variant: str) -> list[Item]:
    short = Label()
    ok = Label()
    if variant == "xdp":
        head: list[Item] = [ldx(Size.W, 2, 1, XDP_DATA), ldx(Size.W, 3, 1, XDP_DATA_END)]
    elif variant == "raw":
        # r1 = packet, r2 = length (conformance convention): make the same r2/r3 pair.
        head = [mov(3, 1), alu(AluOp.ADD, 3, 2), mov(2, 1)]
    else:
        raise ValueError(f"unknown variant {variant!r} (xdp or raw)")
    out = head + [
        mov(4, 2), alu(AluOp.ADD, 4, imm=PKT_LEN),
        Jump(Instruction(JmpOp.JGT | Source.X | Class.JMP, 4, 3), short),
        Jump(Instruction(JmpOp.JA | Class.JMP), ok),
        short, mov(0, imm=1), EXIT,
        ok, stx(Size.DW, 10, PKT_SPILL, 2)]
    for r in (0, 1, 3, 4, 5, 6, 7, 8, 9, 2):
        out.append(ldx(Size.DW, r, 2, REG_OUT + 8 * r))
    for off in range(DATA_LO, DATA_HI, 8):
        out.append(st(Size.DW, 10, off, 0))
    return out


def _epilogue() -> list[Item]:
    out: list[Item] = [stx(Size.DW, 10, SPARE, 9), ldx(Size.DW, 9, 10, PKT_SPILL)]
    out += [stx(Size.DW, 9, REG_OUT + 8 * r, r) for r in range(9)]
    out += [ldx(Size.DW, 8, 10, SPARE), stx(Size.DW, 9, REG_OUT + 72, 8)]
    for i, off in enumerate(range(DATA_LO, DATA_HI, 8)):
        out += [ldx(Size.DW, 8, 10, off), stx(Size.DW, 9, STACK_OUT + 8 * i, 8)]
    out += [alu(AluOp.AND, 0, imm=3), EXIT]
    return out


def _sub_prologue() -> list[Item]:
    # Callee: r1-r5 are the caller's scalars; give r0 and r6-r9 values, zero the data area.
    out: list[Item] = [mov(0, 1), alu(AluOp.XOR, 0, 2), mov(6, 3), mov(7, 4), mov(8, 5),
                       mov(9, 1), alu(AluOp.ADD, 9, imm=0x1234)]
    out += [st(Size.DW, 10, off, 0) for off in range(SUB_LO, SUB_HI, 8)]
    return out


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------

ALU_OPS = (AluOp.ADD, AluOp.SUB, AluOp.MUL, AluOp.DIV, AluOp.OR, AluOp.AND, AluOp.LSH,
           AluOp.RSH, AluOp.NEG, AluOp.MOD, AluOp.XOR, AluOp.MOV, AluOp.ARSH)
JMP_OPS = (JmpOp.JEQ, JmpOp.JGT, JmpOp.JGE, JmpOp.JSET, JmpOp.JNE, JmpOp.JSGT, JmpOp.JSGE,
           JmpOp.JLT, JmpOp.JLE, JmpOp.JSLT, JmpOp.JSLE)
ATOMIC_OPS = (AtomicOp.ADD, AtomicOp.OR, AtomicOp.AND, AtomicOp.XOR,
              AtomicOp.ADD | AtomicOp.FETCH, AtomicOp.OR | AtomicOp.FETCH,
              AtomicOp.AND | AtomicOp.FETCH, AtomicOp.XOR | AtomicOp.FETCH,
              AtomicOp.XCHG, AtomicOp.CMPXCHG)
SIZES = (Size.B, Size.H, Size.W, Size.DW)
INTERESTING_IMMS = (0, 1, -1, 2, 7, 8, 31, 32, 63, 64, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF,
                    0x7FFFFFFF, -0x80000000, -2, 3, 0x10000, 0x12345678)


class _Gen:
    """Random units for one frame. `frame` is "main" (packet pointer at r10-8) or "sub"."""

    def __init__(self, rng: random.Random, frame: str, exclude: frozenset[str] = frozenset()):
        self.rng = rng
        self.frame = frame
        self.exclude = exclude
        self.lo, self.hi = (DATA_LO, DATA_HI) if frame == "main" else (SUB_LO, SUB_HI)

    # -- small choices ---------------------------------------------------------------------

    def reg(self, avoid: Iterable[int] = ()) -> int:
        return self.rng.choice([r for r in range(10) if r not in set(avoid)])

    def imm(self) -> int:
        rng = self.rng
        r = rng.random()
        if r < 0.5:
            return rng.choice(INTERESTING_IMMS)
        if r < 0.75:
            return rng.randint(-64, 64)
        return rng.randint(-(1 << 31), (1 << 31) - 1)

    def imm64(self) -> int:
        rng = self.rng
        return rng.choice((0, 1 << 63, (1 << 64) - 1, (1 << 63) - 1, 0x80000000, 0xFFFFFFFF,
                           0x100000000, rng.getrandbits(64), rng.getrandbits(64),
                           rng.getrandbits(33)))

    def slot(self, size: int) -> int:
        """A stack offset in the data area aligned to `size`."""
        return self.rng.randrange(self.lo, self.hi - size + 1, size) if size > 1 else \
            self.rng.randrange(self.lo, self.hi)

    # -- units -----------------------------------------------------------------------------

    def alu(self, avoid: Iterable[int] = ()) -> Unit:
        rng = self.rng
        avoid = set(avoid)
        w64 = rng.random() < 0.5
        op = rng.choice(ALU_OPS)
        dst = self.reg(avoid)
        width = 64 if w64 else 32
        use_reg = op is not AluOp.NEG and rng.random() < 0.5
        off = 0
        if op in (AluOp.DIV, AluOp.MOD) and rng.random() < 0.5:
            off = 1                                   # v4 sdiv/smod
        if use_reg:
            src = self.reg()
            if op is AluOp.MOV and rng.random() < 0.4:
                off = rng.choice((8, 16, 32) if w64 else (8, 16))   # v4 movsx
            return Unit("alu", [alu(op, dst, src, w64=w64, off=off)])
        if op is AluOp.NEG:
            return Unit("alu", [alu(op, dst, imm=0, w64=w64)])
        if op in (AluOp.LSH, AluOp.RSH, AluOp.ARSH):
            imm = rng.randrange(width)                # the verifier rejects imm shifts >= width
        elif op in (AluOp.DIV, AluOp.MOD):
            imm = self.imm() or rng.choice((1, -1, 3))   # the verifier rejects imm division by 0
        else:
            imm = self.imm()
        return Unit("alu", [alu(op, dst, imm=imm, w64=w64, off=off)])

    def endian(self, avoid: Iterable[int] = ()) -> Unit:
        rng = self.rng
        dst = self.reg(avoid)
        cls, src = rng.choice(((Class.ALU, Source.K), (Class.ALU, Source.X), (Class.ALU64, Source.K)))
        return Unit("endian", [Instruction(cls | AluOp.END | src, dst, 0, 0, rng.choice((16, 32, 64)))])

    def lddw(self, avoid: Iterable[int] = ()) -> Unit:
        return Unit("lddw", [lddw(self.reg(avoid), self.imm64())])

    def stack_store(self, avoid: Iterable[int] = ()) -> Unit:
        size = self.rng.choice(SIZES)
        off = self.slot(size.nbytes)
        if self.rng.random() < 0.4:
            return Unit("stack_store", [st(size, 10, off, self.imm())])
        return Unit("stack_store", [stx(size, 10, off, self.reg())])

    def stack_load(self, avoid: Iterable[int] = ()) -> Unit:
        rng = self.rng
        sx = rng.random() < 0.4
        size = rng.choice((Size.B, Size.H, Size.W) if sx else SIZES)
        return Unit("stack_load", [ldx(size, self.reg(avoid), 10, self.slot(size.nbytes), sx=sx)])

    def spill_fill(self, avoid: Iterable[int] = ()) -> Unit:
        off = self.slot(8)
        return Unit("spill_fill", [stx(Size.DW, 10, off, self.reg()), self.alu(avoid).items[0],
                                   ldx(Size.DW, self.reg(avoid), 10, off)])

    def stack_atomic(self, avoid: Iterable[int] = ()) -> Unit:
        rng = self.rng
        size = rng.choice((Size.W, Size.DW))
        op = rng.choice(ATOMIC_OPS)
        off = self.slot(size.nbytes)
        items: list[Item] = []
        if op == AtomicOp.CMPXCHG:
            if 0 in set(avoid):
                op = AtomicOp.ADD
            src = self.reg(set(avoid) | {0})
        else:
            fetches = op & AtomicOp.FETCH
            src = self.reg(avoid) if fetches else self.reg()
        items.append(atomic(size, 10, off, src, op))
        items += _cmpxchg32_zext(size, op)
        return Unit("stack_atomic", items)

    def packet_store(self, avoid: Iterable[int] = ()) -> Unit:
        rng = self.rng
        p = self.reg(avoid)
        size = rng.choice(SIZES)
        off = rng.randrange(0, PKT_LEN - size.nbytes + 1)
        items: list[Item] = [ldx(Size.DW, p, 10, PKT_SPILL)]
        if rng.random() < 0.3:
            items.append(st(size, p, off, self.imm()))
        else:
            items.append(stx(size, p, off, self.reg({p})))   # never store the pointer itself
        # Turn p back into a scalar with a load.
        items.append(ldx(Size.DW, p, p, rng.randrange(0, PKT_LEN - 7)))
        return Unit("packet_store", items)

    def packet_load(self, avoid: Iterable[int] = ()) -> Unit:
        rng = self.rng
        p = self.reg(avoid)
        sx = rng.random() < 0.4
        size = rng.choice((Size.B, Size.H, Size.W) if sx else SIZES)
        dst = self.reg(avoid)
        items: list[Item] = [ldx(Size.DW, p, 10, PKT_SPILL),
                             ldx(size, dst, p, rng.randrange(0, PKT_LEN - size.nbytes + 1), sx=sx)]
        if dst != p:
            items.append(ldx(Size.W, p, p, rng.randrange(0, PKT_LEN - 3)))
        return Unit("packet_load", items)

    def _reinit_args(self) -> list[Item]:
        # After a call r1-r5 are unreadable for the verifier: give them scalars again.
        return [ldx(self.rng.choice((Size.DW, Size.W)), r, 10, self.slot(8)) for r in range(1, 6)]

    def array_value(self, avoid: Iterable[int] = ()) -> Unit:
        """lookup in the ARRAY map, NULL check, then loads/stores/atomics on the value."""
        rng = self.rng
        keyslot = self.slot(4)
        keyreg = self.reg()
        p = rng.randrange(1, 6)                      # the value pointer lives in r1-r5
        skip = Label()
        items: list[Item] = [
            mov(1, keyreg, w64=False),
            alu(AluOp.AND, 1, imm=rng.choice((3, 7)), w64=False),   # keys 4-7 miss: NULL path
            stx(Size.W, 10, keyslot, 1),
            lddw(1, MAP_ARRAY, src=1), mov(2, 10), alu(AluOp.ADD, 2, imm=keyslot),
            call_helper(HELPER_LOOKUP),
            Jump(Instruction(JmpOp.JEQ | Class.JMP, 0, 0, 0, 0), skip),
            mov(p, 0),
            ldx(Size.DW, 0, p, rng.randrange(0, ARRAY_VALUE - 7, 8)),
        ]
        for _ in range(rng.randint(1, 4)):
            r = rng.random()
            src = rng.choice([0, 6, 7, 8, 9])
            if r < 0.5:
                size = rng.choice((Size.W, Size.DW))
                op = rng.choice(ATOMIC_OPS)
                if op == AtomicOp.CMPXCHG and src == 0:
                    src = 6
                items.append(atomic(size, p, rng.randrange(0, ARRAY_VALUE, size.nbytes), src, op))
                items += _cmpxchg32_zext(size, op)
            elif r < 0.75:
                size = rng.choice(SIZES)
                items.append(stx(size, p, rng.randrange(0, ARRAY_VALUE - size.nbytes + 1), src))
            else:
                size = rng.choice(SIZES)
                sx = size is not Size.DW and rng.random() < 0.4
                items.append(ldx(size, src, p, rng.randrange(0, ARRAY_VALUE - size.nbytes + 1), sx=sx))
        items.append(ldx(Size.DW, 0, p, rng.randrange(0, ARRAY_VALUE - 7)))
        items.append(skip)
        items += self._reinit_args()
        return Unit("array_value", items)

    def hash_op(self, avoid: Iterable[int] = ()) -> Unit:
        rng = self.rng
        keyslot = self.slot(4)
        valslot = self.slot(8)
        keyreg, valreg = self.reg(), self.reg()
        which = rng.choice((HELPER_LOOKUP, HELPER_UPDATE, HELPER_UPDATE, HELPER_DELETE))
        items: list[Item] = [stx(Size.DW, 10, valslot, valreg)]
        items += [mov(1, keyreg, w64=False), alu(AluOp.AND, 1, imm=7, w64=False),
                  stx(Size.W, 10, keyslot, 1),
                  lddw(1, MAP_HASH, src=1), mov(2, 10), alu(AluOp.ADD, 2, imm=keyslot)]
        if which == HELPER_UPDATE:
            items += [mov(3, 10), alu(AluOp.ADD, 3, imm=valslot),
                      mov(4, imm=rng.choice((0, 0, 1, 2)))]   # BPF_ANY / NOEXIST / EXIST
        items.append(call_helper(which))
        if which == HELPER_LOOKUP:
            skip = Label()
            items += [Jump(Instruction(JmpOp.JEQ | Class.JMP, 0, 0, 0, 0), skip),
                      mov(1, 0), ldx(Size.DW, 0, 1, 0)]
            if rng.random() < 0.5:
                items.append(atomic(Size.DW, 1, 0, rng.choice((6, 7, 8, 9)), AtomicOp.ADD))
            items.append(skip)
        items += self._reinit_args()
        return Unit("hash_op", items)

    def local_call(self, avoid: Iterable[int] = ()) -> Unit:
        return Unit("local_call", [Jump(Instruction(JmpOp.CALL | Class.JMP, 0, 1, 0, 0), SUBPROG)]
                    + self._reinit_args())

    def _cond(self, avoid: Iterable[int] = ()) -> Instruction:
        rng = self.rng
        cls = rng.choice((Class.JMP, Class.JMP32))
        op = rng.choice(JMP_OPS)
        a = self.reg()
        if rng.random() < 0.5:
            return Instruction(cls | op | Source.X, a, self.reg(), 0, 0)
        return Instruction(cls | op | Source.K, a, 0, 0, self.imm())

    def skip(self, depth: int, avoid: Iterable[int] = (), **kw) -> Unit:
        end = Label()
        cond = self._cond()
        body = self.units(self.rng.randint(1, 4), depth + 1, avoid, **kw)

        def shape(blocks: list[list[Item]]) -> list[Item]:
            return [Jump(cond, end)] + blocks[0] + [end]
        return Unit("skip", blocks=[body], shape=shape)

    def diamond(self, depth: int, avoid: Iterable[int] = (), **kw) -> Unit:
        els, end = Label(), Label()
        cond = self._cond()
        gotol = self.rng.random() < 0.3
        ja = Instruction(JmpOp.JA | Class.JMP32) if gotol else Instruction(JmpOp.JA | Class.JMP)
        then = self.units(self.rng.randint(1, 3), depth + 1, avoid, **kw)
        other = self.units(self.rng.randint(1, 3), depth + 1, avoid, **kw)

        def shape(blocks: list[list[Item]]) -> list[Item]:
            return [Jump(cond, els)] + blocks[0] + [Jump(ja, end), els] + blocks[1] + [end]
        return Unit("diamond", blocks=[then, other], shape=shape)

    def loop(self, depth: int, avoid: Iterable[int] = ()) -> Unit:
        rng = self.rng
        counter = rng.choice([r for r in (6, 7, 8, 9) if r not in set(avoid)])
        bound = rng.randint(1, 6)
        w32 = rng.random() < 0.5
        head = Label()
        body = self.units(rng.randint(1, 3), depth + 1, set(avoid) | {counter}, calls=False,
                          loops=False)
        cls = Class.JMP32 if w32 else Class.JMP

        def shape(blocks: list[list[Item]]) -> list[Item]:
            return ([mov(counter, imm=0), head] + blocks[0] +
                    [alu(AluOp.ADD, counter, imm=1),
                     Jump(Instruction(cls | JmpOp.JLT | Source.K, counter, 0, 0, bound), head)])
        return Unit("loop", blocks=[body], shape=shape)

    def unit(self, depth: int, avoid: Iterable[int] = (), *, calls: bool = True,
             loops: bool = True) -> Unit:
        rng = self.rng
        choices: list[tuple[str, float]] = [
            ("alu", 30), ("endian", 4), ("lddw", 3), ("stack_store", 6), ("stack_load", 6),
            ("spill_fill", 2), ("stack_atomic", 5)]
        if self.frame == "main":
            choices += [("packet_store", 5), ("packet_load", 5)]
        if calls:
            choices += [("array_value", 2), ("hash_op", 2)]
            if self.frame == "main":
                choices.append(("local_call", 1.5))
        if depth < 3:
            choices += [("skip", 6), ("diamond", 3)]
            if loops:
                choices.append(("loop", 1.5))
        choices = [c for c in choices if c[0] not in self.exclude]
        names, weights = zip(*choices)
        kind = rng.choices(names, weights)[0]
        if kind in ("skip", "diamond"):
            return getattr(self, kind)(depth, avoid, calls=calls, loops=loops)
        if kind == "loop":
            return self.loop(depth, avoid)
        return getattr(self, kind)(avoid)

    def units(self, n: int, depth: int = 0, avoid: Iterable[int] = (), **kw) -> list[Unit]:
        return [self.unit(depth, avoid, **kw) for _ in range(n)]


UNIT_KINDS = ("alu", "endian", "lddw", "stack_store", "stack_load", "spill_fill", "stack_atomic",
              "packet_store", "packet_load", "array_value", "hash_op", "local_call", "skip",
              "diamond", "loop")
MAP_UNITS = frozenset({"array_value", "hash_op"})


def generate(seed: int | str, size: int = 40, exclude: Iterable[str] = ()) -> FuzzProgram:
    """A random program, fully determined by `seed`, `size` (the top-level unit count) and
    `exclude` (unit kinds not to generate, e.g. MAP_UNITS when the engines have no maps)."""
    exclude = frozenset(exclude)
    if unknown := exclude - set(UNIT_KINDS):
        raise ValueError(f"unknown unit kinds {sorted(unknown)}; expected some of {UNIT_KINDS}")
    rng = random.Random(f"ebpfjit-fuzz:{seed}")
    n = rng.randint(max(1, size // 2), size)
    body = _Gen(rng, "main", exclude).units(n)
    sub = _Gen(rng, "sub", exclude).units(rng.randint(1, 8))
    return FuzzProgram(str(seed), body, sub)


def packets_for(seed: int | str, count: int = 2) -> list[bytes]:
    """`count` random PKT_LEN-byte packets: the first with small register values, the others
    with full 64-bit noise and interesting patterns."""
    rng = random.Random(f"ebpfjit-fuzz-packets:{seed}")
    out = []
    for i in range(count):
        pkt = bytearray(rng.getrandbits(8) for _ in range(PKT_LEN))
        for r in range(10):
            if i == 0:
                v = rng.choice((0, 1, 2, rng.randrange(256), (1 << 64) - 1, 1 << 63, 0xFFFFFFFF,
                                0x80000000, rng.randrange(-100, 100) & ((1 << 64) - 1)))
            else:
                v = rng.getrandbits(64)
            pkt[8 * r:8 * r + 8] = v.to_bytes(8, "little")
        out.append(bytes(pkt))
    return out


# --------------------------------------------------------------------------------------------
# Unstructured: random decodable instructions, for the engines only (no verifier takes them)
# --------------------------------------------------------------------------------------------

_RANDOM_OPCODES = sorted(OPCODES)


def random_insn(rng: random.Random, nslots: int) -> Instruction:
    """A random instruction whose fields mostly satisfy insn.check_fields for its opcode
    (jump and call targets within +-`nslots`). Programs of these test that the engines never
    crash and agree with each other on whatever a program does, faults included."""
    opcode = rng.choice(_RANDOM_OPCODES)
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
    return Instruction(opcode, dst, src, off, imm)


def random_insns(rng: random.Random, n: int,
                 keep: Callable[[Instruction], bool] | None = None) -> list[Instruction]:
    """`n` instructions from random_insn that pass insn.check_fields (and `keep`, when given:
    the forms a caller excludes, e.g. not reads_frame_address), targets within +-n."""
    out: list[Instruction] = []
    while len(out) < n:
        candidate = random_insn(rng, n)
        if check_fields(candidate) is None and (keep is None or keep(candidate)):
            out.append(candidate)
    return out


def reads_frame_address(insn: Instruction) -> bool:
    """Uses r10's value as data (not as a load/store base). The frame's address differs between
    engines (and in the kernel), so results computed from it are not comparable."""
    kind, info = insn.kind, insn.info
    if kind in (Kind.ALU, Kind.JCOND) and info.source is Source.X and insn.src == 10:
        return True
    if kind is Kind.JCOND and insn.dst == 10:
        return True
    return (kind in (Kind.STX, Kind.ATOMIC, Kind.LDIND) and insn.src == 10) or \
        (kind is Kind.CALLX and insn.dst == 10)


# --------------------------------------------------------------------------------------------
# Engine-differential programs: valid and deterministic on both engines, not for a verifier
# --------------------------------------------------------------------------------------------
#
# `differential_program(pick)` builds a program from structured fragments, valid and
# deterministic on the interpreter and the JIT (mostly the kernel verifier's rules:
# address-derived values never reach arithmetic or memory; r1-r5 are usually re-initialised
# after local calls and callees usually initialise r0/r6/r7, but sometimes they are read as is:
# 0 in both engines, see DEVELOPERS.md): every ALU/ALU64 K/X op incl. sdiv/smod/movsx, neg,
# le/be/bswap, lddw, forward JMP/JMP32 branches, counted loops with a backward jump,
# loads/stores/ldsx of every size to the stack (through r10 and through a frame-pointer copy)
# and to a mem buffer, atomics on both, helper calls (call and callx of helper 5, which
# returns r1) and local calls. Rarely an access is out of bounds, or the budget is tiny: what
# the kernel's verifier would refuse, the engines must still agree on.
#
# `pick` is where the choices come from, the subset of `random.Random` used here: `choice`,
# `randint` and `randbytes`; a random.Random, or an adapter over hypothesis's `draw` (the
# differential tests, which then shrink a failing program).

DIFF_MEM_SIZE = 64
_D_FRAME_COPY = 8     # r8 = r10 - K (a frame pointer the lowering's dataflow tracks)
_D_MEM_PTR = 9        # r9 = the mem buffer
_D_DATA = tuple(range(8))
_D_ALU = [i for i in OPCODES.values() if i.kind is Kind.ALU]
_D_NEG = [i for i in OPCODES.values() if i.kind is Kind.NEG]
_D_ENDIAN = [i for i in OPCODES.values() if i.kind is Kind.ENDIAN]
_D_JCOND = [i for i in OPCODES.values() if i.kind is Kind.JCOND]
_D_BY_SIZE = {kind: {i.size: i.opcode for i in OPCODES.values() if i.kind is kind}
              for kind in (Kind.LDX, Kind.LDXSX, Kind.ST, Kind.STX, Kind.ATOMIC)}
_D_IMMS = [0, 1, -1, 2, 7, 31, 32, 33, 63, 64, 65, 0x7FFFFFFF, -0x80000000, 0x80, 0xFF, 0x8000,
           0xFFFF, -2, 3]
_D_U64S = [0, 1, (1 << 64) - 1, 1 << 63, (1 << 63) - 1, 0xFFFFFFFF, 1 << 32, 0x8000000000000001]


def _d_bool(pick) -> bool:
    return pick.randint(0, 1) == 1


def _d_imm(pick) -> int:
    """An interesting 32-bit immediate: an edge value or any."""
    return pick.choice(_D_IMMS) if not _d_bool(pick) else pick.randint(-0x80000000, 0x7FFFFFFF)


def _d_u64(pick) -> int:
    return pick.choice(_D_U64S) if not _d_bool(pick) else pick.randint(0, (1 << 64) - 1)


def _d_alu(pick, dsts, value_srcs, main, k):
    info = pick.choice(_D_ALU)
    dst = pick.choice(dsts)
    off = 0
    if info.op in (AluOp.DIV, AluOp.MOD):
        off = pick.choice([0, 1])
    if info.source is Source.X:
        src = pick.choice(_D_DATA)
        if info.op is AluOp.MOV:
            off = pick.choice((0, 8, 16, 32) if info.width == 64 else (0, 8, 16))
        return [Instruction(info.opcode, dst, src, off, 0)]
    return [Instruction(info.opcode, dst, 0, off, _d_imm(pick))]


def _d_unary(pick, dsts, value_srcs, main, k):
    dst = pick.choice(dsts)
    if _d_bool(pick):
        return [Instruction(pick.choice(_D_NEG).opcode, dst)]
    info = pick.choice(_D_ENDIAN)
    return [Instruction(info.opcode, dst, imm=pick.choice([16, 32, 64]))]


def _d_lddw(pick, dsts, value_srcs, main, k):
    return [lddw(pick.choice(dsts), _d_u64(pick))]


def _d_memory(pick, dsts, value_srcs, main, k):
    """A load/store/atomic to the stack (r10 or r8 = r10 - k) or the mem buffer (r9).

    Out-of-frame accesses only in the main function: from a callee they may land in the
    caller's (registered) frame, which depends on each engine's stack layout (the kernel's
    verifier rejects such programs).
    """
    what = pick.choice(["ldx", "ldxsx", "st", "stx", "atomic"])
    size = pick.choice([4, 8] if what == "atomic" else [1, 2, 4] if what == "ldxsx" else
                       [1, 2, 4, 8])
    region = pick.choice(["r10", "r8", "mem"])
    oob = pick.randint(0, 60) == 0 and (main or region == "mem")
    if region == "mem":
        base, lo, hi = _D_MEM_PTR, 0, DIFF_MEM_SIZE - size
    elif region == "r10":
        base, lo, hi = 10, -512, -size
    else:
        base, lo, hi = _D_FRAME_COPY, -512 + k, -size + k
    off = pick.randint(lo, hi)
    if what == "atomic":
        off -= (off - lo) % size      # naturally aligned (frame and buffer bases are aligned)
    if oob:
        off = pick.choice([hi + 1, hi + size, lo - 1, lo - 8])
    if what in ("ldx", "ldxsx"):
        table = _D_BY_SIZE[Kind.LDX if what == "ldx" else Kind.LDXSX]
        return [Instruction(table[size], pick.choice(dsts), base, off, 0)]
    if what == "st":
        return [Instruction(_D_BY_SIZE[Kind.ST][size], base, 0, off, _d_imm(pick))]
    if what == "stx":
        return [Instruction(_D_BY_SIZE[Kind.STX][size], base, pick.choice(_D_DATA), off, 0)]
    imm = pick.choice(sorted(ATOMIC_IMMS))
    writes_src = imm & AtomicOp.FETCH and imm != AtomicOp.CMPXCHG
    src = pick.choice(dsts if writes_src else value_srcs)
    if imm == AtomicOp.CMPXCHG and 0 not in dsts:
        imm = AtomicOp.ADD
    return [Instruction(_D_BY_SIZE[Kind.ATOMIC][size], base, src, off, imm)]


def _d_helper_call(pick, dsts, value_srcs, main, k):
    if 0 not in dsts or 1 not in dsts:
        return []
    out = [mov(1, imm=_d_imm(pick))]
    if _d_bool(pick):
        out.append(call_helper(5))
    else:
        reg = pick.choice([r for r in dsts if r != 0])
        out += [mov(reg, imm=5), Instruction(JmpOp.CALL | Class.JMP | Source.X, reg)]
    return out


# Fragment kinds of straight-line code, weighted as drawn (ALU three times, memory twice).
_D_STRAIGHT = (_d_alu, _d_alu, _d_alu, _d_unary, _d_lddw, _d_memory, _d_memory, _d_helper_call)


def _d_straight(pick, dsts, value_srcs, main, k):
    return pick.choice(_D_STRAIGHT)(pick, dsts, value_srcs, main, k)


def _d_loop(pick, main, k):
    """mov r7, N; body (never writes r7); sub r7, 1; jne[32] r7, 0, body."""
    dsts = tuple(r for r in _D_DATA if r != 7)
    body = [i for _ in range(pick.randint(1, 4))
            for i in _d_straight(pick, dsts, _D_DATA, main, k)]
    n = pick.randint(1, 12)
    slots = sum(i.slots for i in body)
    cls = Class.JMP if pick.choice([32, 64]) == 64 else Class.JMP32
    back = Instruction(cls | JmpOp.JNE | Source.K, 7, 0, -(slots + 2), 0)
    return [mov(7, imm=n)] + body + [alu(AluOp.SUB, 7, imm=1), back]


def _d_function_body(pick, callees, main, k):
    """Fragments; forward branches skip whole later fragments; ends with exit."""
    kinds = ("straight", "straight", "loop", "call" if callees else "straight", "branch")
    out: list[list] = []
    pending = []
    for _ in range(pick.randint(1, 12)):
        frag = pick.choice(kinds)
        if frag == "straight":
            out.append(_d_straight(pick, _D_DATA, _D_DATA, main, k))
        elif frag == "loop":
            out.append(_d_loop(pick, main, k))
        elif frag == "call":
            callee = pick.choice(callees)
            # Usually r1-r5 are re-initialised after the call (verifier rules); sometimes they
            # are read as left by the call: both engines define them as 0 after a local call.
            reinit = _d_bool(pick)
            out.append([mov(1, _D_MEM_PTR)] + [mov(r, imm=_d_imm(pick)) for r in (2, 3)]
                       + [("call", callee)] + [mov(r, imm=0) for r in (1, 2, 3, 4, 5) if reinit])
        else:
            info = pick.choice(_D_JCOND)
            src = pick.choice(_D_DATA) if info.source is Source.X else 0
            imm = 0 if info.source is Source.X else _d_imm(pick)
            out.append([("branch", info.opcode, pick.choice(_D_DATA), src, imm)])
            pending.append((len(out) - 1, pick.randint(0, 4)))
    out.append([EXIT])
    return out, dict(pending)


def _d_slots(frag) -> int:
    return sum(1 if isinstance(i, tuple) else i.slots for i in frag)


def differential_program(pick) -> tuple[bytes, bytes, int | None]:
    """(bytecode, mem of DIFF_MEM_SIZE bytes, budget or None) of one engine-differential
    program (see the section comment): r1 = mem, functions may call later ones only."""
    nsub = pick.randint(0, 2)
    k = pick.randint(0, 256)     # r8 = r10 - k in every function
    prologue = [mov(_D_MEM_PTR, 1), mov(1, imm=0), mov(_D_FRAME_COPY, 10),
                alu(AluOp.ADD, _D_FRAME_COPY, imm=-k)]

    # Callees take the mem pointer in r1 and may only call later functions (no recursion).
    # They usually initialise r0, r6, r7 (verifier rules); sometimes they read them as they
    # arrive, which both engines define as 0 at callee entry.
    def sub_prologue():
        init = [r for r in (0, 6, 7) if _d_bool(pick)]
        return ([mov(_D_MEM_PTR, 1), mov(1, imm=0)] + [mov(r, imm=0) for r in init]
                + [mov(_D_FRAME_COPY, 10), alu(AluOp.ADD, _D_FRAME_COPY, imm=-k)])

    functions = []
    for index in range(nsub + 1):
        callees = list(range(index + 1, nsub + 1))
        body, branches = _d_function_body(pick, callees, index == 0, k)
        functions.append(([prologue if index == 0 else sub_prologue()] + body,
                          {i + 1: s for i, s in branches.items()}))
    # Lay out and resolve branch offsets and call targets.
    starts, pc = [], 0
    for frags, _ in functions:
        starts.append(pc)
        pc += sum(_d_slots(f) for f in frags)
    insns = []
    pc = 0
    for frags, branches in functions:
        frag_pcs = []
        p = pc
        for f in frags:
            frag_pcs.append(p)
            p += _d_slots(f)
        for fi, frag in enumerate(frags):
            for item in frag:
                if isinstance(item, Instruction):
                    insns.append(item)
                    pc += item.slots
                elif item[0] == "call":
                    insns.append(Instruction(JmpOp.CALL | Class.JMP, src=1, imm=starts[item[1]] - pc - 1))
                    pc += 1
                else:
                    _, opcode, dst, src, imm = item
                    skip = min(branches.get(fi, 0), len(frags) - 2 - fi)
                    target = frag_pcs[fi + 1 + max(skip, 0)]
                    insns.append(Instruction(opcode, dst, src, target - pc - 1, imm))
                    pc += 1
    mem = pick.randbytes(DIFF_MEM_SIZE)
    budget = None if pick.randint(0, 3) < 3 else pick.randint(1, 60)
    return encode(insns), mem, budget


# --------------------------------------------------------------------------------------------
# Running: the kernel and our engines
# --------------------------------------------------------------------------------------------

@dataclass
class Result:
    """What one engine produced for a list of packets: per packet (retval, data_out), then the
    contents of every map ({map name: {key hex: value hex}}); or an error text."""
    runs: list[tuple[int, bytes]] = field(default_factory=list)
    maps: dict[str, dict[str, str]] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict:
        return {"runs": [{"retval": r, "data_out": d.hex()} for r, d in self.runs],
                "maps": self.maps, "error": self.error}

    @classmethod
    def from_json(cls, obj: dict) -> Result:
        return cls([(r["retval"], bytes.fromhex(r["data_out"])) for r in obj["runs"]],
                   obj.get("maps", {}), obj.get("error"))


def diff_results(expected: Result, got: Result) -> list[str]:
    """Human-readable differences (empty when they agree)."""
    out = []
    if expected.error or got.error:
        if expected.error != got.error:
            out.append(f"error: expected {expected.error!r}, got {got.error!r}")
        return out
    for i, ((r1, d1), (r2, d2)) in enumerate(zip(expected.runs, got.runs)):
        if r1 != r2:
            out.append(f"packet {i}: retval {r1:#x} != {r2:#x}")
        if d1 != d2:
            diffs = [j for j in range(max(len(d1), len(d2)))
                     if j >= len(d1) or j >= len(d2) or d1[j] != d2[j]]
            out.append(f"packet {i}: data_out differs at bytes {_ranges(diffs)}" +
                       _reg_hint(diffs, d1, d2))
    if len(expected.runs) != len(got.runs):
        out.append(f"{len(expected.runs)} runs != {len(got.runs)}")
    for name in sorted(set(expected.maps) | set(got.maps)):
        a, b = expected.maps.get(name, {}), got.maps.get(name, {})
        if a != b:
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            out.append(f"map {name}: differs at keys {', '.join(keys)}: "
                       + "; ".join(f"{k}: {a.get(k)} != {b.get(k)}" for k in keys[:3]))
    return out


def _ranges(idx: list[int]) -> str:
    spans, start = [], None
    for j, x in enumerate(idx):
        if start is None:
            start = x
        if j + 1 == len(idx) or idx[j + 1] != x + 1:
            spans.append(f"{start}" if start == x else f"{start}-{x}")
            start = None
    return ",".join(spans[:8]) + ("..." if len(spans) > 8 else "")


def _reg_hint(diffs: list[int], d1: bytes, d2: bytes) -> str:
    regs = sorted({j // 8 for j in diffs if j < 80})
    if not regs:
        return ""
    parts = []
    for r in regs[:4]:
        a = int.from_bytes(d1[8 * r:8 * r + 8], "little")
        b = int.from_bytes(d2[8 * r:8 * r + 8], "little")
        parts.append(f"r{r} {a:#x} != {b:#x}")
    return " (" + ", ".join(parts) + ")"


class Rejected(Exception):
    """The kernel verifier refused the program; `.errno` and `.log` say why."""

    def __init__(self, errno: int | None, log: str):
        self.errno = errno
        self.log = log
        super().__init__(summarize_log(log) or f"errno {errno}")


def summarize_log(log: str) -> str:
    """The verifier's reason, with numbers normalised, for grouping rejections."""
    lines = [ln for ln in log.strip().splitlines()
             if ln.strip() and not ln.startswith(("processed ", "verification time", "stack depth"))]
    if not lines:
        return ""
    text = lines[-1]
    return re.sub(r"-?\b(0x[0-9a-f]+|\d+)\b", "N", text)


def dump_kernel_map(kmap) -> dict[str, str]:
    out = {}
    for k, v in kmap.items():
        if isinstance(v, list):    # per-CPU: the values of all CPUs, concatenated
            v = b"".join(v)
        out[bytes(k).hex()] = bytes(v).hex()
    return out


class KernelRunner:
    """Loads programs with BPF_PROG_LOAD and runs them with BPF_PROG_TEST_RUN on fresh maps."""

    def __init__(self, kernel_module=None):
        self.k = kernel if kernel_module is None else kernel_module

    def run(self, code: bytes, packets: Sequence[bytes], *, prog_type: ProgType = ProgType.XDP,
            maps: Sequence[MapSpec] = MAPS, log_level: int = 0) -> Result:
        kmaps = [self.k.KernelMap(spec) for spec in maps]
        try:
            try:
                prog = self.k.KernelProgram(prog_type, code, map_fds=kmaps, log_level=log_level,
                                            name="fuzz")
            except KernelError as exc:
                raise Rejected(exc.errno, exc.log) from None
            with prog:
                res = Result()
                for pkt in packets:
                    tr = prog.test_run(pkt)
                    res.runs.append((tr.retval, bytes(tr.data_out)))
                res.maps = {spec.name: dump_kernel_map(m) for spec, m in zip(maps, kmaps)}
                return res
        finally:
            for m in kmaps:
                m.close()

    def rejection_log(self, code: bytes, prog_type: ProgType = ProgType.XDP,
                      maps: Sequence[MapSpec] = MAPS) -> str:
        """Reload with log level 1 to get the verifier's reasoning (empty if it now loads)."""
        try:
            self.run(code, [], prog_type=prog_type, maps=maps, log_level=1)
        except Rejected as exc:
            return exc.log
        return ""


def engine_settings(name: str) -> tuple[str, int, bool]:
    """"interp" or "jit[-O<level>][-nobc]" -> (engine, opt level, bounds checks), through the
    one engine parser (ebpfjit.engine)."""
    choice = _parse_engine(name, options=True)
    if choice.engine is Engine.INTERP:
        return "interp", 0, True
    return "jit", 2 if choice.opt_level is None else choice.opt_level, choice.bounds_checks


class OurRunner:
    """Runs programs on one of our engines with fresh maps.

    `engine` is "interp" or "jit[-O<level>][-nobc]" (nobc: compiled without bounds checks,
    as for a verified program). Fuzz programs are compiled without the on-disk cache.
    Programs of type UNSPEC run as raw programs (r1 = packet, r2 = length); others through
    `Program.test_run` (the shadow-context path).
    """

    def __init__(self, engine: str = "interp"):
        self.name = engine
        self.engine, self.opt_level, self.bounds_checks = engine_settings(engine)

    def _program(self, code: bytes, prog_type: ProgType, maps: Sequence[MapSpec]):
        """(program, maps): an Env with the builtin helpers and fresh maps, and the program
        bound to it: a plain Program for raw code, else an ObjectProgram (as loader.load()
        builds it: context accesses converted, test_run on the kernel's test-run model)."""
        # Lazy: the C module (ebpfjit._rt): the generators and the kernel runner work without it.
        from ..api import loader
        from ..api.program import Program
        from ..runtime import helpers
        from ..runtime.env import Env
        from ..runtime.maps import Map
        env = Env()
        if maps:   # only the map units call helpers
            helpers.install_builtin_helpers(env)
        created = [Map(spec) for spec in maps]
        for m in created:
            m.attach(env)
        env.set_maps([m.ptr for m in created])
        if prog_type == ProgType.UNSPEC:
            prog = Program(code, type=prog_type, name="fuzz", env=env, opt_level=self.opt_level)
        else:
            pspec = ProgramSpec("fuzz", "xdp", prog_type, code, "GPL")
            ospec = ObjectSpec("<fuzz>", {"fuzz": pspec}, {m.name: m for m in maps}, "GPL")
            obj = loader.Object(ospec, env, {m.name: m for m in created}, None)
            insns = decode(code)
            loader.check_program("fuzz", insns, env, len(created), created)
            insns = loader.convert_context(insns, prog_type)
            prog = loader.ObjectProgram(pspec, encode_insns(insns), env, obj)
            prog.opt_level = self.opt_level
            obj.programs["fuzz"] = prog
        if self.engine == "jit":
            # Lazy: llvmlite, only for the JIT runs.
            from ..jit.compile import compile_program
            # Program.compile() would go through the on-disk cache, which random programs only
            # pollute: compile here and hand the result to the Program's per-level table.
            # With the maps' description, as Program.compile() does: inline ARRAY lookups.
            jc = compile_program(prog.code, opt_level=self.opt_level,
                                 bounds_checks=self.bounds_checks, cache=False,
                                 maps=prog._jit_maps())
            prog._jit[(self.opt_level, True)] = prog._jit[(self.opt_level, False)] = jc
        return prog, created

    def run(self, code: bytes, packets: Sequence[bytes], *, prog_type: ProgType = ProgType.XDP,
            maps: Sequence[MapSpec] = MAPS) -> Result:
        try:
            prog, created = self._program(code, prog_type, maps)
            res = Result()
            for pkt in packets:
                if prog_type == ProgType.UNSPEC:
                    buf = bytearray(pkt)
                    r0 = prog.run(buf, engine=self.engine)
                    res.runs.append((r0 & 0xFFFFFFFF, bytes(buf)))
                else:
                    out = prog.test_run(pkt, engine=self.engine)
                    res.runs.append((out[0] & 0xFFFFFFFF, bytes(out[1])))
            res.maps = {spec.name: _dump_our_map(m) for spec, m in zip(maps, created)}
            return res
        except EbpfError as exc:
            return Result(error=f"{type(exc).__name__}: {exc}")


def _dump_our_map(m) -> dict[str, str]:
    out = {}
    for k, v in m.items():
        if isinstance(v, list):
            v = b"".join(v)
        out[bytes(k).hex()] = bytes(v).hex()
    return out


# --------------------------------------------------------------------------------------------
# One case, minimisation, corpus
# --------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    """The verdict of one differential run."""
    program: FuzzProgram
    packets: list[bytes]
    variant: str
    kernel: Result | None = None
    ours: dict[str, Result] = field(default_factory=dict)
    rejected: Rejected | None = None

    @property
    def disagreements(self) -> dict[str, list[str]]:
        if self.kernel is None:
            return {}
        return {name: d for name, res in self.ours.items() if (d := diff_results(self.kernel, res))}

    @property
    def agree(self) -> bool:
        return self.rejected is None and self.kernel is not None and not self.disagreements


def _prog_type(variant: str) -> ProgType:
    return ProgType.XDP if variant == "xdp" else ProgType.UNSPEC


def run_case(program: FuzzProgram, packets: Sequence[bytes], kernel: KernelRunner,
             engines: Sequence[str] = ("interp", "jit"), variant: str = "xdp") -> Outcome:
    """Run `program` in the kernel (always as XDP: the oracle) and on `engines` (as `variant`)."""
    out = Outcome(program, list(packets), variant)
    try:
        out.kernel = kernel.run(program.code("xdp"), packets)
    except Rejected as exc:
        out.rejected = exc
        return out
    code = program.code(variant)
    maps = MAPS
    if not program.uses_maps():
        # Engines without map support can still run it; the untouched maps are not compared.
        maps = ()
        out.kernel.maps = {}
    for name in engines:
        out.ours[name] = OurRunner(name).run(code, packets, prog_type=_prog_type(variant),
                                             maps=maps)
    return out


def _ddmin(items: list, still_fails: Callable[[list], bool]) -> list:
    """Zeller's delta debugging over a list: a 1-minimal sublist that still fails."""
    n = 2
    while len(items) >= 2:
        chunk = max(1, len(items) // n)
        reduced = False
        for start in range(0, len(items), chunk):
            candidate = items[:start] + items[start + chunk:]
            if candidate != items and still_fails(candidate):
                items = candidate
                n = max(n - 1, 2)
                reduced = True
                break
        if not reduced:
            if n >= len(items):
                break
            n = min(len(items), n * 2)
    if len(items) == 1 and still_fails([]):
        return []
    return items


def minimize(outcome: Outcome, kernel: KernelRunner, *, budget_s: float = 120.0) -> Outcome:
    """Shrink a disagreeing case: the packets, the subprogram, then the body units (top level
    first, then nested blocks), keeping only changes after which the kernel still accepts the
    program and some engine still disagrees."""
    engines = list(outcome.disagreements)
    deadline = time.monotonic() + budget_s
    best = outcome

    def check(prog: FuzzProgram, packets: list[bytes]) -> Outcome | None:
        if time.monotonic() > deadline:
            return None
        try:
            o = run_case(prog, packets, kernel, engines, outcome.variant)
        except Exception:   # an engine crash while minimising: not the failure being chased
            return None
        return o if o.kernel is not None and o.disagreements else None

    # Packets: keep the first one that disagrees.
    for i in range(len(best.packets)):
        o = check(best.program, [best.packets[i]])
        if o is not None:
            best = o
            break

    def shrink(units: list[Unit], rebuild: Callable[[list[Unit]], FuzzProgram]) -> list[Unit]:
        # Top level first, then every nested block in place: the tree only ever holds changes
        # after which the case still fails, so it is a failing program at every step.
        nonlocal best

        def fails(prog: FuzzProgram) -> bool:
            nonlocal best
            o = check(prog, best.packets)
            if o is not None:
                best = o
            return o is not None

        units = _ddmin(list(units), lambda cand: fails(rebuild(cand)))
        stack = list(units)
        while stack:
            u = stack.pop()
            for bi, block in enumerate(u.blocks):
                def try_block(cand: list[Unit], u=u, bi=bi) -> bool:
                    saved = u.blocks[bi]
                    u.blocks[bi] = cand
                    if fails(rebuild(units)):
                        return True
                    u.blocks[bi] = saved
                    return False
                u.blocks[bi] = _ddmin(list(block), try_block)
                stack.extend(u.blocks[bi])
        return units

    prog = best.program
    sub = shrink(prog.sub, lambda c: prog.replace(sub=c))
    prog = prog.replace(sub=sub)
    body = shrink(prog.body, lambda c: prog.replace(body=c))
    prog = prog.replace(body=body)
    final = check(prog, best.packets)
    return final if final is not None else best


def describe(outcome: Outcome) -> str:
    lines = []
    for name, diffs in outcome.disagreements.items():
        lines.append(f"{name}: " + "; ".join(diffs))
    return "\n".join(lines)


def save_case(outcome: Outcome, directory: str | os.PathLike, description: str = "") -> pathlib.Path:
    """Write a corpus file; the name is derived from the program bytes, so saving twice is
    idempotent."""
    code = outcome.program.code(outcome.variant)
    digest = hashlib.sha256(code + b"".join(outcome.packets)).hexdigest()[:12]
    path = pathlib.Path(directory) / f"fuzz-{digest}.json"
    obj = {
        "description": description or describe(outcome),
        "seed": outcome.program.seed,
        "variant": outcome.variant,
        "prog_type": "xdp" if outcome.variant == "xdp" else "raw",
        "code": code.hex(),
        "kernel_code": outcome.program.code("xdp").hex(),
        "maps": [{"name": m.name, "type": int(m.type), "key_size": m.key_size,
                  "value_size": m.value_size, "max_entries": m.max_entries}
                 for m in (MAPS if outcome.program.uses_maps() else ())],
        "packets": [p.hex() for p in outcome.packets],
        "expected": outcome.kernel.to_json() if outcome.kernel else None,
        "observed": {name: r.to_json() for name, r in outcome.ours.items()},
        "disagreeing": sorted(outcome.disagreements),
        "xfail": description or describe(outcome),
        "asm": disassemble(code).splitlines(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1) + "\n")
    return path


def load_case(path: str | os.PathLike) -> dict:
    return json.loads(pathlib.Path(path).read_text())


def case_maps(case: dict) -> list[MapSpec]:
    return [MapSpec(m["name"], MapType(m["type"]), m["key_size"], m["value_size"],
                    m["max_entries"]) for m in case["maps"]]


def replay_case(case: dict, engine: str, kernel: KernelRunner | None = None,
                notes: list[str] | None = None) -> list[str]:
    """Differences between `engine` and the expected results of a corpus case (and, when
    `kernel` is given, between the stored expectation and the live kernel).

    For a `kernel_deviation` case the kernel is the one that departs from RFC 9669: our engines
    must keep the specified result (`rfc_expected`), and what the live kernel answers is
    information, not a problem: whether it still shows the deviation is appended to `notes`."""
    maps = case_maps(case)
    packets = [bytes.fromhex(p) for p in case["packets"]]
    expected = Result.from_json(case["expected"])
    problems = []
    live = None
    if kernel is not None:
        live = kernel.run(bytes.fromhex(case["kernel_code"]), packets, maps=maps)
    if case.get("kernel_deviation"):
        rfc = Result.from_json(case["rfc_expected"])
        if notes is not None and live is not None:
            notes.append(_deviation_note(live, expected, rfc))
        expected = rfc
    elif live is not None:
        problems += [f"kernel vs stored: {d}" for d in diff_results(expected, live)]
    ptype = ProgType.XDP if case["prog_type"] == "xdp" else ProgType.UNSPEC
    got = OurRunner(engine).run(bytes.fromhex(case["code"]), packets, prog_type=ptype, maps=maps)
    problems += diff_results(expected, got)
    return problems


def _deviation_note(live: Result, deviating: Result, rfc: Result) -> str:
    if not diff_results(deviating, live):
        return "kernel deviation seen: the running kernel gives the stored non-RFC result"
    if not diff_results(rfc, live):
        return "kernel deviation not seen: the running kernel gives the RFC 9669 result"
    return "kernel gives neither result: " + "; ".join(diff_results(rfc, live))


# --------------------------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------------------------

@dataclass
class FuzzStats:
    generated: int = 0
    accepted: int = 0
    agreed: int = 0
    rejected: int = 0
    disagreed: int = 0
    crashed: int = 0
    rejections: Counter = field(default_factory=Counter)
    rejection_examples: dict[str, str] = field(default_factory=dict)
    saved: list[str] = field(default_factory=list)
    unit_kinds: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def merge(self, other: FuzzStats) -> None:
        for name in ("generated", "accepted", "agreed", "rejected", "disagreed", "crashed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rejections.update(other.rejections)
        for k, v in other.rejection_examples.items():
            self.rejection_examples.setdefault(k, v)
        self.saved += other.saved
        self.unit_kinds.update(other.unit_kinds)
        self.seconds = max(self.seconds, other.seconds)

    def summary(self) -> str:
        lines = [f"{self.generated} programs in {self.seconds:.1f} s: {self.accepted} accepted by "
                 f"the kernel, {self.agreed} agreed on every engine, {self.disagreed} disagreed, "
                 f"{self.crashed} crashed an engine, {self.rejected} rejected"]
        if self.rejections:
            lines.append("rejections by verifier message:")
            for msg, n in self.rejections.most_common():
                ex = self.rejection_examples.get(msg, "")
                lines.append(f"  {n:6d}  {msg}" + (f"   (e.g. seed {ex})" if ex else ""))
        if self.saved:
            lines.append("saved: " + ", ".join(self.saved))
        return "\n".join(lines)


def _walk_kinds(units: Iterable[Unit], counter: Counter) -> None:
    for u in units:
        counter[u.kind] += 1
        for b in u.blocks:
            _walk_kinds(b, counter)


def fuzz(*, seconds: float | None = None, count: int | None = None, seed: int = 0,
         engines: Sequence[str | tuple[str, ...]] = ("interp", "jit"), variant: str = "xdp", size: int = 40,
         packets: int = 2, corpus: str | os.PathLike | None = None, explain_rejections: bool = False,
         minimize_budget: float = 120.0, kernel: KernelRunner | None = None,
         exclude: Iterable[str] = (),
         progress: Callable[[str], None] | None = None) -> FuzzStats:
    """Generate programs from `seed` on until `count` programs or `seconds` have passed.

    Disagreements are minimised and saved into `corpus` (when given). With
    `explain_rejections` every rejected program is reloaded at log level 1 to record the
    verifier's message.
    """
    kernel = kernel or KernelRunner()
    stats = FuzzStats()
    start = time.monotonic()
    i = seed
    while True:
        if count is not None and stats.generated >= count:
            break
        if seconds is not None and time.monotonic() - start >= seconds:
            break
        prog = generate(i, size, exclude)
        pkts = packets_for(i, packets)
        stats.generated += 1
        _walk_kinds(prog.body, stats.unit_kinds)
        # An entry of `engines` may be a tuple of alternatives: program i uses the i-th.
        engs = [e if isinstance(e, str) else e[i % len(e)] for e in engines]
        try:
            out = run_case(prog, pkts, kernel, engs, variant)
        except Exception as exc:   # an engine crashed (not an EbpfError): report, keep going
            stats.crashed += 1
            if progress:
                progress(f"seed {i}: engine crash: {type(exc).__name__}: {exc}")
            i += 1
            continue
        if out.rejected is not None:
            stats.rejected += 1
            msg = str(out.rejected)
            if explain_rejections:
                msg = summarize_log(kernel.rejection_log(prog.code("xdp"))) or msg
            stats.rejections[msg] += 1
            stats.rejection_examples.setdefault(msg, str(i))
        else:
            stats.accepted += 1
            if out.agree:
                stats.agreed += 1
            else:
                stats.disagreed += 1
                if progress:
                    progress(f"seed {i}: DISAGREEMENT\n{describe(out)}")
                if corpus is not None:
                    small = minimize(out, kernel, budget_s=minimize_budget)
                    path = save_case(small, corpus)
                    stats.saved.append(path.name)
                    if progress:
                        progress(f"  minimised to {len(small.program.insns(variant))} insns: {path}")
        i += 1
    stats.seconds = time.monotonic() - start
    return stats


def _fuzz_worker(kwargs: dict) -> FuzzStats:
    return fuzz(**kwargs)


def fuzz_parallel(workers: int = 2, **kwargs) -> FuzzStats:
    """fuzz() in `workers` processes (spawned: LLVM and bpf fds stay per process). With
    `count`, worker w takes seeds seed + w*chunk ...; with `seconds`, every worker runs that
    long on its own seed range (seed + w * 10**9)."""
    if workers <= 1:
        return fuzz(**kwargs)
    kwargs.pop("progress", None)
    seed = kwargs.pop("seed", 0)
    count = kwargs.pop("count", None)
    jobs = []
    for w in range(workers):
        kw = dict(kwargs)
        if count is not None:
            chunk = -(-count // workers)
            kw.update(seed=seed + w * chunk, count=max(0, min(chunk, count - w * chunk)))
        else:
            kw.update(seed=seed + w * 10**9)
        jobs.append(kw)
    total = FuzzStats()
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        for st in pool.map(_fuzz_worker, jobs):
            total.merge(st)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ebpfjit.fuzzgen",
                                     description="Differential fuzzing: kernel vs interpreter vs JIT.")
    parser.add_argument("--seconds", type=float, default=None, help="run this long")
    parser.add_argument("--count", type=int, default=None, help="run this many programs")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--size", type=int, default=40, help="max top-level units per program")
    parser.add_argument("--packets", type=int, default=2, help="packets per program")
    parser.add_argument("--engines", default="interp,jit", help="comma list: interp, jit, jit-O0..3")
    parser.add_argument("--variant", choices=("xdp", "raw"), default="xdp")
    parser.add_argument("--corpus", default="tests/regressions", help="where to save disagreements")
    parser.add_argument("--rejections", default=None,
                        help="write the rejection summary here (default: <corpus>/rejections-summary.txt)")
    parser.add_argument("--exclude", default="",
                        help=f"comma list of unit kinds not to generate ({', '.join(UNIT_KINDS)}; "
                             "'maps' = array_value,hash_op)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes to fuzz in (each on its own seed range)")
    parser.add_argument("--kernel-only", action="store_true",
                        help="only check that the kernel accepts and runs the programs")
    parser.add_argument("--print", dest="show", type=int, default=None, metavar="SEED",
                        help="print the program of SEED and exit")
    args = parser.parse_args(argv)
    exclude = set()
    for word in filter(None, args.exclude.split(",")):
        exclude |= MAP_UNITS if word == "maps" else {word}
    if args.show is not None:
        print(disassemble(generate(args.show, args.size, exclude).code(args.variant)))
        return 0
    if args.seconds is None and args.count is None:
        args.seconds = 60.0
    engines = [] if args.kernel_only else [e for e in args.engines.split(",") if e]
    stats = fuzz_parallel(workers=args.workers, seconds=args.seconds, count=args.count,
                          seed=args.seed, engines=engines, variant=args.variant, size=args.size,
                          packets=args.packets, corpus=args.corpus, explain_rejections=True,
                          exclude=exclude,
                          progress=lambda s: print(s, file=sys.stderr, flush=True))
    text = stats.summary()
    print(text)
    summary_path = args.rejections or os.path.join(args.corpus, "rejections-summary.txt")
    pathlib.Path(summary_path).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(summary_path).write_text(text + "\n")
    return 1 if stats.disagreed or stats.crashed else 0


if __name__ == "__main__":
    sys.exit(main())
