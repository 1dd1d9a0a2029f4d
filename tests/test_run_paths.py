"""The fast run paths agree with the general ones: Program.run's per-instance closure,
ObjectProgram.run's one-C-call packet path (bytes, bytearray in place and resized, refused
packets), and run_batch's C loop, on both engines, including faults in the middle of a batch."""
from __future__ import annotations

import struct

import pytest
from conftest import PROGS_DIR
from test_objects import PACKETS, XDP_DROP, XDP_PASS, XDP_TX, u64

import ebpfjit
from ebpfjit import runtime
from ebpfjit.api.program import Program
from ebpfjit.errors import EbpfError, ExecutionError
from ebpfjit.isa.asm import assemble

ENGINES = ("interp", "jit")


def obj(name: str, **kw):
    return ebpfjit.load(str(PROGS_DIR / f"{name}.o"), ncpus=2, **kw)


def _runs(prog, packet, engine, times=3):
    """Verdicts of the same packet run `times` times (the first binds the fast path)."""
    return [prog.run(packet, engine=engine) for _ in range(times)]


# --- Program.run ------------------------------------------------------------------------------

def test_program_run_fast_path_follows_engine_and_opt_level():
    p = Program(assemble("mov %r0, %r2\nexit"))
    assert p.run(b"abc") == 3
    assert "run" in p.__dict__                      # bound after the first run
    assert p.run(bytearray(5)) == 5 and p.run() == 0
    assert p.run(b"abcd", engine="jit") == 4        # compiles through the fallback
    code = p._installed_jit
    assert p.run(b"ab", engine="jit") == 2 and p._installed_jit == code
    p.opt_level = 0                                 # unbinds: the next JIT run recompiles
    assert "run" not in p.__dict__
    assert p.run(b"abcdef", engine="jit") == 6 and p._installed_jit == (0, True)
    assert p.run(memoryview(b"xy")) == 2            # other buffers take the general path
    with pytest.raises(EbpfError, match="unknown engine"):
        p.run(b"", engine="native")
    with pytest.raises(TypeError):
        p.run(b"", "interp", None, 1)               # Program.run has no r1/r2


@pytest.mark.parametrize("engine", ENGINES)
def test_program_run_fast_path_faults(engine):
    p = Program(assemble("ldxdw %r0, [%r1+8]\nexit"))
    for _ in range(2):
        with pytest.raises(ExecutionError) as e:
            p.run(b"1234", engine=engine)
        assert e.value.kind == "oob_load" and e.value.pc == 0
    assert p.run(bytes(16), engine=engine) == 0


# --- ObjectProgram.run ------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_object_run_fast_path_matches_test_run(engine):
    o = obj("xdp_parser_counters")
    p = o.program()
    for name, pkt in PACKETS.items():
        if len(pkt) < 14:
            continue
        want = p.test_run(pkt, engine=engine).retval
        assert _runs(p, pkt, engine) == [want] * 3, name
    assert "run" in p.__dict__


@pytest.mark.parametrize("engine", ENGINES)
def test_object_run_bytearray_in_place_and_resized(engine):
    p = obj("xdp_encap").program()
    for _ in range(3):
        pkt = bytearray(PACKETS["udp_dns"])
        want = p.test_run(bytes(pkt), engine=engine)
        assert p.run(pkt, engine=engine) == XDP_TX == want.retval
        assert bytes(pkt) == want.data_out and len(pkt) == len(PACKETS["udp_dns"]) + 20
    tx = obj("xdp_tx_rewrite").program()
    for _ in range(3):
        pkt = bytearray(PACKETS["tcp443"])
        want = tx.test_run(bytes(pkt), engine=engine)
        assert tx.run(pkt, engine=engine) == want.retval
        assert bytes(pkt) == want.data_out


@pytest.mark.parametrize("engine", ENGINES)
def test_object_run_socket_filter_output_and_refusals(engine):
    p = obj("socket_filter").program()
    for _ in range(3):
        pkt = bytearray(PACKETS["tcp443"])
        want = p.test_run(bytes(pkt), engine=engine)
        assert p.run(pkt, engine=engine) == want.retval
        assert bytes(pkt) == want.data_out          # the pulled Ethernet header reads as zeroes
    x = obj("xdp_drop_ip").program()
    for _ in range(2):
        with pytest.raises(EbpfError, match="refused"):
            x.run(bytes(10), engine=engine)         # shorter than an Ethernet header: EINVAL
        with pytest.raises(EbpfError, match="fragments"):
            x.run(bytes(4000), engine=engine)
        with pytest.raises(EbpfError, match="refused"):
            x.run(bytearray(), engine=engine)


def test_object_run_budget_and_tail_calls_take_the_general_path():
    o = obj("tail_calls")
    p = o.programs["xdp_dispatch"]
    for engine in ENGINES * 2:
        assert p.run(PACKETS["tcp443"], engine=engine) == XDP_PASS
        assert p.run(PACKETS["arp"], engine=engine, budget=1000) == XDP_DROP
    hits = {k: u64(v) for k, v in o.maps["stage_hits"].items()}
    assert hits[b"\x01\x00\x00\x00"] == 4 and hits[b"\x02\x00\x00\x00"] == 4



@pytest.mark.parametrize("engine", ENGINES)
def test_repeat_loops_continue_tail_calls_and_start_runs_afresh(engine):
    """test_run's repeat and run_batch follow each run's tail call once (continued, never
    redone), and every run starts with no tail calls counted: past the limit of 33 calls in
    all, the loop's runs still make theirs."""
    o = obj("tail_calls")
    p = o.programs["xdp_dispatch"]
    assert p.test_run(PACKETS["tcp443"], repeat=40, engine=engine).retval == XDP_PASS
    batch = [PACKETS["arp"], PACKETS["tcp443"]] * 20
    assert p.run_batch(batch, engine=engine) == [XDP_DROP, XDP_PASS] * 20
    hits = {k[0]: u64(v) for k, v in o.maps["stage_hits"].items()}
    assert (hits[0], hits[1], hits[2], hits[3]) == (80, 60, 20, 0)

# --- run_batch --------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_run_batch_matches_single_runs(engine):
    names = [n for n, p in PACKETS.items() if len(p) >= 14]
    batch = [PACKETS[n] for n in names] * 5
    single, batched = obj("xdp_parser_counters"), obj("xdp_parser_counters")
    want = [single.program().run(p, engine=engine) for p in batch]
    got = batched.program().run_batch(batch, engine=engine)
    assert got == want
    assert dict(single.maps["proto_counts"].items()) == dict(batched.maps["proto_counts"].items())
    # Any iterable of bytes-like packets; the inputs are not modified.
    arrays = [bytearray(p) for p in batch]
    assert batched.program().run_batch(iter(arrays), engine=engine) == want
    assert arrays == [bytearray(p) for p in batch]
    assert batched.program().run_batch([memoryview(p) for p in batch], engine=engine) == want
    assert batched.program().run_batch([], engine=engine) == []


@pytest.mark.parametrize("engine", ENGINES)
def test_run_batch_skb_types(engine):
    p = obj("socket_filter").program()
    batch = [PACKETS["tcp443"], PACKETS["udp_dns"], PACKETS["icmp"]]
    assert p.run_batch(batch, engine=engine) == [p.test_run(b, engine=engine).retval
                                                 for b in batch]


@pytest.mark.parametrize("engine", ENGINES)
def test_run_batch_refused_packet(engine):
    p = obj("xdp_drop_ip").program()
    with pytest.raises(EbpfError, match="refused"):
        p.run_batch([PACKETS["tcp443"], bytes(3), PACKETS["icmp"]], engine=engine)
    assert p.run_batch([PACKETS["tcp80_from_10.0.0.1"]], engine=engine) == [XDP_DROP]


# A raw XDP program over the shadow context (slot 3 = data): verdict = the byte after the
# Ethernet header, except 0xff, which loads from address 0xff (a fault).
FAULTY_XDP = """
    ldxdw %r2, [%r1+24]
    ldxb %r0, [%r2+14]
    jeq %r0, 0xff, bad
    exit
bad:
    ldxdw %r0, [%r0+0]
    exit
"""


def _faulty(engine):
    p = Program(assemble(FAULTY_XDP), type="xdp")
    if engine == "jit":
        p._ensure_jit(p.loaded)
    return p.loaded


@pytest.mark.parametrize("engine", ENGINES)
def test_run_batch_fault_in_the_middle(engine):
    loaded = _faulty(engine)
    pkts = [bytes(14) + bytes([v]) for v in (1, 2, 0xFF, 3)]
    assert loaded.run_packets(runtime.PKT_XDP, pkts[:2] + pkts[3:], engine) == [1, 2, 3]
    with pytest.raises(ExecutionError) as e:
        loaded.run_packets(runtime.PKT_XDP, pkts, engine)
    err = e.value
    assert err.kind == "oob_load" and err.pc == 4 and err.addr == 0xFF
    assert err.batch_index == 2 and err.results == [1, 2]
    # The thread's state is usable again: the next batch and single runs work.
    assert loaded.run_packets(runtime.PKT_XDP, pkts[:2], engine) == [1, 2]
    run = loaded.make_packet_run(runtime.PKT_XDP, lambda *a: pytest.fail("fallback"))
    assert run(pkts[3], engine) == 3
    with pytest.raises(ExecutionError, match="out-of-bounds load"):
        run(pkts[2], engine)
    with pytest.raises(ExecutionError, match="budget of 5") as e:
        _budget_batch(engine)
    assert e.value.batch_index == 0 and e.value.results == []


def _budget_batch(engine):
    # A loop-free program never spends budget; one backward jump with budget 1 exhausts it.
    p = Program(assemble("mov %r0, 1\nloop:\njne %r0, 0, loop\nexit"), type="xdp")
    if engine == "jit":
        p._ensure_jit(p.loaded)
    p.loaded.run_packets(runtime.PKT_XDP, [bytes(15)] * 2, engine, budget=5)


@pytest.mark.parametrize("engine", ENGINES)
def test_run_batch_shares_maps_and_cpus(engine):
    o = obj("percpu_threads")
    prog = o.programs["count_runs"]
    assert prog.run_batch([bytes(64)] * 100, engine=engine) == [XDP_PASS] * 100
    slots = o.maps["runs"].lookup(0)
    assert sum(struct.unpack("<Q", s)[0] for s in slots) == 64 * 100
