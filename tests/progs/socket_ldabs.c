// A classic socket filter written with the legacy packet instructions (LD_ABS / LD_IND, which
// clang emits for the llvm.bpf.load.* intrinsics): drop TCP to port 22, keep everything else,
// and count what it saw. Offsets are from the network header, as for any socket filter.
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");   /* 0: IPv4, 1: TCP, 2: dropped, 3: sum of source addresses */

static void bump(__u32 key, __u64 by)
{
	__u64 *v = bpf_map_lookup_elem(&seen, &key);

	if (v)
		__sync_fetch_and_add(v, by);
}

SEC("socket")
int ssh_blocker(struct __sk_buff *skb)
{
	__u64 ihl, dport;

	if ((load_byte(skb, 0) >> 4) != 4)
		return -1;
	bump(0, 1);
	bump(3, load_word(skb, 12));
	if (load_byte(skb, 9) != IPPROTO_TCP)
		return -1;
	bump(1, 1);
	ihl = (load_byte(skb, 0) & 0xf) * 4;
	dport = load_half(skb, ihl + 2);   /* variable offset: LD_IND */
	if (dport == 22) {
		bump(2, 1);
		return 0;
	}
	return -1;
}

char LICENSE[] SEC("license") = "GPL";
