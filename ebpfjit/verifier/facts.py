"""What a successful verification proved, per instruction, for the JIT (issues #13 and #14).

The interface is `ProgramFacts` and its small records; the JIT reads nothing else of the
verifier. For each pc the walk reached:

- `access(pc)`: the memory an instruction's load/store/atomic touches (`Access`): the region
  (stack of the accessing function's own frame or of a caller's, the context, the packet or its
  metadata, the value or key of map `map`, a fixed-size memory such as the raw convention's or a
  ring-buffer record) and the proven byte offsets `[lo, hi)` from the region's start together
  with the region size `limit` the proof used (for the packet: the bytes `data_end`
  comparisons proved present, so the run's packet has at least `limit` bytes; a variable
  offset is proven against the range of its own base, so `hi` may pass `limit` and only
  `lo + size <= limit` holds for the smallest offset). Joined over
  every verified path: offsets widen, `limit` takes the smallest, and paths that disagree on the
  region (or frame, or map) leave no fact at that pc.
- `bounded_back_edges`: the backward jumps the walk took. The walk accepted, so every loop
  through them ends: the walk simulated each one to its exit (a loop is never pruned against
  a state of its own path, only against states whose every path was explored to an exit) within
  the 1,000,000 processed instructions, which also bounds the back-edges one run can take.
- `map_arg(pc)`: for a helper call taking a map, the index of the object's map it is called
  with on every path (None: not the same map everywhere, or an inner map).

Why facts joined over the walk hold for every run, pruning included. The walk keeps this
invariant: every concrete state a run can reach at a pc lies in (the concretisation of) some
abstract state the walk processed at that pc. A path is pruned at pc P only when an explored
state `old` at P subsumes the current one on everything the rest of the program can read (the
registers live at P, every stack slot, packet ranges no larger, ids consistently renamed):
every continuation of the pruned state is then a continuation of `old`, whose successors the
walk processed and recorded, so the invariant holds below P without walking it twice. A fact
recorded at pc Q is a property of the abstract state of the accessing register at Q (read at Q,
so live from wherever its value was last set); joining over every processed state at Q covers
every run. Callbacks are walked from their fixpoint entry state, which covers every iteration.
Pcs the walk never reached have no facts (no run reaches them either); the JIT keeps its
checks wherever there is no fact.

The facts are a proof the JIT relies on for speed only: its lowering keeps a cheaper second
line of defence for every check it drops (SECURITY.md, "Verified programs").

Imports: ebpfjit.isa, ebpfjit.verifier.regs, ebpfjit.verifier.sval
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..isa.insn import CALL_HELPER, Instruction
from ..isa.opcodes import OPCODES, STACK_SIZE, Kind
from . import sval as S
from .regs import CTX, FP, MAP_KEY, MAP_PTR, MAP_VALUE, MEM, PKT, PKT_META, RINGBUF_MEM, State

# Regions an access can touch (Access.region).
STACK = "stack"
CONTEXT = "ctx"
PACKET = "packet"
PACKET_META = "packet_meta"
MAP_VALUE_REGION = "map_value"
MAP_KEY_REGION = "map_key"
MEMORY = "mem"
RINGBUF = "ringbuf"
REGIONS = (STACK, CONTEXT, PACKET, PACKET_META, MAP_VALUE_REGION, MAP_KEY_REGION, MEMORY, RINGBUF)

_REGION_OF = {FP: STACK, CTX: CONTEXT, PKT: PACKET, PKT_META: PACKET_META,
              MAP_VALUE: MAP_VALUE_REGION, MAP_KEY: MAP_KEY_REGION, MEM: MEMORY,
              RINGBUF_MEM: RINGBUF}


@dataclass(frozen=True)
class Access:
    """One memory instruction's proven footprint, joined over every verified path.

    Offsets count from the region's start: the frame's lowest byte (fp-512) for the stack, the
    first byte of the packet data (or of the metadata), of the map value, the memory or the
    context (as the program wrote the access: context accesses are rewritten after
    verification). `hi <= limit` holds for every region but the packet's (see the module
    docstring): there the access is proven inside the run's packet, whose size varies."""
    region: str
    lo: int
    hi: int
    limit: int
    write: bool
    frame: int | None = None      # stack: 0 = the accessing function's own frame, 1 = its caller's...
    map: int | None = None        # map value/key: the object's map index (-1: an inner map)

    def join(self, other: Access) -> Access | None:
        """The fact both paths share, or None where they touch different regions."""
        if (self.region, self.frame, self.map) != (other.region, other.frame, other.map):
            return None
        return replace(self, lo=min(self.lo, other.lo), hi=max(self.hi, other.hi),
                       limit=min(self.limit, other.limit), write=self.write or other.write)


_MIXED = object()       # paths disagree: no fact at this pc


@dataclass
class ProgramFacts:
    """The facts of one verified program (see the module docstring)."""
    accesses: dict[int, Access] = field(default_factory=dict)
    mixed: set[int] = field(default_factory=set)          # pcs whose paths disagree
    bounded_back_edges: frozenset[int] = frozenset()
    visited: frozenset[int] = frozenset()
    map_args: dict[int, int | None] = field(default_factory=dict)
    insns: int = 0

    def access(self, pc: int) -> Access | None:
        return self.accesses.get(pc)

    def map_arg(self, pc: int) -> int | None:
        return self.map_args.get(pc)

    def key(self) -> str:
        """A canonical text of the facts (part of the JIT's cache key)."""
        parts = [f"n{self.insns}"]
        for pc in sorted(self.accesses):
            a = self.accesses[pc]
            parts.append(f"{pc}:{a.region}:{a.lo}:{a.hi}:{a.limit}:{int(a.write)}:"
                         f"{a.frame}:{a.map}")
        parts.append("b" + ",".join(map(str, sorted(self.bounded_back_edges))))
        parts.append("v" + ",".join(map(str, sorted(self.visited))))
        parts.append("m" + ",".join(f"{pc}={m}" for pc, m in sorted(self.map_args.items())))
        return ";".join(parts)


class FactRecorder:
    """Fed by the walk with every (pc, instruction, state) it is about to step; the facts are
    kept only if the whole walk accepts (`finish`)."""

    def __init__(self):
        self._accesses: dict[int, object] = {}
        self._back_edges: set[int] = set()
        self._visited: set[int] = set()
        self._map_args: dict[int, object] = {}

    def step(self, pc: int, ins: Instruction, st: State) -> None:
        """Called before the walk checks and steps `ins` at `pc` in state `st`. If the step is
        refused the walk rejects the program and these facts are dropped, so what is recorded
        here is what the step then proves."""
        self._visited.add(pc)
        kind = OPCODES[ins.opcode].kind
        if kind is Kind.LDX or kind is Kind.LDXSX:
            self._access(pc, st, ins.src, ins.off, OPCODES[ins.opcode].size, False)
        elif kind is Kind.ST or kind is Kind.STX or kind is Kind.ATOMIC:
            self._access(pc, st, ins.dst, ins.off, OPCODES[ins.opcode].size, True)
        elif kind is Kind.JA or kind is Kind.JCOND:
            target = ins.branch_target(pc)
            if target is not None and target <= pc:
                self._back_edges.add(pc)
        elif kind is Kind.CALL and ins.src == CALL_HELPER:
            r1 = st.cur.regs[1]
            m = r1.map.index if r1.type == MAP_PTR and r1.map is not None else None
            old = self._map_args.get(pc, m)
            self._map_args[pc] = m if old == m else None

    def _access(self, pc: int, st: State, r: int, off: int, size: int, write: bool) -> None:
        fact = _footprint(st, r, off, size, write)
        old = self._accesses.get(pc)
        if old is _MIXED:
            return
        if fact is None:
            self._accesses[pc] = _MIXED
        elif old is None:
            self._accesses[pc] = fact
        else:
            joined = old.join(fact)
            self._accesses[pc] = _MIXED if joined is None else joined

    def finish(self, insns: int) -> ProgramFacts:
        accesses = {pc: a for pc, a in self._accesses.items() if a is not _MIXED}
        mixed = {pc for pc, a in self._accesses.items() if a is _MIXED}
        return ProgramFacts(accesses, mixed, frozenset(self._back_edges),
                            frozenset(self._visited), dict(self._map_args), insns)


def _footprint(st: State, r: int, off: int, size: int, write: bool) -> Access | None:
    """The bytes `[reg + off, + size)` as the walk's _region checks them (None: a register
    the step will refuse or that is no memory pointer: no fact)."""
    reg = st.cur.regs[r]
    region = _REGION_OF.get(reg.type)
    if region is None or reg.null:
        return None
    lo = hi = reg.off + off
    if reg.var is not None and not reg.var_is_zero():
        if region in (STACK, CONTEXT):
            return None         # the walk refuses variable offsets there
        lo += S.smin(reg.var)
        hi += S.umax(reg.var)
    hi += size
    frame = None
    mapi = None
    if region == STACK:
        lo += STACK_SIZE
        hi += STACK_SIZE
        limit = STACK_SIZE
        frame = st.cur.frameno - reg.frame
    elif region in (PACKET, PACKET_META):
        # The range a data_end comparison proved counts from the pointer's variable base
        # (the kernel's reg->range): the packet holds at least smin(var) + rng bytes.
        limit = reg.rng + (S.smin(reg.var) if reg.var is not None else 0)
    elif region in (MAP_VALUE_REGION, MAP_KEY_REGION):
        spec = reg.map.spec
        limit = spec.value_size if region == MAP_VALUE_REGION else spec.key_size
        mapi = reg.map.index
    elif region == CONTEXT:
        limit = hi
    else:
        limit = reg.size
    return Access(region, lo, hi, limit, write, frame, mapi)


__all__ = ["Access", "FactRecorder", "ProgramFacts", "REGIONS", "STACK", "CONTEXT", "PACKET",
           "PACKET_META", "MAP_VALUE_REGION", "MAP_KEY_REGION", "MEMORY", "RINGBUF"]
