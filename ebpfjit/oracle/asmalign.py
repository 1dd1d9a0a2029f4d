"""`compare --asm` rows: the kernel's translated ("xlated") image aligned with the original eBPF
program through the kernel's own mapping, one row per original instruction.

Method:
- The kernel returns, per BTF line_info record we gave it, the record's instruction offset in
  the xlated program (`bpf_line_info.insn_off`, moved by the verifier as it patches code) and
  the native address of that record (`jited_line_info`). Records keep their order, so record i
  anchors original slot o_i to xlated slot x_i and to a native address: the xlated range
  [x_i, x_{i+1}) is the translation of the original range [o_i, o_{i+1}).
- Inside one range (or the whole program when there is no line info), a range of equal length
  maps slot for slot (context rewrites and helper-call fixups replace one instruction by one).
  A longer xlated range holds known expansions: the kernel inlines helper calls (an ARRAY
  map's bpf_map_lookup_elem becomes array_map_gen_lookup's ~7 instructions, a HASH map's a
  direct call plus a null check and an add, likewise bpf_get_smp_processor_id and others).
  The walk keeps both sides in step and, at an original helper call while the range is
  still longer than the original, gives the call every xlated instruction
  up to the point where the rest of the range lines up again (same instruction class and
  registers for the remaining instructions), so an expansion never shifts the rows after it.
- Native code: ours is split per eBPF pc (`native_asm` marks `# pc N`); the kernel's only per
  line-info record, so the kernel's code of a range is shown on the range's first row and its
  size counted for the range. Sizes are native instruction counts (x86-64) on both sides,
  summed per range so a reader sees where our code is larger.

Imports: ebpfjit.isa
"""
from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..isa.disasm import format_insn
from ..isa.insn import Instruction, decode, iter_pcs

_CALL = 0x85


@dataclass
class AsmRow:
    pc: int                     # original eBPF slot
    insn: str                   # the original instruction (llvm-objdump syntax)
    xlated: list[int]           # kernel xlated slots translating it
    source: str | None = None   # "; text @ file:line" where a line-info record starts
    ours: list[str] = field(default_factory=list)
    kernel: list[str] = field(default_factory=list)
    range_start: bool = False   # first row of a line-info range (kernel code shown here)


def _shape(insn: Instruction) -> tuple[int, int, int]:
    """What a one-for-one rewrite keeps: the instruction class and registers."""
    return (insn.opcode & 0x07, insn.dst, insn.src)


def align_range(orig: Sequence[tuple[int, Instruction]],
                xlated: Sequence[tuple[int, Instruction]]) -> dict[int, list[int]]:
    """{original slot: [xlated slots]} for one range (see the module docstring)."""
    out: dict[int, list[int]] = {pc: [] for pc, _ in orig}
    extra = len(xlated) - len(orig)
    j = 0
    for i, (pc, insn) in enumerate(orig):
        if j >= len(xlated):
            break
        take = 1
        if extra > 0 and insn.opcode == _CALL and insn.src == 0:
            # A helper the kernel may have inlined (array_map_gen_lookup: no call left;
            # htab_map_gen_lookup: a call, a null check and an add): it takes xlated
            # instructions until the next few original instructions line up again.
            rest = [_shape(x) for _, x in orig[i + 1:i + 4]]
            take = extra + 1
            for k in range(1, extra + 2):
                if [_shape(x) for _, x in xlated[j + k:j + k + len(rest)]] == rest:
                    take = k
                    break
            extra -= take - 1
        out[pc] = [s for s, _ in xlated[j:j + take]]
        j += take
    if j < len(xlated) and orig:      # what is left belongs to the range's last instruction
        out[orig[-1][0]].extend(s for s, _ in xlated[j:])
    return out


def xlated_mapping(code: bytes, xlated: bytes, our_line_slots: Sequence[int],
                   kernel_line_info: bytes, rec_size: int = 16) -> dict[int, list[int]]:
    """{original slot: [xlated slots]} for the whole program."""
    orig = list(iter_pcs(decode(code, validate=False)))
    xl = list(iter_pcs(decode(xlated, validate=False)))
    kernel_offs = [struct.unpack_from("<I", kernel_line_info, i * rec_size)[0]
                   for i in range(len(kernel_line_info) // rec_size)] if rec_size else []
    anchors = [(0, 0)]
    if kernel_offs and len(kernel_offs) == len(our_line_slots):
        anchors += sorted(set(zip(our_line_slots, kernel_offs)))
    anchors.append((len(code) // 8, len(xlated) // 8))
    out: dict[int, list[int]] = {}
    for (o0, x0), (o1, x1) in zip(anchors, anchors[1:]):
        if o1 < o0 or x1 < x0:
            continue
        out.update(align_range([p for p in orig if o0 <= p[0] < o1],
                               [p for p in xl if x0 <= p[0] < x1]))
    return out


def build_rows(code: bytes, line_info: Sequence[tuple[int, str, int, str]], info,
               ours: Sequence[tuple[int | None, list[str]]],
               kernel: Sequence[tuple[int | None, list[str]]],
               map_names: Sequence[str] | None = None) -> list[AsmRow]:
    """One AsmRow per original instruction. `info` is the kernel's ProgInfo; `ours` /
    `kernel` are compare.our_asm_by_pc / kernel_asm_by_insn chunks (kernel keyed by the
    xlated slot of a line-info record)."""
    slots = [slot for slot, *_ in line_info]
    rec = (len(info.line_info) // len(info.jited_line_info)) if info.jited_line_info else 16
    mapping = xlated_mapping(code, info.xlated, slots, info.line_info, rec)
    sources = {}
    for slot, file, line, text in line_info:
        sources.setdefault(slot, f"; {text.strip()} @ {file}:{line}")
    our_by_pc: dict[int, list[str]] = {}
    for pc, lines in ours:
        if pc is not None:
            our_by_pc.setdefault(pc, []).extend(lines)
    kernel_by_x: dict[int, list[str]] = {}
    for x, lines in kernel:
        if x is not None:
            kernel_by_x.setdefault(x, []).extend(lines)
    rows = []
    for pc, insn in iter_pcs(decode(code, validate=False)):
        xs = mapping.get(pc, [])
        row = AsmRow(pc, format_insn(insn, pc, map_names=map_names), xs, sources.get(pc),
                     our_by_pc.get(pc, []))
        for x in xs:
            if x in kernel_by_x:
                row.kernel.extend(kernel_by_x.pop(x))
                row.range_start = True
        rows.append(row)
    return rows


def _count(lines: Sequence[str]) -> int:
    """Native instructions among listing lines (labels are not code)."""
    return sum(1 for line in lines if line.strip() and not line.strip().endswith(":"))


def format_rows(rows: Sequence[AsmRow], width: int = 44) -> str:
    """The table: eBPF instruction and source line per row, our code, the kernel's code, and
    native instruction counts summed per line-info range."""
    out = [f"{'eBPF (original)':<{width}} | {'our JIT':<{width}} | kernel JIT",
           "-" * (3 * width + 6)]
    ranges: list[list[AsmRow]] = []
    for row in rows:
        if row.range_start or row.source or not ranges:
            ranges.append([])
        ranges[-1].append(row)
    total_ours = total_kernel = 0
    for group in ranges:
        n_ours = sum(_count(r.ours) for r in group)
        n_kernel = sum(_count(r.kernel) for r in group)
        total_ours += n_ours
        total_kernel += n_kernel
        for row in group:
            if row.source:
                out.append(row.source)
            xs = f" [x{row.xlated[0]}{'-' + str(row.xlated[-1]) if len(row.xlated) > 1 else ''}]" \
                if row.xlated else ""
            left = f"{row.pc:>4}: {row.insn}{xs}"
            n = max(1, len(row.ours), len(row.kernel))
            for i in range(n):
                a = left if i == 0 else ""
                b = row.ours[i].strip() if i < len(row.ours) else ""
                c = row.kernel[i].strip() if i < len(row.kernel) else ""
                out.append(f"{a[:width]:<{width}} | {b[:width]:<{width}} | {c}")
        out.append(f"{'':<{width}} | {f'= {n_ours} instrs':<{width}} | = {n_kernel} instrs"
                   + ("   <- ours larger" if n_ours > n_kernel else ""))
    out.append(f"total native instructions: ours {total_ours}, kernel {total_kernel}")
    return "\n".join(out)
