"""The C runtime and interpreter (csrc/runtime.c, csrc/interp.c) through ebpfjit.runtime.

Table-driven: one row per semantic rule of RFC 9669 / the kernel, faults with their exact kind,
pc and message, helpers (C, cffi, Python), and a fuzz loop that must never crash the process.
"""
from __future__ import annotations

import random
import threading

import pytest

from ebpfjit.errors import DecodeError, EbpfError, ExecutionError
from ebpfjit.isa import insn as _insn
from ebpfjit.isa.asm import assemble
from ebpfjit.isa.disasm import format_insn
from ebpfjit.isa.insn import Instruction as I
from ebpfjit.oracle import fuzzgen

runtime = pytest.importorskip("ebpfjit.runtime")
Env, LoadedProgram, ffi, lib = runtime.Env, runtime.LoadedProgram, runtime.ffi, runtime.lib

U64 = (1 << 64) - 1


def identity(r1, r2, r3, r4, r5):
    return r1


def load(text_or_code, env=None) -> LoadedProgram:
    code = assemble(text_or_code) if isinstance(text_or_code, str) else text_or_code
    if env is None:
        env = Env()
        env.register_helper(5, identity)
    return LoadedProgram(code, env)


def run(text_or_code, mem=b"", env=None, **kw) -> int:
    return load(text_or_code, env).run(mem, **kw)


def fault(text_or_code, mem=b"", env=None, **kw) -> ExecutionError:
    with pytest.raises(ExecutionError) as info:
        run(text_or_code, mem, env, **kw)
    return info.value


# The ALU, jump, memory, atomic and packet-load tables are in tests/isa/test_edge_cases.py
# (run on every engine).


# --- mem convention --------------------------------------------------------------------------

def test_mem_convention():
    assert run("mov %r0, %r2\nexit", b"12345678") == 8
    assert run("mov %r0, %r1\nexit") == 0
    assert run("mov %r0, %r2\nexit") == 0
    assert run("ldxdw %r0, [%r1]\nexit", b"\x01\x02\x03\x04\x05\x06\x07\x08") == 0x0807060504030201
    assert run("ldxb %r0, [%r1+4999]\nexit", bytes(4999) + b"\x07") == 7   # heap-copied


def test_bytearray_modified_in_place_bytes_copied():
    prog = load("stb [%r1+1], 0x42\nmov %r0, 0\nexit")
    ba = bytearray(4)
    prog.run(ba)
    assert ba == bytearray(b"\x00\x42\x00\x00")
    mv = memoryview(bytearray(4))
    prog.run(mv)
    assert mv[1] == 0x42
    b = bytes(4)
    prog.run(b)
    assert b == bytes(4)
    ro = memoryview(bytes(4))
    prog.run(ro)
    assert ro.tobytes() == bytes(4)


def test_r1_r2_override():
    prog = load("mov %r0, %r1\nadd %r0, %r2\nexit")
    assert prog.run(r1=5, r2=6) == 11
    assert prog.run(b"abc", r2=10) != 10
    assert prog.run(b"abc", r1=1) == 4


# --- legacy packet loads ---------------------------------------------------------------------

PKT = bytes(range(16))
def test_packet_loads_without_mem():
    assert run("mov %r0, 3\nldabsb 0\nexit") == 0


def test_ld_packet_c_contract():
    st = runtime.thread_state()
    buf = ffi.new("uint8_t[]", PKT)
    st.mem_base = int(ffi.cast("uintptr_t", buf))
    st.mem_len = len(PKT)
    ok = ffi.new("int *")
    assert lib.ebpfjit_ld_packet(st, 4, 4, 0, ok) == 0x04050607 and ok[0] == 1
    assert lib.ebpfjit_ld_packet(st, 13, 4, 0, ok) == 0 and ok[0] == 0
    assert lib.ebpfjit_ld_packet(st, (1 << 32) + 1, 1, 0, ok) == 1 and ok[0] == 1
    assert lib.ebpfjit_ld_packet(st, U64, 1, 0, ok) == 0 and ok[0] == 0
    st.mem_base = st.mem_len = 0


# --- local calls -----------------------------------------------------------------------------

def test_local_call_preserves_r6_r9_and_passes_r1_r5():
    text = """
        mov %r6, 6
        mov %r7, 7
        mov %r8, 8
        mov %r9, 9
        mov %r1, 1
        mov %r5, 5
        call local f
        mov %r1, %r6
        add %r1, %r7
        add %r1, %r8
        add %r1, %r9
        lsh %r0, 8
        or %r0, %r1
        exit
    f:
        mov %r6, 0
        mov %r7, 0
        mov %r8, 0
        mov %r9, 0
        mov %r0, %r1
        add %r0, %r5
        exit
    """
    assert run(text) == (6 << 8) | 30


def test_local_call_gets_a_fresh_frame_and_can_use_the_callers():
    text = """
        stdw [%r10-8], 11
        mov %r1, %r10
        sub %r1, 8
        call local f
        ldxdw %r1, [%r10-8]
        lsh %r0, 8
        or %r0, %r1
        exit
    f:
        ldxdw %r0, [%r10-8]
        stdw [%r10-8], 99
        ldxdw %r2, [%r1]
        add %r0, %r2
        exit
    """
    # callee's [r10-8] starts at 0 (own zeroed frame), reads 11 through the caller's pointer,
    # and its store does not touch the caller's slot.
    assert run(text) == (11 << 8) | 11


def _nested_calls(n: int) -> str:
    # r0 reads 0 at callee entry: each function adds 1 to what its callee returned.
    lines = ["mov %r0, 0", "call local f1", "exit"]
    for i in range(1, n + 1):
        lines.append(f"f{i}:")
        if i < n:
            lines.append(f"call local f{i + 1}")
        lines += ["add %r0, 1", "exit"]
    return "\n".join(lines)


def test_call_depth_limit():
    assert run(_nested_calls(7)) == 7            # 8 frames including main
    err = fault(_nested_calls(8))
    assert err.kind == "call_depth"
    assert str(err) == f"pc {3 + 3 * 6}: call depth exceeds 8 frames"


def test_infinite_recursion():
    err = fault("call local f\nexit\nf:\ncall local f\nexit")
    assert (err.kind, err.pc) == ("call_depth", 2)


def test_recursion_into_main_is_a_call():
    # The argument travels in r1 (r6 reads 0 at callee entry).
    assert run("mov %r0, 1\njeq %r1, 1, +3\nmov %r1, 1\ncall local main\nadd %r0, 1\nexit"
               .replace("main", "-4")) == 2


def test_fall_off_end_of_subprogram():
    code = assemble("call local f\ncall local g\nexit\nf:\nmov %r0, 1\ng:\nexit")
    err = fault(code)
    assert (err.kind, err.pc) == ("fall_off", 3)
    assert "past the end of the function" in str(err)


def test_fall_off_end_of_program():
    err = fault(I(0xb7, 0, imm=1).encode())
    assert (err.kind, err.pc) == ("fall_off", 0)


# --- helpers ---------------------------------------------------------------------------------

def test_python_helper_args_and_result():
    env = Env()
    seen = []

    def helper(*args):
        seen.append(args)
        return -1

    env.register_helper(7, helper)
    assert env.has_helper(7) and not env.has_helper(8)
    assert run("mov %r1, 1\nmov %r2, 2\nmov %r3, 3\nmov %r4, 4\nmov %r5, -5\ncall 7\nexit", env=env) == U64
    assert seen == [(1, 2, 3, 4, U64 - 4)]


def test_python_helper_exception_is_chained():
    env = Env()

    def boom(*args):
        raise ValueError("no such key")

    env.register_helper(12, boom)
    with pytest.raises(ExecutionError) as info:
        run("mov %r0, 0\ncall 12\nexit", env=env)
    err = info.value
    assert (err.kind, err.pc) == ("helper", 1)
    assert isinstance(err.__cause__, ValueError)
    assert str(err) == "pc 1: helper 12 failed: ValueError: no such key"
    # the next run is clean
    env.register_helper(12, identity)
    assert run("mov %r1, 3\ncall 12\nexit", env=env) == 3


def test_unknown_helper():
    err = fault("call 999\nexit", env=Env())
    assert (err.kind, err.pc, str(err)) == ("unknown_helper", 0, "pc 0: unknown helper 999")
    err = fault(I(0x85, imm=100000).encode() + I(0x95).encode(), env=Env())
    assert str(err) == "pc 0: unknown helper 100000"
    env = Env()
    env.register_helper(3, identity)
    env.unregister_helper(3)
    assert fault("call 3\nexit", env=env).kind == "unknown_helper"



@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_raw_program_load_check(engine):
    # The one load-time check (api.program.check_program) for a raw program: at its first run,
    # so that helpers registered after construction count.
    from ebpfjit import Program
    from ebpfjit.errors import VerifierError
    prog = Program.from_asm("mov %r1, 5\ncall 999\nexit")
    with pytest.raises(VerifierError, match=r"^pc 1: program 'prog': call to unknown helper 999") as ei:
        prog.run(b"", engine=engine)
    assert ei.value.pc == 1
    prog = Program.from_asm("mov %r1, 5\ncall 300\nexit")
    with pytest.raises(VerifierError, match="unknown helper 300"):
        prog.run(b"", engine=engine)
    prog = Program.from_asm("mov %r1, 5\ncall 300\nexit")
    prog.register_helper(300, identity)
    assert prog.run(b"", engine=engine) == 5
    kfunc = I(0x85, src=_insn.CALL_KFUNC, imm=77).encode() + I(0x95).encode()
    with pytest.raises(VerifierError, match=r"^pc 0: .*kfunc calls are not supported \(btf id 77\)"):
        Program.from_bytes(kfunc).run(b"", engine=engine)

def test_callx():
    assert run("mov %r1, 42\nmov %r2, 5\ncall %r2\nexit") == 42
    err = fault("mov %r2, 6\nmov %r0, 1\ncall %r2\nexit")
    assert (err.kind, err.pc, str(err)) == ("unknown_helper", 2, "pc 2: unknown helper 6")
    err = fault("mov %r2, -1\ncall %r2\nexit")
    assert err.kind == "unknown_helper"


def test_cffi_and_address_helpers():
    @ffi.callback("ebpfjit_helper_fn")
    def add(a, b, c, d, e):
        return a + b + c + d + e

    env = Env()
    env.register_helper(1, add)
    env.register_helper(2, int(ffi.cast("uintptr_t", add)))
    assert env.helper_address(1) == env.helper_address(2) != 0
    text = "mov %r1, 1\nmov %r2, 2\nmov %r3, 3\nmov %r4, 4\nmov %r5, 5\ncall 1\nmov %r1, %r0\ncall 2\nexit"
    assert run(text, env=env) == 15 + 14


def test_register_helper_rejects_bad_ids_and_values():
    env = Env()
    with pytest.raises(ValueError):
        env.register_helper(512, identity)
    with pytest.raises(ValueError):
        env.register_helper(-1, identity)
    with pytest.raises(TypeError):
        env.register_helper(1, "nope")


def test_helper_sees_current_state_and_can_fault():
    env = Env()

    def failing(*args):
        st = lib.ebpfjit_current()
        assert st != ffi.NULL and st.depth == 2
        lib.ebpfjit_fault(st, lib.EBPFJIT_ERR_HELPER, -1, 0, 0)
        return 0

    env.register_helper(9, failing)
    err = fault("call local f\nexit\nf:\ncall 9\nexit", env=env)
    assert (err.kind, err.pc) == ("helper", 2)


def test_nested_run_from_python_helper():
    inner = load("mov %r0, %r2\nexit")
    env = Env()
    env.register_helper(4, lambda *a: inner.run(b"x" * a[0]))
    assert run("mov %r1, 6\ncall 4\nadd %r0, 1\nexit", b"outer", env=env) == 7


def test_helper_calls_count_as_one_instruction():
    env = Env()
    env.register_helper(5, identity)
    # A run with budget B executes fewer than B instructions; a helper call is one of them.
    text = "call 5\ncall 5\ncall 5\nexit"
    assert run(text, env=env, budget=5) == 0
    assert fault(text, env=env, budget=4).pc == 3
    # 1 (pc 0, charged entering the loop) + 3 + 3 (two back-edges) + 4 (the last pass + exit)
    looped = "mov %r6, 3\nloop:\ncall 5\nsub %r6, 1\njne %r6, 0, loop\nexit"
    assert run(looped, env=env, budget=12) == 0
    assert fault(looped, env=env, budget=11).pc == 4
    assert fault(looped, env=env, budget=7).pc == 3
    assert fault(looped, env=env, budget=1).pc == 0


# --- lddw map forms --------------------------------------------------------------------------

def test_lddw_map_and_map_value():
    values = ffi.new("uint8_t[]", bytes(range(32)))
    m = ffi.new("struct ebpfjit_map_base *", {"value_size": 32, "max_entries": 1})
    m.values = values
    env = Env()
    env.set_maps([m])
    env.add_region(values, 32, writable=True)
    code = (I(0x18, dst=1, src=2, imm=(4 << 32) | 0).encode()
            + assemble("ldxw %r0, [%r1]\nexit"))
    assert run(code, env=env) == 0x07060504
    code = I(0x18, dst=0, src=1, imm=0).encode() + I(0x95).encode()
    assert run(code, env=env) == int(ffi.cast("uintptr_t", m))
    code = I(0x18, dst=0, src=1, imm=3).encode() + I(0x95).encode()
    err = fault(code, env=env)
    assert (err.kind, err.pc) == ("bad_insn", 0)
    assert "map index 3" in str(err)
    for src in (3, 4, 5, 6):
        assert fault(I(0x18, dst=0, src=src, imm=0).encode() + I(0x95).encode(), env=env).kind == "bad_insn"


def test_env_region_readonly():
    data = bytearray(b"\x2a" * 8)
    env = Env()
    env.add_region(bytes(data), 8, writable=False)
    addr = env._keep[next(k for k in env._keep if k[0] == "region")]
    base = int(ffi.cast("uintptr_t", addr))
    code = I(0x18, dst=1, imm=base).encode()
    assert run(code + assemble("ldxb %r0, [%r1+7]\nexit"), env=env) == 0x2A
    err = fault(code + assemble("stb [%r1], 1\nexit"), env=env)
    assert (err.kind, err.pc, err.size) == ("oob_store", 2, 1)


def test_kfunc_call_is_bad_insn():
    assert fault(I(0x85, src=2, imm=1).encode() + I(0x95).encode()).kind == "bad_insn"


# --- budget ----------------------------------------------------------------------------------

def test_budget_infinite_loop():
    err = fault("mov %r0, 0\nloop:\nadd %r0, 1\nja loop", budget=1000)
    assert (err.kind, err.pc) == ("budget", 2)
    assert str(err) == "pc 2: instruction budget of 1000 exhausted"


def test_budget_counts_exactly():
    text = "mov %r1, 10\nloop:\nsub %r1, 1\njne %r1, 0, loop\nexit"   # 22 instructions run
    assert run(text, budget=23) == 0
    assert fault(text, budget=22).kind == "budget"
    with pytest.raises(ValueError):
        run(text, budget=0)


def test_default_budget_message():
    err = fault("ja -1")
    assert str(err) == f"pc 0: instruction budget of {runtime.DEFAULT_BUDGET} exhausted"


# --- out-of-bounds ---------------------------------------------------------------------------

OOB_CASES = [
    ("stack top", "ldxb %r0, [%r10+0]\nexit", b"", "oob_load", 0, 1,
     'stack offset 0 of frame 0 (512 bytes)'),
    ("stack overflow +8", "ldxdw %r0, [%r10+8]\nexit", b"", "oob_load", 0, 8,
     'stack offset 8 of frame 0 (512 bytes)'),
    ("stack underflow -520", "ldxdw %r0, [%r10-520]\nexit", b"", "oob_load", 0, 8,
     'stack offset -520 of frame 0 (512 bytes)'),
    ("straddles stack bottom", "ldxdw %r0, [%r10-516]\nexit", b"", "oob_load", 0, 8,
     'stack offset -516 of frame 0 (512 bytes)'),
    ("mem + len", "ldxb %r0, [%r1+8]\nexit", bytes(8), "oob_load", 0, 1,
     'memory offset 8 of 8 bytes'),
    ("mem partial", "ldxdw %r0, [%r1+1]\nexit", bytes(8), "oob_load", 0, 8,
     'memory offset 1 of 8 bytes'),
    ("mem before", "ldxb %r0, [%r1-1]\nexit", bytes(8), "oob_load", 0, 1,
     'memory offset -1 of 8 bytes'),
    ("null", "mov %r1, 0\nldxw %r0, [%r1+0]\nexit", b"", "oob_load", 1, 4,
     'null pointer (address 0x0)'),
    ("store past mem", "stw [%r1+6], 1\nexit", bytes(8), "oob_store", 0, 4,
     'memory offset 6 of 8 bytes'),
    ("store below stack", "stxdw [%r10-513], %r1\nexit", b"", "oob_store", 0, 8,
     'stack offset -513 of frame 0 (512 bytes)'),
    ("atomic past mem", "mov %r2, 1\nlock add [%r1+8], %r2\nexit", bytes(8), "oob_store", 1, 8,
     'memory offset 8 of 8 bytes'),
    ("wrapping address", "lddw %r1, 0xfffffffffffffffc\nldxdw %r0, [%r1+0]\nexit", b"", "oob_load", 2, 8,
     'not in stack, memory or any map'),
    ("stale frame after return", "call local f\nldxdw %r0, [%r0-8]\nexit\nf:\nmov %r0, %r10\nexit",
     b"", "oob_load", 1, 8,
     # The returned frame lay 1 KiB (EBPFJIT_FRAME_GUARD) past frame 0's end.
     'stack offset 1528 of frame 0 (512 bytes)'),
]


@pytest.mark.parametrize("text, mem, kind, pc, size, where", [c[1:] for c in OOB_CASES],
                         ids=[c[0] for c in OOB_CASES])
def test_out_of_bounds(text, mem, kind, pc, size, where):
    err = fault(text, bytearray(mem))
    assert (err.kind, err.pc, err.size) == (kind, pc, size)
    what = "load" if kind == "oob_load" else "store"
    insn = next(i for p, i in _insn.iter_pcs(_insn.decode(assemble(text), validate=False))
                if p == pc)
    # The place relative to the region it is nearest to, the instruction; no host address.
    assert str(err) == (f"pc {pc}: out-of-bounds {what} of {size} bytes at {where}\n"
                        f"  insn {pc}: {format_insn(insn)}")
    assert err.insn_text == format_insn(insn)
    if err.addr >= 4096:
        assert f"{err.addr:x}" not in str(err)


def test_oob_messages_locate_the_address():
    err = fault("ldxdw %r0, [%r10-520]\nexit")
    assert (err.region, err.offset) == ("stack", -520)
    err = fault("ldxb %r0, [%r1+8]\nexit", bytes(8))
    assert (err.region, err.offset) == ("memory", 8)
    assert fault("mov %r1, 0\nldxw %r0, [%r1+0]\nexit").region == "null"


def test_bad_jump_target_faults_instead_of_escaping():
    code = I(0x05, off=100).encode() + I(0x95).encode()
    with pytest.raises(DecodeError):
        _insn.decode(code)
    err = fault(code)
    assert (err.kind, err.pc) == ("bad_insn", 0)
    code = I(0x85, src=1, imm=-5).encode() + I(0x95).encode()
    assert fault(code).kind == "bad_insn"
    # into the second slot of an lddw
    code = I(0x05, off=1).encode() + I(0x18, imm=1 << 40).encode() + I(0x95).encode()
    assert fault(code).kind == "bad_insn"


def test_engine_errors():
    prog = load("mov %r0, 1\nexit")
    with pytest.raises(ValueError):
        prog.run(engine="nope")
    with pytest.raises(EbpfError):
        prog.run(engine="jit")
    with pytest.raises(TypeError):
        prog.run("text")


# --- runner odds and ends --------------------------------------------------------------------

def test_run_repeat():
    prog = load("mov %r0, %r2\nexit")
    r0, ns = prog.run_repeat(b"abcd", 1000)
    assert r0 == 4 and ns > 0
    with pytest.raises(ExecutionError):
        load("ja -1").run_repeat(b"", 3, budget=10)


def test_threads_run_independently():
    prog = load("mov %r0, 0\nmov %r3, %r2\nloop:\nadd %r0, 1\nsub %r3, 1\njne %r3, 0, loop\nexit")
    errors = []

    def worker(n):
        try:
            for _ in range(200):
                assert prog.run(bytes(n)) == n
        except BaseException as exc:   # noqa: B036 - report any failure to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in (3, 50, 700)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_helper_symbols_and_state_layout():
    syms = runtime.helper_symbols()
    for name in ("ebpfjit_access_ok", "ebpfjit_fault", "ebpfjit_call_helper", "ebpfjit_ld_packet",
                 "ebpfjit_helper_status"):
        assert syms[name] > 0
    layout = runtime.state_layout()
    assert layout["state.r0"] == 0 and layout["r0"] == 0
    assert layout["state.status"] == 8
    assert layout["env.helpers"] == 0
    assert layout["env.maps"] == 8 * runtime.MAX_HELPERS
    assert layout["map_base.values"] == 24
    assert layout["sizeof.state"] == ffi.sizeof("struct ebpfjit_state")
    assert layout["state.frame_lo"] + 8 * runtime.MAX_FRAMES <= layout["state.nregions"]


def test_access_ok_slow_path():
    st = runtime.thread_state()
    lib.ebpfjit_state_reset(st, ffi.NULL, 1)
    st.nregions = 1
    st.regions[0].base = 0x10000
    st.regions[0].len = 0x100
    st.regions[0].writable = 0
    assert lib.ebpfjit_access_ok(st, 0x10000, 8, 0)
    assert lib.ebpfjit_access_ok(st, 0x100F8, 8, 0)
    assert not lib.ebpfjit_access_ok(st, 0x100F9, 8, 0)
    assert not lib.ebpfjit_access_ok(st, 0x10000, 8, 1)
    assert not lib.ebpfjit_access_ok(st, U64 - 3, 8, 0)
    st.nregions = 0


# --- fuzz ------------------------------------------------------------------------------------

# Instructions from ebpfjit.fuzzgen.random_insns (the one random-program generator).


def test_fuzz_interpreter_never_crashes():
    from tests.support.engines import fuzz_harness  # after the importorskip of the runtime
    rng = random.Random(20261121)
    harness = fuzz_harness()
    env = harness.env
    cases = outcomes = 0
    kinds: dict[str, int] = {}
    while cases < 3000:
        insns = fuzzgen.random_insns(rng, rng.randrange(1, 24))
        if rng.random() < 0.7:
            insns.append(I(0x95))
        code = _insn.encode(insns)
        try:
            _insn.decode(code, validate=rng.random() < 0.3)
        except DecodeError:
            continue
        cases += 1
        mem = bytearray(rng.getrandbits(8) for _ in range(rng.choice((0, 8, 64))))
        try:
            r0 = LoadedProgram(code, env).run(mem, budget=rng.choice((1, 50, 2000)))
            assert 0 <= r0 <= U64
            outcomes += 1
        except ExecutionError as exc:
            kinds[exc.kind] = kinds.get(exc.kind, 0) + 1
    assert outcomes > 100 and len(kinds) >= 4, kinds


def test_lowering_takes_status_codes_and_imports_from_the_c_module():
    from ebpfjit.jit.lower import RUNTIME_DECLS
    from ebpfjit.jit.lower import lowering_context as context
    from ebpfjit.runtime.env import status_codes
    codes = status_codes()
    assert codes["OK"] == lib.EBPFJIT_OK and codes["ERR_TIMEOUT"] == lib.EBPFJIT_ERR_TIMEOUT
    assert {name: getattr(context, name) for name in codes} == codes   # every code has a name
    imports = runtime.helper_symbols()
    assert set(RUNTIME_DECLS) <= set(imports) and all(addr > 0 for addr in imports.values())
