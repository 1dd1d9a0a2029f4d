// XDP: IPv4 source-address ACL in an LPM_TRIE; the longest matching prefix decides.
#include "common.h"

struct lpm_v4_key {
	__u32 prefixlen;
	__u32 addr;
};

enum acl_action {
	ACL_ALLOW = 1,
	ACL_DENY = 2,
};

struct acl_entry {
	enum acl_action action;
	__u32 hits;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4_key);
	__type(value, struct acl_entry);
} acl SEC(".maps");

SEC("xdp")
int xdp_lpm_acl(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct lpm_v4_key key;
	struct acl_entry *e;
	struct iphdr *ip;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;

	key.prefixlen = 32;
	key.addr = ip->saddr;
	e = bpf_map_lookup_elem(&acl, &key);
	if (!e)
		return XDP_PASS;
	__sync_fetch_and_add(&e->hits, 1);
	return e->action == ACL_DENY ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
