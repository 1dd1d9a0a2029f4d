// Legacy `maps` section with struct bpf_map_def (pre-BTF map definitions). libbpf >= 1.0
// refuses these, so this object is only for the ebpfjit ELF reader, not for the kernel.
#include "common.h"

struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def SEC("maps") legacy_counts = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 16,
};

struct bpf_map_def SEC("maps") legacy_hash = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u32),
	.max_entries = 128,
	.map_flags = BPF_F_NO_PREALLOC,
};

SEC("socket")
int legacy_socket(struct __sk_buff *skb)
{
	__u32 key = skb->protocol & 15, len = skb->len;
	__u64 *v = bpf_map_lookup_elem(&legacy_counts, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
	bpf_map_update_elem(&legacy_hash, &key, &len, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
__u32 _version SEC("version") = 0x060000;
