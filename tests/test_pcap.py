"""ebpfjit.pcap: classic pcap round trips in every byte order and resolution, and precise errors."""
from __future__ import annotations

import io
import struct

import pytest

from ebpfjit.capture import pcap

PACKETS = [pcap.Packet(bytes(range(60)), ts_ns=1_700_000_000_123_456_000),
           pcap.Packet(b"\xff" * 14, ts_ns=5, orig_len=1514),
           pcap.Packet(b"", ts_ns=0)]


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_round_trip(byteorder, nanosecond):
    buf = io.BytesIO()
    pcap.write(buf, PACKETS, nanosecond=nanosecond, byteorder=byteorder)
    reader = pcap.PcapReader(io.BytesIO(buf.getvalue()))
    assert reader.nanosecond is nanosecond
    assert reader.byteorder == byteorder
    assert reader.linktype == pcap.LINKTYPE_ETHERNET
    assert reader.version == (2, 4)
    got = list(reader)
    assert [p.data for p in got] == [p.data for p in PACKETS]
    assert [p.wire_len for p in got] == [60, 1514, 0]
    # Microsecond files lose the sub-microsecond part; 5 ns rounds down to 0.
    expect_ts = [p.ts_ns if nanosecond else p.ts_ns // 1000 * 1000 for p in PACKETS]
    assert [p.ts_ns for p in got] == expect_ts


def test_bytes_are_packets(tmp_path):
    path = tmp_path / "x.pcap"
    pcap.write_file(path, [b"\x00" * 20, bytearray(b"\x01" * 30)])
    assert [p.data for p in pcap.read_file(path)] == [b"\x00" * 20, b"\x01" * 30]


def test_known_bytes():
    # A hand-built big-endian microsecond file with one 4-byte packet.
    blob = (struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
            + struct.pack(">IIII", 10, 20, 4, 64) + b"abcd")
    (p,) = pcap.read(io.BytesIO(blob))
    assert p == pcap.Packet(b"abcd", 10_000_020_000, 64)


def test_not_pcap():
    with pytest.raises(pcap.PcapError, match="offset 0: not a classic pcap file: magic 7f454c46"):
        pcap.read(io.BytesIO(b"\x7fELF" + b"\0" * 40))


def test_pcapng_hint():
    with pytest.raises(pcap.PcapError, match="pcapng"):
        pcap.read(io.BytesIO(b"\x0a\x0d\x0d\x0a" + b"\0" * 40))


def test_truncated_packet():
    buf = io.BytesIO()
    pcap.write(buf, [b"x" * 10])
    with pytest.raises(pcap.PcapError, match=r"offset 40: truncated packet: 5 of 10 bytes"):
        pcap.read(io.BytesIO(buf.getvalue()[:-5]))


def test_truncated_record_header():
    buf = io.BytesIO()
    pcap.write(buf, [b"x" * 10])
    with pytest.raises(pcap.PcapError, match=r"offset 24: truncated record header"):
        pcap.read(io.BytesIO(buf.getvalue()[:30]))


def test_linktype_filter(tmp_path):
    path = tmp_path / "raw.pcap"
    pcap.write_file(path, [b"\x45" + b"\0" * 19], linktype=pcap.LINKTYPE_RAW)
    with pytest.raises(pcap.PcapError, match="link type 101 is not supported"):
        pcap.read_file(path)
    assert len(pcap.read_file(path, linktypes=None)) == 1


def test_error_is_value_error():
    assert issubclass(pcap.PcapError, ValueError)
