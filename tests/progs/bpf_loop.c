// bpf_loop with a callback summing the first bytes of the packet through a context struct.
#include "common.h"

struct loop_ctx {
	void *data;
	void *data_end;
	__u64 sum;
	__u32 seen;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} loop_sum SEC(".maps");

static long sum_byte(__u32 index, void *arg)
{
	struct loop_ctx *lc = arg;
	__u8 *p = lc->data;

	if (index >= 64)
		return 1;
	p += index;
	if ((void *)(p + 1) > lc->data_end)
		return 1;	/* stop: out of packet */
	lc->sum += *p;
	lc->seen++;
	return 0;
}

SEC("xdp")
int xdp_bpf_loop(struct xdp_md *ctx)
{
	struct loop_ctx lc = {
		.data = (void *)(long)ctx->data,
		.data_end = (void *)(long)ctx->data_end,
	};
	__u32 zero = 0;
	__u64 *out;
	long n;

	n = bpf_loop(64, sum_byte, &lc, 0);
	out = bpf_map_lookup_elem(&loop_sum, &zero);
	if (out)
		*out = lc.sum + ((__u64)n << 32);
	return lc.seen == 64 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
