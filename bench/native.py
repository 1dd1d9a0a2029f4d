"""The suite's native side: bench/progs/*.c compiled for the host with cffi, at benchmark time.

All programs go into one cffi module (each source is `#include`d; function and static names are
prefixed with the program's name), together with `bench_repeat`, a C loop that calls a program
through a function pointer `repeat` times between two clock_gettime reads. The eBPF side is timed
the same way by `LoadedProgram.run_repeat`, so both pay a C loop and an indirect call per run
(the eBPF side also pays the runner's per-run bookkeeping; the `empty` program measures it).

The compiler is clang-19 when it is installed, to match the eBPF side's front and middle end
(NOTES: peers are quoted against `clang -O2`), else the system C compiler. Either way the flags
are `-O2 -fno-wrapv` (Python's CFLAGS bring -O3 and -fwrapv, which the eBPF build does not use)
and no -march, i.e. the x86-64 baseline.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

PROGS = Path(__file__).resolve().parent / "progs"
# Programs in the suite, in report order; each is progs/NAME.c (+ the committed eBPF NAME.o).
PROGRAM_NAMES = ["empty", "prime", "log2", "checksum", "parser", "switch16", "dep_arith", "map_lookup"]

_REPEAT_C = r"""
#include <stdint.h>
#include <time.h>

typedef uint64_t (*bench_fn)(uint8_t *, uint64_t);

static uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t bench_repeat(bench_fn fn, uint8_t *mem, uint64_t len, uint64_t repeat, double *ns_per_run)
{
    uint64_t i, t0, t1, r0 = 0;

    t0 = bench_now_ns();
    for (i = 0; i < repeat; i++)
        r0 = fn(mem, len);
    t1 = bench_now_ns();
    *ns_per_run = repeat ? (double)(t1 - t0) / (double)repeat : 0.0;
    return r0;
}
"""

_CDEF_COMMON = """
typedef uint64_t (*bench_fn)(uint8_t *, uint64_t);
uint64_t bench_repeat(bench_fn fn, uint8_t *mem, uint64_t len, uint64_t repeat, double *ns_per_run);
"""
# Extra declarations a program's native build exports (the harness fills map_lookup_table).
_CDEF_EXTRA = {"map_lookup": "extern uint64_t map_lookup_table[256];\n"}


@dataclass
class NativeSuite:
    """The loaded native module (`lib.NAME_prog`, `lib.bench_repeat`, `lib.map_lookup_table`)."""

    ffi: object
    lib: object
    compiler: str
    tmpdir: str

    def function(self, name: str):
        return getattr(self.lib, f"{name}_prog")

    def buffer(self, data: bytes):
        """A C copy of `data` (at least one byte, so the pointer is never NULL)."""
        buf = self.ffi.new("uint8_t[]", max(len(data), 1))
        self.ffi.memmove(buf, data, len(data))
        return buf

    def call(self, name: str, buf, n: int) -> int:
        """One Python -> C call of program `name` on the first `n` bytes of `buf`."""
        return int(self.function(name)(buf, n))

    def repeat(self, name: str, buf, n: int, repeat: int) -> tuple[int, float]:
        """Run `name` `repeat` times in C; (r0 of the last run, mean ns per run)."""
        ns = self.ffi.new("double *")
        fn = self.ffi.addressof(self.lib, f"{name}_prog")
        r0 = self.lib.bench_repeat(fn, buf, n, repeat, ns)
        return int(r0), ns[0]


def _pick_compiler() -> str:
    override = os.environ.get("BENCH_NATIVE_CC")
    if override:
        return override
    return "clang-19" if shutil.which("clang-19") else (os.environ.get("CC") or "cc")


@contextlib.contextmanager
def _compiler_env(cc: str):
    # setuptools reads CC and LDSHARED from the environment (customize_compiler).
    saved = {k: os.environ.get(k) for k in ("CC", "LDSHARED")}
    os.environ["CC"] = cc
    os.environ["LDSHARED"] = f"{cc} -shared"
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def build(names: list[str], tmpdir: str | None = None) -> NativeSuite:
    """Compile `names` (bench/progs/NAME.c) into one cffi module in a temporary directory."""
    import cffi

    cc = _pick_compiler()
    tmpdir = tmpdir or tempfile.mkdtemp(prefix="ebpfjit-bench-native-")
    ffi = cffi.FFI()
    decls = [f"uint64_t {n}_prog(uint8_t *mem, uint64_t len);\n" + _CDEF_EXTRA.get(n, "") for n in names]
    ffi.cdef(_CDEF_COMMON + "".join(decls))
    source = "".join(f'#include "{n}.c"\n' for n in names) + _REPEAT_C
    modname = "_ebpfjit_bench_native"
    ffi.set_source(modname, source, include_dirs=[str(PROGS)],
                   extra_compile_args=["-O2", "-fno-wrapv", "-Wno-unused-function"])
    with _compiler_env(cc):
        so_path = ffi.compile(tmpdir=tmpdir, verbose=False)
    spec = importlib.util.spec_from_file_location(modname, so_path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules.pop(modname, None)
    return NativeSuite(ffi=mod.ffi, lib=mod.lib, compiler=cc, tmpdir=tmpdir)
