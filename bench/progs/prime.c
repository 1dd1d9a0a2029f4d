/* Count the primes below PRIME_N by trial division (divisions dominate). Input: none. */
#include "bench.h"

#define PRIME_N 10000
#define PRIME_MAX_DIV 100   /* sqrt(PRIME_N): constant inner bound */

BENCH_INLINE int prime_is_prime(uint32_t n)
{
	if (n < 2)
		return 0;
	if (n % 2 == 0)
		return n == 2;
	for (uint32_t d = 3; d < PRIME_MAX_DIV && d * d <= n; d += 2)
		if (n % d == 0)
			return 0;
	return 1;
}

BENCH_PROG uint64_t prime_prog(uint8_t *mem, uint64_t len)
{
	uint64_t count = 0;

	(void)mem;
	(void)len;
	for (uint32_t n = 0; n < PRIME_N; n++)
		count += prime_is_prime(n);
	return count;
}
