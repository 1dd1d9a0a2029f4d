"""Plain, process-independent descriptions of what an eBPF object holds: programs, maps, types.

The ELF reader produces these; the runtime, the JIT and the kernel loader consume them. Nothing
here touches C, LLVM or the kernel ("reading the same ELF on different systems gives the same
spec"). Map and program type numbers are the kernel's (include/uapi/linux/bpf.h).

Must not import: runtime, lower, jit, kernel, cli.

Imports: (nothing)
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field


class MapType(enum.IntEnum):
    """enum bpf_map_type (uapi/linux/bpf.h)."""
    UNSPEC = 0
    HASH = 1
    ARRAY = 2
    PROG_ARRAY = 3
    PERF_EVENT_ARRAY = 4
    PERCPU_HASH = 5
    PERCPU_ARRAY = 6
    STACK_TRACE = 7
    CGROUP_ARRAY = 8
    LRU_HASH = 9
    LRU_PERCPU_HASH = 10
    LPM_TRIE = 11
    ARRAY_OF_MAPS = 12
    HASH_OF_MAPS = 13
    DEVMAP = 14
    SOCKMAP = 15
    CPUMAP = 16
    XSKMAP = 17
    SOCKHASH = 18
    CGROUP_STORAGE = 19
    REUSEPORT_SOCKARRAY = 20
    PERCPU_CGROUP_STORAGE = 21
    QUEUE = 22
    STACK = 23
    SK_STORAGE = 24
    DEVMAP_HASH = 25
    STRUCT_OPS = 26
    RINGBUF = 27
    INODE_STORAGE = 28
    TASK_STORAGE = 29
    BLOOM_FILTER = 30
    USER_RINGBUF = 31
    CGRP_STORAGE = 32
    ARENA = 33


class ProgType(enum.IntEnum):
    """enum bpf_prog_type (uapi/linux/bpf.h)."""
    UNSPEC = 0
    SOCKET_FILTER = 1
    KPROBE = 2
    SCHED_CLS = 3
    SCHED_ACT = 4
    TRACEPOINT = 5
    XDP = 6
    PERF_EVENT = 7
    CGROUP_SKB = 8
    CGROUP_SOCK = 9
    LWT_IN = 10
    LWT_OUT = 11
    LWT_XMIT = 12
    SOCK_OPS = 13
    SK_SKB = 14
    CGROUP_DEVICE = 15
    SK_MSG = 16
    RAW_TRACEPOINT = 17
    CGROUP_SOCK_ADDR = 18
    LWT_SEG6LOCAL = 19
    LIRC_MODE2 = 20
    SK_REUSEPORT = 21
    FLOW_DISSECTOR = 22
    CGROUP_SYSCTL = 23
    RAW_TRACEPOINT_WRITABLE = 24
    CGROUP_SOCKOPT = 25
    TRACING = 26
    STRUCT_OPS = 27
    EXT = 28
    LSM = 29
    SK_LOOKUP = 30
    SYSCALL = 31
    NETFILTER = 32


# BPF_MAP_UPDATE_ELEM flags.
BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2
BPF_F_LOCK = 4
# The kernel-internal "operation not supported" errno, which bpf(2) leaks to userspace.
ENOTSUPP = 524

# BPF_F_* map_flags we interpret (uapi/linux/bpf.h).
BPF_F_NO_PREALLOC = 1 << 0
BPF_F_NO_COMMON_LRU = 1 << 1
BPF_F_RDONLY_PROG = 1 << 7
BPF_F_MMAPABLE = 1 << 10

# lddw src_reg values after libbpf relocation (uapi BPF_PSEUDO_*). In ebpfjit bytecode the imm
# of a MAP_FD/MAP_VALUE lddw is the map's index in ObjectSpec.maps order, not a file descriptor;
# for MAP_VALUE the second slot's imm is the byte offset into the value.
PSEUDO_MAP_FD = 1
PSEUDO_MAP_VALUE = 2
PSEUDO_BTF_ID = 3
PSEUDO_FUNC = 4
PSEUDO_MAP_IDX = 5
PSEUDO_MAP_IDX_VALUE = 6
# call src_reg values.
PSEUDO_CALL = 1
PSEUDO_KFUNC_CALL = 2


@dataclass
class MapSpec:
    """One map as the object declares it.

    `initial` holds the contents of global-data maps (.data/.rodata/.bss: one entry, key 0).
    `inner` is the template of the inner map of an array_of_maps/hash_of_maps.
    `key_type_id`/`value_type_id` are BTF type ids (0 when unknown) into ObjectSpec.btf.
    `values` are static initial entries ({key: bytes value or inner map name / program name}),
    as libbpf's `.values = {...}` for map-in-map and prog_array.
    """
    name: str
    type: MapType
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    inner: MapSpec | None = None
    initial: bytes | None = None
    section: str = ""
    key_type_id: int = 0
    value_type_id: int = 0
    pinning: int = 0
    numa_node: int = 0
    values: dict[int, str | bytes] = field(default_factory=dict)

    @property
    def is_global_data(self) -> bool:
        return self.initial is not None

    @property
    def readonly(self) -> bool:
        return bool(self.flags & BPF_F_RDONLY_PROG)


@dataclass
class ProgramSpec:
    """One program: its entry function and, appended after it, every subprogram it calls.

    `code` is final bytecode (little endian, 8-byte slots) with map references already in the
    PSEUDO_MAP_FD/PSEUDO_MAP_VALUE form (imm = map index) and bpf-to-bpf call offsets resolved,
    exactly as libbpf would hand it to BPF_PROG_LOAD except for the map fds.
    `func_offsets` maps each function name in `code` to its first slot (the entry is at 0).
    `line_info`: list of (slot, file, line, source line text) when .BTF.ext has it.
    `unsupported`: set only by `load_spec(..., per_program=True)`: why this program cannot be
    loaded (a kfunc call, extern or CO-RE relocation in its code); its `code` is then not final.
    """
    name: str
    section: str
    type: ProgType
    code: bytes
    license: str = ""
    expected_attach_type: int = 0
    attach_to: str = ""
    func_offsets: dict[str, int] = field(default_factory=dict)
    line_info: list[tuple[int, str, int, str]] = field(default_factory=list)
    sleepable: bool = False
    unsupported: str = ""

    @property
    def insn_count(self) -> int:
        return len(self.code) // 8


@dataclass
class ObjectSpec:
    """Everything loaded from one ELF object; `maps` is ordered (index = lddw imm)."""
    path: str
    programs: dict[str, ProgramSpec]
    maps: dict[str, MapSpec]
    license: str = ""
    kernel_version: int = 0
    btf: object | None = None   # ebpfjit.btf.Btf when .BTF is present

    def map_index(self, name: str) -> int:
        return list(self.maps).index(name)
