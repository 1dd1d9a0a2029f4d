// Global data: `const volatile` config in .rodata, a table in .data, counters in .bss and a
// string literal in .rodata.str1.1, all reached through PSEUDO_MAP_VALUE lddw.
#include "common.h"

const volatile __u32 cfg_drop_proto = IPPROTO_UDP;
const volatile __u8 cfg_verbose = 0;
const volatile __u64 cfg_magic = 0x1122334455667788ULL;

__u16 port_weights[8] = { 1, 2, 3, 5, 8, 13, 21, 34 };
__u32 data_generation = 7;

enum log_level {
	LOG_OFF = 0,
	LOG_INFO = 2,
	LOG_DEBUG = 3,
};

/* Exercises BTF value formatting: char string, enum, bitfields, signed, bool, pointer, bytes. */
struct tunables {
	char name[8];
	enum log_level level;
	__u8 enabled : 1, mode : 3, spare : 4;
	__s16 offset;
	_Bool strict;
	__u32 *unused_ptr;
	unsigned char raw[4];
};

struct tunables tunables = {
	.name = "edge",
	.level = LOG_DEBUG,
	.enabled = 1,
	.mode = 5,
	.offset = -12,
	.strict = 1,
	.raw = { 1, 2, 3, 4 },
};

__u64 total_packets;
__u64 dropped_packets;
__u32 last_len;

SEC("xdp")
int xdp_global_data(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 len = data_end - data;

	__sync_fetch_and_add(&total_packets, 1);
	last_len = len;
	if (cfg_verbose || tunables.level == LOG_DEBUG)
		bpf_printk("len %u magic %llx", len, cfg_magic);
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (ip->protocol == cfg_drop_proto) {
		__sync_fetch_and_add(&dropped_packets, port_weights[len & 7]);
		return XDP_DROP;
	}
	data_generation++;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
