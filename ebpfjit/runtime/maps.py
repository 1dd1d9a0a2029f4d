"""eBPF maps from Python: one `Map` per `MapSpec`, owning the C map that both engines use.

Operations mirror bpf(2) on the kernel's maps: the same flags, the same errno for each failure
(raised as MapError with `.errno`), per-CPU values as one value per slot, and a `dump()` shaped
like `bpftool map dump -j`. Programs see the same memory: `Map.attach(env)` registers the value
arenas with an env so pointers returned by bpf_map_lookup_elem pass the engines' bounds checks.

Must not import: lower, jit, kernel, cli, program.

Imports: ebpfjit._rt, ebpfjit.errors, ebpfjit.objects, ebpfjit.runtime.env
"""
from __future__ import annotations

import errno as _errno
import gc
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .._rt import ffi, lib
from ..errors import BtfLimitError, MapError
from ..objects.spec import BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, ENOTSUPP, MapSpec, MapType
from .env import reclaim, retire

__all__ = ["BPF_ANY", "BPF_EXIST", "BPF_F_LOCK", "BPF_NOEXIST", "DEFAULT_MEMORY_LIMIT", "Map",
           "MemoryAccount", "default_ncpus"]
BPF_RB_NO_WAKEUP = 1
BPF_RB_FORCE_WAKEUP = 2
BPF_RB_AVAIL_DATA = 0
BPF_RB_RING_SIZE = 1
BPF_RB_CONS_POS = 2
BPF_RB_PROD_POS = 3


PERCPU_TYPES = frozenset({MapType.PERCPU_ARRAY, MapType.PERCPU_HASH, MapType.LRU_PERCPU_HASH})
ARRAY_TYPES = frozenset({MapType.ARRAY, MapType.PERCPU_ARRAY})
MAP_IN_MAP_TYPES = frozenset({MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS})
QUEUE_TYPES = frozenset({MapType.QUEUE, MapType.STACK})
SUPPORTED_TYPES = frozenset({
    MapType.HASH, MapType.ARRAY, MapType.PROG_ARRAY, MapType.PERCPU_HASH, MapType.PERCPU_ARRAY,
    MapType.LRU_HASH, MapType.LRU_PERCPU_HASH, MapType.LPM_TRIE, MapType.ARRAY_OF_MAPS,
    MapType.HASH_OF_MAPS, MapType.QUEUE, MapType.STACK, MapType.RINGBUF,
})

_FLAG_NAMES = {BPF_NOEXIST: "BPF_NOEXIST", BPF_EXIST: "BPF_EXIST"}

#: Seconds a host BPF_F_LOCK lookup/update waits for a value's bpf_spin_lock held by another
#: thread's run before it raises (Map.lock_timeout). C waits in 10 ms slices (-ETIMEDOUT) and
#: the loop here retries, so Ctrl-C stops the wait.
F_LOCK_TIMEOUT = 1.0


def default_ncpus() -> int:
    """Per-CPU slots of a new per-CPU map when not given: the host's CPU count."""
    return os.cpu_count() or 1


# Map memory one object (or one standalone map) may use; see MemoryAccount.
DEFAULT_MEMORY_LIMIT = 256 << 20


class MemoryAccount:
    """The memory limit the maps of one object share (kernel: the memcg charge of a map).

    Memory a map allocates at creation (array values and key tables, hash buckets, queues,
    LPM tries, ring buffers, LRU pools, per-CPU slots included) is charged when it is created,
    so an object whose maps cannot fit fails to load with a MapError naming the map; hash
    elements are charged when first used, so a hash map that grows past the limit fails that
    update with -ENOMEM (MapError from Python, the helper's return value in a program), as the
    kernel does when its memcg charge fails. Freed maps give their memory back.
    """

    def __init__(self, limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit < 1 << 63:
            raise MapError(f"memory_limit must be a positive number of bytes, not {limit!r}",
                           errno=_errno.EINVAL)
        ptr = lib.ebpfjit_mem_account_new(limit)
        if ptr == ffi.NULL:
            raise MapError("cannot allocate a memory account", errno=_errno.ENOMEM)
        self.ptr = ffi.gc(ptr, lib.ebpfjit_mem_account_put)

    limit = property(lambda self: int(self.ptr.limit), doc="bytes the maps may use")
    used = property(lambda self: int(self.ptr.used), doc="bytes charged now")

    def __repr__(self) -> str:
        return f"<MemoryAccount used {self.used} of {self.limit} bytes>"


def _hexlist(data: bytes) -> list[str]:
    return [f"0x{b:02x}" for b in data]


class Map:
    """A map with kernel semantics, shared by Python and the programs of the envs it is attached to.

    Args:
        spec: what the object declares (type, sizes, flags, inner template).
        ncpus: slots of a per-CPU map (default: os.cpu_count()); ignored for other types.
        btf: an object with `format_value(type_id, data)` (ebpfjit.btf.Btf) used with
            spec.key_type_id/value_type_id by `lookup_typed` and `dump`.
        spin_lock_off: offset of a `struct bpf_spin_lock` in the value (enables BPF_F_LOCK).
        memory: the MemoryAccount the map's memory is charged to (an object's); default: a
            new one of DEFAULT_MEMORY_LIMIT bytes for this map alone.
    """

    def __init__(self, spec: MapSpec, ncpus: int | None = None, *, btf: Any = None,
                 spin_lock_off: int | None = None, memory: MemoryAccount | None = None) -> None:
        self.spec = spec
        self.type = MapType(spec.type)
        if self.type not in SUPPORTED_TYPES:
            raise MapError(f"map {spec.name!r}: map type {self.type.name} is not supported",
                           errno=_errno.EINVAL)
        self.ncpus = (ncpus or default_ncpus()) if self.type in PERCPU_TYPES else 1
        self.btf = btf
        self._refs: dict[bytes, Any] = {}    # objects a PROG_ARRAY / map-in-map slot points at
        self._envs: list[Any] = []
        template = ffi.NULL
        if self.type in MAP_IN_MAP_TYPES and spec.inner is not None:
            # Only the template's type, sizes and flags matter (bpf_map_meta_equal): no arena.
            template = ffi.new("struct ebpfjit_map *")
            for field in ("type", "key_size", "value_size", "max_entries", "flags"):
                setattr(template.base, field, int(getattr(spec.inner, field)))
        self.memory = memory if memory is not None else MemoryAccount()
        err = ffi.new("int *")
        ptr = lib.ebpfjit_map_create_in(int(self.type), spec.key_size, spec.value_size,
                                        spec.max_entries, spec.flags, self.ncpus, template,
                                        self.memory.ptr, err)
        if ptr == ffi.NULL:
            why = _strerror(-err[0])
            if -err[0] == _errno.ENOMEM:
                why += (f": it does not fit the memory limit ({self.memory.used} of "
                        f"{self.memory.limit} bytes in use; raise it with memory_limit=)")
            raise MapError(f"map {spec.name!r}: cannot create {self.type.name} map "
                           f"(key_size {spec.key_size}, value_size {spec.value_size}, max_entries "
                           f"{spec.max_entries}, flags {spec.flags:#x}, ncpus {self.ncpus}): "
                           f"{why}", errno=-err[0])
        self.ptr = ffi.gc(ptr, lib.ebpfjit_map_free)
        self._user_size = lib.ebpfjit_map_user_value_size(self.ptr)
        self._stride = self.ptr.elem_size
        if spin_lock_off is not None:
            rc = lib.ebpfjit_map_set_spin_lock(self.ptr, spin_lock_off)
            if rc:
                raise MapError(f"map {self.name!r}: cannot place a bpf_spin_lock at offset "
                               f"{spin_lock_off}", errno=-rc)
        if spec.initial is not None and self.type in ARRAY_TYPES:
            self.update(0, bytes(spec.initial).ljust(spec.value_size, b"\0")[:spec.value_size])

    @classmethod
    def create(cls, type: MapType | int, key_size: int, value_size: int, max_entries: int,
               flags: int = 0, name: str = "map", inner: MapSpec | None = None,
               ncpus: int | None = None, **kwargs: Any) -> Map:
        """A map from plain parameters (a MapSpec is built for it)."""
        spec = MapSpec(name=name, type=MapType(type), key_size=key_size, value_size=value_size,
                       max_entries=max_entries, flags=flags, inner=inner)
        return cls(spec, ncpus, **kwargs)

    # --- properties ---------------------------------------------------------------------

    name = property(lambda self: self.spec.name)
    key_size = property(lambda self: self.spec.key_size)
    value_size = property(lambda self: self.spec.value_size)
    max_entries = property(lambda self: self.spec.max_entries)
    flags = property(lambda self: self.spec.flags)

    @property
    def address(self) -> int:
        return int(ffi.cast("uintptr_t", self.ptr))

    @property
    def is_percpu(self) -> bool:
        return self.type in PERCPU_TYPES

    def __repr__(self) -> str:
        return (f"<Map {self.name!r} {self.type.name} key {self.key_size} value {self.value_size} "
                f"max {self.max_entries}>")

    # --- env wiring ---------------------------------------------------------------------

    def attach(self, env: Any) -> None:
        """Register this map's program-visible memory with `env` (a runtime.Env or a
        `struct ebpfjit_env *`), including inner maps set now or later."""
        env_ptr = getattr(env, "ptr", env)
        rc = _with_free_regions(lambda: lib.ebpfjit_map_attach(env_ptr, self.ptr))
        if rc:
            raise MapError(f"map {self.name!r}: cannot register its memory with the env: "
                           f"{_attach_error(-rc)}", errno=-rc)
        self._envs.append(env)

    def detach(self, env: Any) -> None:
        lib.ebpfjit_map_detach(getattr(env, "ptr", env), self.ptr)
        self._envs = [e for e in self._envs if e is not env]

    # --- errors and conversions -----------------------------------------------------------

    def _error(self, rc: int, op: str, flags: int = 0, key: bytes | None = None) -> MapError:
        code = -rc
        flag = _FLAG_NAMES.get(flags & ~BPF_F_LOCK, "")
        if code == _errno.EEXIST:
            what = f"key already exists ({flag or 'BPF_NOEXIST'})"
        elif code == _errno.ENOENT and op == "update":
            what = f"key does not exist ({flag or 'BPF_EXIST'})"
        elif code == _errno.ENOENT and op in ("pop", "peek"):
            what = f"{self.type.name.lower()} is empty"
        elif code == _errno.ENOENT:
            what = "key not found"
        elif code == _errno.E2BIG and self.type in ARRAY_TYPES | {MapType.PROG_ARRAY,
                                                                  MapType.ARRAY_OF_MAPS}:
            index = int.from_bytes(key or b"\0\0\0\0", "little")
            what = f"index {index} out of range (max_entries {self.max_entries})"
        elif code in (_errno.E2BIG, _errno.ENOSPC):
            what = f"map is full (max_entries {self.max_entries})"
        elif code == _errno.ENOMEM:
            what = (f"out of memory before max_entries {self.max_entries}: the memory limit "
                    f"({self.memory.used} of {self.memory.limit} bytes in use) is reached")
        elif code == _errno.EINVAL:
            what = f"invalid argument for {op} (flags {flags:#x})"
        elif code == _errno.EDEADLK:
            what = (f"BPF_F_LOCK {op}: the value's bpf_spin_lock is held by a program running on "
                    "this thread (waiting would deadlock)")
        elif code == _errno.EOWNERDEAD:
            what = (f"BPF_F_LOCK {op}: the value's bpf_spin_lock word names no live thread (a "
                    "program overwrote it)")
        elif code == _errno.ETIMEDOUT:
            what = (f"BPF_F_LOCK {op}: gave up after {self.lock_timeout} s waiting for the "
                    "value's bpf_spin_lock (Map.lock_timeout)")
        else:
            what = _strerror(code)
        return MapError(f"map {self.name!r}: {what}", errno=code)

    def _key(self, key: bytes | int | None) -> Any:
        size = self.key_size
        if isinstance(key, int) and not isinstance(key, bool) and 0 < size <= 8:
            if not 0 <= key < 1 << (8 * size):
                raise MapError(f"map {self.name!r}: key {key} does not fit in {size} bytes "
                               "(key_size)", errno=_errno.EINVAL)
            key = key.to_bytes(size, "little")
        if key is None:
            key = b""
        data = bytes(key)
        if len(data) != size:
            raise MapError(f"map {self.name!r}: key is {len(data)} bytes, expected {size} "
                           "(key_size)", errno=_errno.EINVAL)
        return ffi.new("uint8_t[]", data) if data else ffi.NULL

    def _value(self, value: bytes | Sequence[bytes]) -> Any:
        size = self.value_size
        if self.is_percpu:
            if isinstance(value, (bytes, bytearray, memoryview)):
                values = [bytes(value)] * self.ncpus
            else:
                values = [bytes(v) for v in value]
                if len(values) != self.ncpus:
                    raise MapError(f"map {self.name!r}: {len(values)} per-CPU values, expected "
                                   f"{self.ncpus} (one per slot)", errno=_errno.EINVAL)
            buf = bytearray(self._user_size)
            for i, v in enumerate(values):
                self._check_value_size(v)
                buf[i * self._stride:i * self._stride + size] = v
            return ffi.new("uint8_t[]", bytes(buf))
        data = bytes(value)
        self._check_value_size(data)
        return ffi.new("uint8_t[]", data)

    def _check_value_size(self, data: bytes) -> None:
        if len(data) != self.value_size:
            raise MapError(f"map {self.name!r}: value is {len(data)} bytes, expected "
                           f"{self.value_size} (value_size)", errno=_errno.EINVAL)

    def _unpack_value(self, buf: Any) -> bytes | list[bytes]:
        raw = bytes(ffi.buffer(buf, self._user_size))
        if self.is_percpu:
            return [raw[i * self._stride:i * self._stride + self.value_size]
                    for i in range(self.ncpus)]
        return raw

    # --- element operations -------------------------------------------------------------

    lock_timeout: float = F_LOCK_TIMEOUT

    def _bounded(self, call: Callable[[], int], flags: int) -> int:
        """call() again while a BPF_F_LOCK wait times out in C, up to lock_timeout seconds."""
        rc = call()
        if rc != -_errno.ETIMEDOUT or not flags & BPF_F_LOCK:
            return rc
        deadline = time.monotonic() + self.lock_timeout
        while rc == -_errno.ETIMEDOUT and time.monotonic() < deadline:
            rc = call()
        return rc

    def lookup(self, key: bytes | int | None, flags: int = 0) -> Any:
        """The value at `key` (bytes; per-CPU maps: a list with one bytes per slot), or None.

        PROG_ARRAY and map-in-map slots return the object set there; queues/stacks peek."""
        if self.type in QUEUE_TYPES:
            return self.peek()
        if self.type is MapType.RINGBUF:
            raise MapError(f"map {self.name!r}: ring buffers have no keys; use consume()",
                           errno=_errno.ENOTSUP)
        k = self._key(key)
        if self.type is MapType.PROG_ARRAY or self.type in MAP_IN_MAP_TYPES:
            if lib.ebpfjit_map_get_ptr(self.ptr, k) == ffi.NULL:
                return None
            return self._refs.get(bytes(ffi.buffer(k, self.key_size)))
        out = ffi.new("uint8_t[]", self._user_size)
        rc = self._bounded(lambda: lib.ebpfjit_map_lookup(self.ptr, k, out, flags), flags)
        if rc == -_errno.ENOENT:
            return None
        if rc:
            raise self._error(rc, "lookup", flags)
        return self._unpack_value(out)

    def update(self, key: bytes | int | None, value: bytes | Sequence[bytes], flags: int = 0) -> None:
        """Set `key` to `value` with BPF_ANY/BPF_NOEXIST/BPF_EXIST (| BPF_F_LOCK).

        Per-CPU maps take one value for every slot or a list of one value per slot."""
        if self.type in QUEUE_TYPES:
            self.push(value, flags)
            return
        if self.type is MapType.PROG_ARRAY:
            raise MapError(f"map {self.name!r}: PROG_ARRAY slots hold programs; use "
                           "set_program()", errno=_errno.EINVAL)
        if self.type in MAP_IN_MAP_TYPES:
            if isinstance(value, Map) or value is None:
                self.set_inner(key, value, flags)
                return
            raise MapError(f"map {self.name!r}: map-in-map values are maps; use set_inner()",
                           errno=_errno.EINVAL)
        k = self._key(key)
        v = self._value(value)
        rc = self._bounded(lambda: lib.ebpfjit_map_update(self.ptr, k, v, flags), flags)
        if rc:
            raise self._error(rc, "update", flags, bytes(ffi.buffer(k, self.key_size)))

    def delete(self, key: bytes | int | None) -> None:
        k = self._key(key)
        rc = lib.ebpfjit_map_delete(self.ptr, k)
        if rc:
            raise self._error(rc, "delete", 0, bytes(ffi.buffer(k, self.key_size)) if k else None)
        if self.type is MapType.PROG_ARRAY or self.type in MAP_IN_MAP_TYPES:
            self._replace_ref(bytes(ffi.buffer(k, self.key_size)), None)

    def get_next_key(self, key: bytes | int | None = None) -> bytes | None:
        """The key after `key` in iteration order (the first for None or a missing key), or
        None at the end."""
        k = ffi.NULL if key is None else self._key(key)
        out = ffi.new("uint8_t[]", max(self.key_size, 1))
        rc = lib.ebpfjit_map_get_next_key(self.ptr, k, out)
        if rc == -_errno.ENOENT:
            return None
        if rc:
            raise self._error(rc, "get_next_key")
        return bytes(ffi.buffer(out, self.key_size))

    def keys(self) -> list[bytes]:
        """A snapshot of the keys in the C map's iteration order (kernel get_next_key order)."""
        if self.type in QUEUE_TYPES or self.type is MapType.RINGBUF:
            return []
        out, key = [], None
        limit = self.max_entries
        while len(out) <= limit:
            key = self.get_next_key(key)
            if key is None:
                break
            out.append(key)
        return out

    def values(self) -> list[Any]:
        return [v for _, v in self.items()]

    def items(self) -> list[tuple[bytes, Any]]:
        pairs = []
        for k in self.keys():
            v = self.lookup(k)
            if v is not None or self.type is MapType.PROG_ARRAY or self.type in MAP_IN_MAP_TYPES:
                pairs.append((k, v))
        return pairs

    def __iter__(self) -> Iterator[Any]:
        if self.type is MapType.RINGBUF:
            return iter(self.poll())
        return iter(self.keys())

    def __len__(self) -> int:
        return int(lib.ebpfjit_map_count(self.ptr))

    def __contains__(self, key: object) -> bool:
        if self.type is MapType.PROG_ARRAY or self.type in MAP_IN_MAP_TYPES:
            return lib.ebpfjit_map_get_ptr(self.ptr, self._key(key)) != ffi.NULL
        return self.lookup(key) is not None   # type: ignore[arg-type]

    def __getitem__(self, key: bytes | int) -> Any:
        value = self.lookup(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: bytes | int, value: Any) -> None:
        self.update(key, value)

    def __delitem__(self, key: bytes | int) -> None:
        self.delete(key)

    def clear(self) -> None:
        """Delete every entry (arrays: zero every value; queues/stacks: pop everything)."""
        if self.type in ARRAY_TYPES:
            zero = bytes(self.value_size)
            for i in range(self.max_entries):
                self.update(i, zero)
        elif self.type in QUEUE_TYPES:
            while self.pop() is not None:
                pass
        elif self.type is MapType.RINGBUF:
            self.poll()
        else:
            for k in self.keys():
                try:
                    self.delete(k)
                except MapError as exc:
                    if exc.errno != _errno.ENOENT:
                        raise

    # --- queue / stack ------------------------------------------------------------------

    def _require(self, types: frozenset, what: str) -> None:
        if self.type not in types:
            raise MapError(f"map {self.name!r}: {what} needs a "
                           f"{'/'.join(sorted(t.name for t in types))} map, not {self.type.name}",
                           errno=_errno.EINVAL)

    def push(self, value: bytes, flags: int = 0) -> None:
        """Push (BPF_EXIST: drop the oldest element when full instead of failing)."""
        self._require(QUEUE_TYPES, "push")
        data = bytes(value)
        self._check_value_size(data)
        rc = lib.ebpfjit_map_push(self.ptr, data, flags)
        if rc == -_errno.E2BIG:
            raise MapError(f"map {self.name!r}: {self.type.name.lower()} is full (max_entries "
                           f"{self.max_entries})", errno=_errno.E2BIG)
        if rc:
            raise self._error(rc, "push", flags)

    def _pop(self, fn: Callable[..., int], op: str) -> bytes | None:
        self._require(QUEUE_TYPES, op)
        out = ffi.new("uint8_t[]", self.value_size)
        rc = fn(self.ptr, out)
        if rc == -_errno.ENOENT:
            return None
        if rc:
            raise self._error(rc, op)
        return bytes(ffi.buffer(out, self.value_size))

    def pop(self) -> bytes | None:
        """Remove and return the next value (queue: oldest; stack: newest), None when empty."""
        return self._pop(lib.ebpfjit_map_pop, "pop")

    def peek(self) -> bytes | None:
        return self._pop(lib.ebpfjit_map_peek, "peek")

    # --- ring buffer ----------------------------------------------------------------------

    def consume(self, callback: Callable[[bytes], Any] | None = None) -> int:
        """Hand every committed record (oldest first) to `callback`; return how many.

        Stops early at a record still reserved (busy), like libbpf; a callback returning a
        negative number stops consumption after that record."""
        self._require(frozenset({MapType.RINGBUF}), "consume")
        size = int(self.ptr.rb.size)
        buf = ffi.new("uint8_t[]", size)
        n_out = ffi.new("uint32_t *")
        count = 0
        while True:
            rc = lib.ebpfjit_ringbuf_consume(self.ptr, buf, size, n_out)
            if rc <= 0:
                if rc < 0:
                    raise self._error(rc, "consume")
                return count
            count += 1
            if callback is not None:
                ret = callback(bytes(ffi.buffer(buf, n_out[0])))
                if isinstance(ret, int) and ret < 0:
                    return count

    def poll(self) -> list[bytes]:
        """Consume and return every committed record."""
        records: list[bytes] = []
        self.consume(records.append)
        return records

    def query(self, flags: int = BPF_RB_AVAIL_DATA) -> int:
        """bpf_ringbuf_query: available data, ring size, consumer or producer position."""
        self._require(frozenset({MapType.RINGBUF}), "query")
        return int(lib.ebpfjit_ringbuf_query(self.ptr, flags))

    def output(self, data: bytes, flags: int = 0) -> None:
        """Write one record as a program's bpf_ringbuf_output would (tests, replay)."""
        self._require(frozenset({MapType.RINGBUF}), "output")
        data = bytes(data)
        rc = lib.ebpfjit_ringbuf_output(self.ptr, data, len(data), flags)
        if rc == -_errno.EAGAIN:
            raise MapError(f"map {self.name!r}: ring buffer has no room for {len(data)} bytes",
                           errno=_errno.EAGAIN)
        if rc:
            raise self._error(rc, "output", flags)

    # --- PROG_ARRAY and map-in-map --------------------------------------------------------

    def set_program(self, index: int, program: Any) -> None:
        """Put a `struct ebpfjit_prog *` (cdata, or an object with `.ptr`) at `index`; None
        clears it. The object is kept alive while it is in the map."""
        self._require(frozenset({MapType.PROG_ARRAY}), "set_program")
        ptr = ffi.NULL if program is None else getattr(program, "ptr", program)
        if not isinstance(index, int) or index < 0:
            raise MapError(f"map {self.name!r}: index {index!r} is not a u32", errno=_errno.EINVAL)
        rc = lib.ebpfjit_map_set_prog(self.ptr, index & 0xFFFFFFFF,
                                      ffi.cast("struct ebpfjit_prog *", ptr))
        if rc:
            raise self._error(rc, "set_program", 0, (index & 0xFFFFFFFF).to_bytes(4, "little"))
        k = index.to_bytes(4, "little")
        self._replace_ref(k, program)

    def get_program(self, index: int) -> Any:
        self._require(frozenset({MapType.PROG_ARRAY}), "get_program")
        return self.lookup(index)

    def set_inner(self, key: bytes | int, inner: Map | None, flags: int = 0) -> None:
        """Store inner map `inner` (None deletes) at `key` of an ARRAY_OF_MAPS/HASH_OF_MAPS.

        The inner map must match the template (type, key/value size, flags, max_entries)."""
        self._require(MAP_IN_MAP_TYPES, "set_inner")
        k = self._key(key)
        kb = bytes(ffi.buffer(k, self.key_size))
        if inner is None:
            self.delete(kb)
            return
        rc = _with_free_regions(lambda: lib.ebpfjit_map_set_inner(self.ptr, k, inner.ptr, flags))
        if rc in (-_errno.EMFILE, -_errno.EMLINK):
            raise MapError(f"map {self.name!r} key {kb.hex()}: inner map {inner.name!r} cannot "
                           f"be reached by programs: {_attach_error(-rc)}; nothing was stored",
                           errno=-rc)
        if rc == -_errno.EINVAL and flags == 0:
            raise MapError(f"map {self.name!r}: inner map {inner.name!r} ({inner.type.name}, key "
                           f"{inner.key_size}, value {inner.value_size}, max {inner.max_entries}) "
                           "does not match the inner map template", errno=_errno.EINVAL)
        if rc:
            raise self._error(rc, "update", flags, kb)
        self._replace_ref(kb, inner)
        for env in self._envs:
            if env not in inner._envs:
                inner._envs.append(env)

    def _replace_ref(self, key: bytes, new: Any) -> None:
        # The slot no longer points at the old object, but a run in another thread (or the
        # running program that called a Python helper) may still use it: it lives until
        # every run that started before now has ended, as the kernel frees after RCU.
        old = self._refs.get(key)
        if new is None:
            self._refs.pop(key, None)
        else:
            self._refs[key] = new
        if old is not None and old is not new:
            retire(old)

    def __del__(self) -> None:
        # Same for the objects of a map that goes away (a run may have reached them through it).
        refs = getattr(self, "_refs", None)
        if refs:
            try:
                retire(*refs.values())
            except Exception:   # noqa: S110 - interpreter shutdown: nothing runs any more
                pass

    def get_inner(self, key: bytes | int) -> Map | None:
        self._require(MAP_IN_MAP_TYPES, "get_inner")
        return self.lookup(key)

    # --- typed views ----------------------------------------------------------------------

    def _format(self, type_id: int, data: bytes) -> Any:
        if self.btf is None or not type_id:
            return data
        try:
            return self.btf.format_value(type_id, data)
        except BtfLimitError as exc:
            raise BtfLimitError(f"map {self.name!r}: {exc.reason}", section=exc.section) from None

    def _format_key(self, data: bytes) -> Any:
        if self.spec.key_type_id or self.type not in (MapType.ARRAY, MapType.PERCPU_ARRAY):
            return self._format(self.spec.key_type_id, data)
        # Array indexes (the key of .data/.bss, which has no BTF type) are u32s, as in bpftool.
        return int.from_bytes(data, "little")

    def lookup_typed(self, key: Any) -> Any:
        """lookup() decoded through BTF (spec.value_type_id); raw bytes without BTF."""
        value = self.lookup(key)
        if value is None or self.type is MapType.PROG_ARRAY or self.type in MAP_IN_MAP_TYPES:
            return value
        if isinstance(value, list):
            return [self._format(self.spec.value_type_id, v) for v in value]
        return self._format(self.spec.value_type_id, value)

    def dump(self) -> list[dict[str, Any]]:
        """Entries as `bpftool map dump -j` prints them: {"key": [...], "value": [...]} with
        bytes as "0x.." strings; per-CPU maps give "values": [{"cpu": i, "value": [...]}]; with
        BTF each entry also has "formatted" with the decoded key and value(s)."""
        out: list[dict[str, Any]] = []
        typed = self.btf is not None and (self.spec.key_type_id or self.spec.value_type_id)
        for key, value in self.items():
            if self.type is MapType.PROG_ARRAY or self.type in MAP_IN_MAP_TYPES:
                ident = (value.address if isinstance(value, Map)
                         else int(ffi.cast("uintptr_t", getattr(value, "ptr", value))))
                entry: dict[str, Any] = {"key": _hexlist(key),
                                         "value": _hexlist(ident.to_bytes(8, "little"))}
                out.append(entry)
                continue
            entry = {"key": _hexlist(key)}
            if isinstance(value, list):
                entry["values"] = [{"cpu": i, "value": _hexlist(v)} for i, v in enumerate(value)]
            else:
                entry["value"] = _hexlist(value)
            if typed:
                fkey = self._format_key(key)
                if isinstance(value, list):
                    formatted = {"key": fkey, "values": [
                        {"cpu": i, "value": self._format(self.spec.value_type_id, v)}
                        for i, v in enumerate(value)]}
                else:
                    formatted = {"key": fkey,
                                 "value": self._format(self.spec.value_type_id, value)}
                entry["formatted"] = formatted
            out.append(entry)
        return out


def _with_free_regions(attach: Callable[[], int], wait: float = 2.0) -> int:
    """attach(); if the region table is full while freed maps still wait for the end of runs
    that might reach them (or for the garbage collector), retry as their entries become
    reusable, for at most `wait` seconds (the kernel's synchronize_rcu; never inside a run,
    which would wait for itself)."""
    rc = attach()
    if rc != -_errno.EMFILE:
        return rc
    gc.collect()
    deadline = time.monotonic() + wait
    while True:
        waiting = reclaim()
        rc = attach()
        if (rc != -_errno.EMFILE or not waiting or lib.ebpfjit_epoch_in_run()
                or time.monotonic() > deadline):
            return rc
        time.sleep(0.0005)


def _attach_error(code: int) -> str:
    if code == _errno.EMFILE:
        return (f"the env's region table is full (at most {lib.EBPFJIT_MAX_ENV_REGIONS} "
                "regions: value and key arenas and ring buffers of every map its programs "
                "reach) (EMFILE)")
    if code == _errno.EMLINK:
        return (f"the map is attached to too many envs (at most {lib.EBPFJIT_MAP_MAX_ENVS}) "
                "(EMLINK)")
    return _strerror(code)


def _strerror(code: int) -> str:
    if code == ENOTSUPP:
        return "operation not supported (ENOTSUPP)"
    name = _errno.errorcode.get(code, str(code))
    return f"{os.strerror(code).lower()} ({name})"
