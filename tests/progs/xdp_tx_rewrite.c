// XDP: reflect IPv4 packets (swap MACs and addresses, decrement TTL with an incremental checksum
// update, recompute it with bpf_csum_diff as a cross-check) and return XDP_TX.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} tx_stats SEC(".maps");

static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* RFC 1624 incremental update: HC' = ~(~HC + ~m + m'). */
static __always_inline void csum_replace2(__u16 *sum, __u16 old, __u16 new)
{
	__u32 s = (__u16)~*sum + (__u16)~old + new;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	*sum = ~s;
}

SEC("xdp")
int xdp_reflect(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	unsigned char mac[ETH_ALEN];
	struct iphdr *ip;
	__u16 old_ttl, new_ttl, check;
	__u32 addr, key;
	__u64 *cnt;
	__s64 full;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->ihl != 5)
		return XDP_PASS;
	if (ip->ttl <= 1)
		return XDP_DROP;

	__builtin_memcpy(mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);

	addr = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = addr;

	old_ttl = *(__u16 *)&ip->ttl;
	ip->ttl--;
	new_ttl = *(__u16 *)&ip->ttl;
	csum_replace2(&ip->check, old_ttl, new_ttl);

	/* Recompute from scratch: the result must agree with the incremental update. */
	check = ip->check;
	ip->check = 0;
	full = bpf_csum_diff(0, 0, (__be32 *)ip, sizeof(*ip), 0);
	key = full >= 0 && csum_fold(full) == check ? 0 : 1;
	ip->check = check;

	cnt = bpf_map_lookup_elem(&tx_stats, &key);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
