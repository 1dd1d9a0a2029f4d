"""Packets built with `struct` (Ethernet, IPv4/IPv6, TCP/UDP), the XDP verdicts, and how the
tests load an object of tests/progs."""
from __future__ import annotations

import struct

import ebpfjit
from tests.support.paths import PROGS_DIR

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX = 0, 1, 2, 3


# --- packet builders ----------------------------------------------------------------------------

def inet_csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src, dst, proto=6, payload=b"", ttl=64) -> bytes:
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, ttl, proto, 0,
                    bytes(src), bytes(dst))
    return h[:10] + struct.pack("!H", inet_csum(h)) + h[12:] + payload


def ipv6(next_header, payload=b"") -> bytes:
    return (struct.pack("!IHBB", 0x60000000, len(payload), next_header, 64)
            + b"\x20\x01" + bytes(13) + b"\x01" + b"\xfe\x80" + bytes(13) + b"\x02" + payload)


def tcp(sport, dport) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 2, 8192, 0, 0)


def udp(sport, dport, data=b"payload!") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


ICMP_ECHO = b"\x08\x00\xf7\xff\x00\x00\x00\x00"
MAC_A, MAC_B = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"


def eth(payload, proto=0x0800, src=MAC_A, dst=MAC_B) -> bytes:
    return dst + src + struct.pack("!H", proto) + payload


def vlan_eth(payload, vid=5, inner=0x0800) -> bytes:
    return eth(struct.pack("!HH", vid, inner) + payload, proto=0x8100)


PACKETS = {
    "tcp80_from_10.0.0.1": eth(ipv4([10, 0, 0, 1], [10, 0, 0, 2], 6, tcp(1234, 80))),
    "tcp443": eth(ipv4([10, 0, 0, 3], [10, 0, 0, 2], 6, tcp(1234, 443))),
    "udp_dns": eth(ipv4([10, 0, 0, 3], [192, 168, 1, 9], 17, udp(53, 5353))),
    "icmp": eth(ipv4([172, 16, 0, 1], [10, 0, 0, 2], 1, ICMP_ECHO)),
    "ipv6_udp": eth(ipv6(17, udp(1, 2, b"")), 0x86DD),
    "vlan_tcp22": vlan_eth(ipv4([10, 0, 0, 4], [10, 0, 0, 2], 6, tcp(5, 22))),
    "tcp22": eth(ipv4([10, 0, 0, 4], [10, 0, 0, 2], 6, tcp(5, 22))),
    "arp": eth(b"\x00\x01\x08\x00\x06\x04\x00\x01" + bytes(20), 0x0806),
    "ttl1": eth(ipv4([10, 0, 0, 9], [10, 0, 0, 2], 6, tcp(1, 8080), ttl=1)),
    "short": bytes(14),
}


def obj(name: str, **kw):
    return ebpfjit.load(str(PROGS_DIR / f"{name}.o"), ncpus=2, **kw)


def u64(b: bytes) -> int:
    return struct.unpack("<Q", b[:8])[0]
