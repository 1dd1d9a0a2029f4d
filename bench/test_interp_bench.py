"""Interpreter throughput and Python -> C run overhead (pytest-benchmark; no timing asserts).

    pytest bench/test_interp_bench.py --benchmark-only -s
"""
from __future__ import annotations

import struct

import pytest

from ebpfjit.isa.asm import assemble

runtime = pytest.importorskip("ebpfjit.runtime")
pytest.importorskip("pytest_benchmark")

LOOP_ITERS = 1_000_000
# Dependent arithmetic: 5 instructions per iteration, each needing the previous result.
LOOP = f"""
    mov %r0, 1
    mov %r1, {LOOP_ITERS}
loop:
    add %r0, %r1
    xor %r0, 0x5a5a
    mul %r0, 3
    sub %r1, 1
    jne %r1, 0, loop
    exit
"""
LOOP_INSNS = 2 + 5 * LOOP_ITERS + 1

MEM_SIZE = 64 * 1024
# Sum of the 64-bit words of a 64 KiB buffer: 5 instructions per word.
MEMSUM = """
    mov %r0, 0
    mov %r3, %r1
    add %r3, %r2
loop:
    ldxdw %r4, [%r1]
    add %r0, %r4
    add %r1, 8
    jlt %r1, %r3, loop
    exit
"""
MEMSUM_INSNS = 3 + 4 * (MEM_SIZE // 8) + 1


def _program(text):
    return runtime.LoadedProgram(assemble(text), runtime.Env())


def _report(benchmark, name, insns):
    if benchmark.stats is None:      # --benchmark-disable: the smoke run measures nothing
        return
    ns = benchmark.stats.stats.min * 1e9
    benchmark.extra_info["ns_per_insn"] = ns / insns
    print(f"\n{name}: {ns / insns:.2f} ns/insn, {insns / ns * 1e3:.0f} M insns/s (C timing loop)")


def test_interp_loop(benchmark):
    prog = _program(LOOP)
    benchmark.pedantic(lambda: prog.run_repeat(b"", 1), rounds=10, iterations=1)
    r0, ns = prog.run_repeat(b"", 5)
    print(f"\nloop: {ns / LOOP_INSNS:.2f} ns/insn (run_repeat), r0={r0:#x}")
    _report(benchmark, "loop", LOOP_INSNS)


def test_interp_memsum(benchmark):
    prog = _program(MEMSUM)
    data = bytearray(struct.pack(f"<{MEM_SIZE // 8}Q", *range(MEM_SIZE // 8)))
    benchmark.pedantic(lambda: prog.run(data), rounds=20, iterations=5)
    r0, ns = prog.run_repeat(data, 50)
    assert r0 == sum(range(MEM_SIZE // 8))
    print(f"\nmemsum: {ns / MEMSUM_INSNS:.2f} ns/insn (run_repeat)")


def _ns(fn, n=100_000, repeat=7):
    """Min over `repeat` timeit rounds of `n` calls, ns per call."""
    import timeit
    return min(timeit.repeat(fn, number=n, repeat=repeat)) / n * 1e9


def test_run_call_overhead(benchmark):
    """The run-entry paths vs a bare cffi call (printed as ratios; no timing asserts):
    LoadedProgram.run and Program.run of a 2-instruction program (no mem, bytes, bytearray;
    both engines), one run inside C (run_repeat), and XDP: ObjectProgram.run per packet and
    run_batch per packet."""
    from pathlib import Path

    import ebpfjit
    from ebpfjit.api.program import Program

    prog = _program("mov %r0, 7\nexit")
    run = prog.run
    benchmark(run)
    if benchmark.stats is None:      # --benchmark-disable: correctness only
        n, batch_n = 20, 10
    else:
        n, batch_n = 100_000, 200
    bare = _ns(runtime.lib.ebpfjit_current, n)
    rows = [("bare cffi call (no arguments)", bare)]
    data, buf = bytes(64), bytearray(64)
    rows.append(("LoadedProgram.run()", _ns(run, n)))
    rows.append(("LoadedProgram.run(bytes(64))", _ns(lambda: run(data), n)))
    rows.append(("LoadedProgram.run(bytearray(64))", _ns(lambda: run(buf), n)))
    p = Program(assemble("mov %r0, 7\nexit"))
    assert p.run() == 7 and p.run(engine="jit") == 7
    prun = p.run
    rows.append(("Program.run()", _ns(prun, n)))
    rows.append(("Program.run(bytes(64))", _ns(lambda: prun(data), n)))
    rows.append(("Program.run(engine='jit')", _ns(lambda: prun(engine="jit"), n)))
    rows.append(("one run inside C, interp (run_repeat)", prog.run_repeat(b"", max(n, 1000))[1]))
    rows.append(("one run inside C, jit (run_repeat)",
                 p.loaded.run_repeat(b"", max(n, 1000), engine="jit")[1]))
    obj = ebpfjit.load(Path(__file__).resolve().parents[1] / "tests" / "progs" /
                       "xdp_drop_ip.o")
    xdp = obj.programs["xdp_drop_ip"]
    pkt = bytes(14) + bytes(50)
    packets = [pkt] * 1000
    for engine in ("interp", "jit"):
        assert xdp.run(pkt, engine=engine) == 2 and xdp.run(pkt, engine=engine) == 2
        rows.append((f"ObjectProgram.run(xdp 64 B, {engine})",
                     _ns(lambda e=engine, xrun=xdp.run: xrun(pkt, e), n // 2)))
        assert xdp.run_batch(packets[:3], engine=engine) == [2, 2, 2]
        per = _ns(lambda e=engine: xdp.run_batch(packets, e), batch_n // 20 or 1) / len(packets)
        rows.append((f"ObjectProgram.run_batch(1000 x xdp 64 B, {engine}) per packet", per))
    print()
    for name, ns in rows:
        print(f"  {name:58s} {ns:8.1f} ns  {ns / bare:5.2f}x bare")
