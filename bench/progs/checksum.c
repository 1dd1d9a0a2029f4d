/* Internet checksum (RFC 1071) over the whole buffer, at most CSUM_MAX bytes.
 * Input: a 1500-byte frame.
 */
#include "bench.h"

#define CSUM_MAX 1500

BENCH_PROG uint64_t checksum_prog(uint8_t *mem, uint64_t len)
{
	uint64_t sum = 0;
	uint32_t i;

	for (i = 0; i + 1 < CSUM_MAX; i += 2) {
		if (i + 2 > len)
			break;
		sum += (uint32_t)mem[i] << 8 | mem[i + 1];
	}
	if (i < CSUM_MAX && i < len)
		sum += (uint32_t)mem[i] << 8;   /* odd trailing byte, zero-padded */
	for (int k = 0; k < 4; k++)   /* fold the carries; 4 folds empty a u64 */
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}
