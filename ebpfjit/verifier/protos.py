"""Helper prototypes: what the verifier checks at each helper call (the kernel's
`struct bpf_func_proto`), for every helper the runtime implements (csrc/helpers_*.c).

A helper without a prototype here is rejected, never trusted. Argument kinds are the kernel's
`enum bpf_arg_type` reduced to what these helpers take; a size argument always follows the
memory argument it measures.

Imports: ebpfjit.objects.spec, ebpfjit.objects.helper_names
"""
from __future__ import annotations

from dataclasses import dataclass

from ..objects.helper_names import HELPER_IDS
from ..objects.spec import MapType, ProgType

# Argument kinds.
ANYTHING = "anything"              # any initialised register
CONST_MAP_PTR = "const_map_ptr"    # a map (lddw map_fd)
MAP_KEY = "map_key"                # key_size readable bytes
MAP_VALUE = "map_value"            # value_size readable bytes
UNINIT_MAP_VALUE = "uninit_map_value"  # value_size writable bytes
MEM = "mem"                        # readable memory of the size in the next argument
MEM_OR_NULL = "mem_or_null"        # the same, or NULL with a size of 0
UNINIT_MEM = "uninit_mem"          # writable memory of the size in the next argument
CONST_SIZE = "const_size"          # the size of the previous argument, > 0
CONST_SIZE_OR_ZERO = "const_size_or_zero"
CTX = "ctx"                        # the program's context, unmodified
FUNC = "func"                      # a callback (lddw src=4)
STACK_OR_NULL = "stack_or_null"    # callback context: a stack pointer or NULL
RINGBUF_MEM_RELEASE = "ringbuf_mem_release"  # memory from ringbuf_reserve, released here
CONST_ALLOC_SIZE = "const_alloc_size"  # a known constant size of the memory returned
CONST_STR = "const_str"            # a NUL-terminated string in a read-only map value
SPIN_LOCK = "spin_lock"            # the bpf_spin_lock of a map value

# Return kinds.
RET_INTEGER = "integer"
RET_VOID = "void"
RET_MAP_VALUE_OR_NULL = "map_value_or_null"
RET_RINGBUF_MEM_OR_NULL = "ringbuf_mem_or_null"

# Program-type groups (the kernel's *_func_proto of each type).
TRACING = frozenset({ProgType.KPROBE, ProgType.TRACEPOINT, ProgType.PERF_EVENT,
                     ProgType.RAW_TRACEPOINT, ProgType.RAW_TRACEPOINT_WRITABLE,
                     ProgType.TRACING})
TC = frozenset({ProgType.SCHED_CLS, ProgType.SCHED_ACT})
SKB = TC | {ProgType.SOCKET_FILTER, ProgType.CGROUP_SKB}
XDP = frozenset({ProgType.XDP})
ALL = None


@dataclass(frozen=True)
class Proto:
    name: str
    args: tuple[str, ...]
    ret: str = RET_INTEGER
    pkt_changing: bool = False          # may move packet data: every packet pointer is invalid
    prog_types: frozenset | None = ALL  # None: every program type
    gpl_only: bool = False
    callback_args: tuple[str, ...] = ()  # what a FUNC argument's callback receives
    map_types: frozenset | None = None  # map types accepted by the CONST_MAP_PTR argument


_LOOKUP_MAPS = None
_QUEUE = frozenset({MapType.QUEUE, MapType.STACK})
_RINGBUF = frozenset({MapType.RINGBUF})
_FOR_EACH = frozenset({MapType.HASH, MapType.LRU_HASH, MapType.ARRAY, MapType.PERCPU_HASH,
                       MapType.LRU_PERCPU_HASH, MapType.PERCPU_ARRAY})

PROTOS: dict[int, Proto] = {}


def _p(name: str, *args: str, **kw) -> None:
    PROTOS[HELPER_IDS[name]] = Proto(f"bpf_{name}", args, **kw)


_p("map_lookup_elem", CONST_MAP_PTR, MAP_KEY, ret=RET_MAP_VALUE_OR_NULL)
_p("map_update_elem", CONST_MAP_PTR, MAP_KEY, MAP_VALUE, ANYTHING)
_p("map_delete_elem", CONST_MAP_PTR, MAP_KEY)
_p("map_push_elem", CONST_MAP_PTR, MAP_VALUE, ANYTHING, map_types=_QUEUE)
_p("map_pop_elem", CONST_MAP_PTR, UNINIT_MAP_VALUE, map_types=_QUEUE)
_p("map_peek_elem", CONST_MAP_PTR, UNINIT_MAP_VALUE, map_types=_QUEUE)
_p("tail_call", CTX, CONST_MAP_PTR, ANYTHING, ret=RET_VOID,
   map_types=frozenset({MapType.PROG_ARRAY}))
for _n in ("probe_read", "probe_read_kernel", "probe_read_user", "probe_read_str",
           "probe_read_kernel_str", "probe_read_user_str"):
    _p(_n, UNINIT_MEM, CONST_SIZE_OR_ZERO, ANYTHING, prog_types=TRACING, gpl_only=True)
for _n in ("ktime_get_ns", "ktime_get_boot_ns", "ktime_get_coarse_ns", "get_prandom_u32",
           "get_smp_processor_id"):
    _p(_n)
_p("get_current_pid_tgid", prog_types=TRACING)
_p("get_current_comm", UNINIT_MEM, CONST_SIZE, prog_types=TRACING)
# Only the format is checked: its arguments 3-5 are ARG_DONTCARE in the kernel (may be unset).
_p("trace_printk", MEM, CONST_SIZE, gpl_only=True)
_p("skb_store_bytes", CTX, ANYTHING, MEM, CONST_SIZE, ANYTHING, pkt_changing=True, prog_types=TC)
_p("l3_csum_replace", CTX, ANYTHING, ANYTHING, ANYTHING, ANYTHING, pkt_changing=True,
   prog_types=TC)
_p("l4_csum_replace", CTX, ANYTHING, ANYTHING, ANYTHING, ANYTHING, pkt_changing=True,
   prog_types=TC)
_p("skb_load_bytes", CTX, ANYTHING, UNINIT_MEM, CONST_SIZE, prog_types=SKB)
_p("csum_diff", MEM_OR_NULL, CONST_SIZE_OR_ZERO, MEM_OR_NULL, CONST_SIZE_OR_ZERO, ANYTHING,
   prog_types=TC | XDP)
_p("xdp_adjust_head", CTX, ANYTHING, pkt_changing=True, prog_types=XDP)
_p("xdp_adjust_meta", CTX, ANYTHING, pkt_changing=True, prog_types=XDP)
_p("xdp_adjust_tail", CTX, ANYTHING, pkt_changing=True, prog_types=XDP)
_p("spin_lock", SPIN_LOCK, ret=RET_VOID)
_p("spin_unlock", SPIN_LOCK, ret=RET_VOID)
_p("ringbuf_output", CONST_MAP_PTR, MEM, CONST_SIZE_OR_ZERO, ANYTHING, map_types=_RINGBUF)
_p("ringbuf_reserve", CONST_MAP_PTR, CONST_ALLOC_SIZE, ANYTHING, ret=RET_RINGBUF_MEM_OR_NULL,
   map_types=_RINGBUF)
_p("ringbuf_submit", RINGBUF_MEM_RELEASE, ANYTHING, ret=RET_VOID)
_p("ringbuf_discard", RINGBUF_MEM_RELEASE, ANYTHING, ret=RET_VOID)
_p("ringbuf_query", CONST_MAP_PTR, ANYTHING, map_types=_RINGBUF)
_p("for_each_map_elem", CONST_MAP_PTR, FUNC, STACK_OR_NULL, ANYTHING, map_types=_FOR_EACH,
   callback_args=(CONST_MAP_PTR, MAP_KEY, MAP_VALUE, STACK_OR_NULL))
_p("snprintf", UNINIT_MEM, CONST_SIZE_OR_ZERO, CONST_STR, MEM_OR_NULL, CONST_SIZE_OR_ZERO)
_p("loop", ANYTHING, FUNC, STACK_OR_NULL, ANYTHING, callback_args=(ANYTHING, STACK_OR_NULL))
_p("strncmp", MEM, CONST_SIZE, CONST_STR)

# Map types whose lookup hands back a map (the inner map after the null check).
MAP_OF_MAPS = frozenset({MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS})
# Map types that have no value a program can reach through map_lookup_elem.
NO_LOOKUP = frozenset({MapType.RINGBUF, MapType.PROG_ARRAY, MapType.QUEUE, MapType.STACK,
                       MapType.PERF_EVENT_ARRAY})
