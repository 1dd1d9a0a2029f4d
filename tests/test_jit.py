"""The LLVM JIT: conformance suite at O0/O2, edge semantics vs the interpreter, faults, budget,
call depth, IR naming, cross-target (aarch64) emission."""
from __future__ import annotations

import io
import struct

import pytest
from conftest import conformance_params, needs_conformance

from ebpfjit.cli.testdata import conformance_files, load
from ebpfjit.errors import ExecutionError
from ebpfjit.isa.asm import assemble
from ebpfjit.isa.insn import Instruction, encode
from ebpfjit.jit import compile as jit
from ebpfjit.runtime import Env, LoadedProgram

CONFORMANCE = conformance_files()
OPT_LEVELS = (0, 2)


def _ret_r1(r1, r2, r3, r4, r5):
    return r1


class Both:
    """One program on both engines (the JIT compiled at `opt_level`, no disk cache)."""

    def __init__(self, code: bytes, opt_level: int = 2, bounds_checks: bool = True):
        self.env = Env()
        self.env.register_helper(5, _ret_r1)
        self.loaded = LoadedProgram(code, self.env)
        self.jit = jit.compile_program(code, opt_level=opt_level, bounds_checks=bounds_checks,
                                       cache=False)
        self.loaded.set_jit_function(self.jit.address, self.jit)

    def run(self, engine: str, mem=b"", budget=None):
        """(r0, final mem) or the ExecutionError's (kind, pc, size)."""
        buf = bytearray(mem)
        try:
            r0 = self.loaded.run(buf if mem else b"", engine=engine, budget=budget)
        except ExecutionError as exc:
            return ("error", exc.kind, exc.pc, exc.size), bytes(buf)
        return r0, bytes(buf)

    def both(self, mem=b"", budget=None):
        interp = self.run("interp", mem, budget)
        jitted = self.run("jit", mem, budget)
        assert jitted == interp, f"jit {jitted} != interp {interp}"
        return jitted


# --- the conformance suite -----------------------------------------------------------------------

@pytest.mark.parametrize("opt_level", OPT_LEVELS, ids=lambda o: f"O{o}")
@pytest.mark.parametrize("path", conformance_params(CONFORMANCE))
def test_conformance(path, opt_level):
    case = load(path)
    if case.skip_reason:
        pytest.skip(case.skip_reason)
    prog = Both(case.code, opt_level)
    (r0, _) = prog.both(case.mem)
    assert r0 == case.result


@needs_conformance
def test_conformance_suite_present():
    assert len(CONFORMANCE) >= 300


# --- edge semantics, table-driven, always equal to the interpreter -------------------------------

U64 = (1 << 64) - 1
EDGE_CASES = [
    # (name, asm, expected r0)
    ("udiv64-by-zero", "mov %r0, 7\nmov %r1, 0\ndiv %r0, %r1\nexit", 0),
    ("udiv32-by-zero", "mov %r0, -1\ndiv32 %r0, 0\nexit", 0),
    ("umod64-by-zero", "mov %r0, -7\nmod %r0, 0\nexit", U64 - 6),
    ("umod32-by-zero-truncates", "lddw %r0, 0x1234567800000009\nmov %r1, 0\nmod32 %r0, %r1\nexit",
     9),
    ("sdiv64-int-min-by-minus1", "lddw %r0, 0x8000000000000000\nsdiv %r0, -1\nexit",
     0x8000000000000000),
    ("smod64-int-min-by-minus1", "lddw %r0, 0x8000000000000000\nsmod %r0, -1\nexit", 0),
    ("sdiv32-int-min-by-minus1", "mov32 %r0, 0x80000000\nmov32 %r1, -1\nsdiv32 %r0, %r1\nexit",
     0x80000000),
    ("smod32-int-min-by-minus1", "mov32 %r0, 0x80000000\nsmod32 %r0, -1\nexit", 0),
    ("sdiv64-by-zero", "mov %r0, -5\nmov %r1, 0\nsdiv %r0, %r1\nexit", 0),
    ("smod64-by-zero", "mov %r0, -5\nsmod %r0, 0\nexit", U64 - 4),
    ("smod32-by-zero", "mov %r0, -5\nmov %r1, 0\nsmod32 %r0, %r1\nexit", 0xFFFFFFFB),
    ("sdiv64-negative", "mov %r0, -7\nsdiv %r0, 2\nexit", U64 - 2),
    ("smod64-negative", "mov %r0, -7\nsmod %r0, 2\nexit", U64),
    ("lsh64-masked", "mov %r0, 1\nmov %r1, 65\nlsh %r0, %r1\nexit", 2),
    ("lsh32-imm-high", "mov %r0, 1\nlsh32 %r0, 33\nexit", 2),
    ("rsh32-masked-reg", "mov %r0, -1\nmov %r1, 36\nrsh32 %r0, %r1\nexit", 0x0FFFFFFF),
    ("arsh64-masked", "mov %r0, -16\narsh %r0, 66\nexit", U64 - 3),
    # Out-of-range immediates (the kernel verifier rejects them; RFC 9669 masks the count).
    ("rsh64-imm-high", "mov %r0, -1\nrsh %r0, 65\nexit", U64 >> 1),
    ("lsh64-imm-neg", "mov %r0, 1\nlsh %r0, -1\nexit", 1 << 63),
    ("arsh32-imm-neg", "mov32 %r0, 0x80000000\narsh32 %r0, -1\nexit", 0xFFFFFFFF),
    ("udiv32-reg-high-bits-ignored", "mov %r0, 12\nlddw %r1, 0x100000000\ndiv32 %r0, %r1\nexit", 0),
    ("arsh32-zero-extends", "mov32 %r0, 0x80000000\narsh32 %r0, 4\nexit", 0xF8000000),
    ("alu32-zero-extends", "mov %r0, -1\nadd32 %r0, 1\nexit", 0),
    ("mov32-zero-extends", "mov %r0, -1\nmov32 %r0, %r0\nexit", 0xFFFFFFFF),
    ("imm64-sign-extends", "mov %r0, 0\nadd %r0, -1\nexit", U64),
    ("neg32", "mov %r0, 1\nneg32 %r0\nexit", 0xFFFFFFFF),
    ("movsx864", "mov %r1, 0x80\nmovsx864 %r0, %r1\nexit", U64 - 127),
    ("movsx1632", "mov %r1, 0x8000\nmovsx1632 %r0, %r1\nexit", 0xFFFF8000),
    ("movsx3264", "mov32 %r1, 0x80000000\nmovsx3264 %r0, %r1\nexit", 0xFFFFFFFF80000000),
    ("le16-truncates", "lddw %r0, 0x1122334455667788\nle16 %r0\nexit", 0x7788),
    ("be32", "lddw %r0, 0x1122334455667788\nbe32 %r0\nexit", 0x88776655),
    ("bswap64", "lddw %r0, 0x1122334455667788\nbswap64 %r0\nexit", 0x8877665544332211),
    ("bswap16", "lddw %r0, 0x1122334455667788\nbswap16 %r0\nexit", 0x8877),
    ("jmp32-ignores-high", "lddw %r1, 0x100000001\nmov %r0, 0\njeq32 %r1, 1, +1\nexit\nmov %r0, 1\n"
     "exit", 1),
    ("jsgt-signed", "mov %r1, -1\nmov %r0, 0\njsgt %r1, 0, +1\nmov %r0, 1\nexit", 1),
    ("jset", "mov %r1, 6\nmov %r0, 0\njset %r1, 2, +1\nexit\nmov %r0, 1\nexit", 1),
    ("ja32-gotol", "mov %r0, 1\nja32 +1\nmov %r0, 2\nexit", 1),
    ("ldxsb", "stb [%r10-1], 0x80\nldxsb %r0, [%r10-1]\nexit", U64 - 127),
    ("ldxsh", "sth [%r10-2], 0x8001\nldxsh %r0, [%r10-2]\nexit", 0xFFFFFFFFFFFF8001),
    ("ldxsw", "stw [%r10-4], -2\nldxsw %r0, [%r10-4]\nexit", U64 - 1),
    ("stack-zeroed", "ldxdw %r0, [%r10-8]\nexit", 0),
    ("fetch-add32-zero-extends", "stw [%r10-4], -1\nmov %r1, 1\nlock fetch add32 [%r10-4], %r1\n"
     "mov %r0, %r1\nexit", 0xFFFFFFFF),
    ("xchg64", "stdw [%r10-8], 5\nmov %r1, 9\nlock xchg [%r10-8], %r1\nldxdw %r0, [%r10-8]\n"
     "add %r0, %r1\nexit", 14),
    ("cmpxchg-match", "stdw [%r10-8], 5\nmov %r0, 5\nmov %r1, 7\nlock cmpxchg [%r10-8], %r1\n"
     "ldxdw %r2, [%r10-8]\nlsh %r0, 8\nor %r0, %r2\nexit", 0x507),
    ("cmpxchg-miss", "stdw [%r10-8], 5\nmov %r0, 4\nmov %r1, 7\nlock cmpxchg [%r10-8], %r1\n"
     "ldxdw %r2, [%r10-8]\nlsh %r0, 8\nor %r0, %r2\nexit", 0x505),
    ("cmpxchg32-zero-extends", "stw [%r10-4], -1\nmov %r0, -1\nmov %r1, 7\n"
     "lock cmpxchg32 [%r10-4], %r1\nexit", 0xFFFFFFFF),
    ("lddw", "lddw %r0, 0xfedcba9876543210\nexit", 0xFEDCBA9876543210),
    ("local-call-preserves-r6", "mov %r6, 3\ncall local f\nadd %r0, %r6\nexit\nf:\nmov %r6, 100\n"
     "mov %r0, 4\nexit", 7),
    ("local-call-own-stack", "stdw [%r10-8], 1\ncall local f\nldxdw %r1, [%r10-8]\nadd %r0, %r1\n"
     "exit\nf:\nstdw [%r10-8], 50\nldxdw %r0, [%r10-8]\nexit", 51),
    ("pointer-to-caller-frame", "stdw [%r10-8], 11\nmov %r1, %r10\nadd %r1, -8\ncall local f\n"
     "ldxdw %r0, [%r10-8]\nexit\nf:\nldxdw %r0, [%r1]\nadd %r0, 1\nstxdw [%r1], %r0\nexit", 12),
    ("frame-pointer-escapes", "mov %r1, %r10\nadd %r1, -16\nstdw [%r1], 9\nmov %r2, %r1\n"
     "and %r2, -8\nldxdw %r0, [%r2]\nexit", 9),
    ("helper-return-r1", "mov %r1, 42\ncall 5\nexit", 42),
    ("callx", "mov %r1, 43\nmov %r2, 5\ncall %r2\nexit", 43),
    ("loop-counter", "mov %r0, 0\nmov %r1, 10\nloop:\nadd %r0, %r1\nsub %r1, 1\njne %r1, 0, loop\n"
     "exit", 55),
]


@pytest.mark.parametrize("opt_level", OPT_LEVELS, ids=lambda o: f"O{o}")
@pytest.mark.parametrize("name, text, expected", EDGE_CASES, ids=[c[0] for c in EDGE_CASES])
def test_edge_semantics(name, text, expected, opt_level):
    prog = Both(assemble(text), opt_level)
    r0, _ = prog.both()
    assert r0 == expected


MEM_CASES = [
    ("store-load-mem", "stw [%r1+4], 0x11223344\nldxh %r0, [%r1+6]\nexit", 8, 0x1122),
    ("atomic-add-mem", "mov %r2, 5\nlock add [%r1], %r2\nldxdw %r0, [%r1]\nexit", 8, 5),
    ("atomic-fetch-or32-mem", "stw [%r1], 1\nmov %r2, 6\nlock fetch or32 [%r1+0], %r2\n"
     "ldxw %r0, [%r1]\nlsh %r0, 8\nor %r0, %r2\nexit", 8, 0x701),
    ("unaligned-mem", "stdw [%r1+3], -1\nldxdw %r0, [%r1+2]\nexit", 16, 0xFFFFFFFFFFFFFF00),
]


@pytest.mark.parametrize("opt_level", OPT_LEVELS, ids=lambda o: f"O{o}")
@pytest.mark.parametrize("name, text, size, expected", MEM_CASES, ids=[c[0] for c in MEM_CASES])
def test_mem_semantics(name, text, size, expected, opt_level):
    prog = Both(assemble(text), opt_level)
    r0, _ = prog.both(bytes(size))
    assert r0 == expected


# --- faults ----------------------------------------------------------------------------------------

FAULT_CASES = [
    # (name, asm, mem size, expected (kind, pc, size))
    ("oob-load-past-mem", "ldxw %r0, [%r1+6]\nexit", 8, ("oob_load", 0, 4)),
    ("oob-store-before-mem", "mov %r0, 0\nstb [%r1-1], 1\nexit", 8, ("oob_store", 1, 1)),
    ("oob-null", "mov %r1, 0\nldxdw %r0, [%r1]\nexit", 0, ("oob_load", 1, 8)),
    ("oob-stack-below", "ldxdw %r0, [%r10-520]\nexit", 0, ("oob_load", 0, 8)),
    ("oob-stack-above", "stdw [%r10], 1\nexit", 0, ("oob_store", 0, 8)),
    ("oob-atomic", "mov %r2, 1\nlock add [%r1+8], %r2\nexit", 8, ("oob_store", 1, 8)),
    ("oob-in-callee", "call local f\nexit\nf:\nmov %r0, 0\nldxb %r0, [%r0]\nexit", 0,
     ("oob_load", 3, 1)),
    ("unknown-helper", "call 77\nexit", 0, ("unknown_helper", 0, None)),
    ("unknown-callx", "mov %r3, 999\ncall %r3\nexit", 0, ("unknown_helper", 1, None)),
    ("fall-off-callee", "call local f\nexit\nf:\nmov %r0, 1", 0, ("fall_off", 2, None)),
]


@pytest.mark.parametrize("opt_level", OPT_LEVELS, ids=lambda o: f"O{o}")
@pytest.mark.parametrize("name, text, size, expected", FAULT_CASES, ids=[c[0] for c in FAULT_CASES])
def test_faults_match_interpreter(name, text, size, expected, opt_level):
    code = assemble(text) if "fall-off" not in name else _fall_off_code(text)
    prog = Both(code, opt_level)
    result, _ = prog.both(bytes(size))
    assert result[0] == "error"
    assert result[1:] == expected


def _fall_off_code(text: str) -> bytes:
    # The decoder rejects a program whose *last* instruction falls through, so the callee f that
    # falls off is followed by a function g (the target of a never-executed call):
    # 0: call f   1: exit   2: f: mov r0, 1 (falls off)   3: g: exit   4: call g   5: exit
    return encode([Instruction(0x85, src=1, imm=1), Instruction(0x95), Instruction(0xB7, imm=1),
                   Instruction(0x95), Instruction(0x85, src=1, imm=-2), Instruction(0x95)])


def test_oob_fault_addr_matches_interpreter():
    prog = Both(assemble("ldxdw %r0, [%r1+20]\nexit"))
    errs = []
    for engine in ("interp", "jit"):
        with pytest.raises(ExecutionError) as info:
            prog.loaded.run(bytearray(16), engine=engine)
        exc = info.value
        # The buffers differ per run; the text relative to mem must not.
        errs.append((exc.kind, exc.pc, exc.size, str(exc).replace(f"{exc.addr:#x}", "ADDR")))
    assert errs[0] == errs[1]
    assert "at memory offset 20 of 16 bytes" in errs[0][3]


@pytest.mark.parametrize("opt_level", OPT_LEVELS, ids=lambda o: f"O{o}")
@pytest.mark.parametrize("budget", [1, 2, 5, 37])
def test_budget(budget, opt_level):
    prog = Both(assemble("mov %r0, 0\nloop:\nadd %r0, 1\njlt %r0, 1000, loop\nexit"), opt_level)
    result, _ = prog.both(budget=budget)
    # Budget 1 runs out on entering the loop (the one instruction before it is charged there);
    # afterwards each taken back-edge charges the loop's 2 instructions.
    assert result == ("error", "budget", 0 if budget == 1 else 2, None)


@pytest.mark.parametrize("opt_level", OPT_LEVELS, ids=lambda o: f"O{o}")
def test_budget_counts_calls(opt_level):
    text = "mov %r6, 0\nloop:\ncall local f\nadd %r6, 1\njlt %r6, 10, loop\nmov %r0, %r6\nexit\n" \
           "f:\nmov %r1, 1\ncall 5\nexit"
    prog = Both(assemble(text), opt_level)
    assert prog.both(budget=1000)[0] == 10
    for budget in range(1, 12):
        prog.both(budget=budget)     # same failing pc on both engines


@pytest.mark.parametrize("opt_level", OPT_LEVELS, ids=lambda o: f"O{o}")
def test_call_depth(opt_level):
    prog = Both(assemble("call local f\nexit\nf:\ncall local f\nexit"), opt_level)
    result, _ = prog.both()
    assert result == ("error", "call_depth", 2, None)


@pytest.mark.parametrize("opt_level", OPT_LEVELS, ids=lambda o: f"O{o}")
def test_call_depth_limit_is_eight_frames(opt_level):
    # main + 7 nested calls is fine; the 8th nested call faults.
    text = "mov %r1, {n}\ncall local f\nexit\nf:\njeq %r1, 0, +3\nsub %r1, 1\ncall local f\nexit\n" \
           "mov %r0, 7\nexit"
    assert Both(assemble(text.format(n=6)), opt_level).both()[0] == 7
    assert Both(assemble(text.format(n=7)), opt_level).both()[0] == ("error", "call_depth", 5, None)


def test_bounds_checks_off_still_runs():
    prog = Both(assemble("stw [%r1+4], 3\nldxw %r0, [%r1+4]\nexit"), bounds_checks=False)
    assert prog.run("jit", bytes(8))[0] == 3


# --- IR and cross targets --------------------------------------------------------------------------

def test_ir_names_pcs():
    code = assemble("mov %r0, 0\nloop:\nadd %r0, 1\njlt %r0, 10, loop\nexit")
    text = jit.llvm_ir(code)
    for name in ("pc0:", "pc1:", "pc3:"):
        assert name in text
    assert "; pc 2:" in text
    assert " nsw " not in text and " nuw " not in text
    assert "define i32 @\"ebpf_entry\"" in text or "define i32 @ebpf_entry" in text
    optimized = jit.llvm_ir(code, optimized=True)
    assert "ebpf_entry" in optimized


def test_proven_stack_access_needs_no_check():
    code = assemble("stdw [%r10-8], 5\nmov %r1, %r10\nadd %r1, -8\nldxdw %r0, [%r1]\nexit")
    text = jit.llvm_ir(code)
    assert "ebpfjit_access_ok" not in text
    optimized = jit.llvm_ir(code, optimized=True)
    assert "alloca" not in optimized     # SROA promoted the frame


# Accesses inside a range that an earlier access checked on every path to them, with no runtime
# call since, need no check of their own. (name, asm, pcs whose access is covered). Each runs
# on memory long enough and too short: both engines agree, faults included.
CHECKED_RANGES = [
    ("same-byte-twice", "ldxb %r0, [%r1+4]\nldxb %r2, [%r1+4]\nadd %r0, %r2\nexit", {1}),
    ("narrower-through-a-copy",
     "ldxdw %r0, [%r1+0]\nmov %r3, %r1\nadd %r3, 2\nldxh %r2, [%r3+1]\nadd %r0, %r2\nexit",
     {3}),
    ("wider-is-checked", "ldxh %r0, [%r1+0]\nldxw %r2, [%r1+0]\nadd %r0, %r2\nexit", set()),
    # A read does not cover a write; a write covers a later read.
    ("read-write-read",
     "ldxb %r0, [%r1+0]\nstb [%r1+0], 9\nldxb %r2, [%r1+0]\nadd %r0, %r2\nexit", {2}),
    # Checked on one branch only: after the join it is checked again.
    ("one-branch",
     "mov %r0, 0\njeq %r2, 3, skip\nldxb %r0, [%r1+0]\nskip:\nldxb %r3, [%r1+0]\n"
     "add %r0, %r3\nexit", set()),
    # Checked before the branch: covered on both paths.
    ("before-a-branch",
     "ldxb %r0, [%r1+0]\njeq %r0, 3, skip\nldxb %r0, [%r1+0]\nskip:\nldxb %r3, [%r1+0]\n"
     "add %r0, %r3\nexit", {2, 3}),
    # A helper call may move or free regions: checked again after it.
    ("after-a-call",
     "mov %r6, %r1\nldxb %r7, [%r6+0]\ncall 5\nldxb %r0, [%r6+0]\nadd %r0, %r7\nexit", set()),
    # The base moves each pass: at the loop head it is no known value (the analysis keeps no
    # names across a join that disagrees), so every access is checked; the last pass faults.
    ("moving-base",
     "mov %r0, 0\nmov %r3, %r1\nloop:\nldxb %r4, [%r3+0]\nadd %r0, %r4\nadd %r3, 1\n"
     "ldxb %r4, [%r3-1]\nadd %r0, %r4\njne %r4, 0, loop\nexit", set()),
    # The base is reloaded each pass (a new value at the same pc): checked each pass.
    ("reloaded-base",
     "mov %r6, %r1\nstdw [%r10-8], 0\nmov %r7, 0\nloop:\nldxdw %r3, [%r10-8]\n"
     "add %r3, %r6\nldxb %r0, [%r3+0]\nadd %r7, 1\nstxdw [%r10-8], %r7\n"
     "jlt %r7, 12, loop\nexit", set()),
]


def _covered_pcs(text: str) -> set[int]:
    import re
    return {int(m) for m in re.findall(r'"?pc(\d+)\.covered"? = ', text)}


@pytest.mark.parametrize("opt_level", OPT_LEVELS, ids=lambda o: f"O{o}")
@pytest.mark.parametrize("name, text, covered", CHECKED_RANGES, ids=[c[0] for c in CHECKED_RANGES])
def test_accesses_inside_checked_ranges(name, text, covered, opt_level):
    code = assemble(text)
    assert _covered_pcs(jit.llvm_ir(code, opt_level=opt_level)) == covered
    prog = Both(code, opt_level)
    for mem in (bytes(range(1, 17)), bytes(range(1, 8)) + b"\0", b"\x03", b""):
        prog.both(mem)


def test_a_pointer_checked_before_a_helper_moved_the_packet_is_checked_again():
    """bpf_xdp_adjust_head moves data: a load through the old data pointer, checked before
    the call, now faults, on both engines (as the kernel would refuse it at load)."""
    from ebpfjit import Program
    prog = Program.from_asm("""
        mov %r6, %r1
        ldxw %r2, [%r6+0]
        ldxw %r3, [%r6+4]
        mov %r4, %r2
        add %r4, 20
        jgt %r4, %r3, out
        mov %r7, %r2
        ldxb %r8, [%r7+0]
        mov %r1, %r6
        mov %r2, 14
        call 44
        ldxb %r0, [%r7+0]
        exit
    out:
        mov %r0, 0
        exit
    """, type="xdp")
    for engine in ("interp", "jit"):
        with pytest.raises(ExecutionError) as info:
            prog.test_run(bytes(64), engine=engine)
        assert (info.value.kind, info.value.pc) == ("oob_load", 11)


def test_native_asm_host():
    assert "ebpf_entry" in jit.native_asm(assemble("mov %r0, 1\nexit"))


def test_native_asm_aarch64():
    text = jit.native_asm(assemble("mov %r0, 1\nexit"), target="aarch64")
    assert "ret" in text and ("w0" in text or "x0" in text)


EM_AARCH64 = 183


def _elf_text(obj: bytes) -> tuple[int, bytes]:
    from elftools.elf.elffile import ELFFile
    elf = ELFFile(io.BytesIO(obj))
    return elf["e_machine"], elf.get_section_by_name(".text").data()


@needs_conformance
def test_emit_object_aarch64_every_conformance_program():
    import capstone
    md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
    for path in CONFORMANCE:
        case = load(path)
        obj = jit.emit_object(case.code, "aarch64")
        assert obj[:4] == b"\x7fELF"
        assert struct.unpack_from("<H", obj, 18)[0] == EM_AARCH64
        _, text = _elf_text(obj)
        insns = list(md.disasm(text, 0))
        assert insns and len(insns) * 4 == len(text), path.name
        assert any(i.mnemonic == "ret" for i in insns), path.name


def test_emit_object_x86_64():
    obj = jit.emit_object(assemble("mov %r0, 1\nexit"), "x86_64")
    assert struct.unpack_from("<H", obj, 18)[0] == 62    # EM_X86_64


def test_object_code_is_position_independent_and_reloadable():
    code = assemble("mov %r1, 3\ncall 5\nexit")
    first = jit.compile_program(code, cache=False)
    address, tracker = jit.load_object(first.object_code)
    assert address and address != first.address
    env = Env()
    env.register_helper(5, _ret_r1)
    loaded = LoadedProgram(code, env)
    loaded.set_jit_function(address, tracker)
    assert loaded.run(engine="jit") == 3


# --- lowering shapes: switch recovery, budget on back-edges, raw-entry versioning --------------

_TREE = """
ldx{w} %r2, [%r1]
{mov} %r0, 100
j{s}gt %r2, 5, high
j{s}gt %r2, 1, mid
jeq %r2, 0, zero
jeq %r2, 1, one
{mov} %r0, 1
exit
zero:
{mov} %r0, 2
exit
one:
{mov} %r0, 3
exit
mid:
jlt %r2, 4, low
jeq %r2, 4, four
{mov} %r0, 4
exit
four:
{mov} %r0, 5
exit
low:
jeq %r2, 3, three
{mov} %r0, 6
exit
three:
{mov} %r0, 7
exit
high:
jsle %r2, 7, sixseven
jne %r2, 9, other
{mov} %r0, 8
exit
sixseven:
{mov} %r0, 9
exit
other:
{mov} %r0, 10
exit
"""


@pytest.mark.parametrize("opt_level", OPT_LEVELS, ids=lambda o: f"O{o}")
@pytest.mark.parametrize("width", (64, 32))
def test_compare_tree_becomes_a_switch(width, opt_level):
    text = _TREE.format(w="dw" if width == 64 else "w", mov="mov" if width == 64 else "mov32",
                        s="s")
    if width == 32:
        text = text.replace("jeq %", "jeq32 %").replace("jne %", "jne32 %") \
                   .replace("jlt %", "jlt32 %").replace("jsle %", "jsle32 %") \
                   .replace("jsgt %", "jsgt32 %")
    code = assemble(text)
    assert f"switch i{width}" in jit.llvm_ir(code)
    prog = Both(code, opt_level)
    values = list(range(-3, 14)) + [2**31 - 1, 2**31, 2**32 - 1, 2**32 + 3, 2**63, 2**64 - 1]
    seen = set()
    for value in values:
        mem = struct.pack("<Q", value & (2**64 - 1))
        seen.add(prog.both(mem)[0])
    assert len(seen) >= 8


@pytest.mark.parametrize("opt_level", OPT_LEVELS, ids=lambda o: f"O{o}")
def test_budget_two_back_edges_to_one_header(opt_level):
    # Two back-edges (from pc 3 and pc 4) to one header: faults name the jump taken (or pc 0,
    # whose edge into the loop charges the instruction before it).
    text = ("mov %r0, 0\nloop:\nadd %r0, 1\njset %r0, 1, odd\nja loop\nodd:\n"
            "jlt %r0, 50, loop\nexit")
    prog = Both(assemble(text), opt_level)
    assert prog.both()[0] == 51
    pcs = {prog.both(budget=budget)[0][2] for budget in range(1, 30)}
    assert pcs == {0, 3, 4}


def test_raw_entry_has_no_slow_path_for_checked_accesses():
    # A program's own length checks prove its loads in the raw-convention copy (r1/r2 are the
    # mem region); the general copy, with the checks, is a separate function.
    code = assemble("mov %r0, 0\njlt %r2, 20, out\nldxb %r3, [%r1+3]\nand %r3, 15\nmov %r4, %r3\n"
                    "add %r4, 4\njgt %r4, %r2, out\nadd %r1, %r3\nldxw %r0, [%r1+0]\nout:\nexit")
    text = jit.llvm_ir(code, optimized=True)
    entry = text[text.index("@ebpf_entry("):]
    entry = entry[:entry.index("\n}\n")]
    assert "ebpfjit_access_ok" not in entry
    prog = Both(code)
    for n in (0, 19, 20, 21, 64):
        prog.both(bytes(range(n)))


# --- map lookups specialised on the maps the code is compiled for ------------------------------

def _counters_program():
    from conftest import PROGS_DIR

    from ebpfjit.api.loader import load as load_object
    obj = load_object(str(PROGS_DIR / "xdp_parser_counters.o"))
    return obj, obj.programs["xdp_count_protocols"]


def test_array_lookup_of_a_described_map_is_inline_and_unchecked():
    _, prog = _counters_program()
    maps = prog._jit_maps()
    assert maps[0][:4] == (2, 4, 8, 10)   # proto_counts: ARRAY, u32 -> u64, 10 entries
    described = jit.llvm_ir(prog.code, optimized=True, maps=maps)
    unknown = jit.llvm_ir(prog.code, optimized=True)
    # Without the description every lookup goes through the runtime; with it, none does.
    assert "ebpfjit_jit_map_lookup" in unknown
    assert "ebpfjit_jit_map_lookup" not in described


def test_machine_code_for_other_maps_faults_at_entry():
    obj, prog = _counters_program()
    maps = list(prog._jit_maps())
    mtype, key_size, value_size, max_entries, flags = maps[0]
    maps[0] = (mtype, key_size, value_size, max_entries + 1, flags)
    other = jit.compile_program(prog.code, maps=tuple(maps), cache=False)
    loaded = LoadedProgram(prog.code, prog.loaded.env, int(prog.type))
    loaded.set_jit_function(other.address, other)
    with pytest.raises(ExecutionError, match="map index 0 is not the map this machine code "
                                             "was compiled for") as info:
        loaded.run(bytes(64), engine="jit")
    assert info.value.kind == "bad_insn"
    # The matching code runs the same program to the interpreter's result.
    own = jit.compile_program(prog.code, maps=prog._jit_maps(), cache=False)
    loaded.set_jit_function(own.address, own)
    assert loaded.run(bytes(64), engine="jit") == loaded.run(bytes(64), engine="interp")
