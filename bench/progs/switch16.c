/* A 16-way switch on (byte & 15) for every byte of the buffer (at most SW_MAX bytes).
 * Input: 1500 pseudo-random bytes.
 */
#include "bench.h"

#define SW_MAX 1500

BENCH_PROG uint64_t switch16_prog(uint8_t *mem, uint64_t len)
{
	uint64_t acc = 0x9e3779b97f4a7c15ULL;

	for (uint32_t i = 0; i < SW_MAX; i++) {
		if (i >= len)
			break;
		uint64_t b = mem[i];
		switch (b & 15) {
		case 0: acc += b; break;
		case 1: acc ^= b << 3; break;
		case 2: acc -= b * 7; break;
		case 3: acc = (acc << 1) | (acc >> 63); break;
		case 4: acc += 0x1234; break;
		case 5: acc ^= acc >> 7; break;
		case 6: acc *= 3; break;
		case 7: acc += b << 9; break;
		case 8: acc ^= 0xdeadbeef; break;
		case 9: acc -= acc >> 11; break;
		case 10: acc += b * b; break;
		case 11: acc ^= b << 17; break;
		case 12: acc = ~acc; break;
		case 13: acc += i; break;
		case 14: acc ^= (uint64_t)i << 32; break;
		default: acc -= 1; break;
		}
	}
	return acc;
}
