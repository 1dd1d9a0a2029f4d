// PROG_ARRAY tail calls; slots 0 and 2 are statically initialised through `.values`.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stage_hits SEC(".maps");

static __always_inline void hit(__u32 stage)
{
	__u64 *v = bpf_map_lookup_elem(&stage_hits, &stage);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int stage_ipv4(struct xdp_md *ctx)
{
	hit(1);
	return XDP_PASS;
}

SEC("xdp")
int stage_drop(struct xdp_md *ctx)
{
	hit(2);
	return XDP_DROP;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} jump_table SEC(".maps") = {
	.values = {
		[0] = (void *)&stage_ipv4,
		[2] = (void *)&stage_drop,
	},
};

SEC("xdp")
int xdp_dispatch(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	hit(0);
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		bpf_tail_call(ctx, &jump_table, 0);
	else if (eth->h_proto == bpf_htons(ETH_P_ARP))
		bpf_tail_call(ctx, &jump_table, 2);
	/* Slot 1 is empty: a tail call to it falls through. */
	bpf_tail_call(ctx, &jump_table, 1);
	hit(3);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
