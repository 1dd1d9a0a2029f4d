// Not loadable by the kernel: a program that writes its value's bpf_spin_lock word (the
// verifier forbids touching the field) and one that calls bpf_map_update_elem(BPF_F_LOCK)
// while holding that lock (the verifier refuses helper calls under a lock). Used by
// tests/security/test_f_lock.py: neither may hang the program or the host.
#include "common.h"

struct locked_val {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct locked_val);
} locked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct locked_val);
} locked_hash SEC(".maps");

static __always_inline long update_under_lock(void *map)
{
	struct locked_val nv = { .count = 7 }, *v;
	__u32 key = 0;
	long rc;

	v = bpf_map_lookup_elem(map, &key);
	if (!v)
		return -1;
	bpf_spin_lock(&v->lock);
	rc = bpf_map_update_elem(map, &key, &nv, BPF_F_LOCK);
	bpf_spin_unlock(&v->lock);
	return rc;
}

// bpf_map_update_elem(BPF_F_LOCK) into the value whose lock this run holds.
SEC("xdp")
int update_while_locked(struct xdp_md *ctx)
{
	return update_under_lock(&locked) == 0 ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int update_while_locked_hash(struct xdp_md *ctx)
{
	return update_under_lock(&locked_hash) == 0 ? XDP_PASS : XDP_DROP;
}

// Writes the packet's first u32 into the lock word of locked[0] and locked_hash[0] and exits.
SEC("xdp")
int poison_lock(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct locked_val *v;
	__u32 key = 0, word;

	if (data + 4 > data_end)
		return XDP_ABORTED;
	word = *(__u32 *)data;
	v = bpf_map_lookup_elem(&locked, &key);
	if (v)
		*(volatile __u32 *)&v->lock = word;
	v = bpf_map_lookup_elem(&locked_hash, &key);
	if (v)
		*(volatile __u32 *)&v->lock = word;
	return XDP_PASS;
}

// A BPF_F_LOCK update without holding the lock: count = 7 in locked[0] (or an error code).
SEC("xdp")
int locked_update(struct xdp_md *ctx)
{
	struct locked_val nv = { .count = 7 };
	__u32 key = 0;

	return bpf_map_update_elem(&locked, &key, &nv, BPF_F_LOCK) == 0 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
