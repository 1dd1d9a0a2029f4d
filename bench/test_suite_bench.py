"""The benchmark suite: bench/progs/*.c as eBPF (interpreter, JIT) and as native code.

One benchmark per program x engine. pytest-benchmark times the Python call (`Program.run` or the
cffi call of the native function); `extra_info["ns_per_run"]` holds the in-C time per run (see
conftest.py), which is what bench/report.py compares. Every engine must return the native
result (and the pinned value where a program has one); no assertion is made about time.

    pytest bench --benchmark-json=bench.json && python bench/report.py bench.json
    pytest bench --benchmark-disable          # CI smoke: correctness only, a few seconds
"""
from __future__ import annotations

import random
import struct
import time
from dataclasses import dataclass

import pytest
from native import PROGRAM_NAMES, PROGS

U64 = (1 << 64) - 1
ENGINES = ["native", "interp", "jit"]
# Diagnostic engine: the JIT without bounds checks (bounds_checks=False), to price the checks.
DIAG_ENGINES = ["jit_nobounds", "jit_code"]


def _packet() -> bytes:
    """A VLAN-tagged Ethernet / IPv4 / TCP (ACK|PSH, port 43210 -> 443) frame, 64-byte payload."""
    payload = bytes(random.Random(443).randrange(256) for _ in range(64))
    tcp = struct.pack("!HHIIBBHHH", 43210, 443, 0x1000, 0x2000, 5 << 4, 0x18, 65535, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0x1234, 0x4000, 64, 6, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    eth = bytes.fromhex("020000000002" "020000000001") + struct.pack("!HHH", 0x8100, 100, 0x0800)
    return eth + ip + tcp + payload


def _random_bytes(seed: int, n: int) -> bytes:
    return bytes(random.Random(seed).randrange(256) for _ in range(n))


def map_value(key: int) -> int:
    """The value stored under `key` in map_lookup's table (eBPF map and native array alike)."""
    return (key * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & U64


@dataclass(frozen=True)
class Case:
    mem: bytes
    expect: int | None = None     # pinned result (independent of every engine), when known


CASES = {
    "empty": Case(b"", 0),
    "prime": Case(b"", 1229),                            # primes below 10000
    "log2": Case(struct.pack("<Q", 0x0123456789ABCDEF)),
    "checksum": Case(_random_bytes(1071, 1500)),
    "parser": Case(_packet(), 6 << 16 | 443),            # PARSER_TCP, dport 443
    "switch16": Case(_random_bytes(16, 1500)),
    "dep_arith": Case(struct.pack("<Q", 0x243F6A8885A308D3)),
    "map_lookup": Case(_random_bytes(256, 1024)),
}
assert list(CASES) == PROGRAM_NAMES


def _inet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def test_checksum_model():
    """The Python model checksum is checked against is itself right (RFC 1071 section 3)."""
    assert _inet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == ~0xDDF2 & 0xFFFF
    data = CASES["checksum"].mem
    assert _inet_checksum(data + struct.pack("!H", _inet_checksum(data))) == 0


def _map_lookup_expect() -> int:
    return sum(map_value(b) for b in CASES["map_lookup"].mem) & U64


PYTHON_MODELS = {
    "checksum": lambda: _inet_checksum(CASES["checksum"].mem),
    "map_lookup": _map_lookup_expect,
}


@dataclass
class BenchProgram:
    name: str
    program: object            # ebpfjit.api.program.Program
    nobounds: object           # a LoadedProgram running the JIT built with bounds_checks=False
    jit_compile_ms: float
    insns: int


def _load(name: str) -> BenchProgram:
    from ebpfjit.api.program import Program
    from ebpfjit.objects.elf import load_spec
    from ebpfjit.runtime import LoadedProgram

    path = PROGS / f"{name}.o"
    entry = f"{name}_prog"
    if name == "map_lookup":
        program = _load_with_maps(path, entry)
    else:
        program = Program.from_bytes(load_spec(str(path)).programs[entry].code, name=name)
    jit = program.compile()
    program.run(CASES[name].mem, engine="jit")       # installs the JIT function
    unchecked = program.compile(bounds_checks=False)
    nobounds = LoadedProgram(program.code, program.loaded.env, int(program.type))
    nobounds.set_jit_function(unchecked.address, unchecked)
    return BenchProgram(name, program, nobounds, jit.compile_seconds * 1e3, len(program.code) // 8)


def _load_with_maps(path, entry: str):
    try:
        from ebpfjit.api.loader import load
    except ImportError as exc:
        pytest.skip(f"map_lookup needs ebpfjit.api.loader.load(path) -> Object with .programs/.maps "
                    f"(not importable: {exc})")
    obj = load(str(path))
    table = obj.maps["map_table"]
    for key in range(256):
        table.update(struct.pack("<I", key), struct.pack("<Q", map_value(key)))
    return obj.programs[entry]


@pytest.fixture(scope="session")
def bench_programs():
    cache: dict[str, BenchProgram] = {}

    def get(name: str) -> BenchProgram:
        if name not in cache:
            cache[name] = _load(name)
        return cache[name]
    return get


def _pedantic(benchmark, fn, *args):
    """Time one Python call of `fn(*args)`: batches of calls long enough for the timer."""
    if benchmark.disabled:
        return benchmark(fn, *args)
    fn(*args)
    start = time.perf_counter()
    fn(*args)
    once = max(time.perf_counter() - start, 1e-8)
    iterations = max(1, int(50e-6 / once))
    rounds = max(3, min(300, int(0.1 / (once * iterations))))
    return benchmark.pedantic(fn, args, iterations=iterations, rounds=rounds, warmup_rounds=1)


@pytest.mark.parametrize("engine", ENGINES + DIAG_ENGINES)
@pytest.mark.parametrize("name", PROGRAM_NAMES)
def test_suite(benchmark, name, engine, native_suite, c_timer, bench_programs):
    case = CASES[name]
    bp = bench_programs(name)
    prog = bp.program
    nbuf = native_suite.buffer(case.mem)
    n = len(case.mem)
    if name == "map_lookup":
        for key in range(256):
            native_suite.lib.map_lookup_table[key] = map_value(key)

    expected = native_suite.call(name, nbuf, n)
    if case.expect is not None:
        assert expected == case.expect
    if name in PYTHON_MODELS:
        assert expected == PYTHON_MODELS[name]()

    runners = {
        "native": lambda repeat: native_suite.repeat(name, nbuf, n, repeat),
        "interp": lambda repeat: prog.loaded.run_repeat(case.mem, repeat, "interp"),
        "jit": lambda repeat: prog.loaded.run_repeat(case.mem, repeat, "jit"),
        "jit_nobounds": lambda repeat: bp.nobounds.run_repeat(case.mem, repeat, "jit"),
        # The machine code alone (the compiled function called directly after one full run).
        "jit_code": lambda repeat: prog.loaded.run_repeat(case.mem, repeat, "jit-code"),
    }

    benchmark.group = name
    if engine == "native":
        result = _pedantic(benchmark, native_suite.function(name), nbuf, n)
    elif engine == "jit_nobounds":
        result = _pedantic(benchmark, bp.nobounds.run, case.mem, "jit")
    elif engine == "jit_code":
        result = _pedantic(benchmark, prog.loaded.run, case.mem, "jit")
    elif name == "map_lookup":
        # ObjectProgram.run follows the test-run model of the program type (for this UNSPEC
        # program: r1 = ctx, no length), so the raw convention is LoadedProgram.run.
        result = _pedantic(benchmark, prog.loaded.run, case.mem, engine)
    else:
        result = _pedantic(benchmark, prog.run, case.mem, engine)
    assert result == expected, f"{name} on {engine}: {result:#x} != native {expected:#x}"

    info = {"program": name, "engine": engine, "insns": bp.insns}
    if engine == "native":
        info["compiler"] = native_suite.compiler
    if engine == "jit":   # compile time of this run (0-ish on an on-disk cache hit)
        info["jit_compile_ms"] = round(bp.jit_compile_ms, 3)
    if benchmark.disabled:
        r0, _ = runners[engine](3)            # exercise the C loop once; no timing
        assert r0 == expected
    else:
        timing = c_timer.measure(name, runners)[engine]
        assert timing.r0 == expected
        info.update(ns_per_run=timing.ns_per_run, median_ns=timing.median_ns, wall_ns=timing.wall_ns,
                    repeat=timing.repeat,
                    rounds=len(timing.samples), samples=[round(s, 3) for s in timing.samples])
    benchmark.extra_info.update(info)
