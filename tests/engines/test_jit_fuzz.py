"""Random decodable bytecode (not generated to be sensible) on the JIT: it compiles, and every run
ends with the interpreter's result or the interpreter's fault, never a crash or a JitError."""
from __future__ import annotations

import random

from ebpfjit.errors import DecodeError, ExecutionError
from ebpfjit.isa import insn as _insn
from ebpfjit.isa.insn import Instruction as I
from ebpfjit.isa.opcodes import Kind
from ebpfjit.jit.compile import compile_program
from ebpfjit.oracle.fuzzgen import random_insn, random_insns, reads_frame_address
from ebpfjit.runtime import Env, LoadedProgram
from tests.support.engines import U64, Harness, fuzz_harness, identity


def _outcome(prog, engine, buf, mem, budget):
    """Run on `buf` reset to `mem`: the same address for both engines (programs may branch on
    pointer bits), then the result and the memory it left."""
    buf[:] = mem
    try:
        result = ("ok", prog.run(buf, engine=engine, budget=budget))
    except ExecutionError as exc:
        result = ("error", exc.kind, exc.pc)
    return result + (bytes(buf),)


def test_random_bytecode_jit_matches_interpreter():
    rng = random.Random(9669)
    harness = fuzz_harness()
    env = harness.env
    cases = 0
    kinds: dict[str, int] = {}
    while cases < 400:
        insns = random_insns(rng, rng.randrange(1, 20)) + [I(0x95)]
        if any(reads_frame_address(i) for i in insns):
            continue
        code = _insn.encode(insns)
        try:
            _insn.decode(code)
        except DecodeError:
            continue
        cases += 1
        prog = LoadedProgram(code, env)
        jit_code = compile_program(code, opt_level=rng.choice((0, 2)), cache=False)
        prog.set_jit_function(jit_code.address, jit_code)
        mem = bytes(rng.getrandbits(8) for _ in range(rng.choice((0, 8, 64))))
        buf = bytearray(len(mem))
        budget = rng.choice((1, 50, 2000))
        want = _outcome(prog, "interp", buf, mem, budget)
        got = _outcome(prog, "jit", buf, mem, budget)
        assert got == want, f"{code.hex()} mem={mem.hex()} budget={budget}"
        if want[0] == "ok":
            assert 0 <= want[1] <= U64
        kinds[want[0] if want[0] == "ok" else want[1]] = kinds.get(want[0], 0) + 1
    assert len(kinds) >= 4, kinds


# --- structured: map lookups, local calls between them and their accesses, r10 everywhere ----

_FILLER_KINDS = (Kind.ALU, Kind.NEG, Kind.ENDIAN, Kind.LDX, Kind.LDXSX, Kind.ST, Kind.STX,
                 Kind.ATOMIC)


def _filler(rng: random.Random) -> list:
    """0-2 straight-line instructions from the random generator (no control flow), r10 as
    every operand they may take, except uses of its value as data (not comparable)."""
    out = []
    while len(out) < rng.randrange(3):
        cand = random_insn(rng, 4)
        # Accesses past a frame's end (r10 + off >= 0) are kept: both engines fault on every
        # r10-based access outside the frame (tests/security/test_frame_bounds.py).
        if (cand.kind in _FILLER_KINDS and _insn.check_fields(cand) is None
                and not reads_frame_address(cand)):
            out.append(cand)
    return out


def _structured_program(rng: random.Random) -> list:
    """r1 = map 0; [local call]; key at r10-4; [local call]; lookup; [local call]; access
    through r0, random filler between every step. The callee does filler on its own frame."""
    def local_call():
        return [I(0x85, 0, 1, 0, 0)] if rng.random() < 0.4 else []   # target patched below
    key = rng.choice((0, 1, 3, 4, -1))
    body = [I(0x62, 10, 0, -4, key)]
    body += _filler(rng) + [I(0x18, 1, 1, 0, 0)] + local_call() + _filler(rng)
    body += [I(0xBF, 2, 10, 0, 0), I(0x07, 2, 0, 0, rng.choice((-4, -4, -8, -2)))]
    body += local_call() + _filler(rng) + [I(0x85, 0, 0, 0, 1)] + local_call()
    access = rng.choice((I(0x79, 0, 0, rng.choice((0, 8, 12, -8)), 0),
                         I(0x7A, 0, 0, rng.choice((0, 8, 16)), 7),
                         I(0xDB, 0, 0, 0, rng.choice((0x00, 0xE1))) if rng.random() < 0.5
                         else I(0xBF, 0, 0, 0, 0)))
    body += _filler(rng) + [I(0x55, 0, 0, 1, 0), I(0x95), access, I(0xB7, 0, 0, 0, 0), I(0x95)]
    callee = _filler(rng) + [I(0xB7, 0, 0, 0, rng.randrange(4)), I(0x95)]
    start = _insn.slot_count(body)
    pcs = list(_insn.iter_pcs(body))
    fixed = [I(0x85, 0, 1, 0, start - pc - 1) if i.kind is Kind.CALL and i.src == 1 else i
             for pc, i in pcs]
    return fixed + callee


def test_structured_map_call_programs_agree_on_both_engines():
    from ebpfjit.objects.spec import MapSpec, MapType
    from ebpfjit.runtime.maps import Map

    rng = random.Random(0x10A7)
    maps = [Map(MapSpec("a", MapType.ARRAY, 4, 16, 4)), Map(MapSpec("h", MapType.HASH, 4, 16, 4))]
    envs = [(Harness([m]).env, m) for m in maps]   # builtin and map helpers, m as map 0
    kinds: dict = {}
    for case in range(240):
        env, m = envs[case % 2]
        code = _insn.encode(_structured_program(rng))
        _insn.decode(code)
        prog = LoadedProgram(code, env)
        jit_code = compile_program(code, opt_level=rng.choice((0, 2)), cache=False)
        prog.set_jit_function(jit_code.address, jit_code)
        results = []
        for engine in ("interp", "jit"):
            for k in range(3):
                m[k] = bytes(range(k, k + 16))
            try:
                results.append(("ok", prog.run(b"", engine=engine)))
            except ExecutionError as exc:
                results.append(("error", exc.kind, exc.pc))
            results[-1] += (tuple(sorted(m.items())),)
        assert results[0] == results[1], code.hex()
        kinds[results[0][:2] if results[0][0] == "error" else "ok"] = 1
    assert len(kinds) >= 3, kinds


def test_r10_as_every_operand_of_every_form_agrees():
    """Every opcode with r10 as dst, src or both: the decoder rejects exactly the forms that
    write r10 (both engines load through it); the others run on both engines to the same
    outcome class (values computed from r10's address may differ, so only ok/error kind)."""
    from ebpfjit.isa.opcodes import OPCODES, AtomicOp

    env = Env()
    env.register_helper(5, identity)
    rejected = ran = 0
    for opcode, info in sorted(OPCODES.items()):
        if info.kind in (Kind.EXIT, Kind.JA):
            continue
        imms = ({int(i) for i in AtomicOp} - {AtomicOp.FETCH} if info.kind is Kind.ATOMIC
                else {16 if info.kind is Kind.ENDIAN else 5 if info.kind is Kind.CALL else 0})
        for dst, src in ((10, 1), (1, 10), (10, 10)):
            for imm in sorted(imms):
                one = I(opcode, dst, src, -8 if info.is_memory else 0, imm)
                if info.kind is Kind.JCOND:
                    one = I(opcode, dst, src, 0, imm)
                code = _insn.encode([I(0xB7, 1, 0, 0, 0), one, I(0x95)])
                try:
                    _insn.decode(code)
                except DecodeError as exc:
                    assert exc.pc == 1
                    rejected += 10 in one.writes
                    continue
                assert 10 not in one.writes, one
                ran += 1
                prog = LoadedProgram(code, env)
                jit_code = compile_program(code, cache=False)
                prog.set_jit_function(jit_code.address, jit_code)
                outcomes = []
                for engine in ("interp", "jit"):
                    try:
                        prog.run(bytearray(8), engine=engine)
                        outcomes.append("ok")
                    except ExecutionError as exc:
                        outcomes.append(exc.kind)
                assert outcomes[0] == outcomes[1], (one, outcomes)
    assert rejected > 40 and ran > 40, (rejected, ran)
