/* Ethernet / 802.1Q / IPv4 / TCP / UDP header parser, every read checked against len.
 * Input: a TCP segment in a VLAN-tagged IPv4 frame.
 * Returns the class in bits 16..23 and the L4 destination port in bits 0..15.
 */
#include "bench.h"

#define ETH_P_IP 0x0800
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88a8
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

enum parser_class {
	PARSER_SHORT = 1,      /* truncated header */
	PARSER_NOT_IP = 2,
	PARSER_IP_OPTS_BAD = 3,
	PARSER_FRAGMENT = 4,
	PARSER_OTHER_L4 = 5,
	PARSER_TCP = 6,
	PARSER_TCP_SYN = 7,
	PARSER_UDP = 8,
	PARSER_UDP_DNS = 9,
};

BENCH_INLINE uint32_t parser_be16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

BENCH_PROG uint64_t parser_prog(uint8_t *mem, uint64_t len)
{
	uint64_t off = 14;
	uint32_t proto, ihl, sport, dport;

	if (len < off)
		return PARSER_SHORT << 16;
	proto = parser_be16(mem + 12);
	for (int i = 0; i < 2; i++) {   /* up to two VLAN tags (QinQ) */
		if (proto != ETH_P_8021Q && proto != ETH_P_8021AD)
			break;
		if (len < off + 4)
			return PARSER_SHORT << 16;
		proto = parser_be16(mem + off + 2);
		off += 4;
	}
	if (proto != ETH_P_IP)
		return PARSER_NOT_IP << 16;
	if (len < off + 20)
		return PARSER_SHORT << 16;
	if ((mem[off] >> 4) != 4)
		return PARSER_NOT_IP << 16;
	ihl = (mem[off] & 15) * 4;
	if (ihl < 20)
		return PARSER_IP_OPTS_BAD << 16;
	if (parser_be16(mem + off + 6) & 0x3fff)   /* MF set or fragment offset */
		return PARSER_FRAGMENT << 16;
	proto = mem[off + 9];
	off += ihl;
	if (proto == IPPROTO_TCP) {
		if (len < off + 20)
			return PARSER_SHORT << 16;
		sport = parser_be16(mem + off);
		dport = parser_be16(mem + off + 2);
		(void)sport;
		if ((mem[off + 13] & 0x12) == 0x02)   /* SYN without ACK */
			return PARSER_TCP_SYN << 16 | dport;
		return PARSER_TCP << 16 | dport;
	}
	if (proto == IPPROTO_UDP) {
		if (len < off + 8)
			return PARSER_SHORT << 16;
		sport = parser_be16(mem + off);
		dport = parser_be16(mem + off + 2);
		if (sport == 53 || dport == 53)
			return PARSER_UDP_DNS << 16 | dport;
		return PARSER_UDP << 16 | dport;
	}
	return PARSER_OTHER_L4 << 16;
}
