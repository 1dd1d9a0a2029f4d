// Per-CPU semantics under concurrency: each run increments its CPU's slot non-atomically (safe
// in the kernel because a program owns its CPU while it runs) and records which CPU it ran on.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} runs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);          /* CPU number */
	__type(value, __u64);        /* runs on it */
} cpus_seen SEC(".maps");

SEC("xdp")
int count_runs(struct xdp_md *ctx)
{
	__u32 zero = 0, cpu = bpf_get_smp_processor_id();
	__u64 *v;
	int i;

	v = bpf_map_lookup_elem(&runs, &zero);
	if (!v)
		return XDP_ABORTED;
	/* A read-modify-write spread over many instructions: lost updates would show at once if
	 * two concurrent runs shared the slot. */
	for (i = 0; i < 64; i++) {
		__u64 seen = *(volatile __u64 *)v;
		*(volatile __u64 *)v = seen + 1;
	}
	v = bpf_map_lookup_elem(&cpus_seen, &cpu);
	if (!v) {
		__u64 none = 0;
		/* Another CPU's run may create its own entry at the same time: NOEXIST keeps the
		 * first, and the lookup below finds whichever won. */
		bpf_map_update_elem(&cpus_seen, &cpu, &none, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&cpus_seen, &cpu);
		if (!v)
			return XDP_ABORTED;
	}
	__sync_fetch_and_add(v, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
