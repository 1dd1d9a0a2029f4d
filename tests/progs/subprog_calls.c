// bpf-to-bpf calls: static __noinline subprograms in .text (one calling another), a global
// function, stack pointers handed to callees, and two programs sharing a subprogram.
#include "common.h"

struct parse_result {
	__u32 saddr;
	__u32 daddr;
	__u8 proto;
	__u8 ok;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} results SEC(".maps");

static __noinline __u32 fold32(__u32 a, __u32 b)
{
	__u32 x = a ^ (b << 7) ^ (b >> 3);

	return x * 2654435761u;
}

static __noinline int parse_ipv4(void *data, void *data_end, struct parse_result *out)
{
	struct ethhdr *eth = data;
	struct iphdr *ip;

	out->ok = 0;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return -1;
	out->saddr = ip->saddr;
	out->daddr = ip->daddr;
	out->proto = ip->protocol;
	out->ok = 1;
	return 0;
}

static __noinline void bump(__u32 slot, __u64 by)
{
	__u64 *v = bpf_map_lookup_elem(&results, &slot);

	if (v)
		__sync_fetch_and_add(v, by);
}

/* Global function: verified separately by the kernel, so only scalar arguments. */
__noinline int flow_hash(__u32 saddr, __u32 daddr, __u32 proto)
{
	return fold32(fold32(saddr, daddr), proto) & 0xffff;
}

SEC("xdp")
int xdp_subprogs(struct xdp_md *ctx)
{
	struct parse_result res = {};

	if (parse_ipv4((void *)(long)ctx->data, (void *)(long)ctx->data_end, &res) < 0) {
		bump(0, 1);
		return XDP_PASS;
	}
	bump(1, 1);
	bump(2, flow_hash(res.saddr, res.daddr, res.proto));
	return res.proto == IPPROTO_ICMP ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int xdp_hash_only(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;

	bump(3, fold32(len, 17));
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
