"""Target-wide lowering services: LLVM types, the runtime state layout and runtime declarations.

The byte offsets of `struct ebpfjit_state` (and of the env/map headers) come from the runtime
(`ebpfjit.runtime.state_layout()`, i.e. cffi's `offsetof`), so the C header stays the one source
of truth; the generated IR addresses fields as `getelementptr i8, ptr %st, <offset>`.

Must not import: ebpfjit.jit (the JIT imports this module, not the reverse). Status codes come
from ebpfjit.runtime.env (the C module's enum), as the struct layout does.

Imports: ebpfjit.isa, ebpfjit.runtime.env
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from llvmlite import ir

from ...isa.opcodes import MAX_CALL_FRAMES, STACK_SIZE
from ...runtime.env import MAX_HELPERS as _MAX_HELPERS
from ...runtime.env import status_codes

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I16 = ir.IntType(16)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
PTR = ir.PointerType()
INT_TYPES = {1: I8, 2: I16, 4: I32, 8: I64}
INT_BITS = {8: I8, 16: I16, 32: I32, 64: I64}

# enum ebpfjit_status, read from the C module (csrc/ebpfjit_rt.h is the one definition).
_STATUS = status_codes()
OK = _STATUS["OK"]
ERR_OOB_LOAD = _STATUS["ERR_OOB_LOAD"]
ERR_OOB_STORE = _STATUS["ERR_OOB_STORE"]
ERR_UNKNOWN_HELPER = _STATUS["ERR_UNKNOWN_HELPER"]
ERR_CALL_DEPTH = _STATUS["ERR_CALL_DEPTH"]
ERR_BUDGET = _STATUS["ERR_BUDGET"]
ERR_HELPER = _STATUS["ERR_HELPER"]
ERR_FALL_OFF = _STATUS["ERR_FALL_OFF"]
ERR_BAD_INSN = _STATUS["ERR_BAD_INSN"]
ERR_TIMEOUT = _STATUS["ERR_TIMEOUT"]
MAX_HELPERS = _MAX_HELPERS

ENTRY_NAME = "ebpf_entry"
# `uint64_t ebpf_callback(st, pc, r1..r5)`: runs the function at slot pc (ebpfjit_jit_callback_fn).
CALLBACK_NAME = "ebpf_callback"
# `lddw rX, func` (src=4) yields CALLBACK_TAG | target slot (EBPFJIT_CALLBACK_TAG, ebpfjit_rt.h).
CALLBACK_TAG = 0xCB0FCA11B0000000

# Runtime functions the generated code calls; jit.py binds each name to the runtime's address.
RUNTIME_DECLS = {
    # int32_t ebpfjit_fault(st, status, pc, addr, size)
    "ebpfjit_fault": (I32, (PTR, I32, I32, I64, I64)),
    # int ebpfjit_access_ok(st, addr, size, write)
    "ebpfjit_access_ok": (I32, (PTR, I64, I64, I32)),
    # uint64_t ebpfjit_call_helper(st, id, r1..r5)
    "ebpfjit_call_helper": (I64, (PTR, I64, I64, I64, I64, I64, I64)),
    # int32_t ebpfjit_helper_status(st, pc)
    "ebpfjit_helper_status": (I32, (PTR, I32)),
    # uint64_t ebpfjit_budget_refill(st, left, charge, pc): next budget chunk, or 0 (fault)
    "ebpfjit_budget_refill": (I64, (PTR, I64, I64, I32)),
    # uint64_t ebpfjit_ld_packet(st, offset, size, pc, int *ok)
    "ebpfjit_ld_packet": (I64, (PTR, I64, I32, I32, PTR)),
    # uint64_t ebpfjit_jit_map_lookup(st, map, key, key_room) (csrc/jit_support.h)
    "ebpfjit_jit_map_lookup": (I64, (PTR, I64, I64, I64)),
    # the built-in helper 1; only its address is used (is env->helpers[1] still the built-in?)
    "ebpfjit_helper_map_lookup_elem": (I64, (I64, I64, I64, I64, I64)),
}

# Fields of struct ebpfjit_state the generated code touches.
STATE_FIELDS = ("r0", "status", "fault_info", "budget", "depth", "mem_base", "mem_len",
                "mem_writable", "frame_lo", "env")


def _offset(value) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, (tuple, list)):
        return int(value[0])
    if isinstance(value, Mapping):
        return int(value["offset"])
    return int(value.offset)


@dataclass(frozen=True)
class StateLayout:
    """Byte offsets of the runtime structures, as `ffi.offsetof` reports them."""
    state: dict[str, int]
    env_helpers: int = 0
    env_maps: int = 8 * MAX_HELPERS
    env_nmaps: int = 8 * MAX_HELPERS + 8
    map_values: int = 24
    map_type: int = 0
    map_value_size: int = 8
    map_max_entries: int = 12
    map_flags: int = 16

    @classmethod
    def from_runtime(cls, layout: Mapping) -> StateLayout:
        """Accept `{field: offset}`, `{field: (offset, size)}` or `{field: {"offset": ...}}`.

        Keys `env.helpers`, `env.maps`, `env.nmaps` and `map_base.values` (if the runtime reports them)
        override the header-derived defaults for the env and map headers.
        """
        state = {}
        for name in STATE_FIELDS:
            if name not in layout:
                raise KeyError(f"runtime state_layout() lacks field {name!r}")
            state[name] = _offset(layout[name])
        extra = {}
        for key, attr in (("env.helpers", "env_helpers"), ("env.maps", "env_maps"),
                          ("env.nmaps", "env_nmaps"), ("map_base.values", "map_values"),
                          ("map_base.type", "map_type"), ("map_base.value_size", "map_value_size"),
                          ("map_base.max_entries", "map_max_entries"),
                          ("map_base.flags", "map_flags")):
            if key in layout:
                extra[attr] = _offset(layout[key])
        return cls(state=state, **extra)

    def key(self) -> str:
        """Stable text of the layout (part of the compile-cache key)."""
        items = sorted(self.state.items()) + [("env_helpers", self.env_helpers),
                                              ("env_maps", self.env_maps),
                                              ("env_nmaps", self.env_nmaps),
                                              ("map_values", self.map_values),
                                              ("map_type", self.map_type),
                                              ("map_value_size", self.map_value_size),
                                              ("map_max_entries", self.map_max_entries),
                                              ("map_flags", self.map_flags)]
        return ",".join(f"{k}={v}" for k, v in items)


@dataclass
class LoweringOptions:
    bounds_checks: bool = True
    # Source text per pc for IR comments (disassembly when ebpfjit.disasm is available).
    comments: bool = True
    # env->maps as the program will see them: (type, key_size, value_size, max_entries, flags)
    # per index, or None. Lets ARRAY lookups be inlined (guarded at run time; a mismatch takes
    # the helper path), so it is part of the compile-cache key.
    maps: tuple | None = None
    # Version the entry on the raw convention (two copies of the entry function). Worth its
    # compile time only when the optimiser exploits it (O2 and up).
    version_entry: bool = True


@dataclass
class LoweringContext:
    """Owns the module and what every function lowerer shares (declarations, layout, options)."""
    layout: StateLayout
    options: LoweringOptions = field(default_factory=LoweringOptions)
    module: ir.Module = field(default=None)
    _decls: dict[str, ir.Function] = field(default_factory=dict)

    def __post_init__(self):
        if self.module is None:
            self.module = ir.Module(name="ebpf")
        self._prof = None
        self._unlikely = None
        self._invariant = None

    def runtime_fn(self, name: str) -> ir.Function:
        """Declare (once) the runtime function `name` from RUNTIME_DECLS."""
        fn = self._decls.get(name)
        if fn is None:
            ret, args = RUNTIME_DECLS[name]
            fn = ir.Function(self.module, ir.FunctionType(ret, args), name)
            fn.attributes.add("nounwind")
            if name == "ebpfjit_fault":
                fn.attributes.add("cold")
            self._decls[name] = fn
        return fn

    def no_map(self):
        """A zeroed stand-in map header (type 0, no values): header loads of a missing map."""
        existing = self.module.globals.get("ebpf.nomap")
        if existing is not None:
            return existing
        typ = ir.ArrayType(I8, self.layout.map_values + 8)
        gv = ir.GlobalVariable(self.module, typ, "ebpf.nomap")
        gv.linkage = "internal"
        gv.global_constant = True
        gv.initializer = ir.Constant(typ, None)
        gv.align = 8
        return gv

    def invariant_md(self):
        """`!invariant.load` metadata (an empty node)."""
        if self._invariant is None:
            self._invariant = self.module.add_metadata([])
        return self._invariant

    def likely_weights(self):
        """`!prof` metadata: the first successor is taken (almost) always."""
        if self._prof is None:
            self._prof = self.module.add_metadata(
                ["branch_weights", ir.Constant(I32, 2000), ir.Constant(I32, 1)])
        return self._prof

    def unlikely_weights(self):
        """`!prof` metadata: the first successor is (almost) never taken."""
        if self._unlikely is None:
            self._unlikely = self.module.add_metadata(
                ["branch_weights", ir.Constant(I32, 1), ir.Constant(I32, 2000)])
        return self._unlikely

    def field_offset(self, name: str) -> int:
        return self.layout.state[name]


STACK_BYTES = STACK_SIZE
MAX_FRAMES = MAX_CALL_FRAMES
