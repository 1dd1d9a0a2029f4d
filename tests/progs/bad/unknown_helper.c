// A well-formed object calling helper id 999, which no kernel and no ebpfjit runtime provides.
// The ELF reader must load it; rejecting it is the verifier's job.
#include "../common.h"

SEC("xdp")
int unknown_helper(struct xdp_md *ctx)
{
	return ((long (*)(void))999)();
}

char LICENSE[] SEC("license") = "GPL";
