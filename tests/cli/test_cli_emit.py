"""`ebpfjit run`: what the program emitted (bpf_printk lines, ring-buffer records decoded
through BTF by ebpfjit.records' rule, hex otherwise; --dump-maps counts them) and --ctx-in as
bpftool's `prog run ... ctx_in FILE` (XDP: struct xdp_md; tc: struct __sk_buff), compared with
the kernel's test run where bpf() works."""
from __future__ import annotations

import json
import struct

import pytest

from ebpfjit.capture import pcap
from ebpfjit.cli import commands as cli
from ebpfjit.objects.elf import load_spec
from tests.support.paths import PROGS_DIR, ROOT

EMIT = PROGS_DIR / "emit_records.o"
IPV4 = pcap.read_file(ROOT / "ebpfjit" / "examples" / "traffic.pcap")[1].data
ARP = bytes.fromhex("ffffffffffff020000000001080600010800060400010200000000010a000001"
                    "0000000000000a000002")


def run_cli(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def event(meta_len=0, meta=0):
    return {"ifindex": 1, "queue": 0, "proto": 0x800, "kind": 1, "meta_len": meta_len,
            "meta": meta, "len": len(IPV4), "tag": "packet"}


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_ringbuf_record_decoded_through_btf(capsys, engine):
    status, out, _ = run_cli(capsys, "run", EMIT, "--engine", engine, "--data", IPV4.hex(),
                             "--dump-maps")
    lines = out.splitlines()
    assert status == 0 and lines[0] == "retval 0x2 (XDP_PASS)"
    assert lines[1] == "bpf_printk: emitted proto 800 meta 0"
    assert lines[2] == f"ringbuf events record 0 (struct event): {json.dumps(event())}"
    assert lines[lines.index("map events:") + 1] == "  (1 record pending after the run, shown above)"


def test_record_of_another_size_is_hex_and_json_has_both(capsys):
    status, out, _ = run_cli(capsys, "run", EMIT, "--data", ARP.hex())
    assert status == 0 and "ringbuf events record 0 (4 bytes): 07 00 00 00" in out.splitlines()
    status, out, _ = run_cli(capsys, "run", EMIT, "--data", ARP.hex(), "-j")
    assert json.loads(out)["ringbuf"] == {"events": [{"size": 4, "hex": "07000000"}]}
    status, out, _ = run_cli(capsys, "run", EMIT, "--data", IPV4.hex(), "-j")
    report = json.loads(out)
    rec = report["ringbuf"]["events"][0]
    assert (rec["type"], rec["value"], rec["size"]) == ("struct event", event(), 32)
    assert report["trace"] == ["emitted proto 800 meta 0"]


def test_untyped_ringbuf_stays_hex(capsys):
    status, out, _ = run_cli(capsys, "run", PROGS_DIR / "ringbuf_events.o", "--data", IPV4.hex())
    assert status == 0 and "ringbuf events record 0 (32 bytes): " in out


def xdp_md(meta_len: int, length: int) -> bytes:
    """struct xdp_md as bpftool's ctx_in file holds it: data, data_end (offsets into data_in,
    which starts with the metadata), data_meta, ingress_ifindex, rx_queue_index, egress."""
    return struct.pack("<6I", meta_len, meta_len + length, 0, 1, 0, 0)


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_ctx_in_xdp_metadata(tmp_path, capsys, engine):
    ctx = tmp_path / "ctx.bin"
    ctx.write_bytes(xdp_md(8, len(IPV4)))
    meta = struct.pack("<II", 0xCAFE, 0)
    status, out, _ = run_cli(capsys, "run", EMIT, "--engine", engine, "--data",
                             (meta + IPV4).hex(), "--ctx-in", ctx)
    lines = out.splitlines()
    assert status == 0 and lines[0] == "retval 0x1 (XDP_DROP)"
    assert lines[2] == (f"ringbuf events record 0 (struct event): "
                        f"{json.dumps(event(meta_len=8, meta=0xCAFE))}")
    ctx.write_bytes(struct.pack("<6I", 0, len(IPV4), 4, 1, 0, 0))   # data_meta set: EINVAL
    status, out, err = run_cli(capsys, "run", EMIT, "--data", IPV4.hex(), "--ctx-in", ctx)
    assert status == 1 and out == "" and "EINVAL" in err


def test_ctx_in_needs_an_object(tmp_path, capsys):
    src = tmp_path / "p.s"
    src.write_text("mov %r0, 1\nexit\n")
    status, _, err = run_cli(capsys, "run", src, "--ctx-in", src)
    assert status == 2 and "--ctx-in needs a program from an ELF object" in err


def cli_json(capsys, *argv):
    status, out, err = run_cli(capsys, *argv, "-j")
    assert status == 0, err
    return json.loads(out)


@pytest.mark.kernel
def test_ctx_in_xdp_matches_kernel(kernel, tmp_path, capsys):
    ctx = xdp_md(8, len(IPV4))
    data = struct.pack("<II", 0xCAFE, 0) + IPV4
    (tmp_path / "ctx.bin").write_bytes(ctx)
    ko = kernel.KernelObject(load_spec(str(EMIT)))
    try:
        kr = ko.programs["xdp_emit"].test_run(data, ctx_in=ctx)
    finally:
        ko.close()
    for engine in ("interp", "jit"):
        report = cli_json(capsys, "run", EMIT, "--engine", engine, "--data", data.hex(),
                          "--ctx-in", tmp_path / "ctx.bin")
        assert (report["retval"], report["data_out"]) == (kr.retval, bytes(kr.data_out).hex())
    assert kr.retval == 1


@pytest.mark.kernel
def test_ctx_in_tc_matches_kernel(kernel, tmp_path, capsys):
    path = PROGS_DIR / "tc_classifier.o"
    ctx = bytearray(192)                              # struct __sk_buff, as bpftool's ctx_in
    struct.pack_into("<I", ctx, 8, 0x55)              # mark
    struct.pack_into("<I", ctx, 32, 7)                # priority
    struct.pack_into("<5I", ctx, 48, 1, 2, 3, 4, 5)   # cb[]
    (tmp_path / "ctx.bin").write_bytes(ctx)
    ko = kernel.KernelObject(load_spec(str(path)))
    try:
        name = next(iter(ko.programs))
        kr = ko.programs[name].test_run(IPV4, ctx_in=bytes(ctx))
    finally:
        ko.close()
    for engine in ("interp", "jit"):
        report = cli_json(capsys, "run", path, "--engine", engine, "--data", IPV4.hex(),
                          "--ctx-in", tmp_path / "ctx.bin")
        assert (report["retval"], report["data_out"]) == (kr.retval, bytes(kr.data_out).hex())
