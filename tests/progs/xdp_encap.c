// XDP: IP-in-IP encapsulation with bpf_xdp_adjust_head (push an outer IPv4 header).
#include "common.h"

const volatile __u32 tunnel_src = IP4(192, 168, 0, 1);
const volatile __u32 tunnel_dst = IP4(192, 168, 0, 2);

static __always_inline __u16 ip_checksum(struct iphdr *ip)
{
	__u16 *p = (__u16 *)ip;
	__u32 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < (int)sizeof(*ip) / 2; i++)
		sum += p[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

SEC("xdp")
int xdp_ipip_encap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data, *new_eth;
	struct iphdr *inner, *outer;
	struct ethhdr saved;
	__u16 inner_len;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	inner = (void *)(eth + 1);
	if ((void *)(inner + 1) > data_end)
		return XDP_PASS;
	inner_len = bpf_ntohs(inner->tot_len);
	__builtin_memcpy(&saved, eth, sizeof(saved));

	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
		return XDP_ABORTED;

	/* adjust_head invalidates every packet pointer: reload and re-check. */
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	new_eth = data;
	outer = (void *)(new_eth + 1);
	if ((void *)(outer + 1) > data_end)
		return XDP_ABORTED;

	__builtin_memcpy(new_eth, &saved, sizeof(saved));
	outer->version = 4;
	outer->ihl = 5;
	outer->tos = 0;
	outer->tot_len = bpf_htons(inner_len + sizeof(struct iphdr));
	outer->id = 0;
	outer->frag_off = bpf_htons(0x4000);
	outer->ttl = 64;
	outer->protocol = IPPROTO_IPIP;
	outer->saddr = tunnel_src;
	outer->daddr = tunnel_dst;
	outer->check = 0;
	outer->check = ip_checksum(outer);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
