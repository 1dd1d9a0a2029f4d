"""Capture files: classic pcap and pcapng, read as a stream; Ethernet frames for XDP and tc.

Formats read:
- classic pcap, both byte orders, microsecond (0xa1b2c3d4) and nanosecond (0xa1b23c4d) magic;
- pcapng: section header, interface description, enhanced, simple and (obsolete) packet blocks;
  several sections (each with its own byte order) and several interfaces per section, each with
  its own link type and timestamp resolution (`if_tsresol`, powers of 10 or 2) and `if_tsoffset`;
  every other block type is skipped unread.

Timestamps are integer nanoseconds (a nanosecond file round-trips exactly). Written files are
classic pcap, little endian, version 2.4.

Link types and the Ethernet frame an XDP or tc program gets (`to_ethernet`):
- ETHERNET (1): unchanged.
- RAW (101), IPV4 (228), IPV6 (229): a 14-byte header is prepended: destination and source
  00:00:00:00:00:00, ethertype 0x0800 or 0x86dd (for RAW from the IP version nibble; another
  version is an error).
- NULL (0, BSD loopback: a 4-byte address family in the capturing host's byte order, read in
  whichever order gives a small value) and LOOP (108, always big endian): both addresses zero,
  ethertype 0x0800 for AF_INET (2) and 0x86dd for AF_INET6 (10, 24, 28, 30).
- LINUX_SLL (113) and LINUX_SLL2 (276, `tcpdump -i any`): the cooked header is replaced; the
  destination is zero, the source is the header's link-layer address when it is 6 bytes long
  (zero otherwise), the ethertype is the header's protocol field. Protocol values below 0x0600
  (802.2 LLC, Novell 802.3) get the 802.3 length (the payload's length) instead.
The packet's original length grows by the bytes added or removed.

Errors (`PcapError`, an EbpfError) name the file, the byte offset and, for records, the record's
index. Memory stays bounded on hostile input: a record or block longer than `MAX_RECORD`
(256 KiB) is refused before anything is allocated for it, skipped blocks are read in pieces.
A truncated last record raises `PcapTruncated` after every complete record was yielded.

Must not import: anything from ebpfjit but errors.

>>> import io
>>> buf = io.BytesIO()
>>> write(buf, [Packet(b"\\x01" * 60, ts_ns=1_500_000_000)])
>>> [(len(p.data), p.ts_ns) for p in read(io.BytesIO(buf.getvalue()))]
[(60, 1500000000)]

Imports: ebpfjit.errors
"""
from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import EbpfError

__all__ = ["LINKTYPE_ETHERNET", "LINKTYPE_RAW", "LINKTYPE_NULL", "LINKTYPE_LOOP",
           "LINKTYPE_LINUX_SLL", "LINKTYPE_LINUX_SLL2", "LINKTYPE_IPV4", "LINKTYPE_IPV6",
           "LINKTYPES", "MAX_RECORD", "Packet", "PcapError", "PcapTruncated", "PcapReader",
           "read", "read_file", "to_ethernet", "write", "write_file"]

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
LINKTYPES = {LINKTYPE_NULL: "NULL", LINKTYPE_ETHERNET: "ETHERNET", LINKTYPE_RAW: "RAW",
             LINKTYPE_LOOP: "LOOP", LINKTYPE_LINUX_SLL: "LINUX_SLL", LINKTYPE_IPV4: "IPV4",
             LINKTYPE_IPV6: "IPV6", LINKTYPE_LINUX_SLL2: "LINUX_SLL2"}

MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_GLOBAL = "IHHiIII"    # magic, major, minor, thiszone, sigfigs, snaplen, linktype
_RECORD = "IIII"       # ts_sec, ts_frac, incl_len, orig_len
_GLOBAL_SIZE = struct.calcsize("<" + _GLOBAL)
_RECORD_SIZE = struct.calcsize("<" + _RECORD)
DEFAULT_SNAPLEN = 262144
MAX_RECORD = 262144        # the largest packet (and pcapng block) accepted, whatever snaplen says
_SKIP_PIECE = 65536

_ETH_IPV4, _ETH_IPV6 = 0x0800, 0x86DD
_AF_INET6 = (10, 24, 28, 30)    # Linux, NetBSD/OpenBSD, FreeBSD, macOS


class PcapError(EbpfError, ValueError):
    """A file that is not a capture file, is damaged or truncated. Names the file, the byte
    offset and, for a record, its index (`index`, counting from 0)."""

    def __init__(self, message: str, path: str | None = None, offset: int | None = None,
                 index: int | None = None):
        self.path = path
        self.offset = offset
        self.index = index
        self.reason = message
        where = [p for p in (path, f"offset {offset}" if offset is not None else None) if p]
        record = f" (record {index})" if index is not None else ""
        super().__init__(": ".join(where + [message + record]))


class PcapTruncated(PcapError):
    """The file ends inside a record: every record before `index` was complete."""


@dataclass(frozen=True)
class Packet:
    """One captured packet. `orig_len` is the length on the wire (>= len(data) when truncated);
    `linktype` is its interface's link type."""
    data: bytes
    ts_ns: int = 0
    orig_len: int | None = None
    linktype: int = LINKTYPE_ETHERNET

    @property
    def wire_len(self) -> int:
        return len(self.data) if self.orig_len is None else self.orig_len

    @property
    def timestamp(self) -> float:
        return self.ts_ns / 1e9


def _eth(ethertype: int, payload: bytes, src: bytes = bytes(6)) -> bytes:
    return bytes(6) + src + ethertype.to_bytes(2, "big") + payload


def to_ethernet(data: bytes, linktype: int) -> bytes:
    """The Ethernet frame for a packet captured with `linktype` (see the module docstring).
    Raises PcapError (without a location: the caller adds it) for a packet that cannot be
    converted or an unsupported link type."""
    if linktype == LINKTYPE_ETHERNET:
        return data
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        if linktype == LINKTYPE_RAW:
            version = data[0] >> 4 if data else 0
            if version not in (4, 6):
                raise PcapError(f"raw IP packet with IP version {version} (expected 4 or 6)")
            linktype = LINKTYPE_IPV4 if version == 4 else LINKTYPE_IPV6
        return _eth(_ETH_IPV4 if linktype == LINKTYPE_IPV4 else _ETH_IPV6, data)
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(data) < 4:
            raise PcapError(f"loopback packet of {len(data)} bytes (no 4-byte family)")
        family = int.from_bytes(data[:4], "big")
        if linktype == LINKTYPE_NULL and family > 0xFFFF:     # written little endian
            family = int.from_bytes(data[:4], "little")
        if family == 2:
            return _eth(_ETH_IPV4, data[4:])
        if family in _AF_INET6:
            return _eth(_ETH_IPV6, data[4:])
        raise PcapError(f"loopback packet with address family {family} (not IPv4/IPv6)")
    if linktype == LINKTYPE_LINUX_SLL:
        if len(data) < 16:
            raise PcapError(f"Linux SLL packet of {len(data)} bytes (header is 16)")
        addr_len = int.from_bytes(data[4:6], "big")
        addr, proto, payload = data[6:14], int.from_bytes(data[14:16], "big"), data[16:]
    elif linktype == LINKTYPE_LINUX_SLL2:
        if len(data) < 20:
            raise PcapError(f"Linux SLL2 packet of {len(data)} bytes (header is 20)")
        proto, addr_len, addr, payload = (int.from_bytes(data[0:2], "big"), data[11],
                                          data[12:20], data[20:])
    else:
        name = LINKTYPES.get(linktype, "unknown")
        raise PcapError(f"link type {linktype} ({name}) is not supported (supported: "
                        + ", ".join(f"{v} {k}" for k, v in sorted(LINKTYPES.items())) + ")")
    src = addr[:6] if addr_len == 6 else bytes(6)
    return _eth(proto if proto >= 0x0600 else len(payload), payload, src)


class _Interface:
    __slots__ = ("linktype", "snaplen", "scale_num", "scale_den", "offset_ns")

    def __init__(self, linktype: int, snaplen: int):
        self.linktype, self.snaplen = linktype, snaplen
        self.scale_num, self.scale_den = 1000, 1       # default resolution: microseconds
        self.offset_ns = 0

    def ns(self, ts: int) -> int:
        return ts * self.scale_num // self.scale_den + self.offset_ns


class PcapReader:
    """Iterate over the packets of a classic pcap or pcapng stream, reading it incrementally
    (memory independent of the file's size).

    Attributes: `format` ("pcap" or "pcapng"), `linktype` (classic: the file's; pcapng: the
    first interface's, None before one is seen), `snaplen`, `nanosecond` (classic), `byteorder`
    ("<" or ">"; pcapng: the current section's), `version`, `count` (records read so far),
    `offset` (bytes consumed).
    """

    def __init__(self, stream: BinaryIO, path: str | None = None):
        self._stream = stream
        self.path = path
        self.count = 0
        head = stream.read(_GLOBAL_SIZE)
        self.offset = 0
        self._pending = head
        if len(head) < 4:
            raise PcapError("empty or truncated file (no pcap magic)", path, 0)
        if struct.unpack("<I", head[:4])[0] == PCAPNG_SHB:
            self.format = "pcapng"
            self.linktype = None
            self.snaplen = MAX_RECORD
            self.nanosecond = False
            self.byteorder = "<"
            self.version = None
            self._interfaces: list[_Interface] = []
            return
        self.format = "pcap"
        for order in ("<", ">"):
            magic = struct.unpack(order + "I", head[:4])[0]
            if magic in (MAGIC_USEC, MAGIC_NSEC):
                break
        else:
            raise PcapError(f"not a classic pcap file: magic {head[:4].hex()} (nor pcapng)", path, 0)
        if len(head) < _GLOBAL_SIZE:
            raise PcapError(f"truncated global header ({len(head)} of {_GLOBAL_SIZE} bytes)", path, 0)
        _, major, minor, _, _, snaplen, linktype = struct.unpack(order + _GLOBAL, head)
        self.byteorder = order
        self.nanosecond = magic == MAGIC_NSEC
        self.version = (major, minor)
        self.snaplen = snaplen
        # The upper bits carry the FCS length flags (pcap-savefile(5)); the type is the low 16.
        self.linktype = linktype & 0xFFFF
        self._pending = b""
        self.offset = _GLOBAL_SIZE

    def _read(self, n: int) -> bytes:
        if self._pending:
            data, self._pending = self._pending[:n], self._pending[n:]
            if len(data) < n:
                data += self._stream.read(n - len(data))
        else:
            data = self._stream.read(n)
        return data

    def _error(self, message: str, offset: int | None = None, truncated: bool = False):
        cls = PcapTruncated if truncated else PcapError
        return cls(message, self.path, self.offset if offset is None else offset, self.count)

    def __iter__(self) -> Iterator[Packet]:
        return self._pcapng() if self.format == "pcapng" else self._classic()

    def _classic(self) -> Iterator[Packet]:
        record = struct.Struct(self.byteorder + _RECORD)
        scale = 1 if self.nanosecond else 1000
        linktype = self.linktype
        read = self._stream.read
        while True:
            head = read(_RECORD_SIZE)
            if not head:
                return
            if len(head) < _RECORD_SIZE:
                raise self._error(f"truncated record header ({len(head)} of {_RECORD_SIZE} bytes)",
                                  truncated=True)
            sec, frac, incl, orig = record.unpack(head)
            if incl > MAX_RECORD:
                raise self._error(f"record length {incl} exceeds the limit of {MAX_RECORD} bytes "
                                  f"(snaplen {self.snaplen})")
            data = read(incl)
            if len(data) < incl:
                raise self._error(f"truncated packet: {len(data)} of {incl} bytes",
                                  self.offset + _RECORD_SIZE, truncated=True)
            self.offset += _RECORD_SIZE + incl
            self.count += 1
            yield Packet(data, sec * 1_000_000_000 + frac * scale, orig, linktype)

    def _skip(self, n: int, block_offset: int, what: str) -> None:
        while n:
            piece = self._read(min(n, _SKIP_PIECE))
            if not piece:
                raise self._error(f"truncated {what}", block_offset, truncated=True)
            n -= len(piece)

    def _pcapng(self) -> Iterator[Packet]:
        order = "<"
        while True:
            start = self.offset
            head = self._read(8)
            if not head:
                return
            if len(head) < 8:
                raise self._error(f"truncated block header ({len(head)} of 8 bytes)", start,
                                  truncated=True)
            btype = struct.unpack("<I", head[:4])[0]
            if btype == PCAPNG_SHB:
                bom = self._read(4)
                if len(bom) < 4:
                    raise self._error("truncated section header", start, truncated=True)
                if struct.unpack("<I", bom)[0] == _BYTE_ORDER_MAGIC:
                    order = "<"
                elif struct.unpack(">I", bom)[0] == _BYTE_ORDER_MAGIC:
                    order = ">"
                else:
                    raise self._error(f"bad pcapng section byte-order magic {bom.hex()}", start + 8)
                self.byteorder = order
                self._interfaces = []       # interface ids are per section
                prefix = bom
            else:
                btype = struct.unpack(order + "I", head[:4])[0]
                prefix = b""
            total = struct.unpack(order + "I", head[4:8])[0]
            if total < 12 + len(prefix) or total % 4:
                raise self._error(f"bad block length {total} (block type {btype:#x})", start + 4)
            body_len = total - 12
            if btype not in (1, 2, 3, 6, PCAPNG_SHB):
                self._skip(body_len + 4, start, f"block of type {btype:#x}")
                self.offset = start + total
                continue
            if total > MAX_RECORD + 64:
                raise self._error(f"block length {total} exceeds the limit of {MAX_RECORD + 64} "
                                  f"bytes (block type {btype:#x})", start + 4)
            body = prefix + self._read(body_len - len(prefix) + 4)
            if len(body) < body_len + 4:
                what = "packet" if btype in (2, 3, 6) else f"block of type {btype:#x}"
                raise self._error(f"truncated {what}: {len(body) + 8} of {total} bytes", start,
                                  truncated=True)
            if struct.unpack(order + "I", body[-4:])[0] != total:
                raise self._error(f"block trailer length {struct.unpack(order + 'I', body[-4:])[0]}"
                                  f" differs from its header's {total}", start + total - 4)
            body = body[:-4]
            self.offset = start + total
            if btype == PCAPNG_SHB:
                self.version = struct.unpack(order + "HH", body[4:8]) if len(body) >= 8 else None
            elif btype == 1:
                self._interface(body, order, start)
            else:
                packet = self._packet(btype, body, order, start)
                self.count += 1
                yield packet

    def _interface(self, body: bytes, order: str, start: int) -> None:
        if len(body) < 8:
            raise self._error("interface description block too short", start)
        linktype, _, snaplen = struct.unpack(order + "HHI", body[:8])
        iface = _Interface(linktype, snaplen)
        pos = 8
        while pos + 4 <= len(body):
            code, length = struct.unpack(order + "HH", body[pos:pos + 4])
            value = body[pos + 4:pos + 4 + length]
            if code == 0:
                break
            if code == 9 and len(value) == 1:           # if_tsresol
                exp = value[0] & 0x7F
                if value[0] & 0x80:
                    iface.scale_num, iface.scale_den = 10 ** 9, 1 << exp
                elif exp <= 9:
                    iface.scale_num, iface.scale_den = 10 ** (9 - exp), 1
                else:
                    iface.scale_num, iface.scale_den = 1, 10 ** (exp - 9)
            elif code == 14 and len(value) == 8:        # if_tsoffset, seconds
                iface.offset_ns = struct.unpack(order + "q", value)[0] * 1_000_000_000
            pos += 4 + (length + 3) // 4 * 4
        self._interfaces.append(iface)
        if self.linktype is None:
            self.linktype, self.snaplen = linktype, snaplen

    def _iface(self, index: int, start: int) -> _Interface:
        if index >= len(self._interfaces):
            raise self._error(f"packet of interface {index}, but the section describes "
                              f"{len(self._interfaces)} interface(s)", start)
        return self._interfaces[index]

    def _packet(self, btype: int, body: bytes, order: str, start: int) -> Packet:
        if btype == 3:                                  # simple packet block: interface 0
            if len(body) < 4:
                raise self._error("simple packet block too short", start)
            iface = self._iface(0, start)
            orig = struct.unpack(order + "I", body[:4])[0]
            cap = min(orig, len(body) - 4, iface.snaplen or orig)
            return Packet(body[4:4 + cap], 0, orig, iface.linktype)
        if btype == 6:
            if len(body) < 20:
                raise self._error("enhanced packet block too short", start)
            index, hi, lo, cap, orig = struct.unpack(order + "IIIII", body[:20])
        else:                                           # obsolete packet block
            if len(body) < 20:
                raise self._error("packet block too short", start)
            index, _, hi, lo, cap, orig = struct.unpack(order + "HHIIII", body[:20])
        iface = self._iface(index, start)
        if cap > len(body) - 20:
            raise self._error(f"captured length {cap} exceeds the block ({len(body) - 20} bytes)",
                              start)
        return Packet(body[20:20 + cap], iface.ns(hi << 32 | lo), orig, iface.linktype)


def read(stream: BinaryIO, path: str | None = None) -> list[Packet]:
    """All packets of a pcap or pcapng stream. Raises PcapError."""
    return list(PcapReader(stream, path))


def iter_ethernet(path: str | os.PathLike) -> Iterator[Packet]:
    """The packets of the capture at `path`, each converted to an Ethernet frame
    (`to_ethernet`; `linktype` is then ETHERNET), read incrementally. Raises PcapError naming
    the record for a packet that cannot be converted."""
    with open(path, "rb") as f:
        reader = PcapReader(f, os.fspath(path))
        for p in reader:
            if p.linktype != LINKTYPE_ETHERNET:
                try:
                    data = to_ethernet(p.data, p.linktype)
                except PcapError as err:
                    raise PcapError(err.reason, reader.path, reader.offset,
                                    reader.count - 1) from None
                p = Packet(data, p.ts_ns, p.wire_len + len(data) - len(p.data))
            yield p


def read_file(path: str | os.PathLike, *, linktypes: Iterable[int] | None = (LINKTYPE_ETHERNET,),
              ethernet: bool = False) -> list[Packet]:
    """All packets of the capture file at `path`.

    Args:
        linktypes: accepted link types (None: any). The default accepts Ethernet only.
        ethernet: convert every packet to an Ethernet frame, what XDP, tc and socket filters
            see (`to_ethernet`).
    Raises:
        PcapError: not a capture file, truncated, or an unexpected link type.
        OSError: the file cannot be read.
    """
    if linktypes is not None:
        allowed = set(linktypes)
        with open(path, "rb") as f:
            for p in PcapReader(f, os.fspath(path)):
                if p.linktype not in allowed:
                    raise PcapError(f"link type {p.linktype} is not supported here (expected "
                                    f"{', '.join(map(str, sorted(allowed)))})", os.fspath(path))
    if ethernet:
        return list(iter_ethernet(path))
    with open(path, "rb") as f:
        return list(PcapReader(f, os.fspath(path)))


def write(stream: BinaryIO, packets: Iterable[Packet | bytes], *, linktype: int = LINKTYPE_ETHERNET,
          nanosecond: bool = False, snaplen: int = DEFAULT_SNAPLEN, byteorder: str = "<") -> None:
    """Write a classic pcap stream. Bytes are accepted as packets with timestamp 0."""
    writer = PcapWriter(stream, linktype=linktype, nanosecond=nanosecond, snaplen=snaplen,
                        byteorder=byteorder)
    for p in packets:
        writer.write(p)


class PcapWriter:
    """Write a classic pcap stream packet by packet."""

    def __init__(self, stream: BinaryIO, *, linktype: int = LINKTYPE_ETHERNET,
                 nanosecond: bool = False, snaplen: int = DEFAULT_SNAPLEN, byteorder: str = "<"):
        if byteorder not in ("<", ">"):
            raise ValueError(f"byteorder must be '<' or '>', not {byteorder!r}")
        self._stream = stream
        self._nanosecond = nanosecond
        magic = MAGIC_NSEC if nanosecond else MAGIC_USEC
        stream.write(struct.pack(byteorder + _GLOBAL, magic, 2, 4, 0, 0, snaplen, linktype))
        self._record = struct.Struct(byteorder + _RECORD)

    def write(self, p: Packet | bytes) -> None:
        if not isinstance(p, Packet):
            p = Packet(bytes(p))
        self.write_raw(p.data, p.ts_ns, p.wire_len)

    def write_raw(self, data, ts_ns: int, orig_len: int) -> None:
        sec, rest = divmod(ts_ns, 1_000_000_000)
        frac = rest if self._nanosecond else rest // 1000
        self._stream.write(self._record.pack(sec, frac, len(data), orig_len))
        self._stream.write(data)


def write_file(path: str | os.PathLike, packets: Iterable[Packet | bytes], **kwargs) -> None:
    """write() to a new file at `path`."""
    with open(path, "wb") as f:
        write(f, packets, **kwargs)
