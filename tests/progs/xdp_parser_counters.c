// XDP: Ethernet/VLAN/IPv4/IPv6/TCP/UDP/ICMP parser counting packets per protocol.
#include "common.h"

enum proto_counter {
	CNT_ETH = 0,
	CNT_VLAN,
	CNT_IPV4,
	CNT_IPV6,
	CNT_TCP,
	CNT_UDP,
	CNT_ICMP,
	CNT_ICMPV6,
	CNT_OTHER,
	CNT_MALFORMED,
	CNT_MAX,
};

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} proto_counts SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *val = bpf_map_lookup_elem(&proto_counts, &idx);

	if (val)
		__sync_fetch_and_add(val, 1);
}

SEC("xdp")
int xdp_count_protocols(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *cursor;
	__u16 proto;
	__u8 l4;
	int i;

	if ((void *)(eth + 1) > data_end) {
		count(CNT_MALFORMED);
		return XDP_PASS;
	}
	count(CNT_ETH);
	proto = eth->h_proto;
	cursor = eth + 1;

	/* Up to two stacked VLAN tags (802.1Q, 802.1ad). */
#pragma unroll
	for (i = 0; i < 2; i++) {
		struct vlan_hdr *vh = cursor;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > data_end) {
			count(CNT_MALFORMED);
			return XDP_PASS;
		}
		count(CNT_VLAN);
		proto = vh->encap_proto;
		cursor = vh + 1;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = cursor;

		if ((void *)(ip + 1) > data_end || ip->ihl < 5) {
			count(CNT_MALFORMED);
			return XDP_PASS;
		}
		count(CNT_IPV4);
		l4 = ip->protocol;
		cursor = (void *)ip + ip->ihl * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = cursor;

		if ((void *)(ip6 + 1) > data_end) {
			count(CNT_MALFORMED);
			return XDP_PASS;
		}
		count(CNT_IPV6);
		l4 = ip6->nexthdr;
		cursor = ip6 + 1;
	} else {
		count(CNT_OTHER);
		return XDP_PASS;
	}

	switch (l4) {
	case IPPROTO_TCP:
		if (cursor + sizeof(struct tcphdr) > data_end)
			goto malformed;
		count(CNT_TCP);
		break;
	case IPPROTO_UDP:
		if (cursor + sizeof(struct udphdr) > data_end)
			goto malformed;
		count(CNT_UDP);
		break;
	case IPPROTO_ICMP:
		if (cursor + 8 /* icmphdr */ > data_end)
			goto malformed;
		count(CNT_ICMP);
		break;
	case IPPROTO_ICMPV6:
		count(CNT_ICMPV6);
		break;
	default:
		count(CNT_OTHER);
	}
	return XDP_PASS;
malformed:
	count(CNT_MALFORMED);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
