"""Whole-process throughput of the CLI over a capture (issue #12): `ebpfjit run --engine jit
--pcap` on N small packets and `ebpfjit compare` on M, each a fresh process, timed (wall) with
its peak RSS (getrusage of the child). "After start-up" subtracts the same command's wall
time on a 1-packet capture (imports, loading, compiling), so the rate is of the packets alone.

    python bench/cli_throughput.py [N=1000000] [M=20000]        # prints a Markdown table
    BENCH_ROOT=/path/to/other/checkout python bench/cli_throughput.py   # measure that tree
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# BENCH_ROOT: measure another checkout (e.g. the commit before a change) with this script.
ROOT = os.environ.get("BENCH_ROOT") or os.path.dirname(HERE)
texts: list[str] = []      # stdout of each round of the last timed() call
EXAMPLE = os.path.join(ROOT, "ebpfjit", "examples", "xdp_filter.o")


def make_pcap(n: int, path: str) -> None:
    subprocess.run([sys.executable, os.path.join(HERE, "make_small_pcap.py"), str(n), path],
                   check=True)


def timed(argv: list[str], rounds: int = 3) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak RSS MB, stdout) of `python -m ebpfjit ARGV` in a fresh
    process: the minimum wall and CPU (user + system) times over `rounds` runs and the largest
    peak RSS, read per child with wait4. On this shared 2-core machine the CPU time is the
    steadier figure: it does not count the slices other processes take."""
    # cwd too: `python -m` puts the working directory first on sys.path.
    env = dict(os.environ, PYTHONPATH=ROOT)
    best, cpu, rss, text = float("inf"), float("inf"), 0.0, ""
    texts.clear()
    for _ in range(rounds):
        with tempfile.TemporaryFile("w+") as out:
            t0 = time.perf_counter()
            child = subprocess.Popen([sys.executable, "-m", "ebpfjit", *argv], stdout=out,
                                     stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - t0
            child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode not in (0, 1):
                raise SystemExit(f"{argv}: exit {child.returncode}")
            out.seek(0)
            text = out.read()
            texts.append(text)
        best, rss = min(best, wall), max(rss, usage.ru_maxrss / 1024)
        cpu = min(cpu, usage.ru_utime + usage.ru_stime)
    return best, cpu, rss, text


def main(argv: list[str]) -> dict:
    n = int(argv[0]) if argv else 1_000_000
    m = int(argv[1]) if len(argv) > 1 else 20_000
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        one, big, small = (os.path.join(tmp, f) for f in ("one.pcap", "big.pcap", "small.pcap"))
        make_pcap(1, one)
        make_pcap(n, big)
        make_pcap(m, small)
        run = ["run", "--engine", "jit", EXAMPLE, "--pcap"]
        start, start_cpu, _, _ = timed([*run, one])
        wall, cpu, rss, text = timed([*run, big])
        assert f"{n} packets on jit" in text, text
        # The command's own figure: packets / time from opening the capture to the summary.
        own = max(float(re.search(r"\(([\d.]+) Mpps\)", t).group(1)) for t in texts)
        out["run"] = {"packets": n, "wall_s": wall, "startup_s": start, "cpu_s": cpu,
                      "startup_cpu_s": start_cpu, "rss_mb": rss,
                      "mpps_after_startup": n / max(wall - start, 1e-9) / 1e6,
                      "mpps_after_startup_cpu": n / max(cpu - start_cpu, 1e-9) / 1e6,
                      "mpps_reported": own}
        wall, cpu, rss, text = timed(["compare", EXAMPLE, "--pcap", small])
        assert f"packets: {m};" in text, text
        out["compare"] = {"packets": m, "wall_s": wall, "cpu_s": cpu, "rss_mb": rss,
                          "result": text.strip().splitlines()[-1]}
    return out


if __name__ == "__main__":
    r = main(sys.argv[1:])
    run, cmp_ = r["run"], r["compare"]
    print("| what | target | measured |\n|---|---|---|")
    print(f"| `run --engine jit --pcap`, {run['packets']:,} packets | ≥ 5 Mpps after start-up, "
          f"≤ 100 MB RSS | {run['mpps_reported']:.2f} Mpps as the command reports it; "
          f"{run['mpps_after_startup_cpu']:.2f} Mpps by CPU time "
          f"({run['cpu_s']:.2f} s, start-up {run['startup_cpu_s']:.2f} s), "
          f"{run['mpps_after_startup']:.2f} Mpps by wall time ({run['wall_s']:.2f} s, start-up "
          f"{run['startup_s']:.2f} s), {run['rss_mb']:.0f} MB RSS |")
    print(f"| `compare`, {cmp_['packets']:,} packets, interp + JIT + kernel | ≤ 20 s | "
          f"{cmp_['wall_s']:.2f} s wall ({cmp_['cpu_s']:.2f} s CPU), {cmp_['rss_mb']:.0f} MB "
          f"RSS ({cmp_['result']}) |")
