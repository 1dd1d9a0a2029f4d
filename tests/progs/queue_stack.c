// QUEUE and STACK maps (no key): push, peek and pop.
#include "common.h"

struct job {
	__u32 id;
	__u32 len;
};

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 32);
	__type(value, struct job);
} jobs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 16);
	__type(value, __u64);
} undo SEC(".maps");

__u32 next_id;

SEC("xdp")
int xdp_queue_stack(struct xdp_md *ctx)
{
	struct job j = {
		.id = __sync_fetch_and_add(&next_id, 1),
		.len = ctx->data_end - ctx->data,
	};
	struct job head;
	__u64 top;

	if (bpf_map_push_elem(&jobs, &j, BPF_EXIST) < 0)
		return XDP_DROP;
	bpf_map_push_elem(&undo, &(__u64){ j.id }, 0);
	if (bpf_map_peek_elem(&jobs, &head) == 0 && head.len > 1000)
		bpf_map_pop_elem(&jobs, &head);
	if (bpf_map_peek_elem(&undo, &top) == 0 && (top & 1))
		bpf_map_pop_elem(&undo, &top);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
