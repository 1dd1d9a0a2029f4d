"""The assembler for the bpf_conformance mnemonic dialect: text -> Instructions -> bytes.

The dialect is the one the `.data` test vectors use (conformance README 1.2): `%r0`..`%r10`
(`r0` without `%` is accepted too), memory operands `[%rN]`, `[%rN+off]`, `[%rN-off]`, labels
`name:` (alone on a line or before an instruction), and the implicit label `exit` for the first
`exit` instruction unless a label of that name is defined.

Numbers: `0x...` is hex and read as an unsigned bit pattern of the field's width (so
`0xffffffff` is -1 in a 32-bit imm, `0xffff` -1 in a 16-bit offset); decimal is signed and
must fit the signed field (int32 imm, int16 offset). `lddw` takes any 64-bit value: hex up to
`0xffffffffffffffff` or signed/unsigned decimal. Jump targets are a label or `+N`/`-N`
(slots, relative to the next instruction); `lddw` counts two slots.

Mnemonics are derived from `isa.OPCODES` (no second opcode list), plus the dialect's spellings:
`sdiv`/`smod` (div/mod with off 1), `movsx{8,16,32}{32,64}` (mov reg with off = source width),
`le16`/`be32`/`bswap64` (alias `swap64`), `lock [fetch] add|or|and|xor[32]`, `lock xchg[32]`,
`lock cmpxchg[32]`, `ja`, `ja32` (gotol: target in imm), `call N` / `call helper N` (helper),
`call local target` (bpf-to-bpf, src 1), `call runtime N` (kfunc, src 2), `call %rN` (callx,
register in dst), `ldabs{b,h,w} imm`, `ldind{b,h,w} %rS, imm`, `exit`.

The parser (`parse`) turns lines into `Statement`s of typed operands; the encoder
(`encode_statements`) turns those into `insn.Instruction`s. The assembler checks syntax and field
ranges only; whole-program rules (writes to r10, jumps outside the program, falling off the end)
are `insn.decode`'s job.

Must not import: anything but isa, insn and errors.

>>> assemble("mov32 %r0, 7\\nexit").hex()
'b4000000070000009500000000000000'
>>> assemble_insns("lddw %r1, 0x100000000\\nja exit\\nexit")
[Instruction(opcode=0x18, dst=1, src=0, off=0, imm=4294967296), \
Instruction(opcode=0x05, dst=0, src=0, off=0, imm=0), Instruction(opcode=0x95, dst=0, src=0, off=0, imm=0)]
>>> assemble("add %r11, 1")
Traceback (most recent call last):
    ...
ebpfjit.errors.AssemblerError: line 1 ('add %r11, 1'): invalid register r11

Imports: ebpfjit.errors, ebpfjit.isa.insn, ebpfjit.isa.opcodes
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import AssemblerError
from .insn import CALL_HELPER, CALL_KFUNC, CALL_LOCAL, MAX_REG, Instruction, encode
from .opcodes import (
    ATOMIC_IMMS,
    ENDIAN_WIDTHS,
    MOVSX_OFFS_32,
    MOVSX_OFFS_64,
    OPCODES,
    SIGNED_OFF,
    AluOp,
    Kind,
    Source,
)

__all__ = ["assemble", "assemble_insns", "parse", "encode_statements", "Statement", "Reg", "Mem",
           "Num", "Word", "MNEMONICS"]


# ---------------------------------------------------------------------------------------------
# Operands and statements (parser output)

@dataclass(frozen=True)
class Reg:
    """A register operand `%rN` (or `rN`)."""
    num: int

    def __str__(self) -> str:
        return f"%r{self.num}"


@dataclass(frozen=True)
class Mem:
    """A memory operand `[%rN+off]`; `off` is already range-checked as a signed 16-bit value."""
    reg: int
    off: int

    def __str__(self) -> str:
        return f"[%r{self.reg}{self.off:+d}]" if self.off else f"[%r{self.reg}]"


@dataclass(frozen=True)
class Num:
    """A number as written: `value` is the mathematical value (`-0x10` is -16, `0xffffffff` is
    4294967295); `hex` and `signed` (a leading `+`/`-`) tell the encoder how it was spelled."""
    value: int
    text: str
    hex: bool
    signed: bool

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Word:
    """A bare identifier: a label or a keyword (`fetch`, `helper`, `local`, ...)."""
    text: str

    def __str__(self) -> str:
        return self.text


Operand = Reg | Mem | Num | Word


@dataclass(frozen=True)
class Statement:
    """One instruction line: `labels` defined just before it, mnemonic and operands."""
    line: int
    text: str
    mnemonic: str
    operands: tuple[Operand, ...]
    labels: tuple[str, ...] = ()


_TOKEN = re.compile(r"\[[^\]]*\]?|[^\s,\[]+")
_NUMBER = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|[0-9]+)")
_LABEL = re.compile(r"[A-Za-z_.$][\w.$]*")
_REG = re.compile(r"%?r(\d+)")
_MEM = re.compile(r"\[\s*([^\s+\-\]]+)\s*(?:([+-])\s*([^\s\]]+)\s*)?\]")


def _error(message: str, line: int | None, text: str | None) -> AssemblerError:
    return AssemblerError(message, line=line, text=text)


def _parse_number(token: str) -> Num | None:
    if not _NUMBER.fullmatch(token):
        return None
    body = token.lstrip("+-")
    is_hex = body[:2].lower() == "0x"
    value = int(body, 16) if is_hex else int(body, 10)
    if token.startswith("-"):
        value = -value
    return Num(value, token, is_hex, token[0] in "+-")


def _parse_register(token: str, line: int, text: str) -> Reg | None:
    m = _REG.fullmatch(token)
    if m is None:
        if token.startswith("%"):
            raise _error(f"invalid register {token[1:]}", line, text)
        return None
    num = int(m.group(1))
    if num > MAX_REG:
        raise _error(f"invalid register r{num}", line, text)
    return Reg(num)


def _parse_operand(token: str, line: int, text: str) -> Operand:
    if token.startswith("["):
        m = _MEM.fullmatch(token)
        if m is None:
            raise _error(f"malformed memory operand {token!r}", line, text)
        reg = _parse_register(m.group(1), line, text)
        if reg is None:
            raise _error(f"invalid register {m.group(1).lstrip('%')} in memory operand", line, text)
        off = 0
        if m.group(2):
            num = _parse_number(m.group(2) + m.group(3))
            if num is None:
                raise _error(f"invalid offset {m.group(3)!r} in memory operand", line, text)
            off = _field(num, 16, "offset", line, text)
        return Mem(reg.num, off)
    reg = _parse_register(token, line, text)
    if reg is not None:
        return reg
    num = _parse_number(token)
    if num is not None:
        return num
    if _LABEL.fullmatch(token):
        return Word(token)
    raise _error(f"invalid operand {token!r}", line, text)


def parse(text: str) -> list[Statement]:
    """Parse assembler text into statements (labels attached to the next instruction).

    `#` starts a comment. Labels at the end of the text (after the last instruction) are kept
    on a statement with an empty mnemonic, so that `ja end` to the slot after the program can
    still be encoded (and then rejected by `insn.decode`).

    Raises:
        AssemblerError: bad registers, malformed memory operands or numbers, duplicate labels.
    """
    statements: list[Statement] = []
    pending: list[str] = []
    seen: dict[str, int] = {}
    last_line = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        last_line = lineno
        line = raw.split("#", 1)[0].strip()
        while True:
            m = re.match(r"([^\s:\[\],]+)\s*:", line)
            if m is None:
                break
            name = m.group(1)
            if not _LABEL.fullmatch(name) or _REG.fullmatch(name):
                raise _error(f"invalid label name {name!r}", lineno, raw)
            if name in seen:
                raise _error(f"duplicate label {name!r} (first defined on line {seen[name]})",
                             lineno, raw)
            seen[name] = lineno
            pending.append(name)
            line = line[m.end():].strip()
        if not line:
            continue
        tokens = _TOKEN.findall(line)
        mnemonic, args = tokens[0], tokens[1:]
        if not re.fullmatch(r"[a-z][a-z0-9]*", mnemonic):
            raise _error(f"invalid mnemonic {mnemonic!r}", lineno, raw)
        operands = tuple(_parse_operand(tok, lineno, raw) for tok in args)
        statements.append(Statement(lineno, raw, mnemonic, operands, tuple(pending)))
        pending = []
    if pending:
        statements.append(Statement(last_line, "", "", (), tuple(pending)))
    return statements


# ---------------------------------------------------------------------------------------------
# Mnemonic table, built from isa.OPCODES

@dataclass(frozen=True)
class Form:
    """How one mnemonic encodes: `handler` picks the operand syntax; `opcodes` maps the source
    (K immediate / X register) to the opcode byte; `off`/`imm` are fixed field values."""
    handler: str
    opcodes: dict[Source | None, int]
    off: int = 0
    imm: int = 0


def _build_mnemonics() -> dict[str, Form]:
    table: dict[str, Form] = {}
    by_kind: dict[tuple[str, Kind], dict[Source | None, int]] = {}
    for opcode, info in sorted(OPCODES.items()):
        if info.kind in (Kind.ALU, Kind.JCOND):
            by_kind.setdefault((info.mnemonic, info.kind), {})[info.source] = opcode
    for (mnemonic, kind), opcodes in by_kind.items():
        table[mnemonic] = Form("alu" if kind is Kind.ALU else "jcond", opcodes)
        if kind is Kind.ALU:
            info = OPCODES[opcodes[Source.K]]
            if info.op in (AluOp.DIV, AluOp.MOD):
                table["s" + mnemonic] = Form("alu", opcodes, off=SIGNED_OFF)
            if info.op is AluOp.MOV:
                widths = MOVSX_OFFS_32 if info.width == 32 else MOVSX_OFFS_64
                for frm in widths:
                    table[f"movsx{frm}{info.width}"] = Form("reg2", {Source.X: opcodes[Source.X]},
                                                            off=frm)
    for opcode, info in sorted(OPCODES.items()):
        kind = info.kind
        if kind is Kind.NEG:
            table[info.mnemonic] = Form("reg1", {None: opcode})
        elif kind is Kind.ENDIAN:
            names = ("bswap", "swap") if info.mnemonic == "bswap" else (info.mnemonic,)
            for name in names:
                for width in ENDIAN_WIDTHS:
                    table[f"{name}{width}"] = Form("reg1", {None: opcode}, imm=width)
        elif kind is Kind.JA:
            table[info.mnemonic] = Form("ja", {None: opcode})
        elif kind is Kind.CALL:
            table[info.mnemonic] = Form("call", {Source.K: opcode})
        elif kind is Kind.CALLX:
            table["call"].opcodes[Source.X] = opcode
        elif kind is Kind.EXIT:
            table[info.mnemonic] = Form("none", {None: opcode})
        elif kind is Kind.LDDW:
            table[info.mnemonic] = Form("lddw", {None: opcode})
        elif kind is Kind.LDABS:
            table[info.mnemonic] = Form("ldabs", {None: opcode})
        elif kind is Kind.LDIND:
            table[info.mnemonic] = Form("ldind", {None: opcode})
        elif kind in (Kind.LDX, Kind.LDXSX):
            table[info.mnemonic] = Form("ldx", {None: opcode})
        elif kind is Kind.ST:
            table[info.mnemonic] = Form("st", {None: opcode})
        elif kind is Kind.STX:
            table[info.mnemonic] = Form("stx", {None: opcode})
        elif kind is Kind.ATOMIC:
            table.setdefault("lock", Form("lock", {}))
            table["lock"].opcodes[info.width] = opcode   # keyed by width: 32 or 64
    return table


MNEMONICS: dict[str, Form] = _build_mnemonics()
_ATOMIC_BY_NAME = {name: imm for imm, name in ATOMIC_IMMS.items()}


# ---------------------------------------------------------------------------------------------
# Encoder

def _field(num: Num, bits: int, what: str, line: int | None, text: str | None) -> int:
    """Value of `num` for a signed field of `bits` bits: hex is an unsigned bit pattern,
    decimal must fit the signed range. Returns the signed value."""
    half = 1 << (bits - 1)
    if num.hex and not num.value < 0:
        ok = num.value < (1 << bits)
    else:
        ok = -half <= num.value < half
    if not ok:
        noun = "immediate" if what == "imm" else what
        raise _error(f"{noun} {num.text} out of range for a {bits}-bit field", line, text)
    value = num.value & ((1 << bits) - 1)
    return value - (1 << bits) if value & half else value


class _Encoder:
    def __init__(self, statements: list[Statement]):
        self.statements = statements
        self.labels: dict[str, int] = {}
        self.pcs: list[int] = []
        pc = 0
        first_exit = None
        for st in statements:
            for name in st.labels:
                self.labels[name] = pc
            self.pcs.append(pc)
            if st.mnemonic == "exit" and first_exit is None:
                first_exit = pc
            if st.mnemonic:
                pc += 2 if st.mnemonic == "lddw" else 1
        if first_exit is not None:
            self.labels.setdefault("exit", first_exit)
        self.st: Statement = statements[0] if statements else Statement(0, "", "", ())
        self.pc = 0

    def error(self, message: str) -> AssemblerError:
        return _error(message, self.st.line, self.st.text)

    def run(self) -> list[Instruction]:
        out = []
        for st, pc in zip(self.statements, self.pcs):
            if not st.mnemonic:
                continue
            self.st, self.pc = st, pc
            form = MNEMONICS.get(st.mnemonic)
            if form is None:
                raise self.error(f"unknown mnemonic {st.mnemonic!r}")
            out.append(getattr(self, "_enc_" + form.handler)(form, st.operands))
        return out

    # operand helpers
    def count(self, operands: tuple[Operand, ...], *allowed: int) -> None:
        if len(operands) not in allowed:
            want = " or ".join(str(n) for n in allowed)
            plural = "" if allowed == (1,) else "s"
            raise self.error(f"wrong number of operands for {self.st.mnemonic!r}: expected {want} "
                             f"operand{plural}, got {len(operands)}")

    def reg(self, op: Operand) -> int:
        if not isinstance(op, Reg):
            raise self.error(f"expected a register, got {str(op)!r}")
        return op.num

    def mem(self, op: Operand) -> Mem:
        if not isinstance(op, Mem):
            raise self.error(f"expected a memory operand [%rN+off], got {str(op)!r}")
        return op

    def imm32(self, op: Operand) -> int:
        if not isinstance(op, Num):
            raise self.error(f"expected an immediate, got {str(op)!r}")
        return _field(op, 32, "imm", self.st.line, self.st.text)

    def target(self, op: Operand, bits: int) -> int:
        """Relative slot offset of a jump/call operand: a label, or a signed `+N`/`-N`."""
        if isinstance(op, Word):
            if op.text not in self.labels:
                raise self.error(f"unknown label {op.text!r}")
            off = self.labels[op.text] - self.pc - 1
        elif isinstance(op, Num) and op.signed:
            off = op.value
        else:
            raise self.error(f"invalid jump target {str(op)!r} (expected a label or +N/-N)")
        if not -(1 << (bits - 1)) <= off < (1 << (bits - 1)):
            raise self.error(f"jump offset {off} out of range for a {bits}-bit field")
        return off

    # handlers (one per operand syntax)
    def _enc_alu(self, form: Form, ops: tuple[Operand, ...]) -> Instruction:
        self.count(ops, 2)
        dst = self.reg(ops[0])
        if isinstance(ops[1], Reg):
            return Instruction(form.opcodes[Source.X], dst, ops[1].num, form.off, 0)
        return Instruction(form.opcodes[Source.K], dst, 0, form.off, self.imm32(ops[1]))

    def _enc_reg2(self, form: Form, ops: tuple[Operand, ...]) -> Instruction:
        self.count(ops, 2)
        return Instruction(form.opcodes[Source.X], self.reg(ops[0]), self.reg(ops[1]), form.off, 0)

    def _enc_reg1(self, form: Form, ops: tuple[Operand, ...]) -> Instruction:
        self.count(ops, 1)
        return Instruction(form.opcodes[None], self.reg(ops[0]), 0, 0, form.imm)

    def _enc_none(self, form: Form, ops: tuple[Operand, ...]) -> Instruction:
        self.count(ops, 0)
        return Instruction(form.opcodes[None])

    def _enc_jcond(self, form: Form, ops: tuple[Operand, ...]) -> Instruction:
        self.count(ops, 3)
        dst = self.reg(ops[0])
        off = self.target(ops[2], 16)
        if isinstance(ops[1], Reg):
            return Instruction(form.opcodes[Source.X], dst, ops[1].num, off, 0)
        return Instruction(form.opcodes[Source.K], dst, 0, off, self.imm32(ops[1]))

    def _enc_ja(self, form: Form, ops: tuple[Operand, ...]) -> Instruction:
        self.count(ops, 1)
        opcode = form.opcodes[None]
        if OPCODES[opcode].width == 32:          # ja32 = gotol: the target lives in imm
            return Instruction(opcode, imm=self.target(ops[0], 32))
        return Instruction(opcode, off=self.target(ops[0], 16))

    def _enc_call(self, form: Form, ops: tuple[Operand, ...]) -> Instruction:
        self.count(ops, 1, 2)
        if len(ops) == 1:
            if isinstance(ops[0], Reg):
                return Instruction(form.opcodes[Source.X], dst=ops[0].num)
            return Instruction(form.opcodes[Source.K], src=CALL_HELPER, imm=self.imm32(ops[0]))
        mode = ops[0].text if isinstance(ops[0], Word) else str(ops[0])
        if mode == "helper":
            if isinstance(ops[1], Reg):
                return Instruction(form.opcodes[Source.X], dst=ops[1].num)
            return Instruction(form.opcodes[Source.K], src=CALL_HELPER, imm=self.imm32(ops[1]))
        if mode == "local":
            return Instruction(form.opcodes[Source.K], src=CALL_LOCAL, imm=self.target(ops[1], 32))
        if mode == "runtime":
            return Instruction(form.opcodes[Source.K], src=CALL_KFUNC, imm=self.imm32(ops[1]))
        raise self.error(f"invalid call mode {mode!r} (expected helper, local or runtime)")

    def _enc_lddw(self, form: Form, ops: tuple[Operand, ...]) -> Instruction:
        self.count(ops, 2)
        dst = self.reg(ops[0])
        num = ops[1]
        if not isinstance(num, Num):
            raise self.error(f"expected an immediate, got {str(num)!r}")
        if num.value < 0:
            ok = not num.hex and num.value >= -(1 << 63)
        else:
            ok = num.value < (1 << 64)
        if not ok:
            raise self.error(f"immediate {num.text} out of range for a 64-bit field")
        return Instruction(form.opcodes[None], dst, 0, 0, num.value & ((1 << 64) - 1))

    def _enc_ldabs(self, form: Form, ops: tuple[Operand, ...]) -> Instruction:
        self.count(ops, 1)
        return Instruction(form.opcodes[None], imm=self.imm32(ops[0]))

    def _enc_ldind(self, form: Form, ops: tuple[Operand, ...]) -> Instruction:
        self.count(ops, 2)
        return Instruction(form.opcodes[None], src=self.reg(ops[0]), imm=self.imm32(ops[1]))

    def _enc_ldx(self, form: Form, ops: tuple[Operand, ...]) -> Instruction:
        self.count(ops, 2)
        dst = self.reg(ops[0])
        mem = self.mem(ops[1])
        return Instruction(form.opcodes[None], dst, mem.reg, mem.off, 0)

    def _enc_st(self, form: Form, ops: tuple[Operand, ...]) -> Instruction:
        self.count(ops, 2)
        mem = self.mem(ops[0])
        return Instruction(form.opcodes[None], mem.reg, 0, mem.off, self.imm32(ops[1]))

    def _enc_stx(self, form: Form, ops: tuple[Operand, ...]) -> Instruction:
        self.count(ops, 2)
        mem = self.mem(ops[0])
        return Instruction(form.opcodes[None], mem.reg, self.reg(ops[1]), mem.off, 0)

    def _enc_lock(self, form: Form, ops: tuple[Operand, ...]) -> Instruction:
        words = []
        rest = list(ops)
        while rest and isinstance(rest[0], Word):
            words.append(rest.pop(0).text)
        if not words or len(rest) != 2 or len(words) > 2:
            raise self.error("invalid number of operands for lock: expected "
                             "'lock [fetch] op[32] [%rN+off], %rM'")
        name = " ".join(words)
        width = 64
        if name.endswith("32"):
            name, width = name[:-2], 32
        imm = _ATOMIC_BY_NAME.get(name)
        if imm is None:
            raise self.error(f"invalid atomic operation {' '.join(words)!r}")
        mem = self.mem(rest[0])
        return Instruction(form.opcodes[width], mem.reg, self.reg(rest[1]), mem.off, int(imm))


def encode_statements(statements: list[Statement]) -> list[Instruction]:
    """Encode parsed statements, resolving labels (and the implicit `exit` label).

    Raises:
        AssemblerError: unknown mnemonic or label, wrong operand count or kind, out-of-range
        immediate, offset or jump distance.
    """
    return _Encoder(statements).run()


def assemble_insns(text: str) -> list[Instruction]:
    """Assemble `text` into instructions (an `lddw` is one Instruction with a 64-bit imm).

    Raises:
        AssemblerError: naming the 1-based line and its text.
    """
    return encode_statements(parse(text))


def assemble(text: str) -> bytes:
    """Assemble `text` into bytecode (8 bytes per slot, little endian).

    Raises:
        AssemblerError: naming the 1-based line and its text.
    """
    return encode(assemble_insns(text))
