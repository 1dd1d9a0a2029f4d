// Not loadable by the kernel with its defaults (memlock/memcg): a 2^30-entry hash map that
// ebpfjit must create lazily, and a program inserting the key it reads from the packet.
// tests/security/test_resource_limits.py fills it past a small memory_limit.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 30);
	__type(key, __u32);
	__type(value, __u64);
} huge_hash SEC(".maps");

/* Returns bpf_map_update_elem's result for the u32 key at the start of the packet (0 or
 * -errno), 1 when the packet is too short. */
SEC("xdp")
int insert_key(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 key;
	__u64 value = 1;

	if (data + sizeof(key) > end)
		return 1;
	key = *(__u32 *)data;
	return bpf_map_update_elem(&huge_hash, &key, &value, BPF_NOEXIST);
}

char LICENSE[] SEC("license") = "GPL";
