// cpu: v2
// Built with -mcpu=v2: no 32-bit jumps/ALU32 subregister codegen, no atomics with fetch.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} v2_out SEC(".maps");

SEC("xdp")
int xdp_isa_v2(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;
	__u32 zero = 0;
	__u64 acc = 0xcbf29ce484222325ULL;
	__u64 *out;
	int i;

	for (i = 0; i < 16; i++) {
		acc ^= (len + i) & 0xff;
		acc *= 0x100000001b3ULL;
		if ((__s64)acc < 0)
			acc = (acc >> 3) | (acc << 61);
	}
	acc += (__u32)len / 3 + (__u32)len % 7;
	out = bpf_map_lookup_elem(&v2_out, &zero);
	if (out)
		*out = acc;
	return len > 60 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
