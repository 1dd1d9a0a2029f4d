"""`ebpfjit run --pcap` streaming: summary with verdict names, progress only on a terminal,
-o with --keep, truncated captures, other link types; both engines."""
from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from ebpfjit import load
from ebpfjit.capture import pcap, stream
from ebpfjit.cli import commands as cli
from tests.support.paths import PCAPS_DIR, ROOT

EXAMPLE = ROOT / "ebpfjit" / "examples" / "xdp_filter.o"
TRAFFIC = ROOT / "ebpfjit" / "examples" / "traffic.pcap"
PCAPS = PCAPS_DIR


def run_cli(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def expected_verdicts(engine="interp"):
    prog = load(EXAMPLE).programs["xdp_filter"]
    return [prog.test_run(p.data, engine=engine) for p in pcap.read_file(TRAFFIC)]


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_run_pcap_subprocess_no_progress_when_not_a_terminal(engine):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-m", "ebpfjit.cli", "run", "--engine", engine,
                          str(EXAMPLE), "--pcap", str(TRAFFIC)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"xdp_filter: 40 packets on {engine}: XDP_DROP 9, XDP_PASS 31")
    assert res.stderr == ""


def test_progress_line_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True
    tty = Tty()
    prog = load(EXAMPLE).programs["xdp_filter"]
    progress = stream.Progress(stream=tty, label="x: ")
    assert progress.enabled
    summary = stream.run_capture(prog, TRAFFIC, "jit", progress=progress)
    progress.close(summary.packets)
    text = tty.getvalue()
    assert text.startswith("\rx: 40 packets, ") and " Mpps, " in text and text.endswith(" s \n")
    assert not stream.Progress(stream=io.StringIO()).enabled


@pytest.mark.parametrize("keep,verdict", [("all", None), ("pass", 2), ("drop", 1)])
def test_output_keep(tmp_path, capsys, keep, verdict):
    out_pcap = tmp_path / "out.pcap"
    status, out, _ = run_cli(capsys, "run", EXAMPLE, "--engine", "jit", "--pcap", TRAFFIC,
                             "-o", out_pcap, "--keep", keep)
    inputs = pcap.read_file(TRAFFIC)
    results = expected_verdicts("jit")
    want = [(r.data_out, p.ts_ns) for p, r in zip(inputs, results)
            if verdict is None or r.retval == verdict]
    got = [(p.data, p.ts_ns) for p in pcap.read_file(out_pcap)]
    assert status == 0 and got == want
    assert f"wrote {len(want)} packets ({keep}) to {out_pcap}" in out


def test_verbose_lists_named_verdicts(capsys):
    status, out, _ = run_cli(capsys, "run", EXAMPLE, "--pcap", TRAFFIC, "-v")
    lines = out.splitlines()
    names = {1: "XDP_DROP", 2: "XDP_PASS"}
    assert status == 0 and lines[:40] == [
        f"packet {i}: {names[r.retval]} ({len(p.data)} -> {len(r.data_out)} bytes)"
        for i, (p, r) in enumerate(zip(pcap.read_file(TRAFFIC), expected_verdicts()))]


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_truncated_capture_runs_complete_records_then_exits_2(tmp_path, capsys, engine):
    data = TRAFFIC.read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[:-5])
    last = pcap.read_file(TRAFFIC)[-1]
    status, out, err = run_cli(capsys, "run", EXAMPLE, "--engine", engine, "--pcap", path,
                               "--dump-maps")
    assert status == 2
    assert out.startswith(f"xdp_filter: 39 packets on {engine}: ")
    offset = len(data) - len(last.data)
    assert (f"warning: {path}: offset {offset}: truncated packet: {len(last.data) - 5} of "
            f"{len(last.data)} bytes (record 39); the 39 complete packets before it ran") in err


def test_hostile_record_length_is_an_error(tmp_path, capsys):
    data = bytearray(TRAFFIC.read_bytes())
    data[24 + 8:24 + 12] = (0xFFFFFFFF).to_bytes(4, "little")
    path = tmp_path / "bad.pcap"
    path.write_bytes(bytes(data))
    status, out, err = run_cli(capsys, "run", EXAMPLE, "--pcap", path)
    assert status == 1
    assert "offset 24: record length 4294967295 exceeds the limit of 262144 bytes" in err


@pytest.mark.parametrize("name", ["any_sll2.pcap", "any_sll.pcap", "lo_ether.pcap"])
def test_cooked_and_loopback_captures_run(capsys, name):
    status, out, _ = run_cli(capsys, "run", EXAMPLE, "--engine", "jit", "--pcap", PCAPS / name)
    assert status == 0 and out.startswith("xdp_filter: 4 packets on jit: XDP_PASS 4")


def test_compare_summary_only_disagreeing_rows_and_all(capsys):
    from ebpfjit.oracle import compare
    status, out, _ = run_cli(capsys, "compare", EXAMPLE, "--pcap", TRAFFIC, "--engines",
                             "interp,jit", "--repeat", "3")
    assert status == 0
    assert "packets: 40; agree 40, disagree 0" in out
    assert "  interp: XDP_DROP 9, XDP_PASS 31" in out and "  jit: XDP_DROP 9, XDP_PASS 31" in out
    assert "(no disagreeing packets; --all lists every packet)" in out
    assert "verdict[interp]" not in out
    status, out, _ = run_cli(capsys, "compare", EXAMPLE, "--pcap", TRAFFIC, "--engines",
                             "interp,jit", "--repeat", "3", "--all")
    rows = [line.split() for line in out.splitlines() if line[:1].isdigit()]
    assert status == 0 and len(rows) == 40
    assert {r[2] for r in rows} == {"XDP_DROP", "XDP_PASS"} and all(r[2] == r[3] for r in rows)
    # A disagreeing row is shown without --all, with its verdict names.
    rep = compare.compare_object(EXAMPLE, packets=[p.data for p in pcap.read_file(TRAFFIC)][:3],
                                 repeat=0, engines=["interp", "jit"])
    rep.rows[1].verdicts["jit"] = 1
    text = rep.format()
    assert "agree 2, disagree 1" in text
    table = [line.split() for line in text.splitlines() if line[:1].isdigit()]
    assert [r[0] for r in table] == ["1"] and table[0][3] == "XDP_DROP"


def test_timing_sample_spreads_over_the_input():
    from ebpfjit.oracle.compare import timing_sample
    packets = [bytes([i % 256]) * 2 for i in range(1000)]
    sample = timing_sample(packets, 64)
    assert len(sample) == 64 and sample[0] == packets[0] and sample[-1] == packets[-1]
    assert timing_sample(packets[:10], 64) == packets[:10]


def test_compare_reads_cooked_capture(capsys):
    status, out, _ = run_cli(capsys, "compare", EXAMPLE, "--pcap", PCAPS / "any_sll2.pcap",
                             "--engines", "interp,jit", "--repeat", "2")
    assert status == 0 and "packets: 4; agree 4, disagree 0" in out


@pytest.mark.parametrize("extra", [[], ["-o", "OUT"]], ids=["direct", "chunks"])
def test_refused_packet_is_an_error_on_both_paths(tmp_path, capsys, extra):
    """A 10-byte frame is refused by the XDP test-run model (EINVAL, as the kernel): the run
    stops with the test run's error, whether the records run straight from the file (no
    output) or through chunks (-o)."""
    path = tmp_path / "short.pcap"
    frames = [pcap.read_file(TRAFFIC)[0].data, bytes(10)]
    with open(path, "wb") as f:
        writer = pcap.PcapWriter(f)
        for i, frame in enumerate(frames):
            writer.write_raw(frame, i * 1000, len(frame))
    argv = [a if a != "OUT" else tmp_path / "out.pcap" for a in extra]
    status, out, err = run_cli(capsys, "run", EXAMPLE, "--pcap", path, *argv)
    assert status == 1 and out == ""
    assert "XDP test run refused the input (errno 22" in err and "packet 10 bytes" in err
