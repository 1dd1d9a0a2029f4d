"""BPF callbacks (bpf_loop, for_each_map_elem), bpf_spin_lock safety and the register rules at
bpf-to-bpf calls, on both engines (which must agree to the fault pc and the budget)."""
from __future__ import annotations

import struct
import threading

import pytest

from ebpfjit import Program
from ebpfjit.errors import ExecutionError, VerifierError
from ebpfjit.isa.insn import Instruction
from ebpfjit.objects.spec import MapType
from ebpfjit.runtime.maps import Map
from tests.support import engines

ENGINES = ("interp", "jit")
U64 = struct.Struct("<Q")
M64 = (1 << 64) - 1
TAG = 0xCB0FCA11B0000000
E2BIG = 7


def ins(opcode, dst=0, src=0, off=0, imm=0) -> bytes:
    return Instruction(opcode, dst, src, off, imm).encode()


def mov(dst, imm): return ins(0xB7, dst, 0, 0, imm)
def movr(dst, src): return ins(0xBF, dst, src)
def addi(dst, imm): return ins(0x07, dst, 0, 0, imm)
def addr(dst, src): return ins(0x0F, dst, src)
def muli(dst, imm): return ins(0x27, dst, 0, 0, imm)
def ldxdw(dst, src, off=0): return ins(0x79, dst, src, off)
def ldxw(dst, src, off=0): return ins(0x61, dst, src, off)
def stxdw(dst, src, off=0): return ins(0x7B, dst, src, off)
def stdw(off, imm): return ins(0x7A, 10, 0, off, imm)
def stw_at(dst, off, imm): return ins(0x62, dst, 0, off, imm)
def stw(off, imm): return ins(0x62, 10, 0, off, imm)
def call(helper): return ins(0x85, 0, 0, 0, helper)
def call_local(rel): return ins(0x85, 0, 1, 0, rel)
def jeq(dst, imm, off): return ins(0x15, dst, 0, off, imm)
def jne(dst, imm, off): return ins(0x55, dst, 0, off, imm)
def ld_map(reg, index): return ins(0x18, reg, 1, 0, index)
def ld_func(reg, rel): return ins(0x18, reg, 4, 0, rel)    # target = pc + 1 + rel


EXIT = ins(0x95)


def slots(code: bytes) -> int:
    return len(code) // 8


class Harness(engines.Harness):
    """The shared harness (every builtin helper: bpf_loop, map helpers), checking callback entries."""

    def load(self, code: bytes, engine: str):
        prog = super().load(code, engine)
        if engine == "jit":
            # Callbacks run jitted, not in the interpreter, whenever the program has a
            # `lddw rX, func` (without one there is no callback entry: nothing can call it).
            from ebpfjit.isa.insn import decode, iter_pcs
            from ebpfjit.jit.lower.analysis import callback_target
            has_targets = any(callback_target(pc, insn) is not None
                              for pc, insn in iter_pcs(decode(code)))
            assert bool(prog.ptr.jit_callback) == has_targets
        return prog


def outcome(h: Harness, code: bytes, engine: str, budget=None):
    return h.outcome(code, engine, budget)


# --- bpf_loop ----------------------------------------------------------------------------------

def loop_prog(nr_loops: int, stop: int = -1) -> tuple[bytes, int]:
    """r0 = bpf_loop(n, cb, &sum, 0) * 1000 + sum; cb(i, ctx): *ctx += i; return i == stop."""
    main = (stdw(-8, 0) + mov(1, nr_loops) + ld_func(2, 0) + movr(3, 10) + addi(3, -8)
            + mov(4, 0) + call(181) + ldxdw(1, 10, -8) + muli(0, 1000) + addr(0, 1) + EXIT)
    cb_pc = slots(main)
    main = main.replace(ld_func(2, 0), ld_func(2, cb_pc - 3))      # lddw at pc 2
    cb = (ldxdw(3, 2) + addr(3, 1) + stxdw(2, 3) + mov(0, 0) + jne(1, stop, 1) + mov(0, 1)
          + EXIT)
    return main + cb, cb_pc


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("n,stop,expect", [
    (0, -1, 0),
    (1, -1, 1000),
    (10, -1, 10 * 1000 + 45),
    (10, 3, 4 * 1000 + 6),         # stops after the callback that returned 1 (i + 1 calls)
    (10, 0, 1 * 1000 + 0),
    ((1 << 23) + 1, -1, (-E2BIG * 1000) & M64),   # nr_loops > BPF_MAX_LOOPS: -E2BIG, no calls
])
def test_bpf_loop(engine, n, stop, expect):
    code, _ = loop_prog(n, stop)
    assert Harness().run(code, engine) == expect


@pytest.mark.parametrize("engine", ENGINES)
def test_bpf_loop_flags_einval(engine):
    code, _ = loop_prog(3)
    code = code.replace(mov(4, 0), mov(4, 1), 1)
    assert Harness().run(code, engine) == (-22 * 1000) & M64


def test_budget_consumption_equal():
    """Each callback spends one unit of budget (like a call) besides its instructions: both
    engines fail or succeed at exactly the same budgets, with the same fault pc."""
    code, _ = loop_prog(5, 3)
    h = Harness()
    seen = set()
    for budget in range(1, 80):
        a, b = outcome(h, code, "interp", budget), outcome(h, code, "jit", budget)
        assert a == b, budget
        seen.add(a[0])
    assert seen == {"budget", "ok"}


@pytest.mark.parametrize("engine", ENGINES)
def test_fault_in_callback_names_callback_pc(engine):
    # cb(i, ctx): r0 = *(u64 *)(i + 0): a null load at the callback's first instruction
    main = mov(1, 2) + ld_func(2, 5) + mov(3, 0) + mov(4, 0) + call(181) + EXIT
    cb_pc = slots(main)
    code = main + ldxdw(0, 1) + EXIT
    with pytest.raises(ExecutionError) as ei:
        Harness().run(code, engine)
    assert ei.value.kind == "oob_load" and ei.value.pc == cb_pc


@pytest.mark.parametrize("engine", ENGINES)
def test_nested_callback_depth_limit(engine):
    # cb calls bpf_loop(1, cb): every level takes a frame until the 8-frame limit.
    main = mov(1, 1) + ld_func(2, 5) + mov(3, 0) + mov(4, 0) + call(181) + EXIT
    cb = mov(1, 1) + ld_func(2, -2) + mov(3, 0) + mov(4, 0) + call(181) + mov(0, 0) + EXIT
    cb_pc = slots(main)
    with pytest.raises(ExecutionError) as ei:
        Harness().run(main + cb, engine)
    assert ei.value.kind == "call_depth"
    assert ei.value.pc == cb_pc + 5        # the bpf_loop call inside the callback


def test_nested_callbacks_agree_on_budget():
    main = mov(1, 1) + ld_func(2, 5) + mov(3, 0) + mov(4, 0) + call(181) + EXIT
    cb = mov(1, 1) + ld_func(2, -2) + mov(3, 0) + mov(4, 0) + call(181) + mov(0, 0) + EXIT
    h = Harness()
    seen = set()
    for budget in range(1, 100):
        a = outcome(h, main + cb, "interp", budget)
        assert a == outcome(h, main + cb, "jit", budget)
        seen.add(a[0])
    assert "budget" in seen


@pytest.mark.parametrize("engine", ENGINES)
def test_callback_value_must_name_a_function(engine):
    # A forged value (lddw src=0 of TAG | pc) naming a pc that is no function: a helper fault.
    main = mov(1, 1) + ins(0x18, 2, 0, 0, TAG | 7) + mov(3, 0) + mov(4, 0) + call(181) + EXIT
    code = main + mov(0, 0) + EXIT + mov(0, 0) + EXIT      # pc 7 is inside the tail, not a func
    with pytest.raises(ExecutionError) as ei:
        Harness().run(code, engine)
    assert ei.value.kind == "helper" and ei.value.pc == 5
    # pc 0 (the program itself) is no callback either
    code = mov(1, 1) + ld_func(2, -2) + mov(3, 0) + mov(4, 0) + call(181) + EXIT
    with pytest.raises(ExecutionError) as ei:
        Harness().run(code, engine)
    assert ei.value.kind == "helper"



@pytest.mark.parametrize("rel", [-100, -3, 50])
def test_callback_target_outside_the_program_is_refused_at_load(rel):
    # `lddw r2, func` counts slots from the next one (isa.jump_target): before slot 0 or past
    # the last slot it names no instruction, and the load-time check says so.
    code = mov(1, 1) + ld_func(2, rel) + mov(0, 0) + EXIT
    with pytest.raises(VerifierError, match=rf"callback at pc {1 + 1 + rel} is outside the program "
                                            r"of 5 slots") as ei:
        Program.from_bytes(code, type="xdp")
    assert ei.value.pc == 1

# --- for_each_map_elem -------------------------------------------------------------------------

def for_each_prog() -> bytes:
    """r0 = for_each(map0, cb, &sum, 0) * 1000 + sum; cb: sum += *value; stop when *key == 3."""
    main = (stdw(-8, 0) + ld_map(1, 0) + ld_func(2, 0) + movr(3, 10) + addi(3, -8) + mov(4, 0)
            + call(164) + ldxdw(1, 10, -8) + muli(0, 1000) + addr(0, 1) + EXIT)
    cb_pc = slots(main)
    main = main.replace(ld_func(2, 0), ld_func(2, cb_pc - 4))      # lddw at pc 3
    cb = (ldxdw(5, 3) + ldxdw(0, 4) + addr(0, 5) + stxdw(4, 0) + ldxw(5, 2) + mov(0, 0)
          + jne(5, 3, 1) + mov(0, 1) + EXIT)
    return main + cb


@pytest.mark.parametrize("engine", ENGINES)
def test_for_each_array(engine):
    m = Map.create(MapType.ARRAY, 4, 8, 6, 0, name="a")
    for i in range(6):
        m.update(struct.pack("<I", i), U64.pack(10 * (i + 1)))
    # keys 0..3 (stops at key 3): 4 calls, 10 + 20 + 30 + 40
    assert Harness([m]).run(for_each_prog(), engine) == 4 * 1000 + 100


@pytest.mark.parametrize("engine", ENGINES)
def test_for_each_hash(engine):
    m = Map.create(MapType.HASH, 4, 8, 16, 0, name="h")
    for k in (1, 5, 9):
        m.update(struct.pack("<I", k), U64.pack(k * 100))
    assert Harness([m]).run(for_each_prog(), engine) == 3 * 1000 + 1500
    small = Map.create(MapType.HASH, 4, 8, 16, 0, name="s")
    for k in (1, 5, 9, 3):                           # key 3 stops the walk (order unspecified)
        small.update(struct.pack("<I", k), U64.pack(k))
    r0 = Harness([small]).run(for_each_prog(), engine)
    assert r0 // 1000 in (1, 2, 3, 4) and 3 <= r0 % 1000 <= 18


def test_for_each_hash_engines_agree():
    m = Map.create(MapType.HASH, 4, 8, 16, 0, name="h")
    for k in (3, 1, 5, 9, 12):
        m.update(struct.pack("<I", k), U64.pack(k))
    h = Harness([m])
    assert h.run(for_each_prog(), "interp") == h.run(for_each_prog(), "jit")


# --- registers at bpf-to-bpf calls -------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_callee_entry_registers_are_zero(engine):
    # main: r0 = 9, r6..r9 = 7, call f; f returns r0 + r6 + r7 + r8 + r9 + 100 (= 100)
    main = (mov(0, 9) + mov(6, 7) + mov(7, 7) + mov(8, 7) + mov(9, 7) + mov(1, 1)
            + call_local(1) + EXIT)
    f = addr(0, 6) + addr(0, 7) + addr(0, 8) + addr(0, 9) + addi(0, 100) + EXIT
    assert Harness().run(main + f, engine) == 100


@pytest.mark.parametrize("engine", ENGINES)
def test_caller_r1_r5_are_zero_after_call(engine):
    # main: r1..r5 = 1..5, call f (which sets r1..r5 = 50 and returns 1000); r0 += r1..r5
    main = (mov(1, 1) + mov(2, 2) + mov(3, 3) + mov(4, 4) + mov(5, 5) + call_local(6)
            + addr(0, 1) + addr(0, 2) + addr(0, 3) + addr(0, 4) + addr(0, 5) + EXIT)
    f = mov(1, 50) + mov(2, 50) + mov(3, 50) + mov(4, 50) + mov(5, 50) + mov(0, 1000) + EXIT
    assert Harness().run(main + f, engine) == 1000


@pytest.mark.parametrize("engine", ENGINES)
def test_callee_saved_registers_survive_call(engine):
    main = mov(6, 6) + mov(9, 9) + call_local(3) + addr(0, 6) + addr(0, 9) + EXIT
    f = mov(6, 100) + mov(9, 100) + mov(0, 0) + EXIT
    assert Harness().run(main + f, engine) == 15


# --- bpf_spin_lock: never a hang ---------------------------------------------------------------

def lock_map() -> Map:
    return Map.create(MapType.ARRAY, 4, 16, 1, 0, name="locked", spin_lock_off=0)


def with_value(body: bytes) -> bytes:
    """r6 = lookup(map0, 0) (exit 0 if NULL), then `body`."""
    head = stw(-4, 0) + ld_map(1, 0) + movr(2, 10) + addi(2, -4) + call(1)
    return head + jne(0, 0, 1) + EXIT + movr(6, 0) + body


LOCK = movr(1, 6) + call(93)
UNLOCK = movr(1, 6) + call(94)
INCREMENT = with_value(LOCK + ldxdw(1, 6, 8) + addi(1, 1) + stxdw(6, 1, 8) + UNLOCK
                       + mov(0, 1) + EXIT)


def run_bounded(fn, seconds=20.0):
    """Run fn() in a thread; fail (rather than hang the suite) if it does not finish."""
    result = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            result["exc"] = exc
    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "hung (spin lock never released?)"
    if "exc" in result:
        raise result["exc"]
    return result["value"]


@pytest.mark.parametrize("engine", ENGINES)
def test_fault_while_holding_lock_releases_it(engine):
    m = lock_map()
    h = Harness([m])
    faulting = with_value(LOCK + mov(2, 0) + ldxdw(0, 2, 0) + EXIT)
    with pytest.raises(ExecutionError) as ei:
        h.run(faulting, engine)
    assert ei.value.kind == "oob_load"
    assert run_bounded(lambda: h.run(INCREMENT, engine)) == 1
    assert m.lookup(struct.pack("<I", 0)) == bytes(8) + U64.pack(1)


@pytest.mark.parametrize("engine", ENGINES)
def test_exit_while_holding_lock_is_a_fault(engine):
    m = lock_map()
    h = Harness([m])
    with pytest.raises(ExecutionError) as ei:
        h.run(with_value(LOCK + mov(0, 1) + EXIT), engine)
    assert ei.value.kind == "helper"
    assert "holding the bpf_spin_lock" in str(ei.value)
    assert run_bounded(lambda: h.run(INCREMENT, engine)) == 1



# Repeat loops (LoadedProgram.run_repeat) hold the state across runs: each run must still end as
# a single run would, and a run after a failed one start afresh. "jit-code" calls the machine
# code directly after a first full run.
REPEAT_ENGINES = ("interp", "jit", "jit-code")


def repeat_prog(h: Harness, code: bytes, engine: str):
    return h.load(code, "interp" if engine == "interp" else "jit")


@pytest.mark.parametrize("engine", REPEAT_ENGINES)
def test_repeat_loop_fault_in_a_later_run(engine):
    m = Map.create(MapType.ARRAY, 4, 8, 1, 0, name="count")
    h = Harness([m])
    # count += 1; the third run loads from address 0.
    head = ldxdw(1, 6) + addi(1, 1) + stxdw(6, 1) + jne(1, 3, 2) + mov(2, 0)
    prog = repeat_prog(h, with_value(head + ldxdw(0, 2) + movr(0, 1) + EXIT), engine)
    with pytest.raises(ExecutionError) as ei:
        prog.run_repeat(b"", 10, engine)
    assert (ei.value.kind, ei.value.pc, ei.value.addr) == ("oob_load", slots(with_value(head)), 0)
    assert m.lookup(struct.pack("<I", 0)) == U64.pack(3)     # runs 1 and 2 were not redone
    assert prog.run_repeat(b"", 2, engine)[0] == 5


@pytest.mark.parametrize("engine", REPEAT_ENGINES)
def test_repeat_loop_exit_holding_lock(engine):
    m = lock_map()
    h = Harness([m])
    prog = repeat_prog(h, with_value(LOCK + mov(0, 1) + EXIT), engine)
    with pytest.raises(ExecutionError) as ei:
        run_bounded(lambda: prog.run_repeat(b"", 5, engine))
    assert ei.value.kind == "helper" and "holding the bpf_spin_lock" in str(ei.value)
    assert run_bounded(lambda: h.run(INCREMENT, "interp")) == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_repeat_loop_exit_holding_lock_in_a_later_run(engine):
    m = lock_map()
    h = Harness([m])
    # value[8] += 1; the third run exits holding the lock.
    count = ldxdw(1, 6, 8) + addi(1, 1) + stxdw(6, 1, 8) + jne(1, 3, 2)
    prog = repeat_prog(h, with_value(count + LOCK + mov(0, 1) + EXIT), engine)
    with pytest.raises(ExecutionError) as ei:
        run_bounded(lambda: prog.run_repeat(b"", 10, engine))
    assert ei.value.kind == "helper" and "holding the bpf_spin_lock" in str(ei.value)
    assert m.lookup(struct.pack("<I", 0)) == bytes(8) + U64.pack(3)
    assert run_bounded(lambda: prog.run_repeat(b"", 2, engine))[0] == 1

@pytest.mark.parametrize("engine", ENGINES)
def test_relock_in_same_run_is_a_fault(engine):
    h = Harness([lock_map()])
    code = with_value(LOCK + LOCK + mov(0, 1) + EXIT)
    with pytest.raises(ExecutionError) as ei:
        run_bounded(lambda: h.run(code, engine))
    assert ei.value.kind == "helper" and "already held" in str(ei.value)
    assert ei.value.pc == slots(with_value(LOCK + movr(1, 6)))    # the second call
    assert run_bounded(lambda: h.run(INCREMENT, engine)) == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_unlock_not_held_is_a_fault(engine):
    h = Harness([lock_map()])
    with pytest.raises(ExecutionError) as ei:
        h.run(with_value(UNLOCK + mov(0, 1) + EXIT), engine)
    assert ei.value.kind == "helper" and "not held" in str(ei.value)


@pytest.mark.parametrize("engine", ENGINES)
def test_overwritten_lock_word_is_a_fault_not_a_hang(engine):
    # The program writes a thread id no live thread has into the lock word, then locks it.
    h = Harness([lock_map()])
    code = with_value(stw_at(6, 0, 0x3FFFFFF0) + LOCK + UNLOCK + mov(0, 1) + EXIT)
    with pytest.raises(ExecutionError) as ei:
        run_bounded(lambda: h.run(code, engine))
    assert "no live holder" in str(ei.value)


@pytest.mark.parametrize("engine", ENGINES)
def test_lock_held_by_outer_run_on_same_thread(engine):
    # A Python helper starts a nested run that takes the lock its outer run holds: a fault.
    m = lock_map()
    h = Harness([m])
    inner = {}

    def helper(*args):
        with pytest.raises(ExecutionError) as ei:
            h.run(INCREMENT, engine)
        inner["msg"] = str(ei.value)
        return 0
    h.env.register_helper(200, helper)
    code = with_value(LOCK + call(200) + UNLOCK + mov(0, 1) + EXIT)
    assert run_bounded(lambda: h.run(code, engine)) == 1
    assert "already held" in inner["msg"]


@pytest.mark.parametrize("engine", ENGINES)
def test_contended_lock_between_threads(engine):
    m = lock_map()
    h = Harness([m])
    progs = [h.load(INCREMENT, engine) for _ in range(2)]

    def worker(p):
        for _ in range(500):
            assert p.run(b"", engine=engine) == 1
    ts = [threading.Thread(target=worker, args=(p,), daemon=True) for p in progs]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
        assert not t.is_alive()
    assert m.lookup(struct.pack("<I", 0)) == bytes(8) + U64.pack(1000)


@pytest.mark.parametrize("engine", ENGINES)
def test_failing_packet_load_ends_just_the_callback(engine):
    # cb: r0 = ldabs_b[1000] (outside the empty packet): the callback ends with r0 = 0, so the
    # loop runs all 4 iterations.
    main = mov(1, 4) + ld_func(2, 5) + mov(3, 0) + mov(4, 0) + call(181) + EXIT
    cb = ins(0x30, 0, 0, 0, 1000) + mov(0, 1) + EXIT
    assert Harness().run(main + cb, engine) == 4


@pytest.mark.parametrize("engine", ENGINES)
def test_helper_fault_in_callback_propagates(engine):
    # bpf_tail_call(ctx, NULL, 0) inside a callback: its fault ends the whole run.
    main = mov(1, 1) + ld_func(2, 5) + mov(3, 0) + mov(4, 0) + call(181) + EXIT
    cb = mov(2, 0) + mov(3, 0) + call(12) + mov(0, 0) + EXIT
    with pytest.raises(ExecutionError) as ei:
        Harness().run(main + cb, engine)
    assert ei.value.kind == "helper"


def _raw_lookup_prog() -> bytes:
    # key = mem[0] (a raw-convention access: the JIT versions the entry on the mem region);
    # return *bpf_map_lookup_elem(map0, &key), or 99 for NULL.
    return (ins(0x71, 6, 1, 0) + ins(0x63, 10, 6, -4) + movr(2, 10) + addi(2, -4)
            + ld_map(1, 0) + call(1) + jeq(0, 0, 2) + ldxdw(0, 0) + EXIT + mov(0, 99) + EXIT)


@pytest.mark.parametrize("replaced", (False, True))
def test_raw_entry_lookup_with_builtin_or_replaced_helper(replaced):
    m = Map.create(MapType.ARRAY, 4, 8, 4, 0, name="a")
    for i in range(4):
        m.update(struct.pack("<I", i), U64.pack(7 * i + 1))
    h = Harness([m])
    if replaced:   # a user's helper 1: the JIT must call it, never the inlined lookup
        h.env.register_helper(1, lambda *args: 0)
    code = _raw_lookup_prog()
    for key in (0, 3, 4, 200):
        results = [h.load(code, engine).run(bytes([key, 0, 0, 0]), engine=engine)
                   for engine in ENGINES]
        assert results[0] == results[1]
        assert results[0] == (99 if replaced or key >= 4 else 7 * key + 1)
