"""Maps: kernel semantics per type (errno tables), LRU/LPM/queue/ringbuf behaviour, per-CPU slots,
iteration, map-in-map, thread safety, the map helpers on both engines, and the kernel as oracle."""
from __future__ import annotations

import errno
import json
import shutil
import struct
import subprocess
import threading

import pytest
from ebpfjit._rt import ffi, lib

from ebpfjit.errors import EbpfError, ExecutionError, MapError
from ebpfjit.isa.insn import Instruction
from ebpfjit.objects.spec import BPF_F_NO_COMMON_LRU, BPF_F_NO_PREALLOC, BPF_F_RDONLY_PROG, MapSpec, MapType
from ebpfjit.runtime.maps import (
    BPF_ANY,
    BPF_EXIST,
    BPF_F_LOCK,
    BPF_NOEXIST,
    BPF_RB_AVAIL_DATA,
    BPF_RB_CONS_POS,
    BPF_RB_PROD_POS,
    BPF_RB_RING_SIZE,
    ENOTSUPP,
    Map,
)
from tests.support import engines

T = MapType
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")


def u32(v: int) -> bytes:
    return U32.pack(v)


def u64(v: int) -> bytes:
    return U64.pack(v)


def lpm_key(prefixlen: int, data: bytes) -> bytes:
    return U32.pack(prefixlen) + bytes(data)


def ipv4(text: str) -> bytes:
    return bytes(int(p) for p in text.split("."))


def mk(type_, ks, vs, max_entries, flags=0, name="m", **kw) -> Map:
    return Map.create(type_, ks, vs, max_entries, flags, name=name, **kw)


def errno_of(fn, *args) -> int:
    try:
        fn(*args)
    except MapError as exc:
        return exc.errno
    return 0


# --- creation validation (kernel map_alloc_check rules) ---------------------------------------

CREATE_CASES = [
    # type, key, value, max, flags, errno
    (T.ARRAY, 4, 8, 4, 0, 0),
    (T.ARRAY, 8, 8, 4, 0, errno.EINVAL),                 # array key must be u32
    (T.ARRAY, 4, 0, 4, 0, errno.EINVAL),
    (T.ARRAY, 4, 8, 0, 0, errno.EINVAL),
    (T.ARRAY, 4, 8, 4, BPF_F_NO_PREALLOC, errno.EINVAL),
    (T.PERCPU_ARRAY, 4, 40000, 4, 0, errno.E2BIG),      # > PCPU_MIN_UNIT_SIZE
    (T.HASH, 4, 8, 4, 0, 0),
    (T.HASH, 0, 8, 4, 0, errno.EINVAL),
    (T.HASH, 513, 8, 4, 0, 0),                           # 6.x: the verifier bounds keys, not here
    (T.HASH, 4, 8, 4, BPF_F_NO_COMMON_LRU, errno.EINVAL),
    (T.HASH, 4, 8, 4, BPF_F_NO_PREALLOC, 0),
    (T.LRU_HASH, 4, 8, 4, BPF_F_NO_PREALLOC, ENOTSUPP),
    (T.LRU_HASH, 4, 8, 4, BPF_F_NO_COMMON_LRU, 0),
    (T.LPM_TRIE, 8, 4, 4, BPF_F_NO_PREALLOC, 0),
    (T.LPM_TRIE, 8, 4, 4, 0, errno.EINVAL),              # LPM requires NO_PREALLOC
    (T.LPM_TRIE, 4, 4, 4, BPF_F_NO_PREALLOC, errno.EINVAL),  # key = prefixlen + >= 1 byte
    (T.LPM_TRIE, 4 + 257, 4, 4, BPF_F_NO_PREALLOC, errno.EINVAL),
    (T.QUEUE, 0, 4, 4, 0, 0),
    (T.QUEUE, 4, 4, 4, 0, errno.EINVAL),
    (T.STACK, 0, 0, 4, 0, errno.EINVAL),
    (T.RINGBUF, 0, 0, 4096, 0, 0),
    (T.RINGBUF, 0, 0, 4096 * 3, 0, errno.EINVAL),        # not a power of 2
    (T.RINGBUF, 0, 0, 2048, 0, errno.EINVAL),            # not a page multiple
    (T.RINGBUF, 4, 0, 4096, 0, errno.EINVAL),
    (T.PROG_ARRAY, 4, 4, 4, 0, 0),
    (T.PROG_ARRAY, 4, 8, 4, 0, errno.EINVAL),
    (T.PROG_ARRAY, 4, 4, 4, BPF_F_RDONLY_PROG, errno.EINVAL),
]


def _create_id(case) -> str:
    return f"{case[0].name}-k{case[1]}-v{case[2]}-n{case[3]}-f{case[4]:#x}"


@pytest.mark.parametrize("case", CREATE_CASES, ids=_create_id)
def test_create_validation(case):
    type_, ks, vs, n, flags, want = case
    assert errno_of(mk, type_, ks, vs, n, flags) == want


def test_create_error_names_map():
    with pytest.raises(MapError, match=r"map 'events': cannot create RINGBUF map") as ei:
        mk(T.RINGBUF, 0, 0, 1000, name="events")
    assert ei.value.errno == errno.EINVAL


# --- CRUD tables ----------------------------------------------------------------------------

# Each step: (op, key, value, flags, expected) where expected is an errno for update/delete,
# the value (or None) for lookup, and the next key (or None) for next.
HASH_STEPS = [
    ("lookup", 1, None, 0, None),
    ("delete", 1, None, 0, errno.ENOENT),
    ("update", 1, u64(10), BPF_EXIST, errno.ENOENT),
    ("update", 1, u64(10), BPF_NOEXIST, 0),
    ("update", 1, u64(11), BPF_NOEXIST, errno.EEXIST),
    ("update", 1, u64(12), BPF_EXIST, 0),
    ("lookup", 1, None, 0, u64(12)),
    ("update", 2, u64(20), BPF_ANY, 0),
    ("update", 3, u64(30), BPF_ANY, errno.E2BIG),        # full (max_entries 2)
    ("update", 2, u64(21), BPF_ANY, 0),                   # replacing works when full
    ("update", 2, u64(21), 3, errno.EINVAL),
    ("update", 2, u64(21), BPF_F_LOCK, errno.EINVAL),     # no bpf_spin_lock in the value
    ("delete", 1, None, 0, 0),
    ("update", 3, u64(30), BPF_ANY, 0),
    ("lookup", 3, None, 0, u64(30)),
]

ARRAY_STEPS = [
    ("lookup", 0, None, 0, u64(0)),
    ("lookup", 3, None, 0, None),                         # out of range
    ("update", 3, u64(1), BPF_ANY, errno.E2BIG),
    ("update", 1, u64(5), BPF_NOEXIST, errno.EEXIST),     # array elements always exist
    ("update", 1, u64(5), BPF_EXIST, 0),
    ("update", 1, u64(6), BPF_ANY, 0),
    ("update", 1, u64(6), 4 | 3, errno.EINVAL),
    ("lookup", 1, None, 0, u64(6)),
    ("delete", 1, None, 0, errno.EINVAL),
    ("next", None, None, 0, u32(0)),
    ("next", 0, None, 0, u32(1)),
    ("next", 2, None, 0, None),
    ("next", 7, None, 0, u32(0)),                          # missing key -> first
]

LPM_STEPS = [
    ("update", lpm_key(8, ipv4("10.0.0.0")), u32(8), BPF_ANY, 0),
    ("update", lpm_key(16, ipv4("10.1.0.0")), u32(16), BPF_ANY, 0),
    ("update", lpm_key(16, ipv4("10.1.0.0")), u32(17), BPF_NOEXIST, errno.EEXIST),
    ("update", lpm_key(24, ipv4("10.1.2.0")), u32(24), BPF_EXIST, errno.ENOENT),
    ("update", lpm_key(33, ipv4("10.1.2.0")), u32(24), BPF_ANY, errno.EINVAL),
    ("update", lpm_key(24, ipv4("10.1.2.0")), u32(24), BPF_ANY, 0),
    ("update", lpm_key(24, ipv4("10.9.2.0")), u32(99), BPF_ANY, errno.ENOSPC),  # full
    ("update", lpm_key(16, ipv4("10.1.0.0")), u32(18), BPF_ANY, 0),   # replace when full
    ("lookup", lpm_key(32, ipv4("10.1.2.3")), None, 0, u32(24)),
    ("lookup", lpm_key(32, ipv4("10.1.3.3")), None, 0, u32(18)),
    ("lookup", lpm_key(32, ipv4("10.2.3.3")), None, 0, u32(8)),
    ("lookup", lpm_key(32, ipv4("11.2.3.3")), None, 0, None),
    ("lookup", lpm_key(20, ipv4("10.1.2.3")), None, 0, u32(18)),     # prefixlen bounds the match
    ("next", None, None, 0, lpm_key(24, ipv4("10.1.2.0"))),           # postorder, leftmost first
    ("next", lpm_key(24, ipv4("10.1.2.0")), None, 0, lpm_key(16, ipv4("10.1.0.0"))),
    ("next", lpm_key(16, ipv4("10.1.0.0")), None, 0, lpm_key(8, ipv4("10.0.0.0"))),
    ("next", lpm_key(8, ipv4("10.0.0.0")), None, 0, None),
    ("delete", lpm_key(12, ipv4("10.0.0.0")), None, 0, errno.ENOENT),
    ("delete", lpm_key(16, ipv4("10.1.0.0")), None, 0, 0),
    ("lookup", lpm_key(32, ipv4("10.1.3.3")), None, 0, u32(8)),
    ("update", lpm_key(24, ipv4("10.9.2.0")), u32(99), BPF_ANY, 0),
    ("lookup", lpm_key(32, ipv4("10.9.2.7")), None, 0, u32(99)),
]

CRUD_TABLES = {
    "hash": (MapSpec("h", T.HASH, 4, 8, 2), HASH_STEPS),
    "array": (MapSpec("a", T.ARRAY, 4, 8, 3), ARRAY_STEPS),
    "lpm": (MapSpec("l", T.LPM_TRIE, 8, 4, 3, flags=BPF_F_NO_PREALLOC), LPM_STEPS),
}


def run_steps(m, steps):
    """Apply steps to a Map or KernelMap; return the observed results."""
    out = []
    for op, key, value, flags, _ in steps:
        if op == "lookup":
            out.append(m.lookup(key))
        elif op == "next":
            if hasattr(m, "get_next_key"):
                out.append(m.get_next_key(key))
            else:
                out.append(kernel_next_key(m, key))
        else:
            try:
                m.update(key, value, flags) if op == "update" else m.delete(key)
                out.append(0)
            except EbpfError as exc:
                out.append(exc.errno)
    return out


@pytest.mark.parametrize("table", sorted(CRUD_TABLES))
def test_crud_table(table):
    spec, steps = CRUD_TABLES[table]
    m = Map(spec)
    got = run_steps(m, steps)
    for step, result in zip(steps, got):
        assert result == step[4], f"{table}: {step[:2]} -> {result!r}, expected {step[4]!r}"


def test_error_messages():
    m = mk(T.HASH, 4, 8, 1, name="counts")
    m.update(1, u64(1))
    with pytest.raises(MapError, match=r"map 'counts': key already exists \(BPF_NOEXIST\)"):
        m.update(1, u64(1), BPF_NOEXIST)
    with pytest.raises(MapError, match=r"map 'counts': map is full \(max_entries 1\)"):
        m.update(2, u64(1))
    with pytest.raises(MapError, match=r"map 'counts': key is 3 bytes, expected 4 \(key_size\)"):
        m.lookup(b"abc")
    with pytest.raises(MapError, match=r"map 'counts': value is 4 bytes, expected 8 \(value_size\)"):
        m.update(1, b"abcd")
    a = mk(T.ARRAY, 4, 4, 2, name="arr")
    with pytest.raises(MapError, match=r"map 'arr': index 5 out of range \(max_entries 2\)") as ei:
        a.update(5, u32(0))
    assert ei.value.errno == errno.E2BIG


# --- hash details -----------------------------------------------------------------------------

@pytest.mark.parametrize("ks", [1, 4, 8, 12, 16, 33])
def test_hash_key_sizes(ks):
    m = mk(T.HASH, ks, 4, 64)
    keys = [bytes([(i * 7 + j) & 0xFF for j in range(ks)]) for i in range(64)]
    keys = list(dict.fromkeys(keys))
    for i, k in enumerate(keys):
        m.update(k, u32(i))
    assert len(m) == len(keys)
    assert sorted(m.keys()) == sorted(keys)
    for i, k in enumerate(keys):
        assert m.lookup(k) == u32(i)
    for k in keys[::2]:
        m.delete(k)
    assert sorted(m.keys()) == sorted(keys[1::2])


def test_hash_iteration_and_next_key():
    m = mk(T.HASH, 4, 4, 100)
    for i in range(100):
        m.update(i, u32(i * 2))
    assert sorted(int.from_bytes(k, "little") for k in m) == list(range(100))
    assert m.get_next_key(None) == m.get_next_key(u32(12345))    # missing key -> first
    assert dict(m.items())[u32(7)] == u32(14)
    assert 7 in m and 100 not in m
    m.clear()
    assert len(m) == 0 and m.keys() == [] and m.get_next_key(None) is None


def test_hash_reuse_after_delete():
    m = mk(T.HASH, 4, 4, 4)
    for rnd in range(50):
        for i in range(4):
            m.update(rnd * 4 + i, u32(rnd))
        assert len(m) == 4
        for i in range(4):
            m.delete(rnd * 4 + i)
    assert len(m) == 0


# --- LRU -------------------------------------------------------------------------------------

def test_lru_evicts_least_recently_used():
    m = mk(T.LRU_HASH, 4, 4, 4)
    for k in range(4):
        m.update(k, u32(k))
    # A program-side lookup refreshes key 0 (syscall lookups do not, as in the kernel).
    assert lib.ebpfjit_map_lookup_prog(m.ptr, u32(0), 0) != ffi.NULL
    m.update(4, u32(4))                     # evicts 1: oldest not referenced
    assert sorted(int.from_bytes(k, "little") for k in m) == [0, 2, 3, 4]
    m.update(5, u32(5))                     # 0 used its second chance: 2 goes next
    assert sorted(int.from_bytes(k, "little") for k in m) == [0, 3, 4, 5]
    m.update(3, u32(33))                    # an update counts as a use: 0 is now oldest
    m.update(6, u32(6))
    assert sorted(int.from_bytes(k, "little") for k in m) == [3, 4, 5, 6]
    assert m.lookup(3) == u32(33)


def test_lru_never_full_and_flags():
    m = mk(T.LRU_HASH, 4, 4, 8)
    for k in range(100):
        m.update(k, u32(k))
    assert len(m) == 8
    assert sorted(int.from_bytes(k, "little") for k in m) == list(range(92, 100))
    assert errno_of(m.update, 1000, u32(0), BPF_EXIST) == errno.ENOENT
    assert errno_of(m.update, 99, u32(0), BPF_NOEXIST) == errno.EEXIST


def test_lru_percpu():
    m = mk(T.LRU_PERCPU_HASH, 4, 4, 2, ncpus=3)
    m.update(1, [u32(1), u32(2), u32(3)])
    m.update(2, u32(9))
    m.update(3, u32(7))
    assert len(m) == 2 and m.lookup(1) is None
    assert m.lookup(3) == [u32(7)] * 3


# --- LPM -------------------------------------------------------------------------------------

def test_lpm_ipv4_default_route_and_overlaps():
    m = mk(T.LPM_TRIE, 8, 4, 16, BPF_F_NO_PREALLOC)
    routes = {("0.0.0.0", 0): 1, ("10.0.0.0", 8): 2, ("10.1.0.0", 16): 3, ("10.1.1.0", 24): 4,
              ("10.1.1.128", 25): 5, ("192.168.0.0", 16): 6, ("10.1.1.7", 32): 7}
    for (net, plen), v in routes.items():
        m.update(lpm_key(plen, ipv4(net)), u32(v))
    cases = {"10.1.1.7": 7, "10.1.1.8": 4, "10.1.1.200": 5, "10.1.2.1": 3, "10.200.0.1": 2,
             "192.168.255.1": 6, "8.8.8.8": 1, "192.169.0.1": 1}
    for ip, want in cases.items():
        assert m.lookup(lpm_key(32, ipv4(ip))) == u32(want), ip
    m.delete(lpm_key(0, ipv4("0.0.0.0")))
    assert m.lookup(lpm_key(32, ipv4("8.8.8.8"))) is None
    assert len(m) == len(routes) - 1
    assert len(m.keys()) == len(routes) - 1
    # Deleting in any order keeps the trie consistent.
    for (net, plen) in sorted(routes, key=lambda r: -r[1]):
        if plen:
            m.delete(lpm_key(plen, ipv4(net)))
    assert len(m) == 0 and m.keys() == []


def test_lpm_ipv6():
    m = mk(T.LPM_TRIE, 20, 8, 8, BPF_F_NO_PREALLOC)
    def v6(prefix: bytes) -> bytes:
        return prefix.ljust(16, b"\0")
    m.update(lpm_key(32, v6(bytes.fromhex("20010db8"))), u64(1))
    m.update(lpm_key(48, v6(bytes.fromhex("20010db8abcd"))), u64(2))
    m.update(lpm_key(128, bytes.fromhex("20010db8abcd00000000000000000001")), u64(3))
    m.update(lpm_key(0, bytes(16)), u64(0))
    assert m.lookup(lpm_key(128, bytes.fromhex("20010db8abcd00000000000000000001"))) == u64(3)
    assert m.lookup(lpm_key(128, bytes.fromhex("20010db8abcd00000000000000000002"))) == u64(2)
    assert m.lookup(lpm_key(128, bytes.fromhex("20010db8ffff00000000000000000002"))) == u64(1)
    assert m.lookup(lpm_key(128, bytes.fromhex("fe800000000000000000000000000001"))) == u64(0)


# --- queue / stack ---------------------------------------------------------------------------

@pytest.mark.parametrize("type_, order", [(T.QUEUE, [1, 2, 3]), (T.STACK, [3, 2, 1])])
def test_queue_stack_order(type_, order):
    m = mk(type_, 0, 4, 3)
    assert m.pop() is None and m.peek() is None
    for v in (1, 2, 3):
        m.push(u32(v))
    assert len(m) == 3
    assert errno_of(m.push, u32(4)) == errno.E2BIG
    assert errno_of(m.push, u32(4), BPF_NOEXIST) == errno.EINVAL
    assert m.peek() == u32(order[0])
    assert [U32.unpack(m.pop())[0] for _ in range(3)] == order
    assert m.pop() is None
    assert errno_of(m.delete, None) == errno.EINVAL


@pytest.mark.parametrize("type_, order", [(T.QUEUE, [2, 3, 4]), (T.STACK, [4, 3, 2])])
def test_queue_stack_overwrite_oldest(type_, order):
    m = mk(type_, 0, 4, 3)
    for v in (1, 2, 3, 4):
        m.push(u32(v), BPF_EXIST)
    assert [U32.unpack(m.pop())[0] for _ in range(3)] == order


def test_queue_wraps_many_times():
    m = mk(T.QUEUE, 0, 8, 40)     # 100 pushes go round the 41-slot ring twice
    seen = []
    for i in range(100):
        m.push(u64(i))
        if i % 3 == 2:
            seen.append(U64.unpack(m.pop())[0])
            seen.append(U64.unpack(m.pop())[0])
    while (v := m.pop()) is not None:
        seen.append(U64.unpack(v)[0])
    assert seen == list(range(100))


# --- ring buffer -----------------------------------------------------------------------------

def test_ringbuf_reserve_submit_discard_order():
    m = mk(T.RINGBUF, 0, 0, 4096)
    p1 = lib.ebpfjit_ringbuf_reserve(m.ptr, 5, 0)
    p2 = lib.ebpfjit_ringbuf_reserve(m.ptr, 8, 0)
    p3 = lib.ebpfjit_ringbuf_reserve(m.ptr, 3, 0)
    assert lib.ebpfjit_ringbuf_reserve(m.ptr, 8, 1) == ffi.NULL     # flags must be 0
    ffi.memmove(p1, b"first", 5)
    ffi.memmove(p2, b"second!!", 8)
    ffi.memmove(p3, b"3rd", 3)
    # kernel record layout: 8-byte header {len | BUSY, pg_off}, records 8-byte aligned
    hdr = ffi.cast("uint32_t *", ffi.cast("uint8_t *", p1) - 8)
    assert hdr[0] == 5 | (1 << 31)
    assert int(ffi.cast("uintptr_t", p2)) - int(ffi.cast("uintptr_t", p1)) == 16
    assert m.query(BPF_RB_AVAIL_DATA) == 16 + 16 + 16
    lib.ebpfjit_ringbuf_commit(m.ptr, p2, 0, 0)
    assert m.poll() == []                      # the oldest record is still busy
    lib.ebpfjit_ringbuf_commit(m.ptr, p1, 0, 1)  # discard
    lib.ebpfjit_ringbuf_commit(m.ptr, p3, 0, 0)
    assert hdr[0] == 5 | (1 << 30)
    assert m.poll() == [b"second!!", b"3rd"]
    assert m.query(BPF_RB_AVAIL_DATA) == 0
    assert m.query(BPF_RB_CONS_POS) == m.query(BPF_RB_PROD_POS) == 48
    assert m.query(BPF_RB_RING_SIZE) == 4096


def test_ringbuf_full_and_wraparound():
    m = mk(T.RINGBUF, 0, 0, 4096)
    rec = bytes(range(200))
    n = 0
    while True:
        try:
            m.output(rec[:100] + bytes([n & 0xFF]))
        except MapError as exc:
            assert exc.errno == errno.EAGAIN
            break
        n += 1
    # 101 bytes + header = 112 per record; the producer stays < size ahead of the consumer.
    assert n == 4095 // 112
    assert errno_of(m.output, b"x", 8) == errno.EINVAL
    got = []
    total = 0
    for rnd in range(200):      # many laps around the ring, records crossing its end
        size = 1 + (rnd * 37) % 300
        m.output(bytes([rnd & 0xFF]) * size)
        total += 1
        got.extend(m.poll())
    assert len(got) == n + total
    assert got[:n] == [rec[:100] + bytes([i]) for i in range(n)]
    assert all(r == bytes([i & 0xFF]) * (1 + (i * 37) % 300) for i, r in enumerate(got[n:]))
    assert m.query(BPF_RB_PROD_POS) > 4096 * 3


def test_ringbuf_consume_callback_stop():
    m = mk(T.RINGBUF, 0, 0, 4096)
    for i in range(5):
        m.output(u32(i))
    seen = []
    assert m.consume(lambda r: seen.append(r) or (-1 if len(seen) == 2 else 0)) == 2
    assert list(m) == [u32(2), u32(3), u32(4)]
    with pytest.raises(MapError):
        m.lookup(0)


# --- per-CPU ---------------------------------------------------------------------------------

def test_percpu_array_slots():
    m = mk(T.PERCPU_ARRAY, 4, 12, 2, ncpus=4)
    assert m.lookup(0) == [bytes(12)] * 4
    m.update(1, [bytes([i]) * 12 for i in range(4)])
    assert m.lookup(1) == [bytes([i]) * 12 for i in range(4)]
    # A program on CPU slot 2 sees (and writes) its own slot only.
    p = lib.ebpfjit_map_lookup_prog(m.ptr, u32(1), 2)
    assert bytes(ffi.buffer(p, 12)) == bytes([2]) * 12
    assert lib.ebpfjit_map_update_prog(m.ptr, u32(1), b"Z" * 12, 0, 3) == 0
    assert m.lookup(1)[3] == b"Z" * 12 and m.lookup(1)[2] == bytes([2]) * 12
    with pytest.raises(MapError, match="3 per-CPU values, expected 4"):
        m.update(0, [bytes(12)] * 3)
    assert errno_of(m.update, 0, bytes(12), BPF_F_LOCK) == errno.EINVAL


def test_percpu_hash_program_update_zeroes_other_slots():
    m = mk(T.PERCPU_HASH, 4, 4, 4, ncpus=3)
    assert lib.ebpfjit_map_update_prog(m.ptr, u32(5), u32(77), 0, 1) == 0
    assert m.lookup(5) == [u32(0), u32(77), u32(0)]
    assert lib.ebpfjit_map_update_prog(m.ptr, u32(5), u32(78), 0, 0) == 0
    assert m.lookup(5) == [u32(78), u32(77), u32(0)]
    assert m.dump() == [{"key": ["0x05", "0x00", "0x00", "0x00"],
                         "values": [{"cpu": 0, "value": ["0x4e", "0x00", "0x00", "0x00"]},
                                    {"cpu": 1, "value": ["0x4d", "0x00", "0x00", "0x00"]},
                                    {"cpu": 2, "value": ["0x00", "0x00", "0x00", "0x00"]}]}]


# --- spin lock values (BPF_F_LOCK) -------------------------------------------------------------

def test_f_lock_copies_around_the_lock_word():
    m = mk(T.HASH, 4, 16, 4, spin_lock_off=0)
    m.update(1, b"\xff" * 16, BPF_F_LOCK)
    assert m.lookup(1, BPF_F_LOCK) == bytes(4) + b"\xff" * 12
    assert m.lookup(1) == bytes(4) + b"\xff" * 12
    assert errno_of(lambda: mk(T.PERCPU_HASH, 4, 16, 4, spin_lock_off=0)) == errno.EINVAL


# --- map-in-map and prog_array -----------------------------------------------------------------

def test_array_of_maps():
    inner_spec = MapSpec("inner", T.ARRAY, 4, 8, 8)
    outer = Map(MapSpec("outer", T.ARRAY_OF_MAPS, 4, 4, 4, inner=inner_spec))
    a, b = Map(inner_spec), Map(MapSpec("b", T.ARRAY, 4, 8, 8))
    outer.set_inner(0, a)
    outer.set_inner(3, b)
    assert outer.get_inner(0) is a and outer.lookup(3) is b and outer.lookup(1) is None
    assert lib.ebpfjit_map_lookup_prog(outer.ptr, u32(3), 0) == b.ptr
    wrong = mk(T.ARRAY, 4, 8, 9, name="wrong")
    with pytest.raises(MapError, match="does not match the inner map template") as ei:
        outer.set_inner(1, wrong)
    assert ei.value.errno == errno.EINVAL
    assert errno_of(outer.set_inner, 4, a) == errno.E2BIG
    assert errno_of(outer.set_inner, 1, a, BPF_NOEXIST) == errno.EINVAL
    outer.delete(0)
    assert outer.lookup(0) is None and errno_of(outer.delete, 0) == errno.ENOENT
    assert len(outer.keys()) == 4
    with pytest.raises(MapError, match="use set_inner"):
        outer.update(1, u32(3))


def test_hash_of_maps():
    inner_spec = MapSpec("inner", T.HASH, 2, 4, 32)
    outer = Map(MapSpec("outer", T.HASH_OF_MAPS, 4, 4, 2, inner=inner_spec))
    maps = [Map(inner_spec) for _ in range(3)]
    outer.set_inner(10, maps[0])
    outer.set_inner(20, maps[1], BPF_NOEXIST)
    assert errno_of(outer.set_inner, 30, maps[2]) == errno.E2BIG
    assert errno_of(outer.set_inner, 20, maps[2], BPF_NOEXIST) == errno.EEXIST
    assert outer.lookup(20) is maps[1]
    assert lib.ebpfjit_map_lookup_prog(outer.ptr, u32(10), 0) == maps[0].ptr
    assert sorted(outer.keys()) == [u32(10), u32(20)]
    with pytest.raises(MapError):
        outer.set_inner(10, outer)             # no map-in-map inside map-in-map
    outer.set_inner(10, None)
    assert 10 not in outer and 20 in outer


def test_prog_array_slots():
    pa = mk(T.PROG_ARRAY, 4, 4, 4, name="jmp")
    prog = ffi.new("struct ebpfjit_prog *")
    pa.set_program(2, prog)
    assert pa.get_program(2) is prog and pa.lookup(0) is None
    assert lib.ebpfjit_map_get_ptr(pa.ptr, u32(2)) == prog
    assert lib.ebpfjit_map_lookup_prog(pa.ptr, u32(2), 0) == ffi.NULL   # never exposed
    with pytest.raises(MapError, match="index 4 out of range"):
        pa.set_program(4, prog)
    with pytest.raises(MapError, match="set_program"):
        pa.update(0, u32(1))
    pa.delete(2)
    assert errno_of(pa.delete, 2) == errno.ENOENT
    assert errno_of(pa.delete, 9) == errno.E2BIG


# --- typed views -----------------------------------------------------------------------------

class FakeBtf:
    def format_value(self, type_id, data):
        return {"type": type_id, "n": int.from_bytes(data, "little")}


def test_typed_lookup_and_dump():
    spec = MapSpec("counts", T.HASH, 4, 8, 4, key_type_id=3, value_type_id=5)
    m = Map(spec, btf=FakeBtf())
    m.update(7, u64(42))
    assert m.lookup_typed(7) == {"type": 5, "n": 42}
    assert m.dump() == [{"key": ["0x07", "0x00", "0x00", "0x00"],
                         "value": ["0x2a"] + ["0x00"] * 7,
                         "formatted": {"key": {"type": 3, "n": 7},
                                       "value": {"type": 5, "n": 42}}}]
    assert Map(MapSpec("raw", T.ARRAY, 4, 1, 1)).lookup_typed(0) == b"\0"


def test_global_data_initial_bytes():
    m = Map(MapSpec(".data", T.ARRAY, 4, 6, 1, initial=b"hi"))
    assert m.lookup(0) == b"hi\0\0\0\0"
    assert m.ptr.base.values == m.ptr.arena


# --- threads ---------------------------------------------------------------------------------

def test_threads_hammer_hash():
    m = mk(T.HASH, 4, 8, 1024)
    nthreads, per = 4, 3000
    errors = []

    def work(t):
        try:
            base = t * 100000
            for i in range(per):
                k = base + (i % 200)
                m.update(k, u64(i))
                assert m.lookup(k) == u64(i)
                if i % 3 == 2:
                    m.delete(k)
                    assert m.lookup(k) is None
            for i in range(200):
                m.update(base + i, u64(t))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(nthreads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(m) == nthreads * 200
    keys = m.keys()
    assert len(keys) == len(set(keys)) == nthreads * 200
    for t in range(nthreads):
        assert all(m.lookup(t * 100000 + i) == u64(t) for i in range(200))


def test_threads_queue_and_lru():
    q = mk(T.QUEUE, 0, 8, 100000)
    lru = mk(T.LRU_HASH, 4, 4, 64)

    def producer(t):
        for i in range(5000):
            q.push(u64(t * 1000000 + i))
            lru.update((t * 7919 + i) % 500, u32(i))
    threads = [threading.Thread(target=producer, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    got = []
    while (v := q.pop()) is not None:
        got.append(U64.unpack(v)[0])
    assert len(got) == 20000
    for t in range(4):
        mine = [v for v in got if v // 1000000 == t]
        assert mine == sorted(mine) and len(mine) == 5000
    assert len(lru) == 64 and len(lru.keys()) == 64


# --- helpers through programs (both engines) ------------------------------------------------------

runtime = pytest.importorskip("ebpfjit.runtime")


def ins(opcode, dst=0, src=0, off=0, imm=0) -> bytes:
    return Instruction(opcode, dst, src, off, imm).encode()


def ld_map(reg, index) -> bytes:
    return ins(0x18, reg, 1, 0, index)         # lddw reg, map[index] (src=1)


def mov(dst, imm) -> bytes:
    return ins(0xB7, dst, 0, 0, imm)


def movr(dst, src) -> bytes:
    return ins(0xBF, dst, src)


def addi(dst, imm) -> bytes:
    return ins(0x07, dst, 0, 0, imm)


def stw(off, imm) -> bytes:
    return ins(0x62, 10, 0, off, imm)          # *(u32 *)(r10 + off) = imm


def stdw(off, imm) -> bytes:
    return ins(0x7A, 10, 0, off, imm)          # *(u64 *)(r10 + off) = imm


def call(helper) -> bytes:
    return ins(0x85, 0, 0, 0, helper)


def jeq(dst, imm, off) -> bytes:
    return ins(0x15, dst, 0, off, imm)


def ldxdw(dst, src, off=0) -> bytes:
    return ins(0x79, dst, src, off)


def stxdw(dst, src, off=0) -> bytes:
    return ins(0x7B, dst, src, off)


EXIT = ins(0x95)


def _engines():
    engines = ["interp"]
    try:
        from ebpfjit.jit import compile as jit
        if hasattr(runtime.LoadedProgram, "set_jit_function") and hasattr(jit, "compile_program"):
            engines.append("jit")
    except Exception:  # noqa: BLE001 - no LLVM: interpreter only
        pass
    return engines


ENGINES = _engines()


def Harness(maps):
    """The shared harness with the map helpers only, `maps` attached (lddw imm = index)."""
    return engines.Harness(maps, builtin_helpers=False)


LOOKUP_INC = (  # r0 = ++*lookup(map0, key 1) or 0xffff when missing
    stw(-4, 1) + ld_map(1, 0) + movr(2, 10) + addi(2, -4) + call(1)
    + jeq(0, 0, 5) + ldxdw(1, 0) + addi(1, 1) + stxdw(0, 1) + movr(0, 1) + EXIT
    + mov(0, 0xFFFF) + EXIT
)


def update_prog(key, value, flags) -> bytes:
    return (stw(-4, key) + stdw(-16, value) + ld_map(1, 0) + movr(2, 10) + addi(2, -4)
            + movr(3, 10) + addi(3, -16) + mov(4, flags) + call(2) + EXIT)


def delete_prog(key) -> bytes:
    return stw(-4, key) + ld_map(1, 0) + movr(2, 10) + addi(2, -4) + call(3) + EXIT


def s64(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


@pytest.mark.parametrize("engine", ENGINES)
def test_helpers_hash_crud(engine):
    m = mk(T.HASH, 4, 8, 2)
    h = Harness([m])
    assert h.run(LOOKUP_INC, engine) == 0xFFFF
    assert h.run(update_prog(1, 41, BPF_NOEXIST), engine) == 0
    assert s64(h.run(update_prog(1, 41, BPF_NOEXIST), engine)) == -errno.EEXIST
    assert h.run(LOOKUP_INC, engine) == 42          # the program wrote through the pointer
    assert m.lookup(1) == u64(42)
    assert h.run(update_prog(2, 0, BPF_ANY), engine) == 0
    assert s64(h.run(update_prog(3, 0, BPF_ANY), engine)) == -errno.E2BIG
    assert s64(h.run(update_prog(1, 0, 9), engine)) == -errno.EINVAL
    assert h.run(delete_prog(1), engine) == 0
    assert s64(h.run(delete_prog(1), engine)) == -errno.ENOENT
    assert 1 not in m and len(m) == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_helpers_array_and_rodata(engine):
    rw = mk(T.ARRAY, 4, 8, 2)
    h = Harness([rw])
    assert h.run(LOOKUP_INC, engine) == 1
    assert h.run(LOOKUP_INC, engine) == 2
    assert rw.lookup(1) == u64(2)
    ro = mk(T.ARRAY, 4, 8, 2, BPF_F_RDONLY_PROG)
    h2 = Harness([ro])
    with pytest.raises(ExecutionError) as ei:    # the value region is read-only for programs
        h2.run(LOOKUP_INC, engine)
    assert ei.value.kind == "oob_store"
    assert s64(h2.run(update_prog(0, 1, 0), engine)) == -errno.EPERM


@pytest.mark.parametrize("engine", ENGINES)
def test_helpers_bad_arguments_fault(engine):
    m = mk(T.HASH, 4, 8, 2)
    h = Harness([m])
    bad_map = mov(1, 0x1234) + stw(-4, 1) + movr(2, 10) + addi(2, -4) + call(1) + EXIT
    with pytest.raises(ExecutionError) as ei:
        h.run(bad_map, engine)
    assert ei.value.kind == "helper" and ei.value.pc == 4
    bad_key = ld_map(1, 0) + mov(2, 16) + call(1) + EXIT
    with pytest.raises(ExecutionError) as ei:
        h.run(bad_key, engine)
    assert ei.value.kind == "helper" and ei.value.addr == 16
    # a key that straddles the top of the stack
    straddle = ld_map(1, 0) + movr(2, 10) + addi(2, -2) + call(1) + EXIT
    with pytest.raises(ExecutionError):
        h.run(straddle, engine)
    # a value that is read-only memory (the program's input bytes are writable; rodata is not)
    bad_value = stw(-4, 1) + ld_map(1, 0) + movr(2, 10) + addi(2, -4) + mov(3, 8) + call(2) + EXIT
    with pytest.raises(ExecutionError):
        h.run(bad_value, engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_helpers_queue_push_pop(engine):
    q = mk(T.QUEUE, 0, 8, 2)
    h = Harness([q])
    push = stdw(-8, 7) + ld_map(1, 0) + movr(2, 10) + addi(2, -8) + mov(3, 0) + call(87) + EXIT
    pop = (ld_map(1, 0) + movr(2, 10) + addi(2, -8) + call(88)
           + jeq(0, 0, 1) + EXIT + ldxdw(0, 10, -8) + EXIT)
    assert h.run(push, engine) == 0
    assert h.run(push, engine) == 0
    assert s64(h.run(push, engine)) == -errno.E2BIG
    assert q.pop() == u64(7)
    assert h.run(pop, engine) == 7
    assert s64(h.run(pop, engine)) == -errno.ENOENT
    hm = mk(T.HASH, 4, 8, 2)
    with pytest.raises(ExecutionError):     # push into a hash map is a bad map argument
        Harness([hm]).run(push, engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_helpers_ringbuf(engine):
    rb = mk(T.RINGBUF, 0, 0, 4096)
    h = Harness([rb])
    reserve_submit = (ld_map(1, 0) + mov(2, 8) + mov(3, 0) + call(131)
                      + jeq(0, 0, 6) + stdw(-8, 0x55) + ldxdw(1, 10, -8) + stxdw(0, 1)
                      + movr(1, 0) + mov(2, 0) + call(132) + mov(0, 1) + EXIT)
    reserve_discard = (ld_map(1, 0) + mov(2, 8) + mov(3, 0) + call(131)
                       + jeq(0, 0, 3) + movr(1, 0) + mov(2, 0) + call(133) + mov(0, 2) + EXIT)
    output = (stdw(-8, 0x77) + ld_map(1, 0) + movr(2, 10) + addi(2, -8) + mov(3, 8) + mov(4, 0)
              + call(130) + EXIT)
    query = ld_map(1, 0) + mov(2, 0) + call(134) + EXIT
    assert h.run(reserve_submit, engine) == 1
    assert h.run(reserve_discard, engine) == 2
    assert h.run(output, engine) == 0
    assert h.run(query, engine) == 48
    assert rb.poll() == [u64(0x55), u64(0x77)]
    double_submit = mov(1, 0) + addi(1, 8) + call(132) + EXIT
    with pytest.raises(ExecutionError):
        h.run(double_submit, engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_helpers_tail_call(engine):
    pa = mk(T.PROG_ARRAY, 4, 4, 2, name="jmp")
    h = Harness([pa])
    caller = ld_map(2, 0) + mov(3, 1) + call(12) + mov(0, 99) + EXIT
    target = h.load(mov(0, 42) + EXIT, engine)
    assert h.run(caller, engine) == 99           # empty slot: the program continues
    pa.set_program(1, target)
    assert h.run(caller, engine) == 42
    out_of_range = ld_map(2, 0) + mov(3, 7) + call(12) + EXIT
    assert s64(h.run(out_of_range, engine)) == -errno.ENOENT
    # a program that tail-calls itself stops after EBPFJIT_MAX_TAIL_CALLS
    loop = h.load(ld_map(2, 0) + mov(3, 0) + call(12) + mov(0, 7) + EXIT, engine)
    pa.set_program(0, loop)
    assert loop.run(b"", engine=engine) == 7


@pytest.mark.parametrize("engine", ENGINES)
def test_helpers_map_in_map(engine):
    inner_spec = MapSpec("inner", T.ARRAY, 4, 8, 4)
    outer = Map(MapSpec("outer", T.ARRAY_OF_MAPS, 4, 4, 2, inner=inner_spec))
    h = Harness([outer])
    inner = Map(inner_spec)
    outer.set_inner(0, inner)       # set after attach: the inner arena is registered then
    prog = (stw(-4, 0) + ld_map(1, 0) + movr(2, 10) + addi(2, -4) + call(1)
            + jeq(0, 0, 8) + movr(1, 0) + stw(-4, 2) + movr(2, 10) + addi(2, -4) + call(1)
            + jeq(0, 0, 3) + stdw(-16, 5) + ldxdw(1, 10, -16) + stxdw(0, 1) + mov(0, 1) + EXIT)
    assert h.run(prog, engine) == 1
    assert inner.lookup(2) == u64(5)


@pytest.mark.parametrize("engine", ENGINES)
def test_helpers_spin_lock(engine):
    m = mk(T.ARRAY, 4, 16, 1, spin_lock_off=0)
    h = Harness([m])
    prog = (stw(-4, 0) + ld_map(1, 0) + movr(2, 10) + addi(2, -4) + call(1)
            + jeq(0, 0, 9) + movr(6, 0) + movr(1, 6) + call(93)
            + ldxdw(1, 6, 8) + addi(1, 3) + stxdw(6, 1, 8) + movr(1, 6) + call(94) + mov(0, 1)
            + EXIT)
    assert h.run(prog, engine) == 1
    assert h.run(prog, engine) == 1
    assert m.lookup(0) == bytes(8) + u64(6)
    misaligned = stw(-8, 0) + movr(1, 10) + addi(1, -6) + call(93) + EXIT
    with pytest.raises(ExecutionError):
        h.run(misaligned, engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_helpers_for_each_map_elem(engine):
    m = mk(T.ARRAY, 4, 8, 4)
    for i in range(4):
        m.update(i, u64(i + 1))
    h = Harness([m])
    # main: for_each(map, cb, ctx=0, 0); cb(map, key, value, ctx): *value *= 10; stop at key 2
    code = (ld_map(1, 0) + ins(0x18, 2, 4, 0, 5) + mov(3, 0) + mov(4, 0) + call(164) + EXIT
            + ldxdw(4, 3) + ins(0x27, 4, 0, 0, 10) + stxdw(3, 4)
            + ins(0x61, 5, 2) + mov(0, 0) + jeq(5, 2, 1) + EXIT + mov(0, 1) + EXIT)
    # lddw src=4 at pc 2: the callback is at pc 2 + 1 + 5 = 8
    assert h.run(code, engine) == 3
    assert [U64.unpack(m.lookup(i))[0] for i in range(4)] == [10, 20, 30, 4]


# --- the kernel as oracle ----------------------------------------------------------------------

# `kernel` is the shared fixture of tests/conftest.py (skips, saying why, without bpf(2)).


def kernel_next_key(km, key):
    """get_next_key for a KernelMap (None at the end), through its fd."""
    from ebpfjit.oracle import bpf_syscall, kernel
    ffi_, lib_ = bpf_syscall.ffi_lib()
    attr = ffi_.new("struct ebpfjit_bpf_map_elem_attr *")
    attr.map_fd = km.fd
    if isinstance(key, int):
        key = key.to_bytes(km.key_size, "little")
    kbuf = ffi_.new("char[]", bytes(key) if key is not None else b"\0")
    nbuf = ffi_.new("char[]", max(km.key_size, 1))
    attr.key = int(ffi_.cast("uintptr_t", kbuf)) if key is not None else 0
    attr.value = int(ffi_.cast("uintptr_t", nbuf))
    rc = lib_.ebpfjit_sys_bpf(kernel.Cmd.MAP_GET_NEXT_KEY, attr, ffi_.sizeof(attr[0]))
    if rc == -errno.ENOENT:
        return None
    assert rc == 0, rc
    return bytes(ffi_.buffer(nbuf, km.key_size))


@pytest.mark.kernel
@pytest.mark.parametrize("table", sorted(CRUD_TABLES))
def test_crud_table_matches_kernel(table, kernel):
    spec, steps = CRUD_TABLES[table]
    ours = run_steps(Map(spec), steps)
    with kernel.KernelMap(spec) as km:
        theirs = run_steps(km, steps)
    assert ours == theirs


@pytest.mark.kernel
# KernelMap fixes up RINGBUF/PROG_ARRAY sizes as libbpf does, so those cases are ours alone.
@pytest.mark.parametrize("case", [c for c in CREATE_CASES if c[2] < 1000
                                  and c[0] not in (T.RINGBUF, T.PROG_ARRAY)], ids=_create_id)
def test_create_validation_matches_kernel(case, kernel):
    type_, ks, vs, n, flags, _ = case
    spec = MapSpec("probe", type_, ks, vs, n, flags=flags)
    try:
        kernel.KernelMap(spec).close()
        theirs = 0
    except EbpfError as exc:
        theirs = exc.errno
    assert errno_of(Map, spec) == theirs


@pytest.mark.kernel
@pytest.mark.parametrize("type_", [T.QUEUE, T.STACK])
def test_queue_stack_match_kernel(type_, kernel):
    spec = MapSpec("qs", type_, 0, 4, 3)
    ours, km = Map(spec), kernel.KernelMap(spec)
    try:
        for flags, v in [(0, 1), (0, 2), (0, 3), (0, 4), (BPF_EXIST, 5), (BPF_NOEXIST, 6)]:
            assert errno_of(ours.push, u32(v), flags) == _kerrno(km.update, None, u32(v), flags)
        assert ours.peek() == km.lookup(None)
        assert _kerrno(km.delete, None) == errno_of(ours.delete, None)
    finally:
        km.close()


def _kerrno(fn, *args):
    try:
        fn(*args)
    except EbpfError as exc:
        return exc.errno
    return 0


@pytest.mark.kernel
def test_lpm_lookups_match_kernel(kernel):
    spec = MapSpec("lpm", T.LPM_TRIE, 8, 4, 32, flags=BPF_F_NO_PREALLOC)
    ours = Map(spec)
    routes = [("0.0.0.0", 0), ("10.0.0.0", 8), ("10.128.0.0", 9), ("10.1.0.0", 16),
              ("10.1.1.0", 24), ("10.1.1.128", 25), ("172.16.0.0", 12), ("10.1.1.9", 32)]
    with kernel.KernelMap(spec) as km:
        for i, (net, plen) in enumerate(routes):
            ours.update(lpm_key(plen, ipv4(net)), u32(i))
            km.update(lpm_key(plen, ipv4(net)), u32(i))
        for ip in ["10.1.1.9", "10.1.1.10", "10.1.1.200", "10.1.9.9", "10.200.0.1", "10.2.0.1",
                   "172.31.255.255", "172.32.0.0", "1.2.3.4"]:
            for plen in (32, 24, 12, 0):
                key = lpm_key(plen, ipv4(ip))
                assert ours.lookup(key) == km.lookup(key), (ip, plen)
        assert ours.keys() == list(km.keys())       # same trie, same postorder
        for net, plen in routes[::3]:
            ours.delete(lpm_key(plen, ipv4(net)))
            km.delete(lpm_key(plen, ipv4(net)))
        assert ours.keys() == list(km.keys())


@pytest.mark.kernel
def test_dump_format_matches_bpftool(tmp_path, kernel):
    if not shutil.which("bpftool"):
        pytest.skip("bpftool not installed")
    for spec, entries in [
        (MapSpec("dumpa", T.ARRAY, 4, 3, 2), {0: b"abc", 1: b"\x00\xff\x10"}),
        (MapSpec("dumpp", T.PERCPU_ARRAY, 4, 4, 1), {0: u32(0x01020304)}),
    ]:
        ncpus = kernel.possible_cpus()
        ours = Map(spec, ncpus=ncpus)
        with kernel.KernelMap(spec) as km:
            for k, v in entries.items():
                ours.update(k, v)
                km.update(k, v)
            info = subprocess.run(["bpftool", "-j", "map", "show"], capture_output=True,
                                  text=True, check=True)
            ids = [m["id"] for m in json.loads(info.stdout) if m.get("name") == km.name]
            out = subprocess.run(["bpftool", "-j", "map", "dump", "id", str(ids[-1])],
                                 capture_output=True, text=True, check=True)
        theirs = json.loads(out.stdout)
        for entry in theirs:
            entry.pop("formatted", None)
        assert ours.dump() == theirs
