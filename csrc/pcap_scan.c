/* The chunked pcap reader's inner loop (ebpfjit/stream.py): classic pcap records parsed and their
 * packets copied end to end, so a chunk goes to ebpfjit_pkt_run_batch without a Python loop over
 * packets. The Python side owns the file, the buffering and every error message. */
#include <stdint.h>
#include <string.h>

#include "pcap_scan.h"

static uint32_t get32(const uint8_t *p, int swap)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return swap ? __builtin_bswap32(v) : v;
}

int64_t ebpfjit_pcap_scan(const uint8_t *buf, uint64_t len, int swap, uint32_t max_rec,
                          uint64_t max_n, uint8_t *out, uint64_t out_cap, uint32_t *hdr,
                          uint64_t *consumed, uint64_t *out_used, int *bad)
{
    uint64_t off = 0, used = 0, n = 0;

    *bad = 0;
    while (n < max_n && len - off >= 16) {
        uint32_t incl = get32(buf + off + 8, swap);

        if (incl > max_rec) {
            *bad = 1;
            break;
        }
        if (len - off - 16 < incl || out_cap - used < incl)
            break;
        hdr[4 * n] = get32(buf + off, swap);
        hdr[4 * n + 1] = get32(buf + off + 4, swap);
        hdr[4 * n + 2] = incl;
        hdr[4 * n + 3] = get32(buf + off + 12, swap);
        memcpy(out + used, buf + off + 16, incl);
        used += incl;
        off += 16 + incl;
        n++;
    }
    *consumed = off;
    *out_used = used;
    return (int64_t)n;
}

uint64_t ebpfjit_count_verdicts(const uint32_t *verdicts, uint64_t n, uint64_t *counts)
{
    uint64_t i, other = 0;

    for (i = 0; i < n; i++) {
        if (verdicts[i] < EBPFJIT_COUNTED_VERDICTS)
            counts[verdicts[i]]++;
        else
            other++;
    }
    return other;
}
