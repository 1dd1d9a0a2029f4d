"""`timeout=` ends a runaway run with ExecutionError kind "timeout" on both engines: an endless
loop, bpf_loop at its largest count again and again, and a chain of tail calls. The budget is
set out of reach, so only the wall clock can stop these (no timing is asserted)."""
from __future__ import annotations

from pathlib import Path

import pytest
from ebpfjit._rt import lib

import ebpfjit
from ebpfjit.errors import ExecutionError

ENGINES = ["interp", "jit"]
OBJ = Path(__file__).parent / "progs" / "runaway.o"
NO_BUDGET = 1 << 62


def _u64(v: int) -> bytes:
    return v.to_bytes(8, "little")


@pytest.fixture()
def obj():
    o = ebpfjit.load(OBJ)
    o.maps["chain"].set_program(0, o.programs["tail_chain"].loaded)
    return o


def _arm(obj, end: int, rounds: int) -> None:
    knobs = obj.maps["knobs"]
    knobs[0], knobs[1], knobs[2] = _u64(0), _u64(end), _u64(rounds)


RUNAWAYS = [("spin_forever", 0, 0), ("long_bpf_loop", 0, 1 << 40),
            ("tail_chain", 0, 1 << 22)]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name,end,rounds", RUNAWAYS)
def test_timeout_stops_runaway_program(obj, engine, name, end, rounds):
    prog = obj.programs[name]
    _arm(obj, end, rounds)
    with pytest.raises(ExecutionError) as info:
        prog.run(bytes(64), engine=engine, budget=NO_BUDGET, timeout=0.05)
    err = info.value
    assert err.kind == "timeout" and err.timeout == 0.05
    assert f"program {name!r}" in str(err) and "timeout of 0.05 s passed" in str(err)
    assert err.pc is not None
    # The deadline is gone and the object still works.
    assert lib.ebpfjit_set_deadline(0) == 0
    _arm(obj, 3, 2)
    assert prog.run(bytes(64), engine=engine) == 2      # XDP_PASS


@pytest.mark.parametrize("engine", ENGINES)
def test_timeout_on_test_run_and_run_batch(obj, engine):
    prog = obj.programs["spin_forever"]
    _arm(obj, 0, 0)
    with pytest.raises(ExecutionError) as info:
        prog.test_run(bytes(64), engine=engine, budget=NO_BUDGET, timeout=0.05)
    assert info.value.kind == "timeout"
    with pytest.raises(ExecutionError) as info:
        prog.run_batch([bytes(64)] * 3, engine=engine, budget=NO_BUDGET, timeout=0.05)
    assert info.value.kind == "timeout" and info.value.packet_index == 0
    assert "packet 0" in str(info.value)


@pytest.mark.parametrize("engine", ENGINES)
def test_timeout_on_raw_bytecode(engine):
    prog = ebpfjit.Program.from_asm("mov %r0, 0\nloop:\nadd %r0, 1\nja loop\nexit", name="spin")
    with pytest.raises(ExecutionError, match="program 'spin': pc 2: run timed out") as info:
        prog.run(b"", engine=engine, budget=NO_BUDGET, timeout=0.05)
    assert info.value.kind == "timeout"
    assert ebpfjit.Program.from_asm("mov %r0, 7\nexit").run(b"", engine=engine,
                                                             timeout=0.05) == 7


def test_nested_deadline_keeps_the_earlier_one():
    from ebpfjit.runtime import deadline
    with deadline(10.0):
        outer = lib.ebpfjit_set_deadline(0)
        lib.ebpfjit_set_deadline(outer)
        with deadline(1000.0):
            assert lib.ebpfjit_set_deadline(outer) == outer
        assert lib.ebpfjit_set_deadline(outer) == outer
    assert lib.ebpfjit_set_deadline(0) == 0


@pytest.mark.parametrize("bad", [0, -1, "1", True])
def test_timeout_must_be_positive_seconds(bad):
    with pytest.raises(ValueError, match="timeout"):
        ebpfjit.Program.from_asm("mov %r0, 0\nexit").run(b"", timeout=bad)


def test_cli_run_timeout(capsys):
    from ebpfjit.cli.commands import main
    rc = main(["run", str(OBJ), "--program", "spin_forever", "--timeout", "0.05",
               "--budget", str(NO_BUDGET), "--data", "00" * 64])
    assert rc != 0
    assert "timed out" in capsys.readouterr().err


@pytest.mark.parametrize("engine", ENGINES)
def test_string_helpers_are_charged_per_byte(obj, engine):
    # Each pass of strncmp_forever's endless loop compares 257 bytes of an all-'a' text: the
    # budget stops it after about budget / 257 passes, not budget / (the loop's ~15 insns).
    obj.maps["text"][0] = b"a" * 4095 + b"\0"
    _arm(obj, 1, 0)     # knobs[0] goes 0, 2, 4, ...: never 1
    budget = 1_000_000
    with pytest.raises(ExecutionError) as info:
        obj.programs["strncmp_forever"].run(bytes(64), engine=engine, budget=budget)
    assert info.value.kind == "budget"
    passes = int.from_bytes(obj.maps["knobs"][0], "little") // 2   # += 1 + strncmp ('a' > 0)
    assert 1 <= passes and passes * 257 <= budget
