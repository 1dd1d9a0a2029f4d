// Reads a .kconfig extern (CONFIG_HZ), which only libbpf can resolve.
#include "../common.h"

extern unsigned int CONFIG_HZ __kconfig;

SEC("xdp")
int kconfig_prog(struct xdp_md *ctx)
{
	return CONFIG_HZ > 100 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
