"""Streaming packet runs over a capture file: `ebpfjit run --pcap` and `compare`'s packet source.

`chunks(path)` reads a pcap/pcapng file incrementally into `Chunk`s: up to `CHUNK_PACKETS`
packets laid end to end in one buffer, with their lengths, for the C batch path. A classic
Ethernet pcap is parsed in C (csrc/pcap_scan.c) straight from a reusable read buffer; other
formats and link types go through `pcap.iter_ethernet`. Memory is bounded by the chunk size and
`pcap.MAX_RECORD`, whatever the file's size. A truncated last record raises `PcapTruncated`
after the chunks of every complete record.

`run_capture` runs a program over every chunk (one C loop per chunk), counts verdicts, writes
kept output packets with their timestamps, and reports progress.

Imports: ebpfjit.capture.pcap, ebpfjit.errors, ebpfjit.objects, ebpfjit.runtime
"""
from __future__ import annotations

import array
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..errors import ExecutionError
from ..objects.verdicts import kept, verdict_name
from ..runtime import env as runtime
from . import pcap

__all__ = ["CHUNK_PACKETS", "Chunk", "chunks", "RunSummary", "run_capture", "Progress"]

CHUNK_PACKETS = 8192
PKT_OUT_MAX = runtime.PKT_OUT_MAX       # the largest output packet of a run (compare sizes by it)
_READ_SIZE = 1 << 20


@dataclass
class Chunk:
    """Packets `first`..`first + len(lens) - 1` of a capture: `data` holds them end to end."""
    first: int
    data: memoryview
    lens: array.array            # 'I'
    ts_ns: list[int] | None       # None: from `hdr` (ts_sec, ts_frac, ...) with `ts_scale`
    orig_lens: array.array       # 'I'
    hdr: array.array | None = None
    ts_scale: int = 1

    def __len__(self) -> int:
        return len(self.lens)

    def timestamp_ns(self, i: int) -> int:
        if self.ts_ns is not None:
            return self.ts_ns[i]
        return self.hdr[4 * i] * 1_000_000_000 + self.hdr[4 * i + 1] * self.ts_scale


def chunks(path: str | os.PathLike, max_packets: int = CHUNK_PACKETS) -> Iterator[Chunk]:
    """The packets of the capture at `path` as Ethernet frames, in chunks. Raises PcapError."""
    with open(path, "rb") as f:
        reader = pcap.PcapReader(f, os.fspath(path))
        if reader.format == "pcap" and reader.linktype == pcap.LINKTYPE_ETHERNET:
            yield from _classic_chunks(f, reader, max_packets)
            return
    yield from _generic_chunks(path, max_packets)


def _generic_chunks(path, max_packets: int) -> Iterator[Chunk]:
    first = 0
    batch: list[pcap.Packet] = []
    for p in pcap.iter_ethernet(path):
        batch.append(p)
        if len(batch) == max_packets:
            yield _chunk_of(first, batch)
            first += len(batch)
            batch = []
    if batch:
        yield _chunk_of(first, batch)


def _chunk_of(first: int, batch: list[pcap.Packet]) -> Chunk:
    return Chunk(first, memoryview(b"".join(p.data for p in batch)),
                 array.array("I", (len(p.data) for p in batch)), [p.ts_ns for p in batch],
                 array.array("I", (p.wire_len for p in batch)))


def _classic_chunks(f, reader: pcap.PcapReader, max_packets: int) -> Iterator[Chunk]:
    swap = (reader.byteorder == "<") != (sys.byteorder == "little")
    scale = 1 if reader.nanosecond else 1000
    buf = bytearray(_READ_SIZE + pcap.MAX_RECORD + 16)
    view = memoryview(buf)
    start = end = 0
    offset = reader.offset          # file offset of buf[start]
    first = 0
    out = bytearray(_READ_SIZE + pcap.MAX_RECORD)
    hdr = array.array("I", bytes(16 * max_packets))
    eof = False
    while True:
        n, consumed, used, bad = runtime.pcap_scan(buf, start, end, swap, pcap.MAX_RECORD,
                                                   max_packets, out, hdr)
        if n:
            h = hdr[:4 * n]
            yield Chunk(first, memoryview(out)[:used], h[2::4], None, h[3::4], h, scale)
            out = bytearray(len(out))       # the consumer may still hold the last chunk
            first += n
            start += consumed
            offset += consumed
            continue
        if bad:
            incl = _record_len(buf, start, swap)
            raise pcap.PcapError(f"record length {incl} exceeds the limit of {pcap.MAX_RECORD} "
                                 f"bytes (snaplen {reader.snaplen})", reader.path, offset, first)
        if eof:
            left = end - start
            if not left:
                return
            if left < 16:
                raise pcap.PcapTruncated(f"truncated record header ({left} of 16 bytes)",
                                         reader.path, offset, first)
            incl = _record_len(buf, start, swap)
            raise pcap.PcapTruncated(f"truncated packet: {left - 16} of {incl} bytes",
                                     reader.path, offset + 16, first)
        # Need more bytes: move the partial record to the front and refill.
        if start:
            buf[:end - start] = buf[start:end]
            end -= start
            start = 0
        got = f.readinto(view[end:])
        if not got:
            eof = True
        end += got


def _record_len(buf, start: int, swap: bool) -> int:
    order = "little" if (sys.byteorder == "little") != swap else "big"
    return int.from_bytes(buf[start + 8:start + 12], order)


class Progress:
    """A `\\r` progress line on stderr (packets, Mpps, elapsed) when stderr is a terminal."""

    def __init__(self, enabled: bool | None = None, stream=None, label: str = ""):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = label
        self.start = time.perf_counter()
        self._last = 0.0
        self._shown = False
        self.packets = 0

    def update(self, packets: int, force: bool = False) -> None:
        self.packets = packets
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        elapsed = now - self.start
        rate = packets / elapsed / 1e6 if elapsed > 0 else 0.0
        self.stream.write(f"\r{self.label}{packets:,} packets, {rate:.2f} Mpps, {elapsed:.1f} s ")
        self.stream.flush()
        self._shown = True

    def close(self, packets: int) -> None:
        if self.enabled:
            self.update(packets, force=True)
            self.stream.write("\n")
            self.stream.flush()


@dataclass
class RunSummary:
    packets: int = 0
    written: int = 0
    counts: Counter = field(default_factory=Counter)     # verdict name -> packets
    seconds: float = 0.0
    prog_type: int = 0


def run_capture(prog, path, engine: str = "interp", budget: int | None = None, *,
                output=None, keep: str = "all", progress: Progress | None = None,
                on_packet: Callable[[int, int, int, int], None] | None = None) -> RunSummary:
    """Run `prog` (an XDP/tc/socket ObjectProgram) on every packet of the capture at `path`.

    Output packets (data_out, as a test run reports it) that `keep` selects are written to the
    pcap stream `output` with their input's timestamp. `on_packet(index, verdict, in_len,
    out_len)` is called per packet if given (the verbose listing). A fault raises
    ExecutionError noting the packet's index in the capture (`packet_index`).
    """
    model = prog._packet_model()
    if model is None:
        raise pcap.PcapError(f"program {prog.name!r} of type {prog.type.name.lower()} does not "
                             "take packets")
    loaded = prog._prepare(engine)
    writer = pcap.PcapWriter(output, nanosecond=True) if output is not None else None
    need_out = writer is not None or on_packet is not None
    summary = RunSummary(prog_type=prog.type)
    t0 = time.perf_counter()
    try:
        if need_out or not _run_classic_direct(prog, path, engine, budget, loaded, model,
                                               progress, summary):
            _run_chunks(prog, path, engine, budget, loaded, model, writer, keep, progress,
                        on_packet, summary, need_out)
    except pcap.PcapTruncated as err:
        summary.seconds = time.perf_counter() - t0
        err.summary = summary
        raise
    summary.seconds = time.perf_counter() - t0
    return summary


_DIRECT_READ = 4 << 20      # bytes read at a time by the direct path


def _run_classic_direct(prog, path, engine, budget, loaded, model, progress,
                        summary: RunSummary) -> bool:
    """Run a classic Ethernet pcap with no output wanted straight from the file's bytes: one C
    call per read buffer scans the records, runs each packet and counts the verdicts (no chunk,
    no per-packet Python object). Returns False, having run nothing, for other formats."""
    with open(path, "rb") as f:
        reader = pcap.PcapReader(f, os.fspath(path))
        if reader.format != "pcap" or reader.linktype != pcap.LINKTYPE_ETHERNET:
            return False
        swap = (reader.byteorder == "<") != (sys.byteorder == "little")
        buf = bytearray(_DIRECT_READ + pcap.MAX_RECORD + 16)
        view = memoryview(buf)
        start = end = 0
        offset = reader.offset              # file offset of buf[start]
        max_n = _DIRECT_READ // 16 + 1      # records a buffer can hold, at most
        verdicts = array.array("I", bytes(4 * max_n))
        counts = array.array("Q", bytes(8 * (runtime.COUNTED_VERDICTS + 1)))
        eof = False
        try:
            while True:
                try:
                    n, consumed, stop = loaded.run_pcap_records(
                        model, buf, start, end, swap, pcap.MAX_RECORD, max_n, verdicts, counts,
                        engine, budget)
                except ExecutionError as err:
                    _fault_in_capture(err, summary.packets + err.batch_index, path)
                    summary.packets += err.batch_index
                    _count_others(summary, verdicts, err.batch_index, counts)
                    raise
                summary.packets += n
                start += consumed
                offset += consumed
                _count_others(summary, verdicts, n, counts)
                if stop == 1:
                    incl = _record_len(buf, start, swap)
                    raise pcap.PcapError(f"record length {incl} exceeds the limit of "
                                         f"{pcap.MAX_RECORD} bytes (snaplen {reader.snaplen})",
                                         reader.path, offset, summary.packets)
                if stop == 3:
                    _refused(prog, bytes(buf[start + 16:start + 16 + _record_len(buf, start, swap)]),
                             engine, summary.packets, path)
                if progress is not None and n:
                    progress.update(summary.packets)
                if eof:
                    _check_tail(buf, start, end, swap, reader, offset, summary.packets)
                    return True
                if start:
                    buf[:end - start] = buf[start:end]
                    end -= start
                    start = 0
                got = f.readinto(view[end:])
                eof = not got
                end += got
        finally:
            _add_counts(summary, counts, prog.type)


def _check_tail(buf, start, end, swap, reader, offset, index) -> None:
    """At the end of the file: bytes left after the complete records are a truncated record."""
    left = end - start
    if not left:
        return
    if left < 16:
        raise pcap.PcapTruncated(f"truncated record header ({left} of 16 bytes)", reader.path,
                                 offset, index)
    incl = _record_len(buf, start, swap)
    raise pcap.PcapTruncated(f"truncated packet: {left - 16} of {incl} bytes", reader.path,
                             offset + 16, index)


def _count_others(summary: RunSummary, verdicts, n: int, counts) -> None:
    """Verdicts >= COUNTED_VERDICTS, which C only counted together, by value (rare)."""
    if counts[runtime.COUNTED_VERDICTS]:
        for v in verdicts[:n]:
            if v >= runtime.COUNTED_VERDICTS:
                summary.counts[verdict_name(summary.prog_type, v)] += 1
        counts[runtime.COUNTED_VERDICTS] = 0


def _add_counts(summary: RunSummary, counts, ptype) -> None:
    for v in range(runtime.COUNTED_VERDICTS):
        if counts[v]:
            summary.counts[verdict_name(ptype, v)] += counts[v]
            counts[v] = 0


def _fault_in_capture(err: ExecutionError, index: int, path) -> None:
    err.packet_index = index
    if hasattr(err, "add_note"):
        err.add_note(f"in packet {index} of {os.fspath(path)}")


def _refused(prog, packet: bytes, engine: str, index: int, path) -> None:
    """The test-run model refused the packet: its own test run raises the reason."""
    try:
        prog.test_run(packet, engine=engine)
    except Exception as err:
        if hasattr(err, "add_note"):
            err.add_note(f"in packet {index} of {os.fspath(path)}")
        raise
    raise pcap.PcapError("the test-run model refused the packet", os.fspath(path), None, index)


def _run_chunks(prog, path, engine, budget, loaded, model, writer, keep, progress, on_packet,
                summary, need_out) -> None:
    ptype = prog.type
    names: dict[int, str] = {}
    verdicts = array.array("I", bytes(4 * CHUNK_PACKETS))
    out_lens = array.array("I", bytes(4 * CHUNK_PACKETS))
    out = bytearray(CHUNK_PACKETS * 256 + runtime.PKT_OUT_MAX) if need_out else None
    for chunk in chunks(path):
        if len(verdicts) < len(chunk):
            verdicts = array.array("I", bytes(4 * len(chunk)))
            out_lens = array.array("I", bytes(4 * len(chunk)))
        pos, off = 0, 0
        while pos < len(chunk):
            lens = chunk.lens[pos:] if pos else chunk.lens
            try:
                done, used = loaded.run_chunk(model, chunk.data[off:], lens, verdicts, engine,
                                              budget, out, out_lens if need_out else None)
            except ExecutionError as err:
                _fault_in_capture(err, chunk.first + pos + err.batch_index, path)
                _count(summary, verdicts, 0, err.batch_index, ptype, names)
                summary.packets += err.batch_index
                raise
            _count(summary, verdicts, 0, done, ptype, names)
            if need_out:
                o = 0
                for i in range(done):
                    n, v = out_lens[i], verdicts[i]
                    if on_packet is not None:
                        on_packet(chunk.first + pos + i, v, lens[i], n)
                    if writer is not None and kept(ptype, v, keep):
                        orig = chunk.orig_lens[pos + i]
                        writer.write_raw(out[o:o + n], chunk.timestamp_ns(pos + i),
                                         orig if n == lens[i] else n + max(0, orig - lens[i]))
                        summary.written += 1
                    o += n
            off += sum(lens[:done])
            pos += done
            summary.packets += done
            if done < len(lens) and (out is None or len(out) - used >= runtime.PKT_OUT_MAX):
                _refused(prog, bytes(chunk.data[off:off + lens[done]]), engine,
                         chunk.first + pos, path)
        if progress is not None:
            progress.update(summary.packets)


def _count(summary: RunSummary, verdicts, start: int, n: int, ptype, names) -> None:
    if not n:
        return
    small = array.array("Q", bytes(8 * runtime.COUNTED_VERDICTS))
    others = Counter()
    if runtime.count_verdicts(verdicts, n, small):
        others = Counter(v for v in verdicts[:n] if v >= runtime.COUNTED_VERDICTS)
    for v, c in [*enumerate(small), *others.items()]:
        if c:
            name = names.get(v)
            if name is None:
                name = names[v] = verdict_name(ptype, v)
            summary.counts[name] += c


def run_pcap_command(prog, name: str, args, progress: Progress, *, report: dict | None = None,
                     quiet: bool = False) -> bool:
    """`ebpfjit run --pcap` (args: pcap, engine, budget, output, keep, verbose): prints the
    summary line (fills `report` instead when `quiet`, for -j), and on stderr a truncation
    warning; returns True when the capture was truncated (the CLI exits 2 after printing what
    ran)."""
    def verbose(index, verdict, in_len, out_len):
        print(f"packet {index}: {verdict_name(prog.type, verdict)} ({in_len} -> {out_len} bytes)")

    output = open(args.output, "wb") if args.output else None
    truncated = None
    try:
        try:
            summary = run_capture(prog, args.pcap, args.engine, getattr(args, "budget", None),
                                  output=output, keep=args.keep, progress=progress,
                                  on_packet=verbose if args.verbose and not quiet else None)
        except pcap.PcapTruncated as err:
            truncated, summary = err, err.summary
    finally:
        if output is not None:
            output.close()
        progress.close(progress.packets)
    if report is not None:
        report.update(packets=summary.packets, verdicts=dict(sorted(summary.counts.items())),
                      written=summary.written, truncated=None if truncated is None else str(truncated))
    counts = ", ".join(f"{v} {n}" for v, n in sorted(summary.counts.items()))
    if quiet:
        return truncated is not None
    rate = summary.packets / summary.seconds / 1e6 if summary.seconds else 0.0
    print(f"{name}: {summary.packets} packets on {args.engine}: {counts}"
          + (f" ({rate:.3g} Mpps)" if summary.seconds else ""))
    if args.output:
        print(f"wrote {summary.written} packets ({args.keep}) to {args.output}")
    if truncated is not None:
        print(f"warning: {truncated}; the {summary.packets} complete packets before it ran",
              file=sys.stderr)
    return truncated is not None
