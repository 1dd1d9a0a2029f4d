"""The `ebpfjit` command line: every subcommand, its output and its exit status."""
from __future__ import annotations

import json
import re

import pytest
from conftest import CONFORMANCE_DIR, PROGS_DIR, ROOT, needs_conformance

from ebpfjit.cli import commands as cli
from ebpfjit.objects.elf import load_spec

EXAMPLE = ROOT / "ebpfjit" / "examples" / "xdp_filter.o"


def run_cli(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_asm_then_run_then_disasm(tmp_path, capsys):
    src = tmp_path / "prog.s"
    src.write_text("ldxw %r0, [%r1+4]\nadd %r0, 1\nexit\n")
    out_file = tmp_path / "prog.bin"
    assert run_cli(capsys, "asm", src, "-o", out_file)[0] == 0
    assert out_file.read_bytes().hex().startswith("61100400")
    for engine in ("interp", "jit"):
        status, out, _ = run_cli(capsys, "run", out_file, "--engine", engine, "--mem", "0000000029000000")
        assert (status, out.strip()) == (0, "0x2a")
    status, out, _ = run_cli(capsys, "disasm", out_file)
    assert status == 0 and "r0 = *(u32 *)(r1 + 0x4)" in out
    status, out, _ = run_cli(capsys, "disasm", "--syntax", "conformance", out_file)
    assert "ldxw %r0, [%r1+4]" in out


def test_run_data_file_and_output(tmp_path, capsys):
    src = tmp_path / "p.s"
    src.write_text("stb [%r1], 7\nmov %r0, %r2\nexit\n")
    mem = tmp_path / "mem.bin"
    mem.write_bytes(b"\0" * 5)
    out = tmp_path / "after.bin"
    status, stdout, _ = run_cli(capsys, "run", src, "--mem-file", mem, "-o", out)
    assert (status, stdout.strip()) == (0, "0x5")
    assert out.read_bytes() == b"\x07" + b"\0" * 4


@needs_conformance
def test_run_conformance_data_file(capsys):
    status, out, _ = run_cli(capsys, "run", CONFORMANCE_DIR / "mem-len.data")
    assert (status, out.strip()) == (0, "0x8")


def test_run_object_packet(tmp_path, capsys):
    from ebpfjit.capture import pcap
    packet = pcap.read_file(EXAMPLE.with_name("traffic.pcap"))[1].data   # from 10.0.0.2: passes
    data = tmp_path / "pkt.bin"
    data.write_bytes(packet)
    status, out, _ = run_cli(capsys, "run", EXAMPLE, "--data-file", data, "--engine", "jit")
    assert (status, out.strip()) == (0, "retval 0x2 (XDP_PASS)")


def test_run_pcap_verbose_and_output(tmp_path, capsys):
    from ebpfjit.capture import pcap
    out_pcap = tmp_path / "out.pcap"
    status, out, _ = run_cli(capsys, "run", EXAMPLE, "--pcap", EXAMPLE.with_name("traffic.pcap"),
                             "-v", "-o", out_pcap)
    assert status == 0
    assert out.count("packet ") == 40 and "XDP_DROP 9, XDP_PASS 31" in out
    assert len(pcap.read_file(out_pcap)) == 40


def test_object_with_several_programs_needs_program(capsys):
    status, _, err = run_cli(capsys, "run", PROGS_DIR / "subprog_calls.o")
    assert status == 1 and "choose one with --program" in err
    status, out, _ = run_cli(capsys, "disasm", PROGS_DIR / "subprog_calls.o")
    assert status == 0 and "xdp_subprogs:" in out and "xdp_hash_only:" in out


def test_map_dump_matches_bpftool_formats(capsys):
    status, out, _ = run_cli(capsys, "map", "dump", "-j", "--map", "blocked", EXAMPLE)
    assert status == 0 and json.loads(out) == []
    status, out, _ = run_cli(capsys, "map", "dump", "--map", ".rodata", EXAMPLE)
    assert status == 0 and json.loads(out)[0]["value"][".rodata"][0]["initially_blocked"] == 0x0100000a
    status, out, _ = run_cli(capsys, "map", "list", EXAMPLE)
    assert "hash  name blocked" in out and "max_entries 256" in out
    status, _, err = run_cli(capsys, "map", "dump", "--map", "nope", EXAMPLE)
    assert status == 1 and "no map named 'nope'" in err


def test_map_dump_plain_without_btf(capsys):
    from ebpfjit.cli.commands import format_map_dump
    from ebpfjit.objects.spec import MapSpec, MapType
    from ebpfjit.runtime.maps import Map
    m = Map(MapSpec("counts", MapType.HASH, 4, 8, 4))
    m.update(b"\1\0\0\0", b"\2" + bytes(7))
    assert format_map_dump(m, json_output=False) == (
        "key: 01 00 00 00  value: 02 00 00 00 00 00 00 00\nFound 1 element")


@needs_conformance
def test_dump_ir_and_asm(capsys):
    status, out, _ = run_cli(capsys, "dump", "--ir", CONFORMANCE_DIR / "add.data")
    assert status == 0 and "pc0" in out and "define" in out
    status, out, _ = run_cli(capsys, "dump", "--asm", "--target", "aarch64", CONFORMANCE_DIR / "add.data")
    assert status == 0 and "ret" in out


@needs_conformance
def test_compile_aarch64_object(tmp_path, capsys):
    out = tmp_path / "add.o"
    status, _, _ = run_cli(capsys, "compile", "--target", "aarch64", "-o", out, CONFORMANCE_DIR / "add.data")
    blob = out.read_bytes()
    assert status == 0 and blob[:4] == b"\x7fELF"
    assert int.from_bytes(blob[18:20], "little") == 183      # EM_AARCH64


@needs_conformance
def test_conformance_subcommand(tmp_path, capsys):
    for name in ("add.data", "lddw.data"):
        (tmp_path / name).write_bytes((CONFORMANCE_DIR / name).read_bytes())
    status, out, _ = run_cli(capsys, "conformance", tmp_path, "--engine", "jit")
    assert status == 0 and out.strip().endswith("2 passed, 0 failed")


@pytest.mark.parametrize("argv, message", [
    (["run", "/nonexistent.bin"], "No such file"),
    (["run", "-", "--mem", "zz"], "non-hexadecimal"),
])
def test_errors_are_one_line_without_traceback(argv, message, capsys, monkeypatch):
    import io
    import sys
    program = bytes.fromhex("b700000001000000" "9500000000000000")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(program)))
    status, _, err = run_cli(capsys, *argv)
    assert status == 1
    assert err.startswith("ebpfjit: error:") and message in err and "Traceback" not in err


def test_bad_bytecode_error_names_the_pc(tmp_path, capsys):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes.fromhex("b700000001000000" "ff00000000000000" "9500000000000000"))
    status, _, err = run_cli(capsys, "run", bad)
    assert status == 1 and "pc 1" in err and "unknown opcode 0xff" in err


def test_every_test_object_disassembles(capsys):
    for path in sorted(PROGS_DIR.glob("*.o")):
        status, out, err = run_cli(capsys, "disasm", path)
        assert status == 0, err
        for name in load_spec(str(path)).programs:
            assert f"{name}:" in out


# --- bpftool conventions and what a run emitted (issue 12, items 5 and 6) ----------------------

def _subprocess(*argv, **kw):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", *map(str, argv)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, **kw)


def test_version_and_python_dash_m():
    import ebpfjit
    proc = _subprocess("ebpfjit", "--version")
    assert (proc.returncode, proc.stdout.strip()) == (0, f"ebpfjit {ebpfjit.__version__}")


def test_verdict_enums_are_public():
    import ebpfjit
    assert ebpfjit.XdpAction.XDP_PASS == 2 and ebpfjit.TcAction.TC_ACT_SHOT == 2
    from ebpfjit.objects.verdicts import verdict_name
    assert verdict_name("SCHED_CLS", 0xFFFFFFFF) == "TC_ACT_UNSPEC"
    assert verdict_name("XDP", 9) == "0x9"


def test_no_abbreviations(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["run", str(EXAMPLE), "--data-f", "x"])
    assert info.value.code == 2
    assert "unrecognized arguments: --data-f" in capsys.readouterr().err


def test_unknown_program_lists_programs(capsys):
    status, _, err = run_cli(capsys, "run", EXAMPLE, "--program", "nope")
    assert status == 1 and "no program 'nope'" in err and "xdp_filter" in err


def test_unknown_engine_lists_choices(capsys):
    for argv in (["conformance", ROOT, "--engine", "foo"], ["run", EXAMPLE, "--engine", "foo"]):
        with pytest.raises(SystemExit) as info:
            cli.main([str(a) for a in argv])
        err = capsys.readouterr().err
        assert info.value.code == 2 and "invalid choice: 'foo'" in err and "'interp'" in err


def test_conformance_missing_or_empty_directory_is_a_usage_error(tmp_path, capsys):
    status, out, err = run_cli(capsys, "conformance", tmp_path / "nonexistent")
    assert (status, out) == (2, "") and "no such directory" in err
    status, _, err = run_cli(capsys, "conformance", tmp_path)
    assert status == 2 and "no .data files" in err


def test_conformance_json(tmp_path, capsys):
    (tmp_path / "one.data").write_text("-- asm\nmov %r0, 1\nexit\n-- result\n0x1\n")
    (tmp_path / "wrong.data").write_text("-- asm\nmov %r0, 1\nexit\n-- result\n0x2\n")
    status, out, _ = run_cli(capsys, "conformance", tmp_path, "--engine", "jit-O0", "-j")
    report = json.loads(out)
    assert status == 1 and (report["passed"], report["failed"]) == (1, 1)
    assert report["failures"][0]["name"] == "wrong"


def test_non_elf_file_needs_raw(tmp_path, capsys):
    blob = tmp_path / "prog.txt"
    blob.write_bytes(bytes.fromhex("b700000007000000" "9500000000000000"))
    status, out, err = run_cli(capsys, "run", blob)
    assert (status, out) == (2, "") and "--raw" in err and "not an ELF object" in err
    status, out, _ = run_cli(capsys, "run", "--raw", blob)
    assert (status, out.strip()) == (0, "0x7")


def test_run_json_repeat_and_budget(tmp_path, capsys):
    from ebpfjit.capture import pcap
    packet = pcap.read_file(EXAMPLE.with_name("traffic.pcap"))[1].data
    status, out, _ = run_cli(capsys, "run", EXAMPLE, "--data", packet.hex(), "-j")
    report = json.loads(out)
    assert status == 0 and (report["retval"], report["verdict"]) == (2, "XDP_PASS")
    status, out, _ = run_cli(capsys, "run", EXAMPLE, "--data", packet.hex(), "--repeat", "50")
    assert status == 0
    assert re.fullmatch(r"Return value: 2 \(XDP_PASS\), duration \(average\): \d+ns", out.strip())
    loop = tmp_path / "loop.s"
    loop.write_text("mov %r0, 0\nadd %r0, 1\nja -2\nexit\n")
    status, _, err = run_cli(capsys, "run", loop, "--budget", "1000")
    assert status == 1 and "budget" in err


def test_disasm_json_and_pretty(capsys):
    status, out, _ = run_cli(capsys, "disasm", EXAMPLE, "-p")
    progs = json.loads(out)
    assert status == 0 and progs[0]["name"] == "xdp_filter" and "exit" in progs[0]["insns"][-1]
    assert out.startswith("[\n    {")


def test_broken_pipe_is_quiet():
    import subprocess
    import sys
    proc = subprocess.run(f"{sys.executable} -m ebpfjit disasm {EXAMPLE} | head -1", shell=True,
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          executable="/bin/bash")
    assert proc.stdout.count("\n") == 1 and proc.stderr == ""
    proc = subprocess.run(f"set -o pipefail; {sys.executable} -m ebpfjit disasm {EXAMPLE} "
                          "| head -c 10 >/dev/null", shell=True, capture_output=True, text=True,
                          timeout=120, cwd=ROOT, executable="/bin/bash")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and proc.stderr == ""


def test_plugin_help():
    proc = _subprocess("ebpfjit.cli.plugin", "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: ebpfjit-conformance-plugin")


def test_run_prints_printk_lines(capsys):
    status, out, _ = run_cli(capsys, "run", PROGS_DIR / "global_data.o", "--data", "00" * 24)
    assert status == 0
    assert "bpf_printk: len 24 magic 1122334455667788" in out.splitlines()


def test_run_prints_ringbuf_records_and_dump_maps_counts_them(capsys):
    status, out, _ = run_cli(capsys, "run", PROGS_DIR / "ringbuf_events.o", "--dump-maps",
                             "--pcap", EXAMPLE.with_name("traffic.pcap"))
    lines = out.splitlines()
    records = [ln for ln in lines if ln.startswith("ringbuf events record ")]
    # One record per packet except those the program discards (see ringbuf_events.c).
    assert status == 0 and 30 <= len(records) <= 40
    assert records[0].startswith("ringbuf events record 0 (32 bytes): ")
    assert "map events:" in lines
    assert lines[lines.index("map events:") + 1] == (
        f"  ({len(records)} records pending after the run, shown above)")
    status, out, _ = run_cli(capsys, "run", PROGS_DIR / "ringbuf_events.o", "-j", "--dump-maps",
                             "--pcap", EXAMPLE.with_name("traffic.pcap"))
    report = json.loads(out)
    assert len(report["ringbuf"]["events"]) == len(records) and report["verdicts"] == {"XDP_PASS": 40}
