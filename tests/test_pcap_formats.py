"""pcap/pcapng readers: tcpdump-written fixtures (tests/pcaps, captured on lo with `tcpdump -i lo`,
`-i any` (SLL2), `-i any -y LINUX_SLL`, `--time-stamp-precision=nano`: 2 UDP/IPv4 and 2 UDP/IPv6
datagrams to port 9669 each), pcapng files written here block by block, link-type conversion,
hostile input and the chunked reader."""
import io
import struct
from pathlib import Path

import pytest

from ebpfjit.capture import pcap, stream

PCAPS = Path(__file__).parent / "pcaps"


def udp_dport(frame: bytes) -> int:
    ethertype = int.from_bytes(frame[12:14], "big")
    ip = 14 + (20 if ethertype == 0x0800 else 40)
    return int.from_bytes(frame[ip + 2:ip + 4], "big")


@pytest.mark.parametrize("name,linktype", [("lo_ether.pcap", 1), ("lo_nsec.pcap", 1),
                                           ("any_sll2.pcap", 276), ("any_sll.pcap", 113)])
def test_tcpdump_files(name, linktype):
    with open(PCAPS / name, "rb") as f:
        reader = pcap.PcapReader(f, name)
        raw = list(reader)
    assert reader.linktype == linktype and reader.format == "pcap"
    assert reader.nanosecond == (name == "lo_nsec.pcap")
    frames = list(pcap.iter_ethernet(PCAPS / name))
    assert [int.from_bytes(p.data[12:14], "big") for p in frames] == [0x0800, 0x86DD] * 2
    assert [udp_dport(p.data) for p in frames] == [9669] * 4
    assert [p.data[14] >> 4 for p in frames] == [4, 6, 4, 6]
    assert all(p.ts_ns > 1_600_000_000 * 10**9 for p in frames)
    assert [p.ts_ns for p in frames] == sorted(p.ts_ns for p in frames)
    header = {1: 14, 113: 16, 276: 20}[linktype]
    for r, e in zip(raw, frames):
        assert e.data[14:] == r.data[header:]            # the IP packet is unchanged
        assert e.wire_len == r.wire_len - header + 14
        if linktype != 1:
            assert e.data[:6] == bytes(6)                 # lo's address: zero either way


def test_sll_source_address_and_llc_length():
    sll = struct.pack(">HHH8sH", 0, 1, 6, bytes.fromhex("0a0b0c0d0e0f0000"), 0x0800) + b"\x45" * 20
    frame = pcap.to_ethernet(sll, pcap.LINKTYPE_LINUX_SLL)
    assert frame[:6] == bytes(6) and frame[6:12] == bytes.fromhex("0a0b0c0d0e0f")
    assert frame[12:14] == b"\x08\x00" and frame[14:] == b"\x45" * 20
    sll2 = struct.pack(">HHIHBB8s", 0x0004, 0, 3, 1, 0, 4, bytes(8)) + b"\xaa" * 7
    frame = pcap.to_ethernet(sll2, pcap.LINKTYPE_LINUX_SLL2)
    assert frame[6:12] == bytes(6) and frame[12:14] == (7).to_bytes(2, "big")   # 802.3 length
    with pytest.raises(pcap.PcapError, match="SLL2 packet of 10 bytes"):
        pcap.to_ethernet(bytes(10), pcap.LINKTYPE_LINUX_SLL2)


@pytest.mark.parametrize("family,order,ethertype", [(2, "<", 0x0800), (2, ">", 0x0800),
                                                    (24, "<", 0x86DD), (30, ">", 0x86DD),
                                                    (10, "<", 0x86DD)])
def test_null_loopback_both_orders(family, order, ethertype):
    frame = pcap.to_ethernet(struct.pack(order + "I", family) + b"payload", pcap.LINKTYPE_NULL)
    assert frame == bytes(12) + ethertype.to_bytes(2, "big") + b"payload"


def test_null_unknown_family_and_raw_versions():
    with pytest.raises(pcap.PcapError, match="address family 7"):
        pcap.to_ethernet(struct.pack("<I", 7) + b"x", pcap.LINKTYPE_NULL)
    assert pcap.to_ethernet(b"\x60" + bytes(39), pcap.LINKTYPE_RAW)[12:14] == b"\x86\xdd"
    assert pcap.to_ethernet(b"\x45" + bytes(19), pcap.LINKTYPE_IPV4)[12:14] == b"\x08\x00"
    assert pcap.to_ethernet(b"\x60" + bytes(39), pcap.LINKTYPE_IPV6)[12:14] == b"\x86\xdd"
    with pytest.raises(pcap.PcapError, match="IP version 5"):
        pcap.to_ethernet(b"\x50" + bytes(19), pcap.LINKTYPE_RAW)
    with pytest.raises(pcap.PcapError, match="link type 147 .* not supported"):
        pcap.to_ethernet(b"x", 147)


def test_raw_file_converted_with_record_in_error(tmp_path):
    path = tmp_path / "raw.pcap"
    pcap.write_file(path, [b"\x45" + bytes(19), b"\x30" + bytes(19)], linktype=pcap.LINKTYPE_RAW)
    it = pcap.iter_ethernet(path)
    assert next(it).data[12:14] == b"\x08\x00"
    with pytest.raises(pcap.PcapError, match=r"IP version 3 .*\(record 1\)"):
        next(it)


# -- pcapng, written block by block ---------------------------------------------------------

def block(order, btype, body):
    body += bytes(-len(body) % 4)
    total = 12 + len(body)
    return struct.pack(order + "II", btype, total) + body + struct.pack(order + "I", total)


def shb(order):
    return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(order, linktype, tsresol=None, snaplen=0):
    opts = b""
    if tsresol is not None:
        opts = struct.pack(order + "HH", 9, 1) + bytes([tsresol]) + bytes(3)
        opts += struct.pack(order + "HH", 0, 0)
    return block(order, 1, struct.pack(order + "HHI", linktype, 0, snaplen) + opts)


def epb(order, iface, ts, data, orig=None):
    return block(order, 6, struct.pack(order + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF,
                                       len(data), orig or len(data)) + data)


def spb(order, data):
    return block(order, 3, struct.pack(order + "I", len(data)) + data)


ETH = bytes(12) + b"\x08\x00" + b"\x45" + bytes(19)
RAW6 = b"\x60" + bytes(39)


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_interfaces_resolutions_unknown_blocks(order):
    data = (shb(order) + idb(order, 1) + idb(order, 101, tsresol=9) + idb(order, 1, 0x80 | 10)
            + block(order, 0x0BAD, b"opaque" * 3) + epb(order, 0, 1_500_000, ETH)
            + epb(order, 1, 2_000_000_123, RAW6) + epb(order, 2, 3 * 1024, ETH, orig=1000)
            + spb(order, ETH))
    packets = list(pcap.PcapReader(io.BytesIO(data)))
    assert [(p.linktype, p.ts_ns) for p in packets] == [
        (1, 1_500_000_000), (101, 2_000_000_123), (1, 3_000_000_000), (1, 0)]
    assert packets[2].orig_len == 1000 and packets[1].data == RAW6


def test_pcapng_second_section_other_byte_order(tmp_path):
    data = shb("<") + idb("<", 1) + epb("<", 0, 1, ETH) + shb(">") + idb(">", 229) + epb(">", 0, 2, RAW6)
    path = tmp_path / "two.pcapng"
    path.write_bytes(data)
    frames = list(pcap.iter_ethernet(path))
    assert [p.data[12:14] for p in frames] == [b"\x08\x00", b"\x86\xdd"]
    assert [p.ts_ns for p in frames] == [1000, 2000]
    assert sum(len(c) for c in stream.chunks(path)) == 2


def test_pcapng_errors_name_offset():
    base = shb("<") + idb("<", 1)
    with pytest.raises(pcap.PcapError, match=r"offset 48: packet of interface 3.*\(record 0\)"):
        list(pcap.PcapReader(io.BytesIO(base + epb("<", 3, 0, ETH))))
    huge = struct.pack("<II", 6, 0xFFFFFFF0)
    with pytest.raises(pcap.PcapError, match=r"offset 52: block length 4294967280 exceeds"):
        list(pcap.PcapReader(io.BytesIO(base + huge + bytes(100))))
    bad = epb("<", 0, 0, ETH)
    bad = bad[:-4] + struct.pack("<I", 999)
    with pytest.raises(pcap.PcapError, match="trailer length 999"):
        list(pcap.PcapReader(io.BytesIO(base + bad)))
    with pytest.raises(pcap.PcapError, match="bad block length 13"):
        list(pcap.PcapReader(io.BytesIO(base + struct.pack("<II", 6, 13) + bytes(8))))


def test_pcapng_truncated_after_complete_records():
    data = shb("<") + idb("<", 1) + epb("<", 0, 0, ETH) + epb("<", 0, 0, ETH)
    seen = []
    with pytest.raises(pcap.PcapTruncated, match=r"offset 116: truncated packet.*\(record 1\)"):
        for p in pcap.PcapReader(io.BytesIO(data[:-10])):
            seen.append(p)
    assert len(seen) == 1


# -- classic pcap: hostile lengths, truncation, the chunked reader ---------------------------

def test_huge_record_length_refused_without_allocating():
    buf = io.BytesIO()
    pcap.write(buf, [b"x" * 60], snaplen=0xFFFFFFFF)
    data = buf.getvalue() + struct.pack("<IIII", 0, 0, 0xFFFFFFFF, 60)
    with pytest.raises(pcap.PcapError, match=r"offset 100: record length 4294967295 exceeds the "
                                             r"limit of 262144 bytes.*\(record 1\)"):
        list(pcap.PcapReader(io.BytesIO(data)))


def test_chunks_match_reader_and_report_truncation(tmp_path):
    packets = [pcap.Packet(bytes([i % 256]) * (14 + i % 300), ts_ns=i * 1001, orig_len=2000)
               for i in range(3000)]
    path = tmp_path / "many.pcap"
    with open(path, "wb") as f:
        pcap.write(f, packets, nanosecond=True, byteorder=">")
    got = []
    for chunk in stream.chunks(path, max_packets=700):
        off = 0
        for i, n in enumerate(chunk.lens):
            got.append((bytes(chunk.data[off:off + n]), chunk.timestamp_ns(i), chunk.orig_lens[i]))
            off += n
    assert got == [(p.data, p.ts_ns, 2000) for p in packets]
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 3)
    count = 0
    with pytest.raises(pcap.PcapTruncated, match=r"truncated packet: .*\(record 2999\)") as info:
        for chunk in stream.chunks(path, max_packets=700):
            count += len(chunk)
    assert count == 2999 and info.value.offset == size - len(packets[-1].data)
    with open(path, "r+b") as f:
        f.seek(24 + 8)
        f.write(struct.pack(">I", 1 << 31))
    with pytest.raises(pcap.PcapError, match=r"offset 24: record length 2147483648 exceeds"):
        list(stream.chunks(path))
