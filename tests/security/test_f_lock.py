"""BPF_F_LOCK never hangs (issue 10, finding 5), on both engines: a program's BPF_F_LOCK update
of a value whose bpf_spin_lock it holds faults naming the map instead of spinning on its own
lock, and the host's `Map.lookup/update(flags=BPF_F_LOCK)` gives up with a MapError naming the
map when the lock word is held by this thread, names no live thread, or stays held past
`Map.lock_timeout`. The clang object tests/progs/spin_lock_flags.c holds the programs.

Each case is a `_case_*` function run in a fresh interpreter with a timeout (`_isolated`): the
code before the fix spun for ever in C with the GIL released, which must fail the test, not
hang the suite."""
from __future__ import annotations

import errno
import pathlib
import struct
import subprocess
import sys
import threading

import pytest

ENGINES = ("interp", "jit")
OBJ = pathlib.Path(__file__).resolve().parents[1] / "progs" / "spin_lock_flags.o"
XDP_PASS = 2
NO_THREAD = 0x7FFFFFF0      # above pid_max: names no thread
PKT = bytes(64)


def _isolated(case: str, *args: str, timeout: float = 60.0) -> None:
    code = (f"import runpy, sys; ns = runpy.run_path({__file__!r}); "
            f"ns[{case!r}](*sys.argv[1:])")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr


def _loaded():
    from ebpfjit.api.loader import load
    o = load(OBJ)
    o.maps["locked_hash"].update(0, bytes(8) + struct.pack("<Q", 5))
    return o


def _poison(o, word: int, engine: str) -> None:
    """Let a program write `word` into the lock word of locked[0] and locked_hash[0]."""
    assert o.programs["poison_lock"].run(struct.pack("<I", word) + bytes(60),
                                         engine=engine) == XDP_PASS


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0]


# --- the cases (run in a subprocess) -----------------------------------------------------------

def _case_update_under_own_lock(engine: str) -> None:
    from ebpfjit.errors import ExecutionError
    o = _loaded()
    for prog, name in (("update_while_locked", "locked"),
                       ("update_while_locked_hash", "locked_hash")):
        with pytest.raises(ExecutionError) as ei:
            o.programs[prog].run(PKT, engine=engine)
        message = _first_line(ei.value)
        assert ei.value.kind == "helper", message
        assert f"bpf_spin_lock at map {name!r} value offset 0 " in message, message
        assert "is held by this run (would deadlock" in message, message
    # the faulting run released the lock it held: a locked update works afterwards
    assert o.programs["locked_update"].run(PKT, engine=engine) == XDP_PASS


def _case_update_on_overwritten_word(engine: str) -> None:
    from ebpfjit.errors import ExecutionError
    from ebpfjit.runtime.maps import BPF_F_LOCK
    o = _loaded()
    _poison(o, NO_THREAD, engine)
    with pytest.raises(ExecutionError) as ei:
        o.programs["locked_update"].run(PKT, engine=engine)
    message = _first_line(ei.value)
    assert ei.value.kind == "helper", message
    assert "word at map 'locked' value offset 0 " in message and "no live holder" in message
    _poison(o, 0, engine)
    assert o.programs["locked_update"].run(PKT, engine=engine) == XDP_PASS
    assert o.maps["locked"].lookup(0, BPF_F_LOCK) == bytes(8) + struct.pack("<Q", 7)


def _host_ops(m):
    from ebpfjit.runtime.maps import BPF_F_LOCK
    return (("lookup", lambda: m.lookup(0, BPF_F_LOCK)),
            ("update", lambda: m.update(0, bytes(16), BPF_F_LOCK)))


def _case_host_dead_holder(engine: str) -> None:
    from ebpfjit.errors import MapError
    o = _loaded()
    _poison(o, NO_THREAD, engine)
    for name in ("locked", "locked_hash"):
        for op, call in _host_ops(o.maps[name]):
            with pytest.raises(MapError) as ei:
                call()
            assert ei.value.errno == errno.EOWNERDEAD
            assert str(ei.value).startswith(f"map {name!r}: BPF_F_LOCK {op}: ")
            assert "names no live thread" in str(ei.value)


def _case_host_held_by_this_thread(engine: str) -> None:
    from ebpfjit.errors import MapError
    o = _loaded()
    _poison(o, threading.get_native_id(), engine)   # as if a program on this thread held it
    for name in ("locked", "locked_hash"):
        m = o.maps[name]
        for op, call in _host_ops(m):
            with pytest.raises(MapError) as ei:
                call()
            assert ei.value.errno == errno.EDEADLK
            assert str(ei.value).startswith(f"map {name!r}: BPF_F_LOCK {op}: ")
            assert "would deadlock" in str(ei.value)
        assert m.lookup(0) is not None          # lookups without BPF_F_LOCK do not wait


def _case_host_live_holder_times_out(engine: str) -> None:
    from ebpfjit.errors import MapError
    from ebpfjit.runtime.maps import BPF_F_LOCK
    o = _loaded()
    stop = threading.Event()
    holder = threading.Thread(target=stop.wait, daemon=True)
    holder.start()
    _poison(o, holder.native_id, engine)      # a live thread that never releases it
    for name in ("locked", "locked_hash"):
        m = o.maps[name]
        m.lock_timeout = 0.05
        for op, call in _host_ops(m):
            with pytest.raises(MapError) as ei:
                call()
            assert ei.value.errno == errno.ETIMEDOUT
            assert str(ei.value).startswith(f"map {name!r}: BPF_F_LOCK {op}: gave up after "
                                            "0.05 s")
    _poison(o, 0, engine)
    assert o.maps["locked"].lookup(0, BPF_F_LOCK) == bytes(16)
    stop.set()
    holder.join()


# --- the tests ---------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", ["_case_update_under_own_lock",
                                  "_case_update_on_overwritten_word",
                                  "_case_host_dead_holder",
                                  "_case_host_held_by_this_thread",
                                  "_case_host_live_holder_times_out"])
def test_f_lock_never_hangs(case, engine):
    _isolated(case, engine)
