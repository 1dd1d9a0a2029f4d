// Not for the kernel (a test of BTF decoding bounds). A map value whose BTF nests 2^32
// zero-sized structs in 4 bytes: decoding it (lookup_typed, dump) must stop at
// ebpfjit.btf.MAX_DECODED_ELEMENTS with a BtfLimitError, not run out of memory.
#include "common.h"

struct empty {
};

struct bomb {
	struct empty z[65536][65536];
	__u32 x;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bomb);
} bomb_map SEC(".maps");

SEC("xdp")
int read_bomb(struct xdp_md *ctx)
{
	__u32 key = 0;
	struct bomb *b = bpf_map_lookup_elem(&bomb_map, &key);

	return b ? b->x : 0;
}

char LICENSE[] SEC("license") = "GPL";
