"""The README's promises: the bundled example runs, and its Python snippet works as written."""
from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT

EXAMPLES = ROOT / "ebpfjit" / "examples"


def test_bundled_example_runs_on_both_engines():
    outputs = {}
    for engine in ("interp", "jit"):
        proc = subprocess.run(
            [sys.executable, "-m", "ebpfjit.cli", "run", "--engine", engine, "--dump-maps",
             str(EXAMPLES / "xdp_filter.o"), "--pcap", str(EXAMPLES / "traffic.pcap")],
            capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        # The summary's packet rate is a measurement, not part of the result.
        outputs[engine] = re.sub(r" \([0-9.e+-]+ Mpps\)", "",
                                 proc.stdout.replace(f"on {engine}", "on ENGINE"))
    assert outputs["interp"] == outputs["jit"]
    # 9 of the 36 IPv4 frames come from the blocked 10.0.0.1; 4 frames are not IPv4.
    assert "40 packets on ENGINE: XDP_DROP 9, XDP_PASS 31" in outputs["jit"]
    assert '"dropped": 9' in outputs["jit"] and '"non_ip": 4' in outputs["jit"]


def test_readme_python_snippet(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    snippet = snippet.replace("for key, value in obj.maps[\"proto_packets\"].items(): ...",
                              "items = obj.maps[\"proto_packets\"].items()")
    monkeypatch.chdir(ROOT)
    from ebpfjit.capture import pcap
    packet = pcap.read_file(EXAMPLES / "traffic.pcap")[0].data
    namespace = {"packet": packet}
    exec(compile(snippet, "README.md", "exec"), namespace)
    assert namespace["verdict"] == 1          # the first frame is from 10.0.0.1: XDP_DROP
    assert namespace["verdicts"] == [1] * 1000
    assert namespace["retval"] == 1
    assert "pc" in namespace["p"].llvm_ir()
