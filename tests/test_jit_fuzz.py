"""Random decodable bytecode (not generated to be sensible) on the JIT: it compiles, and every run
ends with the interpreter's result or the interpreter's fault, never a crash or a JitError."""
from __future__ import annotations

import random

from test_runtime import U64, I, _random_insn, identity

from ebpfjit import insn as _insn
from ebpfjit.errors import DecodeError, ExecutionError
from ebpfjit.isa import Kind, Source
from ebpfjit.jit import compile_program
from ebpfjit.runtime import Env, LoadedProgram, ffi


def reads_frame_address(insn) -> bool:
    """Uses r10's value as data (not as a load/store base). The frame's address differs between
    engines (and in the kernel), so results computed from it are not comparable."""
    kind, info = insn.kind, insn.info
    if kind in (Kind.ALU, Kind.JCOND) and info.source is Source.X and insn.src == 10:
        return True
    if kind is Kind.JCOND and insn.dst == 10:
        return True
    return (kind in (Kind.STX, Kind.ATOMIC, Kind.LDIND) and insn.src == 10) or \
        (kind is Kind.CALLX and insn.dst == 10)


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
    env = Env()
    env.register_helper(5, identity)
    values = ffi.new("uint8_t[]", 64)
    m = ffi.new("struct ebpfjit_map_base *", {"value_size": 64, "max_entries": 1})
    m.values = values
    env.set_maps([m])
    env.add_region(values, 64, writable=True)
    cases = 0
    kinds: dict[str, int] = {}
    while cases < 400:
        n = rng.randrange(1, 20)
        insns = []
        while len(insns) < n:
            candidate = _random_insn(rng, n)
            if _insn.check_fields(candidate) is None:
                insns.append(candidate)
        insns.append(I(0x95))
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
