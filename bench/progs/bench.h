/* Shared prelude for the benchmark suite (bench/progs/NAME.c).
 *
 * Every program NAME.c defines one global function `uint64_t NAME_prog(uint8_t *mem, uint64_t len)`
 * that follows the raw/conformance convention (r1 = mem, r2 = len). The same source is compiled
 * twice:
 *   - to eBPF by bench/progs/build.sh (clang-19 -O2 -target bpf -mcpu=v3), with the function in
 *     section "bench" so ebpfjit.elf.load_spec sees it as a program;
 *   - natively by bench/native.py (cffi, clang-19 -O2), all sources in one module.
 * Loops have constant bounds (the verifier's bounded-loop rule); static helpers carry the
 * program's name as a prefix so the sources can share one native translation unit.
 */
#ifndef EBPFJIT_BENCH_H
#define EBPFJIT_BENCH_H

#ifdef __bpf__
typedef __UINT8_TYPE__ uint8_t;
typedef __UINT16_TYPE__ uint16_t;
typedef __UINT32_TYPE__ uint32_t;
typedef __UINT64_TYPE__ uint64_t;
#define BENCH_PROG __attribute__((section("bench"), used))
#else
#include <stdint.h>
#define BENCH_PROG
#endif

#define BENCH_INLINE static inline __attribute__((always_inline))

#endif
