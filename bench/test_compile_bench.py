"""Compile-time benchmarks (pytest-benchmark; no assertions): JIT compile time vs program size
(10, 100, 1000, 4000 instructions) at O0/O1/O2, and the cache-hit load time."""
from __future__ import annotations

import pytest

from ebpfjit.isa.insn import Instruction, encode
from ebpfjit.jit import compile as jit
from ebpfjit.jit.cache import CompileCache

pytest.importorskip("pytest_benchmark")


def make_program(n: int, length_checked: bool = False, distinct: bool = False) -> bytes:
    """~n instructions: ALU work, stack and mem traffic and a forward branch every 8 slots.

    The mem loads read bytes 4 and 12 in turn, so after the first two each lies inside a range
    already checked (lower.covered_accesses) and needs no check; with `distinct` each reads a
    byte of its own (offsets 0, 1, 2, ...) and every one is checked. `length_checked` starts
    with `if r2 < 16 goto exit`: a program that tests its length gets the raw-convention entry
    copy besides the general one (lower_program), so it compiles two copies of its body."""
    insns = [Instruction(0xBF, 9, 1), Instruction(0xB7, 0, imm=0)]   # r9 = r1 (mem); r0 = 0
    if length_checked:
        insns.append(None)                                            # patched below
    i = 0
    while len(insns) < n - 1:
        k = i % 8
        if k == 0:
            insns.append(Instruction(0x07, 0, imm=i))                  # r0 += i
        elif k == 1:
            insns.append(Instruction(0x7B, 10, 0, -8 * (1 + i % 32)))  # *(u64 *)(r10 - x) = r0
        elif k == 2:
            insns.append(Instruction(0x79, 3, 10, -8 * (1 + i % 32)))  # r3 = *(u64 *)(r10 - x)
        elif k == 3:
            insns.append(Instruction(0x2F, 0, 3))                      # r0 *= r3
        elif k == 4:
            insns.append(Instruction(0x71, 4, 9, i // 8 if distinct else i % 16))  # r4 = *(u8 *)(r9 + y)
        elif k == 5:
            insns.append(Instruction(0xAF, 0, 4))                      # r0 ^= r4
        elif k == 6 and len(insns) < n - 3:
            insns.append(Instruction(0x15, 4, 0, 1, 7))                # if r4 == 7 goto +1
        else:
            insns.append(Instruction(0x77, 0, imm=3))                  # r0 >>= 3
        i += 1
    insns.append(Instruction(0x95))
    if length_checked:                                                # if r2 < 16 goto exit
        insns[2] = Instruction(0xA5, 2, off=len(insns) - 4, imm=16)
    return encode(insns)


SIZES = (10, 100, 1000, 4000)


@pytest.mark.parametrize("opt_level", (0, 1, 2), ids=lambda o: f"O{o}")
@pytest.mark.parametrize("size", SIZES)
def test_compile_time(benchmark, size, opt_level):
    code = make_program(size)
    benchmark.group = f"compile-{size}"
    rounds = 1 if size >= 1000 else 5
    benchmark.pedantic(jit.compile_program, args=(code,),
                       kwargs={"opt_level": opt_level, "cache": False},
                       rounds=rounds, iterations=1, warmup_rounds=1 if size < 1000 else 0)


@pytest.mark.parametrize("opt_level", (0, 2), ids=lambda o: f"O{o}")
@pytest.mark.parametrize("variant", ("distinct", "length_checked"))
def test_compile_time_variants(benchmark, variant, opt_level):
    code = make_program(100, **{variant: True})
    benchmark.group = f"compile-100-{variant}"
    benchmark.pedantic(jit.compile_program, args=(code,),
                       kwargs={"opt_level": opt_level, "cache": False},
                       rounds=5, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("size", (10, 1000))
def test_cache_hit_load(benchmark, tmp_path, size):
    code = make_program(size)
    cache = CompileCache(tmp_path)
    jit.compile_program(code, cache=cache)
    benchmark.group = "cache-hit"
    benchmark(jit.compile_program, code, cache=cache)


def main() -> None:
    """`PYTHONPATH=. python bench/test_compile_bench.py`: minimum CPU time (this thread) per compile, which a
    loaded machine disturbs less than wall time; the numbers bench/README.md records."""
    import tempfile
    import time

    def best(fn, reps):
        times = []
        kept = []   # freeing loaded code (LLJIT teardown) is not part of compiling it
        for _ in range(reps):
            t0 = time.thread_time()
            kept.append(fn())
            times.append(time.thread_time() - t0)
        return min(times) * 1e3

    for size, checked, distinct in ((10, False, False), (100, False, False), (100, False, True),
                                    (100, True, False), (1000, False, False),
                                    (1000, False, True), (4000, False, False)):
        code = make_program(size, checked, distinct)
        row = [f"{size:5d} insns{' (length-checked)' if checked else ''}"
               f"{' (distinct offsets)' if distinct else ''}"]
        for opt_level in (0, 1, 2):
            ms = best(lambda c=code, o=opt_level: jit.compile_program(c, opt_level=o, cache=False),
                      9 if size < 1000 else 3)
            row.append(f"O{opt_level} {ms:7.1f} ms")
        print("  ".join(row))
    code = make_program(100)
    cache = CompileCache(tempfile.mkdtemp())
    jit.compile_program(code, cache=cache)
    print(f"cache hit (100 insns) {best(lambda: jit.compile_program(code, cache=cache), 20):.2f} ms")


if __name__ == "__main__":
    main()
