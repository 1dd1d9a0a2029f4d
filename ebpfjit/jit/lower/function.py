"""Pass 2 of the lowering: `FunctionLowerer` turns one eBPF function into one LLVM function.

It creates a `pc{N}` block per leader (analysis.py) and lowers each instruction through tables
keyed by `isa` facts (`Kind`, `AluOp`, `JmpOp`), inside an error context naming the pc.

Semantics are those of the C interpreter (csrc/interp.c), bit for bit: 32-bit results are
zero-extended, 64-bit immediates sign-extended, division never traps (RFC 9669: x/0 = 0,
x%0 = x, INT_MIN/-1 = INT_MIN, INT_MIN%-1 = 0), shift counts are masked, and nothing carries
LLVM `nsw`/`nuw`/`exact` flags. All bounds-check emission is in `FunctionLowerer.access_pointer`.

Must not import: ebpfjit.jit, ebpfjit.runtime (the layout arrives through LoweringContext).

Imports: ebpfjit.errors, ebpfjit.isa, ebpfjit.jit.lower.analysis, ebpfjit.jit.lower.cgutils,
    ebpfjit.jit.lower.lowering_context, ebpfjit.jit.lower.switch
"""
from __future__ import annotations

from contextlib import contextmanager

from llvmlite import ir

from ...errors import JitError
from ...isa.insn import CALL_HELPER, CALL_KFUNC, CALL_LOCAL, Instruction
from ...isa.opcodes import AluOp, AtomicOp, Class, JmpOp, Kind, Source
from . import cgutils
from .analysis import (
    CALLED_MAIN,
    FP,
    MAYBE_FP,
    NUM_REGS,
    FunctionInfo,
    ProgramInfo,
    callback_target,
    covered_accesses,
    describe,
    is_fp,
    proven_frame_offset,
)
from .cgutils import byte_gep, const
from .lowering_context import (
    CALLBACK_TAG,
    ERR_BAD_INSN,
    ERR_CALL_DEPTH,
    ERR_FALL_OFF,
    ERR_OOB_LOAD,
    ERR_OOB_STORE,
    ERR_UNKNOWN_HELPER,
    FRAME_GUARD,
    I1,
    I8,
    I32,
    I64,
    INT_BITS,
    INT_TYPES,
    LOCK_HELD_AT_EXIT,
    MAX_FRAMES,
    MAX_HELPERS,
    PTR,
    STACK_BYTES,
    LoweringContext,
)
from .switch import switch_tree

# Internal st->status a callee leaves when a packet load ended the run (entry turns it into OK).
EARLY_EXIT = 0x7FFFFFFF
HELPER_FNTY = ir.FunctionType(I64, [I64] * 5)
MAP_ARRAY = 2                  # BPF_MAP_TYPE_ARRAY
MAP_F_RDONLY_PROG = 1 << 7     # BPF_F_RDONLY_PROG: the value arena is read-only to programs
# fault_info flag of a BAD_INSN fault: the map differs from the one the code was compiled for.
MAP_MISMATCH = 1 << 32


def _icmp_unsigned(op):
    return lambda b, x, y: b.icmp_unsigned(op, x, y)


def _icmp_signed(op):
    return lambda b, x, y: b.icmp_signed(op, x, y)


JCOND_OPS = {
    JmpOp.JEQ: _icmp_unsigned("=="), JmpOp.JNE: _icmp_unsigned("!="),
    JmpOp.JGT: _icmp_unsigned(">"), JmpOp.JGE: _icmp_unsigned(">="),
    JmpOp.JLT: _icmp_unsigned("<"), JmpOp.JLE: _icmp_unsigned("<="),
    JmpOp.JSGT: _icmp_signed(">"), JmpOp.JSGE: _icmp_signed(">="),
    JmpOp.JSLT: _icmp_signed("<"), JmpOp.JSLE: _icmp_signed("<="),
    JmpOp.JSET: lambda b, x, y: b.icmp_unsigned("!=", b.and_(x, y), ir.Constant(x.type, 0)),
}

ATOMIC_RMW = {AtomicOp.ADD: "add", AtomicOp.OR: "or", AtomicOp.AND: "and", AtomicOp.XOR: "xor"}


class FunctionLowerer:
    """Lowers one eBPF function into one LLVM function."""

    def __init__(self, ctx: LoweringContext, prog: ProgramInfo, fn: FunctionInfo,
                 llfns: dict[int, ir.Function]):
        self.ctx = ctx
        self.prog = prog
        self.fn = fn
        self.llfn = llfns[fn.key]
        self.llfns = llfns
        self.checks = ctx.options.bounds_checks
        self.st = self.llfn.args[0]
        self.ok_slot = None
        self.pc = fn.start
        self.cache = {}   # slot -> current SSA value (read_slot / write_slot)
        self.dirty = {}   # slot -> value not yet stored (flush)
        self._fault_exit = None

    # --- state access -------------------------------------------------------------------------
    def field_ptr(self, name: str, extra: int = 0):
        return byte_gep(self.builder, self.st, self.ctx.field_offset(name) + extra, name=name)

    def load_field(self, name: str, typ=I64, extra: int = 0):
        align = 8 if isinstance(typ, ir.PointerType) else typ.width // 8
        return self.builder.load(self.field_ptr(name, extra), typ=typ, align=align)

    def store_field(self, name: str, value, extra: int = 0):
        self.builder.store(value, self.field_ptr(name, extra), align=value.type.width // 8)

    # Registers, the budget and the mem region live in allocas (mem2reg promotes them). Within
    # a straight-line stretch of code the lowering remembers each slot's current SSA value
    # (`cache`) and defers register stores (`dirty`) to the stretch's end (`flush`, before
    # every branch to another eBPF block): fewer IR instructions to build, print and parse.
    # Budget and mem-region writes are stored at once (fault and unwind paths load them).
    def read_slot(self, slot):
        value = self.cache.get(slot)
        if value is None:
            value = self.cache[slot] = self.builder.load(slot, typ=I64, align=8)
        return value

    def write_slot(self, slot, value, through: bool = False):
        self.cache[slot] = value
        if through:
            self.builder.store(value, slot, align=8)
        else:
            self.dirty[slot] = value

    def flush(self):
        """Store the deferred register writes (before leaving for another eBPF block)."""
        for slot, value in self.dirty.items():
            self.builder.store(value, slot, align=8)
        self.dirty.clear()

    def forget(self):
        """Start a block other code can reach: nothing cached (call after flush())."""
        self.cache.clear()
        self.dirty.clear()

    @contextmanager
    def detached(self, block):
        """Build `block` (a block shared by several sites) with its own empty cache."""
        saved = self.cache, self.dirty
        self.cache, self.dirty = {}, {}
        try:
            with self.builder.goto_block(block):
                yield
        finally:
            self.cache, self.dirty = saved

    @contextmanager
    def side(self):
        """A side path that leaves the function (fault, unwind): what it loads is not cached
        for the code after it, which that path does not dominate."""
        saved = dict(self.cache), dict(self.dirty)
        try:
            yield
        finally:
            self.cache, self.dirty = saved

    def read_reg(self, reg: int):
        if reg == FP and not self.fn.needs_fp_value:
            # Only copies of r10 reach here (any real use sets needs_fp_value).
            return ir.Constant(I64, 0)
        return self.read_slot(self.regs[reg])

    def write_reg(self, reg: int, value):
        if value.type.width != 64:
            value = self.builder.zext(value, I64)
        self.write_slot(self.regs[reg], value)

    # --- setup --------------------------------------------------------------------------------
    def lower(self):
        fn = self.fn
        llfn = self.llfn
        entry = llfn.append_basic_block("entry")
        self.builder = b = ir.IRBuilder(entry)
        self.blocks = {pc: llfn.append_basic_block(f"pc{pc}") for pc in sorted(fn.leaders)}
        self.regs = [b.alloca(I64, name=f"r{i}.slot") for i in range(NUM_REGS)]
        for slot in self.regs:
            slot.align = 8
        # The frame with FRAME_GUARD unused bytes on each side: a pointer that strays a little
        # past a frame lands there (unregistered: a fault), never in a neighbouring frame.
        stack = b.alloca(ir.ArrayType(I8, FRAME_GUARD + STACK_BYTES + FRAME_GUARD),
                         name="stack.guarded")
        stack.align = 16
        self.stack = byte_gep(b, cgutils.as_ptr(b, stack), FRAME_GUARD, name="stack")
        memset = cgutils.declare_intrinsic(self.ctx.module, "llvm.memset.p0.i64", ir.VoidType(),
                                           [PTR, I8, I64, I1])
        self.budget = b.alloca(I64, name="budget.slot")
        self.budget.align = 8
        self.mem = [b.alloca(I64, name=n) for n in ("mem_base.slot", "mem_len.slot",
                                                    "mem_writable.slot")]
        self.load_budget()
        if fn.is_entry and len(llfn.args) >= 5:
            # Versioned entry body (see lower_program): the mem region arrives as arguments.
            self.write_slot(self.mem[0], llfn.args[3], through=True)
            self.write_slot(self.mem[1], llfn.args[4], through=True)
            self.write_slot(self.mem[2], self.load_field("mem_writable"), through=True)
        else:
            self.load_mem_region()
        # Frames start zeroed (as in the interpreter): results never depend on stale stack.
        b.call(memset, [self.stack, const(I8, 0), const(I64, STACK_BYTES), const(I1, 0)])
        depth = const(I32, 1) if fn.is_entry else self.load_field("depth", I32)
        self.depth_index = b.zext(b.sub(depth, const(I32, 1)), I64, name="frame.index")
        self.frame_slot = b.gep(self.st, [b.add(const(I64, self.ctx.field_offset("frame_lo") // 8),
                                                self.depth_index)], source_etype=I64)
        # st->depth (entry) and st->frame_lo[depth - 1] are read only by the runtime functions
        # the code calls (access checks, helpers, faults): a function that makes no calls
        # writes them just before each runtime call, off its hot path (register_frame).
        self.lazy_frame = not fn.has_calls
        if not self.lazy_frame:
            self.register_frame()
        # Accesses inside a range an earlier access checked, and the checked pointers.
        self.covered = covered_accesses(fn, self.prog.insns) if self.checks else {}
        self.site_ptrs = {}
        self.frame_lo = None
        if fn.needs_fp_value:
            self.frame_lo = b.ptrtoint(self.stack, I64, name="frame.lo")
        args = llfn.args
        for i in range(NUM_REGS - 1):
            if fn.is_entry:
                value = args[i] if i in (1, 2) else const(I64, 0)
            else:
                value = args[i] if 1 <= i <= 5 else const(I64, 0)
            b.store(value, self.regs[i], align=8)
        if fn.needs_fp_value:
            b.store(b.add(self.frame_lo, const(I64, STACK_BYTES)), self.regs[FP], align=8)
        self.preload_maps()
        b.branch(self.blocks[fn.start])

        last_pc = None
        for pc in fn.pcs:
            insn = self.prog.insns[pc]
            if pc in self.blocks:
                if not b.block.is_terminated:
                    self.flush()
                    b.branch(self.edge_block(last_pc, pc))
                b.position_at_end(self.blocks[pc])
                self.forget()
            elif b.block.is_terminated:
                # Unreachable straight-line code after a terminator that is no leader.
                b.position_at_end(llfn.append_basic_block(f"pc{pc}.dead"))
                self.forget()
            self.lower_insn(pc, insn)
            last_pc = pc
        if not b.block.is_terminated:
            self.fault(ERR_FALL_OFF, last_pc)
        return llfn

    def lower_insn(self, pc: int, insn: Instruction):
        if self.ctx.options.comments:
            self.builder.comment(f"pc {pc}: {describe(insn, pc)}")
        self.state = self.fn.states.get(pc)
        self.pc = pc
        try:
            LOWER_KIND[insn.kind](self, pc, insn)
        except JitError:
            raise
        except Exception as exc:
            raise JitError(f"pc {pc} ({describe(insn, pc)}): lowering failed: {exc}") from exc

    def register_frame(self):
        """st->depth = 1 (entry) and st->frame_lo[depth - 1] = this frame (0: not reachable
        through pointers, so access_ok must not accept a stale frame left at this depth)."""
        b = self.builder
        if self.fn.is_entry:
            self.store_field("depth", const(I32, 1))
        value = b.ptrtoint(self.stack, I64) if self.fn.has_calls else const(I64, 0)
        b.store(value, self.frame_slot, align=8)

    def before_runtime_call(self):
        """Make the state what runtime functions expect (a lazily registered frame)."""
        if self.lazy_frame:
            self.register_frame()

    def load_budget(self):
        self.write_slot(self.budget, self.load_field("budget"), through=True)

    def store_budget(self):
        self.store_field("budget", self.read_slot(self.budget))

    def load_mem_region(self):
        for slot, name in zip(self.mem, ("mem_base", "mem_len", "mem_writable")):
            self.write_slot(slot, self.load_field(name), through=True)

    # --- exits and faults ---------------------------------------------------------------------
    def return_status(self, status):
        """Leave the function reporting `status` (entry: returned; callee: left in st->status)."""
        if self.fn.is_entry:
            self.builder.ret(status)
        else:
            self.builder.ret(const(I64, 0))

    def fault(self, status: int, pc, addr=None, size=None, info=None):
        """Record a fault at `pc` and leave the function (terminates the current block).

        Without `info`, through the function's one shared fault block (fault_exit): the
        status, pc, address and size arrive as phis, so each check site costs one branch."""
        b = self.builder
        if info is None:
            b.branch(self.fault_edge(status, pc, addr, size))
            return
        with self.side():
            self._fault_inline(status, pc, addr, size, info)

    def _fault_inline(self, status, pc, addr, size, info):
        b = self.builder
        self.store_budget()
        self.before_runtime_call()
        addr = const(I64, 0) if addr is None else addr
        size = const(I64, 0) if size is None else size
        if isinstance(size, int):
            size = const(I64, size)
        rc = b.call(self.ctx.runtime_fn("ebpfjit_fault"),
                    [self.st, const(I32, status),
                     const(I32, pc) if isinstance(pc, int) else pc, addr, size])
        if info is not None:
            self.store_field("fault_info", info)
        self.return_status(rc)

    def fault_edge(self, status: int, pc, addr=None, size=None):
        """The shared fault block, entered from the current block with these fault values
        (the caller emits the branch, exactly once from this block)."""
        block, phis = self.fault_exit()
        values = (const(I32, status), const(I32, pc) if isinstance(pc, int) else pc,
                  const(I64, 0) if addr is None else addr,
                  const(I64, size or 0) if size is None or isinstance(size, int) else size)
        for phi, value in zip(phis, values):
            phi.add_incoming(value, self.builder.block)
        return block

    def fault_exit(self):
        """(block, (status, pc, addr, size) phis) of the shared fault block, made on first use."""
        if self._fault_exit is None:
            b = self.builder
            block = self.llfn.append_basic_block("fault")
            with self.detached(block):
                phis = (b.phi(I32, name="fault.status"), b.phi(I32, name="fault.pc"),
                        b.phi(I64, name="fault.addr"), b.phi(I64, name="fault.size"))
                self.store_budget()
                self.before_runtime_call()
                if self.frame_lo is not None:
                    # The run ends here: name the real frame so the fault message can say
                    # "stack offset N" (every later entry or runtime call re-registers it).
                    b.store(self.frame_lo, self.frame_slot, align=8)
                rc = b.call(self.ctx.runtime_fn("ebpfjit_fault"), [self.st, *phis])
                self.return_status(rc)
            self._fault_exit = (block, phis)
        return self._fault_exit

    def fault_if(self, cond, status: int, pc, addr=None, size=None, info=None,
                 name="fault", block_name=None):
        """if (cond) fault(...); continue in a fresh block."""
        b = self.builder
        prefix = block_name or f"pc{pc}"
        ok = b.append_basic_block(f"{prefix}.cont")
        if info is None:
            cgutils.cbranch_unlikely(b, cond, self.fault_edge(status, pc, addr, size), ok,
                                     self.ctx.unlikely_weights())
            b.position_at_end(ok)
            return
        bad = b.append_basic_block(f"{prefix}.{name}")
        cgutils.cbranch_unlikely(b, cond, bad, ok, self.ctx.unlikely_weights())
        b.position_at_end(bad)
        self.fault(status, pc, addr, size, info)
        b.position_at_end(ok)

    def consume_budget(self, pc: int, name=None):
        """Charge the segment ending at `pc` (taken back-edge, local call, exit; budget.py):
        `if (c >= budget) { budget = ebpfjit_budget_refill(...); if (!budget) unwind; } else
        budget -= c`. The refill (next chunk, wall-clock deadline) is off the hot path."""
        b = self.builder
        charge = const(I64, self.prog.charges[pc])
        left = self.read_slot(self.budget)
        prefix = name or f"pc{pc}"
        slow = b.append_basic_block(f"{prefix}.refill")
        cont = b.append_basic_block(f"{prefix}.charged")
        fast = b.sub(left, charge, name="budget")
        fast_block = b.block
        cgutils.cbranch_unlikely(b, b.icmp_unsigned("<=", left, charge), slow, cont,
                                 self.ctx.unlikely_weights())
        b.position_at_end(slow)
        with self.side():
            self.before_runtime_call()
            refilled = b.call(self.ctx.runtime_fn("ebpfjit_budget_refill"),
                              [self.st, left, charge, const(I32, pc)], name="budget.refill")
            failed = b.append_basic_block(f"{prefix}.spent")
            refill_block = b.block
            cgutils.cbranch_unlikely(b, b.icmp_unsigned("==", refilled, const(I64, 0)), failed,
                                     cont, self.ctx.unlikely_weights())
            b.position_at_end(failed)
            self.return_status(self.load_field("status", I32))
        b.position_at_end(cont)
        phi = b.phi(I64, name="budget.left")
        phi.add_incoming(fast, fast_block)
        phi.add_incoming(refilled, refill_block)
        self.write_slot(self.budget, phi, through=True)

    def check_status_after_call(self, pc: int, helper: bool):
        """Every frame unwinds at once when a callee/helper left a status (fault, tail call).

        After a helper, ebpfjit_helper_status fills in the call's pc (helpers record -1); after
        a local call the callee already did. Budget and the mem region are then reloaded.
        """
        b = self.builder
        status = self.load_field("status", I32)
        bad = b.append_basic_block(f"pc{pc}.unwind")
        ok = b.append_basic_block(f"pc{pc}.ret")
        cgutils.cbranch_unlikely(b, b.icmp_unsigned("!=", status, const(I32, 0)), bad, ok,
                                 self.ctx.unlikely_weights())
        b.position_at_end(bad)
        if helper:
            status = b.call(self.ctx.runtime_fn("ebpfjit_helper_status"),
                            [self.st, const(I32, pc)])
            self.return_status(status)
        elif self.fn.is_entry and self.prog.early_exit:
            # A packet load in a callee ended the run with r0 = 0 (not a fault).
            early = b.icmp_unsigned("==", status, const(I32, EARLY_EXIT))
            with b.if_then(early):
                self.store_field("status", const(I32, 0))
                b.ret(const(I32, 0))
            b.ret(status)
        else:
            self.return_status(status)
        b.position_at_end(ok)
        self.load_budget()
        self.load_mem_region()

    # --- memory -------------------------------------------------------------------------------
    def access_pointer(self, pc: int, insn: Instruction, base_reg: int, write: bool):
        """Pointer for the access of `insn` (size from isa), with its bounds check.

        Returns (pointer, alignment). The one place that emits checks: frame accesses proven by
        the dataflow are GEPs from the alloca; others test the mem region and (if this
        function's frame address escapes) the current frame inline, then ebpfjit_access_ok.
        """
        b = self.builder
        size = insn.info.size
        proven = proven_frame_offset(insn, self.state)
        if proven is not None:
            pos = STACK_BYTES + proven
            align = 8
            while pos % align:
                align //= 2
            return byte_gep(b, self.stack, pos, name=f"pc{pc}.fp"), min(align, size)
        cover = self.covered.get(pc)
        if cover is not None and cover[0] in self.site_ptrs:
            # Inside the range the access at cover[0] checked, on every path here, with no
            # runtime call since (covered_accesses): the same region still holds it.
            return byte_gep(b, self.site_ptrs[cover[0]], cover[1], name=f"pc{pc}.covered"), 1
        base_val = self.read_reg(base_reg)
        addr = b.add(base_val, const(I64, insn.off), name=f"pc{pc}.addr")
        if not self.checks:
            return b.inttoptr(addr, PTR, name=f"pc{pc}.ptr"), 1
        kind = ERR_OOB_STORE if write else ERR_OOB_LOAD
        if base_reg == FP:
            # r10 + off outside this frame (proven_frame_offset said no): out of bounds
            # whatever lies there (a caller's frame may sit just above a callee's), as in
            # the interpreter (interp.c frame_oob_handler) and the kernel's verifier.
            b.branch(self.fault_edge(kind, pc, addr, size))
            b.position_at_end(self.llfn.append_basic_block(f"pc{pc}.unreachable"))
            return b.inttoptr(addr, PTR, name=f"pc{pc}.ptr"), 1
        # Read (and cache) the region here, in the block that dominates every path below.
        mem_base = self.read_slot(self.mem[0])
        mem_len = self.read_slot(self.mem[1])
        writable = self.read_slot(self.mem[2]) if write else None
        join = b.append_basic_block(f"pc{pc}.access")
        incoming = []
        fact = self.map_fact(base_reg)
        if fact is not None and fact[0] == "v":
            # A pointer from an inlined lookup / lddw src=2 of map i: test that map's value
            # arena first (a registered env region, so access_ok would accept it too).
            map_ptr, in_map = self.map_value_check(fact[1], addr, size, write)
            nxt = b.append_basic_block(f"pc{pc}.notmapval")
            incoming.append((map_ptr, b.block))
            cgutils.cbranch_likely(b, in_map, join, nxt, self.ctx.likely_weights())
            b.position_at_end(nxt)
        # (base - mem_base) + off rather than addr - mem_base (equal mod 2^64): when base is
        # `mem_base + x`, InstCombine reduces it to x + off, which the program's own length
        # checks on x can then prove in range.
        off = b.add(b.sub(base_val, mem_base), const(I64, insn.off), name=f"pc{pc}.memoff")
        in_mem = b.and_(b.icmp_unsigned("<", off, mem_len),
                        b.icmp_unsigned("<=", const(I64, size), b.sub(mem_len, off)))
        if write:
            in_mem = b.and_(in_mem, b.icmp_unsigned("!=", writable, const(I64, 0)))
        mem_ptr = byte_gep(b, b.inttoptr(mem_base, PTR), off)
        nxt = b.append_basic_block(f"pc{pc}.notmem")
        incoming.append((mem_ptr, b.block))
        cgutils.cbranch_likely(b, in_mem, join, nxt, self.ctx.likely_weights())
        b.position_at_end(nxt)
        if self.frame_lo is not None:
            foff = b.sub(addr, self.frame_lo, name=f"pc{pc}.frameoff")
            in_frame = b.icmp_unsigned("<=", foff, const(I64, STACK_BYTES - size))
            frame_ptr = byte_gep(b, self.stack, foff)
            incoming.append((frame_ptr, b.block))
            slow = b.append_basic_block(f"pc{pc}.slow")
            b.cbranch(in_frame, join, slow)
            b.position_at_end(slow)
        self.before_runtime_call()
        ok = b.call(self.ctx.runtime_fn("ebpfjit_access_ok"),
                    [self.st, addr, const(I64, size), const(I32, int(write))])
        incoming.append((b.inttoptr(addr, PTR), b.block))
        cgutils.cbranch_likely(b, b.icmp_unsigned("!=", ok, const(I32, 0)), join,
                               self.fault_edge(kind, pc, addr, size), self.ctx.likely_weights())
        b.position_at_end(join)
        phi = b.phi(PTR, name=f"pc{pc}.ptr")
        for value, block in incoming:
            phi.add_incoming(value, block)
        self.site_ptrs[pc] = phi
        return phi, 1

    # --- instruction kinds ----------------------------------------------------------------------
    def operands(self, insn: Instruction):
        """(dst value, src value) at the instruction's width; imm sign-extended for 64-bit."""
        b = self.builder
        info = insn.info
        typ = I32 if info.width == 32 else I64
        dst = self.read_reg(insn.dst)
        if info.source is Source.X:
            src = self.read_reg(insn.src)
            if typ is I32:
                src = b.trunc(src, I32)
        else:
            src = const(typ, insn.imm)
        if typ is I32:
            dst = b.trunc(dst, I32)
        return dst, src

    def lower_alu(self, pc: int, insn: Instruction):
        info = insn.info
        b = self.builder
        typ = I32 if info.width == 32 else I64
        if info.op is AluOp.MOV:
            if info.source is Source.X:
                value = self.read_reg(insn.src)
                if insn.off:   # movsx: sign-extend the low `off` bits
                    value = b.sext(b.trunc(value, INT_BITS[insn.off]), typ)
                elif typ is I32:
                    value = b.trunc(value, I32)
            else:
                value = const(typ, insn.imm)
            self.write_reg(insn.dst, value)
            return
        dst, src = self.operands(insn)
        self.write_reg(insn.dst, ALU_OPS[info.op](self, insn, dst, src, typ))

    def lower_neg(self, pc: int, insn: Instruction):
        typ = I32 if insn.info.width == 32 else I64
        dst, _ = self.operands(insn)
        self.write_reg(insn.dst, self.builder.sub(const(typ, 0), dst))

    def lower_endian(self, pc: int, insn: Instruction):
        b = self.builder
        bits = insn.imm
        typ = INT_BITS[bits]
        value = self.read_reg(insn.dst)
        if bits != 64:
            value = b.trunc(value, typ)
        swap = not (insn.info.cls is Class.ALU and insn.info.source is Source.K)   # le: no-op
        if swap and bits > 8:
            fn = cgutils.declare_intrinsic(self.ctx.module, f"llvm.bswap.i{bits}", typ, [typ])
            value = b.call(fn, [value])
        self.write_reg(insn.dst, value)

    def branch_to(self, pc: int, target: int):
        """Unconditional edge to `target`; a backward edge consumes budget first."""
        self.flush()
        self.builder.branch(self.edge_block(pc, target))

    def edge_block(self, pc: int, target: int):
        """The block an edge from `pc` to `target` enters (call in the block that branches):
        `target`'s own block, or for an edge into a loop header (backward, or entering the loop)
        a block of its own that first charges the segment ending there (consume_budget). (One
        latch shared by all back-edges to a header, with the pc as a phi, measured 12% slower
        on log2: LSR then kept the budget in a spilled register.)"""
        insn = self.prog.insns[pc]
        if target not in self.prog.loop_heads or (
                target > pc and insn.kind is Kind.CALL and insn.src == CALL_LOCAL):
            return self.blocks[target]   # (a local call charged its segment already)
        b = self.builder
        block = b.append_basic_block(f"pc{pc}.backedge" if target <= pc else f"pc{pc}.enter")
        with self.detached(block):
            self.consume_budget(pc)
            b.branch(self.blocks[target])
        return block

    def lower_ja(self, pc: int, insn: Instruction):
        self.branch_to(pc, insn.branch_target(pc))

    def lower_jcond(self, pc: int, insn: Instruction):
        b = self.builder
        dst, src = self.operands(insn)
        cond = JCOND_OPS[insn.info.op](b, dst, src)
        target = insn.branch_target(pc)
        self.flush()
        fall = self.edge_block(pc, pc + 1) if pc + 1 in self.blocks else None
        if fall is None:   # a conditional jump ends the function: its fallthrough falls off
            fall = b.append_basic_block(f"pc{pc}.falloff")
            with b.goto_block(fall):
                self.fault(ERR_FALL_OFF, pc)
        tree = switch_tree(self.fn, self.prog.insns, pc) if target > pc else None
        if tree is not None:
            # A compare tree on one register: one `switch` (a jump table) to its leaves; values
            # outside the cases take the original compare.
            width, cases = tree
            value = self.read_reg(insn.dst)
            if width == 32:
                value = b.trunc(value, I32)
            rest = b.append_basic_block(f"pc{pc}.tree")
            sw = b.switch(value, rest)
            for case, leaf in cases.items():
                sw.add_case(const(value.type, case), self.blocks[leaf])
            b.position_at_end(rest)
        b.cbranch(cond, self.edge_block(pc, target), fall)

    def check_no_lock_held(self, pc: int, reason: int):
        """if (st->nlocks) fault (runtime_api.h ebpfjit_lock_held): at the program's exit."""
        b = self.builder
        held = b.icmp_unsigned("!=", self.load_field("nlocks", I32), const(I32, 0))
        bad = b.append_basic_block(f"pc{pc}.locked")
        ok = b.append_basic_block(f"pc{pc}.unlocked")
        cgutils.cbranch_unlikely(b, held, bad, ok, self.ctx.unlikely_weights())
        b.position_at_end(bad)
        with self.side():
            self.before_runtime_call()
            self.return_status(b.call(self.ctx.runtime_fn("ebpfjit_lock_held"),
                                      [self.st, const(I32, pc), const(I32, reason)]))
        b.position_at_end(ok)

    def lower_exit(self, pc: int, insn: Instruction):
        b = self.builder
        self.consume_budget(pc)
        r0 = self.read_reg(0)
        self.store_budget()
        if self.fn.is_entry:
            # Only the program's exit: a static callee may return holding a lock (the kernel
            # accepts it), and a callback's return is checked in ebpfjit_invoke_callback.
            self.check_no_lock_held(pc, LOCK_HELD_AT_EXIT)
            self.store_field("r0", r0)
            b.ret(const(I32, 0))
        else:
            b.ret(r0)

    def call_args(self):
        return [self.read_reg(i) for i in range(1, 6)]

    def lower_call(self, pc: int, insn: Instruction):
        b = self.builder
        if insn.src == CALL_LOCAL:
            self.consume_budget(pc)
            self.store_budget()
            depth = self.load_field("depth", I32)
            self.fault_if(b.icmp_unsigned(">=", depth, const(I32, MAX_FRAMES)), ERR_CALL_DEPTH,
                          pc, name="depth")
            self.store_field("depth", b.add(depth, const(I32, 1)))
            target = insn.branch_target(pc)
            callee = self.llfns[CALLED_MAIN if target == 0 else target]
            r0 = b.call(callee, [self.st] + self.call_args(), name=f"pc{pc}.call")
            self.store_field("depth", depth)
            self.write_reg(0, r0)
            for reg in range(1, 6):   # the caller's r1-r5 read 0 after a local call
                self.write_reg(reg, const(I64, 0))
            self.check_status_after_call(pc, helper=False)
            return
        if insn.src == CALL_KFUNC:
            self.fault(ERR_BAD_INSN, pc)
            return
        assert insn.src == CALL_HELPER
        helper_id = insn.imm
        if not 0 <= helper_id < MAX_HELPERS:
            self.fault(ERR_UNKNOWN_HELPER, pc, info=const(I64, helper_id))
            return
        if helper_id == 1 and self.lower_map_lookup(pc):
            return
        self.call_helper_slot(pc, helper_id)

    # --- maps -----------------------------------------------------------------------------------
    def map_fact(self, reg: int):
        """The map fact of `reg` at the current pc: ("m", i) = env->maps[i] itself,
        ("v", i, c) = a value pointer of map i (or NULL) + c; None if unknown."""
        states = self.fn.map_states.get(self.pc) if self.fn.map_states else None
        return states[reg] if states is not None else None

    def invariant_load(self, ptr, typ, align):
        """A load of run-invariant runtime data (env, map headers): LLVM may hoist it."""
        value = self.builder.load(ptr, typ=typ, align=align)
        value.set_metadata("invariant.load", self.ctx.invariant_md())
        return value

    def map_desc(self, index: int):
        """(type, key_size, value_size, max_entries, flags) the code is compiled for, or None."""
        maps = self.ctx.options.maps
        return maps[index] if maps is not None and index < len(maps) else None

    def preload_maps(self):
        """At function entry: for every map index a lddw src=1/2 of this function names, the
        map pointer (NULL when env/maps/the slot is missing: the lddw then faults) and its
        header fields (env and maps do not change during a run), as SSA values that dominate
        the body, so loops neither reload nor recheck them.

        A map described at compile time (options.maps) is checked once here against that
        description, and its header fields are constants in the body: bounds checks on its
        values and inline lookups then fold. Machine code installed for other maps faults here
        (BAD_INSN, info = index | MAP_MISMATCH) instead of trusting the description."""
        self.map_info = {}
        first_use = {}
        for pc in self.fn.pcs:
            insn = self.prog.insns[pc]
            if insn.kind is Kind.LDDW and insn.src in (1, 2):
                first_use.setdefault(insn.imm & 0xFFFFFFFF, pc)
        indices = sorted(first_use)
        if not indices:
            return
        b = self.builder
        layout = self.ctx.layout
        null = ir.Constant(PTR, None)
        env = self.load_field("env", PTR)
        start = b.block
        has_env = b.append_basic_block("maps.env")
        slots = b.append_basic_block("maps.slots")
        done = b.append_basic_block("maps.done")
        b.cbranch(b.icmp_unsigned("!=", b.ptrtoint(env, I64), const(I64, 0)), has_env, done)
        b.position_at_end(has_env)
        nmaps = b.load(byte_gep(b, env, layout.env_nmaps), typ=I32, align=4)
        maps = b.load(byte_gep(b, env, layout.env_maps), typ=PTR, align=8)
        b.cbranch(b.and_(b.icmp_unsigned("!=", b.ptrtoint(maps, I64), const(I64, 0)),
                         b.icmp_unsigned("!=", nmaps, const(I32, 0))), slots, done)
        b.position_at_end(slots)
        last = b.sub(nmaps, const(I32, 1))
        loaded = []
        for index in indices:
            # maps[min(index, nmaps - 1)] stays inside the array; out of range selects NULL.
            inside = b.icmp_unsigned("<", const(I32, index), nmaps)
            slot = b.select(inside, const(I32, index), last)
            mp = b.load(b.gep(maps, [b.zext(slot, I64)], source_etype=PTR), typ=PTR, align=8)
            loaded.append(b.select(inside, mp, null))
        b.branch(done)
        b.position_at_end(done)
        dummy = self.ctx.no_map()
        phis = []
        for index, mp_loaded in zip(indices, loaded):   # phis first: grouped at the top
            mp = b.phi(PTR, name=f"map{index}")
            mp.add_incoming(null, start)
            mp.add_incoming(null, has_env)
            mp.add_incoming(mp_loaded, slots)
            phis.append(mp)
        for index, mp in zip(indices, phis):
            is_null = b.icmp_unsigned("==", b.ptrtoint(mp, I64), const(I64, 0))
            safe = b.select(is_null, dummy, mp)
            fields = {name: b.load(byte_gep(b, safe, off), typ=I32, align=4)
                      for name, off in (("type", layout.map_type),
                                        ("value_size", layout.map_value_size),
                                        ("max_entries", layout.map_max_entries),
                                        ("flags", layout.map_flags))}
            values = b.load(byte_gep(b, safe, layout.map_values), typ=PTR, align=8)
            base = b.ptrtoint(values, I64)
            desc = self.map_desc(index)
            if desc is not None:
                mtype, _, value_size, max_entries, flags = desc
                expected = {"type": mtype, "value_size": value_size,
                            "max_entries": max_entries, "flags": flags}
                mismatch = is_null
                for name, value in expected.items():
                    mismatch = b.or_(mismatch, b.icmp_unsigned("!=", fields[name],
                                                               const(I32, value)))
                if mtype == MAP_ARRAY:   # an ARRAY map always has its value arena
                    mismatch = b.or_(mismatch, b.icmp_unsigned("==", base, const(I64, 0)))
                self.fault_if(mismatch, ERR_BAD_INSN, first_use[index],
                              info=const(I64, index | MAP_MISMATCH), name="mapdesc",
                              block_name=f"map{index}")
                fields = {name: const(I32, value) for name, value in expected.items()}
                is_null = const(I1, 0)
            stride = b.and_(b.add(b.zext(fields["value_size"], I64), const(I64, 7)),
                            const(I64, -8))
            length = b.mul(b.zext(fields["max_entries"], I64), stride)
            if desc is not None and desc[0] == MAP_ARRAY:
                arena_len = length
            else:
                arena_len = b.select(b.icmp_unsigned("==", base, const(I64, 0)),
                                     const(I64, 0), length)
            fields.update(mp=mp, is_null=is_null, values=values, values_int=base,
                          arena_len=arena_len, desc=desc)
            self.map_info[index] = fields

    def map_pointer(self, index: int):
        """env->maps[index], known non-NULL (a lddw src=1/2 of it already ran on every path)."""
        return self.map_info[index]["mp"]

    def map_value_check(self, index: int, addr, size: int, write: bool):
        """(pointer, condition): is [addr, addr+size) inside map `index`'s value arena
        (values .. values + max_entries * round_up(value_size, 8); NULL values: never)?"""
        b = self.builder
        info = self.map_info[index]
        length = info["arena_len"]
        off = b.sub(addr, info["values_int"])
        cond = b.and_(b.icmp_unsigned("<", off, length),
                      b.icmp_unsigned("<=", const(I64, size), b.sub(length, off)))
        if write:
            cond = b.and_(cond, b.icmp_unsigned(
                "==", b.and_(info["flags"], const(I32, MAP_F_RDONLY_PROG)), const(I32, 0)))
        return byte_gep(b, info["values"], off), cond

    def lower_map_lookup(self, pc: int) -> bool:
        """bpf_map_lookup_elem(map, key) where r1 is env->maps[i] (dataflow) and r2 points into
        this frame: if env->helpers[1] is still the built-in helper, ARRAY maps described at
        compile time are looked up inline (kernel array_map_gen_lookup), other maps through
        ebpfjit_jit_map_lookup; otherwise the generic call."""
        fact = self.map_fact(1)
        key = self.state[2] if self.state is not None else None
        if fact is None or fact[0] != "m" or not is_fp(key) or key is MAYBE_FP:
            return False
        if not -STACK_BYTES <= key < 0 or not self.fn.needs_fp_value:
            return False
        b = self.builder
        ctx = self.ctx
        layout = ctx.layout
        index = fact[1]
        room = -key
        if self.fn.is_entry and len(self.llfn.args) == 6:
            is_builtin = self.llfn.args[5]   # checked by the versioned entry
        else:
            env = self.invariant_load(self.field_ptr("env"), PTR, 8)
            helper = self.invariant_load(byte_gep(b, env, layout.env_helpers + 8), PTR, 8)
            builtin = ctx.runtime_fn("ebpfjit_helper_map_lookup_elem")
            is_builtin = b.icmp_unsigned("==", b.ptrtoint(helper, I64),
                                         b.ptrtoint(builtin, I64))
        done = b.append_basic_block(f"pc{pc}.lookup.done")
        fast = b.append_basic_block(f"pc{pc}.lookup.fast")
        generic = b.append_basic_block(f"pc{pc}.lookup.generic")
        cgutils.cbranch_likely(b, is_builtin, fast, generic, ctx.likely_weights())
        # Several paths join at `done`: each starts from the cache as it is here and stores its
        # registers before the join, after which everything is reloaded.
        snapshot = dict(self.cache), dict(self.dirty)
        b.position_at_end(generic)
        self.call_helper_slot(pc, 1)
        self.flush()
        b.branch(done)
        b.position_at_end(fast)
        self.cache, self.dirty = dict(snapshot[0]), dict(snapshot[1])
        info = self.map_info[index]
        desc = info["desc"]
        if desc is not None and desc[0] == MAP_ARRAY and desc[1] == 4 and room >= 4:
            # Checked against the map at entry (preload_maps): kernel array_map_gen_lookup.
            # A branch, not a select, so the program's own NULL test folds on each side.
            _, _, value_size, max_entries, _ = desc
            stride = (value_size + 7) & ~7
            idx = b.load(byte_gep(b, self.stack, STACK_BYTES + key), typ=I32,
                         align=4 if key % 4 == 0 else 1)
            hit = b.append_basic_block(f"pc{pc}.lookup.hit")
            miss = b.append_basic_block(f"pc{pc}.lookup.miss")
            b.cbranch(b.icmp_unsigned("<", idx, const(I32, max_entries)), hit, miss)
            b.position_at_end(hit)
            slot = b.gep(info["values"], [b.mul(b.zext(idx, I64), const(I64, stride))],
                         source_etype=I8, inbounds=True)
            self.write_reg(0, b.ptrtoint(slot, I64))
            self.flush()
            b.branch(done)
            b.position_at_end(miss)
            self.cache, self.dirty = dict(snapshot[0]), dict(snapshot[1])
            self.write_reg(0, const(I64, 0))
            self.flush()
            b.branch(done)
            b.position_at_end(done)
            self.forget()
            return True
        r0 = b.call(ctx.runtime_fn("ebpfjit_jit_map_lookup"),
                    [self.st, self.read_reg(1), self.read_reg(2), const(I64, room)],
                    name=f"pc{pc}.lookup")
        self.write_reg(0, r0)
        status = self.load_field("status", I32)
        self.flush()
        bad = b.append_basic_block(f"pc{pc}.lookup.unwind")
        cgutils.cbranch_unlikely(b, b.icmp_unsigned("!=", status, const(I32, 0)), bad, done,
                                 ctx.unlikely_weights())
        b.position_at_end(bad)
        with self.side():
            self.store_budget()
            self.return_status(b.call(ctx.runtime_fn("ebpfjit_helper_status"),
                                      [self.st, const(I32, pc)]))
        b.position_at_end(done)
        self.forget()
        return True

    def lower_callx(self, pc: int, insn: Instruction):
        # callx: the helper id is the value of the register in dst; the runtime looks it up
        # (an unknown id records UNKNOWN_HELPER with fault_info = id, pc filled in below).
        b = self.builder
        helper_id = self.read_reg(insn.dst)
        self.store_budget()
        r0 = b.call(self.ctx.runtime_fn("ebpfjit_call_helper"),
                    [self.st, helper_id] + self.call_args(), name=f"pc{pc}.callx")
        self.write_reg(0, r0)
        self.check_status_after_call(pc, helper=True)

    def call_helper_slot(self, pc: int, helper_id: int):
        """Call env->helpers[id] (NULL: UNKNOWN_HELPER) and check st->status afterwards."""
        b = self.builder
        info = const(I64, helper_id)
        env = self.load_field("env", PTR)
        self.fault_if(b.icmp_unsigned("==", b.ptrtoint(env, I64), const(I64, 0)),
                      ERR_UNKNOWN_HELPER, pc, info=info, name="noenv")
        slot = byte_gep(b, env, self.ctx.layout.env_helpers + 8 * helper_id)
        fnptr = b.load(slot, typ=PTR, align=8, name=f"helper{helper_id}")
        self.fault_if(b.icmp_unsigned("==", b.ptrtoint(fnptr, I64), const(I64, 0)),
                      ERR_UNKNOWN_HELPER, pc, info=info, name="nohelper")
        self.store_budget()
        fnptr = cgutils.pointer_cast(b, fnptr, HELPER_FNTY.as_pointer())
        r0 = b.call(fnptr, self.call_args(), name=f"pc{pc}.helper")
        self.write_reg(0, r0)
        self.check_status_after_call(pc, helper=True)

    def lower_lddw(self, pc: int, insn: Instruction):
        b = self.builder
        if insn.src == 0:
            self.write_reg(insn.dst, const(I64, insn.imm))
            return
        target = callback_target(pc, insn)
        if target is not None and target in self.prog.insns:
            self.write_reg(insn.dst, const(I64, CALLBACK_TAG | target))
            return
        if insn.src not in (1, 2):
            self.fault(ERR_BAD_INSN, pc, info=const(I64, insn.imm & 0xFFFFFFFF))
            b.position_at_end(b.append_basic_block(f"pc{pc}.after"))
            self.forget()
            return
        # lddw src=1: env->maps[idx]; src=2: ((map_base *)env->maps[idx])->values + imm_hi.
        # A missing env/map/values faults BAD_INSN with fault_info = idx (as the interpreter).
        index = insn.imm & 0xFFFFFFFF
        info = const(I64, index)
        # (env, maps and the map were loaded once at function entry: preload_maps)
        mapinfo = self.map_info[index]
        self.fault_if(mapinfo["is_null"], ERR_BAD_INSN, pc, info=info, name="nomap")
        if insn.src == 1:
            self.write_reg(insn.dst, b.ptrtoint(mapinfo["mp"], I64))
            return
        values = mapinfo["values_int"]
        self.fault_if(b.icmp_unsigned("==", values, const(I64, 0)), ERR_BAD_INSN, pc, info=info,
                      name="novalues")
        self.write_reg(insn.dst, b.add(values, const(I64, (insn.imm >> 32) & 0xFFFFFFFF)))

    def lower_ldabs(self, pc: int, insn: Instruction):
        """Legacy packet load: r0 = ntoh(packet[offset]); out of range ends the run, r0 = 0."""
        b = self.builder
        offset = const(I64, insn.imm)
        if insn.kind is Kind.LDIND:
            offset = b.add(self.read_reg(insn.src), offset)
        self.before_runtime_call()
        if self.ok_slot is None:
            slot = cgutils.alloca_once(b, I32, name="ldpkt.ok", align=4)
            # The pointer is reused by every later packet load, so it must be made in the entry
            # block, which dominates them all (not where this first load happens to be).
            with b.goto_entry_block():
                self.ok_slot = cgutils.as_ptr(b, slot)
        value = b.call(self.ctx.runtime_fn("ebpfjit_ld_packet"),
                       [self.st, offset, const(I32, insn.info.size), const(I32, pc),
                        self.ok_slot], name=f"pc{pc}.pkt")
        ok = b.load(self.ok_slot, typ=I32, align=4)
        bad = b.append_basic_block(f"pc{pc}.pktend")
        cont = b.append_basic_block(f"pc{pc}.cont")
        cgutils.cbranch_unlikely(b, b.icmp_unsigned("==", ok, const(I32, 0)), bad, cont,
                                 self.ctx.unlikely_weights())
        b.position_at_end(bad)
        with self.side():
            self.store_budget()
            self.store_field("r0", const(I64, 0))
            if self.fn.is_entry:
                b.ret(const(I32, 0))
            else:
                self.store_field("status", const(I32, EARLY_EXIT))
                b.ret(const(I64, 0))
        b.position_at_end(cont)
        self.write_reg(0, value)

    def lower_ldx(self, pc: int, insn: Instruction):
        b = self.builder
        ptr, align = self.access_pointer(pc, insn, insn.src, write=False)
        typ = INT_TYPES[insn.info.size]
        value = b.load(ptr, typ=typ, align=align, name=f"pc{pc}.load")
        if insn.kind is Kind.LDXSX:
            value = b.sext(value, I64)
        self.write_reg(insn.dst, value)

    def lower_st(self, pc: int, insn: Instruction):
        b = self.builder
        typ = INT_TYPES[insn.info.size]
        if insn.kind is Kind.ST:
            value = const(typ, insn.imm)
        else:
            value = self.read_reg(insn.src)
            if typ is not I64:
                value = b.trunc(value, typ)
        ptr, align = self.access_pointer(pc, insn, insn.dst, write=True)
        b.store(value, ptr, align=align)

    def lower_atomic(self, pc: int, insn: Instruction):
        b = self.builder
        size = insn.info.size
        typ = INT_TYPES[size]
        value = self.read_reg(insn.src)
        if typ is not I64:
            value = b.trunc(value, typ)
        ptr, _ = self.access_pointer(pc, insn, insn.dst, write=True)
        imm = insn.imm
        if imm == AtomicOp.CMPXCHG:
            expected = self.read_reg(0)
            if typ is not I64:
                expected = b.trunc(expected, typ)
            pair = b.cmpxchg(ptr, expected, value, "seq_cst", "seq_cst")
            self.write_reg(0, b.extract_value(pair, 0))
            return
        op = "xchg" if imm == AtomicOp.XCHG else ATOMIC_RMW[AtomicOp(imm & ~AtomicOp.FETCH)]
        old = b.atomic_rmw(op, ptr, value, "seq_cst")
        if imm & AtomicOp.FETCH:
            self.write_reg(insn.src, old)


def _div(self, insn, a, b_, typ):
    b = self.builder
    zero = const(typ, 0)
    one = const(typ, 1)
    is_zero = b.icmp_unsigned("==", b_, zero)
    if insn.off == 1:   # sdiv: x/0 = 0, INT_MIN/-1 = INT_MIN (= -x, wrapping)
        minus_one = b.icmp_unsigned("==", b_, const(typ, -1))
        safe = b.select(b.or_(is_zero, minus_one), one, b_)
        q = b.sdiv(a, safe)
        return b.select(is_zero, zero, b.select(minus_one, b.sub(zero, a), q))
    q = b.udiv(a, b.select(is_zero, one, b_))
    return b.select(is_zero, zero, q)


def _mod(self, insn, a, b_, typ):
    b = self.builder
    zero = const(typ, 0)
    one = const(typ, 1)
    is_zero = b.icmp_unsigned("==", b_, zero)
    if insn.off == 1:   # smod: x%0 = x, INT_MIN%-1 = 0
        minus_one = b.icmp_unsigned("==", b_, const(typ, -1))
        safe = b.select(b.or_(is_zero, minus_one), one, b_)
        r = b.srem(a, safe)
        return b.select(is_zero, a, b.select(minus_one, zero, r))
    r = b.urem(a, b.select(is_zero, one, b_))
    return b.select(is_zero, a, r)


def _shift(method):
    def emit(self, insn, a, b_, typ):
        if isinstance(b_, ir.Constant):
            count = const(typ, b_.constant & (typ.width - 1))
        else:
            count = self.builder.and_(b_, const(typ, typ.width - 1))
        return getattr(self.builder, method)(a, count)
    return emit


def _binop(method):
    return lambda self, insn, a, b_, typ: getattr(self.builder, method)(a, b_)


ALU_OPS = {
    AluOp.ADD: _binop("add"), AluOp.SUB: _binop("sub"), AluOp.MUL: _binop("mul"),
    AluOp.OR: _binop("or_"), AluOp.AND: _binop("and_"), AluOp.XOR: _binop("xor"),
    AluOp.DIV: _div, AluOp.MOD: _mod,
    AluOp.LSH: _shift("shl"), AluOp.RSH: _shift("lshr"), AluOp.ARSH: _shift("ashr"),
}

LOWER_KIND = {
    Kind.ALU: FunctionLowerer.lower_alu,
    Kind.NEG: FunctionLowerer.lower_neg,
    Kind.ENDIAN: FunctionLowerer.lower_endian,
    Kind.JA: FunctionLowerer.lower_ja,
    Kind.JCOND: FunctionLowerer.lower_jcond,
    Kind.CALL: FunctionLowerer.lower_call,
    Kind.CALLX: FunctionLowerer.lower_callx,
    Kind.EXIT: FunctionLowerer.lower_exit,
    Kind.LDDW: FunctionLowerer.lower_lddw,
    Kind.LDABS: FunctionLowerer.lower_ldabs,
    Kind.LDIND: FunctionLowerer.lower_ldabs,
    Kind.LDX: FunctionLowerer.lower_ldx,
    Kind.LDXSX: FunctionLowerer.lower_ldx,
    Kind.ST: FunctionLowerer.lower_st,
    Kind.STX: FunctionLowerer.lower_st,
    Kind.ATOMIC: FunctionLowerer.lower_atomic,
}
