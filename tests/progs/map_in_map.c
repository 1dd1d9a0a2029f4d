// ARRAY_OF_MAPS and HASH_OF_MAPS with inner map templates; the array of maps is statically
// initialised with `.values` pointing at two concrete inner maps.
#include "common.h"

struct inner_array {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
};

struct inner_array inner_a SEC(".maps");
struct inner_array inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner_array);
} outer_array SEC(".maps") = {
	.values = { &inner_a, [3] = &inner_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 16);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_HASH);
		__uint(max_entries, 32);
		__type(key, __u16);
		__type(value, __u32);
	});
} outer_hash SEC(".maps");

SEC("xdp")
int xdp_map_in_map(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;
	__u32 outer_key = len & 3, inner_key = len & 7;
	__u16 hkey = len;
	__u64 *val;
	__u32 *hval;
	void *inner;

	inner = bpf_map_lookup_elem(&outer_array, &outer_key);
	if (inner) {
		val = bpf_map_lookup_elem(inner, &inner_key);
		if (val)
			__sync_fetch_and_add(val, 1);
	}
	inner = bpf_map_lookup_elem(&outer_hash, &len);
	if (inner) {
		hval = bpf_map_lookup_elem(inner, &hkey);
		if (hval)
			*hval += 1;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
