#ifndef EBPFJIT_PCAP_SCAN_H
#define EBPFJIT_PCAP_SCAN_H
#include <stdint.h>
/* cffi:begin */
/* Parse the complete classic-pcap records at the start of buf[0..len) (record headers in the
 * file's byte order: swap != 0 when it is not the host's), at most max_n of them: each packet's
 * bytes are appended to `out` (while out_cap allows) and its header to hdr[4*i..4*i+3] (ts_sec,
 * ts_frac, incl_len, orig_len). Returns the records taken; *consumed: the bytes of buf they
 * occupied; *out_used: bytes written to out. *bad = 1 when it stopped at a record whose incl_len
 * exceeds max_rec (that record is not consumed). */
int64_t ebpfjit_pcap_scan(const uint8_t *buf, uint64_t len, int swap, uint32_t max_rec,
                          uint64_t max_n, uint8_t *out, uint64_t out_cap, uint32_t *hdr,
                          uint64_t *consumed, uint64_t *out_used, int *bad);
/* Add the number of each verdict below EBPFJIT_COUNTED_VERDICTS in verdicts[0..n) to
 * counts[verdict]; returns how many were not counted (larger values). */
#define EBPFJIT_COUNTED_VERDICTS 16
uint64_t ebpfjit_count_verdicts(const uint32_t *verdicts, uint64_t n, uint64_t *counts);
/* cffi:end */
#endif
