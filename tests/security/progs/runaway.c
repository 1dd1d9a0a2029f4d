// Not for the kernel (its verifier rejects these on purpose): runaway programs for the
// wall-clock timeout, spin locks still held when a frame returns, and loops over string
// helpers that only the budget can stop (tests/security/test_timeout.py, test_lock_frames.py).
#include "../../progs/common.h"

struct locked_value {
	struct bpf_spin_lock lock;
	__u64 value;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} knobs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct locked_value);
} locked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} chain SEC(".maps");

static __u64 *knob(__u32 i)
{
	return bpf_map_lookup_elem(&knobs, &i);
}

// Counts knobs[0] up until knobs[0] + 1 == knobs[1]: with both 0 (a fresh object), 2^64 - 1
// passes unless the host stops it.
SEC("xdp")
int spin_forever(struct xdp_md *ctx)
{
	__u64 *a = knob(0), *b = knob(1);

	if (!a || !b)
		return XDP_ABORTED;
	while (*a + 1 != *b)
		*a += 1;
	return XDP_PASS;
}

static long busy_callback(__u32 index, void *arg)
{
	__u64 *a = arg;

	*a += index;
	return 0;
}

// bpf_loop with the kernel's largest count (1 << 23), again and again.
SEC("xdp")
int long_bpf_loop(struct xdp_md *ctx)
{
	__u64 *a = knob(0), *rounds = knob(2);

	if (!a || !rounds)
		return XDP_ABORTED;
	for (__u64 i = 0; i < *rounds; i++)
		bpf_loop(1 << 23, busy_callback, a, 0);
	return XDP_PASS;
}

// Each program of the chain loops knobs[2] times, then tail-calls the next (itself).
SEC("xdp")
int tail_chain(struct xdp_md *ctx)
{
	__u64 *a = knob(0), *rounds = knob(2);

	if (!a || !rounds)
		return XDP_ABORTED;
	for (__u64 i = 0; i < *rounds; i++)
		*a += i;
	bpf_tail_call(ctx, &chain, 0);
	return XDP_PASS;
}

static __attribute__((noinline)) int lock_and_return(struct locked_value *v)
{
	bpf_spin_lock(&v->lock);
	v->value++;
	return v->value & 1;	/* returns with the lock held */
}

// A bpf-to-bpf callee returns while holding the lock; the caller unlocks it afterwards.
SEC("xdp")
int lock_in_callee(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct locked_value *v = bpf_map_lookup_elem(&locked, &zero);
	int r;

	if (!v)
		return XDP_ABORTED;
	r = lock_and_return(v);
	bpf_spin_unlock(&v->lock);
	return r ? XDP_PASS : XDP_DROP;
}

static long lock_callback(__u32 index, void *arg)
{
	bpf_spin_lock(arg);
	return 1;	/* returns with the lock held */
}

// A bpf_loop callback returns while holding the lock.
SEC("xdp")
int lock_in_callback(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct locked_value *v = bpf_map_lookup_elem(&locked, &zero);

	if (!v)
		return XDP_ABORTED;
	bpf_loop(1, lock_callback, &v->lock, 0);
	bpf_spin_unlock(&v->lock);
	return XDP_PASS;
}

// Locks and unlocks within one frame: fine.
SEC("xdp")
int lock_balanced(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct locked_value *v = bpf_map_lookup_elem(&locked, &zero);

	if (!v)
		return XDP_ABORTED;
	bpf_spin_lock(&v->lock);
	v->value++;
	bpf_spin_unlock(&v->lock);
	return XDP_PASS;
}

// String helpers walking the whole of a 4 KiB buffer on every pass of an endless loop.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[4096]);
} text SEC(".maps");

#define A16 "aaaaaaaaaaaaaaaa"
#define A256 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16 A16

SEC("xdp")
int strncmp_forever(struct xdp_md *ctx)
{
	__u32 zero = 0;
	char *s = bpf_map_lookup_elem(&text, &zero);
	__u64 *a = knob(0), *b = knob(1);

	if (!s || !a || !b)
		return XDP_ABORTED;
	while (*a != *b) {
		*a += 1 + bpf_strncmp(s, 4095, A256);	/* walks 257 bytes of an all-'a' text */
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
