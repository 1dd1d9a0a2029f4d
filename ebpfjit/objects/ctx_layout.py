"""Program contexts: the layouts of `struct xdp_md` / `struct __sk_buff` and the load-time
rewriting of context accesses, as the kernel verifier's convert_ctx_accesses() does.

Programs read `ctx->data` as a 32-bit field and use it as a pointer. The kernel makes that work
by rewriting each such load into a 64-bit load from its real xdp_buff/sk_buff. We do the same
against a *shadow context*: the uapi struct, unchanged, followed by 64-bit pointer slots. Field
loads that are plain integers keep their offset; pointer loads become `ldxdw` from the slot.
Slot counts never change, so jump offsets stay valid.

Which registers hold the context is found by a small forward dataflow over each function
(register copies, `ctx + const`, spills to and fills from the stack, arguments of bpf-to-bpf
calls). An access that is the context on one path but not on another is rejected, as the kernel
would. Context accesses with a bad offset, size or a store to a read-only field are rejected at
load with the instruction's pc.

Must not import: runtime, lower, jit, kernel, cli.

Imports: ebpfjit.errors, ebpfjit.isa
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import VerifierError
from ..isa.insn import CALL_LOCAL, Instruction, iter_pcs
from ..isa.opcodes import OPCODES, AluOp, Class, Kind, Mode, Size, Source, jump_target


@dataclass(frozen=True)
class CtxField:
    """One uapi field: [offset, offset+size). A pointer field is rewritten to `ldxdw` of `slot`."""
    name: str
    offset: int
    size: int
    pointer_slot: int | None = None
    writable: bool = False


@dataclass(frozen=True)
class CtxLayout:
    name: str
    uapi_size: int
    shadow_size: int
    fields: tuple[CtxField, ...]
    # Narrow (1/2-byte) reads of integer fields are allowed, as the kernel allows them.
    allow_narrow_reads: bool = True

    def field_at(self, offset: int, size: int) -> CtxField | None:
        for f in self.fields:
            if f.offset <= offset and offset + size <= f.offset + f.size:
                return f
        return None


def _fields(*specs) -> tuple[CtxField, ...]:
    return tuple(CtxField(*spec) for spec in specs)


# struct xdp_md (24 bytes) + data, data_end, data_meta as u64 at 24, 32, 40.
XDP_MD = CtxLayout("xdp_md", 24, 48, _fields(
    ("data", 0, 4, 24), ("data_end", 4, 4, 32), ("data_meta", 8, 4, 40),
    ("ingress_ifindex", 12, 4), ("rx_queue_index", 16, 4), ("egress_ifindex", 20, 4)))
XDP_SLOT_DATA, XDP_SLOT_DATA_END, XDP_SLOT_DATA_META = 24, 32, 40

_SKB_COMMON = (
    ("len", 0, 4), ("pkt_type", 4, 4), ("queue_mapping", 12, 4), ("protocol", 16, 4),
    ("vlan_present", 20, 4), ("vlan_tci", 24, 4), ("vlan_proto", 28, 4),
    ("ingress_ifindex", 36, 4), ("ifindex", 40, 4), ("hash", 68, 4), ("napi_id", 84, 4),
    ("wire_len", 160, 4), ("gso_segs", 164, 4), ("gso_size", 176, 4), ("tstamp_type", 180, 1),
    ("hwtstamp", 184, 8),
)
SKB_SLOT_DATA, SKB_SLOT_DATA_END, SKB_SLOT_DATA_META = 192, 200, 208


def _skb_layout(name: str, direct_packet_access: bool, writable: set[str]) -> CtxLayout:
    # wire_len is readable only where there is direct packet access (kernel: EACCES otherwise).
    common = [s for s in _SKB_COMMON if direct_packet_access or s[0] != "wire_len"]
    specs = common + [("mark", 8, 4), ("priority", 32, 4), ("tc_index", 44, 4),
                                 ("cb", 48, 20), ("tc_classid", 72, 4), ("tstamp", 152, 8)]
    if direct_packet_access:
        specs += [("data", 76, 4, SKB_SLOT_DATA), ("data_end", 80, 4, SKB_SLOT_DATA_END),
                  ("data_meta", 140, 4, SKB_SLOT_DATA_META)]
    fields = tuple(CtxField(s[0], s[1], s[2], s[3] if len(s) > 3 else None, s[0] in writable)
                   for s in specs)
    return CtxLayout(name, 192, 216, fields)


# Socket filters may not touch packet pointers (the kernel's sk_filter_is_valid_access) and may
# write only cb[]; tc programs have direct packet access and write mark/priority/etc.
SK_BUFF_SOCKET_FILTER = _skb_layout("__sk_buff (socket filter)", False, {"cb"})
SK_BUFF_TC = _skb_layout("__sk_buff (tc)", True, {"mark", "priority", "tc_index", "cb", "tc_classid",
                                                   "queue_mapping", "tstamp"})

# --- dataflow --------------------------------------------------------------------------------

_CTX = "ctx"


@dataclass(frozen=True)
class _Val:
    """Abstract register value: the context plus a constant offset, or not the context."""
    kind: str | None = None      # _CTX, None (not ctx) or "mixed" (ctx on some paths only)
    offset: int = 0


_NOT_CTX = _Val()
_MIXED = _Val("mixed")


def _join(a: _Val | None, b: _Val | None) -> _Val | None:
    if a is None:
        return b
    if b is None or a == b:
        return a
    if a.kind is None and b.kind is None:
        return _NOT_CTX
    return _MIXED


@dataclass
class _State:
    regs: list = field(default_factory=lambda: [_NOT_CTX] * 11)
    stack: dict = field(default_factory=dict)    # fp offset of an 8-byte spill -> _Val

    def copy(self) -> _State:
        return _State(list(self.regs), dict(self.stack))

    def join(self, other: _State) -> bool:
        changed = False
        for i in range(11):
            joined = _join(self.regs[i], other.regs[i])
            if joined != self.regs[i]:
                self.regs[i] = joined
                changed = True
        for off in set(self.stack) | set(other.stack):
            joined = _join(self.stack.get(off, _NOT_CTX), other.stack.get(off, _NOT_CTX))
            if joined != self.stack.get(off, _NOT_CTX):
                self.stack[off] = joined
                changed = True
        return changed


def _successors(pc: int, ins: Instruction, next_pc: int) -> list[int]:
    kind = ins.kind
    if kind is Kind.EXIT:
        return []
    if kind is Kind.JA:
        return [ins.branch_target(pc)]
    if kind is Kind.JCOND:
        return [next_pc, jump_target(pc, ins.off)]
    return [next_pc]


def _clobber_call(state: _State) -> None:
    for r in range(6):
        state.regs[r] = _NOT_CTX


def _mem_base_value(state: _State, ins: Instruction) -> tuple[int, _Val]:
    """For a memory access: the base register and its abstract value."""
    base = ins.src if ins.kind in (Kind.LDX, Kind.LDXSX) else ins.dst
    return base, state.regs[base]


def find_context_accesses(insns: list[Instruction], entry_ctx_regs: Iterable[int] = (1,)
                          ) -> dict[int, _Val]:
    """Map pc -> abstract base value for every memory access whose base may be the context."""
    by_pc = dict(iter_pcs(insns))
    order = list(by_pc)
    next_of = {pc: (order[i + 1] if i + 1 < len(order) else None) for i, pc in enumerate(order)}
    states: dict[int, _State] = {}
    entry = _State()
    for r in entry_ctx_regs:
        entry.regs[r] = _Val(_CTX, 0)
    states[0] = entry
    work = [0]
    accesses: dict[int, _Val] = {}
    while work:
        pc = work.pop()
        ins = by_pc.get(pc)
        if ins is None:
            continue
        st = states[pc].copy()
        info = OPCODES[ins.opcode]
        kind = info.kind
        if info.is_memory:
            base, val = _mem_base_value(st, ins)
            if val.kind is not None:
                accesses[pc] = _join(accesses.get(pc), val)
            if kind in (Kind.LDX, Kind.LDXSX):
                if ins.src == 10 and info.size == 8 and kind is Kind.LDX:
                    st.regs[ins.dst] = st.stack.get(ins.off, _NOT_CTX)
                else:
                    st.regs[ins.dst] = _NOT_CTX
            elif ins.dst == 10 and kind in (Kind.ST, Kind.STX, Kind.ATOMIC):
                for off in [o for o in st.stack if o < ins.off + info.size and ins.off < o + 8]:
                    del st.stack[off]
                if kind is Kind.STX and info.size == 8 and st.regs[ins.src].kind is not None:
                    st.stack[ins.off] = st.regs[ins.src]
            if kind is Kind.ATOMIC:
                if ins.imm & 0x01:          # fetch forms, xchg, cmpxchg write a register
                    st.regs[0 if ins.imm == 0xF1 else ins.src] = _NOT_CTX
        elif kind is Kind.ALU:
            if info.width == 64 and info.op is AluOp.MOV and info.source is Source.X and ins.off == 0:
                st.regs[ins.dst] = st.regs[ins.src]
            elif (info.width == 64 and info.op in (AluOp.ADD, AluOp.SUB) and info.source is Source.K
                  and st.regs[ins.dst].kind == _CTX):
                delta = ins.imm if info.op is AluOp.ADD else -ins.imm
                st.regs[ins.dst] = _Val(_CTX, st.regs[ins.dst].offset + delta)
            else:
                # Any other arithmetic turns a context pointer into a scalar; accesses through it
                # are then ordinary run-time-checked memory accesses.
                st.regs[ins.dst] = _NOT_CTX
        elif kind in (Kind.NEG, Kind.ENDIAN, Kind.LDDW):
            st.regs[ins.dst] = _NOT_CTX
        elif kind in (Kind.LDABS, Kind.LDIND):
            _clobber_call(st)
        elif kind in (Kind.CALL, Kind.CALLX):
            if kind is Kind.CALL and ins.src == CALL_LOCAL:
                callee = ins.branch_target(pc)
                callee_state = _State(regs=[_NOT_CTX] + st.regs[1:6] + [_NOT_CTX] * 5)
                if callee not in states:
                    states[callee] = callee_state
                    work.append(callee)
                elif states[callee].join(callee_state):
                    work.append(callee)
            _clobber_call(st)
        for succ in _successors(pc, ins, next_of[pc]):
            if succ is None:
                continue
            if succ not in states:
                states[succ] = st.copy()
                work.append(succ)
            elif states[succ].join(st):
                work.append(succ)
    return accesses


def rewrite_context_accesses(insns: list[Instruction], layout: CtxLayout) -> list[Instruction]:
    """Return `insns` with every context access converted to the shadow-context layout."""
    accesses = find_context_accesses(insns)
    if not accesses:
        return list(insns)
    out = []
    for pc, ins in iter_pcs(insns):
        val = accesses.get(pc)
        if val is None:
            out.append(ins)
            continue
        if val.kind == "mixed":
            raise VerifierError("memory access through a register that is the context on some "
                                "paths only", pc)
        out.append(_convert(pc, ins, val.offset, layout))
    return out


def _convert(pc: int, ins: Instruction, base_offset: int, layout: CtxLayout) -> Instruction:
    info = OPCODES[ins.opcode]
    offset = base_offset + ins.off
    size = info.size
    fld = layout.field_at(offset, size)
    where = f"{layout.name} at offset {offset} size {size}"
    if fld is None:
        raise VerifierError(f"invalid context access: {where}", pc)
    if info.kind in (Kind.ST, Kind.STX, Kind.ATOMIC):
        if not fld.writable or fld.pointer_slot is not None or info.kind is Kind.ATOMIC:
            raise VerifierError(f"invalid context store: field {fld.name} is read-only ({where})", pc)
        return ins
    if fld.pointer_slot is not None:
        if offset != fld.offset or size != 4 or info.kind is not Kind.LDX:
            raise VerifierError(f"invalid access to {layout.name}.{fld.name}: only 32-bit loads of "
                                f"the whole field are allowed", pc)
        new_off = fld.pointer_slot - base_offset
        if not -32768 <= new_off < 32768:
            raise VerifierError(f"context access offset out of range ({where})", pc)
        return Instruction(Mode.MEM | Size.DW | Class.LDX, ins.dst, ins.src, new_off, 0)
    if size < fld.size and not layout.allow_narrow_reads:
        raise VerifierError(f"narrow context load not allowed ({where})", pc)
    return ins
