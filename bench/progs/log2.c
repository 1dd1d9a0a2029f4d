/* Sum floor(log2(x)) over LOG2_COUNT pseudo-random u64 values from an LCG.
 * Input: the LCG seed in mem[0..8) (little-endian; 1 when len < 8).
 * log2 is the branchy binary search (no clz: eBPF has no such instruction).
 */
#include "bench.h"

#define LOG2_COUNT 1000

BENCH_INLINE uint64_t log2_floor(uint64_t v)
{
	uint64_t r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) r += 1;
	return r;
}

BENCH_PROG uint64_t log2_prog(uint8_t *mem, uint64_t len)
{
	uint64_t x = 1, sum = 0;

	if (len >= 8)
		x = *(uint64_t *)mem;
	for (int i = 0; i < LOG2_COUNT; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		/* Vary the magnitude so every branch of the search is exercised. */
		sum += log2_floor(x >> (x >> 58));
	}
	return sum;
}
