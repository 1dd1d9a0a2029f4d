"""CI smoke of bench/cli_throughput.py on a small capture: the commands run and report (no
timing asserted; the real measurement is `python bench/cli_throughput.py`)."""
import importlib.util
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def test_cli_throughput_smoke():
    spec = importlib.util.spec_from_file_location("cli_throughput",
                                                  os.path.join(HERE, "cli_throughput.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.main(["2000", "200"])
    assert out["run"]["packets"] == 2000 and out["run"]["rss_mb"] > 0
    assert out["compare"]["packets"] == 200
    assert out["compare"]["result"] in ("result: all engines agree", "result: DISAGREEMENT")
