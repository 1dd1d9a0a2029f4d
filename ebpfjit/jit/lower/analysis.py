"""Pass 1 of the lowering: functions, leaders and the dataflow facts the lowering relies on.

`analyze_program` finds the functions (entry, local-call and callback targets), their leaders
(function start, jump targets, the pc after a jump/exit) and, with a small forward dataflow, the
registers that hold `r10 + const` at each pc: an access through such a register whose whole
range lies inside the frame is emitted as a GEP from the frame's alloca with no bounds check.
Besides: the map facts (`lddw` map pointers and lookups, for inline lookups), the entry's use of
r1/r2 (whether the entry is versioned on the raw convention) and the ranges earlier accesses
already checked (`covered_accesses`). Nothing here builds IR.

Must not import: ebpfjit.jit, ebpfjit.runtime (the layout arrives through LoweringContext).

Imports: ebpfjit.errors, ebpfjit.isa, ebpfjit.jit.lower.budget,
    ebpfjit.jit.lower.lowering_context, ebpfjit.objects
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ...errors import JitError
from ...isa.disasm import format_insn
from ...isa.insn import CALL_HELPER, CALL_LOCAL, Instruction, iter_pcs
from ...isa.opcodes import AluOp, AtomicOp, Class, Kind, Source, jump_target
from ...objects.spec import PSEUDO_FUNC
from .budget import segment_charges
from .lowering_context import ENTRY_NAME, STACK_BYTES

NUM_REGS = 11
FP = 10
# The key of pc 0's second LLVM function, its copy for bpf-to-bpf calls (FunctionInfo.key).
CALLED_MAIN = "called-main"


def describe(insn: Instruction, pc: int) -> str:
    """Text of one instruction for IR comments and error messages (opcode name and fields
    when the disassembler cannot format it)."""
    try:
        return format_insn(insn, pc)
    except Exception:
        pass
    return (f"{insn.info.name} dst=r{insn.dst} src=r{insn.src} off={insn.off} "
            f"imm={insn.imm:#x}")


# ---------------------------------------------------------------------------------------------
# Pass 1: functions, leaders and the frame-pointer dataflow
# ---------------------------------------------------------------------------------------------

# Register facts: an int c means "r10 + c" (a frame pointer); NOT_FP an ordinary value;
# MAYBE_FP a value that may derive from the frame pointer on some path.
NOT_FP = "int"
MAYBE_FP = "maybe"


def _join(a, b):
    if a == b:
        return a
    return MAYBE_FP


def is_fp(value) -> bool:
    return value is MAYBE_FP or isinstance(value, int) and not isinstance(value, bool)


def _access_base(insn: Instruction) -> int | None:
    kind = insn.kind
    if kind in (Kind.LDX, Kind.LDXSX):
        return insn.src
    if kind in (Kind.ST, Kind.STX, Kind.ATOMIC):
        return insn.dst
    return None


def proven_frame_offset(insn: Instruction, state) -> int | None:
    """Byte offset from the frame's end of a memory access proven inside the frame, else None."""
    base = _access_base(insn)
    if base is None or state is None:
        return None
    value = state[base]
    if not is_fp(value) or value is MAYBE_FP:
        return None
    lo = value + insn.off
    if lo >= -STACK_BYTES and lo + insn.info.size <= 0:
        return lo
    return None


def _reads(insn: Instruction) -> tuple[int, ...]:
    """Registers whose *values* the instruction consumes (memory bases handled separately)."""
    kind = insn.kind
    info = insn.info
    if kind is Kind.ALU:
        if info.op is AluOp.MOV:
            return (insn.src,) if info.source is Source.X else ()
        return (insn.dst, insn.src) if info.source is Source.X else (insn.dst,)
    if kind in (Kind.NEG, Kind.ENDIAN):
        return (insn.dst,)
    if kind is Kind.JCOND:
        return (insn.dst, insn.src) if info.source is Source.X else (insn.dst,)
    if kind is Kind.CALL:
        return (1, 2, 3, 4, 5)
    if kind is Kind.CALLX:
        return (insn.dst, 1, 2, 3, 4, 5)
    if kind is Kind.EXIT:
        return (0,)
    if kind is Kind.LDABS:
        return (6,)
    if kind is Kind.LDIND:
        return (6, insn.src)
    if kind is Kind.STX:
        return (insn.src,)
    if kind is Kind.ATOMIC:
        return (insn.src, 0) if insn.imm == AtomicOp.CMPXCHG else (insn.src,)
    return ()


def fp_transfer(insn: Instruction, state: tuple) -> tuple[tuple, bool]:
    """(state after `insn`, whether a frame-derived value is used as a plain integer)."""
    kind = insn.kind
    info = insn.info
    regs = list(state)
    escapes = False
    base = _access_base(insn)
    if base is not None and is_fp(state[base]) and proven_frame_offset(insn, state) is None:
        escapes = True
    copy = (kind is Kind.ALU and info.op is AluOp.MOV and info.cls is Class.ALU64
            and info.source is Source.X and insn.off == 0)
    offset_fp = (kind is Kind.ALU and info.cls is Class.ALU64 and info.source is Source.K
                 and info.op in (AluOp.ADD, AluOp.SUB) and is_fp(state[insn.dst]))
    if copy:
        regs[insn.dst] = state[insn.src]
    elif offset_fp:
        cur = state[insn.dst]
        if cur is MAYBE_FP:
            regs[insn.dst] = MAYBE_FP
        else:
            regs[insn.dst] = cur + insn.imm if info.op is AluOp.ADD else cur - insn.imm
    else:
        for reg in _reads(insn):
            if is_fp(state[reg]):
                escapes = True
        for reg in insn.writes:
            regs[reg] = NOT_FP
    regs[FP] = 0
    return tuple(regs), escapes


@dataclass
class FunctionInfo:
    start: int
    end: int                      # one past the last slot of the function
    name: str
    pcs: list[int] = field(default_factory=list)
    leaders: set[int] = field(default_factory=set)
    has_calls: bool = False
    states: dict[int, tuple] = field(default_factory=dict)   # fp facts at entry of each pc
    needs_fp_value: bool = False  # the frame address is used as an integer somewhere
    map_states: dict[int, tuple] | None = None   # map facts at entry of each pc (_map_dataflow)
    # The program's first function lowered once more as an ordinary subprogram, for bpf-to-bpf
    # calls to pc 0: the entry function has the runner's signature and starts at depth 1.
    called_copy: bool = False

    @property
    def is_entry(self) -> bool:
        return self.start == 0 and not self.called_copy

    @property
    def key(self) -> int | str:
        """Its key in the table of LLVM functions (pc 0 has two: entry and called copy)."""
        return CALLED_MAIN if self.called_copy else self.start


@dataclass
class ProgramInfo:
    insns: dict[int, Instruction]
    functions: list[FunctionInfo]
    by_start: dict[int, FunctionInfo]
    early_exit: bool = False     # a callee has a packet load (may end the run early)
    charges: dict[int, int] = field(default_factory=dict)   # budget charge points (budget.py)
    loop_heads: set[int] = field(default_factory=set)       # edges into these charge


def _successors(pc: int, insn: Instruction, fn: FunctionInfo) -> list[int]:
    kind = insn.kind
    if kind is Kind.EXIT:
        return []
    nxt = pc + insn.slots
    if kind is Kind.JA:
        return [insn.branch_target(pc)]
    out = [nxt] if nxt < fn.end else []
    if kind is Kind.JCOND:
        out.append(insn.branch_target(pc))
    return out


def analyze_program(insns: list[Instruction]) -> ProgramInfo:
    """Pass 1: functions, leaders, frame-pointer facts. Raises JitError on structural problems."""
    by_pc = dict(iter_pcs(insns))
    nslots = sum(i.slots for i in insns)
    starts = {0}
    for pc, insn in by_pc.items():
        if insn.kind is Kind.CALL and insn.src == CALL_LOCAL:
            target = insn.branch_target(pc)
            if target not in by_pc:
                raise JitError(f"pc {pc} ({describe(insn, pc)}): call target {target} is not an "
                               f"instruction")
            starts.add(target)
        target = callback_target(pc, insn)
        if target is not None and target in by_pc:   # bpf_loop etc.: a function of its own
            starts.add(target)
    ordered = sorted(starts)
    functions = []
    for i, start in enumerate(ordered):
        end = ordered[i + 1] if i + 1 < len(ordered) else nslots
        name = ENTRY_NAME if start == 0 else f"ebpf_sub_pc{start}"
        functions.append(FunctionInfo(start, end, name))
    by_start = {fn.start: fn for fn in functions}
    for fn in functions:
        fn.pcs = [pc for pc in by_pc if fn.start <= pc < fn.end]
        fn.leaders.add(fn.start)
        for pc in fn.pcs:
            insn = by_pc[pc]
            kind = insn.kind
            if kind in (Kind.CALL, Kind.CALLX):
                fn.has_calls = True
            if kind in (Kind.JA, Kind.JCOND):
                target = insn.branch_target(pc)
                if not fn.start <= target < fn.end or target not in by_pc:
                    raise JitError(f"pc {pc} ({describe(insn, pc)}): jump target {target} is "
                                   f"outside its function [{fn.start}, {fn.end})")
                fn.leaders.add(target)
            if kind in (Kind.JA, Kind.JCOND, Kind.EXIT) and pc + insn.slots < fn.end:
                fn.leaders.add(pc + insn.slots)
        _fp_dataflow(fn, by_pc)
    early_exit = any(by_pc[pc].kind in (Kind.LDABS, Kind.LDIND)
                     for fn in functions if not fn.is_entry for pc in fn.pcs)
    if any(insn.kind is Kind.LDDW and insn.src in (1, 2) for insn in by_pc.values()):
        for fn in functions:
            fn.map_states = _map_dataflow(fn, by_pc)
    return ProgramInfo(by_pc, functions, by_start, early_exit,
                       *segment_charges(by_pc, set(by_start)))


def _map_transfer(insn: Instruction, state: tuple) -> tuple:
    """Map facts after `insn`: ("m", i) = the pointer env->maps[i] (lddw src=1), ("v", i, c) =
    a value pointer of map i or NULL, plus c (a lookup in map i, lddw src=2, + constants)."""
    kind = insn.kind
    info = insn.info
    regs = list(state)
    if kind is Kind.LDDW:
        index = insn.imm & 0xFFFFFFFF
        regs[insn.dst] = (("m", index) if insn.src == 1 else
                          ("v", index, (insn.imm >> 32) & 0xFFFFFFFF) if insn.src == 2 else None)
    elif kind is Kind.ALU:
        fact = state[insn.dst]
        if (info.op is AluOp.MOV and info.cls is Class.ALU64 and info.source is Source.X
                and insn.off == 0):
            regs[insn.dst] = state[insn.src]
        elif (info.op in (AluOp.ADD, AluOp.SUB) and info.cls is Class.ALU64
              and info.source is Source.K and fact is not None and fact[0] == "v"):
            delta = insn.imm if info.op is AluOp.ADD else -insn.imm
            regs[insn.dst] = ("v", fact[1], fact[2] + delta)
        else:
            regs[insn.dst] = None
    else:
        for reg in insn.writes:
            regs[reg] = None
        fact = state[1]
        if (kind is Kind.CALL and insn.src == CALL_HELPER and insn.imm == 1 and fact is not None
                and fact[0] == "m"):
            regs[0] = ("v", fact[1], 0)
    return tuple(regs)


def _forward_dataflow(fn: FunctionInfo, by_pc: dict[int, Instruction], entry,
                      transfer: Callable, join: Callable) -> dict:
    """The state at the entry of each reachable pc of `fn`, iterated to a fixpoint:
    `transfer(pc, insn, state)` is the state after an instruction and `join(old, new)` merges
    a new incoming state into a successor's (it must only move down a finite lattice)."""
    states = {fn.start: entry}
    work = [fn.start]
    while work:
        pc = work.pop()
        insn = by_pc[pc]
        out = transfer(pc, insn, states[pc])
        for succ in _successors(pc, insn, fn):
            old = states.get(succ)
            new = out if old is None else join(old, out)
            if new != old:
                states[succ] = new
                work.append(succ)
    return states


def _same_or_none(old: tuple, new: tuple) -> tuple:
    """Per register, a fact both states agree on, else None."""
    return tuple(a if a == b else None for a, b in zip(old, new))


def _map_dataflow(fn: FunctionInfo, by_pc: dict[int, Instruction]) -> dict[int, tuple]:
    return _forward_dataflow(fn, by_pc, (None,) * NUM_REGS,
                             lambda pc, insn, state: _map_transfer(insn, state), _same_or_none)


def _arg_masks(fn: FunctionInfo, by_pc: dict[int, Instruction], arg: int,
               arith: Callable[[Instruction, int], int]) -> dict[int, int]:
    """Per pc, bit i set: ri may hold a value derived from the entry argument r`arg`.
    `arith(insn, mask)` is the mask after an ALU/NEG/ENDIAN instruction (what "derived"
    means is the caller's); loads, lddw, calls and fetching atomics overwrite their result."""
    def transfer(pc: int, insn: Instruction, mask: int) -> int:
        kind = insn.kind
        if kind in (Kind.ALU, Kind.NEG, Kind.ENDIAN):
            return arith(insn, mask)
        for reg in insn.writes:
            mask &= ~(1 << reg)
        return mask

    return _forward_dataflow(fn, by_pc, 1 << arg, transfer, lambda old, new: old | new)


def _pointer_arith(insn: Instruction, mask: int) -> int:
    # Pointers: 64-bit copies, `+`/`-`; anything else makes a plain number.
    info = insn.info
    if insn.kind is Kind.ALU and info.cls is Class.ALU64 and info.op in (AluOp.MOV, AluOp.ADD,
                                                                         AluOp.SUB):
        src = info.source is Source.X and mask >> insn.src & 1
        if info.op is AluOp.MOV:
            derived = src if info.source is Source.X and insn.off == 0 else 0
        else:
            derived = src or mask >> insn.dst & 1
        return mask | (1 << insn.dst) if derived else mask & ~(1 << insn.dst)
    return mask & ~(1 << insn.dst)


def _value_arith(insn: Instruction, mask: int) -> int:
    # Values: any arithmetic on a derived operand stays derived; a move of another value or
    # a constant does not.
    if insn.kind is not Kind.ALU:
        return mask
    info = insn.info
    from_src = info.source is Source.X and mask >> insn.src & 1
    from_dst = info.op is not AluOp.MOV and mask >> insn.dst & 1
    return mask | (1 << insn.dst) if from_src or from_dst else mask & ~(1 << insn.dst)


def r1_mem_access(fn: FunctionInfo, by_pc: dict[int, Instruction]) -> bool:
    """Does the entry function access memory (not its proven frame) through a pointer derived
    from its r1 argument (`r1 + const`, `r1 + var`, copies)? Then the entry is versioned on
    `r1 == st->mem_base && r2 == st->mem_len` (the raw convention) so LLVM knows the region."""
    for pc, mask in _arg_masks(fn, by_pc, 1, _pointer_arith).items():
        insn = by_pc[pc]
        base = _access_base(insn)
        if (base is not None and mask >> base & 1
                and proven_frame_offset(insn, fn.states.get(pc)) is None):
            return True
    return False


def r2_compared(fn: FunctionInfo, by_pc: dict[int, Instruction]) -> bool:
    """Does a conditional jump of the entry function test a value computed from its r2
    argument (the length, in the raw convention)? Only then can the program's own checks
    prove its accesses in the raw-convention copy, which is worth compiling a second copy."""
    for pc, mask in _arg_masks(fn, by_pc, 2, _value_arith).items():
        insn = by_pc[pc]
        if insn.kind is Kind.JCOND:
            tested = 1 << insn.dst | (1 << insn.src if insn.info.source is Source.X else 0)
            if mask & tested:
                return True
    return False


def _fp_dataflow(fn: FunctionInfo, by_pc: dict[int, Instruction]) -> None:
    states = _forward_dataflow(
        fn, by_pc, tuple([NOT_FP] * FP + [0]),
        lambda pc, insn, state: fp_transfer(insn, state)[0],
        lambda old, new: tuple(_join(a, b) for a, b in zip(old, new)))
    escapes = fn.has_calls
    if not escapes:
        for pc, state in states.items():
            if fp_transfer(by_pc[pc], state)[1]:
                escapes = True
                break
    fn.states = states
    fn.needs_fp_value = escapes


# ---------------------------------------------------------------------------------------------
# Checked ranges: an access inside a range an earlier access already checked needs no check
# ---------------------------------------------------------------------------------------------

# Facts kept per program point (a bound on the analysis' work in long straight-line code).
MAX_CHECKED_RANGES = 64


def _new_value(regs: list, facts: frozenset, pc: int, dst: int) -> frozenset:
    """`dst` gets a new value, named by `pc`. In a loop `pc` names the value of the latest
    pass only: registers still holding an older one lose their name, ranges on it are gone."""
    for reg, sym in enumerate(regs):
        if sym is not None and sym[0] == pc:
            regs[reg] = None
    regs[dst] = (pc, 0)
    if any(fact[0] == pc for fact in facts):
        facts = frozenset(fact for fact in facts if fact[0] != pc)
    return facts


def _checked_transfer(pc: int, insn: Instruction, regs: tuple, facts: frozenset,
                      frame_proven: bool):
    """(regs, facts, cover) after `insn`. A register is (value, delta): `delta` bytes past the
    value named `value` (a pc, or -i for argument ri at function entry), None when unknown.
    A fact (value, lo, hi, write, site) says the access at `site` checked [value + lo,
    value + hi) (for writing if `write`), and that site is on every path to here. `cover` is
    (site, bytes past that site's pointer) when this instruction's access lies inside such a
    range. Only runtime calls change the regions a check consults, so they drop every fact."""
    kind = insn.kind
    info = insn.info
    out = list(regs)
    cover = None
    base = _access_base(insn)
    if base is not None and not frame_proven and regs[base] is not None:
        value, delta = regs[base]
        lo = delta + insn.off
        hi = lo + info.size
        write = kind in (Kind.ST, Kind.STX, Kind.ATOMIC)
        for fact in facts:
            if fact[0] == value and fact[1] <= lo and hi <= fact[2] and (fact[3] or not write):
                cover = (fact[4], lo - fact[1])
                break
        else:
            if len(facts) < MAX_CHECKED_RANGES:
                facts = facts | {(value, lo, hi, write, pc)}
    if kind is Kind.ALU and info.cls is Class.ALU64 and insn.off == 0 and (
            info.op is AluOp.MOV and info.source is Source.X):
        out[insn.dst] = regs[insn.src]
    elif (kind is Kind.ALU and info.cls is Class.ALU64 and info.source is Source.K
          and info.op in (AluOp.ADD, AluOp.SUB) and regs[insn.dst] is not None):
        value, delta = regs[insn.dst]
        out[insn.dst] = (value, delta + insn.imm if info.op is AluOp.ADD else delta - insn.imm)
    elif insn.writes:
        if kind in (Kind.CALL, Kind.CALLX, Kind.LDABS, Kind.LDIND):
            facts = frozenset()
        result, *clobbered = insn.writes
        for reg in clobbered:
            out[reg] = None
        facts = _new_value(out, facts, pc, result)
    return tuple(out), facts, cover


def covered_accesses(fn: FunctionInfo, by_pc: dict[int, Instruction]) -> dict[int, tuple]:
    """pc -> (site, delta) for each access that lies inside a range the access at `site`
    checked on every path to it: its pointer is `delta` bytes past that site's pointer, and it
    needs no check of its own (a forward must-dataflow, intersecting facts at joins)."""
    def transfer(pc: int, insn: Instruction, state: tuple):
        frame_proven = proven_frame_offset(insn, fn.states.get(pc)) is not None
        return _checked_transfer(pc, insn, *state, frame_proven)

    entry = tuple((-i, 0) if 1 <= i <= 5 or i == FP else None for i in range(NUM_REGS))
    states = _forward_dataflow(
        fn, by_pc, (entry, frozenset()), lambda pc, insn, state: transfer(pc, insn, state)[:2],
        lambda old, new: (_same_or_none(old[0], new[0]), old[1] & new[1]))
    covered = {}
    for pc, state in states.items():
        cover = transfer(pc, by_pc[pc], state)[2]
        if cover is not None:
            covered[pc] = cover
    return covered


def callback_target(pc: int, insn: Instruction) -> int | None:
    """Target slot of `lddw rX, func` (src=4, BPF_PSEUDO_FUNC), else None: its imm counts
    slots from the next one, as a jump's offset does."""
    if insn.kind is not Kind.LDDW or insn.src != PSEUDO_FUNC:
        return None
    return jump_target(pc, insn.imm_lo)
