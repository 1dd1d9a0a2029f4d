// Not loadable as a whole: one program calls a kfunc through a subprogram, one uses a CO-RE
// relocation, one is clean. load_spec(per_program=True) marks the first two only.
#include "../common.h"

extern void bpf_rcu_read_lock(void) __ksym;

struct task_like {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

static __attribute__((noinline)) int lock_it(int x)
{
	bpf_rcu_read_lock();
	return x + 1;
}

SEC("xdp")
int uses_kfunc(struct xdp_md *ctx)
{
	return lock_it(ctx->ingress_ifindex) ? XDP_PASS : XDP_DROP;
}

SEC("raw_tp/sys_enter")
int uses_core(struct task_like *t)
{
	return t->tgid;
}

SEC("xdp")
int clean(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
