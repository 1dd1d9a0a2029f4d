"""`ebpfjit compare`: one program, the same packets, three engines (interpreter, our JIT, the
kernel): verdicts, output packets, map contents, speed and code size side by side.

How the comparison is aligned:
- Each engine gets its own fresh copy of the object (maps included) and sees the packets in
  the same order, so map contents at the end are comparable.
- Per-CPU maps: the kernel runs BPF_PROG_TEST_RUN on the CPU of the calling thread, so the
  thread is pinned to one CPU while the kernel runs (restored afterwards); our engines use one
  slot too. A per-CPU value is compared as the list of its *touched* slots (those not all-zero),
  in CPU order, which is independent of which CPU number each engine used.
- Timing is measured after the correctness runs (it changes maps): the kernel's test_run with
  `repeat` reports the mean ns per run; ours is ObjectProgram.test_run with the same repeat,
  the same mean measured around a C loop. Both include the test-run harness overhead.
- Code size: the kernel's jited image (all functions), ours the size of the functions in the
  JIT's object code (symbol sizes of .text), i.e. machine code only.
- `--asm`: the kernel image comes from BPF_OBJ_GET_INFO_BY_FD. The kernel exposes native
  addresses only per BTF line_info record (jited_line_info), so kernel code is anchored at
  source-line granularity and only for objects built with -g; otherwise per function. Our side
  is anchored per basic block: LLVM keeps the `pc<N>` block names of the lowering in its
  assembly comments. Anchors are eBPF instruction indices (the kernel's are post-verifier,
  "xlated", indices, which equal the original ones except where the verifier rewrote code).

Must not import: cli.

Imports: ebpfjit.engine, ebpfjit.api, ebpfjit.capture, ebpfjit.errors, ebpfjit.jit, ebpfjit.objects,
    ebpfjit.oracle.asmalign, ebpfjit.oracle.bpf_syscall, ebpfjit.oracle.jited_disasm,
    ebpfjit.oracle.kernel
"""
from __future__ import annotations

import argparse
import array
import errno as _errno
import json
import os
import platform
import random
import re
import struct
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..capture.pcap import iter_ethernet
from ..engine import Engine
from ..errors import EbpfError, ExecutionError, KernelError, KernelUnavailable
from ..objects import elf
from ..objects.spec import MapType, ProgType
from ..objects.verdicts import verdict_name
from . import kernel
from .asmalign import build_rows, format_rows
from .bpf_syscall import errno_name
from .jited_disasm import capstone_for_host

ENGINES = (*(e.value for e in Engine), "kernel")   # our engines, then the oracle
DEFAULT_PACKET = bytes.fromhex(
    # Ethernet (to 02:00:00:00:00:02 from 02:00:00:00:00:01), IPv4, UDP 1234 -> 53, payload.
    "020000000002020000000001080045000030000100004011f96a0a0000010a000002"
    "04d20035001c0000") + bytes(range(20))


@dataclass
class PacketRow:
    """One packet: every engine's verdict, and whether the output packets agree."""
    index: int
    length: int
    verdicts: dict[str, int | None]
    outputs: dict[str, bytes | None]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def verdict_agree(self) -> bool:
        return len(set(self.verdicts.values())) <= 1 and not self.errors

    @property
    def output_agree(self) -> bool:
        return len(set(self.outputs.values())) <= 1 and not self.errors

    @property
    def agree(self) -> bool:
        return self.verdict_agree and self.output_agree

    def output_diff(self) -> str:
        """Where the output packets differ (first differing byte ranges), or ''."""
        outs = [o for o in self.outputs.values() if o is not None]
        if self.output_agree or not outs:
            return ""
        ref = outs[0]
        parts = []
        for name, out in self.outputs.items():
            if out is None or out == ref:
                continue
            if len(out) != len(ref):
                parts.append(f"{name}: length {len(out)} vs {len(ref)}")
                continue
            first = next(i for i in range(len(ref)) if ref[i] != out[i])
            parts.append(f"{name}: from byte {first}")
        return "; ".join(parts)


@dataclass
class MapDiff:
    """A key whose value is not the same on every engine (None: absent there)."""
    map: str
    key: str
    values: dict[str, str | None]


@dataclass
class Report:
    path: str
    program: str
    prog_type: str
    engines: list[str]
    rows: list[PacketRow]
    map_diffs: list[MapDiff]
    maps_compared: list[str]
    timings: dict[str, float]         # engine -> mean ns per run
    repeat: int
    sizes: dict[str, int]             # engine -> native code bytes ("kernel", "jit")
    notes: list[str] = field(default_factory=list)
    asm: str | None = None
    # Packets compared, how many agreed, and engine -> verdict name -> packets. A capture is
    # compared in chunks and only the rows worth showing are kept, so these are counted as the
    # chunks go (None: computed from `rows`, which then holds every packet).
    total: int | None = None
    agreed: int | None = None
    counts: dict | None = None

    @property
    def agree(self) -> bool:
        return all(r.agree for r in self.rows) and not self.map_diffs and \
            (self.agreed is None or self.agreed == self.total)

    @property
    def packets_total(self) -> int:
        return len(self.rows) if self.total is None else self.total

    @property
    def packets_agreed(self) -> int:
        return sum(1 for r in self.rows if r.agree) if self.agreed is None else self.agreed

    def format(self, all_rows: bool = False) -> str:
        return format_report(self, all_rows)

    def to_json(self, all_rows: bool = False) -> dict:
        """The report as `compare -j` prints it: the same facts as the text (verdict counts
        per engine by name, the disagreeing rows or with `all_rows` every row, maps, timings,
        code sizes, notes) with verdicts both as numbers and names."""
        ptype = _prog_type_of(self)
        agree, total = self.packets_agreed, self.packets_total

        def row(r: PacketRow) -> dict:
            return {"index": r.index, "length": r.length,
                    "verdicts": {e: r.verdicts.get(e) for e in self.engines},
                    "verdict_names": {e: None if r.verdicts.get(e) is None
                                      else verdict_name(ptype, r.verdicts[e])
                                      for e in self.engines},
                    "verdict_agree": r.verdict_agree, "output_agree": r.output_agree,
                    "output_diff": r.output_diff() or None, "errors": r.errors}
        return {
            "file": self.path, "program": self.program, "type": self.prog_type,
            "engines": list(self.engines), "agree": self.agree,
            "packets": {"total": total, "agree": agree, "disagree": total - agree},
            "verdicts": {e: dict(sorted(_engine_counts(self, e, ptype).items()))
                         for e in self.engines},
            "rows": [row(r) for r in self.rows if all_rows or not r.agree],
            "maps": {"compared": list(self.maps_compared),
                     "differ": [{"map": d.map, "key": d.key, "values": d.values}
                                for d in self.map_diffs]},
            "timing": {"repeat": self.repeat, "ns_per_run": dict(self.timings)},
            "native_bytes": dict(self.sizes), "notes": list(self.notes),
        }


# --------------------------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------------------------

def _percpu(value) -> bool:
    return isinstance(value, list)


def _norm_value(value) -> str:
    """A map value as hex; per-CPU values as their touched slots (see the module docstring)."""
    if _percpu(value):
        touched = [bytes(v).hex() for v in value if any(v)]
        return "percpu[" + ",".join(touched) + "]"
    if value is None:
        return "-"
    if isinstance(value, int):      # prog_array / map-in-map slots: ids differ per engine
        return "<ref>"
    return bytes(value).hex()


def _dump(m) -> dict[str, str]:
    mtype = getattr(m, "type", None)
    if mtype in (MapType.RINGBUF, MapType.PERF_EVENT_ARRAY, MapType.QUEUE, MapType.STACK,
                 MapType.PROG_ARRAY, MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS):
        return {}
    out = {}
    for k, v in m.items():
        out[bytes(k).hex()] = _norm_value(v)
    return out


def _comparable_maps(spec) -> list[str]:
    skip = {MapType.RINGBUF, MapType.PERF_EVENT_ARRAY, MapType.QUEUE, MapType.STACK,
            MapType.PROG_ARRAY, MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS}
    return [name for name, m in spec.maps.items() if m.type not in skip]


@contextmanager
def pinned_to_one_cpu():
    """Pin the calling thread to its current CPU (the first allowed one) for the block."""
    try:
        before = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        yield
        return
    cpu = min(before)
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        yield
        return
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


# --------------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------------

def _varying_entries(path: str, program: str, packets: Sequence[bytes],
                     maps_compared: Sequence[str], capture=None) -> set[tuple[str, str]]:
    """(map, key) pairs whose values differ between two identical interpreter runs: they hold
    timestamps or random numbers, so no two engines (or runs) can be expected to agree on them."""
    # Lazy: the C module (ebpfjit._rt): the CLI builds this module's parser at every start.
    from ..api.loader import load
    dumps = []
    for _ in range(2):
        obj = load(path)
        if capture is not None:     # streamed through C; a fault ends this pass early
            # Lazy: the C module (ebpfjit._rt): the CLI builds this module's parser at every start.
            from ..capture.stream import run_capture
            try:
                run_capture(obj.programs[program], capture, "interp")
            except EbpfError:
                pass
        for pkt in packets:
            try:
                _run_ours(obj.programs[program], "interp", pkt)
            except EbpfError:
                pass
        dumps.append({name: _dump(obj.maps[name]) for name in maps_compared if name in obj.maps})
        time.sleep(0.001)
    varying = set()
    for name in maps_compared:
        first, second = dumps[0].get(name, {}), dumps[1].get(name, {})
        for key in set(first) | set(second):
            if first.get(key) != second.get(key):
                varying.add((name, key))
    return varying


# How each program type's input reaches the kernel's BPF_PROG_TEST_RUN and our test run.
# Packet types: the input is the packet (data_in), the output the packet after the run.
# RAW_TRACEPOINT: the input is the u64 args array (ctx_in); no output. SYSCALL: the input is
# the context (ctx_in), which the program may write; the output is the context after the run.
# Anything else: our engines get the input as their context; the kernel is tried with it as
# data_in (kprobe/tracepoint/perf_event have no test run: ENOTSUPP, reported as a note).
def _packet_types():
    return frozenset({ProgType.XDP, ProgType.SCHED_CLS, ProgType.SCHED_ACT,
                      ProgType.SOCKET_FILTER, ProgType.CGROUP_SKB})


RAW_TP_ARGS = 12      # MAX_BPF_FUNC_ARGS: a raw_tp test run takes at most 12 u64 args


def _raw_tp_args(data: bytes) -> bytes:
    """The raw tracepoint context both sides get: the input as u64 args, zero-padded to all
    12 (a raw_tp program may read any of args[0..11]; the kernel copies only ctx_size_in
    bytes, so a shorter ctx would let the kernel read past it)."""
    return bytes(data[:8 * RAW_TP_ARGS]).ljust(8 * RAW_TP_ARGS, b"\0")


def _run_ours(prog, engine: str, data: bytes, repeat: int = 1) -> tuple[int, bytes, float]:
    """(retval, output, ns per run) of one of our engines, with the type's input convention."""
    ptype = prog.type
    if ptype in _packet_types():
        r = prog.test_run(data, repeat=repeat, engine=engine)
        return r[0], bytes(r[1]), r[2]
    if ptype == ProgType.SYSCALL:
        ctx = bytearray(data)           # writable, as the kernel's copy of ctx_in
        r = prog.test_run(b"", repeat=repeat, engine=engine, ctx_in=ctx)
        return r[0], bytes(ctx), r[2]
    if ptype == ProgType.RAW_TRACEPOINT:
        r = prog.test_run(b"", repeat=repeat, engine=engine, ctx_in=_raw_tp_args(data))
        return r[0], b"", r[2]
    r = prog.test_run(data, repeat=repeat, engine=engine)
    return r[0], bytes(r[1]), r[2]


def _run_kernel(kprog, data: bytes, repeat: int = 1) -> tuple[int, bytes, float]:
    """(retval, output, ns per run) of the kernel, with the type's input convention."""
    ptype = kprog.type
    with pinned_to_one_cpu():
        if ptype == ProgType.SYSCALL:
            tr = kprog.test_run(b"", ctx_in=data or None)
            return tr.retval, bytes(tr.ctx_out or b""), tr.duration_ns
        if ptype == ProgType.RAW_TRACEPOINT:
            tr = kprog.test_run(b"", ctx_in=_raw_tp_args(data))
            return tr.retval, b"", tr.duration_ns
        tr = kprog.test_run(data, repeat=repeat)
        return tr.retval, bytes(tr.data_out), tr.duration_ns


def _kernel_programs(spec, program: str) -> list[str]:
    """The compared program and every program a prog_array of the object names (tail-call
    targets), so that the kernel's prog_arrays are filled as ours are."""
    names = [program]
    for m in spec.maps.values():
        if m.type != MapType.PROG_ARRAY:
            continue
        for ref in m.values.values():
            if isinstance(ref, str) and ref in spec.programs and ref not in names:
                names.append(ref)
    return names


def _kernel_load_limitation(pspec, exc: KernelError) -> str | None:
    """Why the kernel cannot load this program for a reason that is not a verdict on the code
    (None: a genuine rejection, to be reported as an error)."""

    ptype = pspec.type
    err = exc.errno
    what = f"bpf(BPF_PROG_LOAD) of {ptype.name} failed with {errno_name(err or 0)}"
    if ptype == ProgType.UNSPEC and err == _errno.EINVAL:
        return (f"{what}: section {pspec.section!r} names no program type "
                f"(BPF_PROG_TYPE_UNSPEC), which the kernel never loads")
    if ptype in (ProgType.TRACING, ProgType.LSM, ProgType.EXT) and \
            err in (_errno.EPERM, _errno.EINVAL, _errno.EOPNOTSUPP, 524, _errno.ESRCH):
        log = "no verifier log" if not (exc.log or "").strip() else "log: " + str(exc).split(": ")[-1]
        return (f"{what} ({log}): {ptype.name} programs ({pspec.section!r}) are loaded against "
                f"a kernel attach target (vmlinux BTF attach_btf_id, BPF trampoline), which "
                f"ebpfjit does not provide, and BPF_PROG_TEST_RUN never runs them on a given "
                f"context")
    return None


def _kernel_run_limitation(pspec) -> str | None:
    """Program types the kernel loads but whose test run does not run them on our input."""
    if pspec.type in (ProgType.TRACING, ProgType.LSM, ProgType.EXT):
        return (f"BPF_PROG_TEST_RUN of {pspec.type.name} programs does not run an unattached "
                f"program on a given context")
    return None


def _ours_chunk(prog, engine: str, chunk) -> list[tuple[int | None, bytes | None, str | None]]:
    """(verdict, output packet, error) of every packet of a stream.Chunk on one of our engines,
    through the C batch path; a packet that faults or that the model refuses gets its error and
    the chunk goes on after it."""

    # Lazy: the C module (ebpfjit._rt): the CLI builds this module's parser at every start.
    from ..capture.stream import PKT_OUT_MAX
    loaded, model = prog._prepare(engine), prog._packet_model()
    n = len(chunk)
    verdicts = array.array("I", bytes(4 * n))
    out_lens = array.array("I", bytes(4 * n))
    out = bytearray(max(1 << 20, 2 * PKT_OUT_MAX))
    res: list[tuple[int | None, bytes | None, str | None]] = []
    pos = off = 0
    while pos < n:
        lens = chunk.lens[pos:]
        fault = None
        try:
            done, used = loaded.run_chunk(model, chunk.data[off:], lens, verdicts, engine, None,
                                          out, out_lens)
        except ExecutionError as err:
            done, used, fault = err.batch_index, 0, err
        o = 0
        for i in range(done):
            res.append((verdicts[i], bytes(out[o:o + out_lens[i]]), None))
            o += out_lens[i]
        off += sum(lens[:done])
        pos += done
        if pos == n:
            break
        if fault is None and len(out) - used < PKT_OUT_MAX:
            continue                            # `out` was full: drained, go on
        if fault is None:                       # refused: its own test run says why
            try:
                v, data_out, _ = _run_ours(prog, engine, bytes(chunk.data[off:off + lens[done]]))
                res.append((v, data_out, None))
            except EbpfError as exc:
                res.append((None, None, f"{type(exc).__name__}: {exc}"))
        else:
            res.append((None, None, f"{type(fault).__name__}: {fault}"))
        off += lens[done]
        pos += 1
    return res


def _kernel_chunk(kprog, chunk) -> list[tuple[int | None, bytes | None, str | None]]:
    """The same from the kernel: BPF_PROG_TEST_RUN per packet in one C loop
    (KernelProgram.test_run_batch), on one CPU (see pinned_to_one_cpu)."""
    n = len(chunk)
    res: list[tuple[int | None, bytes | None, str | None]] = []
    pos = off = 0
    with pinned_to_one_cpu():
        while pos < n:
            rets, outs, err = kprog.test_run_batch(chunk.data[off:], chunk.lens[pos:])
            res += [(r, o, None) for r, o in zip(rets, outs)]
            off += sum(chunk.lens[pos:pos + len(rets)])
            pos += len(rets)
            if err is not None:
                res.append((None, None, f"{type(err).__name__}: {err}"))
                off += chunk.lens[pos]
                pos += 1
    return res


def _stream_rows(capture, engines, ours, kprog, ptype, all_rows: bool, progress):
    """Compare every packet of `capture` chunk by chunk. Returns (rows kept: the disagreeing
    ones, or all with `all_rows`; totals {"total", "agreed", "counts": engine -> Counter of
    verdict names}; a sample of TIMING_SAMPLE packets drawn uniformly over the capture)."""

    # Lazy: the C module (ebpfjit._rt): the CLI builds this module's parser at every start.
    from ..capture.stream import chunks
    counts = {e: Counter() for e in engines}
    total = agreed = 0
    rows: list[PacketRow] = []
    sample: list[bytes] = []
    pick = random.Random(0)         # reservoir sampling, the same sample every run
    for chunk in chunks(capture):
        results = {}
        for e in engines:
            results[e] = (_kernel_chunk(kprog, chunk) if e == "kernel"
                          else _ours_chunk(ours[e][1], e, chunk))
        off = 0
        for i in range(len(chunk)):
            length = chunk.lens[i]
            verdicts, outputs, errors = {}, {}, {}
            for e in engines:
                v, o, err = results[e][i]
                verdicts[e], outputs[e] = v, o
                if err is not None:
                    errors[e] = err
                counts[e]["error" if err is not None else verdict_name(ptype, v)] += 1
            row = PacketRow(chunk.first + i, length, verdicts, outputs, errors)
            index = chunk.first + i
            if row.agree:
                agreed += 1
            if all_rows or not row.agree:
                rows.append(row)
            if len(sample) < TIMING_SAMPLE:
                sample.append(bytes(chunk.data[off:off + length]))
            else:
                j = pick.randrange(index + 1)
                if j < TIMING_SAMPLE:
                    sample[j] = bytes(chunk.data[off:off + length])
            off += length
        total += len(chunk)
        if progress is not None:
            progress.update(total)
    return rows, {"total": total, "agreed": agreed, "counts": counts}, sample


def compare_object(path: str | os.PathLike, program: str | None = None,
                   packets: Sequence[bytes] | None = None, repeat: int = 1000, *,
                   engines: Sequence[str] = ENGINES, asm: bool = False,
                   opt_level: int = 2, capture: str | os.PathLike | None = None,
                   all_rows: bool = True, progress=None) -> Report:
    """Run one program of an ELF object on every engine and compare.

    Args:
        path: the object file.
        program: program name (default: the object's only program).
        packets: inputs (default: one small Ethernet/IPv4/UDP packet). For packet types
            (XDP, tc, socket filter, cgroup_skb) the packet; for RAW_TRACEPOINT the u64 args
            (zero-padded to 12); for SYSCALL the context (the output is the context after the
            run); for other types our engines' context (the kernel cannot test-run those).
        repeat: runs per timing measurement (0: skip timing).
        engines: subset of "interp", "jit", "kernel". A kernel that cannot be used (no
            permission, no test run for the type, a type it cannot load without an attach
            target, or no type at all) is dropped with a note saying why; interp and JIT are
            still compared. The kernel also loads every tail-call target named in the
            object's prog_arrays, so its prog_arrays are filled as ours are.
        asm: also build the side-by-side disassembly (`Report.asm`).
        opt_level: our JIT's optimisation level.
        capture: a pcap/pcapng file to take the packets from instead of `packets`. For packet
            types it is streamed: chunks of packets go through our C batch path and one C loop
            of BPF_PROG_TEST_RUN calls, so memory does not grow with the capture; the Report
            then keeps only the disagreeing rows unless `all_rows`, with the totals and
            per-verdict counts in `total`/`agreed`/`counts`, and times a sample of
            TIMING_SAMPLE packets drawn over the whole capture.
        progress: a stream.Progress updated after each chunk.
    Returns:
        A Report; `.agree` is False on any disagreement.
    Raises:
        ElfError, VerifierError, EbpfError: the object cannot be loaded by us;
        KernelError: the kernel verifier refused it (message and log included) and the
            type is one the kernel can load.
    """
    # Lazy: the C module (ebpfjit._rt): the CLI builds this module's parser at every start.
    from ..api.loader import load
    path = os.fspath(path)
    spec = elf.load_spec(path)
    streamed = False
    if capture is not None:
        pspec0 = spec.programs.get(program) if program else (
            next(iter(spec.programs.values())) if len(spec.programs) == 1 else None)
        streamed = pspec0 is not None and pspec0.type in _packet_types()
        packets = [] if streamed else [p.data for p in iter_ethernet(capture)]
    packets = [bytes(p) for p in (packets if packets is not None else [DEFAULT_PACKET])]
    if program is None:
        if len(spec.programs) != 1:
            raise EbpfError(f"{path} holds {len(spec.programs)} programs "
                            f"({', '.join(spec.programs)}); choose one with --program")
        program = next(iter(spec.programs))
    if program not in spec.programs:
        raise EbpfError(f"{path}: no program {program!r} (have {', '.join(spec.programs)})")
    pspec = spec.programs[program]
    engines = list(engines)
    notes: list[str] = []
    maps_compared = _comparable_maps(spec)

    ours = {}
    for e in (e for e in engines if e != "kernel"):
        obj = load(path)
        prog = obj.programs[program]
        prog.opt_level = opt_level
        ours[e] = (obj, prog)

    kobj = None
    if "kernel" in engines:
        kmod = kernel
        reason = None
        try:
            kmod.check(pspec.type)
            kobj = kmod.KernelObject(spec, programs=_kernel_programs(spec, program))
            reason = _kernel_run_limitation(pspec)
        except KernelUnavailable as exc:
            reason = str(exc)
        except KernelError as exc:
            reason = _kernel_load_limitation(pspec, exc)
            if reason is None:
                raise
        if reason is not None:
            notes.append(f"kernel: not compared ({reason})")
            engines.remove("kernel")
            if kobj is not None:
                kobj.close()
                kobj = None
        elif pspec.type == ProgType.RAW_TRACEPOINT:
            notes.append("raw_tracepoint: every engine gets the input as the u64 args[12] "
                         "(zero-padded); plain integers, since a pointer into this process's "
                         "memory is not kernel memory: bpf_probe_read_kernel of it fails in "
                         "the kernel (-ERANGE) and reads it in our engines")
            if any(len(p) > 8 * RAW_TP_ARGS for p in packets):
                notes.append(f"raw_tracepoint: inputs are cut to {8 * RAW_TP_ARGS} bytes")

    rows: list[PacketRow] = []
    kernel_unavailable = None
    stats = None
    if streamed:
        kprog = kobj.programs[program] if kobj is not None else None
        rows, stats, packets = _stream_rows(capture, engines, ours, kprog, pspec.type, all_rows,
                                            progress)
    for i, pkt in enumerate(packets if not streamed else ()):
        verdicts: dict[str, int | None] = {}
        outputs: dict[str, bytes | None] = {}
        errors: dict[str, str] = {}
        for e in engines:
            try:
                if e == "kernel":
                    if kernel_unavailable:
                        continue
                    verdicts[e], outputs[e], _ = _run_kernel(kobj.programs[program], pkt)
                else:
                    verdicts[e], outputs[e], _ = _run_ours(ours[e][1], e, pkt)
            except KernelUnavailable as exc:
                kernel_unavailable = str(exc)
            except EbpfError as exc:
                verdicts[e], outputs[e] = None, None
                errors[e] = f"{type(exc).__name__}: {exc}"
        rows.append(PacketRow(i, len(pkt), verdicts, outputs, errors))
    if kernel_unavailable:
        notes.append(f"kernel: not compared ({kernel_unavailable})")
        engines.remove("kernel")
        for r in rows:
            r.verdicts.pop("kernel", None)
            r.outputs.pop("kernel", None)

    # Map contents after all packets.
    dumps: dict[str, dict[str, dict[str, str]]] = {}
    for e in engines:
        maps = kobj.maps if e == "kernel" else ours[e][0].maps
        dumps[e] = {name: _dump(maps[name]) for name in maps_compared if name in maps}
    # A map whose values differ between two identical runs holds times or random numbers; which
    # entries a run touches may be random too (a random slot), so the whole map is compared by
    # key only.
    varying = {name for name, _ in _varying_entries(path, program, () if streamed else packets,
                                                    maps_compared, capture if streamed else None)}
    for name in sorted(varying):
        notes.append(f"map {name}: some values differ between two identical runs (time or "
                     f"randomness); its entries are compared by key only")
    map_diffs: list[MapDiff] = []
    for name in maps_compared:
        keys = sorted({k for e in engines for k in dumps[e].get(name, {})})
        for k in keys:
            vals = {e: dumps[e].get(name, {}).get(k) for e in engines}
            if name in varying:
                vals = {e: (None if v is None else "<present>") for e, v in vals.items()}
            if len(set(vals.values())) > 1:
                map_diffs.append(MapDiff(name, k, vals))

    # Timing, then sizes.
    timings: dict[str, float] = {}
    timed = timing_sample(packets)
    n_packets = stats["total"] if stats else len(packets)
    if repeat > 0 and len(timed) < n_packets:
        notes.append(f"timing: {len(timed)} of {n_packets} packets, spread over the input, "
                     f"{repeat} runs each")
    if repeat > 0:
        for e in engines:
            if e == "kernel" and pspec.type in (ProgType.SYSCALL, ProgType.RAW_TRACEPOINT):
                notes.append(f"kernel: no timing (BPF_PROG_TEST_RUN of {pspec.type.name} "
                             f"programs runs once: it refuses a repeat count)")
                continue
            per_packet = []
            for pkt in timed:
                try:
                    if e == "kernel":
                        per_packet.append(_run_kernel(kobj.programs[program], pkt, repeat)[2])
                    else:
                        per_packet.append(_run_ours(ours[e][1], e, pkt, repeat)[2])
                except EbpfError:
                    break
            if per_packet:
                timings[e] = sum(per_packet) / len(per_packet)
    sizes: dict[str, int] = {}
    kinfo = None
    if kobj is not None and "kernel" in engines:
        kinfo = kobj.programs[program].info()
        sizes["kernel"] = len(kinfo.jited)
        if not kinfo.jited:
            notes.append("kernel: no jited image (JIT disabled, or kptr/bpf_jit_harden hides it)")
    jit_code = None
    if "jit" in ours:
        jit_code = ours["jit"][1].compile(opt_level)
        sizes["jit"] = jit_code.code_size

    text = None
    if asm:
        our_prog = ours["jit"][1] if "jit" in ours else load(path).programs[program]
        if kinfo is not None and kinfo.jited and kinfo.xlated:
            text = aligned_asm(kinfo, our_prog, opt_level)
        else:
            text = side_by_side(kinfo, our_prog.code, opt_level, maps=our_prog._jit_maps())
    if kobj is not None:
        kobj.close()
    rep = Report(path, program, pspec.type.name.lower(), engines, rows, map_diffs,
                 maps_compared, timings, repeat, sizes, notes, text)
    if stats is not None:
        rep.total, rep.agreed = stats["total"], stats["agreed"]
        rep.counts = {e: dict(stats["counts"][e]) for e in engines}
    return rep


# --------------------------------------------------------------------------------------------
# Side-by-side disassembly
# --------------------------------------------------------------------------------------------

_LABEL_PC = re.compile(r"^(\.?[\w.$]+):\s*#\s*%pc(\d+)\b")
_BLOCK_LABEL = re.compile(r"^(\.?[\w.$]+):")


_PC_MARK = re.compile(r"# pc (\d+): ")


def our_asm_by_pc(code: bytes, opt_level: int = 2,
                  maps=None) -> list[tuple[int | None, list[str]]]:
    """Our x86-64 assembly split at the eBPF instruction each run of machine code came from
    (`native_asm` marks them `# pc N: ...` from debug line locations): a list of (eBPF pc, or
    None for bookkeeping, instruction lines)."""
    # Lazy: llvmlite, only for --asm.
    from ..jit.compile import native_asm
    text = native_asm(code, opt_level=opt_level, maps=maps)
    chunks: list[tuple[int | None, list[str]]] = [(None, [])]
    for raw in text.splitlines():
        line = raw.rstrip()
        s = line.strip()
        m = _PC_MARK.match(s)
        if m:
            chunks.append((int(m.group(1)), []))
            continue
        if not s or s.startswith((".p2align", ".cfi", ".file", ".text", ".globl", ".type",
                                  ".size", ".section", ".ident", "#", ".addrsig")):
            continue
        m = _LABEL_PC.match(s)
        if m:
            chunks.append((int(m.group(2)), []))
            continue
        if _BLOCK_LABEL.match(s) and not s.startswith("."):
            chunks.append((None, [s]))
            continue
        if _BLOCK_LABEL.match(s):
            chunks[-1][1].append(s)
            continue
        if s.startswith("."):
            continue
        chunks[-1][1].append("    " + re.sub(r"\s+", " ", s.split("#")[0]).strip())
    return [c for c in chunks if c[1]]


def kernel_asm_by_insn(info) -> list[tuple[int | None, list[str]]]:
    """The kernel's image (AT&T syntax, as ours) split at jited_line_info addresses: a list of
    (xlated insn index of the line_info record, or None, instruction lines)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        raise KernelUnavailable("side-by-side disassembly is implemented for x86-64 only")
    md = capstone_for_host(att=True, skipdata=True)
    # (image offset -> insn index) from line_info (u32 insn_off, ...) and jited_line_info.
    anchors: dict[int, int] = {}
    if info.jited_line_info and info.line_info and info.jited_ksyms:
        rec = len(info.line_info) // max(len(info.jited_line_info), 1)
        starts, pos = [], 0
        for n in info.jited_func_lens or [len(info.jited)]:
            starts.append(pos)
            pos += n
        for i, addr in enumerate(info.jited_line_info):
            insn_off = struct.unpack_from("<I", info.line_info, i * rec)[0]
            for fi, ksym in enumerate(info.jited_ksyms):
                flen = info.jited_func_lens[fi] if fi < len(info.jited_func_lens) else 0
                if ksym <= addr < ksym + flen:
                    anchors.setdefault(starts[fi] + addr - ksym, insn_off)
                    break
    chunks: list[tuple[int | None, list[str]]] = []
    pos = 0
    for fi, n in enumerate(info.jited_func_lens or [len(info.jited)]):
        chunks.append((None, [f"func{fi}:"]))
        for insn in md.disasm(info.jited[pos:pos + n], pos):
            if insn.address in anchors:
                chunks.append((anchors[insn.address], []))
            chunks[-1][1].append(f"    {insn.mnemonic} {insn.op_str}".rstrip())
        pos += n
    return [c for c in chunks if c[1]]


def aligned_asm_rows(info, prog, opt_level: int = 2):
    """Rows per original eBPF instruction of `prog` (an ObjectProgram), aligned with the
    kernel's xlated image through its line info (see ebpfjit.asmalign)."""
    return build_rows(prog.spec.code, prog.spec.line_info, info,
                      our_asm_by_pc(prog.code, opt_level, prog._jit_maps()),
                      kernel_asm_by_insn(info), map_names=list(prog.object.maps))


def aligned_asm(info, prog, opt_level: int = 2) -> str:
    return format_rows(aligned_asm_rows(info, prog, opt_level))


def side_by_side(info, our_code: bytes | None, opt_level: int = 2, width: int = 52,
                 maps=None) -> str:
    """Kernel JIT | our JIT, aligned at the eBPF instruction indices both sides know."""
    left = kernel_asm_by_insn(info) if info is not None and info.jited else []
    right = our_asm_by_pc(our_code, opt_level, maps) if our_code is not None else []
    have_lines = bool(info is not None and info.jited_line_info)
    kernel_head = "kernel JIT (x86-64, " + ("anchored per BTF source line)" if have_lines
                                          else "per function: no line_info)")
    our_anchored = any(pc is not None for pc, _ in right)
    our_head = ("our JIT (anchored per eBPF instruction)" if our_anchored else
                "our JIT (per function: no pc markers)")
    head = [f"{kernel_head:<{width}} | {our_head}"]
    head.append("-" * width + "-+-" + "-" * width)

    def grouped(chunks):
        # anchor -> lines; unanchored chunks stay attached to the previous anchor
        order: list[int | None] = []
        table: dict[int | None, list[str]] = {}
        cur: int | None = -1
        for pc, lines in chunks:
            key = pc if pc is not None else cur
            if key not in table:
                table[key] = []
                order.append(key)
            table[key].extend(lines)
            cur = key
        return table

    lt, rt = grouped(left), grouped(right)
    keys = sorted({k for k in list(lt) + list(rt)}, key=lambda k: -1 if k is None else k)
    out = list(head)
    for k in keys:
        a, b = lt.get(k, []), rt.get(k, [])
        if k is not None and k >= 0:
            ltag = f"-- insn {k} " if k in lt else ""
            rtag = f"-- pc {k} " if k in rt else ""
            out.append(f"{ltag:-<{width}}-+-{rtag:-<{width}}")
        for i in range(max(len(a), len(b))):
            x = a[i] if i < len(a) else ""
            y = b[i] if i < len(b) else ""
            out.append(f"{x[:width]:<{width}} | {y}")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------

def _table(headers: list[str], rows: Iterable[list[str]]) -> list[str]:
    rows = [list(map(str, r)) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return out


TIMING_SAMPLE = 64


def timing_sample(packets: Sequence[bytes], n: int = TIMING_SAMPLE) -> list[bytes]:
    """At most `n` packets spread evenly over `packets` (first and last included): timing every
    packet with a large repeat would cost packets x repeat runs, and the kernel's XDP test run
    attaches to the dispatcher on every call (NOTES.md)."""
    if len(packets) <= n:
        return list(packets)
    return [packets[i * (len(packets) - 1) // (n - 1)] for i in range(n)]


def _verdict_summary(rep: Report) -> list[str]:
    """One line per engine: packets per verdict name, and the agree/disagree counts."""
    ptype = _prog_type_of(rep)
    out = []
    agree, total = rep.packets_agreed, rep.packets_total
    out.append(f"packets: {total}; agree {agree}, disagree {total - agree}")
    for e in rep.engines:
        counts = _engine_counts(rep, e, ptype)
        out.append(f"  {e}: " + ", ".join(f"{v} {n}" for v, n in sorted(counts.items())))
    return out


def _engine_counts(rep: Report, engine: str, ptype):
    """Packets per verdict name on one engine ("error": it raised, "-": it did not run)."""
    if rep.counts is not None:
        return Counter(rep.counts.get(engine, {}))
    return Counter("error" if engine in r.errors else "-" if r.verdicts.get(engine) is None
                   else verdict_name(ptype, r.verdicts[engine]) for r in rep.rows)


def _prog_type_of(rep: Report) -> int:
    try:
        return ProgType[rep.prog_type.upper()]
    except KeyError:
        return ProgType.UNSPEC


def format_report(rep: Report, all_rows: bool = False) -> str:
    """The report: a verdict summary, the rows of the packets where engines disagree (every
    row with `all_rows`), maps, timings, notes and the result."""
    out = [f"{rep.path}: program {rep.program} ({rep.prog_type}); engines: {', '.join(rep.engines)}"]
    out.append("")
    out += _verdict_summary(rep)
    out.append("")
    ptype = _prog_type_of(rep)
    headers = ["pkt", "len"] + [f"verdict[{e}]" for e in rep.engines] + ["verdicts", "output"]
    rows = []
    shown = [r for r in rep.rows if all_rows or not r.agree]
    for r in shown:
        cells = [str(r.index), str(r.length)]
        for e in rep.engines:
            v = r.verdicts.get(e)
            cells.append("error" if e in r.errors else "-" if v is None else verdict_name(ptype, v))
        cells.append("agree" if r.verdict_agree else "DIFFER")
        cells.append("agree" if r.output_agree else "DIFFER " + r.output_diff())
        rows.append(cells)
    if rows:
        out += _table(headers, rows)
    elif rep.packets_total:
        out.append("(no disagreeing packets; --all lists every packet)")
    for r in shown:
        for e, msg in r.errors.items():
            out.append(f"  packet {r.index} {e}: {msg}")
    out.append("")
    if not rep.maps_compared:
        out.append("maps: none to compare")
    elif rep.map_diffs:
        out.append(f"maps: DIFFER at {len(rep.map_diffs)} key(s)")
        for d in rep.map_diffs[:20]:
            vals = ", ".join(f"{e}={v}" for e, v in d.values.items())
            out.append(f"  {d.map}[{d.key}]: {vals}")
    else:
        out.append(f"maps: agree ({', '.join(rep.maps_compared)})")
    out.append("")
    perf = []
    for e in rep.engines:
        ns = rep.timings.get(e)
        size = rep.sizes.get(e)
        perf.append([e, f"{ns:.1f}" if ns is not None else "-",
                     f"{size}" if size is not None else "-"])
    out += _table(["engine", f"ns/run (repeat {rep.repeat})", "native bytes"], perf)
    for n in rep.notes:
        out.append(f"note: {n}")
    out.append("")
    out.append("result: " + ("all engines agree" if rep.agree else "DISAGREEMENT"))
    if rep.asm:
        out += ["", rep.asm]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def _packets_from_args(args) -> list[bytes] | None:
    if args.pcap:
        return [p.data for p in iter_ethernet(args.pcap)]
    return _single_packet_from_args(args)


def _single_packet_from_args(args) -> list[bytes] | None:
    if args.data_file:
        with open(args.data_file, "rb") as f:
            return [f.read()]
    if args.data:
        return [bytes.fromhex(args.data)]
    return None


def cmd_compare(args) -> int:
    engines = [e for e in args.engines.split(",") if e]
    for e in engines:
        if e not in ENGINES:
            raise EbpfError(f"unknown engine {e!r}; expected some of {', '.join(ENGINES)}")
    try:
        # Lazy: the C module (ebpfjit._rt): the CLI builds this module's parser at every start.
        from ..capture.stream import Progress
        progress = Progress(label="compare: ") if args.pcap else None
        try:
            rep = compare_object(args.file, args.program, _single_packet_from_args(args),
                                 args.repeat, engines=engines, asm=args.asm,
                                 opt_level=args.opt_level, capture=args.pcap,
                                 all_rows=args.all, progress=progress)
        finally:
            if progress is not None:
                progress.close(progress.packets)
    except KernelError as exc:
        print(f"ebpfjit: error: the kernel refused the program: {exc}", file=sys.stderr)
        if exc.log:
            print(exc.log.rstrip()[-4000:], file=sys.stderr)
        return 1
    if getattr(args, "json", False) or getattr(args, "pretty", False):
        report = rep.to_json(all_rows=args.all)
        if rep.asm:
            report["asm"] = rep.asm.splitlines()
        print(json.dumps(report, indent=4 if args.pretty else None))
    else:
        print(rep.format(all_rows=args.all))
    return 0 if rep.agree else 1


def add_compare_parser(subparsers) -> argparse.ArgumentParser:
    """Add `compare` to the CLI's subparsers; sets `func=cmd_compare`."""
    p = subparsers.add_parser(
        "compare", help="run a program on the interpreter, our JIT and the kernel and compare",
        description="Run one program of an ELF object on the interpreter, our JIT and the "
                    "kernel (BPF_PROG_TEST_RUN) with the same input: verdicts, output packets, "
                    "map contents, ns per run and code size. Exit status 1 on any disagreement.")
    p.add_argument("file", help="ELF object")
    p.add_argument("--program", help="program (function) name")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--pcap", help="input packets from a pcap or pcapng file (as Ethernet frames)")
    g.add_argument("--data-file", help="one input packet from a file")
    g.add_argument("--data", help="one input packet as hex")
    p.add_argument("--repeat", type=int, default=1000,
                   help="runs per timing measurement (0: no timing; default 1000)")
    p.add_argument("--all", action="store_true",
                   help="list every packet (default: only those where the engines disagree)")
    p.add_argument("--asm", action="store_true",
                   help="print the kernel's and our x86-64 code side by side")
    p.add_argument("--engines", default=",".join(ENGINES), help="comma list (default: all)")
    p.add_argument("-O", dest="opt_level", type=int, default=2, choices=(0, 1, 2, 3))
    p.add_argument("-j", "--json", action="store_true", help="JSON output (as bpftool -j)")
    p.add_argument("-p", "--pretty", action="store_true", help="indented JSON (implies -j)")
    p.set_defaults(func=cmd_compare)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ebpfjit")
    add_compare_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (EbpfError, OSError) as exc:
        print(f"ebpfjit: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
