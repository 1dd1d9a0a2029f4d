/* Shared includes for the ebpfjit test corpus (built by ci/build_testdata.sh). */
#ifndef EBPFJIT_TEST_COMMON_H
#define EBPFJIT_TEST_COMMON_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef __noinline
#define __noinline __attribute__((noinline))
#endif

/* IPv4 address a.b.c.d in network byte order, as it sits in iphdr->saddr. */
#define IP4(a, b, c, d) bpf_htonl(((a) << 24) | ((b) << 16) | ((c) << 8) | (d))

#endif
