// Not loadable by the kernel: each program has a missing bounds check on purpose, so that the
// fault messages (tests/test_fault_messages.py) have a source line, an instruction and a region
// to name.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("xdp")
int missing_check(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (ip->protocol == 17)	/* no check that the IP header is inside the packet */
		return XDP_DROP;
	return XDP_PASS;
}

SEC("xdp")
int value_overrun(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *count = bpf_map_lookup_elem(&counts, &key);

	if (!count)
		return XDP_PASS;
	return *(__u32 *)((char *)count + 12);	/* past the 8-byte value */
}

char LICENSE[] SEC("license") = "GPL";
