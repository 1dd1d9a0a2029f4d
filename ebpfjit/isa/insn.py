"""Instructions as values, and their exact byte encoding: decode, encode and structural checks.

An eBPF program is a sequence of 8-byte slots (little endian): opcode, dst|src<<4, off (s16),
imm (s32). `lddw` takes two slots and is one `Instruction` here, whose `imm` is the whole 64-bit
value. `pc` always means a slot index; jumps land on `pc + 1 + off` (see isa.jump_target).

Must not import: anything but isa and errors.

>>> insns = decode(bytes.fromhex("b7000000070000009500000000000000"))
>>> insns[0]
Instruction(opcode=0xb7, dst=0, src=0, off=0, imm=7)
>>> encode(insns).hex()
'b7000000070000009500000000000000'

Imports: ebpfjit.errors, ebpfjit.isa.opcodes
"""
from __future__ import annotations

import bisect
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..errors import DecodeError
from .opcodes import (
    ATOMIC_IMMS,
    ENDIAN_WIDTHS,
    FRAME_POINTER,
    LDDW,
    MOVSX_OFFS_32,
    MOVSX_OFFS_64,
    OPCODES,
    SIGNED_OFF,
    AluOp,
    Kind,
    OpInfo,
    Source,
    jump_target,
    written_registers,
)

SLOT = struct.Struct("<BBhi")
SLOT_SIZE = 8
MAX_REG = 10
# lddw src values the kernel accepts after libbpf (BPF_PSEUDO_MAP_FD .. BPF_PSEUDO_MAP_IDX_VALUE).
LDDW_SRC_MAX = 6
CALL_HELPER, CALL_LOCAL, CALL_KFUNC = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Instruction:
    """One instruction. For lddw, `imm` is the unsigned 64-bit value spanning both slots."""
    opcode: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    def __repr__(self) -> str:
        return (f"Instruction(opcode={self.opcode:#04x}, dst={self.dst}, src={self.src}, "
                f"off={self.off}, imm={self.imm})")

    @property
    def info(self) -> OpInfo:
        return OPCODES[self.opcode]

    @property
    def kind(self) -> Kind:
        return OPCODES[self.opcode].kind

    @property
    def writes(self) -> tuple[int, ...]:
        """Registers this instruction may change, its result first (see isa.written_registers)."""
        return written_registers(self.info, self.dst, self.src, self.imm)

    @property
    def slots(self) -> int:
        return 2 if self.opcode == LDDW else 1

    @property
    def imm_lo(self) -> int:
        """The first slot's imm as a signed 32-bit value (for lddw: the low half)."""
        return _s32(self.imm & 0xFFFFFFFF)

    @property
    def imm_hi(self) -> int:
        """lddw only: the second slot's imm, signed 32-bit."""
        return _s32((self.imm >> 32) & 0xFFFFFFFF)

    def encode(self) -> bytes:
        regs = (self.dst & 0xF) | ((self.src & 0xF) << 4)
        if self.opcode == LDDW:
            return (SLOT.pack(self.opcode, regs, self.off, self.imm_lo)
                    + SLOT.pack(0, 0, 0, self.imm_hi))
        return SLOT.pack(self.opcode, regs, self.off, self.imm)

    def branch_target(self, pc: int) -> int | None:
        """Slot this instruction may transfer control to (jumps and local calls), else None."""
        kind = self.kind
        if kind is Kind.JA:
            return jump_target(pc, self.imm if self.opcode == 0x06 else self.off)
        if kind is Kind.JCOND:
            return jump_target(pc, self.off)
        if kind is Kind.CALL and self.src == CALL_LOCAL:
            return jump_target(pc, self.imm)
        return None


def _s32(value: int) -> int:
    return value - (1 << 32) if value & 0x80000000 else value


def _field_error(insn: Instruction, what: str) -> str:
    return f"{OPCODES[insn.opcode].name} ({insn.encode()[:8].hex()}): {what}"


def check_fields(insn: Instruction) -> str | None:
    """Return why the fields of `insn` are invalid for its opcode (RFC 9669 + kernel), or None."""
    info = OPCODES.get(insn.opcode)
    if info is None:
        return f"unknown opcode {insn.opcode:#04x}"
    kind = info.kind
    if insn.dst > MAX_REG:
        return _field_error(insn, f"invalid dst register r{insn.dst}")
    if kind is Kind.LDDW and insn.src > LDDW_SRC_MAX:
        return _field_error(insn, f"invalid lddw source src={insn.src} (pseudo forms are 0-"
                                  f"{LDDW_SRC_MAX})")
    if insn.src > MAX_REG and kind is not Kind.LDDW:
        return _field_error(insn, f"invalid src register r{insn.src}")

    def nonzero(*names: str) -> str | None:
        for name in names:
            if getattr(insn, name) != 0:
                return _field_error(insn, f"reserved field {name} must be 0, not {getattr(insn, name)}")
        return None

    if FRAME_POINTER in insn.writes:
        return _field_error(insn, "r10 is read-only")
    if kind is Kind.ALU:
        signed_ok = info.op in (AluOp.DIV, AluOp.MOD)
        if info.source is Source.K:
            if err := nonzero("src"):
                return err
            if insn.off not in ((0, SIGNED_OFF) if signed_ok else (0,)):
                return _field_error(insn, f"invalid offset {insn.off}")
        else:
            if err := nonzero("imm"):
                return err
            if info.op is AluOp.MOV:
                allowed = (0,) + (MOVSX_OFFS_64 if info.width == 64 else MOVSX_OFFS_32)
            else:
                allowed = (0, SIGNED_OFF) if signed_ok else (0,)
            if insn.off not in allowed:
                return _field_error(insn, f"invalid offset {insn.off}")
        return None
    if kind is Kind.NEG:
        return nonzero("src", "off", "imm")
    if kind is Kind.ENDIAN:
        if err := nonzero("src", "off"):
            return err
        if insn.imm not in ENDIAN_WIDTHS:
            return _field_error(insn, f"invalid byte-swap width {insn.imm}")
        return None
    if kind is Kind.JA:
        return nonzero("dst", "src", "imm" if insn.opcode == 0x05 else "off")
    if kind is Kind.JCOND:
        return nonzero("src") if info.source is Source.K else nonzero("imm")
    if kind is Kind.CALL:
        if err := nonzero("dst", "off"):
            return err
        if insn.src not in (CALL_HELPER, CALL_LOCAL, CALL_KFUNC):
            return _field_error(insn, f"invalid call kind src={insn.src}")
        return None
    if kind is Kind.CALLX:
        return nonzero("src", "off", "imm")
    if kind is Kind.EXIT:
        return nonzero("dst", "src", "off", "imm")
    if kind is Kind.LDDW:
        return nonzero("off")
    if kind is Kind.LDABS:
        return nonzero("dst", "src", "off")
    if kind is Kind.LDIND:
        return nonzero("dst", "off")
    if kind in (Kind.LDX, Kind.LDXSX, Kind.STX):
        return nonzero("imm")
    if kind is Kind.ST:
        return nonzero("src")
    if kind is Kind.ATOMIC:
        if insn.imm not in ATOMIC_IMMS:
            return _field_error(insn, f"invalid atomic operation {insn.imm:#x}")
        return None
    raise AssertionError(kind)


# Valid one-slot instructions by their 8 bytes: programs repeat a small vocabulary of slots,
# and instructions are immutable values, so each is decoded and checked once per process.
_decoded: dict[bytes, Instruction] = {}
_DECODED_MAX = 1 << 16


def decode(code: bytes, *, validate: bool = True) -> list[Instruction]:
    """Decode bytecode into instructions; with `validate`, also run `check_program`.

    Raises DecodeError naming the slot for: a length that is not a multiple of 8, an unknown
    opcode, reserved fields set, a bad register, a truncated lddw, and (when validating) jumps
    outside the program or into the second half of an lddw.
    """
    code = bytes(code)
    if len(code) % SLOT_SIZE:
        raise DecodeError(f"bytecode length {len(code)} is not a multiple of 8")
    nslots = len(code) // SLOT_SIZE
    insns: list[Instruction] = []
    known = _decoded
    pc = 0
    while pc < nslots:
        raw = code[pc * SLOT_SIZE:(pc + 1) * SLOT_SIZE]
        insn = known.get(raw)
        if insn is not None:
            insns.append(insn)
            pc += 1
            continue
        opcode, regs, off, imm = SLOT.unpack_from(code, pc * SLOT_SIZE)
        insn = Instruction(opcode, regs & 0xF, regs >> 4, off, imm)
        if opcode == LDDW:
            if pc + 1 >= nslots:
                raise DecodeError("lddw is missing its second slot", pc)
            op2, regs2, off2, imm2 = SLOT.unpack_from(code, (pc + 1) * SLOT_SIZE)
            if op2 or regs2 or off2:
                raise DecodeError(f"lddw second slot has non-zero opcode/regs/offset "
                                  f"({code[(pc + 1) * 8:(pc + 2) * 8].hex()})", pc)
            insn = Instruction(opcode, regs & 0xF, regs >> 4, off,
                               ((imm2 & 0xFFFFFFFF) << 32) | (imm & 0xFFFFFFFF))
        reason = check_fields(insn)
        if reason:
            raise DecodeError(reason, pc)
        if opcode != LDDW:
            if len(known) >= _DECODED_MAX:
                known.clear()
            known[raw] = insn
        insns.append(insn)
        pc += insn.slots
    if validate:
        check_program(insns)
    return insns


def encode(insns: Iterable[Instruction]) -> bytes:
    return b"".join(insn.encode() for insn in insns)


def iter_pcs(insns: Iterable[Instruction]) -> Iterator[tuple[int, Instruction]]:
    """Yield (pc, insn) with pc the slot index (lddw advances it by two)."""
    pc = 0
    for insn in insns:
        yield pc, insn
        pc += insn.slots


def slot_count(insns: Iterable[Instruction]) -> int:
    return sum(insn.slots for insn in insns)


def check_program(insns: list[Instruction]) -> None:
    """Whole-program structure: not empty, jumps land on instruction starts, no fall-off."""
    if not insns:
        raise DecodeError("empty program")
    placed = list(iter_pcs(insns))
    starts = {pc for pc, _ in placed}
    last_pc, last = placed[-1]
    nslots = last_pc + last.slots
    for pc, insn in placed:
        target = insn.branch_target(pc)
        if target is None:
            continue
        what = "call" if insn.kind is Kind.CALL else "jump"
        if not 0 <= target < nslots:
            raise DecodeError(f"{OPCODES[insn.opcode].name}: {what} target {target} outside "
                              f"program of {nslots} slots", pc)
        if target not in starts:
            raise DecodeError(f"{OPCODES[insn.opcode].name}: {what} target {target} is the "
                              f"second slot of an lddw", pc)
    _check_function_bounds(placed, nslots)
    if last.kind not in (Kind.EXIT, Kind.JA):
        raise DecodeError(f"last instruction {OPCODES[last.opcode].name} falls off the end of "
                          f"the program", last_pc)


# lddw with this src loads the address of a function (BPF_PSEUDO_FUNC: callbacks).
LDDW_PSEUDO_FUNC = 4


def function_starts(insns: list[Instruction]) -> list[int]:
    """Slots where functions begin: 0, every bpf-to-bpf call target and every callback
    (`lddw rX, func`) target. Each function runs to the next start."""
    return _function_starts(iter_pcs(insns))


def _function_starts(placed: Iterable[tuple[int, Instruction]]) -> list[int]:
    starts = {0}
    for pc, insn in placed:
        if insn.kind is Kind.CALL and insn.src == CALL_LOCAL:
            starts.add(jump_target(pc, insn.imm))
        elif insn.kind is Kind.LDDW and insn.src == LDDW_PSEUDO_FUNC:
            starts.add(jump_target(pc, insn.imm_lo))
    return sorted(starts)


def _check_function_bounds(placed: list[tuple[int, Instruction]], nslots: int) -> None:
    """Jumps stay inside their function, as the kernel verifier requires: control enters a
    function only through a call."""
    starts = _function_starts(placed)
    for pc, insn in placed:
        if insn.kind not in (Kind.JA, Kind.JCOND):
            continue
        target = insn.branch_target(pc)
        i = bisect.bisect_right(starts, pc) - 1
        lo, hi = starts[i], (starts[i + 1] if i + 1 < len(starts) else nslots)
        if not lo <= target < hi:
            raise DecodeError(f"{OPCODES[insn.opcode].name}: jump target {target} is outside its "
                              f"function [{lo}, {hi})", pc)
