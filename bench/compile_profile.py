"""Where a JIT compile's time goes, phase by phase (no pytest; prints a table, `-j` JSON).

    PYTHONPATH=. python bench/compile_profile.py [--opt 2] [--reps 5] [-j]

For every program of the bench suite (bench/progs), every program of the clang-built test
objects (tests/progs) and the synthetic `make_program` sizes of bench/test_compile_bench.py,
the minimum over `--reps` of this thread's CPU time in each phase of a cold compile, as
`compile_program` runs them: decode + lowering to llvmlite.ir objects, str(module), parse_assembly,
verify, the pass pipeline, code generation (emit_object), and loading (the C loader, or LLJIT).
Then a cache hit (key, read + HMAC, load). "first" rows run in a fresh process each: `import
ebpfjit` is outside the timing, the first compile of the process (a cache miss, then in
another fresh process a cache hit) inside it, so they include the lazy imports and set-up.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

PHASES = ("lower", "print", "parse", "verify", "opt", "codegen", "image", "load")


def programs(include_tests: bool = True):
    """(name, code, maps) of the bench suite, the test objects and the synthetic sizes."""
    from test_compile_bench import make_program

    import ebpfjit
    paths = sorted((ROOT / "bench" / "progs").glob("*.o"))
    if include_tests:
        paths += sorted((ROOT / "tests" / "progs").glob("*.o"))
    for path in paths:
        try:
            obj = ebpfjit.load(str(path))
        except ebpfjit.EbpfError:
            continue
        for name, prog in obj.programs.items():
            yield f"{path.stem}/{name}", prog.code, prog._jit_maps()
    for n in (10, 100, 1000, 4000):
        yield f"synthetic-{n}", make_program(n), None


def phases(code: bytes, maps, opt_level: int) -> dict[str, float]:
    """CPU seconds per phase of one cold compile (compile_program's steps, timed apart)."""
    import llvmlite.binding as llvm

    from ebpfjit.jit import compile as jit
    try:
        from ebpfjit.jit import image
    except ImportError:
        image = None
    spec = jit.host_target()
    tm = jit.target_machine(spec, opt_level)
    t = {}
    clock = time.thread_time
    with jit._gc_paused():
        t0 = clock()
        module = jit.build_ir(code, spec=spec, comments=False, maps=maps, opt_level=opt_level)
        t1 = clock()
        text = str(module)
        t2 = clock()
    mod = llvm.parse_assembly(text)
    mod.triple = tm.triple
    mod.data_layout = str(tm.target_data)
    t3 = clock()
    mod.verify()
    t4 = clock()
    jit.optimize(mod, tm, opt_level)
    t5 = clock()
    obj = tm.emit_object(mod)
    t6 = clock()
    if image is None:            # before the C loader: LLJIT links the ELF object
        t7 = clock()
        loaded = jit.load_object(obj)
    else:
        img = image.from_elf(obj)
        t7 = clock()
        loaded = jit.load_image(img)
    t8 = clock()
    del loaded
    t.update(lower=t1 - t0, print=t2 - t1, parse=t3 - t2, verify=t4 - t3, opt=t5 - t4,
             codegen=t6 - t5, image=t7 - t6, load=t8 - t7)
    return t


def cache_hit(code: bytes, maps, opt_level: int, directory: str) -> float:
    from ebpfjit.jit import compile as jit
    from ebpfjit.jit.cache import CompileCache
    cache = CompileCache(directory)
    keep = [jit.compile_program(code, opt_level=opt_level, cache=cache, maps=maps)]
    best = float("inf")
    for _ in range(20):
        t0 = time.thread_time()
        keep.append(jit.compile_program(code, opt_level=opt_level, cache=cache, maps=maps))
        best = min(best, time.thread_time() - t0)
        assert keep[-1].cache_hit
    return best


FIRST = r"""
import sys, time
sys.path.insert(0, {bench!r})
import ebpfjit
from test_compile_bench import make_program
code = make_program({n})
p, q = ebpfjit.Program(code, opt_level={opt}), ebpfjit.Program(code, opt_level={opt})
t0 = time.perf_counter()
jc = p.compile()
t1 = time.perf_counter()
q.compile()
t2 = time.perf_counter()
print(t1 - t0, t2 - t1, jc.cache_hit, "llvmlite.binding" in sys.modules)
"""


def first_compile(n: int, opt_level: int, directory: str | None) -> dict:
    """Wall time of a fresh process's first `Program.compile()` (lazy imports, target and
    loader set-up included; `import ebpfjit` not), and of a second Program of the same code."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if directory is None:
        env["EBPFJIT_CACHE"] = "0"
    else:
        env["EBPFJIT_CACHE_DIR"] = directory
    script = FIRST.format(bench=str(ROOT / "bench"), n=n, opt=opt_level)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, env=env)
    first, second, hit, imported = out.stdout.split()
    return {"first_ms": float(first) * 1e3, "second_ms": float(second) * 1e3,
            "hit": hit == "True", "llvmlite_imported": imported == "True"}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--opt", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-tests", action="store_true", help="bench suite and synthetic only")
    ap.add_argument("-j", action="store_true", help="JSON")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o700)
        for name, code, maps in programs(not args.no_tests):
            best = {}
            for _ in range(args.reps if len(code) < 8000 else 1):
                for k, v in phases(code, maps, args.opt).items():
                    best[k] = min(best.get(k, v), v)
            row = {"program": name, "insns": len(code) // 8,
                   **{k: best[k] * 1e3 for k in PHASES}}
            row["total"] = sum(row[k] for k in PHASES)
            row["ms_per_100"] = row["total"] * 100 / row["insns"]
            row["hit"] = cache_hit(code, maps, args.opt, tmp) * 1e3
            rows.append(row)
        first = {"miss": first_compile(100, args.opt, None)}
        cdir = os.path.join(tmp, "first")
        os.mkdir(cdir, 0o700)
        first_compile(100, args.opt, cdir)                        # fills the cache
        first["hit"] = first_compile(100, args.opt, cdir)
    if args.j:
        print(json.dumps({"opt": args.opt, "rows": rows, "first": first}, indent=1))
        return
    cols = ("insns",) + PHASES + ("total", "ms_per_100", "hit")
    print(f"{'program':42s}" + "".join(f"{c:>11s}" for c in cols))
    for r in rows:
        print(f"{r['program'][:42]:42s}" + "".join(
            f"{r[c]:11d}" if c == "insns" else f"{r[c]:11.3f}" for c in cols))
    share = {k: sum(r[k] for r in rows) / sum(r["total"] for r in rows) for k in PHASES}
    print("share of the total (all programs): " +
          ", ".join(f"{k} {v * 100:.0f}%" for k, v in share.items()))
    for kind, f in first.items():
        print(f"first compile in a fresh process ({kind}, 100 insns, O{args.opt}): "
              f"{f['first_ms']:.2f} ms, then {f['second_ms']:.2f} ms for the same code "
              f"(hit={f['hit']}, llvmlite imported: {f['llvmlite_imported']})")


if __name__ == "__main__":
    main()
