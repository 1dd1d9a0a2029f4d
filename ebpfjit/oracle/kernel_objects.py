"""Kernel objects created through bpf(2): maps (`KernelMap`), programs (`KernelProgram`, with
BPF_PROG_TEST_RUN and BPF_OBJ_GET_INFO_BY_FD), BTF (`KernelBtf`) and whole objects
(`KernelObject`, every map and program of an ObjectSpec).

Everything created here is owned by its Python object and closed on close(), on leaving a `with`
block or on garbage collection; nothing is pinned, so nothing outlives the process.

Must not import: lower, jit, cli.

Imports: ebpfjit.errors, ebpfjit.isa, ebpfjit.objects, ebpfjit.oracle.bpf_syscall,
    ebpfjit.oracle.btf_writer
"""
from __future__ import annotations

import array
import errno as _errno
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import KernelError, KernelUnavailable, MapError
from ..isa.insn import SLOT
from ..isa.opcodes import LDDW
from ..objects.btf import BtfKind
from ..objects.spec import (
    BPF_ANY,
    ENOTSUPP,
    PSEUDO_MAP_FD,
    PSEUDO_MAP_VALUE,
    MapSpec,
    MapType,
    ObjectSpec,
    ProgType,
)
from .bpf_syscall import (
    BPF_F_SLEEPABLE,
    BPF_LOG_LEVEL1,
    BPF_LOG_STATS,
    OBJ_NAME_LEN,
    Cmd,
    FdOwner,
    buf_address,
    errno_name,
    ffi_lib,
    kernel_name,
    missing_permission_text,
    possible_cpus,
    probe_permission,
    raise_load_error,
    set_name,
    sys_bpf,
)
from .btf_writer import BtfEncoder

_PERCPU_TYPES = frozenset({MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH,
                           MapType.PERCPU_CGROUP_STORAGE})
_MAP_IN_MAP_TYPES = frozenset({MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS})
# Types whose userspace lookup/update take or return an object id/fd rather than plain data.
_FD_VALUE_TYPES = _MAP_IN_MAP_TYPES | {MapType.PROG_ARRAY}

_LOG_START = 1 << 16
# The kernel refuses log buffers above UINT32_MAX >> 2.
_LOG_MAX = (1 << 30) - 1


# --------------------------------------------------------------------------------------------
# Maps
# --------------------------------------------------------------------------------------------

class KernelMap(FdOwner):
    """One kernel map, created from a MapSpec.

    Keys and values are bytes (an int key is packed little endian to key_size). Per-CPU maps
    take and return one value per possible CPU. Map-in-map and prog_array values are written as
    fds (4 bytes, or a KernelMap/KernelProgram) and read back by the kernel as object ids.
    """

    def __init__(self, spec: MapSpec, *, name: str | None = None, inner_map_fd: int | None = None,
                 freeze: bool | None = None, btf_fd: int = 0):
        """Create the map; write `spec.initial` (global data) and freeze read-only data.

        Args:
            spec: the map's description. `spec.values` are not written here (they may name
                programs); KernelObject fills them.
            name: the kernel name (sanitised, truncated to 15 characters); default spec.name.
            inner_map_fd: template map for ARRAY_OF_MAPS/HASH_OF_MAPS; when omitted, a
                temporary map is created from `spec.inner` (as libbpf does).
            freeze: BPF_MAP_FREEZE after writing `initial`; default: for .rodata and
                BPF_F_RDONLY_PROG global-data maps.
            btf_fd: a KernelBtf fd holding spec.key_type_id/value_type_id (needed for values
                with a bpf_spin_lock or timer); when the kernel refuses the types, the map is
                created without BTF, as libbpf does.
        Raises:
            KernelUnavailable: no permission for bpf().
            KernelError: the kernel refused the map (errno says why, e.g. EINVAL for a map type
                or size it does not support).
        """
        self.spec = spec
        self.type = MapType(spec.type)
        self.name = kernel_name(name if name is not None else spec.name)
        self.key_size = spec.key_size
        self.value_size = spec.value_size
        self.max_entries = spec.max_entries
        self.percpu = self.type in _PERCPU_TYPES
        self.fd = -1
        ffi, _ = ffi_lib()
        # Sizes the kernel dictates whatever the object declared, fixed up as libbpf does.
        if self.type == MapType.PERF_EVENT_ARRAY:
            self.key_size, self.value_size = self.key_size or 4, self.value_size or 4
            self.max_entries = self.max_entries or possible_cpus()
        elif self.type in (MapType.RINGBUF, MapType.USER_RINGBUF):
            self.key_size = self.value_size = 0
        elif self.type in _FD_VALUE_TYPES:
            self.value_size = 4
        attr = ffi.new("struct ebpfjit_bpf_map_create_attr *")
        attr.map_type = self.type
        attr.key_size = self.key_size
        attr.value_size = self.value_size
        attr.max_entries = self.max_entries
        attr.map_flags = spec.flags
        attr.numa_node = spec.numa_node
        set_name(attr.map_name, self.name)
        temp_inner = None
        if self.type in _MAP_IN_MAP_TYPES:
            if inner_map_fd is None:
                if spec.inner is None:
                    raise KernelError(f"map {spec.name!r}: {self.type.name} needs an inner map "
                                      "(spec.inner or inner_map_fd)", errno=_errno.EINVAL)
                temp_inner = KernelMap(spec.inner, name=f"{self.name[:9]}_inner")
                inner_map_fd = temp_inner.fd
            attr.inner_map_fd = inner_map_fd
        try:
            what = f"map {spec.name!r} ({self.type.name})"
            if btf_fd and spec.value_type_id:
                attr.btf_fd = btf_fd
                attr.btf_key_type_id = spec.key_type_id
                attr.btf_value_type_id = spec.value_type_id
                try:
                    self.fd = sys_bpf(Cmd.MAP_CREATE, attr, what)
                except KernelError:
                    attr.btf_fd = attr.btf_key_type_id = attr.btf_value_type_id = 0
            if self.fd < 0:
                self.fd = sys_bpf(Cmd.MAP_CREATE, attr, what)
        finally:
            if temp_inner is not None:
                temp_inner.close()
        try:
            if spec.initial is not None:
                init = bytes(spec.initial).ljust(self.value_size, b"\0")
                self.update(0, init if not self.percpu else [init] * possible_cpus())
                if freeze is None:
                    freeze = spec.readonly or ".rodata" in (spec.section or spec.name)
            if freeze:
                self.freeze()
        except BaseException:
            self.close()
            raise

    # -- helpers ---------------------------------------------------------------------------

    @property
    def _slot_size(self) -> int:
        # Per-CPU values are laid out at 8-byte strides, one per possible CPU.
        return (self.value_size + 7) // 8 * 8

    @property
    def _buffer_size(self) -> int:
        return self._slot_size * possible_cpus() if self.percpu else self.value_size

    def _key(self, ffi, key):
        if self.key_size == 0:
            if key not in (None, b"", 0):
                raise MapError(f"map {self.name!r}: {self.type.name} takes no key")
            return None
        if isinstance(key, int):
            if key < 0:
                key &= (1 << (8 * self.key_size)) - 1
            try:
                raw = key.to_bytes(self.key_size, "little")
            except OverflowError as exc:
                raise MapError(f"map {self.name!r}: key {key} does not fit in {self.key_size} "
                               "bytes") from exc
        else:
            raw = bytes(key)
        if len(raw) != self.key_size:
            raise MapError(f"map {self.name!r}: key is {len(raw)} bytes, the map's keys are "
                           f"{self.key_size}")
        return ffi.new("char[]", raw)

    def _value(self, ffi, value):
        if self.type in _FD_VALUE_TYPES and isinstance(value, (KernelMap, KernelProgram)):
            value = value.fd
        if isinstance(value, int):
            value = value.to_bytes(self.value_size, "little")
        if self.percpu:
            values = [value] * possible_cpus() if isinstance(value, (bytes, bytearray, memoryview)) \
                else list(value)
            if len(values) != possible_cpus():
                raise MapError(f"map {self.name!r}: per-CPU update needs {possible_cpus()} values "
                               f"(one per possible CPU), got {len(values)}")
            buf = ffi.new("char[]", self._buffer_size)
            for i, v in enumerate(values):
                v = bytes(v)
                self._check_value_size(v)
                ffi.memmove(buf + i * self._slot_size, v, len(v))
            return buf
        value = bytes(value)
        self._check_value_size(value)
        return ffi.new("char[]", value) if value else None

    def _check_value_size(self, value: bytes) -> None:
        if len(value) != self.value_size:
            raise MapError(f"map {self.name!r}: value is {len(value)} bytes, the map's values are "
                           f"{self.value_size}")

    def _elem_attr(self, ffi, key=None, value=None, flags=0):
        if self.fd < 0:
            raise KernelError(f"map {self.name!r} is closed", errno=_errno.EBADF)
        attr = ffi.new("struct ebpfjit_bpf_map_elem_attr *")
        attr.map_fd = self.fd
        attr.key = buf_address(ffi, key)
        attr.value = buf_address(ffi, value)
        attr.flags = flags
        return attr

    # -- CRUD ------------------------------------------------------------------------------

    def lookup(self, key=None, flags: int = 0) -> bytes | list[bytes] | None:
        """The value at `key` (a list of per-CPU values for per-CPU maps), or None if absent.

        For queue/stack maps (no key) this peeks at the next element.
        """
        ffi, _ = ffi_lib()
        k = self._key(ffi, key)
        out = ffi.new("char[]", max(self._buffer_size, 1))
        attr = self._elem_attr(ffi, k, out, flags)
        if sys_bpf(Cmd.MAP_LOOKUP_ELEM, attr, f"map {self.name!r} lookup", ok=(_errno.ENOENT,)) < 0:
            return None
        raw = ffi.buffer(out, self._buffer_size)[:]
        if self.percpu:
            s = self._slot_size
            return [raw[i * s:i * s + self.value_size] for i in range(possible_cpus())]
        return raw

    def __getitem__(self, key):
        value = self.lookup(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key, value) -> None:
        self.update(key, value)

    def __delitem__(self, key) -> None:
        self.delete(key)

    def __contains__(self, key) -> bool:
        return self.lookup(key) is not None

    def update(self, key, value, flags: int = BPF_ANY) -> None:
        """Write `value` at `key` (BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK).

        A per-CPU map takes a list with one value per possible CPU, or one value for all CPUs.
        Queue/stack maps take key None (push).

        Raises:
            KernelError: with errno EEXIST (BPF_NOEXIST, key present), ENOENT (BPF_EXIST, key
                absent), E2BIG (map full), EPERM (frozen map) and so on.
        """
        ffi, _ = ffi_lib()
        k = self._key(ffi, key)
        v = self._value(ffi, value)
        sys_bpf(Cmd.MAP_UPDATE_ELEM, self._elem_attr(ffi, k, v, flags), f"map {self.name!r} update")

    def delete(self, key) -> None:
        """Remove `key`. Raises KernelError with errno ENOENT when it is absent."""
        ffi, _ = ffi_lib()
        k = self._key(ffi, key)
        sys_bpf(Cmd.MAP_DELETE_ELEM, self._elem_attr(ffi, k), f"map {self.name!r} delete")

    def freeze(self) -> None:
        """BPF_MAP_FREEZE: no more writes from userspace (programs may still write unless the
        map is BPF_F_RDONLY_PROG)."""
        ffi, _ = ffi_lib()
        sys_bpf(Cmd.MAP_FREEZE, self._elem_attr(ffi), f"map {self.name!r} freeze")

    def keys(self) -> Iterator[bytes]:
        """Every key, in the kernel's BPF_MAP_GET_NEXT_KEY order."""
        ffi, _ = ffi_lib()
        if self.key_size == 0:
            return
        key = None
        nxt = ffi.new("char[]", self.key_size)
        while True:
            attr = self._elem_attr(ffi, key, nxt)
            if sys_bpf(Cmd.MAP_GET_NEXT_KEY, attr, f"map {self.name!r} next key",
                        ok=(_errno.ENOENT,)) < 0:
                return
            raw = ffi.buffer(nxt, self.key_size)[:]
            yield raw
            key = ffi.new("char[]", raw)

    __iter__ = keys

    def items(self) -> Iterator[tuple[bytes, bytes | list[bytes]]]:
        """(key, value) pairs; keys deleted while iterating are skipped."""
        for key in self.keys():
            value = self.lookup(key)
            if value is not None:
                yield key, value

    def values(self) -> Iterator[bytes | list[bytes]]:
        for _, value in self.items():
            yield value

    def __len__(self) -> int:
        return sum(1 for _ in self.keys())

    def __repr__(self) -> str:
        return (f"<KernelMap {self.name!r} {self.type.name} key={self.key_size} "
                f"value={self.value_size} max={self.max_entries} fd={self.fd}>")


# --------------------------------------------------------------------------------------------
# Programs
# --------------------------------------------------------------------------------------------

class TestRun(NamedTuple):
    """The result of BPF_PROG_TEST_RUN; `duration_ns` is the kernel's mean per repetition."""
    retval: int
    data_out: bytes
    duration_ns: int
    ctx_out: bytes | None

    __test__ = False   # not a pytest test class


@dataclass
class ProgInfo:
    """BPF_OBJ_GET_INFO_BY_FD for a program: the kernel's view of what it loaded and jited."""
    type: int
    id: int
    name: str
    tag: str                    # hex, as bpftool prints it
    xlated: bytes               # post-verifier bytecode (8-byte slots)
    jited: bytes                # native code of all functions, back to back
    jited_func_lens: list[int]
    jited_ksyms: list[int]      # kernel address of each function
    jited_line_info: list[int]  # kernel address of each line_info record (needs BTF)
    line_info: bytes            # raw struct bpf_line_info records (needs BTF)
    map_ids: list[int]
    gpl_compatible: bool
    verified_insns: int
    load_time_ns: int
    run_time_ns: int
    run_cnt: int
    btf_id: int = 0

    @property
    def nr_map_ids(self) -> int:
        return len(self.map_ids)

    @property
    def xlated_insn_count(self) -> int:
        return len(self.xlated) // 8


def relocate_maps(code: bytes, map_fds: Sequence[int], what: str = "program") -> bytes:
    """`code` with every PSEUDO_MAP_FD/PSEUDO_MAP_VALUE lddw imm turned from a map index into
    the kernel fd `map_fds[index]` (the MAP_VALUE offset in the second slot is kept).

    Raises:
        KernelError: an index with no fd.
    """
    if len(code) % 8:
        raise KernelError(f"{what}: bytecode is {len(code)} bytes, not a multiple of 8",
                          errno=_errno.EINVAL)
    out = bytearray(code)
    pc, n = 0, len(code) // 8
    while pc < n:
        op, regs, off, imm = SLOT.unpack_from(out, pc * 8)
        if op == LDDW:
            if (regs >> 4) in (PSEUDO_MAP_FD, PSEUDO_MAP_VALUE):
                if not 0 <= imm < len(map_fds):
                    raise KernelError(f"{what}: pc {pc}: lddw refers to map index {imm}, but "
                                      f"{len(map_fds)} map fds were given", errno=_errno.EINVAL)
                SLOT.pack_into(out, pc * 8, op, regs, off, map_fds[imm])
            pc += 2
        else:
            pc += 1
    return bytes(out)


class KernelProgram(FdOwner):
    """One program loaded with BPF_PROG_LOAD. `verifier_log` keeps the kernel's log."""

    def __init__(self, prog_type: ProgType | int, code: bytes, license: str = "GPL", *,
                 map_fds: Sequence[int | KernelMap] = (), name: str = "",
                 expected_attach_type: int = 0, log_level: int | None = None,
                 log_size: int = _LOG_START, prog_flags: int = 0, kern_version: int = 0,
                 attach_btf_id: int = 0, attach_prog_fd: int = 0, btf_fd: int = 0,
                 func_info: Sequence[tuple[int, int]] = (),
                 line_info: Sequence[tuple[int, int, int, int]] = ()):
        """Load a program.

        Args:
            prog_type: a ProgType.
            code: ebpfjit bytecode; lddw src=1/2 imm is an index into `map_fds`.
            license: "GPL" (or compatible) unlocks GPL-only helpers.
            map_fds: kernel map fds (or KernelMaps) by ObjectSpec.maps index.
            name: program name (sanitised, truncated to 15 characters).
            expected_attach_type: enum bpf_attach_type, needed by some program types.
            log_level: None keeps BPF_LOG_STATS on success and reloads with level 1 on a
                rejection, so the error carries the verifier's full reasoning; an int is passed
                through (1: rejection trace, 2: every instruction, 4: stats).
            log_size: initial log buffer; it grows while the kernel reports ENOSPC.
            btf_fd, func_info, line_info: a KernelBtf fd and the kernel's bpf_func_info
                (insn, FUNC type id) and bpf_line_info (insn, file string offset, line string
                offset, line << 10 | column) records. Callbacks and global functions need
                func_info; line_info makes info() report jited_line_info.
        Raises:
            KernelUnavailable: no permission for bpf().
            KernelError: the verifier (or the kernel) refused it; `.log` is the verifier log.
        """
        self.type = ProgType(prog_type)
        self.name = kernel_name(name)
        self.expected_attach_type = expected_attach_type
        self.fd = -1
        self.verifier_log = ""
        fds = [m.fd if isinstance(m, KernelMap) else int(m) for m in map_fds]
        self.code = bytes(code)
        self.insns = relocate_maps(self.code, fds, f"program {name or self.type.name}")
        self._keep = dict(license=license, prog_flags=prog_flags, kern_version=kern_version,
                          attach_btf_id=attach_btf_id, attach_prog_fd=attach_prog_fd)
        self.btf_fd = btf_fd
        self.func_info = b"".join(struct.pack("<II", *rec) for rec in func_info) if btf_fd else b""
        self.line_info = b"".join(struct.pack("<IIII", *rec) for rec in line_info) if btf_fd else b""
        if log_level is None:
            try:
                self.fd, self.verifier_log = self._load(BPF_LOG_STATS, log_size)
            except KernelError:
                # A stats-only log holds the verdict but not the path that led there: reload
                # once at level 1 (as libbpf does), which raises with the full trace.
                self.fd, self.verifier_log = self._load(BPF_LOG_LEVEL1 | BPF_LOG_STATS,
                                                        max(log_size, 1 << 20))
        else:
            self.fd, self.verifier_log = self._load(log_level, log_size)

    def _what(self) -> str:
        return f"{self.type.name} program {self.name!r}" if self.name else f"{self.type.name} program"

    def _load(self, log_level: int, log_size: int) -> tuple[int, str]:
        ffi, lib = ffi_lib()
        what = self._what()
        insns = ffi.from_buffer(self.insns)
        lic = ffi.new("char[]", self._keep["license"].encode())
        finfo = ffi.from_buffer(self.func_info) if self.func_info else None
        linfo = ffi.from_buffer(self.line_info) if self.line_info else None
        while True:
            attr = ffi.new("struct ebpfjit_bpf_prog_load_attr *")
            attr.prog_type = self.type
            attr.insn_cnt = len(self.insns) // 8
            attr.insns = buf_address(ffi, insns)
            attr.license = buf_address(ffi, lic)
            attr.kern_version = self._keep["kern_version"]
            attr.prog_flags = self._keep["prog_flags"]
            attr.expected_attach_type = self.expected_attach_type
            attr.attach_btf_id = self._keep["attach_btf_id"]
            attr.attach_prog_fd = self._keep["attach_prog_fd"]
            set_name(attr.prog_name, self.name)
            if self.btf_fd:
                attr.prog_btf_fd = self.btf_fd
                if finfo is not None:
                    attr.func_info, attr.func_info_cnt = buf_address(ffi, finfo), len(self.func_info) // 8
                    attr.func_info_rec_size = 8
                if linfo is not None:
                    attr.line_info, attr.line_info_cnt = buf_address(ffi, linfo), len(self.line_info) // 16
                    attr.line_info_rec_size = 16
            logbuf = None
            if log_level:
                logbuf = ffi.new("char[]", log_size)
                attr.log_level = log_level
                attr.log_size = log_size
                attr.log_buf = buf_address(ffi, logbuf)
            r = lib.ebpfjit_sys_bpf(Cmd.PROG_LOAD, attr, ffi.sizeof(attr[0]))
            log = ffi.string(logbuf).decode("utf-8", "replace") if logbuf is not None else ""
            if r >= 0:
                return r, log
            if -r == _errno.ENOSPC and log_level and log_size < _LOG_MAX:
                log_size = min(log_size * 8, _LOG_MAX)   # log truncated: the load was refused
                continue
            raise_load_error(-r, what, log, self.type)

    # -- running ---------------------------------------------------------------------------

    def test_run(self, data_in: bytes | None = b"", repeat: int = 1, ctx_in: bytes | None = None,
                 data_size_out: int | None = None, ctx_size_out: int | None = None,
                 flags: int = 0, cpu: int = 0, batch_size: int = 0) -> TestRun:
        """Run the program in the kernel with BPF_PROG_TEST_RUN.

        Args:
            data_in: the packet (XDP, SOCKET_FILTER, SCHED_CLS, ...: at least 14 bytes, an
                Ethernet header); empty for context-only types such as RAW_TRACEPOINT.
            repeat: runs; `duration_ns` is the mean over them.
            ctx_in: the context (e.g. struct xdp_md, struct __sk_buff, raw tracepoint args).
            data_size_out: output packet buffer; default len(data_in) + 4096 (room for
                bpf_xdp_adjust_head/tail), none when there is no data_in.
            ctx_size_out: output context buffer size; default len(ctx_in) when ctx_in is given
                for packet programs.
            flags, cpu, batch_size: passed through (BPF_F_TEST_RUN_ON_CPU etc.).
        Returns:
            TestRun(retval, data_out, duration_ns, ctx_out).
        Raises:
            KernelUnavailable: the kernel has no test run for this program type.
            KernelError: the kernel refused the run (EINVAL: bad sizes for this type; ENOSPC:
                an output buffer is too small).
        """
        ffi, _ = ffi_lib()
        if self.fd < 0:
            raise KernelError(f"{self._what()} is closed", errno=_errno.EBADF)
        data_in = bytes(data_in or b"")
        ctx_types_in_only = self.type == ProgType.SYSCALL
        if data_size_out is None:
            data_size_out = len(data_in) + 4096 if data_in else 0
        if ctx_size_out is None:
            ctx_size_out = len(ctx_in) if ctx_in and data_in else 0
        din = ffi.new("char[]", data_in) if data_in else None
        dout = ffi.new("char[]", data_size_out) if data_size_out else None
        cin = ffi.new("char[]", bytes(ctx_in)) if ctx_in else None
        cout = ffi.new("char[]", ctx_size_out) if ctx_size_out else None
        attr = ffi.new("struct ebpfjit_bpf_test_run_attr *")
        attr.prog_fd = self.fd
        attr.data_in, attr.data_size_in = buf_address(ffi, din), len(data_in)
        attr.data_out, attr.data_size_out = buf_address(ffi, dout), data_size_out
        attr.ctx_in, attr.ctx_size_in = buf_address(ffi, cin), len(ctx_in or b"")
        attr.ctx_out, attr.ctx_size_out = buf_address(ffi, cout), ctx_size_out
        # Context-only runners (raw_tp, syscall) insist on repeat 0, which means 1 everywhere.
        attr.repeat = repeat if repeat > 1 else 0
        attr.flags = flags
        attr.cpu = cpu
        attr.batch_size = batch_size
        what = f"{self._what()} test run"
        r = sys_bpf(Cmd.PROG_TEST_RUN, attr, what, ok=(ENOTSUPP, _errno.EOPNOTSUPP))
        if r < 0:
            raise KernelUnavailable(f"bpf(BPF_PROG_TEST_RUN) failed with {errno_name(-r)}: this kernel "
                                    f"cannot test-run {self.type.name} programs")
        data_out = ffi.buffer(dout, min(attr.data_size_out, data_size_out))[:] if dout else b""
        if ctx_types_in_only and cin is not None:
            # SYSCALL programs write their context back into ctx_in.
            ctx_out = ffi.buffer(cin, len(ctx_in))[:]
        else:
            ctx_out = ffi.buffer(cout, min(attr.ctx_size_out, ctx_size_out))[:] if cout else None
        return TestRun(attr.retval, data_out, attr.duration, ctx_out)

    def test_run_batch(self, data, lens) -> tuple[list[int], list[bytes], KernelError | None]:
        """One BPF_PROG_TEST_RUN per packet, driven from C (csrc/kernel_sys.h
        ebpfjit_kernel_test_run_batch): `data` holds the packets end to end, `lens` (array('I'))
        their lengths. Returns (retvals, output packets, error): on a refused run the lists stop
        before that packet and `error` says why (the caller decides whether to go on)."""
        ffi, lib = ffi_lib()
        if self.fd < 0:
            raise KernelError(f"{self._what()} is closed", errno=_errno.EBADF)
        n, pos, off = len(lens), 0, 0
        retvals = array.array("I", bytes(4 * n))
        out_lens = array.array("I", bytes(4 * n))
        out = bytearray(max(1 << 20, max(lens, default=0) + 4096))
        used = ffi.new("uint64_t *")
        err = ffi.new("long *")
        rets: list[int] = []
        outs: list[bytes] = []
        cdata = ffi.from_buffer(data)
        while pos < n:
            done = lib.ebpfjit_kernel_test_run_batch(
                self.fd, cdata + off, ffi.from_buffer("uint32_t[]", lens) + pos, n - pos,
                ffi.from_buffer("uint32_t[]", retvals, require_writable=True),
                ffi.from_buffer(out, require_writable=True), len(out),
                ffi.from_buffer("uint32_t[]", out_lens, require_writable=True), used, err)
            o = 0
            for i in range(done):
                rets.append(retvals[i])
                outs.append(bytes(out[o:o + out_lens[i]]))
                o += out_lens[i]
                off += lens[pos + i]
            pos += done
            if err[0]:
                code = -err[0]
                return rets, outs, KernelError(f"{self._what()} test run failed with "
                                               f"{errno_name(code)}", errno=code)
        return rets, outs, None

    # -- introspection ---------------------------------------------------------------------

    def info(self) -> ProgInfo:
        """BPF_OBJ_GET_INFO_BY_FD: xlated and jited images, function lengths, map ids, tag."""
        ffi, _ = ffi_lib()
        if self.fd < 0:
            raise KernelError(f"{self._what()} is closed", errno=_errno.EBADF)
        what = f"{self._what()} info"
        counts = self._get_info(ffi, ffi.new("struct ebpfjit_bpf_prog_info *"), what)
        # The second call fills arrays sized by the counts the first call reported; the kernel
        # rewrites each count to the full size and copies at most what we asked for.
        info = ffi.new("struct ebpfjit_bpf_prog_info *")
        xlated = ffi.new("uint8_t[]", max(counts.xlated_prog_len, 1))
        jited = ffi.new("uint8_t[]", max(counts.jited_prog_len, 1))
        map_ids = ffi.new("uint32_t[]", max(counts.nr_map_ids, 1))
        ksyms = ffi.new("uint64_t[]", max(counts.nr_jited_ksyms, 1))
        func_lens = ffi.new("uint32_t[]", max(counts.nr_jited_func_lens, 1))
        line_info = ffi.new("uint8_t[]", max(counts.nr_line_info * counts.line_info_rec_size, 1))
        jited_lines = ffi.new("uint64_t[]", max(counts.nr_jited_line_info, 1))
        info.xlated_prog_insns, info.xlated_prog_len = buf_address(ffi, xlated), counts.xlated_prog_len
        info.jited_prog_insns, info.jited_prog_len = buf_address(ffi, jited), counts.jited_prog_len
        info.map_ids, info.nr_map_ids = buf_address(ffi, map_ids), counts.nr_map_ids
        info.jited_ksyms, info.nr_jited_ksyms = buf_address(ffi, ksyms), counts.nr_jited_ksyms
        info.jited_func_lens, info.nr_jited_func_lens = buf_address(ffi, func_lens), counts.nr_jited_func_lens
        if counts.nr_line_info:
            info.line_info, info.nr_line_info = buf_address(ffi, line_info), counts.nr_line_info
            info.line_info_rec_size = counts.line_info_rec_size
        if counts.nr_jited_line_info:
            info.jited_line_info = buf_address(ffi, jited_lines)
            info.nr_jited_line_info = counts.nr_jited_line_info
            info.jited_line_info_rec_size = counts.jited_line_info_rec_size
        got = self._get_info(ffi, info, what)

        def ints(arr, asked: int, reported: int) -> list[int]:
            return [int(arr[i]) for i in range(min(asked, reported))]

        return ProgInfo(
            type=got.type, id=got.id,
            name=ffi.string(got.name).decode("ascii", "replace"),
            tag=bytes(got.tag).hex(),
            xlated=ffi.buffer(xlated, min(got.xlated_prog_len, counts.xlated_prog_len))[:],
            jited=ffi.buffer(jited, min(got.jited_prog_len, counts.jited_prog_len))[:],
            jited_func_lens=ints(func_lens, counts.nr_jited_func_lens, got.nr_jited_func_lens),
            jited_ksyms=ints(ksyms, counts.nr_jited_ksyms, got.nr_jited_ksyms),
            jited_line_info=ints(jited_lines, counts.nr_jited_line_info, got.nr_jited_line_info),
            line_info=ffi.buffer(line_info, min(counts.nr_line_info, got.nr_line_info)
                                 * counts.line_info_rec_size)[:],
            map_ids=ints(map_ids, counts.nr_map_ids, got.nr_map_ids),
            gpl_compatible=bool(got.flags & 1),
            verified_insns=got.verified_insns,
            load_time_ns=got.load_time,
            run_time_ns=got.run_time_ns,
            run_cnt=got.run_cnt,
            btf_id=got.btf_id,
        )

    def _get_info(self, ffi, info, what: str):
        attr = ffi.new("struct ebpfjit_bpf_info_attr *")
        attr.bpf_fd = self.fd
        attr.info_len = ffi.sizeof(info[0])
        attr.info = buf_address(ffi, info)
        sys_bpf(Cmd.OBJ_GET_INFO_BY_FD, attr, what)
        return info

    def __repr__(self) -> str:
        return f"<KernelProgram {self.name!r} {self.type.name} insns={len(self.insns) // 8} fd={self.fd}>"


# --------------------------------------------------------------------------------------------
# BTF
# --------------------------------------------------------------------------------------------

class KernelBtf(FdOwner):
    """Type information loaded with BPF_BTF_LOAD (for map value types and func/line info)."""

    def __init__(self, raw: bytes, log_size: int = 1 << 20):
        """Raises:
            KernelError: the kernel's BTF checker refused `raw`; `.log` says why.
        """
        ffi, lib = ffi_lib()
        self.fd = -1
        self.raw = bytes(raw)
        data = ffi.from_buffer(self.raw)
        logbuf = ffi.new("char[]", log_size)
        attr = ffi.new("struct ebpfjit_bpf_btf_load_attr *")
        attr.btf, attr.btf_size = buf_address(ffi, data), len(self.raw)
        attr.btf_log_buf, attr.btf_log_size, attr.btf_log_level = buf_address(ffi, logbuf), log_size, 1
        r = lib.ebpfjit_sys_bpf(Cmd.BTF_LOAD, attr, ffi.sizeof(attr[0]))
        log = ffi.string(logbuf).decode("utf-8", "replace")
        if r < 0:
            if -r in (_errno.EPERM, _errno.ENOSYS) and probe_permission() is not None:
                raise KernelUnavailable(missing_permission_text("BPF_BTF_LOAD", -r))
            lines = [ln for ln in log.splitlines() if ln.strip()]
            raise KernelError(f"bpf(BPF_BTF_LOAD) failed with {errno_name(-r)}"
                              + (f": {lines[-1]}" if lines else ""), errno=-r, log=log)
        self.fd = r


# --------------------------------------------------------------------------------------------
# Objects
# --------------------------------------------------------------------------------------------

def _object_prefix(path: str) -> str:
    base = os.path.basename(path or "obj")
    base = base[:-2] if base.endswith(".o") else base
    return kernel_name(base.replace(".", "_").replace("-", "_")) or "obj"


def _global_data_name(prefix: str, spec: MapSpec) -> str:
    """`<obj prefix>_bss` style kernel names for .bss/.data/.rodata(.*) maps."""
    name = spec.name
    dot = name.find(".")
    if dot < 0:
        return name
    suffix = name[dot:].replace(".", "_")
    stem = name[:dot] or prefix
    return stem[:max(OBJ_NAME_LEN - 1 - len(suffix), 1)] + suffix


class KernelObject:
    """Every map and program of an ObjectSpec, created in the kernel.

    Maps are created in spec order (their index is the lddw imm), global-data maps get their
    initial contents (.rodata frozen), programs are loaded, and then prog_array and map-in-map
    `values` are filled with the loaded programs' and maps' fds.
    """

    def __init__(self, spec: ObjectSpec, programs: Sequence[str] | None = None, *,
                 log_level: int | None = None):
        """Args:
            spec: the object.
            programs: names of the programs to load (default: all).
            log_level: passed to every KernelProgram.
        Raises:
            KernelUnavailable, KernelError: as KernelMap/KernelProgram; everything already
                created is closed first.
        """
        self.spec = spec
        self.maps: dict[str, KernelMap] = {}
        self.programs: dict[str, KernelProgram] = {}
        self.btf: KernelBtf | None = None
        prefix = _object_prefix(spec.path)
        chosen = list(spec.programs) if programs is None else list(programs)
        for name in chosen:
            if name not in spec.programs:
                raise KernelError(f"{spec.path}: no program {name!r} (have "
                                  f"{', '.join(spec.programs)})", errno=_errno.ENOENT)
        try:
            btf_info = self._load_btf(chosen)
            btf_fd = self.btf.fd if self.btf is not None else 0
            for name, mspec in spec.maps.items():
                kname = _global_data_name(prefix, mspec) if mspec.is_global_data else name
                typed = btf_fd and not mspec.is_global_data
                self.maps[name] = KernelMap(mspec, name=kname, btf_fd=btf_fd if typed else 0)
            fds = [m.fd for m in self.maps.values()]
            for name in chosen:
                p = spec.programs[name]
                func_info, line_info = btf_info.get(name, ((), ()))
                args = dict(prog_type=p.type, code=p.code, license=p.license or spec.license or "GPL",
                            map_fds=fds, name=name, expected_attach_type=p.expected_attach_type,
                            log_level=log_level, kern_version=spec.kernel_version, btf_fd=btf_fd,
                            func_info=func_info, line_info=line_info,
                            # The kernel only takes syscall programs as sleepable.
                            prog_flags=BPF_F_SLEEPABLE if p.sleepable or p.type == ProgType.SYSCALL
                            else 0)
                try:
                    self.programs[name] = KernelProgram(**args)
                except KernelError as exc:
                    if not line_info or "line_info" not in exc.log:
                        raise
                    # Line info is a nicety; the kernel is strict about it, so load without.
                    self.programs[name] = KernelProgram(**{**args, "line_info": ()})
            self._fill_values()
        except BaseException:
            self.close()
            raise

    def _load_btf(self, chosen: Sequence[str]) -> dict[str, tuple[list, list]]:
        """Load the object's BTF when it has some; per program, its func_info and line_info.

        A program gets func_info only when every function in it has a BTF FUNC (clang emits
        one per function with -g); without BTF everything still loads except what needs it.
        """
        btf = self.spec.btf
        if btf is None or not hasattr(btf, "types"):
            return {}
        enc = BtfEncoder(btf)
        out: dict[str, tuple[list, list]] = {}
        for name in chosen:
            p = self.spec.programs[name]
            offsets = p.func_offsets or {name: 0}
            func_info = []
            for fname, slot in sorted(offsets.items(), key=lambda kv: kv[1]):
                type_id = btf.find(fname, BtfKind.FUNC)
                if not type_id:
                    func_info = []
                    break
                func_info.append((slot, type_id))
            line_info = [(slot, enc.string(file), enc.string(text), line << 10)
                         for slot, file, line, text in p.line_info] if func_info else []
            out[name] = (func_info, line_info)
        try:
            self.btf = KernelBtf(enc.blob())
        except KernelError:
            return {}   # the kernel refused our BTF: load without, as libbpf does
        return out

    def _fill_values(self) -> None:
        for name, mspec in self.spec.maps.items():
            kmap = self.maps[name]
            for key, value in mspec.values.items():
                if isinstance(value, str):
                    if kmap.type == MapType.PROG_ARRAY:
                        target = self.programs.get(value)
                        if target is None:
                            if value in self.spec.programs:
                                continue    # that program was not chosen for loading
                            raise KernelError(f"map {name!r}: slot {key} names unknown program "
                                              f"{value!r}", errno=_errno.ENOENT)
                    else:
                        target = self.maps.get(value)
                        if target is None:
                            raise KernelError(f"map {name!r}: slot {key} names unknown map "
                                              f"{value!r}", errno=_errno.ENOENT)
                    kmap.update(key, target.fd)
                else:
                    kmap.update(key, value)

    def close(self) -> None:
        for prog in self.programs.values():
            prog.close()
        for kmap in self.maps.values():
            kmap.close()
        if self.btf is not None:
            self.btf.close()

    def __enter__(self) -> KernelObject:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<KernelObject {self.spec.path!r} maps={list(self.maps)} "
                f"programs={list(self.programs)}>")
