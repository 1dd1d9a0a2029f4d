// Raw tracepoint style program reading a user-defined event record through the context pointer
// (the kernel hands raw_tp programs an args array; we treat args[0] as a struct event pointer).
#include "common.h"

struct event {
	__u32 pid;
	__u32 uid;
	__u64 ts;
	char comm[16];
	__s32 ret;
	__u32 flags;
};

struct comm_key {
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct comm_key);
	__type(value, __u64);
} per_comm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} totals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event);
} last_event SEC(".maps");

const volatile __u32 min_pid = 100;

SEC("raw_tracepoint/sys_enter")
int count_events(struct bpf_raw_tracepoint_args *ctx)
{
	struct event *uev = (struct event *)ctx->args[0];
	struct comm_key key = {};
	struct event ev;
	__u64 one = 1, *v;
	__u32 slot;

	if (bpf_probe_read_kernel(&ev, sizeof(ev), uev) < 0)
		return 0;
	slot = ev.ret < 0 ? 1 : 0;
	v = bpf_map_lookup_elem(&totals, &slot);
	if (v)
		__sync_fetch_and_add(v, 1);
	if (ev.pid < min_pid || (ev.flags & 1))
		return 0;
	slot = 0;
	bpf_map_update_elem(&last_event, &slot, &ev, BPF_ANY);
	__builtin_memcpy(key.comm, ev.comm, sizeof(key.comm));
	v = bpf_map_lookup_elem(&per_comm, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&per_comm, &key, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
