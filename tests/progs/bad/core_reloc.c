// Uses a CO-RE field access (preserve_access_index): .BTF.ext gets a core_relo record.
#include "../common.h"

struct task_like {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

SEC("raw_tp/sys_enter")
int core_prog(struct task_like *t)
{
	return t->tgid;
}

char LICENSE[] SEC("license") = "GPL";
