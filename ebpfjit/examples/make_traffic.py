"""Regenerate traffic.pcap, the example's input: 40 deterministic Ethernet frames (IPv4 TCP, UDP
and ICMP from a few sources including the blocked 10.0.0.1, plus IPv6 and ARP frames).

Imports: ebpfjit.capture
"""
import os
import random
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from ebpfjit.capture.pcap import write_file  # noqa: E402


def ipv4_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_frame(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    eth = bytes.fromhex("020000000002" "020000000001") + struct.pack("!H", 0x0800)
    saddr, daddr = (bytes(int(x) for x in a.split(".")) for a in (src, dst))
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, proto, 0, saddr, daddr)
    header = header[:10] + struct.pack("!H", ipv4_checksum(header)) + header[12:]
    return eth + header + payload


def main() -> None:
    rng = random.Random(9669)
    sources = ["10.0.0.1", "10.0.0.2", "192.168.1.7", "172.16.5.4"]
    frames = []
    for i in range(36):
        src = sources[i % len(sources)]
        proto = [6, 17, 1][rng.randrange(3)]
        if proto == 6:
            payload = struct.pack("!HHIIBBHHH", 40000 + i, 443, i, 0, 0x50, 0x02, 1024, 0, 0)
        elif proto == 17:
            payload = struct.pack("!HHHH", 5353, 53, 8 + 4, 0) + b"ping"
        else:
            payload = struct.pack("!BBHHH", 8, 0, 0, 1, i) + b"abcdefgh"
        frames.append(ipv4_frame(src, "10.0.0.100", proto, payload))
    ipv6 = bytes.fromhex("020000000002020000000001" "86dd") + bytes(40)
    arp = bytes.fromhex("ffffffffffff020000000001" "0806") + bytes(28)
    frames += [ipv6, arp, ipv6, arp]
    write_file(os.path.join(os.path.dirname(__file__), "traffic.pcap"), frames)


if __name__ == "__main__":
    main()
