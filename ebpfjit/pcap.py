"""Classic pcap files (not pcapng): read and write packets, no dependency.

Both byte orders and both timestamp resolutions are read (magic 0xa1b2c3d4: microseconds,
0xa1b23c4d: nanoseconds, either byte-swapped). Written files are little endian, version 2.4.
Timestamps are kept as integer nanoseconds so a nanosecond file round-trips exactly.

Must not import: anything from ebpfjit but errors.

>>> import io
>>> buf = io.BytesIO()
>>> write(buf, [Packet(b"\\x01" * 60, ts_ns=1_500_000_000)])
>>> [(len(p.data), p.ts_ns) for p in read(io.BytesIO(buf.getvalue()))]
[(60, 1500000000)]
"""
from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .errors import EbpfError

__all__ = ["LINKTYPE_ETHERNET", "LINKTYPE_RAW", "Packet", "PcapError", "PcapReader", "read",
           "read_file", "write", "write_file"]

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101

MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D
_GLOBAL = "IHHiIII"    # magic, major, minor, thiszone, sigfigs, snaplen, linktype
_RECORD = "IIII"       # ts_sec, ts_frac, incl_len, orig_len
_GLOBAL_SIZE = struct.calcsize("<" + _GLOBAL)
_RECORD_SIZE = struct.calcsize("<" + _RECORD)
DEFAULT_SNAPLEN = 262144


class PcapError(EbpfError, ValueError):
    """A file that is not a classic pcap file, or is truncated. Names the file and byte offset."""

    def __init__(self, message: str, path: str | None = None, offset: int | None = None):
        self.path = path
        self.offset = offset
        self.reason = message
        where = [p for p in (path, f"offset {offset}" if offset is not None else None) if p]
        super().__init__(": ".join(where + [message]))


@dataclass(frozen=True)
class Packet:
    """One captured packet. `orig_len` is the length on the wire (>= len(data) when truncated)."""
    data: bytes
    ts_ns: int = 0
    orig_len: int | None = None

    @property
    def wire_len(self) -> int:
        return len(self.data) if self.orig_len is None else self.orig_len

    @property
    def timestamp(self) -> float:
        return self.ts_ns / 1e9


class PcapReader:
    """Iterate over the packets of a classic pcap stream.

    Attributes: `linktype`, `snaplen`, `nanosecond` (timestamp resolution), `byteorder` ("<" or
    ">"), `version` (major, minor).
    """

    def __init__(self, stream: BinaryIO, path: str | None = None):
        self._stream = stream
        self.path = path
        head = stream.read(_GLOBAL_SIZE)
        if len(head) < 4:
            raise PcapError("empty or truncated file (no pcap magic)", path, 0)
        for order in ("<", ">"):
            magic = struct.unpack(order + "I", head[:4])[0]
            if magic in (MAGIC_USEC, MAGIC_NSEC):
                break
        else:
            hint = " (a pcapng file: convert it with `editcap -F pcap`)" \
                if head[:4] == b"\x0a\x0d\x0d\x0a" else ""
            raise PcapError(f"not a classic pcap file: magic {head[:4].hex()}{hint}", path, 0)
        if len(head) < _GLOBAL_SIZE:
            raise PcapError(f"truncated global header ({len(head)} of {_GLOBAL_SIZE} bytes)", path, 0)
        _, major, minor, _, _, snaplen, linktype = struct.unpack(order + _GLOBAL, head)
        self.byteorder = order
        self.nanosecond = magic == MAGIC_NSEC
        self.version = (major, minor)
        self.snaplen = snaplen
        # The upper bits carry the FCS length flags (pcap-savefile(5)); the type is the low 16.
        self.linktype = linktype & 0xFFFF
        self._offset = _GLOBAL_SIZE

    def __iter__(self) -> Iterator[Packet]:
        record = struct.Struct(self.byteorder + _RECORD)
        scale = 1 if self.nanosecond else 1000
        while True:
            head = self._stream.read(_RECORD_SIZE)
            if not head:
                return
            if len(head) < _RECORD_SIZE:
                raise PcapError(f"truncated record header ({len(head)} of {_RECORD_SIZE} bytes)",
                                self.path, self._offset)
            sec, frac, incl, orig = record.unpack(head)
            if incl > max(self.snaplen, DEFAULT_SNAPLEN) * 4:
                raise PcapError(f"record length {incl} is implausible (snaplen {self.snaplen})",
                                self.path, self._offset)
            data = self._stream.read(incl)
            if len(data) < incl:
                raise PcapError(f"truncated packet: {len(data)} of {incl} bytes", self.path,
                                self._offset + _RECORD_SIZE)
            self._offset += _RECORD_SIZE + incl
            yield Packet(data, sec * 1_000_000_000 + frac * scale, orig)


def read(stream: BinaryIO, path: str | None = None) -> list[Packet]:
    """All packets of a pcap stream. Raises PcapError."""
    return list(PcapReader(stream, path))


def read_file(path: str | os.PathLike, *, linktypes: Iterable[int] | None = (LINKTYPE_ETHERNET,)
              ) -> list[Packet]:
    """All packets of the pcap file at `path`.

    Args:
        linktypes: accepted link types (None: any). The default accepts Ethernet only, which is
            what XDP, tc and socket filters see.
    Raises:
        PcapError: not a pcap file, truncated, or an unexpected link type.
        OSError: the file cannot be read.
    """
    with open(path, "rb") as f:
        reader = PcapReader(f, os.fspath(path))
        if linktypes is not None and reader.linktype not in set(linktypes):
            raise PcapError(f"link type {reader.linktype} is not supported here (expected "
                            f"{', '.join(map(str, linktypes))}; 1 = Ethernet)", os.fspath(path))
        return list(reader)


def write(stream: BinaryIO, packets: Iterable[Packet | bytes], *, linktype: int = LINKTYPE_ETHERNET,
          nanosecond: bool = False, snaplen: int = DEFAULT_SNAPLEN, byteorder: str = "<") -> None:
    """Write a classic pcap stream. Bytes are accepted as packets with timestamp 0."""
    if byteorder not in ("<", ">"):
        raise ValueError(f"byteorder must be '<' or '>', not {byteorder!r}")
    magic = MAGIC_NSEC if nanosecond else MAGIC_USEC
    stream.write(struct.pack(byteorder + _GLOBAL, magic, 2, 4, 0, 0, snaplen, linktype))
    record = struct.Struct(byteorder + _RECORD)
    for p in packets:
        if not isinstance(p, Packet):
            p = Packet(bytes(p))
        sec, rest = divmod(p.ts_ns, 1_000_000_000)
        frac = rest if nanosecond else rest // 1000
        stream.write(record.pack(sec, frac, len(p.data), p.wire_len))
        stream.write(p.data)


def write_file(path: str | os.PathLike, packets: Iterable[Packet | bytes], **kwargs) -> None:
    """write() to a new file at `path`."""
    with open(path, "wb") as f:
        write(f, packets, **kwargs)
