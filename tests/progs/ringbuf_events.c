// RINGBUF events from XDP: reserve/submit/discard for the common path, bpf_ringbuf_output for
// short records, and bpf_ringbuf_query to report fill level.
#include "common.h"

struct pkt_event {
	__u64 ts;
	__u32 len;
	__u16 proto;
	__u8 kind;
	__u8 pad;
	__u8 head[16];
};

struct short_event {
	__u32 len;
	__u32 avail;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

SEC("xdp")
int xdp_ringbuf(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct pkt_event *e;
	struct short_event se;
	__u32 len = data_end - data;

	if ((void *)(eth + 1) > data_end) {
		se.len = len;
		se.avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
		bpf_ringbuf_output(&events, &se, sizeof(se), 0);
		return XDP_PASS;
	}

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return XDP_PASS;
	e->ts = bpf_ktime_get_ns();
	e->len = len;
	e->proto = bpf_ntohs(eth->h_proto);
	e->kind = 1;
	e->pad = 0;
	__builtin_memcpy(e->head, eth, 14);
	e->head[14] = 0;
	e->head[15] = 0;
	if (e->proto == ETH_P_ARP) {
		/* Nobody wants ARP events. */
		bpf_ringbuf_discard(e, 0);
		return XDP_PASS;
	}
	bpf_ringbuf_submit(e, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
