"""ebpfjit.compare: the report's agreement logic, per-CPU alignment, text, CLI wiring, and real
comparisons of the XDP objects in tests/progs against the kernel."""
from __future__ import annotations

import argparse

import pytest
from conftest import PROGS_DIR

from ebpfjit.capture import pcap
from ebpfjit.oracle import compare
from ebpfjit.oracle.compare import MapDiff, PacketRow, Report


def _report(rows, map_diffs=()):
    return Report("x.o", "prog", "xdp", ["interp", "jit", "kernel"], rows, list(map_diffs),
                  ["counts"], {"interp": 80.0, "jit": 12.5, "kernel": 40.0}, 100,
                  {"jit": 120, "kernel": 96})


def test_row_agreement():
    same = PacketRow(0, 60, {"interp": 2, "jit": 2, "kernel": 2},
                     {"interp": b"ab", "jit": b"ab", "kernel": b"ab"})
    assert same.agree and same.output_diff() == ""
    verdict = PacketRow(1, 60, {"interp": 2, "jit": 1, "kernel": 2},
                        {"interp": b"ab", "jit": b"ab", "kernel": b"ab"})
    assert not verdict.verdict_agree and verdict.output_agree and not verdict.agree
    out = PacketRow(2, 60, {"interp": 2, "jit": 2, "kernel": 2},
                    {"interp": b"ab", "jit": b"aX", "kernel": b"ab"})
    assert not out.output_agree
    assert out.output_diff() == "jit: from byte 1"
    err = PacketRow(3, 60, {"interp": None, "jit": None, "kernel": 2},
                    {"interp": None, "jit": None, "kernel": b""}, {"interp": "ExecutionError: x"})
    assert not err.agree


def test_report_text_and_agree():
    rows = [PacketRow(0, 60, {"interp": 2, "jit": 2, "kernel": 2},
                      {"interp": b"a", "jit": b"a", "kernel": b"a"})]
    rep = _report(rows)
    assert rep.agree
    text = rep.format()
    assert "result: all engines agree" in text
    assert "maps: agree (counts)" in text
    assert "12.5" in text and "120" in text
    bad = _report(rows, [MapDiff("counts", "00000000", {"interp": "01", "jit": "01", "kernel": "02"})])
    assert not bad.agree
    assert "counts[00000000]: interp=01, jit=01, kernel=02" in bad.format()
    assert bad.format().endswith("result: DISAGREEMENT")


def test_percpu_alignment_uses_touched_slots():
    # The kernel touched CPU 1's slot, our engine slot 0: same touched values -> equal.
    kernel_value = [bytes(8), (5).to_bytes(8, "little"), bytes(8)]
    ours = [(5).to_bytes(8, "little"), bytes(8), bytes(8)]
    assert compare._norm_value(kernel_value) == compare._norm_value(ours)
    assert compare._norm_value(kernel_value) != compare._norm_value([(6).to_bytes(8, "little")])
    assert compare._norm_value(b"\x01\x02") == "0102"


def test_cli_parser_wiring():
    parser = argparse.ArgumentParser(prog="ebpfjit")
    compare.add_compare_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["compare", "x.o", "--program", "p", "--data", "00ff", "--repeat",
                              "10", "--asm"])
    assert args.func is compare.cmd_compare
    assert compare._packets_from_args(args) == [b"\x00\xff"]
    with pytest.raises(SystemExit):
        parser.parse_args(["compare", "x.o", "--data", "00", "--pcap", "f"])


def test_packets_from_pcap(tmp_path):
    path = tmp_path / "in.pcap"
    pcap.write_file(path, [b"\x01" * 60, b"\x02" * 70])
    parser = argparse.ArgumentParser()
    compare.add_compare_parser(parser.add_subparsers())
    args = parser.parse_args(["compare", "x.o", "--pcap", str(path)])
    assert [len(p) for p in compare._packets_from_args(args)] == [60, 70]


XDP_OBJECTS = ["xdp_drop_ip", "xdp_parser_counters", "xdp_tx_rewrite", "xdp_rate_limit"]


@pytest.mark.kernel
@pytest.mark.parametrize("name", XDP_OBJECTS)
def test_xdp_objects_agree_with_kernel(kernel, name, tmp_path):
    path = PROGS_DIR / f"{name}.o"
    packets = [compare.DEFAULT_PACKET, compare.DEFAULT_PACKET[:14] + b"\x86\xdd" * 30,
               compare.DEFAULT_PACKET[:60]]
    rep = compare.compare_object(path, packets=packets, repeat=10)
    assert rep.engines == ["interp", "jit", "kernel"], rep.notes
    assert rep.agree, rep.format()
    assert rep.sizes["kernel"] > 0 and rep.sizes["jit"] > 0
    assert set(rep.timings) == {"interp", "jit", "kernel"}


@pytest.mark.kernel
def test_kernel_only_asm(kernel):
    rep = compare.compare_object(PROGS_DIR / "xdp_drop_ip.o", repeat=0, engines=["kernel"],
                                 asm=True)
    assert rep.agree
    # Rows per original instruction, aligned through the kernel's line info (-g objects).
    assert rep.asm.splitlines()[0].split() == ["eBPF", "(original)", "|", "our", "JIT", "|",
                                               "kernel", "JIT"]
    assert "\n; void *data_end = (void *)(long)ctx->data_end; @ " in rep.asm
    assert "\n   0: " in rep.asm and "total native instructions: ours " in rep.asm


@pytest.mark.kernel
def test_cli_exit_status(kernel, capsys):
    rc = compare.main(["compare", str(PROGS_DIR / "xdp_drop_ip.o"), "--repeat", "0",
                       "--engines", "kernel"])
    assert rc == 0
    assert "result: all engines agree" in capsys.readouterr().out


def _every_program():
    from ebpfjit.objects import elf
    out = []
    for path in sorted(PROGS_DIR.glob("*.o")):
        if path.with_suffix(".c").read_text().startswith("// Not loadable by the kernel"):
            continue    # ci/build_testdata.sh's convention: faults on purpose (fault_source)
        for name in elf.load_spec(path).programs:
            out.append(pytest.param(path, name, id=f"{path.stem}:{name}"))
    return out


# Types the kernel cannot test-run on a given input here: no test_run hook (kprobe,
# tracepoint, perf_event, lsm), an attach target needed (fentry/fexit), or no type at all.
_NOT_KERNEL_COMPARABLE = {"kprobe", "tracepoint", "perf_event", "tracing", "lsm", "unspec"}


@pytest.mark.kernel
@pytest.mark.parametrize("path,program", _every_program())
def test_every_object_compares(kernel, path, program, capsys):
    rep = compare.compare_object(path, program=program, repeat=0)
    assert rep.agree, rep.format()
    if rep.prog_type in _NOT_KERNEL_COMPARABLE:
        assert rep.engines == ["interp", "jit"]
        assert any(n.startswith("kernel: not compared (") for n in rep.notes), rep.notes
    else:
        assert rep.engines == ["interp", "jit", "kernel"], rep.notes
    rc = compare.main(["compare", str(path), "--program", program, "--repeat", "0"])
    assert rc == 0, capsys.readouterr()
