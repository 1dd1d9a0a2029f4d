// The verifier's per-instruction facts and the check-free JIT (tests/verifier/test_facts.py,
// tests/engines/test_checkfree.py): one XDP program touching every region a verified program
// reaches: its context, the packet, its own stack, its caller's stack through a pointer, an
// ARRAY map value with a bounded variable index, a global (.bss) and two bounded loops.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64[8]);
} slots SEC(".maps");

__u64 packets_seen;

/* Reads n (<= 8) bytes of the caller's stack buffer: a pointer into the caller's frame. */
static __noinline int sum_bytes(__u8 *buf, __u32 n)
{
	int s = 0;

#pragma clang loop unroll(disable)
	for (int i = 0; i < 8; i++)
		if (i < n)
			s += buf[i];
	return s;
}

SEC("xdp")
int xdp_facts(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *p = data;
	__u8 buf[8];
	__u32 key = 0;
	__u64 *val;

	if (data + 16 > data_end)
		return XDP_PASS;
#pragma clang loop unroll(disable)
	for (int i = 0; i < 8; i++)
		buf[i] = p[i] ^ p[i + 8];
	packets_seen++;
	val = bpf_map_lookup_elem(&slots, &key);
	if (!val)
		return XDP_ABORTED;
	val[p[8] & 7] += sum_bytes(buf, p[9] & 15);
	return (p[10] & 1) ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
