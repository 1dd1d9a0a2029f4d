// TC classifier: destination NAT for IPv4 TCP/UDP. Addresses and ports are rewritten through
// direct packet access; the checksums are fixed with bpf_l3_csum_replace/bpf_l4_csum_replace.
#include "common.h"

#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define L4_OFF (ETH_HLEN + sizeof(struct iphdr))

struct nat_rule {
	__u32 new_daddr;
	__u16 new_dport;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct nat_rule);
} nat_rules SEC(".maps");

SEC("tc")
int tc_dnat(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct nat_rule *rule;
	struct iphdr *ip;
	__u32 old_daddr, new_daddr, l4_csum_off;
	__u16 *dport, old_dport, new_dport;
	__u8 proto;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = (void *)(eth + 1);
	/* Only option-less headers, so L4_OFF is a constant; +4 covers both ports. */
	if ((void *)(ip + 1) + 4 > data_end || ip->ihl != 5)
		return TC_ACT_OK;
	proto = ip->protocol;
	if (proto == IPPROTO_TCP)
		l4_csum_off = L4_OFF + offsetof(struct tcphdr, check);
	else if (proto == IPPROTO_UDP)
		l4_csum_off = L4_OFF + offsetof(struct udphdr, check);
	else
		return TC_ACT_OK;

	old_daddr = ip->daddr;
	rule = bpf_map_lookup_elem(&nat_rules, &old_daddr);
	if (!rule)
		return TC_ACT_OK;
	new_daddr = rule->new_daddr;
	new_dport = rule->new_dport;
	dport = (void *)(ip + 1) + 2;	/* dest is at offset 2 in both tcphdr and udphdr */
	old_dport = *dport;
	ip->daddr = new_daddr;
	*dport = new_dport;

	/* The helpers invalidate packet pointers; everything below uses offsets. */
	bpf_l4_csum_replace(skb, l4_csum_off, old_daddr, new_daddr, BPF_F_PSEUDO_HDR | 4);
	bpf_l4_csum_replace(skb, l4_csum_off, old_dport, new_dport, 2);
	bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_daddr, new_daddr, 4);
	skb->mark = 0x10000 | bpf_ntohs(new_dport);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
