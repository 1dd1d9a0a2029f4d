"""`-j`/`-p` on every command (bpftool's convention): each prints one JSON document that says
what the text says; `-p` indents it. `run` and `disasm`/`conformance` are in test_cli.py."""
from __future__ import annotations

import json

import pytest

from ebpfjit.capture import pcap
from ebpfjit.cli import commands as cli
from tests.support.paths import ROOT

EXAMPLE = ROOT / "ebpfjit" / "examples" / "xdp_filter.o"
TRAFFIC = ROOT / "ebpfjit" / "examples" / "traffic.pcap"


def run_cli(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_compare_json_summary_and_rows(capsys):
    status, out, _ = run_cli(capsys, "compare", EXAMPLE, "--pcap", TRAFFIC, "--engines",
                             "interp,jit", "--repeat", "0", "-j")
    report = json.loads(out)
    assert status == 0 and "\n" not in out.strip()
    assert report["agree"] is True and report["engines"] == ["interp", "jit"]
    assert report["packets"] == {"total": 40, "agree": 40, "disagree": 0}
    assert report["verdicts"] == {"interp": {"XDP_DROP": 9, "XDP_PASS": 31},
                                  "jit": {"XDP_DROP": 9, "XDP_PASS": 31}}
    assert report["rows"] == []             # only disagreeing rows by default
    assert report["maps"] == {"compared": ["proto_packets", "blocked", ".rodata", ".bss"],
                              "differ": []}
    status, out, _ = run_cli(capsys, "compare", EXAMPLE, "--pcap", TRAFFIC, "--engines",
                             "interp,jit", "--repeat", "0", "--all", "-p")
    report = json.loads(out)
    assert status == 0 and out.startswith("{\n    ")
    rows = report["rows"]
    assert [r["index"] for r in rows] == list(range(40))
    first = pcap.read_file(TRAFFIC)[0]
    assert rows[0]["length"] == len(first.data)
    assert set(rows[0]["verdict_names"].values()) <= {"XDP_PASS", "XDP_DROP"}
    assert rows[0]["verdicts"]["interp"] in (1, 2) and rows[0]["verdict_agree"] is True


def test_compare_json_disagreement_exit_1(capsys, monkeypatch):
    from ebpfjit.oracle import compare
    real = compare._ours_chunk

    def skewed(prog, engine, chunk):    # the JIT "answers" XDP_ABORTED for packet 3
        res = real(prog, engine, chunk)
        if engine == "jit":
            res[3] = (0, res[3][1], None)
        return res
    monkeypatch.setattr(compare, "_ours_chunk", skewed)
    status, out, _ = run_cli(capsys, "compare", EXAMPLE, "--pcap", TRAFFIC, "--engines",
                             "interp,jit", "--repeat", "0", "-j")
    report = json.loads(out)
    assert status == 1 and report["agree"] is False
    assert report["packets"] == {"total": 40, "agree": 39, "disagree": 1}
    assert [r["index"] for r in report["rows"]] == [3]
    assert report["rows"][0]["verdict_names"]["jit"] == "XDP_ABORTED"
    assert report["verdicts"]["jit"]["XDP_ABORTED"] == 1


def test_asm_json(tmp_path, capsys):
    src = tmp_path / "p.s"
    src.write_text("mov %r0, 7\nexit\n")
    status, out, _ = run_cli(capsys, "asm", src, "-j")
    assert status == 0 and json.loads(out) == {"insns": 2, "bytes": 16,
                                               "hex": "b700000007000000" "9500000000000000",
                                               "output": None}


def test_map_list_and_dump_json(capsys):
    status, out, _ = run_cli(capsys, "map", "list", EXAMPLE, "-j")
    maps = json.loads(out)
    assert status == 0
    assert maps[1] == {"index": 1, "name": "blocked", "type": "hash", "flags": 0,
                       "key_size": 4, "value_size": 8, "max_entries": 1024}
    assert [m["name"] for m in maps] == ["proto_packets", "blocked", ".rodata", ".bss"]
    status, out, _ = run_cli(capsys, "map", "dump", EXAMPLE, "-p")
    dumps = json.loads(out)
    assert status == 0 and list(dumps) == ["proto_packets", "blocked", ".rodata", ".bss"]
    assert dumps["blocked"] == [] and len(dumps["proto_packets"]) == 256
    assert dumps[".rodata"][0]["formatted"]["value"][".rodata"][0]["initially_blocked"] == 0x0100000a


def test_dump_and_compile_json(tmp_path, capsys):
    src = tmp_path / "p.s"
    src.write_text("mov %r0, 7\nexit\n")
    status, out, _ = run_cli(capsys, "dump", src, "--ir", "--asm", "-j")
    report = json.loads(out)
    assert status == 0 and any("define" in line for line in report["ir"])
    assert any("ret" in line for line in report["asm"])
    obj = tmp_path / "p.o"
    status, out, _ = run_cli(capsys, "compile", src, "--target", "aarch64", "-o", obj, "-j")
    report = json.loads(out)
    assert status == 0 and report == {"output": str(obj), "bytes": obj.stat().st_size,
                                      "target": "aarch64"}


@pytest.mark.parametrize("pretty", [False, True])
def test_cache_json(tmp_path, capsys, pretty):
    folder = tmp_path / "cache"
    status, out, _ = run_cli(capsys, "cache", "info", "--dir", folder, "-p" if pretty else "-j")
    info = json.loads(out)
    assert status == 0 and info["directory"] == str(folder) and info["entries"] == 0
    assert ("\n    " in out) == pretty
