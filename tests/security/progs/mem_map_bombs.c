// Not loadable: every map here needs far more memory than ebpfjit's default memory_limit
// (256 MiB); tests/security/test_resource_limits.py creates each from this object's specs and
// expects a MapError naming it, without the memory being allocated.
#include "common.h"

struct big_value {
	__u8 bytes[64];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 30);
	__type(key, __u32);
	__type(value, struct big_value);
} huge_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1 << 20);
	__type(key, __u32);
	__type(value, struct big_value);
} huge_percpu_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 28);
	__type(key, __u32);
	__type(value, __u64);
} huge_lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 1 << 28);
	__type(value, __u64);
} huge_queue SEC(".maps");

struct lpm_key {
	__u32 prefixlen;
	__u32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1 << 24);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_key);
	__type(value, __u64);
} huge_lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 30);
} huge_ring SEC(".maps");

SEC("xdp")
int touch_array(struct xdp_md *ctx)
{
	__u32 key = 0;
	struct big_value *v = bpf_map_lookup_elem(&huge_array, &key);

	return v ? v->bytes[0] : 0;
}

char LICENSE[] SEC("license") = "GPL";
