"""The kernel as oracle: every test-runnable program of tests/progs, run on the same packets in
the kernel (BPF_PROG_TEST_RUN) and in both engines on fresh objects, must give the same verdicts,
output packets and final map contents.

Time-dependent or random map contents are compared on what does not depend on them (keys,
counters); per-CPU values are compared summed over CPUs, since the kernel runs the test on
whichever CPU the caller is on.
"""
from __future__ import annotations

import struct

import pytest
from conftest import PROGS_DIR
from test_objects import PACKETS

import ebpfjit
from ebpfjit.objects.elf import load_spec
from ebpfjit.objects.spec import MapType, ProgType
from ebpfjit.oracle.compare import pinned_to_one_cpu

pytestmark = pytest.mark.kernel

ENGINES = ("interp", "jit")
RUNNABLE = {ProgType.XDP, ProgType.SCHED_CLS, ProgType.SOCKET_FILTER}
# Maps whose values hold timestamps or random numbers: only their keys are compared.
VOLATILE_VALUES = {("lru_percpu", "last_seen"), ("xdp_rate_limit", "flows"),
                   ("misc_helpers", "samples"), ("misc_helpers", ".bss"),
                   ("ringbuf_events", None)}
SKIP_MAP_TYPES = {MapType.PROG_ARRAY, MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS,
                  MapType.RINGBUF, MapType.QUEUE, MapType.STACK}


def _cases():
    out = []
    for path in sorted(PROGS_DIR.glob("*.o")):
        if path.with_suffix(".c").read_text().startswith("// Not loadable by the kernel"):
            continue        # written to fault or to be driven by a test's helper, not for the kernel
        spec = load_spec(str(path))
        for name, p in spec.programs.items():
            if p.type in RUNNABLE:
                out.append(pytest.param(path, name, id=f"{path.stem}:{name}"))
    return out


def _summed(value):
    if isinstance(value, (list, tuple)):
        # Per-CPU: sum the little-endian counter lanes (u64, else u32) over the CPUs.
        width = len(value[0])
        lane = 8 if width % 8 == 0 else 4 if width % 4 == 0 else 0
        if not lane:
            return tuple(bytes(v) for v in value)
        fmt, mask = ("<Q", (1 << 64) - 1) if lane == 8 else ("<I", (1 << 32) - 1)
        sums = [sum(struct.unpack_from(fmt, v, i)[0] for v in value) & mask
                for i in range(0, width, lane)]
        return b"".join(struct.pack(fmt, x) for x in sums)
    return bytes(value)


def _contents(m, keys_only: bool):
    items = sorted((bytes(k), _summed(v)) for k, v in m.items())
    return [k for k, _ in items] if keys_only else items


def _run_ours(o, name, engine, pkt):
    r = o.programs[name].test_run(pkt, engine=engine)
    return r.retval, r.data_out


@pytest.mark.parametrize("path, name", _cases())
def test_same_as_kernel(kernel, path, name):
    from ebpfjit.errors import KernelError
    # All programs when the kernel takes them (tail calls need their targets), else this one.
    chosen = None
    try:
        ko = kernel.KernelObject(load_spec(str(path)))
    except KernelError:
        chosen = [name]
        try:
            ko = kernel.KernelObject(load_spec(str(path)), programs=chosen)
        except KernelError as exc:
            pytest.skip(f"the kernel refuses {name}: {exc}")
    try:
        ours = {engine: ebpfjit.load(str(path), programs=chosen) for engine in ENGINES}
        for label, pkt in PACKETS.items():
            # Our single-threaded runs occupy virtual CPU 0; run the kernel's on CPU 0 too, so
            # maps keyed by bpf_get_smp_processor_id() agree.
            with pinned_to_one_cpu():
                kr = ko.programs[name].test_run(pkt)
            for engine, o in ours.items():
                got = _run_ours(o, name, engine, pkt)
                assert got == (kr.retval, kr.data_out), f"{label} on {engine}"
        for mname, km in ko.maps.items():
            if km.spec.type in SKIP_MAP_TYPES:
                continue
            keys_only = ((path.stem, mname) in VOLATILE_VALUES
                         or (path.stem, None) in VOLATILE_VALUES)
            want = _contents(km, keys_only)
            for engine, o in ours.items():
                assert _contents(o.maps[mname], keys_only) == want, f"map {mname} on {engine}"
    finally:
        ko.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_ctx_in_out_xdp_matches_kernel(kernel, engine):
    path = PROGS_DIR / "xdp_drop_ip.o"
    ko = kernel.KernelObject(load_spec(str(path)))
    try:
        o = ebpfjit.load(str(path))
        pkt = PACKETS["tcp443"]
        meta = bytes(range(8))
        ctx = struct.pack("<6I", 8, 8 + len(pkt), 0, 0, 0, 0)
        kr = ko.programs["xdp_drop_ip"].test_run(meta + pkt, ctx_in=ctx)
        r = o.program().test_run(meta + pkt, engine=engine, ctx_in=ctx)
        assert (r.retval, r.data_out, r.ctx_out) == (kr.retval, kr.data_out, kr.ctx_out)
    finally:
        ko.close()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("prog", ["tc_classifier", "socket_filter"])
def test_ctx_in_out_skb_matches_kernel(kernel, engine, prog):
    path = PROGS_DIR / f"{prog}.o"
    ko = kernel.KernelObject(load_spec(str(path)))
    try:
        o = ebpfjit.load(str(path))
        name = next(iter(o.programs))
        ctx = bytearray(192)
        struct.pack_into("<I", ctx, 8, 0x55)          # mark
        struct.pack_into("<I", ctx, 32, 7)            # priority
        struct.pack_into("<5I", ctx, 48, 1, 2, 3, 4, 5)
        for pkt in (PACKETS["tcp80_from_10.0.0.1"], PACKETS["udp_dns"]):
            kr = ko.programs[name].test_run(pkt, ctx_in=bytes(ctx))
            r = o.programs[name].test_run(pkt, engine=engine, ctx_in=bytes(ctx))
            assert (r.retval, r.data_out, r.ctx_out) == (kr.retval, kr.data_out, kr.ctx_out)
    finally:
        ko.close()
