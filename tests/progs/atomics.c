// Atomic read-modify-write on map values and on the stack (needs -mcpu=v3 for fetch variants).
#include "common.h"

struct atomic_vals {
	__u64 add;
	__u64 or;
	__u64 and;
	__u64 xor;
	__u64 cmpxchg;
	__u64 xchg;
	__u32 add32;
	__u32 xor32;
	__u64 fetched;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct atomic_vals);
} vals SEC(".maps");

SEC("xdp")
int xdp_atomics(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u32 len = ctx->data_end - ctx->data;
	struct atomic_vals *v = bpf_map_lookup_elem(&vals, &zero);
	__u64 stack_counter = len;
	__u64 old;

	if (!v)
		return XDP_ABORTED;

	old = __sync_fetch_and_add(&v->add, len);
	old += __sync_fetch_and_or(&v->or, 1ULL << (len & 63));
	old += __sync_fetch_and_and(&v->and, ~(1ULL << (len & 63)));
	old += __sync_fetch_and_xor(&v->xor, len);
	old += __sync_val_compare_and_swap(&v->cmpxchg, 0, len);
	old += __sync_lock_test_and_set(&v->xchg, len);
	__sync_fetch_and_add(&v->add32, 1);
	__sync_fetch_and_xor(&v->xor32, len);

	/* Atomics on the stack are legal too. */
	__sync_fetch_and_add(&stack_counter, 3);
	old += __sync_val_compare_and_swap(&stack_counter, len + 3, 42);
	v->fetched = old + stack_counter;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
