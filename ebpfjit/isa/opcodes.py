"""The eBPF instruction set (RFC 9669, ISA v1-v4): the single source of truth for opcode facts.

Every other module (codec, assembler, disassembler, runtime glue, LLVM lowering) asks this table
what an opcode means; none keeps its own opcode list. Field layout of the opcode byte:

    ALU/JMP:  +----------------+--------+--------------------+
              |   op (4 bits)  | src(1) |   class (3 bits)   |
              +----------------+--------+--------------------+
    LD/ST:    +--------+-------+--------+--------------------+
              | mode(3)|size(2)|        |   class (3 bits)   |
              +--------+-------+--------+--------------------+

Must not import anything from ebpfjit except errors.

>>> OPCODES[0x07].name, OPCODES[0x07].mnemonic
('ADD64_IMM', 'add')
>>> OPCODES[0xbc].width
32
>>> OPCODES[0x79].size
8

Imports: (nothing)
"""
from __future__ import annotations

import enum
from dataclasses import dataclass


class Class(enum.IntEnum):
    LD = 0x00
    LDX = 0x01
    ST = 0x02
    STX = 0x03
    ALU = 0x04
    JMP = 0x05
    JMP32 = 0x06
    ALU64 = 0x07


class Size(enum.IntEnum):
    W = 0x00
    H = 0x08
    B = 0x10
    DW = 0x18

    @property
    def nbytes(self) -> int:
        return {Size.W: 4, Size.H: 2, Size.B: 1, Size.DW: 8}[self]

    @property
    def suffix(self) -> str:
        return {Size.W: "w", Size.H: "h", Size.B: "b", Size.DW: "dw"}[self]

    @property
    def ctype(self) -> str:
        return {Size.W: "u32", Size.H: "u16", Size.B: "u8", Size.DW: "u64"}[self]


class Mode(enum.IntEnum):
    IMM = 0x00
    ABS = 0x20
    IND = 0x40
    MEM = 0x60
    MEMSX = 0x80
    ATOMIC = 0xC0


class Source(enum.IntEnum):
    K = 0x00   # operand is the 32-bit immediate
    X = 0x08   # operand is the src register


class AluOp(enum.IntEnum):
    ADD = 0x00
    SUB = 0x10
    MUL = 0x20
    DIV = 0x30
    OR = 0x40
    AND = 0x50
    LSH = 0x60
    RSH = 0x70
    NEG = 0x80
    MOD = 0x90
    XOR = 0xA0
    MOV = 0xB0
    ARSH = 0xC0
    END = 0xD0


class JmpOp(enum.IntEnum):
    JA = 0x00
    JEQ = 0x10
    JGT = 0x20
    JGE = 0x30
    JSET = 0x40
    JNE = 0x50
    JSGT = 0x60
    JSGE = 0x70
    CALL = 0x80
    EXIT = 0x90
    JLT = 0xA0
    JLE = 0xB0
    JSLT = 0xC0
    JSLE = 0xD0


class AtomicOp(enum.IntEnum):
    """The imm field of an atomic instruction. FETCH is or-ed into ADD/OR/AND/XOR."""
    ADD = 0x00
    OR = 0x40
    AND = 0x50
    XOR = 0xA0
    FETCH = 0x01
    XCHG = 0xE0 | 0x01
    CMPXCHG = 0xF0 | 0x01


ATOMIC_IMMS = {
    AtomicOp.ADD: "add", AtomicOp.OR: "or", AtomicOp.AND: "and", AtomicOp.XOR: "xor",
    AtomicOp.ADD | AtomicOp.FETCH: "fetch add", AtomicOp.OR | AtomicOp.FETCH: "fetch or",
    AtomicOp.AND | AtomicOp.FETCH: "fetch and", AtomicOp.XOR | AtomicOp.FETCH: "fetch xor",
    AtomicOp.XCHG: "xchg", AtomicOp.CMPXCHG: "cmpxchg",
}


class Kind(enum.Enum):
    """What an instruction does, at the granularity engines dispatch on."""
    ALU = "alu"           # dst = dst op src|imm (incl. mov, movsx, sdiv/smod via off)
    NEG = "neg"
    ENDIAN = "endian"     # le/be (ALU class) and bswap (ALU64 class)
    JA = "ja"             # JMP: off is the target; JMP32: imm is the target (gotol)
    JCOND = "jcond"
    CALL = "call"         # src 0 helper id, src 1 local call (imm relative), src 2 kfunc
    CALLX = "callx"       # call through the register in dst (the helper id it holds)
    EXIT = "exit"
    LDDW = "lddw"         # two slots; src selects a pseudo form (map fd, map value, ...)
    LDABS = "ldabs"       # legacy packet access: r0 = ntoh(*(size *)(skb->data + imm))
    LDIND = "ldind"       # legacy packet access: r0 = ntoh(*(size *)(skb->data + src + imm))
    LDX = "ldx"
    LDXSX = "ldxsx"       # sign-extending load (v4)
    ST = "st"
    STX = "stx"
    ATOMIC = "atomic"


# ISA v4 signed division/modulo and movsx are encoded in the offset of DIV/MOD/MOV.
SIGNED_OFF = 1
MOVSX_OFFS_64 = (8, 16, 32)
MOVSX_OFFS_32 = (8, 16)
ENDIAN_WIDTHS = (16, 32, 64)

ALU_MNEMONICS = {
    AluOp.ADD: "add", AluOp.SUB: "sub", AluOp.MUL: "mul", AluOp.DIV: "div", AluOp.OR: "or",
    AluOp.AND: "and", AluOp.LSH: "lsh", AluOp.RSH: "rsh", AluOp.NEG: "neg", AluOp.MOD: "mod",
    AluOp.XOR: "xor", AluOp.MOV: "mov", AluOp.ARSH: "arsh",
}
# C-like operator of each ALU op as llvm-objdump and the kernel verifier log print it.
ALU_OPERATORS = {
    AluOp.ADD: "+=", AluOp.SUB: "-=", AluOp.MUL: "*=", AluOp.DIV: "/=", AluOp.OR: "|=",
    AluOp.AND: "&=", AluOp.LSH: "<<=", AluOp.RSH: ">>=", AluOp.MOD: "%=", AluOp.XOR: "^=",
    AluOp.MOV: "=", AluOp.ARSH: "s>>=",
}
JMP_MNEMONICS = {
    JmpOp.JEQ: "jeq", JmpOp.JGT: "jgt", JmpOp.JGE: "jge", JmpOp.JSET: "jset", JmpOp.JNE: "jne",
    JmpOp.JSGT: "jsgt", JmpOp.JSGE: "jsge", JmpOp.JLT: "jlt", JmpOp.JLE: "jle",
    JmpOp.JSLT: "jslt", JmpOp.JSLE: "jsle",
}
JMP_OPERATORS = {
    JmpOp.JEQ: "==", JmpOp.JGT: ">", JmpOp.JGE: ">=", JmpOp.JSET: "&", JmpOp.JNE: "!=",
    JmpOp.JSGT: "s>", JmpOp.JSGE: "s>=", JmpOp.JLT: "<", JmpOp.JLE: "<=",
    JmpOp.JSLT: "s<", JmpOp.JSLE: "s<=",
}
# Lowest ISA version that introduced each conditional jump in the JMP class (JMP32 is v3).
_JMP_ISA = {JmpOp.JLT: 2, JmpOp.JLE: 2, JmpOp.JSLT: 2, JmpOp.JSLE: 2}

GROUPS = ("base32", "base64", "atomic32", "atomic64", "divmul32", "divmul64", "packet", "callx")


@dataclass(frozen=True)
class OpInfo:
    """Everything the engines need to know about one opcode byte.

    `width` is the operand width in bits for ALU/JMP kinds (32 or 64); `size` the access size
    in bytes for memory kinds. `op` is the AluOp/JmpOp; `source` K or X where it applies.
    `isa` is the lowest ISA version (1-4) that has the opcode in its base form (v4 forms that
    live in offset/imm, such as sdiv or movsx, are reported by `insn_isa`).
    """
    opcode: int
    name: str
    mnemonic: str
    kind: Kind
    cls: Class
    group: str
    isa: int = 1
    op: AluOp | JmpOp | None = None
    source: Source | None = None
    width: int = 64
    size: int = 0
    mode: Mode | None = None

    @property
    def is_jump(self) -> bool:
        return self.kind in (Kind.JA, Kind.JCOND)

    @property
    def is_memory(self) -> bool:
        return self.kind in (Kind.LDX, Kind.LDXSX, Kind.ST, Kind.STX, Kind.ATOMIC)

    @property
    def is_store(self) -> bool:
        return self.kind in (Kind.ST, Kind.STX, Kind.ATOMIC)


def _build_table() -> dict[int, OpInfo]:
    table: dict[int, OpInfo] = {}

    def add(info: OpInfo) -> None:
        assert info.opcode not in table, hex(info.opcode)
        table[info.opcode] = info

    for cls, width in ((Class.ALU, 32), (Class.ALU64, 64)):
        suffix = "32" if width == 32 else ""
        base = "base32" if width == 32 else "base64"
        for op, mn in ALU_MNEMONICS.items():
            for src in (Source.K, Source.X):
                if op is AluOp.NEG and src is Source.X:
                    continue   # NEG has only the K encoding (RFC 9669 4.1)
                group = base
                if op in (AluOp.DIV, AluOp.MOD):
                    group = "divmul32" if width == 32 else "divmul64"
                kind = Kind.NEG if op is AluOp.NEG else Kind.ALU
                name = f"{op.name}{width}" + ("" if kind is Kind.NEG else
                                              "_IMM" if src is Source.K else "_REG")
                add(OpInfo(op | src | cls, name, mn + suffix, kind, cls, group, 1, op, src, width))
    # Byte swaps: ALU class K = to little endian, X = to big endian; ALU64 class K = bswap (v4).
    add(OpInfo(AluOp.END | Source.K | Class.ALU, "LE", "le", Kind.ENDIAN, Class.ALU, "base32", 1,
               AluOp.END, Source.K, 32))
    add(OpInfo(AluOp.END | Source.X | Class.ALU, "BE", "be", Kind.ENDIAN, Class.ALU, "base32", 1,
               AluOp.END, Source.X, 32))
    add(OpInfo(AluOp.END | Source.K | Class.ALU64, "BSWAP", "bswap", Kind.ENDIAN, Class.ALU64,
               "base32", 4, AluOp.END, Source.K, 64))

    for cls, width in ((Class.JMP, 64), (Class.JMP32, 32)):
        suffix = "32" if width == 32 else ""
        isa_cls = 3 if width == 32 else 1
        base = "base32" if width == 32 else "base64"
        for op, mn in JMP_MNEMONICS.items():
            for src in (Source.K, Source.X):
                add(OpInfo(op | src | cls, f"{op.name}{suffix}_{'IMM' if src is Source.K else 'REG'}",
                           mn + suffix, Kind.JCOND, cls, base, max(isa_cls, _JMP_ISA.get(op, 1)),
                           op, src, width))
    add(OpInfo(JmpOp.JA | Class.JMP, "JA", "ja", Kind.JA, Class.JMP, "base32", 1, JmpOp.JA, Source.K))
    add(OpInfo(JmpOp.JA | Class.JMP32, "JA32", "ja32", Kind.JA, Class.JMP32, "base32", 4, JmpOp.JA,
               Source.K, 32))
    add(OpInfo(JmpOp.CALL | Class.JMP, "CALL", "call", Kind.CALL, Class.JMP, "base32", 1,
               JmpOp.CALL, Source.K))
    add(OpInfo(JmpOp.CALL | Source.X | Class.JMP, "CALLX", "callx", Kind.CALLX, Class.JMP, "callx", 1,
               JmpOp.CALL, Source.X))
    add(OpInfo(JmpOp.EXIT | Class.JMP, "EXIT", "exit", Kind.EXIT, Class.JMP, "base32", 1,
               JmpOp.EXIT, Source.K))

    add(OpInfo(Mode.IMM | Size.DW | Class.LD, "LD_DW_IMM", "lddw", Kind.LDDW, Class.LD, "base64",
               1, size=8, mode=Mode.IMM))
    for size in (Size.W, Size.H, Size.B):
        add(OpInfo(Mode.ABS | size | Class.LD, f"LD_ABS_{size.name}", "ldabs" + size.suffix,
                   Kind.LDABS, Class.LD, "packet", 1, size=size.nbytes, mode=Mode.ABS))
        add(OpInfo(Mode.IND | size | Class.LD, f"LD_IND_{size.name}", "ldind" + size.suffix,
                   Kind.LDIND, Class.LD, "packet", 1, size=size.nbytes, mode=Mode.IND))
    for size in Size:
        base = "base64" if size is Size.DW else "base32"
        add(OpInfo(Mode.MEM | size | Class.LDX, f"LD_{size.name}_REG", "ldx" + size.suffix, Kind.LDX,
                   Class.LDX, base, 1, size=size.nbytes, mode=Mode.MEM))
        add(OpInfo(Mode.MEM | size | Class.ST, f"ST_{size.name}_IMM", "st" + size.suffix, Kind.ST,
                   Class.ST, base, 1, size=size.nbytes, mode=Mode.MEM))
        add(OpInfo(Mode.MEM | size | Class.STX, f"ST_{size.name}_REG", "stx" + size.suffix, Kind.STX,
                   Class.STX, base, 1, size=size.nbytes, mode=Mode.MEM))
        if size is not Size.DW:
            add(OpInfo(Mode.MEMSX | size | Class.LDX, f"LDSX_{size.name}_REG", "ldxs" + size.suffix,
                       Kind.LDXSX, Class.LDX, "base32", 4, size=size.nbytes, mode=Mode.MEMSX))
    for size, width, group in ((Size.W, 32, "atomic32"), (Size.DW, 64, "atomic64")):
        add(OpInfo(Mode.ATOMIC | size | Class.STX, f"ATOMIC{width}", "lock", Kind.ATOMIC, Class.STX,
                   group, 3, width=width, size=size.nbytes, mode=Mode.ATOMIC))
    return table


OPCODES: dict[int, OpInfo] = _build_table()
LDDW = Mode.IMM | Size.DW | Class.LD   # 0x18, the only two-slot instruction
BY_NAME: dict[str, OpInfo] = {info.name: info for info in OPCODES.values()}

# Helper ids the conformance suite relies on (helper 5 returns its first argument).
MAX_CALL_FRAMES = 8
STACK_SIZE = 512
NUM_REGS = 11
FRAME_POINTER = 10


def insn_isa(opcode: int, off: int, imm: int) -> int:
    """Lowest ISA version that defines this concrete instruction (v4 forms hide in off/imm)."""
    info = OPCODES[opcode]
    if info.kind is Kind.ALU and info.op in (AluOp.DIV, AluOp.MOD) and off == SIGNED_OFF:
        return 4
    if info.kind is Kind.ALU and info.op is AluOp.MOV and off != 0:
        return 4
    return info.isa


def jump_target(pc: int, off: int) -> int:
    """Slot a relative branch at `pc` lands on: offsets count slots from the next instruction."""
    return pc + 1 + off


# Registers a call leaves changed: r0 is its result; r1-r5 are clobbered (the kernel's calling
# convention; our engines zero them after a bpf-to-bpf call).
CALL_WRITES = (0, 1, 2, 3, 4, 5)
_DST_WRITERS = (Kind.ALU, Kind.NEG, Kind.ENDIAN, Kind.LDX, Kind.LDXSX, Kind.LDDW)


def written_registers(info: OpInfo, dst: int, src: int, imm: int) -> tuple[int, ...]:
    """Registers an instruction may change, its result first (the one source of truth for
    the decoder's read-only r10 rule and for every dataflow kill in the lowering).

    Fetching atomics write the old value to src (cmpxchg: to r0); calls of every kind write r0
    and clobber r1-r5; legacy packet loads write r0 and, as in the kernel, clobber r1-r5."""
    kind = info.kind
    if kind in _DST_WRITERS:
        return (dst,)
    if kind in (Kind.CALL, Kind.CALLX, Kind.LDABS, Kind.LDIND):
        return CALL_WRITES
    if kind is Kind.ATOMIC and imm & AtomicOp.FETCH:
        return (0,) if imm == AtomicOp.CMPXCHG else (src,)
    return ()
