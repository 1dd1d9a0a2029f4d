"""Interpreter throughput and Python -> C run overhead (pytest-benchmark; no timing asserts).

    pytest bench/test_interp_bench.py --benchmark-only -s
"""
from __future__ import annotations

import struct

import pytest

from ebpfjit.asm import assemble

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


def test_run_call_overhead(benchmark):
    """One LoadedProgram.run of a 2-instruction program vs a bare cffi call."""
    import timeit
    prog = _program("mov %r0, 7\nexit")
    run = prog.run
    benchmark(run)
    n = 200_000
    bare = min(timeit.repeat(runtime.lib.ebpfjit_current, number=n, repeat=5)) / n * 1e9
    empty = min(timeit.repeat(run, number=n, repeat=5)) / n * 1e9
    data = bytes(64)
    with_bytes = min(timeit.repeat(lambda: run(data), number=n, repeat=5)) / n * 1e9
    in_c = prog.run_repeat(b"", n)[1]
    print(f"\nbare cffi call {bare:.0f} ns; run() {empty:.0f} ns ({empty / bare:.2f}x); "
          f"run(bytes(64)) {with_bytes:.0f} ns; one run inside C {in_c:.0f} ns")
