"""Register and stack state of the verifier: typed registers, per-byte stack slots, frames.

A register is one immutable `Reg`: its type (the kernel's `enum bpf_reg_type`, spelled as the
kernel log spells it), a fixed offset, and for scalars the scalar value (ebpfjit.verifier.scalar)
or for pointers the variable part of their offset. States are copied on every fork, so a frame
keeps its registers in a list and its stack as one bytearray of slot kinds per byte plus the
spilled registers by 8-byte slot.

Imports: ebpfjit.isa, ebpfjit.verifier.sval
"""
from __future__ import annotations

from ..isa.opcodes import MAX_CALL_FRAMES, NUM_REGS, STACK_SIZE
from . import sval as _sc

# Register types (the kernel's reg_type_str names).
NOT_INIT = "not_init"
SCALAR = "scalar"
CTX = "ctx"
FP = "fp"
PKT = "pkt"
PKT_META = "pkt_meta"
PKT_END = "pkt_end"
MAP_PTR = "map_ptr"
MAP_VALUE = "map_value"
MAP_KEY = "map_key"
MEM = "mem"
RINGBUF_MEM = "ringbuf_mem"
FUNC = "func"

PKT_TYPES = (PKT, PKT_META)
# Pointer types that can be dereferenced with a fixed offset and a size check.
MEMORY_TYPES = (CTX, FP, PKT, PKT_META, MAP_VALUE, MAP_KEY, MEM, RINGBUF_MEM)

# Stack byte kinds (the kernel's STACK_INVALID / STACK_MISC / STACK_ZERO / STACK_SPILL).
INVALID, MISC, ZERO, SPILL = 0, 1, 2, 3
SLOT_CHARS = "?m0r"

MAX_FRAMES = MAX_CALL_FRAMES


class MapRef:
    """What the verifier knows of a map: its index in the object (lddw imm) and its spec."""
    __slots__ = ("index", "spec")

    def __init__(self, index: int, spec):
        self.index = index
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    def __eq__(self, other) -> bool:
        return isinstance(other, MapRef) and self.spec is other.spec and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.index, id(self.spec)))


class Reg:
    """One register's abstract value. Never mutated after construction (states share them)."""
    __slots__ = ("type", "off", "var", "id", "rng", "map", "size", "ref", "frame", "null", "ro",
                 "callsite")

    def __init__(self, type: str, *, off: int = 0, var=None, id: int = 0, rng: int = 0,
                 map: MapRef | None = None, size: int = 0, ref: int = 0, frame: int = 0,
                 null: bool = False, ro: bool = False, callsite: int = 0):
        self.type = type
        self.off = off          # fixed offset of a pointer
        self.var = var          # scalar value (SCALAR) or the variable offset part (pointers)
        self.id = id            # pkt: shared-range id; *_or_null: the null-check id
        self.rng = rng          # pkt/pkt_meta: bytes known readable from the id's base + 0
        self.map = map          # map_ptr / map_value / map_key
        self.size = size        # mem / ringbuf_mem: bytes of the region
        self.ref = ref          # ringbuf_mem: reference id that must be released
        self.frame = frame      # fp: which frame's stack
        self.null = null        # may be NULL (map_value_or_null, ringbuf_mem_or_null)
        self.ro = ro            # read-only memory (map_key, .rodata values, mem ro)
        self.callsite = callsite  # func: the callback's first slot

    def replace(self, **kw) -> Reg:
        new = Reg.__new__(Reg)
        for name in Reg.__slots__:
            setattr(new, name, kw[name] if name in kw else getattr(self, name))
        return new

    @property
    def is_pointer(self) -> bool:
        return self.type not in (SCALAR, NOT_INIT)

    def is_const(self) -> bool:
        return self.type == SCALAR and _sc.is_const(self.var)

    def const(self) -> int:
        return _sc.const_value(self.var)

    def type_str(self) -> str:
        """The kernel's reg_type_str: `map_value_or_null`, `scalar`, `fp`, ..."""
        return self.type + ("_or_null" if self.null else "")

    def var_is_zero(self) -> bool:
        return self.var is None or (_sc.is_const(self.var) and _sc.const_value(self.var) == 0)

    def format(self) -> str:
        """The register as the kernel's level-2 log prints it (print_reg_state)."""
        t = self.type
        if t == SCALAR:
            return _sc.format(self.var)
        if t == FP and self.var_is_zero():
            return f"fp{self.off}" if self.frame == 0 else f"fp[{self.frame}]{self.off}"
        parts = []
        if self.id:
            parts.append(f"id={self.id}")
        if self.ref:
            parts.append(f"ref_obj_id={self.ref}")
        if self.off:
            parts.append(f"off={self.off}")
        if t in PKT_TYPES:
            parts.append(f"r={self.rng}")
        if self.map is not None:
            parts.append(f"map={self.map.name}")
            parts.append(f"ks={self.map.spec.key_size},vs={self.map.spec.value_size}")
        if t in (MEM, RINGBUF_MEM) and self.size:
            parts.append(f"sz={self.size}")
        if not self.var_is_zero():
            inner = _sc.format(self.var)
            if inner.startswith("scalar(") and inner.endswith(")"):
                inner = inner[len("scalar("):-1]
            if inner:
                parts.append(inner)
        return f"{self.type_str()}({','.join(parts)})"

    def __repr__(self) -> str:
        return f"<Reg {self.format()}>"


REG_NOT_INIT = Reg(NOT_INIT)


def scalar(value) -> Reg:
    return Reg(SCALAR, var=value)


def unknown() -> Reg:
    return Reg(SCALAR, var=_sc.unknown())


def known(value: int) -> Reg:
    return Reg(SCALAR, var=_sc.const(value))


def zext_unknown(nbytes: int) -> Reg:
    """A loaded value of `nbytes` (zero-extended): [0, 2**(8*nbytes) - 1]."""
    return Reg(SCALAR, var=_sc.unknown_bits(nbytes * 8))


class Frame:
    """One call frame: 11 registers, 512 stack bytes of slot kinds, spilled registers."""
    __slots__ = ("regs", "slots", "spills", "callsite", "frameno", "in_callback")

    def __init__(self, frameno: int, callsite: int = -1):
        self.regs = [REG_NOT_INIT] * NUM_REGS
        self.slots = bytearray(STACK_SIZE)      # index 0 is fp-512, 511 is fp-1
        self.spills: dict[int, Reg] = {}        # slot index (0..63) -> spilled register
        self.callsite = callsite                # pc of the call instruction (-1 for main)
        self.frameno = frameno
        self.in_callback = False                # a callback frame (bpf_loop, for_each_map_elem)

    def copy(self) -> Frame:
        f = Frame.__new__(Frame)
        f.regs = list(self.regs)
        f.slots = bytearray(self.slots)
        f.spills = dict(self.spills)
        f.callsite = self.callsite
        f.frameno = self.frameno
        f.in_callback = self.in_callback
        return f

    def stack_depth(self) -> int:
        for i, kind in enumerate(self.slots):
            if kind != INVALID:
                return STACK_SIZE - i
        return 0

    def format_stack(self) -> list[str]:
        out = []
        for spi in range(STACK_SIZE // 8 - 1, -1, -1):
            kinds = self.slots[spi * 8:spi * 8 + 8]
            if not any(kinds):
                continue
            off = spi * 8 - STACK_SIZE
            if spi in self.spills and all(k == SPILL for k in kinds):
                out.append(f"fp{off}={self.spills[spi].format()}")
            else:
                out.append(f"fp{off}=" + "".join(SLOT_CHARS[k] for k in reversed(kinds)))
        return out


class State:
    """A verifier state: the frames (the last is the current function), acquired references
    (id -> pc of the acquiring call), the next id to hand out and the spin lock held."""
    __slots__ = ("frames", "refs", "next_id", "lock")

    def __init__(self):
        self.frames: list[Frame] = []
        self.refs: dict[int, int] = {}
        self.next_id = 1
        self.lock = None        # (map index, offset) of the bpf_spin_lock held, if any

    def copy(self) -> State:
        s = State.__new__(State)
        s.frames = [f.copy() for f in self.frames]
        s.refs = dict(self.refs)
        s.next_id = self.next_id
        s.lock = self.lock
        return s

    @property
    def cur(self) -> Frame:
        return self.frames[-1]

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def all_regs(self):
        """Every (frame, where, reg) of the state: where is a register number or ('spill', spi)."""
        for f in self.frames:
            for i, r in enumerate(f.regs):
                yield f, i, r
            for spi, r in f.spills.items():
                yield f, ("spill", spi), r

    def map_regs(self, fn) -> None:
        """Replace each register r (in registers and spills of all frames) by fn(r) (None: keep)."""
        for f in self.frames:
            regs = f.regs
            for i, r in enumerate(regs):
                if r.type != SCALAR and r.type != NOT_INIT:
                    new = fn(r)
                    if new is not None:
                        regs[i] = new
            for spi, r in list(f.spills.items()):
                if r.type != SCALAR:
                    new = fn(r)
                    if new is not None:
                        f.spills[spi] = new

    def format(self) -> str:
        """The kernel's level-2 state line: `R1=ctx() R10=fp0 fp-8=mmmmmmmm`."""
        parts = []
        for f in self.frames[:-1]:
            parts.append(f"frame{f.frameno}:")
        cur = self.cur
        if len(self.frames) > 1:
            parts = [f"frame{cur.frameno}:"]
        for i, r in enumerate(cur.regs):
            if r.type != NOT_INIT:
                parts.append(f"R{i}={r.format()}")
        parts.extend(cur.format_stack())
        return " ".join(parts)
