// Assorted helpers: trace_printk, get_prandom_u32, get_smp_processor_id, for_each_map_elem,
// bpf_spin_lock in a map value, snprintf and strncmp.
#include "common.h"

struct locked_counter {
	struct bpf_spin_lock lock;
	__u64 value;
	__u64 updates;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct locked_counter);
} locked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} samples SEC(".maps");

struct bpf_map;

struct sum_ctx {
	__u64 sum;
	__u32 nonzero;
};

char msg[32];

static long sum_elem(struct bpf_map *map, __u32 *key, __u64 *val, struct sum_ctx *sc)
{
	sc->sum += *val;
	if (*val)
		sc->nonzero++;
	return 0;
}

SEC("xdp")
int xdp_misc(struct xdp_md *ctx)
{
	struct sum_ctx sc = {};
	struct locked_counter *lc;
	__u32 zero = 0, slot;
	__u64 rnd, *s, args[2];
	long n;

	rnd = bpf_get_prandom_u32();
	slot = (rnd + bpf_get_smp_processor_id()) & 7;
	s = bpf_map_lookup_elem(&samples, &slot);
	if (s)
		*s = rnd;

	lc = bpf_map_lookup_elem(&locked, &zero);
	if (lc) {
		bpf_spin_lock(&lc->lock);
		lc->value += ctx->data_end - ctx->data;
		lc->updates++;
		bpf_spin_unlock(&lc->lock);
	}

	bpf_for_each_map_elem(&samples, sum_elem, &sc, 0);
	args[0] = sc.sum;
	args[1] = sc.nonzero;
	n = bpf_snprintf(msg, sizeof(msg), "sum=%llu nz=%llu", args, sizeof(args));
	if (n > 0 && bpf_strncmp(msg, 4, "sum=") == 0)
		bpf_printk("misc: %s (%ld)", msg, n);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
