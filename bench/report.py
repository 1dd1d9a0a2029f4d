"""Print the suite's table from a pytest-benchmark JSON file.

    python bench/report.py bench.json [--markdown]

Per program: in-C ns per run of the interpreter, the JIT and native code; the ratios JIT/native,
interp/JIT, interp/native and JIT-without-bounds-checks/native (diagnostic); and the Python call
cost (pytest-benchmark's min per call of `Program.run` / the cffi call of the native function).
Then the geomeans over the suite, with and without `empty` (whose "run" is only the engine's
fixed per-run cost), checked against the project's targets. Ratios are only meaningful within
one JSON (one run, one machine state).
"""
from __future__ import annotations

import argparse
import json
import math
import sys

ENGINES = ("interp", "jit", "native")
NOBOUNDS = "jit_nobounds"   # diagnostic: the JIT compiled with bounds_checks=False
# The machine code alone, called directly (as peer JITs' benchmarks call their function
# pointer); "jit" adds the runner's per-run bookkeeping (resets, the checks that a run ended OK).
CODE = "jit_code"
FIXED_COST = ["empty"]          # measures only the engine's per-run cost
HELPER_BOUND = ["map_lookup"]   # measures mostly the helper call path

# (label, value, limit, lower_is_better) targets from the brief.
TARGET_JIT_GEOMEAN = 1.1
TARGET_DEP_JIT_NATIVE = 1.2
TARGET_DEP_INTERP_JIT = 10.0
TARGET_INTERP_GEOMEAN = 35.0


def load(path: str) -> tuple[dict[str, dict[str, dict]], dict]:
    """{program: {engine: {"ns": in-C ns/run, "py_ns": Python call median}}} and machine info."""
    with open(path) as f:
        data = json.load(f)
    rows: dict[str, dict[str, dict]] = {}
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info", {})
        if "ns_per_run" not in info:
            continue
        stats = bench.get("stats") or {}
        rows.setdefault(info["program"], {})[info["engine"]] = {
            "ns": float(info["ns_per_run"]),
            "median_ns": float(info.get("median_ns", info["ns_per_run"])),
            "py_ns": float(stats["min"]) * 1e9 if "min" in stats else math.nan,
            "extra": info,
        }
    return rows, data.get("machine_info", {})


def geomean(values: list[float]) -> float:
    values = [v for v in values if v > 0 and math.isfinite(v)]
    if not values:
        return math.nan
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _ns(v: float) -> str:
    if not math.isfinite(v):
        return "-"
    if v >= 1e6:
        return f"{v / 1e6:.2f} ms"
    if v >= 1e4:
        return f"{v / 1e3:.1f} us"
    return f"{v:.1f} ns"


def _x(v: float) -> str:
    return f"{v:.2f}x" if math.isfinite(v) else "-"


def ratios(row: dict[str, dict]) -> dict[str, float]:
    ns = {e: row[e]["ns"] if e in row else math.nan for e in ENGINES}
    nob = row[NOBOUNDS]["ns"] if NOBOUNDS in row else math.nan
    code = row[CODE]["ns"] if CODE in row else math.nan
    return {"jit/native": ns["jit"] / ns["native"], "interp/jit": ns["interp"] / ns["jit"],
            "interp/native": ns["interp"] / ns["native"], "nobounds/native": nob / ns["native"],
            "code/native": code / ns["native"]}


def render(rows: dict[str, dict[str, dict]], markdown: bool = False) -> str:
    header = ["program", "interp", "jit", "native", "jit/native", "jit code/native", "interp/jit",
              "interp/native", "jit-nobounds/native", "py call interp", "py call jit",
              "py call native"]
    table = []
    for name, row in rows.items():
        r = ratios(row)
        table.append([name] + [_ns(row[e]["ns"]) if e in row else "-" for e in ENGINES]
                     + [_x(r["jit/native"]), _x(r["code/native"]), _x(r["interp/jit"]),
                        _x(r["interp/native"]), _x(r["nobounds/native"])]
                     + [_ns(row[e]["py_ns"]) if e in row else "-" for e in ENGINES])
    all_r = {n: ratios(row) for n, row in rows.items()}
    non_empty = [n for n in rows if n != "empty"]
    compute = [n for n in rows if n not in FIXED_COST + HELPER_BOUND]
    summary = [
        ("geomean jit/native (all)", geomean([r["jit/native"] for r in all_r.values()])),
        ("geomean jit/native (without empty)", geomean([all_r[n]["jit/native"] for n in non_empty])),
        (f"geomean jit/native (compute only: without {', '.join(FIXED_COST + HELPER_BOUND)})",
         geomean([all_r[n]["jit/native"] for n in compute])),
        ("geomean jit code/native (all; the machine code alone)",
         geomean([r["code/native"] for r in all_r.values()])),
        ("geomean interp/native (all)", geomean([r["interp/native"] for r in all_r.values()])),
        ("geomean interp/native (without empty)", geomean([all_r[n]["interp/native"] for n in non_empty])),
        ("geomean interp/jit (all)", geomean([r["interp/jit"] for r in all_r.values()])),
        ("geomean jit-nobounds/native (all, diagnostic)",
         geomean([r["nobounds/native"] for r in all_r.values()])),
    ]
    lines = []
    if markdown:
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in table]
    else:
        widths = [max(len(str(c)) for c in col) for col in zip(header, *table)]
        fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
        lines.append(fmt.format(*header))
        lines += [fmt.format(*row) for row in table]
    lines.append("")
    for label, value in summary:
        lines.append(f"{label}: {_x(value)}")
    lines.append("")
    lines += targets(rows, all_r)
    return "\n".join(lines)


def targets(rows, all_r) -> list[str]:
    out = ["targets:"]

    def check(label: str, value: float, limit: float, at_most: bool) -> None:
        ok = value <= limit if at_most else value >= limit
        verdict = "ok" if ok else "MISSED"
        if not math.isfinite(value):
            verdict = "n/a"
        out.append(f"  [{verdict}] {label}: {_x(value)} ({'<=' if at_most else '>='} {limit:g}x)")

    check("JIT geomean vs native (all programs, full runs)",
          geomean([r["jit/native"] for r in all_r.values()]), TARGET_JIT_GEOMEAN, True)
    check("JIT machine code geomean vs native (all programs)",
          geomean([r["code/native"] for r in all_r.values()]), TARGET_JIT_GEOMEAN, True)
    if "dep_arith" in all_r:
        check("dep_arith JIT vs native", all_r["dep_arith"]["jit/native"], TARGET_DEP_JIT_NATIVE, True)
        check("dep_arith interp / JIT", all_r["dep_arith"]["interp/jit"], TARGET_DEP_INTERP_JIT, False)
    check("interpreter geomean vs native (without empty)",
          geomean([all_r[n]["interp/native"] for n in rows if n != "empty"]), TARGET_INTERP_GEOMEAN, True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", help="output of pytest bench --benchmark-json=FILE")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args(argv)
    rows, machine = load(args.json)
    if not rows:
        print(f"{args.json}: no benchmark has extra_info['ns_per_run'] (was it run with "
              f"--benchmark-disable?)", file=sys.stderr)
        return 1
    cpu = machine.get("cpu", {}).get("brand_raw", "")
    if cpu:
        print(f"machine: {cpu}, {machine.get('cpu', {}).get('count', '?')} CPUs, "
              f"python {machine.get('python_version', '?')}")
    natives = {row["native"]["extra"].get("compiler") for row in rows.values() if "native" in row}
    if natives:
        print(f"native compiler: {', '.join(sorted(c for c in natives if c))} -O2")
    print(render(rows, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
