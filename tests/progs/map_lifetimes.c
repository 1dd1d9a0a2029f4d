// Not loadable by the kernel: programs that keep map value pointers across a replacement of their inner
// map, and across runs (a saved pointer written later), as a hostile program would. Used by
// tests/security/test_lifetimes.py. bpf_ktime_get_ns() is the tests' hook: they replace it with
// a Python helper that swaps inner maps or PROG_ARRAY slots while the program runs.
#include "common.h"

struct inner_array {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 256);
	__type(key, __u32);
	__array(values, struct inner_array);
} outer SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 16);
	__type(key, __u32);
	__array(values, struct inner_array);
} outer_hash SEC(".maps");

/* Inner maps of any max_entries (BPF_F_INNER_MAP): their arenas differ in size. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__uint(map_flags, BPF_F_INNER_MAP);
		__uint(max_entries, 1);
		__type(key, __u32);
		__type(value, __u64);
	});
} outer_sized SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} jump SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

/* A value pointer saved by one run for a later one (programs are not verified). */
__u64 saved;

static __always_inline __u64 *inner_value(void *outer_map, __u32 slot, __u32 index)
{
	void *inner = bpf_map_lookup_elem(outer_map, &slot);

	if (!inner)
		return 0;
	return bpf_map_lookup_elem(inner, &index);
}

/* Takes outer[0][0], lets the hook replace outer[0], then writes through the old pointer. */
SEC("xdp")
int write_after_replace(struct xdp_md *ctx)
{
	__u64 *v = inner_value(&outer, 0, 0);

	if (!v)
		return 1;
	bpf_ktime_get_ns();
	*v += 7;
	bpf_ktime_get_ns();
	return 0;
}

/* The same through the HASH_OF_MAPS. */
SEC("xdp")
int write_after_replace_hash(struct xdp_md *ctx)
{
	__u64 *v = inner_value(&outer_hash, 0, 0);

	if (!v)
		return 1;
	bpf_ktime_get_ns();
	*v += 7;
	bpf_ktime_get_ns();
	return 0;
}

/* Saves a pointer to outer[0][1] for write_saved. */
SEC("xdp")
int save_pointer(struct xdp_md *ctx)
{
	__u64 *v = inner_value(&outer, 0, 1);

	if (!v)
		return 1;
	saved = (__u64)(unsigned long)v;
	return 0;
}

SEC("xdp")
int write_saved(struct xdp_md *ctx)
{
	__u64 *v = (__u64 *)(unsigned long)saved;

	if (!v)
		return 1;
	*v = 0x41;
	return 0;
}

/* outer[len & 255][0] += 1 (XDP_PASS), XDP_ABORTED without an inner map there. */
SEC("xdp")
int count_in_inner(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;
	__u64 *v = inner_value(&outer, len & 255, 0);

	if (!v)
		return XDP_ABORTED;
	__sync_fetch_and_add(v, 1);
	return XDP_PASS;
}

/* outer_sized[0][0] += 1 (XDP_PASS), XDP_ABORTED without an inner map. */
SEC("xdp")
int count_in_sized(struct xdp_md *ctx)
{
	__u64 *v = inner_value(&outer_sized, 0, 0);

	if (!v)
		return XDP_ABORTED;
	__sync_fetch_and_add(v, 1);
	return XDP_PASS;
}

/* Tail-calls jump[0]; XDP_ABORTED when the slot is empty. */
SEC("xdp")
int dispatch(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &jump, 0);
	return XDP_ABORTED;
}

/* A tail-call target that calls the hook (which may replace it in jump[0]) and then goes on. */
SEC("xdp")
int target_hook(struct xdp_md *ctx)
{
	__u64 n = bpf_ktime_get_ns();
	__u32 k = 1, i;
	__u64 *v = bpf_map_lookup_elem(&hits, &k);

	for (i = 0; i < 16; i++)
		n = n * 3 + i;
	if (v)
		*v += n;
	return (int)(n & 0xffff);
}

/* Stress: uses an inner map and tail-calls jump[0] (target_pass / target_drop). */
SEC("xdp")
int stress(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;
	__u64 *v = inner_value(&outer, len & 3, len & 3);

	if (v)
		__sync_fetch_and_add(v, 1);
	v = inner_value(&outer_hash, len & 3, 0);
	if (v)
		__sync_fetch_and_add(v, 1);
	bpf_tail_call(ctx, &jump, 0);
	return XDP_ABORTED;
}

SEC("xdp")
int target_pass(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&hits, &k);

	if (v)
		__sync_fetch_and_add(v, 1);
	return XDP_PASS;
}

SEC("xdp")
int target_drop(struct xdp_md *ctx)
{
	__u32 k = 2;
	__u64 *v = bpf_map_lookup_elem(&hits, &k);

	if (v)
		__sync_fetch_and_add(v, 1);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
