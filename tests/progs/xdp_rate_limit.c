// XDP: per-source-IPv4 rate limiter (fixed one-second windows) in a HASH map.
#include "common.h"

#define WINDOW_NS 1000000000ULL

struct flow_state {
	__u64 window_start;
	__u64 packets;
	__u64 dropped;
};

const volatile __u64 packets_per_window = 100;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct flow_state);
} flows SEC(".maps");

SEC("xdp")
int xdp_rate_limit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct flow_state *st;
	__u64 now;
	__u32 src;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;

	src = ip->saddr;
	now = bpf_ktime_get_ns();
	st = bpf_map_lookup_elem(&flows, &src);
	if (!st) {
		struct flow_state fresh = { .window_start = now, .packets = 1 };

		bpf_map_update_elem(&flows, &src, &fresh, BPF_NOEXIST);
		return XDP_PASS;
	}
	if (now - st->window_start >= WINDOW_NS) {
		st->window_start = now;
		st->packets = 0;
	}
	if (st->packets >= packets_per_window) {
		__sync_fetch_and_add(&st->dropped, 1);
		return XDP_DROP;
	}
	__sync_fetch_and_add(&st->packets, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
