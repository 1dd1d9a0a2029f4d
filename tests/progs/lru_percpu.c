// LRU_HASH, PERCPU_ARRAY, PERCPU_HASH and LRU_PERCPU_HASH maps driven from one XDP program.
#include "common.h"

struct pkt_stats {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u64);
} last_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pkt_stats);
} cpu_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u64);
} len_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, __u32);
	__type(value, __u32);
} proto_seen SEC(".maps");

SEC("xdp")
int xdp_lru_percpu(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0, src = 0, proto = 0;
	__u16 bucket = (__u32)(data_end - data) / 64;
	struct pkt_stats *stats;
	struct ethhdr *eth = data;
	__u64 now = bpf_ktime_get_ns();
	__u64 one = 1, *cnt;
	__u32 *seen;

	stats = bpf_map_lookup_elem(&cpu_stats, &zero);
	if (stats) {
		/* Per-CPU values need no atomics. */
		stats->packets++;
		stats->bytes += data_end - data;
	}

	cnt = bpf_map_lookup_elem(&len_hist, &bucket);
	if (cnt)
		*cnt += 1;
	else
		bpf_map_update_elem(&len_hist, &bucket, &one, BPF_ANY);

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	proto = bpf_ntohs(eth->h_proto);
	seen = bpf_map_lookup_elem(&proto_seen, &proto);
	if (seen)
		*seen += 1;
	else
		bpf_map_update_elem(&proto_seen, &proto, &zero, BPF_NOEXIST);

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return XDP_PASS;
		src = ip->saddr;
		bpf_map_update_elem(&last_seen, &src, &now, BPF_ANY);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
