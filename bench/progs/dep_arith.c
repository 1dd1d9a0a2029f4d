/* A chain of dependent arithmetic: each iteration needs the previous x (no ILP across
 * iterations), so time per run is latency-bound in every engine.
 * Input: the seed in mem[0..8) (little-endian; a constant when len < 8).
 */
#include "bench.h"

#define DEP_ITERS 100000

BENCH_PROG uint64_t dep_arith_prog(uint8_t *mem, uint64_t len)
{
	uint64_t x = 0x243f6a8885a308d3ULL;

	if (len >= 8)
		x = *(uint64_t *)mem;
	for (uint32_t i = 0; i < DEP_ITERS; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		x ^= x >> 13;
		x += x << 7;
		x ^= x >> 17;
	}
	return x;
}
