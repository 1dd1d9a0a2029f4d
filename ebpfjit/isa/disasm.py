"""The disassembler: Instructions -> text, in llvm-objdump's C-like syntax or the conformance dialect.

Two syntaxes:

* ``"llvm"`` mirrors ``llvm-objdump-19 -d`` (and so, mostly, the kernel verifier log), checked
  against real clang-19 objects (see tests/test_disasm.py): ``r0 = *(u32 *)(r1 + 0x4)``,
  ``w0 = w1``, ``r1 s/= r2``, ``r1 = (s8)r2``, ``r0 = -r0``, ``r1 = be16 r1``,
  ``r1 = bswap64 r1``, ``r1 = 0x100000000 ll``, ``if r1 > r2 goto +0x16``, ``gotol +0x3``,
  ``call 0x5``, ``callx r2``, ``lock *(u64 *)(r10 - 0x8) += r1``,
  ``r0 = atomic_fetch_add((u64 *)(r1 + 0x0), r0)``, ``r0 = cmpxchg_64(r1 + 0x0, r0, r2)``,
  ``r0 = *(u32 *)skb[0x4]``, ``exit``. Immediates and offsets are signed hex, as llvm prints them.
  Differences from llvm-objdump-19, on purpose:

  - 32-bit atomics use the spelling llvm-objdump prints with ``--mattr=+alu32``
    (``lock *(u32 *)(r1 + 0x0) += w2``, ``w2 = atomic_fetch_and((u32 *)(r1 + 0x8), w2)``,
    ``w2 = xchg32_32(r1 + 0x8, w2)``, ``w0 = cmpxchg32_32(r1 + 0x8, w0, w2)``); without it
    llvm-objdump-19 prints ``<unknown>`` for most of them and misprints fetch-add as a plain add.
  - A bpf-to-bpf call prints ``call pc+0x1`` (the kernel log's ``pc+N``, in hex); llvm-objdump
    prints ``call 0x1``, the same text as helper 1. A kfunc call prints ``call kfunc 0x7``.
  - ``ldind`` shows its immediate when non-zero (``r0 = *(u32 *)skb[r1 + 0x4]``); llvm drops it.
  - An ``lddw`` with a pseudo source prints ``r1 = map_fd(0x3) ll`` (llvm prints the relocated
    value, the kernel ``map[id:..]``); names: map_fd, map_value, btf_id, func, map_idx,
    map_idx_value for src 1..6. Given the object's map names, src 1/2 print bpftool's
    ``r1 = map[counts] ll`` / ``r1 = map[.bss][0]+0x4 ll``; given line info, each record's
    source line precedes its instruction as ``; <text> @ file:line``.
  - There is no ``<sym+off>`` annotation after jumps (there are no symbols); with ``labels=True``
    jumps get ``<L12>`` and each target slot gets an ``L12:`` line.

* ``"conformance"`` is the bpf_conformance mnemonic dialect that `ebpfjit.asm` reads, so
  ``assemble(disassemble(code, "conformance")) == code`` for every program it can express (all
  of the conformance suite). Immediates are decimal when ``|imm| <= 0xffff``, else the unsigned
  hex bit pattern; offsets are decimal (``[%r10-8]``, ``[%r1+0]``); jumps use ``+N``/``-N`` or,
  with ``labels=True``, ``L<pc>`` labels. An lddw with a pseudo source cannot be expressed and
  gets a ``# src=N`` comment (it assembles back with src 0).

Listings: with ``pcs`` (the default for ``"llvm"``) each line starts with the slot index right
aligned, like llvm-objdump (``   0: r0 = 0x7``); for ``"conformance"`` the pc is a trailing
``# pc N`` comment so the listing still assembles. An lddw advances the pc by two.

Must not import: anything but isa, insn and errors.

>>> code = bytes.fromhex("b701000007000000" "1d21010000000000" "87010000" "00000000" "9500000000000000")
>>> print(disassemble(code))
   0: r1 = 0x7
   1: if r1 == r2 goto +0x1
   2: r1 = -r1
   3: exit
>>> print(disassemble(code, "conformance", labels=True))
mov %r1, 7
jeq %r1, %r2, L3
neg %r1
L3:
exit
>>> format_insn(Instruction(0x61, dst=0, src=1, off=4))
'r0 = *(u32 *)(r1 + 0x4)'

Imports: ebpfjit.isa.insn, ebpfjit.isa.opcodes
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from .insn import CALL_HELPER, CALL_KFUNC, CALL_LOCAL, Instruction, decode, iter_pcs
from .opcodes import (
    ALU_OPERATORS,
    ATOMIC_IMMS,
    JMP_OPERATORS,
    OPCODES,
    SIGNED_OFF,
    AluOp,
    AtomicOp,
    Class,
    Kind,
    Source,
)

__all__ = ["disassemble", "format_insn", "SYNTAXES"]

SYNTAXES = ("llvm", "conformance")
LDDW_PSEUDO = {1: "map_fd", 2: "map_value", 3: "btf_id", 4: "func", 5: "map_idx",
               6: "map_idx_value"}
_ATOMIC_LLVM = {AtomicOp.ADD: "+=", AtomicOp.OR: "|=", AtomicOp.AND: "&=", AtomicOp.XOR: "^="}


def _shex(value: int) -> str:
    """Signed hex as llvm prints immediates: 0x7, -0x2."""
    return f"-{-value:#x}" if value < 0 else f"{value:#x}"


def _rel(value: int) -> str:
    """Signed hex with an explicit sign, as llvm prints branch offsets: +0x1, -0x3, +0x0."""
    return f"-{-value:#x}" if value < 0 else f"+{value:#x}"


def _s64(value: int) -> int:
    return value - (1 << 64) if value & (1 << 63) else value


def _mem_llvm(reg: int, off: int) -> str:
    return f"r{reg} - {-off:#x}" if off < 0 else f"r{reg} + {off:#x}"


def _target(insn: Instruction, pc: int | None, off: int, labels: dict[int, str] | None) -> str:
    if labels is not None and pc is not None and pc + 1 + off in labels:
        return labels[pc + 1 + off]
    return ""


def _llvm(insn: Instruction, pc: int | None, labels: dict[int, str] | None,
          map_names: Sequence[str] | None = None) -> str:
    info = OPCODES.get(insn.opcode)
    if info is None:
        return "<unknown>"
    kind = info.kind
    w = "w" if info.width == 32 else "r"
    d, s, off, imm = insn.dst, insn.src, insn.off, insn.imm
    if kind is Kind.ALU:
        if info.op is AluOp.MOV and info.source is Source.X and off:
            return f"{w}{d} = (s{off}){w}{s}"
        operator = ALU_OPERATORS[info.op]
        if info.op in (AluOp.DIV, AluOp.MOD) and off == SIGNED_OFF:
            operator = "s" + operator
        rhs = f"{w}{s}" if info.source is Source.X else _shex(imm)
        return f"{w}{d} {operator} {rhs}"
    if kind is Kind.NEG:
        return f"{w}{d} = -{w}{d}"
    if kind is Kind.ENDIAN:
        return f"r{d} = {info.mnemonic}{imm} r{d}"
    if kind is Kind.LDDW:
        if s in (1, 2) and map_names is not None and 0 <= (insn.imm & 0xFFFFFFFF) < len(map_names):
            # bpftool's form, with the object's map name: map[counts], map[.bss][0]+0x4.
            name = map_names[insn.imm & 0xFFFFFFFF]
            if s == 1:
                return f"r{d} = map[{name}] ll"
            return f"r{d} = map[{name}][0]+{(insn.imm >> 32) & 0xFFFFFFFF:#x} ll"
        if s in LDDW_PSEUDO:
            return f"r{d} = {LDDW_PSEUDO[s]}({_shex(_s64(imm))}) ll"
        return f"r{d} = {_shex(_s64(imm))} ll"
    if kind in (Kind.LDX, Kind.LDXSX):
        sign = "s" if kind is Kind.LDXSX else "u"
        return f"r{d} = *({sign}{info.size * 8} *)({_mem_llvm(s, off)})"
    if kind is Kind.ST:
        return f"*(u{info.size * 8} *)({_mem_llvm(d, off)}) = {_shex(imm)}"
    if kind is Kind.STX:
        return f"*(u{info.size * 8} *)({_mem_llvm(d, off)}) = r{s}"
    if kind is Kind.ATOMIC:
        bits = info.size * 8
        mem = _mem_llvm(d, off)
        if imm == AtomicOp.XCHG:
            return f"{w}{s} = xchg{'32' if bits == 32 else ''}_{bits}({mem}, {w}{s})"
        if imm == AtomicOp.CMPXCHG:
            return f"{w}0 = cmpxchg{'32' if bits == 32 else ''}_{bits}({mem}, {w}0, {w}{s})"
        base = imm & ~AtomicOp.FETCH
        if imm & AtomicOp.FETCH and base in _ATOMIC_LLVM:
            name = ATOMIC_IMMS[AtomicOp(base)]
            return f"{w}{s} = atomic_fetch_{name}((u{bits} *)({mem}), {w}{s})"
        if imm in _ATOMIC_LLVM:
            return f"lock *(u{bits} *)({mem}) {_ATOMIC_LLVM[AtomicOp(imm)]} {w}{s}"
        return "<unknown>"
    if kind is Kind.JA:
        rel = imm if info.cls is Class.JMP32 else off
        label = _target(insn, pc, rel, labels)
        text = f"{'gotol' if info.cls is Class.JMP32 else 'goto'} {_rel(rel)}"
        return text + (f" <{label}>" if label else "")
    if kind is Kind.JCOND:
        rhs = f"{w}{s}" if info.source is Source.X else _shex(imm)
        label = _target(insn, pc, off, labels)
        text = f"if {w}{d} {JMP_OPERATORS[info.op]} {rhs} goto {_rel(off)}"
        return text + (f" <{label}>" if label else "")
    if kind is Kind.CALL:
        if s == CALL_LOCAL:
            label = _target(insn, pc, imm, labels)
            return f"call pc{_rel(imm)}" + (f" <{label}>" if label else "")
        if s == CALL_KFUNC:
            return f"call kfunc {_shex(imm)}"
        return f"call {_shex(imm)}"
    if kind is Kind.CALLX:
        return f"callx r{d}"
    if kind is Kind.EXIT:
        return "exit"
    if kind is Kind.LDABS:
        return f"r0 = *(u{info.size * 8} *)skb[{_shex(imm)}]"
    if kind is Kind.LDIND:
        extra = "" if imm == 0 else (f" - {-imm:#x}" if imm < 0 else f" + {imm:#x}")
        return f"r0 = *(u{info.size * 8} *)skb[r{s}{extra}]"
    raise AssertionError(kind)


def _num(value: int, bits: int = 32) -> str:
    """Conformance-dialect immediate: decimal when small, else the unsigned hex bit pattern."""
    if -0xFFFF <= value <= 0xFFFF:
        return str(value)
    return f"{value & ((1 << bits) - 1):#x}"


def _mem_conf(reg: int, off: int) -> str:
    return f"[%r{reg}{off:+d}]"


def _conformance(insn: Instruction, pc: int | None, labels: dict[int, str] | None,
                 map_names: Sequence[str] | None = None) -> str:
    info = OPCODES.get(insn.opcode)
    if info is None:
        return f"# unknown opcode {insn.opcode:#04x}"
    kind = info.kind
    d, s, off, imm = insn.dst, insn.src, insn.off, insn.imm

    def target(rel: int) -> str:
        return _target(insn, pc, rel, labels) or f"{rel:+d}"

    if kind is Kind.ALU:
        mn = info.mnemonic
        if info.op is AluOp.MOV and info.source is Source.X and off:
            return f"movsx{off}{info.width} %r{d}, %r{s}"
        if info.op in (AluOp.DIV, AluOp.MOD) and off == SIGNED_OFF:
            mn = "s" + mn
        rhs = f"%r{s}" if info.source is Source.X else _num(imm)
        return f"{mn} %r{d}, {rhs}"
    if kind is Kind.NEG:
        return f"{info.mnemonic} %r{d}"
    if kind is Kind.ENDIAN:
        return f"{info.mnemonic}{imm} %r{d}"
    if kind is Kind.LDDW:
        text = f"lddw %r{d}, {imm if imm <= 0xFFFF else hex(imm)}"
        return text + (f"  # src={s}" if s else "")
    if kind in (Kind.LDX, Kind.LDXSX):
        return f"{info.mnemonic} %r{d}, {_mem_conf(s, off)}"
    if kind is Kind.ST:
        return f"{info.mnemonic} {_mem_conf(d, off)}, {_num(imm)}"
    if kind is Kind.STX:
        return f"{info.mnemonic} {_mem_conf(d, off)}, %r{s}"
    if kind is Kind.ATOMIC:
        name = ATOMIC_IMMS.get(imm)
        if name is None:
            return f"# invalid atomic operation {imm:#x}"
        return f"lock {name}{'32' if info.width == 32 else ''} {_mem_conf(d, off)}, %r{s}"
    if kind is Kind.JA:
        return f"{info.mnemonic} {target(imm if info.cls is Class.JMP32 else off)}"
    if kind is Kind.JCOND:
        rhs = f"%r{s}" if info.source is Source.X else _num(imm)
        return f"{info.mnemonic} %r{d}, {rhs}, {target(off)}"
    if kind is Kind.CALL:
        if s == CALL_LOCAL:
            return f"call local {target(imm)}"
        if s == CALL_KFUNC:
            return f"call runtime {_num(imm)}"
        return f"call {_num(imm)}" if s == CALL_HELPER else f"# call with src={s}"
    if kind is Kind.CALLX:
        return f"call %r{d}"
    if kind is Kind.EXIT:
        return "exit"
    if kind is Kind.LDABS:
        return f"{info.mnemonic} {_num(imm)}"
    if kind is Kind.LDIND:
        return f"{info.mnemonic} %r{s}, {_num(imm)}"
    raise AssertionError(kind)


_FORMATTERS = {"llvm": _llvm, "conformance": _conformance}


def format_insn(insn: Instruction, pc: int | None = None, syntax: str = "llvm", *,
                labels: dict[int, str] | None = None,
                map_names: Sequence[str] | None = None) -> str:
    """One instruction as text (no pc prefix).

    Args:
        insn: the instruction (an lddw is one instruction).
        pc: its slot index; needed only to resolve jump targets to `labels`.
        syntax: "llvm" (llvm-objdump's C-like syntax) or "conformance" (the mnemonic dialect).
        labels: slot -> label name; jumps to those slots print the name.
        map_names: the object's map names by index: an lddw of a map (src 1/2) prints
            ``map[NAME]`` / ``map[NAME][0]+0x4`` (bpftool's form) instead of ``map_fd(0x0)``.

    >>> format_insn(Instruction(0xbf, dst=1, src=2, off=8))
    'r1 = (s8)r2'
    >>> format_insn(Instruction(0xbf, dst=1, src=2, off=8), syntax="conformance")
    'movsx864 %r1, %r2'
    """
    try:
        formatter = _FORMATTERS[syntax]
    except KeyError:
        raise ValueError(f"unknown syntax {syntax!r} (expected one of {', '.join(SYNTAXES)})") from None
    return formatter(insn, pc, labels, map_names)


def disassemble(code_or_insns: bytes | bytearray | memoryview | Iterable[Instruction],
                syntax: str = "llvm", *, labels: bool = False, pcs: bool | None = None,
                map_names: Sequence[str] | None = None,
                line_info: Sequence[tuple[int, str, int, str]] = ()) -> str:
    """Disassemble bytecode (or decoded instructions) into a listing, one instruction per line.

    Args:
        code_or_insns: bytecode (decoded without whole-program validation, so jumps outside the
            program are still printed) or a sequence of Instructions.
        syntax: "llvm" or "conformance" (see the module docstring).
        labels: emit `L<pc>:` lines before jump/call targets and name them in jump operands.
        pcs: prefix each line with its slot index (llvm) / append `# pc N` (conformance).
            Default: True for "llvm", False for "conformance".
        map_names: the object's map names by index (see format_insn).
        line_info: (slot, file, line, source text) records (ProgramSpec.line_info): each
            starts with a line ``; <source text> @ file:line``, as
            ``bpftool prog dump xlated linum`` prints them.

    Raises:
        DecodeError: the bytes do not decode.
        ValueError: unknown syntax.
    """
    if isinstance(code_or_insns, (bytes, bytearray, memoryview)):
        insns = decode(bytes(code_or_insns), validate=False)
    else:
        insns = list(code_or_insns)
    if syntax not in _FORMATTERS:
        raise ValueError(f"unknown syntax {syntax!r} (expected one of {', '.join(SYNTAXES)})")
    if pcs is None:
        pcs = syntax == "llvm"
    pairs = list(iter_pcs(insns))
    names: dict[int, str] | None = None
    if labels:
        starts = {pc for pc, _ in pairs}
        targets = {t for pc, insn in pairs
                   if (t := insn.branch_target(pc)) is not None and t in starts}
        names = {t: f"L{t}" for t in sorted(targets)}
    width = max(4, len(str(pairs[-1][0]))) if pairs else 4
    lines = []
    sources: dict[int, list[str]] = {}
    for slot, file, line, text in line_info:
        mark = ";" if syntax == "llvm" else "#"     # the conformance dialect's comment
        sources.setdefault(slot, []).append(f"{mark} {text.strip()} @ {file}:{line}")
    for pc, insn in pairs:
        lines.extend(sources.get(pc, ()))
        if names and pc in names:
            lines.append(f"{names[pc]}:")
        text = format_insn(insn, pc, syntax, labels=names, map_names=map_names)
        if pcs and syntax == "llvm":
            text = f"{pc:>{width}}: {text}"
        elif pcs:
            text = f"{text:<32}# pc {pc}"
        lines.append(text)
    return "\n".join(lines)
