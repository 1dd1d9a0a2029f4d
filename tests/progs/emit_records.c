// What a program emits, for `ebpfjit run`: a `struct event` per Ethernet frame into the ring
// buffer `events` (typed for readers by the declaration `events_record` below), a 4-byte record
// for ARP frames (not the record type's size: printed in hex), and a bpf_printk line. The XDP metadata that
// --ctx-in describes (xdp_md.data > 0) is copied into the event and decides the verdict.
#include "common.h"

struct event {
	__u32 ifindex;
	__u32 queue;
	__u16 proto;
	__u8 kind;
	__u8 meta_len;
	__u32 meta;
	__u64 len;
	char tag[8];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

/* The records of ring buffer `events` are a struct event: `<map>_record`, of the record type or
 * a pointer to it, is how a reader (ebpfjit run) learns the type from BTF. */
struct event *events_record __attribute__((unused));

SEC("xdp")
int xdp_emit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	void *meta = (void *)(long)ctx->data_meta;
	struct ethhdr *eth = data;
	__u32 meta_len = data - meta, arp = 7, first = 0;
	struct event *e;
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		bpf_ringbuf_output(&events, &arp, sizeof(arp), 0);
		return XDP_PASS;
	}
	if (meta + 4 <= data)
		first = *(__u32 *)meta;
	proto = bpf_ntohs(eth->h_proto);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return XDP_ABORTED;
	e->ifindex = ctx->ingress_ifindex;
	e->queue = ctx->rx_queue_index;
	e->proto = proto;
	e->kind = 1;
	e->meta_len = meta_len;
	e->meta = first;
	e->len = data_end - data;
	__builtin_memcpy(e->tag, "packet", 7);
	e->tag[7] = 0;
	bpf_ringbuf_submit(e, 0);
	bpf_printk("emitted proto %x meta %u", proto, meta_len);
	return meta_len ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
