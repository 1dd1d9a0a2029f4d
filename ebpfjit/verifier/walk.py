"""The walk: a path-sensitive depth-first abstract interpretation of one program, shaped like
the kernel's do_check() (kernel/bpf/verifier.c), with the kernel's privileged-mode rules (root:
reading uninitialised stack and leaking pointers are allowed, as `bpf(2)` as root allows them).

Every path is followed to its exit. At prune points (jump targets, the instruction after a
conditional jump or a call) the state is checked against the states already fully explored
there: if one of them subsumes it (the kernel's `regsafe`/`stacksafe`, over the registers live
at that point), the path is safe and stops. A state equal to one still being explored on the
current path is an infinite loop. Loops are thus simulated until they end, bounded by the
kernel's 1,000,000 processed instructions. Callbacks (bpf_loop, for_each_map_elem) are walked
from their call until the caller's state reaches a fixpoint (scalars that differ between
iterations are widened to unknown), so any number of iterations is covered.

Imports: ebpfjit.isa, ebpfjit.objects.spec, ebpfjit.objects.ctx_layout,
    ebpfjit.objects.helper_names, ebpfjit.verifier
"""
from __future__ import annotations

from ..isa.insn import CALL_HELPER, CALL_KFUNC, CALL_LOCAL, Instruction, function_starts, iter_pcs
from ..isa.opcodes import FRAME_POINTER, OPCODES, STACK_SIZE, AluOp, AtomicOp, JmpOp, Kind, Source
from ..objects.ctx_layout import CONTEXT_LAYOUTS
from ..objects.spec import (
    PSEUDO_FUNC,
    PSEUDO_MAP_FD,
    PSEUDO_MAP_VALUE,
    MapType,
    ProgType,
)
from . import protos as P
from . import sval as S
from .regs import (
    CTX,
    FP,
    FUNC,
    INVALID,
    MAP_KEY,
    MAP_PTR,
    MAP_VALUE,
    MAX_FRAMES,
    MEM,
    MISC,
    NOT_INIT,
    PKT,
    PKT_END,
    PKT_META,
    PKT_TYPES,
    REG_NOT_INIT,
    RINGBUF_MEM,
    SCALAR,
    SPILL,
    ZERO,
    Frame,
    MapRef,
    Reg,
    State,
    known,
    unknown,
    zext_unknown,
)

INSN_LIMIT = 1_000_000
MAX_VAR_OFF = 1 << 29
MAX_STATES_PER_PC = 64        # older explored states are dropped (less pruning, still sound)
CALLBACK_ITERATIONS = 16      # widening makes the fixpoint converge long before this
SKB_TYPES = frozenset({ProgType.SOCKET_FILTER, ProgType.SCHED_CLS, ProgType.SCHED_ACT,
                       ProgType.CGROUP_SKB})

ALU_NAMES = {AluOp.ADD: "add", AluOp.SUB: "sub", AluOp.MUL: "mul", AluOp.DIV: "div",
             AluOp.OR: "or", AluOp.AND: "and", AluOp.LSH: "lsh", AluOp.RSH: "rsh",
             AluOp.MOD: "mod", AluOp.XOR: "xor", AluOp.ARSH: "arsh"}
ALU_SYMBOLS = {AluOp.ADD: "+=", AluOp.SUB: "-=", AluOp.MUL: "*=", AluOp.DIV: "/=",
               AluOp.OR: "|=", AluOp.AND: "&=", AluOp.LSH: "<<=", AluOp.RSH: ">>=",
               AluOp.MOD: "%=", AluOp.XOR: "^=", AluOp.ARSH: "s>>=", AluOp.NEG: "neg",
               AluOp.END: "endian", AluOp.MOV: "="}
JMP_NAMES = {JmpOp.JEQ: "jeq", JmpOp.JNE: "jne", JmpOp.JGT: "jgt", JmpOp.JGE: "jge",
             JmpOp.JLT: "jlt", JmpOp.JLE: "jle", JmpOp.JSGT: "jsgt", JmpOp.JSGE: "jsge",
             JmpOp.JSLT: "jslt", JmpOp.JSLE: "jsle", JmpOp.JSET: "jset"}
# Contexts without a layout in ebpfjit.ctx: (bytes readable, only whole u64 reads).
TRACING_CTX = {ProgType.KPROBE: (168, False), ProgType.PERF_EVENT: (168, False),
               ProgType.RAW_TRACEPOINT: (8 * 12, True)}
# Register types that are never NULL: comparing them with 0 decides the branch.
NEVER_NULL = frozenset({CTX, FP, PKT, PKT_META, PKT_END, MAP_PTR, MAP_VALUE, MAP_KEY, MEM,
                        RINGBUF_MEM, FUNC})


class Reject(Exception):
    """The program is unsafe (or uses what this verifier does not handle): `pc`, kernel text."""

    def __init__(self, message: str, pc: int | None):
        self.message = message
        self.pc = pc
        super().__init__(message)


class Checkpoint:
    """An explored (or being explored) state at a prune point. `branches` counts the paths
    still running below it; it subsumes later states only once it reaches 0."""
    __slots__ = ("state", "branches", "parent", "print")

    def __init__(self, state: State, parent: Checkpoint | None, fingerprint: int):
        self.state = state
        self.branches = 1
        self.parent = parent
        self.print = fingerprint    # equal states have equal fingerprints (loop detection)


def _fingerprint(st: State) -> int:
    regs = st.cur.regs
    return hash((len(st.frames), tuple((r.type, r.off, r.rng, r.var) for r in regs),
                 bytes(st.cur.slots)))


def _finish(cp: Checkpoint | None) -> None:
    while cp is not None:
        cp.branches -= 1
        if cp.branches:
            return
        cp = cp.parent


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


class Walk:
    """One verification of one program. `maps` are the object's MapSpecs by index."""

    def __init__(self, insns: list[Instruction], prog_type: ProgType, maps=(), *,
                 gpl: bool = True, log_level: int = 0, trace=None, insn_limit: int = INSN_LIMIT,
                 facts=None, raw_mem: int | None = None):
        self.insns = insns
        self.prog_type = ProgType(prog_type)
        self.maps = [MapRef(i, m) for i, m in enumerate(maps)]
        self.gpl = gpl
        self.log_level = log_level
        self.trace = trace            # callable(pc, insn, state) for the level-2 log, or None
        self.insn_limit = insn_limit  # the kernel's 1,000,000 (lower only in tests)
        self.facts = facts            # a facts.FactRecorder fed every step, or None
        self.raw_mem = raw_mem        # raw convention: r1 = that many bytes, r2 = their count
        self.by_pc = dict(iter_pcs(insns))
        order = list(self.by_pc)
        self.next_pc = {pc: (order[i + 1] if i + 1 < len(order) else order[i] + 2)
                        for i, pc in enumerate(order)}
        self.nslots = order[-1] + self.by_pc[order[-1]].slots if order else 0
        self.layout = CONTEXT_LAYOUTS.get(self.prog_type)
        self.processed = 0
        self.total_states = 0
        self.peak_states = 0
        self.cur_states = 0
        self.max_states_per_insn = 0
        self.visited: dict[int, list[Checkpoint]] = {}
        self.pc = 0
        self._check_cfg()
        self.prune_points = self._prune_points()
        self.live = self._liveness()

    # --- static checks and analyses --------------------------------------------------------

    def _check_cfg(self) -> None:
        if not self.insns:
            raise Reject("last insn is not an exit or jmp", None)
        last_pc = max(self.by_pc)
        last = self.by_pc[last_pc]
        if last.kind not in (Kind.EXIT, Kind.JA):
            raise Reject("last insn is not an exit or jmp", None)
        for pc, ins in self.by_pc.items():
            target = ins.branch_target(pc)
            if target is not None and (target not in self.by_pc):
                if 0 <= target < self.nslots:
                    raise Reject(f"jump to the middle of ldimm64 insn {target}", pc)
                raise Reject(f"jump out of range from insn {pc} to {target}", pc)
            if ins.kind is Kind.LDDW and ins.src == PSEUDO_FUNC:
                t = pc + 1 + ins.imm_lo
                if t not in self.by_pc:
                    raise Reject(f"invalid func pc {t}", pc)
        # Every instruction reachable (the kernel's check_cfg "unreachable insn").
        starts = function_starts(self.insns)
        order = sorted(self.by_pc)
        for start in starts:
            i = order.index(start) if start in self.by_pc else 0
            if i and self.by_pc[order[i - 1]].kind not in (Kind.EXIT, Kind.JA):
                # A function may not fall through into the next (the kernel's check_subprogs).
                raise Reject("last insn is not an exit or jmp", order[i - 1])
        seen = set()
        work = list(starts)
        while work:
            pc = work.pop()
            if pc in seen or pc not in self.by_pc:
                continue
            seen.add(pc)
            work.extend(self._succ(pc, self.by_pc[pc]))
        for pc in self.by_pc:
            if pc not in seen:
                raise Reject(f"unreachable insn {pc}", pc)

    def _succ(self, pc: int, ins: Instruction) -> list[int]:
        kind = ins.kind
        if kind is Kind.EXIT:
            return []
        if kind is Kind.JA:
            return [ins.branch_target(pc)]
        if kind is Kind.JCOND:
            return [self.next_pc[pc], ins.branch_target(pc)]
        if kind is Kind.CALL and ins.src == CALL_HELPER and ins.imm == 12:
            return [self.next_pc[pc]]      # tail_call falls through when it does not jump
        return [self.next_pc[pc]]

    def _prune_points(self) -> set[int]:
        points = set()
        for pc, ins in self.by_pc.items():
            if ins.kind is Kind.JCOND:
                points.add(ins.branch_target(pc))
                points.add(self.next_pc[pc])
            elif ins.kind is Kind.JA:
                points.add(ins.branch_target(pc))
            elif ins.kind in (Kind.CALL, Kind.CALLX):
                points.add(self.next_pc[pc])
        return points

    def _uses_defs(self, pc: int, ins: Instruction) -> tuple[int, int]:
        """(registers read, registers written) as bit masks."""
        info = OPCODES[ins.opcode]
        kind = info.kind
        d, s = 1 << ins.dst, 1 << ins.src
        if kind is Kind.ALU:
            use = 0 if info.op is AluOp.MOV else d
            if info.source is Source.X:
                use |= s
            return use, d
        if kind in (Kind.NEG, Kind.ENDIAN):
            return d, d
        if kind in (Kind.LDX, Kind.LDXSX):
            return s, d
        if kind is Kind.ST:
            return d, 0
        if kind is Kind.STX:
            return d | s, 0
        if kind is Kind.ATOMIC:
            use = d | s | (1 if ins.imm == AtomicOp.CMPXCHG else 0)
            w = (1 if ins.imm == AtomicOp.CMPXCHG else s) if ins.imm & AtomicOp.FETCH else 0
            return use, w
        if kind is Kind.LDDW:
            return 0, d
        if kind in (Kind.LDABS, Kind.LDIND):
            return (1 << 6) | (s if kind is Kind.LDIND else 0), 0x3F
        if kind is Kind.JCOND:
            return d | (s if info.source is Source.X else 0), 0
        if kind in (Kind.CALL, Kind.CALLX):
            return 0x3E | (d if kind is Kind.CALLX else 0), 0x3F
        if kind is Kind.EXIT:
            return 1, 0
        return 0, 0

    def _liveness(self) -> dict[int, int]:
        """Registers live at each pc (read before written on some path), per function."""
        live = {pc: 0 for pc in self.by_pc}
        ud = {pc: self._uses_defs(pc, ins) for pc, ins in self.by_pc.items()}
        succ = {pc: self._succ(pc, ins) for pc, ins in self.by_pc.items()}
        changed = True
        order = sorted(self.by_pc, reverse=True)
        while changed:
            changed = False
            for pc in order:
                out = 0
                for t in succ[pc]:
                    out |= live.get(t, 0)
                use, defs = ud[pc]
                new = use | (out & ~defs)
                if new != live[pc]:
                    live[pc] = new
                    changed = True
        return live

    # --- driver ----------------------------------------------------------------------------

    def run(self) -> None:
        st = State()
        f = Frame(0)
        if self.raw_mem is None:
            f.regs[1] = Reg(CTX)
        else:
            f.regs[1] = Reg(MEM, size=self.raw_mem)
            f.regs[2] = known(self.raw_mem)
        f.regs[FRAME_POINTER] = Reg(FP, frame=0)
        st.frames.append(f)
        self._explore([(st, 0, None)], callback_depth=None)

    def _explore(self, starts, callback_depth: int | None) -> list[State]:
        """Walk every path from `starts` [(state, pc, checkpoint)]. For a callback walk
        (`callback_depth` = frame count of the callback), return the states after its exits."""
        stack = list(starts)
        exits: list[State] = []
        visited = self.visited if callback_depth is None else {}
        while stack:
            st, pc, cp = stack.pop()
            while True:
                self.processed += 1
                if self.processed > self.insn_limit:
                    raise Reject(f"BPF program is too large. Processed {self.processed} insn", pc)
                if pc in self.prune_points:
                    res = self._visit(visited, st, pc, cp)
                    if res is None:
                        _finish(cp)
                        break
                    cp = res
                self.pc = pc
                ins = self.by_pc[pc]
                if self.trace is not None:
                    self.trace(pc, ins, st)
                if self.facts is not None:
                    self.facts.step(pc, ins, st)
                nxt = self._step(st, pc, ins, stack, cp, callback_depth, exits)
                if nxt is None:
                    _finish(cp)
                    break
                pc = nxt
        return exits

    def _visit(self, visited, st: State, pc: int, cp):
        """None to prune this path; else the checkpoint the path now runs under."""
        entries = visited.setdefault(pc, [])
        live = self.live
        fp = _fingerprint(st)
        for old in entries:
            if old.branches == 0:
                if self._subsumes(old.state, st, live, pc):
                    return None
            elif old.print == fp and self._subsumes(old.state, st, live, pc, exact=True):
                raise Reject(f"infinite loop detected at insn {pc}", pc)
        if len(entries) >= MAX_STATES_PER_PC:
            for i, e in enumerate(entries):
                if e.branches == 0:
                    del entries[i]
                    self.cur_states -= 1
                    break
            else:
                return cp       # all still in progress (a loop): do not keep more here
        # The path moves under `new`, which becomes a live child of `cp`: cp's count of
        # live descendants is unchanged (the kernel's update_branch_counts balance).
        new = Checkpoint(st.copy(), cp, fp)
        entries.append(new)
        self.total_states += 1
        self.cur_states += 1
        self.peak_states = max(self.peak_states, self.cur_states)
        self.max_states_per_insn = max(self.max_states_per_insn, len(entries))
        return new

    # --- subsumption -----------------------------------------------------------------------

    def _subsumes(self, old: State, cur: State, live, pc: int, exact: bool = False) -> bool:
        if len(old.frames) != len(cur.frames) or old.refs.keys() != cur.refs.keys() or \
                old.lock != cur.lock:
            return False
        idmap: dict = {}
        n = len(cur.frames)
        for i in range(n):
            fo, fc = old.frames[i], cur.frames[i]
            if fo.callsite != fc.callsite:
                return False
            if live is None:
                mask = 0x7FF
            elif i == n - 1:
                mask = live.get(pc, 0x7FF)
            else:   # a caller frame: what is live where the call returns
                mask = live.get(self.next_pc.get(cur.frames[i + 1].callsite, -1), 0x7FF)
            for r in range(11):
                if exact or mask >> r & 1 or r == 10:
                    if not self._regsafe(fo.regs[r], fc.regs[r], idmap, exact):
                        return False
            if not self._stacksafe(fo, fc, idmap, exact):
                return False
        return True

    def _regsafe(self, old: Reg, cur: Reg, idmap: dict, exact: bool) -> bool:
        if old is cur:
            return True
        if old.type == NOT_INIT:
            return not exact or cur.type == NOT_INIT
        if old.type != cur.type:
            return False
        if old.type == SCALAR:
            if exact:
                return S.within(cur.var, old.var) and S.within(old.var, cur.var)
            return S.within(cur.var, old.var)
        if (old.off != cur.off or old.null != cur.null or old.map != cur.map
                or old.size != cur.size or old.frame != cur.frame or old.ro != cur.ro
                or old.callsite != cur.callsite):
            return False
        if old.type in PKT_TYPES and (cur.rng < old.rng if not exact else cur.rng != old.rng):
            return False
        for a, b in ((old.id, cur.id), (old.ref, cur.ref)):
            if a or b:
                if idmap.setdefault(("o", a), b) != b or idmap.setdefault(("c", b), a) != a:
                    return False
        ov, cv = old.var, cur.var
        if ov is None and cv is None:
            return True
        if ov is None or cv is None:
            return (ov is None and cur.var_is_zero()) or (cv is None and old.var_is_zero())
        return S.within(cv, ov) and (not exact or S.within(ov, cv))

    def _stacksafe(self, fo: Frame, fc: Frame, idmap: dict, exact: bool) -> bool:
        os_, cs = fo.slots, fc.slots
        if os_ == cs and not fo.spills and not fc.spills:
            return True
        for i in range(STACK_SIZE):
            o = os_[i]
            c = cs[i]
            if o == INVALID and not exact:
                continue
            if o == MISC and not exact and c in (MISC, ZERO):
                continue
            if o == SPILL or c == SPILL:
                continue        # compared by slot below
            if o != c:
                if o == MISC and not exact and c == INVALID:
                    continue    # uninitialised stack reads as unknown (privileged mode)
                return False
        for spi in set(fo.spills) | set(fc.spills):
            base = spi * 8
            okinds = os_[base:base + 8]
            ckinds = cs[base:base + 8]
            oreg, creg = fo.spills.get(spi), fc.spills.get(spi)
            if oreg is not None and creg is not None:
                if okinds != ckinds or not self._regsafe(oreg, creg, idmap, exact):
                    return False
            elif oreg is not None:
                # old has a spill, cur plain bytes: fine only for a scalar spill over
                # initialised bytes (they read as some scalar) and an unknown old scalar.
                if exact or oreg.type != SCALAR or not S.within(S.unknown(), oreg.var):
                    return False
            else:
                # cur has a spill where old has bytes: old bytes must cover a scalar.
                if exact:
                    return False
                if any(k == SPILL for k in okinds):
                    return False
                if creg.type != SCALAR and any(k != INVALID for k in okinds):
                    return False
                # old read zeros there: only a spilled constant 0 reads the same.
                if ZERO in okinds and not (creg.is_const() and creg.const() == 0):
                    return False
        return True

    # --- one instruction ---------------------------------------------------------------------

    def _step(self, st: State, pc: int, ins: Instruction, stack, cp, callback_depth, exits):
        info = OPCODES[ins.opcode]
        kind = info.kind
        regs = st.cur.regs
        if kind is Kind.ALU or kind is Kind.NEG or kind is Kind.ENDIAN:
            if ins.dst == FRAME_POINTER:
                raise Reject("frame pointer is read only", pc)
            self._alu(st, pc, ins, info)
            return self.next_pc[pc]
        if kind is Kind.LDX or kind is Kind.LDXSX:
            if ins.dst == FRAME_POINTER:
                raise Reject("frame pointer is read only", pc)
            self._check_read(st, ins.src, pc)
            regs[ins.dst] = self._load(st, ins.src, ins.off, info.size, pc,
                                       signed=kind is Kind.LDXSX)
            return self.next_pc[pc]
        if kind is Kind.ST or kind is Kind.STX:
            self._check_read(st, ins.dst, pc)
            if kind is Kind.STX:
                self._check_read(st, ins.src, pc)
                val = regs[ins.src]
            else:
                val = known(ins.imm)
            self._store(st, ins.dst, ins.off, info.size, val, pc)
            return self.next_pc[pc]
        if kind is Kind.ATOMIC:
            self._atomic(st, pc, ins, info)
            return self.next_pc[pc]
        if kind is Kind.LDDW:
            regs[ins.dst] = self._lddw(pc, ins)
            return self.next_pc[pc]
        if kind is Kind.LDABS or kind is Kind.LDIND:
            self._ld_abs(st, pc, ins, info)
            return self.next_pc[pc]
        if kind is Kind.JA:
            return ins.branch_target(pc)
        if kind is Kind.JCOND:
            return self._jcond(st, pc, ins, info, stack, cp)
        if kind is Kind.CALL:
            if ins.src == CALL_LOCAL:
                return self._call_local(st, pc, ins)
            if ins.src == CALL_KFUNC:
                raise Reject(f"kfunc calls are not supported by ebpfjit's verifier (btf id "
                             f"{ins.imm})", pc)
            self._call_helper(st, pc, ins)
            return self.next_pc[pc]
        if kind is Kind.CALLX:
            raise Reject("callx (indirect calls) are not supported by ebpfjit's verifier", pc)
        if kind is Kind.EXIT:
            return self._exit(st, pc, callback_depth, exits)
        raise Reject(f"unknown opcode {ins.opcode:#04x}", pc)

    def _check_read(self, st: State, r: int, pc: int) -> Reg:
        reg = st.cur.regs[r]
        if reg.type == NOT_INIT:
            raise Reject(f"R{r} !read_ok", pc)
        return reg

    # --- ALU ---------------------------------------------------------------------------------

    def _alu(self, st: State, pc: int, ins: Instruction, info) -> None:
        regs = st.cur.regs
        op = info.op
        is64 = info.width == 64
        dst = ins.dst
        if info.kind is Kind.NEG or info.kind is Kind.ENDIAN:
            d = self._check_read(st, dst, pc)
            if d.type != SCALAR:
                regs[dst] = unknown()   # privileged: the pointer becomes an unknown scalar
                return
            if info.kind is Kind.NEG:
                regs[dst] = Reg(SCALAR, var=S.alu("neg", d.var, d.var, is64))
            else:
                regs[dst] = self._endian(d, ins, info)
            return
        if info.source is Source.X:
            src = self._check_read(st, ins.src, pc)
        else:
            src = known(ins.imm)
        if op is AluOp.MOV:
            if ins.off:     # movsx
                if src.type != SCALAR:
                    raise Reject(f"R{ins.src} sign-extension part of pointer", pc)
                regs[dst] = Reg(SCALAR, var=S.alu(f"movsx{ins.off}", src.var, src.var, is64))
            elif is64:
                regs[dst] = src
            elif src.type != SCALAR:
                regs[dst] = zext_unknown(4)
            else:
                regs[dst] = Reg(SCALAR, var=S.alu("mov", src.var, src.var, False))
            return
        d = self._check_read(st, dst, pc)
        name = ALU_NAMES[op]
        if op in (AluOp.DIV, AluOp.MOD) and ins.off == 1:
            name = "s" + name
        if d.type == SCALAR and src.type == SCALAR:
            regs[dst] = Reg(SCALAR, var=S.alu(name, d.var, src.var, is64))
            return
        # Pointer arithmetic.
        if op is AluOp.SUB and (not is64 or d.type != SCALAR and src.type != SCALAR):
            regs[dst] = unknown()   # privileged: ptr - ptr and 32-bit subs are scalars
            return
        if not is64:
            raise Reject(f"R{dst} 32-bit pointer arithmetic prohibited", pc)
        if d.type != SCALAR and src.type != SCALAR:
            raise Reject(f"R{dst} pointer {ALU_SYMBOLS[op]} pointer prohibited", pc)
        if op not in (AluOp.ADD, AluOp.SUB):
            raise Reject(f"R{dst} pointer arithmetic with {ALU_SYMBOLS[op]} operator "
                         "prohibited", pc)
        if d.type == SCALAR:
            if op is AluOp.SUB:
                raise Reject(f"R{dst} tried to subtract pointer from scalar", pc)
            ptr, off = src, d
        else:
            ptr, off = d, src
        regs[dst] = self._ptr_add(ptr, off, op is AluOp.SUB, dst, st, pc)

    def _endian(self, d: Reg, ins: Instruction, info) -> Reg:
        return Reg(SCALAR, var=S.alu(f"{info.name}{ins.imm}", d.var, d.var, info.width == 64))

    def _ptr_add(self, ptr: Reg, off: Reg, sub: bool, dst: int, st: State, pc: int) -> Reg:
        t = ptr.type
        if ptr.null:
            raise Reject(f"R{dst} pointer arithmetic on {ptr.type_str()} prohibited, "
                         "null-check it first", pc)
        if t in (PKT_END, MAP_PTR, FUNC):
            raise Reject(f"R{dst} pointer arithmetic on {t} prohibited", pc)
        tname = {PKT: "pkt", PKT_META: "pkt_meta", MAP_VALUE: "map_value", FP: "stack",
                 CTX: "context"}.get(t, t)
        if off.is_const():
            val = S.signed_value(off.var)
            if sub:
                val = -val
            if val >= MAX_VAR_OFF or val <= -MAX_VAR_OFF:
                raise Reject(f"math between {tname} pointer and {val} is not allowed", pc)
            new_off = ptr.off + val
            if new_off >= MAX_VAR_OFF or new_off <= -MAX_VAR_OFF:
                raise Reject(f"{tname} pointer offset {new_off} is not allowed", pc)
            return ptr.replace(off=new_off)
        if S.smin(off.var) == S.S64_MIN and not sub:
            raise Reject(f"math between {tname} pointer and register with unbounded min value "
                         "is not allowed", pc)
        if S.smin(off.var) <= -MAX_VAR_OFF or S.smax(off.var) >= MAX_VAR_OFF:
            raise Reject(f"value {S.smin(off.var)} makes {tname} pointer be out of bounds", pc)
        base = ptr.var if ptr.var is not None else S.const(0)
        var = S.alu("sub" if sub else "add", base, off.var, True)
        if S.smin(var) <= -MAX_VAR_OFF or S.smax(var) >= MAX_VAR_OFF:
            raise Reject(f"value {S.smin(var)} makes {tname} pointer be out of bounds", pc)
        if t in PKT_TYPES:
            return ptr.replace(var=var, id=st.new_id(), rng=0)
        return ptr.replace(var=var)

    # --- memory ------------------------------------------------------------------------------

    def _region(self, st: State, r: int, off: int, size: int, pc: int, write: bool,
                helper: bool = False) -> None:
        """Check that [reg + off, + size) is inside the memory reg points to."""
        reg = st.cur.regs[r]
        t = reg.type
        if reg.null or t not in (CTX, FP, PKT, PKT_META, MAP_VALUE, MAP_KEY, MEM, RINGBUF_MEM):
            raise Reject(f"R{r} invalid mem access '{reg.type_str()}'", pc)
        if t in (MAP_VALUE, MAP_KEY, MEM, RINGBUF_MEM):
            if t == MAP_VALUE:
                limit = reg.map.spec.value_size
                what = f"map value, value_size={limit}"
            elif t == MAP_KEY:
                limit = reg.map.spec.key_size
                what = f"map key, key_size={limit}"
            else:
                limit = reg.size
                what = f"memory, mem_size={limit}"
            if write and reg.ro:
                raise Reject(f"write into map forbidden, value_size={limit} off={reg.off + off} "
                             f"size={size}", pc)
            lo = hi = reg.off + off
            if reg.var is not None and not reg.var_is_zero():
                if S.smin(reg.var) < 0:
                    raise Reject(f"R{r} min value is negative, either use unsigned index or do a "
                                 "if (index >=0) check.", pc)
                if S.umax(reg.var) >= MAX_VAR_OFF:
                    raise Reject(f"R{r} unbounded memory access, make sure to bounds check any "
                                 "such access", pc)
                lo += S.smin(reg.var)
                hi += S.umax(reg.var)
            if lo < 0 or hi + size > limit:
                bad = lo if lo < 0 else hi
                raise Reject(f"invalid access to {what} off={bad} size={size}", pc)
            return
        if t in PKT_TYPES:
            o = reg.off + off
            if reg.var is not None and not reg.var_is_zero() and S.smin(reg.var) < 0:
                raise Reject(f"R{r} min value is negative, either use unsigned index or do a "
                             "if (index >=0) check.", pc)
            if o < 0 or o + size > reg.rng:
                if helper:
                    raise Reject(f"invalid access to packet, off={o} size={size}, R{r}(id={reg.id},"
                                 f"off={o},r={reg.rng})", pc)
                raise Reject(f"invalid access to packet, off={o} size={size}, R{r}(id={reg.id},"
                             f"off={o},r={reg.rng})\nR{r} offset is outside of the packet", pc)
            return
        if t == FP:
            if not reg.var_is_zero():
                raise Reject(f"R{r} variable-offset stack access is not supported by ebpfjit's "
                             "verifier", pc)
            o = reg.off + off
            if o < -STACK_SIZE or o + size > 0 or size <= 0:
                extra = " indirect access to" if helper else " write to" if write else " read from"
                raise Reject(f"invalid{extra} stack R{r} off={off} size={size}", pc)
            return
        raise Reject(f"R{r} invalid mem access '{reg.type_str()}'", pc)

    def _load(self, st: State, r: int, off: int, size: int, pc: int, signed: bool) -> Reg:
        reg = st.cur.regs[r]
        t = reg.type
        if t == CTX:
            return self._ctx_access(reg, r, off, size, pc, write=False)
        self._region(st, r, off, size, pc, write=False)
        if t == FP:
            frame = st.frames[reg.frame]
            return self._stack_read(frame, reg.off + off, size, signed, pc)
        if signed:
            return Reg(SCALAR, var=S.signed_bits(size * 8))
        if t == MAP_VALUE and reg.map.spec.readonly and reg.var_is_zero() and \
                reg.map.spec.initial is not None and not signed:
            # .rodata: the kernel reads constants from frozen read-only maps.
            o = reg.off + off
            data = reg.map.spec.initial
            if o + size <= len(data):
                return known(int.from_bytes(data[o:o + size], "little"))
        return zext_unknown(size)

    def _stack_read(self, frame: Frame, off: int, size: int, signed: bool, pc: int) -> Reg:
        start = STACK_SIZE + off
        spi = start // 8
        if start % 8 == 0 and size == 8 and spi in frame.spills:
            return frame.spills[spi]
        kinds = frame.slots[start:start + size]
        for i in range(start // 8, (start + size - 1) // 8 + 1):
            sp = frame.spills.get(i)
            if sp is not None and sp.type != SCALAR:
                if any(frame.slots[j] == SPILL for j in range(max(start, i * 8),
                                                               min(start + size, i * 8 + 8))):
                    raise Reject("invalid size of register fill", pc)
        if all(k == ZERO for k in kinds):
            return known(0)
        if spi in frame.spills and (start + size - 1) // 8 == spi:
            sp = frame.spills[spi]
            if sp.is_const() and start % 8 == 0 and not signed:
                return known(sp.const() & ((1 << (8 * size)) - 1))
        if signed:
            return Reg(SCALAR, var=S.signed_bits(size * 8))
        return zext_unknown(size)

    def _store(self, st: State, r: int, off: int, size: int, val: Reg, pc: int) -> None:
        reg = st.cur.regs[r]
        t = reg.type
        if t == CTX:
            self._ctx_access(reg, r, off, size, pc, write=True)
            return
        self._region(st, r, off, size, pc, write=True)
        if t == FP:
            self._stack_write(st.frames[reg.frame], reg.off + off, size, val, pc)

    def _stack_write(self, frame: Frame, off: int, size: int, val: Reg | None, pc: int) -> None:
        """Write `size` bytes at fp+off; val None: unknown bytes written by a helper."""
        start = STACK_SIZE + off
        self._drop_spills(frame, start, size)
        if val is not None and size == 8 and start % 8 == 0:
            frame.slots[start:start + 8] = bytes([SPILL]) * 8
            frame.spills[start // 8] = val
            return
        if val is not None and val.type != SCALAR:
            raise Reject("invalid size of register spill", pc)
        kind = ZERO if val is not None and val.is_const() and val.const() & (
            (1 << (8 * size)) - 1) == 0 else MISC
        frame.slots[start:start + size] = bytes([kind]) * size

    def _drop_spills(self, frame: Frame, start: int, size: int) -> None:
        for spi in range(start // 8, (start + size - 1) // 8 + 1):
            if spi in frame.spills:
                del frame.spills[spi]
                for j in range(spi * 8, spi * 8 + 8):
                    if frame.slots[j] == SPILL:
                        frame.slots[j] = MISC

    def _ctx_access(self, reg: Reg, r: int, off: int, size: int, pc: int, write: bool) -> Reg:
        if reg.off or not reg.var_is_zero():
            raise Reject(f"dereference of modified ctx ptr R{r} off={reg.off} disallowed", pc)
        layout = self.layout
        if layout is None and self.prog_type in TRACING_CTX:
            # pt_regs / raw tracepoint args: read-only u64 slots (the kernel's
            # kprobe_prog_is_valid_access / raw_tp_prog_is_valid_access).
            limit, exact8 = TRACING_CTX[self.prog_type]
            if write or off < 0 or off + size > limit or off % size or (exact8 and size != 8):
                raise Reject(f"invalid bpf_context access off={off} size={size}", pc)
            return zext_unknown(size)
        if layout is None:
            raise Reject(f"context access of {self.prog_type.name.lower()} programs is not "
                         "supported by ebpfjit's verifier", pc)
        fld = layout.field_at(off, size)
        if fld is None or (write and (not fld.writable or fld.pointer_slot is not None)):
            raise Reject(f"invalid bpf_context access off={off} size={size}", pc)
        if write:
            return REG_NOT_INIT
        if fld.pointer_slot is not None:
            if off != fld.offset or size != 4:
                raise Reject(f"invalid bpf_context access off={off} size={size}", pc)
            return {"data": Reg(PKT), "data_end": Reg(PKT_END),
                    "data_meta": Reg(PKT_META)}[fld.name]
        if size < fld.size and not layout.allow_narrow_reads:
            raise Reject(f"invalid bpf_context access off={off} size={size}", pc)
        return zext_unknown(size)

    def _atomic(self, st: State, pc: int, ins: Instruction, info) -> None:
        imm = ins.imm
        if imm not in (0x00, 0x40, 0x50, 0xA0, 0x01, 0x41, 0x51, 0xA1, 0xE1, 0xF1):
            raise Reject(f"BPF_ATOMIC uses invalid atomic opcode {imm:02x}", pc)
        self._check_read(st, ins.src, pc)
        self._check_read(st, ins.dst, pc)
        if imm == AtomicOp.CMPXCHG:
            self._check_read(st, 0, pc)
        regs = st.cur.regs
        if regs[ins.src].type != SCALAR:
            raise Reject(f"R{ins.src} leaks addr into mem", pc)
        if imm == AtomicOp.CMPXCHG and regs[0].type != SCALAR:
            raise Reject("R0 leaks addr into mem", pc)
        dst = regs[ins.dst]
        if dst.type not in (FP, MAP_VALUE, MEM, RINGBUF_MEM) or dst.null:
            raise Reject(f"BPF_ATOMIC stores into R{ins.dst} {dst.type_str()} is not allowed", pc)
        size = info.size
        self._region(st, ins.dst, ins.off, size, pc, write=True)
        if dst.type == FP:
            frame = st.frames[dst.frame]
            start = STACK_SIZE + dst.off + ins.off
            sp = frame.spills.get(start // 8)
            if sp is not None and sp.type != SCALAR:
                raise Reject(f"BPF_ATOMIC stores into R{ins.dst} of a spilled pointer are not "
                             "supported by ebpfjit's verifier", pc)
            self._stack_write(frame, dst.off + ins.off, size, None, pc) if size != 8 else \
                self._stack_write(frame, dst.off + ins.off, 8, unknown(), pc)
        if imm & AtomicOp.FETCH:
            out = 0 if imm == AtomicOp.CMPXCHG else ins.src
            regs[out] = unknown() if size == 8 else zext_unknown(4)

    def _lddw(self, pc: int, ins: Instruction) -> Reg:
        src = ins.src
        if src == 0:
            return known(ins.imm)
        if src in (PSEUDO_MAP_FD, PSEUDO_MAP_VALUE):
            index = ins.imm & 0xFFFFFFFF
            if index >= len(self.maps):
                raise Reject(f"fd {index} is not pointing to valid bpf_map", pc)
            m = self.maps[index]
            if src == PSEUDO_MAP_FD:
                return Reg(MAP_PTR, map=m)
            off = (ins.imm >> 32) & 0xFFFFFFFF
            if off >= m.spec.value_size:
                raise Reject(f"invalid access to map value pointer, value_size="
                             f"{m.spec.value_size} off={off}", pc)
            return Reg(MAP_VALUE, map=m, off=off, ro=m.spec.readonly)
        if src == PSEUDO_FUNC:
            return Reg(FUNC, callsite=pc + 1 + ins.imm_lo)
        raise Reject(f"ldimm64 with src_reg {src} is not supported by ebpfjit's verifier", pc)

    def _ld_abs(self, st: State, pc: int, ins: Instruction, info) -> None:
        if self.prog_type not in SKB_TYPES:
            raise Reject("BPF_LD_[ABS|IND] instructions not allowed for this program type", pc)
        if st.refs:
            raise Reject("BPF_LD_[ABS|IND] cannot be mixed with socket references", pc)
        if st.lock is not None:
            raise Reject("BPF_LD_[ABS|IND] cannot be used inside bpf_spin_lock-ed region", pc)
        r6 = self._check_read(st, 6, pc)
        if r6.type != CTX or r6.off:
            raise Reject("at the time of BPF_LD_ABS|IND R6 != pointer to skb", pc)
        if info.kind is Kind.LDIND:
            self._check_read(st, ins.src, pc)
        regs = st.cur.regs
        for r in range(1, 6):
            regs[r] = REG_NOT_INIT
        regs[0] = zext_unknown(info.size)

    # --- branches ----------------------------------------------------------------------------

    def _jcond(self, st: State, pc: int, ins: Instruction, info, stack, cp):
        is32 = info.width == 32
        d = self._check_read(st, ins.dst, pc)
        if info.source is Source.X:
            s = self._check_read(st, ins.src, pc)
        else:
            s = known(ins.imm)
        op = info.op
        target = ins.branch_target(pc)
        fall = self.next_pc[pc]
        if d.type == SCALAR and s.type == SCALAR:
            if S.is_const(d.var) and S.is_const(s.var):
                # Both known: one successor, nothing to refine (the hot path of counted loops).
                jumps = S.concrete_branch(JMP_NAMES[op], S.const_value(d.var),
                                          S.const_value(s.var), is32)
                return target if jumps else fall
            taken, other = S.branch(JMP_NAMES[op], d.var, s.var, is32)
            results = []
            for pair, where in ((other, fall), (taken, target)):
                if pair is None:
                    continue
                results.append((where, pair))
            if not results:
                raise Reject("both branches of a conditional jump are impossible (internal "
                             "error in ebpfjit's verifier)", pc)
            branches = []
            for where, (nd, ns) in results:
                branches.append((where, self._set_pair(st, ins, info, nd, ns)))
            return self._fork(st, branches, stack, cp)
        # Pointer comparisons.
        if op in (JmpOp.JEQ, JmpOp.JNE) and not is32:
            ptr, zero = (d, s) if d.type != SCALAR else (s, d)
            if zero.type == SCALAR and zero.is_const() and zero.const() == 0 and ptr.is_pointer:
                eq = op is JmpOp.JEQ
                if ptr.null:
                    null_st, ok_st = st.copy(), st
                    self._mark_null(null_st, ptr, True)
                    self._mark_null(ok_st, ptr, False)
                    return self._fork(st, [(target if eq else fall, null_st),
                                           (fall if eq else target, ok_st)], stack, cp,
                                      copy=False)
                if ptr.type in NEVER_NULL:
                    return fall if eq else target
        if (d.type in PKT_TYPES or s.type in PKT_TYPES) and not is32:
            return self._pkt_compare(st, ins, op, d, s, target, fall, stack, cp)
        return self._fork(st, [(fall, st), (target, st.copy())], stack, cp, copy=False)

    def _set_pair(self, st: State, ins, info, nd, ns) -> State:
        new = st.copy()
        regs = new.cur.regs
        regs[ins.dst] = Reg(SCALAR, var=nd)
        if info.source is Source.X and ins.src != ins.dst:
            regs[ins.src] = Reg(SCALAR, var=ns)
        return new

    def _fork(self, st: State, branches, stack, cp, copy: bool = True):
        """Continue with the first branch; push the others (their states already separate)."""
        if len(branches) == 1:
            where, s2 = branches[0]
            self._adopt(st, s2)
            return where
        # Continue in place with the branch whose state is `st` (the others are copies).
        branches = sorted(branches, key=lambda b: b[1] is not st)
        first_where, first = branches[0]
        for where, s2 in branches[1:]:
            if cp is not None:
                cp.branches += 1
            stack.append((s2, where, cp))
        self._adopt(st, first)
        return first_where

    @staticmethod
    def _adopt(st: State, other: State) -> None:
        if other is not st:
            st.frames = other.frames
            st.refs = other.refs
            st.next_id = other.next_id
            st.lock = other.lock

    def _mark_null(self, st: State, ptr: Reg, is_null: bool) -> None:
        pid = ptr.id

        def fn(r: Reg):
            if r.id != pid or not r.null:
                return None
            if is_null:
                return known(0)
            if r.type == MAP_VALUE and r.map.spec.type in P.MAP_OF_MAPS:
                inner = r.map.spec.inner
                if inner is None:
                    return unknown()
                return Reg(MAP_PTR, map=MapRef(-1, inner))
            return r.replace(null=False)
        st.map_regs(fn)
        if is_null and ptr.ref:
            st.refs.pop(ptr.ref, None)

    def _pkt_compare(self, st, ins, op, d: Reg, s: Reg, target, fall, stack, cp):
        """pkt vs pkt_end (and pkt_meta vs pkt): give the packet pointer's id its range on the
        branch where the access is in bounds (the kernel's find_good_pkt_pointers)."""
        good = None     # (which branch: 'taken'|'fall', pointer reg, right_open)
        if d.type == PKT and s.type == PKT_END or d.type == PKT_META and s.type == PKT:
            ptr = d
            good = {JmpOp.JGT: ("fall", False), JmpOp.JLT: ("taken", True),
                    JmpOp.JGE: ("fall", True), JmpOp.JLE: ("taken", False)}.get(op)
        elif d.type == PKT_END and s.type == PKT or d.type == PKT and s.type == PKT_META:
            ptr = s
            good = {JmpOp.JGT: ("taken", True), JmpOp.JLT: ("fall", False),
                    JmpOp.JGE: ("taken", False), JmpOp.JLE: ("fall", True)}.get(op)
        taken_st, fall_st = st.copy(), st
        if good is not None and ptr.off >= 0 and not (ptr.off == 0 and good[1]):
            new_range = ptr.off + (1 if good[1] else 0)
            tgt = taken_st if good[0] == "taken" else fall_st
            pid, ptype = ptr.id, ptr.type

            def fn(r: Reg):
                if r.type == ptype and r.id == pid and r.rng < new_range:
                    return r.replace(rng=new_range)
                return None
            tgt.map_regs(fn)
        return self._fork(st, [(fall, fall_st), (target, taken_st)], stack, cp, copy=False)

    # --- calls -------------------------------------------------------------------------------

    def _call_local(self, st: State, pc: int, ins: Instruction) -> int:
        if st.lock is not None:
            raise Reject("function calls are not allowed while holding a lock", pc)
        if len(st.frames) >= MAX_FRAMES:
            raise Reject(f"the call stack of {len(st.frames) + 1} frames is too deep !", pc)
        caller = st.cur
        callee = Frame(len(st.frames), callsite=pc)
        for r in range(1, 6):
            callee.regs[r] = caller.regs[r]
        callee.regs[FRAME_POINTER] = Reg(FP, frame=callee.frameno)
        st.frames.append(callee)
        return ins.branch_target(pc)

    def _exit(self, st: State, pc: int, callback_depth, exits):
        regs = st.cur.regs
        r0 = self._check_read(st, 0, pc)
        cur = st.cur
        if cur.in_callback and len(st.frames) == callback_depth:
            if r0.type != SCALAR:
                raise Reject("At callback return the register R0 is not a known value "
                             f"({r0.type_str()})", pc)
            if S.smin(r0.var) < 0 or S.smax(r0.var) > 1:
                raise Reject(f"At callback return the register R0 has smin={S.smin(r0.var)} "
                             f"smax={S.smax(r0.var)} should have been in [0, 1]", pc)
            st.frames.pop()
            self._drop_dead_frame_pointers(st, cur.frameno)
            exits.append(st)
            return None
        if len(st.frames) == 1:
            # Only the main program's exit: a static callee may return holding the lock, which
            # its caller releases (the kernel checks locks with check_resource_leak at curframe 0).
            if st.lock is not None:
                raise Reject("bpf_spin_unlock is missing", pc)
            for ref, alloc in st.refs.items():
                raise Reject(f"Unreleased reference id={ref} alloc_insn={alloc}\n"
                             "BPF_EXIT instruction in main prog would lead to reference leak", pc)
            return None
        if r0.type == FP and r0.frame == cur.frameno:
            raise Reject("cannot return stack pointer to the caller", pc)
        st.frames.pop()
        self._drop_dead_frame_pointers(st, cur.frameno)
        caller = st.cur
        caller.regs[0] = r0 if not (r0.type == FP and r0.frame >= cur.frameno) else unknown()
        for r in range(1, 6):
            caller.regs[r] = REG_NOT_INIT
        del regs
        return self.next_pc[cur.callsite]

    @staticmethod
    def _drop_dead_frame_pointers(st: State, frameno: int) -> None:
        st.map_regs(lambda r: unknown() if r.type == FP and r.frame >= frameno else None)

    def _call_helper(self, st: State, pc: int, ins: Instruction) -> None:
        from ..objects.helper_names import helper_name
        hid = ins.imm
        proto = P.PROTOS.get(hid)
        name = helper_name(hid)
        if proto is None:
            if name is None:
                raise Reject(f"invalid func unknown#{hid}", pc)
            raise Reject(f"helper {name}#{hid} is not implemented by ebpfjit (no prototype)", pc)
        if proto.prog_types is not None and self.prog_type not in proto.prog_types:
            raise Reject(f"program of this type cannot use helper {proto.name}#{hid}", pc)
        if proto.gpl_only and not self.gpl:
            raise Reject("cannot call GPL-restricted function from non-GPL compatible program",
                         pc)
        if st.lock is not None and proto.args[:1] != (P.SPIN_LOCK,):
            raise Reject("function calls are not allowed while holding a lock", pc)
        regs = st.cur.regs
        meta: dict = {}
        for i, kind in enumerate(proto.args):
            self._check_arg(st, pc, proto, i + 1, kind, meta)
        callback = meta.get("func")
        if callback is not None:
            self._run_callback(st, pc, proto, callback, meta)
            regs = st.cur.regs
        if hid == 12 and st.refs:
            raise Reject("tail_call would lead to reference leak", pc)
        release = meta.get("release")
        if release:
            st.refs.pop(release, None)
            st.map_regs(lambda r: unknown() if r.ref == release else None)
        if proto.pkt_changing:
            st.map_regs(lambda r: unknown() if r.type in (PKT, PKT_META, PKT_END) else None)
        for r in range(1, 6):
            regs[r] = REG_NOT_INIT
        ret = proto.ret
        if ret == P.RET_INTEGER:
            regs[0] = unknown()
        elif ret == P.RET_VOID:
            regs[0] = REG_NOT_INIT
        elif ret == P.RET_MAP_VALUE_OR_NULL:
            m = meta["map"]
            if m.spec.type in P.NO_LOOKUP:
                raise Reject(f"cannot pass map_type {int(m.spec.type)} into func "
                             f"{proto.name}#{hid}", pc)
            key = meta.get("const_key")
            # An array lookup with a constant key in range cannot fail (the kernel's
            # can_elide_value_nullness, Linux 6.13).
            null = not (m.spec.type in (MapType.ARRAY, MapType.PERCPU_ARRAY) and key is not None
                        and key < m.spec.max_entries)
            regs[0] = Reg(MAP_VALUE, map=m, null=null, id=st.new_id() if null else 0,
                          ro=m.spec.readonly)
        elif ret == P.RET_RINGBUF_MEM_OR_NULL:
            st.new_id()         # the kernel spends one id on the or-null mark first
            rid = st.new_id()
            st.refs[rid] = pc
            regs[0] = Reg(RINGBUF_MEM, null=True, id=rid, ref=rid, size=meta["alloc_size"])

    def _check_arg(self, st: State, pc: int, proto, argno: int, kind: str, meta: dict) -> None:
        regs = st.cur.regs
        reg = regs[argno]
        if reg.type == NOT_INIT:
            raise Reject(f"R{argno} !read_ok", pc)
        t = reg.type

        def expect(*types: str):
            raise Reject(f"R{argno} type={reg.type_str()} expected={', '.join(types)}", pc)

        if kind == P.ANYTHING:
            return
        if kind == P.CONST_MAP_PTR:
            if t != MAP_PTR:
                expect("map_ptr")
            if proto.map_types is not None and reg.map.spec.type not in proto.map_types:
                raise Reject(f"cannot pass map_type {int(reg.map.spec.type)} into func "
                             f"{proto.name}#{ins_id(proto)}", pc)
            if proto.map_types is None and reg.map.spec.type in (MapType.RINGBUF,) and \
                    proto.name in ("bpf_map_lookup_elem", "bpf_map_update_elem",
                                   "bpf_map_delete_elem"):
                raise Reject(f"cannot pass map_type {int(reg.map.spec.type)} into func "
                             f"{proto.name}#{ins_id(proto)}", pc)
            meta["map"] = reg.map
            return
        if kind in (P.MAP_KEY, P.MAP_VALUE, P.UNINIT_MAP_VALUE):
            m = meta.get("map")
            if m is None:
                raise Reject(f"invalid map_ptr to access map->{'key' if kind == P.MAP_KEY else 'value'}",
                             pc)
            size = m.spec.key_size if kind == P.MAP_KEY else m.spec.value_size
            if t not in (FP, PKT, PKT_META, MAP_VALUE, MAP_KEY, MEM, RINGBUF_MEM) or reg.null:
                expect("fp", "pkt", "pkt_meta", "map_key", "map_value", "mem", "ringbuf_mem")
            self._helper_mem(st, argno, size, pc, write=kind == P.UNINIT_MAP_VALUE)
            if kind == P.MAP_KEY and t == FP and size == 4:
                meta["const_key"] = self._const_stack_u32(st.frames[reg.frame], reg.off)
            return
        if kind in (P.MEM, P.MEM_OR_NULL, P.UNINIT_MEM):
            if kind == P.MEM_OR_NULL and reg.is_const() and reg.const() == 0:
                meta["mem_null"] = argno
                return
            if t not in (FP, PKT, PKT_META, MAP_VALUE, MAP_KEY, MEM, RINGBUF_MEM) or reg.null:
                expect("fp", "pkt", "pkt_meta", "map_key", "map_value", "mem", "ringbuf_mem")
            meta["mem"] = (argno, kind == P.UNINIT_MEM)
            return
        if kind in (P.CONST_SIZE, P.CONST_SIZE_OR_ZERO):
            if t != SCALAR:
                expect("scalar")
            zero_ok = kind == P.CONST_SIZE_OR_ZERO
            if S.smin(reg.var) < 0:
                raise Reject(f"R{argno} min value is negative, either use unsigned or "
                             "'var &= const'", pc)
            umax = S.umax(reg.var)
            if umax == 0 and not zero_ok:
                raise Reject("invalid zero-sized read", pc)
            if umax >= MAX_VAR_OFF:
                raise Reject(f"R{argno} unbounded memory access, use 'var &= const' or "
                             "'if (var < const)'", pc)
            mem = meta.pop("mem", None)
            if mem is not None and umax:
                self._helper_mem(st, mem[0], umax, pc, write=mem[1])
            elif meta.pop("mem_null", None) is not None and umax:
                raise Reject(f"R{argno - 1} type=scalar expected=fp", pc)
            return
        if kind == P.CTX:
            if t != CTX:
                expect("ctx")
            if reg.off or not reg.var_is_zero():
                raise Reject(f"dereference of modified ctx ptr R{argno} off={reg.off} "
                             "disallowed", pc)
            return
        if kind == P.FUNC:
            if t != FUNC:
                expect("func")
            meta["func"] = reg.callsite
            return
        if kind == P.STACK_OR_NULL:
            if reg.is_const() and reg.const() == 0:
                return
            if t != FP:
                expect("fp")
            return
        if kind == P.RINGBUF_MEM_RELEASE:
            if t != RINGBUF_MEM or reg.null:
                expect("ringbuf_mem")
            if reg.off or not reg.var_is_zero():
                raise Reject(f"R{argno} must have zero offset when passed to release func", pc)
            if reg.ref not in st.refs:
                raise Reject(f"R{argno} must be referenced when passed to release function", pc)
            meta["release"] = reg.ref
            return
        if kind == P.CONST_ALLOC_SIZE:
            if t != SCALAR or not reg.is_const():
                raise Reject(f"R{argno} is not a known constant'", pc)
            meta["alloc_size"] = reg.const()
            return
        if kind == P.CONST_STR:
            if t != MAP_VALUE or reg.null:
                expect("map_value")
            if not reg.map.spec.readonly or reg.map.spec.initial is None:
                raise Reject(f"R{argno} does not point to a readonly map'", pc)
            if not reg.var_is_zero():
                raise Reject(f"R{argno} is not a constant address'", pc)
            data = reg.map.spec.initial
            if b"\0" not in data[reg.off:]:
                raise Reject("string is not zero-terminated", pc)
            return
        if kind == P.SPIN_LOCK:
            if t != MAP_VALUE or reg.null:
                expect("map_value")
            if not reg.var_is_zero():
                raise Reject(f"R{argno} doesn't have constant offset. bpf_spin_lock has to be at "
                             "the constant offset", pc)
            self._region(st, argno, 0, 4, pc, write=True, helper=True)
            lock = (reg.map.index, id(reg.map.spec), reg.off)
            if proto.name == "bpf_spin_lock":
                if st.lock is not None:
                    raise Reject("Locking two bpf_spin_locks are not allowed", pc)
                st.lock = lock
            else:
                if st.lock is None:
                    raise Reject("bpf_spin_unlock without taking a lock", pc)
                if st.lock != lock:
                    raise Reject("bpf_spin_unlock of different lock", pc)
                st.lock = None
            return
        raise Reject(f"argument kind {kind} is not supported by ebpfjit's verifier", pc)

    @staticmethod
    def _const_stack_u32(frame: Frame, off: int) -> int | None:
        """The u32 at fp+off when the stack holds a known constant there, else None."""
        start = STACK_SIZE + off
        if all(k == ZERO for k in frame.slots[start:start + 4]):
            return 0
        sp = frame.spills.get(start // 8)
        if sp is not None and sp.is_const() and start % 8 in (0, 4):
            return (sp.const() >> (8 * (start % 8))) & 0xFFFFFFFF
        return None

    def _helper_mem(self, st: State, r: int, size: int, pc: int, write: bool) -> None:
        reg = st.cur.regs[r]
        self._region(st, r, 0, size, pc, write=write, helper=True)
        if reg.type == FP:
            frame = st.frames[reg.frame]
            if write:
                self._stack_write(frame, reg.off, size, None, pc) if size != 8 or reg.off % 8 \
                    else self._stack_write(frame, reg.off, 8, unknown(), pc)
            # Reads of uninitialised stack are allowed to privileged programs.

    def _run_callback(self, st: State, pc: int, proto, target: int, meta: dict) -> None:
        """Walk the callback until the caller's state is a fixpoint; leave it in `st`."""
        regs = st.cur.regs
        cb_ctx = regs[3] if proto.name == "bpf_for_each_map_elem" else regs[3]
        m = meta.get("map")
        depth = len(st.frames) + 1
        if depth > MAX_FRAMES:
            raise Reject(f"the call stack of {depth} frames is too deep !", pc)
        cur = st.copy()
        for _ in range(CALLBACK_ITERATIONS):
            entry = cur.copy()
            f = Frame(len(entry.frames), callsite=pc)
            f.in_callback = True
            if proto.name == "bpf_loop":
                f.regs[1] = unknown()
                f.regs[2] = cb_ctx
            else:
                f.regs[1] = Reg(MAP_PTR, map=m)
                f.regs[2] = Reg(MAP_KEY, map=m, ro=True)
                f.regs[3] = Reg(MAP_VALUE, map=m, ro=m.spec.readonly)
                f.regs[4] = cb_ctx
            f.regs[FRAME_POINTER] = Reg(FP, frame=f.frameno)
            entry.frames.append(f)
            exits = self._explore([(entry, target, None)], callback_depth=depth)
            merged = cur
            for e in exits:
                merged = self._widen(merged, e, pc)
            if self._subsumes(cur, merged, None, pc):
                break
            cur = merged
        else:
            raise Reject("callback states do not converge (not supported by ebpfjit's "
                         "verifier)", pc)
        self._adopt(st, cur)

    def _widen(self, a: State, b: State, pc: int) -> State:
        """A state covering both `a` and `b` (scalars that differ become unknown)."""
        if len(a.frames) != len(b.frames) or a.refs.keys() != b.refs.keys():
            raise Reject("callback changes references or frames (not supported by ebpfjit's "
                         "verifier)", pc)
        out = a.copy()
        out.next_id = max(a.next_id, b.next_id)
        for fo, fb in zip(out.frames, b.frames):
            for r in range(11):
                fo.regs[r] = self._widen_reg(fo.regs[r], fb.regs[r])
            for i in range(STACK_SIZE):
                ka, kb = fo.slots[i], fb.slots[i]
                if ka != kb:
                    fo.slots[i] = INVALID if INVALID in (ka, kb) else MISC
            for spi in set(fo.spills) | set(fb.spills):
                ra, rb = fo.spills.get(spi), fb.spills.get(spi)
                kinds = fo.slots[spi * 8:spi * 8 + 8]
                if ra is not None and rb is not None and all(k == SPILL for k in kinds):
                    w = self._widen_reg(ra, rb)
                    if w.type == NOT_INIT:
                        fo.spills.pop(spi)
                        fo.slots[spi * 8:spi * 8 + 8] = bytes([MISC]) * 8
                    else:
                        fo.spills[spi] = w
                else:
                    fo.spills.pop(spi, None)
                    for j in range(spi * 8, spi * 8 + 8):
                        if fo.slots[j] == SPILL:
                            fo.slots[j] = MISC
        return out

    def _widen_reg(self, a: Reg, b: Reg) -> Reg:
        if a is b:
            return a
        if a.type == SCALAR and b.type == SCALAR:
            # Widening, not a join: anything `a` does not already cover becomes unknown, so
            # a callback's fixpoint is reached in a few iterations.
            return a if S.within(b.var, a.var) else unknown()
        if self._regsafe(a, b, {}, exact=False):
            return a
        if self._regsafe(b, a, {}, exact=False):
            return b
        if a.type in PKT_TYPES and b.type == a.type and a.id == b.id and a.off == b.off and \
                a.var is b.var:
            return a.replace(rng=min(a.rng, b.rng))
        return REG_NOT_INIT


def ins_id(proto) -> int:
    from ..objects.helper_names import HELPER_IDS
    return HELPER_IDS[proto.name[len("bpf_"):]]
