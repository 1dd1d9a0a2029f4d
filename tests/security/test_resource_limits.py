"""Hostile objects cannot make ebpfjit allocate unbounded memory (issue 10, finding 7).

Map memory is charged to a per-object MemoryAccount (`load(..., memory_limit=)`, default
ebpfjit.runtime.maps.DEFAULT_MEMORY_LIMIT): maps that cannot fit are refused at load with a MapError
naming them, hash maps reserve their pools lazily and fail an update past the limit with
-ENOMEM, and BTF decoding stops at ebpfjit.objects.btf.MAX_DECODED_ELEMENTS values.

Loads of the hostile objects run in a subprocess with a capped address space, so a regression
fails the test instead of exhausting the machine; the peak RSS growth (VmHWM) is the measure.
"""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ebpfjit
import ebpfjit.objects.spec
import ebpfjit.runtime.maps
from ebpfjit.errors import MapError

HOSTILE = Path(__file__).parent / "progs"
ENGINES = ["interp", "jit"]
RSS_BOUND = 64 << 20        # peak RSS growth a hostile load may cause (bytes)

_PRELUDE = textwrap.dedent("""
    import json, resource, sys
    import ebpfjit
    from ebpfjit.objects.elf import load_spec
    from ebpfjit.errors import EbpfError, MapError
    from ebpfjit.runtime.maps import Map

    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(field)

    # Room for the interpreter and a lawful load; far less than an eager 2^30-entry map.
    extra = 3 << 30
    resource.setrlimit(resource.RLIMIT_AS, (status("VmSize") + extra, status("VmSize") + extra))
    base_hwm = status("VmHWM")
    def grown():
        return status("VmHWM") - base_hwm
""")


def _run_capped(code: str) -> dict:
    """Runs code after _PRELUDE in a fresh interpreter; its last stdout line is JSON."""
    proc = subprocess.run([sys.executable, "-c", _PRELUDE + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300, env=os.environ,
                          cwd=str(Path(__file__).parents[2]))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_huge_hash_map_loads_lazily():
    out = _run_capped(f"""
        obj = ebpfjit.load({str(HOSTILE / "mem_hash_bomb.o")!r})
        m = obj.maps["huge_hash"]
        m.update(7, (1).to_bytes(8, "little"))
        print(json.dumps({{"max": m.max_entries, "len": len(m), "grown": grown(),
                          "used": obj.memory.used, "limit": obj.memory.limit}}))
    """)
    assert out["max"] == 1 << 30 and out["len"] == 1
    assert out["grown"] < RSS_BOUND
    assert out["used"] <= out["limit"] == ebpfjit.runtime.maps.DEFAULT_MEMORY_LIMIT


BOMBS = ["huge_array", "huge_percpu_array", "huge_lru", "huge_queue", "huge_lpm", "huge_ring"]


def test_maps_over_the_limit_are_refused_by_name():
    out = _run_capped(f"""
        spec = load_spec({str(HOSTILE / "mem_map_bombs.o")!r})
        res = {{}}
        for name in {BOMBS!r}:
            try:
                Map(spec.maps[name], 4)     # its own account, of the default limit
                res[name] = "created"
            except MapError as exc:
                res[name] = [exc.errno, str(exc)]
        try:
            ebpfjit.load({str(HOSTILE / "mem_map_bombs.o")!r}, ncpus=4)
            res["load"] = "loaded"
        except MapError as exc:
            res["load"] = [exc.errno, str(exc)]
        res["grown"] = grown()
        print(json.dumps(res))
    """)
    for name in BOMBS + ["load"]:
        assert isinstance(out[name], list), (name, out[name])
        code, message = out[name]
        assert code == errno.ENOMEM, (name, message)
        assert "memory limit" in message, (name, message)
        if name != "load":
            assert f"map {name!r}" in message
    assert "map 'huge_array'" in out["load"][1]     # the first map of the object
    assert out["grown"] < RSS_BOUND


@pytest.mark.parametrize("engine", ENGINES)
def test_hash_map_filled_past_the_limit_fails_updates_with_enomem(engine):
    limit = 64 << 10
    obj = ebpfjit.load(HOSTILE / "mem_hash_bomb.o", memory_limit=limit)
    assert obj.memory.limit == limit
    prog = obj.program("insert_key")
    m = obj.maps["huge_hash"]
    enomem = -errno.ENOMEM & 0xFFFFFFFF
    inserted = 0
    for key in range(limit):      # each element costs more than one byte: ends far earlier
        rc = prog.run(key.to_bytes(4, "little") + bytes(60), engine=engine)
        if rc != 0:
            break
        inserted += 1
    assert rc == enomem                     # the helper's return value, as the kernel's memcg
    assert 0 < inserted == len(m) < m.max_entries
    assert obj.memory.used <= limit
    with pytest.raises(MapError, match="huge_hash.*memory limit") as exc:
        m.update(limit + 1, bytes(8))
    assert exc.value.errno == errno.ENOMEM
    # A freed element is reused without a new charge; the map keeps working at its limit.
    m.delete(0)
    assert prog.run((0).to_bytes(4, "little") + bytes(60), engine=engine) == 0
    assert prog.run((limit + 2).to_bytes(4, "little") + bytes(60), engine=engine) == enomem
    assert len(m) == inserted


def test_memory_is_given_back_when_maps_are_freed():
    from ebpfjit.runtime.maps import MemoryAccount
    acct = MemoryAccount(1 << 20)
    m = ebpfjit.runtime.maps.Map.create(ebpfjit.objects.spec.MapType.HASH, 4, 8, 1 << 30, memory=acct)
    for key in range(100):
        m.update(key, bytes(8))
    assert acct.used > 0
    del m
    assert acct.used == 0


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_memory_limit_must_be_positive_bytes(bad):
    with pytest.raises(MapError, match="memory_limit"):
        ebpfjit.load(HOSTILE / "mem_hash_bomb.o", memory_limit=bad)


def test_btf_nested_zero_sized_arrays_give_a_btf_error():
    out = _run_capped(f"""
        obj = ebpfjit.load({str(HOSTILE / "btf_array_bomb.o")!r})
        m = obj.maps["bomb_map"]
        res = {{}}
        for what, fn in (("lookup_typed", lambda: m.lookup_typed(0)), ("dump", m.dump)):
            try:
                fn()
                res[what] = "decoded"
            except Exception as exc:
                res[what] = [type(exc).__name__, str(exc)]
        res["grown"] = grown()
        print(json.dumps(res))
    """)
    for what in ("lookup_typed", "dump"):
        kind, message = out[what]
        assert kind == "BtfLimitError", out[what]
        assert "map 'bomb_map'" in message and "values" in message, out[what]
    assert out["grown"] < RSS_BOUND
