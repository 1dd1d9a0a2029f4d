// cpu: v4
// Built with -mcpu=v4: signed div/mod (sdiv/smod), sign-extending moves (movsx) and loads
// (ldsx), unconditional byte swaps (bswap) and, from a large jump, gotol.
#include "common.h"

struct v4_result {
	__s64 quot;
	__s64 rem;
	__s32 quot32;
	__s32 rem32;
	__s64 sext8;
	__s64 sext16;
	__s64 sext32;
	__u64 swapped64;
	__u32 swapped32;
	__u16 swapped16;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct v4_result);
} v4_out SEC(".maps");

SEC("xdp")
int xdp_isa_v4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__s64 len = (__s64)(data_end - data);
	__s64 num = -1000003 + len;
	__s32 num32 = -77 - (__s32)len;
	struct v4_result *r;
	__u32 zero = 0;
	__s8 *p8;
	__s16 *p16;
	__s32 *p32;

	r = bpf_map_lookup_elem(&v4_out, &zero);
	if (!r)
		return XDP_ABORTED;
	if (data + 8 > data_end)
		return XDP_PASS;
	p8 = data;
	p16 = data + 2;
	p32 = data + 4;
	r->quot = num / (len | 1);
	r->rem = num % (len | 5);	/* a different divisor keeps smod from becoming sdiv+mul */
	r->quot32 = num32 / ((__s32)len | 3);
	r->rem32 = num32 % ((__s32)len | 9);
	r->sext8 = *p8;		/* ldsxb */
	r->sext16 = *p16;	/* ldsxh */
	r->sext32 = *p32;	/* ldsxw */
	r->sext8 += (__s8)len;	/* movsx 8 */
	r->sext16 += (__s16)num;	/* movsx 16 */
	r->swapped64 = __builtin_bswap64(*(__u64 *)data);
	r->swapped32 = __builtin_bswap32(*(__u32 *)data);
	r->swapped16 = __builtin_bswap16(*(__u16 *)data);
	/* clang only emits gotol for jumps beyond +-32767 slots; spell one out (the conditional
	 * jump keeps the skipped slot reachable for the verifier). num is zeroed iff len == 0.
	 */
	asm volatile("if %1 == 0 goto +1\n\tgotol +1\n\t%0 = 0" : "+r"(num) : "r"(len));
	r->quot += num;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
