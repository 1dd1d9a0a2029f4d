/* The engine's fixed cost: a program that returns 0. */
#include "bench.h"

BENCH_PROG uint64_t empty_prog(uint8_t *mem, uint64_t len)
{
	(void)mem;
	(void)len;
	return 0;
}
