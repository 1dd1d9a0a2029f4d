"""`compare --pcap` streams: chunks through our C batch path and a C loop of BPF_PROG_TEST_RUN
calls, only the disagreeing rows kept (`--all`: every row), totals and per-verdict counts
counted as it goes, a progress line on a terminal. The streamed result must equal the
per-packet one."""
from __future__ import annotations

import io

import pytest

from ebpfjit.capture import pcap, stream
from ebpfjit.objects.elf import load_spec
from ebpfjit.oracle import compare
from tests.support.paths import ROOT

EXAMPLE = ROOT / "ebpfjit" / "examples" / "xdp_filter.o"
TRAFFIC = ROOT / "ebpfjit" / "examples" / "traffic.pcap"


def capture_with_runt(tmp_path):
    """traffic.pcap with a 10-byte frame at index 5, which every engine refuses (EINVAL)."""
    frames = [p.data for p in pcap.read_file(TRAFFIC)]
    frames.insert(5, bytes(10))
    path = tmp_path / "runt.pcap"
    with open(path, "wb") as f:
        w = pcap.PcapWriter(f)
        for i, frame in enumerate(frames):
            w.write_raw(frame, i * 1000, len(frame))
    return path, frames


def rows_of(rep):
    return [(r.index, r.length, r.verdicts, r.outputs, sorted(r.errors)) for r in rep.rows]


@pytest.mark.parametrize("engines", [("interp", "jit"),
                                     pytest.param(("interp", "jit", "kernel"),
                                                  marks=pytest.mark.kernel)])
def test_streamed_equals_per_packet(tmp_path, engines, request):
    if "kernel" in engines:
        request.getfixturevalue("kernel")
    path, frames = capture_with_runt(tmp_path)
    streamed = compare.compare_object(EXAMPLE, capture=path, repeat=0, engines=engines)
    listed = compare.compare_object(EXAMPLE, packets=frames, repeat=0, engines=engines)
    assert rows_of(streamed) == rows_of(listed)
    assert [r.index for r in streamed.rows] == list(range(41))
    assert streamed.rows[5].errors.keys() == set(engines)
    assert streamed.rows[5].errors["interp"].startswith("EbpfError: XDP test run refused")
    assert (streamed.total, streamed.agreed) == (41, 40)
    assert streamed.counts["jit"] == {"XDP_DROP": 9, "XDP_PASS": 31, "error": 1}
    assert streamed.map_diffs == listed.map_diffs == []
    only = compare.compare_object(EXAMPLE, capture=path, repeat=0, engines=engines,
                                  all_rows=False)
    assert [r.index for r in only.rows] == [5] and not only.agree
    assert "packets: 41; agree 40, disagree 1" in only.format()


@pytest.mark.kernel
def test_kernel_test_run_batch_matches_single_runs(kernel):
    from array import array
    frames = [p.data for p in pcap.read_file(TRAFFIC)]
    ko = kernel.KernelObject(load_spec(str(EXAMPLE)))
    try:
        prog = ko.programs["xdp_filter"]
        rets, outs, err = prog.test_run_batch(b"".join(frames), array("I", map(len, frames)))
        assert err is None
    finally:
        ko.close()
    ko = kernel.KernelObject(load_spec(str(EXAMPLE)))
    try:
        single = [ko.programs["xdp_filter"].test_run(f) for f in frames]
    finally:
        ko.close()
    assert rets == [r.retval for r in single] and outs == [bytes(r.data_out) for r in single]
    ko = kernel.KernelObject(load_spec(str(EXAMPLE)))
    try:
        rets, outs, err = ko.programs["xdp_filter"].test_run_batch(
            frames[0] + bytes(10) + frames[1], array("I", [len(frames[0]), 10, len(frames[1])]))
    finally:
        ko.close()
    assert len(rets) == 1 and err is not None and err.errno == 22


def test_compare_progress_line(tmp_path):
    class Tty(io.StringIO):
        def isatty(self):
            return True
    tty = Tty()
    progress = stream.Progress(stream=tty, label="compare: ")
    rep = compare.compare_object(EXAMPLE, capture=TRAFFIC, repeat=0, engines=("interp", "jit"),
                                 all_rows=False, progress=progress)
    progress.close(progress.packets)
    assert rep.agree and rep.rows == [] and rep.total == 40
    assert tty.getvalue().startswith("\rcompare: 40 packets, ")


def test_cli_compare_pcap_summary(capsys):
    from ebpfjit.cli import commands as cli
    status = cli.main(["compare", str(EXAMPLE), "--pcap", str(TRAFFIC), "--engines",
                       "interp,jit", "--repeat", "5"])
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert status == 0 and err == ""
    assert "packets: 40; agree 40, disagree 0" in lines
    assert "  jit: XDP_DROP 9, XDP_PASS 31" in lines
    assert "(no disagreeing packets; --all lists every packet)" in lines
    assert lines[-1] == "result: all engines agree"
