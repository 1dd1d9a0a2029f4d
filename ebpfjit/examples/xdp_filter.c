// The bundled example: an XDP firewall that drops IPv4 sources listed in a hash map (10.0.0.1
// is blocked from the start) and counts packets per IP protocol and verdict.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);          /* IPv4 source address, network order */
	__type(value, __u64);        /* packets dropped from it */
} blocked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);          /* IP protocol number */
	__type(value, __u64);        /* packets seen */
} proto_packets SEC(".maps");

/* 10.0.0.1 in network byte order; seeded into `blocked` on the first packet. */
const volatile __u32 initially_blocked = 0x0100000a;
__u64 passed, dropped, non_ip;

SEC("xdp")
int xdp_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	__u64 zero = 0, *count;
	__u32 proto, src;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) {
		__sync_fetch_and_add(&non_ip, 1);
		return XDP_PASS;
	}
	proto = ip->protocol;
	count = bpf_map_lookup_elem(&proto_packets, &proto);
	if (count)
		__sync_fetch_and_add(count, 1);

	src = initially_blocked;
	bpf_map_update_elem(&blocked, &src, &zero, BPF_NOEXIST);
	src = ip->saddr;
	count = bpf_map_lookup_elem(&blocked, &src);
	if (count) {
		__sync_fetch_and_add(count, 1);
		__sync_fetch_and_add(&dropped, 1);
		return XDP_DROP;
	}
	__sync_fetch_and_add(&passed, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
