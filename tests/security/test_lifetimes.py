"""Lifetimes of what a running program can reach (issue 10, findings 3 and 4), on both engines:
an inner map or PROG_ARRAY program replaced while a run uses it lives until that run ends (the
kernel's RCU guarantee); a freed map's memory is no longer a region programs may touch; a full
region table is an error; and a two-thread stress test of replacements under running programs.

The clang object tests/progs/map_lifetimes.c calls bpf_ktime_get_ns() where the tests hook in a
Python helper that replaces maps or programs in the middle of the run."""
from __future__ import annotations

import dataclasses
import errno
import gc
import pathlib
import struct
import threading
import weakref

import pytest

from ebpfjit import runtime
from ebpfjit.api.loader import load
from ebpfjit.errors import ExecutionError, MapError
from ebpfjit.jit import compile as jit
from ebpfjit.objects.spec import MapType, ProgType
from ebpfjit.runtime import Env, LoadedProgram
from ebpfjit.runtime.maps import Map

ENGINES = ("interp", "jit")
OBJ = pathlib.Path(__file__).resolve().parents[1] / "progs" / "map_lifetimes.o"
PKT = bytes(64)
XDP_ABORTED, XDP_DROP, XDP_PASS = 0, 1, 2
HOOK = 5    # bpf_ktime_get_ns: the programs' hook


def u64(b) -> int:
    return struct.unpack("<Q", b)[0]


def p64(v: int) -> bytes:
    return struct.pack("<Q", v)


def live_region(env_ptr, base: int) -> bool:
    return any(env_ptr.regions[i].len and env_ptr.regions[i].base == base
               for i in range(env_ptr.nregions))


def released(ref) -> bool:
    gc.collect()
    runtime.reclaim()
    gc.collect()        # a LoadedProgram is a reference cycle (its fast run closure)
    return ref() is None


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("outer_name,prog", [("outer", "write_after_replace"),
                                             ("outer_hash", "write_after_replace_hash")])
def test_inner_map_replaced_mid_run_lives_until_the_run_ends(engine, outer_name, prog):
    o = load(OBJ)
    outer = o.maps[outer_name]
    old = Map(outer.spec.inner)
    old.update(0, p64(100))
    outer.set_inner(0, old)
    old_ref = weakref.ref(old)
    del old
    new = Map(outer.spec.inner)
    seen = []

    def hook(*args):
        if not seen:
            outer.set_inner(0, new)     # the program still holds a value pointer into the old
            gc.collect()
            seen.append(old_ref() is not None)
        else:
            m = old_ref()
            seen.append(None if m is None else u64(m[0]))
        return 0

    o.env.register_helper(HOOK, hook)
    assert o.programs[prog].run(PKT, engine=engine) == 0
    assert seen == [True, 107]          # alive, and the write landed in it
    assert u64(new[0]) == 0
    assert released(old_ref)            # freed once the run has ended


@pytest.mark.parametrize("engine", ENGINES)
def test_saved_pointer_into_a_freed_inner_map_faults(engine):
    o = load(OBJ)
    outer, bss = o.maps["outer"], o.maps[".bss"]
    spec = outer.spec.inner
    kept = Map(spec)
    outer.set_inner(0, kept)
    assert o.programs["save_pointer"].run(PKT, engine=engine) == 0
    # Removed but alive (the caller holds it): the saved pointer still reaches live memory.
    outer.set_inner(0, Map(spec))
    assert o.programs["write_saved"].run(PKT, engine=engine) == 0
    assert u64(kept[1]) == 0x41
    # Freed: its memory is no longer a region, the write faults instead of corrupting the heap.
    outer.set_inner(0, kept)
    assert o.programs["save_pointer"].run(PKT, engine=engine) == 0
    saved = u64(bss[0])
    ref = weakref.ref(kept)
    del kept
    outer.set_inner(0, Map(spec))
    assert released(ref)
    assert not live_region(o.env.ptr, saved - 8)
    with pytest.raises(ExecutionError) as ei:
        o.programs["write_saved"].run(PKT, engine=engine)
    assert ei.value.kind == "oob_store" and ei.value.addr == saved


def test_freed_map_is_unregistered_from_every_env():
    envs = [Env() for _ in range(3)]
    m = Map.create(MapType.ARRAY, 4, 8, 4)
    for env in envs:
        m.attach(env)
    arena = int(runtime.ffi.cast("uintptr_t", m.ptr.arena))
    assert all(live_region(env.ptr, arena) for env in envs)
    del m
    gc.collect()
    runtime.reclaim()
    assert not any(live_region(env.ptr, arena) for env in envs)


def test_map_attached_to_too_many_envs_is_an_error():
    m = Map.create(MapType.ARRAY, 4, 8, 4, name="shared")
    envs = [Env() for _ in range(runtime.lib.EBPFJIT_MAP_MAX_ENVS)]
    for env in envs:
        m.attach(env)
    with pytest.raises(MapError, match="'shared'.*too many envs") as ei:
        m.attach(Env())
    assert ei.value.errno == errno.EMLINK


@pytest.mark.parametrize("engine", ENGINES)
def test_running_tail_call_target_replaced_mid_run_lives_until_the_run_ends(engine):
    o = load(OBJ)
    jump, hits = o.maps["jump"], o.maps["hits"]
    target = o.programs["target_hook"]
    p1 = LoadedProgram(target.loaded.code, o.env, int(ProgType.XDP))
    if engine == "jit":
        jc = jit.compile_program(target.loaded.code, maps=target._jit_maps(), cache=False)
        p1.set_jit_function(jc.address, jc)     # machine code owned by p1 alone
        del jc
    jump.set_program(0, p1)
    ref = weakref.ref(p1)
    del p1
    alive = []

    def hook(*args):
        jump.set_program(0, o.programs["target_pass"].loaded)   # the running program's slot
        gc.collect()
        alive.append(ref() is not None)
        return 7

    o.env.register_helper(HOOK, hook)
    n = 7
    for i in range(16):
        n = (n * 3 + i) & (1 << 64) - 1
    assert o.programs["dispatch"].run(PKT, engine=engine) == n & 0xFFFF
    assert alive == [True] and u64(hits[1]) == n
    assert released(ref)
    assert o.programs["dispatch"].run(PKT, engine=engine) == XDP_PASS


@pytest.mark.parametrize("engine", ENGINES)
def test_thousand_inner_map_replacements_keep_the_region_table_small(engine):
    # Inner maps of varying sizes (BPF_F_INNER_MAP), so a freed map's stale entry is never
    # matched by chance by a new map at the same address and size.
    o = load(OBJ)
    outer, prog = o.maps["outer_sized"], o.programs["count_in_sized"]
    spec = outer.spec.inner
    first = None
    for i in range(1000):
        m = Map(dataclasses.replace(spec, max_entries=1 + i % 97))
        outer.set_inner(0, m)
        assert prog.run(PKT, engine=engine) == XDP_PASS
        assert u64(m[0]) == 1
        first = first if first is not None else o.env.ptr.nregions
    assert o.env.ptr.nregions <= first + 2


@pytest.mark.parametrize("engine", ENGINES)
def test_full_region_table_is_an_error_naming_the_maps(engine):
    o = load(OBJ)
    outer, prog = o.maps["outer"], o.programs["count_in_inner"]
    inners = []
    with pytest.raises(MapError) as ei:
        for i in range(256):
            m = Map(outer.spec.inner)
            outer.set_inner(i, m)
            inners.append(m)
    full = len(inners)
    assert ei.value.errno == errno.EMFILE and 64 < full < 256
    assert "'outer'" in str(ei.value) and "'outer.inner'" in str(ei.value)
    assert "region table is full" in str(ei.value)
    assert outer.lookup(full) is None                              # nothing was stored
    assert prog.run(bytes(64 + full), engine=engine) == XDP_ABORTED if full != 0 else True
    assert prog.run(bytes(256 + 1), engine=engine) == XDP_PASS     # outer[1] still works
    # Freed inner maps make room again.
    for i in range(4):
        outer.set_inner(i, None)
    del inners[:4]
    outer.set_inner(full, Map(outer.spec.inner))
    assert prog.run(bytes(256 + full) if full < 256 else PKT, engine=engine) == XDP_PASS


def _fresh_program(o, name, jitcode):
    loaded = LoadedProgram(o.programs[name].loaded.code, o.env, int(ProgType.XDP))
    if jitcode is not None:
        loaded.set_jit_function(jitcode.address, jitcode)
    return loaded


@pytest.mark.parametrize("engine", ENGINES)
def test_two_threads_replace_inner_maps_and_prog_array_slots_under_runs(engine):
    o = load(OBJ)
    outer, outer_hash, jump, hits = (o.maps[n] for n in ("outer", "outer_hash", "jump", "hits"))
    stress = o.programs["stress"]
    codes = {}
    if engine == "jit":
        for name in ("target_pass", "target_drop"):
            p = o.programs[name]
            codes[name] = jit.compile_program(p.loaded.code, maps=p._jit_maps(), cache=False)
    for i in range(4):
        outer.set_inner(i, Map(outer.spec.inner))
        outer_hash.set_inner(i, Map(outer_hash.spec.inner))
    jump.set_program(0, _fresh_program(o, "target_pass", codes.get("target_pass")))
    packets = [bytes(60 + i) for i in range(4)]
    assert stress.run(packets[0], engine=engine) == XDP_PASS
    hits.clear()
    done = threading.Event()
    errors: list[BaseException] = []
    runs = [0]

    def runner():
        try:
            while not done.is_set() and runs[0] < 200_000:
                for pkt in packets:
                    assert stress.run(pkt, engine=engine) in (XDP_PASS, XDP_DROP)
                    runs[0] += 1
        except BaseException as exc:   # noqa: B036 - reported by the main thread
            errors.append(exc)

    t = threading.Thread(target=runner)
    t.start()
    try:
        for i in range(400):
            outer.set_inner(i & 3, Map(outer.spec.inner))
            outer_hash.set_inner(i & 3, Map(outer_hash.spec.inner))
            name = ("target_pass", "target_drop")[i & 1]
            jump.set_program(0, _fresh_program(o, name, codes.get(name)))
    finally:
        done.set()
        t.join()
    assert not errors, errors[0]
    assert runs[0] > 0
    assert u64(hits[0]) + u64(hits[2]) == runs[0]      # every run reached one target
    assert runtime.reclaim() == 0                         # nothing left waiting
    env = o.env.ptr
    assert sum(1 for i in range(env.nregions) if env.regions[i].len) < 32   # the freed went
