// Socket filter: accept IPv4 TCP packets to port 80/443 (whole packet), truncate others to 0.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} sock_stats SEC(".maps");

static __always_inline void account(__u32 slot, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&sock_stats, &slot);

	if (v)
		__sync_fetch_and_add(v, n);
}

SEC("socket")
int socket_web_filter(struct __sk_buff *skb)
{
	struct iphdr ip;
	__u16 dport;
	__u32 off = ETH_HLEN;

	account(0, skb->len);
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 0;
	if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)) < 0)
		return 0;
	if (ip.protocol != IPPROTO_TCP || ip.ihl < 5)
		return 0;
	off += ip.ihl * 4;
	if (bpf_skb_load_bytes(skb, off + offsetof(struct tcphdr, dest), &dport, sizeof(dport)) < 0)
		return 0;
	if (dport == bpf_htons(80) || dport == bpf_htons(443)) {
		account(1, 1);
		return skb->len;
	}
	account(2, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
