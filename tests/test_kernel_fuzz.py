"""Differential fuzzing against the kernel (ebpfjit.fuzzgen) and the regression corpus replay.

CI mode (default), sized for ~3 minutes on 2 cores:
  - generator checks (determinism, coverage of every instruction form) without a kernel;
  - EBPFJIT_FUZZ_INTERP_COUNT (3000) XDP programs: kernel vs interpreter;
  - EBPFJIT_FUZZ_JIT_COUNT (500) XDP programs: kernel vs JIT, cycling O2 / O1 / O0 / O2 without
    bounds checks (JIT compiles dominate: ~0.1-0.4 s per program);
  - 500 raw-variant programs (r1 = packet, r2 = length) on the interpreter and the JIT at O2.
Long mode: EBPFJIT_FUZZ_SECONDS=3600 runs every worker that long instead, saves minimised
disagreements into tests/regressions/ and writes tests/regressions/rejections-summary.txt.
"""
from __future__ import annotations

import os
import pathlib

import pytest

from ebpfjit.isa.insn import decode
from ebpfjit.isa.opcodes import OPCODES, Kind
from ebpfjit.oracle import fuzzgen

REGRESSIONS = pathlib.Path(__file__).resolve().parent / "regressions"
WORKERS = int(os.environ.get("EBPFJIT_FUZZ_WORKERS", "2"))
LONG_SECONDS = float(os.environ.get("EBPFJIT_FUZZ_SECONDS", "0") or 0)
INTERP_COUNT = int(os.environ.get("EBPFJIT_FUZZ_INTERP_COUNT", "3000"))
JIT_COUNT = int(os.environ.get("EBPFJIT_FUZZ_JIT_COUNT", "500"))
JIT_CYCLE = ("jit-O2", "jit-O1", "jit-O0", "jit-O2-nobc")


# --- the generator, no kernel needed ------------------------------------------------------------

def test_deterministic():
    a, b = fuzzgen.generate(1234), fuzzgen.generate(1234)
    assert a.code() == b.code() and a.code("raw") == b.code("raw")
    assert fuzzgen.generate(1235).code() != a.code()
    assert fuzzgen.packets_for(7) == fuzzgen.packets_for(7)


def test_raw_and_xdp_share_the_body():
    prog = fuzzgen.generate(99)
    xdp, raw = prog.insns("xdp"), prog.insns("raw")
    # Only the first instructions (ctx loads vs r1/r2 arithmetic) differ.
    assert xdp[2:] == raw[3:]


def _forms(insns) -> set[str]:
    out = set()
    for ins in insns:
        info = OPCODES[ins.opcode]
        name = info.name
        if info.kind is Kind.ALU and ins.off:
            name += f"/off{ins.off}"          # sdiv/smod, movsx
        if info.kind is Kind.ENDIAN:
            name += f"/{ins.imm}"
        if info.kind is Kind.ATOMIC:
            name += f"/{ins.imm:#x}"
        if info.kind is Kind.CALL:
            name += f"/src{ins.src}/{ins.imm if ins.src == 0 else ''}"
        out.add(name)
    return out


def test_covers_every_instruction_form():
    seen: set[str] = set()
    for seed in range(300):
        seen |= _forms(fuzzgen.generate(seed).insns())
    expected = set()
    for op in OPCODES.values():
        if op.kind in (Kind.LDABS, Kind.LDIND, Kind.CALLX):
            continue          # not in XDP programs
        if op.kind is Kind.ENDIAN:
            expected |= {f"{op.name}/{w}" for w in (16, 32, 64)}
        elif op.kind is Kind.ATOMIC:
            expected |= {f"{op.name}/{imm:#x}" for imm in (0x0, 0x1, 0x40, 0x41, 0x50, 0x51,
                                                            0xa0, 0xa1, 0xe1, 0xf1)}
        elif op.kind is Kind.CALL:
            expected |= {"CALL/src0/1", "CALL/src0/2", "CALL/src0/3", "CALL/src1/"}
        else:
            expected.add(op.name)
    expected |= {"DIV64_IMM/off1", "DIV64_REG/off1", "MOD64_IMM/off1", "MOD64_REG/off1",
                 "DIV32_IMM/off1", "DIV32_REG/off1", "MOD32_IMM/off1", "MOD32_REG/off1",
                 "MOV64_REG/off8", "MOV64_REG/off16", "MOV64_REG/off32",
                 "MOV32_REG/off8", "MOV32_REG/off16"}
    missing = expected - seen
    assert not missing, sorted(missing)


def test_programs_decode_and_fit():
    for seed in range(50):
        code = fuzzgen.generate(seed).code()
        decode(code)                       # structurally valid
        assert len(code) // 8 < 4096


def test_ddmin():
    # The failure needs 3 and 7 together.
    got = fuzzgen._ddmin(list(range(10)), lambda xs: 3 in xs and 7 in xs)
    assert got == [3, 7]


def test_diff_results_names_registers():
    a = fuzzgen.Result([(2, bytes(16))], {"m": {"00": "01"}})
    b = fuzzgen.Result([(2, (5).to_bytes(8, "little") + bytes(8))], {"m": {"00": "02"}})
    diffs = fuzzgen.diff_results(a, b)
    assert diffs[0] == "packet 0: data_out differs at bytes 0 (r0 0x0 != 0x5)"
    assert diffs[1].startswith("map m: differs at keys 00")


# --- against the kernel -------------------------------------------------------------------------

@pytest.mark.kernel
def test_kernel_accepts_generated_programs(kernel):
    stats = fuzzgen.fuzz(count=300, seed=10_000, engines=[], explain_rejections=True)
    assert stats.rejected <= 3, stats.summary()


def _check(stats: fuzzgen.FuzzStats) -> None:
    print(stats.summary())
    assert stats.crashed == 0, stats.summary()
    assert stats.disagreed == 0, stats.summary()


@pytest.mark.kernel
@pytest.mark.skipif(LONG_SECONDS > 0, reason="long mode runs test_long_run instead")
def test_differential_interp(kernel):
    _check(fuzzgen.fuzz_parallel(WORKERS, count=INTERP_COUNT, seed=0, engines=["interp"]))


@pytest.mark.kernel
@pytest.mark.skipif(LONG_SECONDS > 0, reason="long mode runs test_long_run instead")
def test_differential_jit(kernel):
    _check(fuzzgen.fuzz_parallel(WORKERS, count=JIT_COUNT, seed=1_000_000, size=24,
                                 engines=[JIT_CYCLE]))


@pytest.mark.kernel
@pytest.mark.skipif(LONG_SECONDS > 0, reason="long mode runs test_long_run instead")
def test_differential_raw_variant(kernel):
    _check(fuzzgen.fuzz_parallel(WORKERS, count=500, seed=2_000_000, size=24, variant="raw",
                                 engines=["interp", ("jit-O2", "jit-O2-nobc")]))


@pytest.mark.kernel
@pytest.mark.skipif(LONG_SECONDS <= 0, reason="set EBPFJIT_FUZZ_SECONDS for the long run")
def test_long_run(kernel):
    stats = fuzzgen.fuzz_parallel(WORKERS, seconds=LONG_SECONDS, seed=int(os.environ.get(
        "EBPFJIT_FUZZ_SEED", "0")), engines=["interp", ("jit", "jit-O1", "jit-O0", "jit-O2-nobc")],
        corpus=REGRESSIONS, explain_rejections=True)
    (REGRESSIONS / "rejections-summary.txt").write_text(stats.summary() + "\n")
    _check(stats)


# --- the regression corpus ----------------------------------------------------------------------

def _corpus():
    return sorted(REGRESSIONS.glob("*.json"))


@pytest.mark.parametrize("engine", ["interp", "jit"])
@pytest.mark.parametrize("path", _corpus(), ids=lambda p: p.stem)
def test_regression_corpus(path, engine, request, record_property):
    """Our engines give the expected result; for a kernel-deviation case that is RFC 9669's, and
    the live kernel's answer (deviation seen or not) is recorded as a property and printed."""
    case = fuzzgen.load_case(path)
    if case.get("xfail") and engine in case.get("disagreeing", [engine]):
        request.applymarker(pytest.mark.xfail(reason=case["xfail"], strict=False))
    kernel = None
    from ebpfjit.oracle import kernel as kmod
    if kmod.available():
        kernel = fuzzgen.KernelRunner(kmod)
    notes: list[str] = []
    problems = fuzzgen.replay_case(case, engine, kernel, notes=notes)
    for note in notes:
        record_property("kernel", note)
        print(f"{path.stem}: {note}")
    assert not problems, "\n".join(problems)


@pytest.mark.kernel
def test_minimize_and_save_with_a_planted_bug(kernel, monkeypatch, tmp_path):
    """An engine that gets bswap wrong: the fuzzer finds it, minimisation keeps the bswap, the
    saved case replays (and agrees on the real engine)."""
    real_run = fuzzgen.OurRunner.run

    def buggy(self, code, packets, **kw):
        res = real_run(self, code, packets, **kw)
        if any(i.opcode == 0xD7 for i in decode(code)) and res.runs:
            retval, data = res.runs[0]
            res.runs[0] = (retval, bytes([data[0] ^ 1]) + data[1:])
        return res

    monkeypatch.setattr(fuzzgen.OurRunner, "run", buggy)
    runner = fuzzgen.KernelRunner(kernel)
    for seed in range(200):
        prog = fuzzgen.generate(seed, 12, exclude=fuzzgen.MAP_UNITS)
        if any(i.opcode == 0xD7 for i in prog.insns()):
            break
    out = fuzzgen.run_case(prog, fuzzgen.packets_for(seed), runner, ["interp"], "raw")
    assert out.disagreements
    small = fuzzgen.minimize(out, runner, budget_s=60)
    assert small.disagreements
    assert fuzzgen.count_units(small.program.body) <= 3
    assert any(i.opcode == 0xD7 for i in small.program.insns())
    path = fuzzgen.save_case(small, tmp_path)
    case = fuzzgen.load_case(path)
    assert case["disagreeing"] == ["interp"]
    monkeypatch.setattr(fuzzgen.OurRunner, "run", real_run)
    assert fuzzgen.replay_case(case, "interp", runner) == []
