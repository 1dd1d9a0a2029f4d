"""Adversarial programs for the JIT holes of issue 10 (findings 1, 2 and 9), on both engines.

Finding 1: a fetching atomic with r10 as its operand wrote the frame pointer, and the JIT's map
lookup trusted a key pointer derived from it. Finding 2: a map fact of r1 survived a bpf-to-bpf
call (which zeroes r1-r5). Finding 9: map helpers accepted any map of the process."""
from __future__ import annotations

import struct

import pytest
from ebpfjit._rt import lib

from ebpfjit import Program, runtime
from ebpfjit.errors import DecodeError, ExecutionError
from ebpfjit.isa.insn import Instruction, decode
from ebpfjit.isa.opcodes import OPCODES, AtomicOp, Kind, written_registers
from ebpfjit.jit import compile as jit
from ebpfjit.objects.spec import MapSpec, MapType
from ebpfjit.runtime.maps import Map

ENGINES = ("interp", "jit")


def ins(opcode, dst=0, src=0, off=0, imm=0) -> bytes:
    return Instruction(opcode, dst, src, off, imm).encode()


def lddw(dst, src, imm64) -> bytes:
    return Instruction(0x18, dst, src, 0, imm64).encode()      # both slots


def mov(dst, imm): return ins(0xB7, dst, 0, 0, imm)
def movr(dst, src): return ins(0xBF, dst, src)
def addi(dst, imm): return ins(0x07, dst, 0, 0, imm)
def stw(off, imm): return ins(0x62, 10, 0, off, imm)
def call(helper): return ins(0x85, 0, 0, 0, helper)
def call_local(rel): return ins(0x85, 0, 1, 0, rel)


EXIT = ins(0x95)
ATOMIC_DW, ATOMIC_W = 0xDB, 0xC3
FETCH_OPS = [imm for imm in (AtomicOp.ADD | AtomicOp.FETCH, AtomicOp.OR | AtomicOp.FETCH,
                             AtomicOp.AND | AtomicOp.FETCH, AtomicOp.XOR | AtomicOp.FETCH,
                             AtomicOp.XCHG)]


class Harness:
    """An env with the builtin and map helpers, `maps` as its object's maps."""

    def __init__(self, maps=()):
        self.env = runtime.Env()
        lib.ebpfjit_install_builtin_helpers(self.env.ptr)
        lib.ebpfjit_install_map_helpers(self.env.ptr)
        self.maps = list(maps)
        if self.maps:
            self.env.set_maps([m.ptr for m in self.maps])
            for m in self.maps:
                m.attach(self.env)
        self._keep = []

    def outcome(self, code: bytes, engine: str):
        prog = runtime.LoadedProgram(code, self.env)
        if engine == "jit":
            jc = jit.compile_program(code, cache=False)
            prog.set_jit_function(jc.address, jc)
        self._keep.append(prog)
        try:
            return ("ok", prog.run(b"", engine=engine))
        except ExecutionError as exc:
            return (exc.kind, exc.pc)


# --- the kill rules, as a table -----------------------------------------------------------

KILLS = [
    # (opcode, dst, src, imm, registers written)
    (0xB7, 3, 0, 7, (3,)),                          # mov r3, 7
    (0x0F, 4, 10, 0, (4,)),                         # add r4, r10 (reads r10, writes r4)
    (0x87, 2, 0, 0, (2,)),                          # neg
    (0xDC, 5, 0, 32, (5,)),                         # be32
    (0x79, 6, 10, 0, (6,)),                         # ldxdw r6, [r10]
    (0x91, 6, 1, 0, (6,)),                          # ldxsb
    (0x18, 7, 0, 1, (7,)),                          # lddw
    (0x7B, 10, 1, 0, ()),                           # stxdw [r10], r1: memory only
    (0x7A, 10, 0, 1, ()),                           # stdw
    (ATOMIC_DW, 10, 1, AtomicOp.ADD, ()),           # lock add: no register
    (ATOMIC_DW, 1, 2, AtomicOp.ADD | AtomicOp.FETCH, (2,)),
    (ATOMIC_W, 1, 3, AtomicOp.XOR | AtomicOp.FETCH, (3,)),
    (ATOMIC_DW, 1, 4, AtomicOp.XCHG, (4,)),
    (ATOMIC_DW, 1, 4, AtomicOp.CMPXCHG, (0,)),
    (0x85, 0, 0, 1, (0, 1, 2, 3, 4, 5)),            # helper call
    (0x85, 0, 1, 3, (0, 1, 2, 3, 4, 5)),            # bpf-to-bpf call: r1-r5 zeroed after
    (0x85, 0, 2, 3, (0, 1, 2, 3, 4, 5)),            # kfunc
    (0x8D, 2, 0, 0, (0, 1, 2, 3, 4, 5)),            # callx
    (0x30, 0, 0, 4, (0, 1, 2, 3, 4, 5)),            # ldabsb: r0, r1-r5 clobbered
    (0x40, 0, 3, 0, (0, 1, 2, 3, 4, 5)),            # ldindh
    (0x15, 1, 0, 0, ()),                            # jeq
    (0x95, 0, 0, 0, ()),                            # exit
]


@pytest.mark.parametrize("opcode,dst,src,imm,want", KILLS)
def test_written_registers_table(opcode, dst, src, imm, want):
    assert written_registers(OPCODES[opcode], dst, src, imm) == want
    assert Instruction(opcode, dst, src, 0, imm).writes == want


def test_every_form_that_writes_r10_is_rejected_naming_its_pc():
    """For every opcode, r10 in each operand: the decoder rejects exactly the forms whose
    written registers (the ISA table's rule) contain r10."""
    rejected = 0
    for opcode, info in OPCODES.items():
        imms = sorted({0, 16, 1} | ({int(i) for i in AtomicOp} if info.kind is Kind.ATOMIC
                                    else set()))
        for dst, src in ((10, 1), (1, 10), (10, 10)):
            for imm in imms:
                slot = Instruction(opcode, dst, src, 0, imm)
                code = mov(0, 0) + (lddw(dst, src, imm) if info.kind is Kind.LDDW
                                    else slot.encode()) + EXIT
                writes_fp = 10 in slot.writes
                try:
                    decode(code)
                except DecodeError as exc:
                    if writes_fp:
                        assert exc.pc == 1, str(exc)
                        rejected += 1
                    continue
                assert not writes_fp, f"{info.name} dst=r{dst} src=r{src} imm={imm:#x}"
    assert rejected > 50


# --- finding 1 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("imm", FETCH_OPS + [AtomicOp.CMPXCHG])
@pytest.mark.parametrize("opcode", (ATOMIC_DW, ATOMIC_W))
def test_fetch_atomic_with_r10_operand_is_rejected_at_load(opcode, imm):
    """The exploit: r10 = xchg(...), then a map lookup keyed at r10 - 8 reads host memory
    through a one-byte-key hash map of k -> k. Now refused at decode (cmpxchg writes r0, so
    with r10 as src it is legal: it only reads r10)."""
    m = Map(MapSpec("k2k", MapType.HASH, 1, 1, 256))
    for k in range(256):
        m[bytes([k])] = bytes([k])
    code = (ins(0x7A, 10, 0, -16, 0) + movr(1, 10) + addi(1, -16)
            + ins(opcode, 1, 10, 0, imm)                       # pc 3: the r10 write
            + lddw(1, 1, 0) + movr(2, 10) + addi(2, -8) + call(1)
            + mov(1, 0) + ins(0x15, 0, 0, 1, 0) + ins(0x71, 0, 0, 0) + EXIT)
    if imm == AtomicOp.CMPXCHG:    # r0 = 0 (the old value) was written, r10 is intact
        h = Harness([m])
        assert [h.outcome(code, e) for e in ENGINES] == [("ok", 0)] * 2
        return
    with pytest.raises(DecodeError) as exc:
        decode(code)
    assert exc.value.pc == 3
    with pytest.raises(DecodeError):
        Program.from_bytes(code)
    with pytest.raises(DecodeError):
        jit.compile_program(code, cache=False)


# --- finding 2 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mtype", (MapType.ARRAY, MapType.HASH))
@pytest.mark.parametrize("engine", ENGINES)
def test_map_fact_does_not_survive_a_local_call(engine, mtype):
    """r1 = map; call subprog (r1-r5 are 0 after it); key at r10-4; map_lookup(r1 = 0, key):
    the helper fails cleanly at its pc on both engines (the JIT dereferenced NULL, or with an
    ARRAY map returned a value pointer)."""
    m = Map(MapSpec("m", mtype, 4, 8, 4))
    if mtype is MapType.HASH:
        m[struct.pack("<I", 0)] = bytes(8)
    sub = mov(0, 0) + EXIT
    code = lddw(1, 1, 0) + call_local(6) + stw(-4, 0) + movr(2, 10) + addi(2, -4) + call(1) \
        + mov(0, 1) + EXIT + sub
    assert Harness([m]).outcome(code, engine) == ("helper", 6)


# --- finding 9 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("helper", (1, 2, 3))
@pytest.mark.parametrize("engine", ENGINES)
def test_map_of_another_object_is_refused(engine, helper):
    """Object A owns a hash map; object B (no maps) learns its address (lddw of the immediate)
    and calls lookup/update/delete on it: the helper fails cleanly and A's map is unchanged."""
    victim = Map(MapSpec("victim", MapType.HASH, 4, 8, 4))
    key = struct.pack("<I", 1)
    victim[key] = struct.pack("<Q", 7)
    owner = Harness([victim])                                 # A: the map is its own
    code = (stw(-4, 1) + ins(0x7A, 10, 0, -16, 0x41) + lddw(1, 0, victim.address)
            + movr(2, 10) + addi(2, -4) + movr(3, 10) + addi(3, -16) + mov(4, 0)
            + call(helper) + mov(0, 0) + EXIT)
    assert owner.outcome(code, engine) == ("ok", 0)          # its own map: accepted
    victim[key] = struct.pack("<Q", 7)
    assert Harness().outcome(code, engine) == ("helper", 9)
    assert victim[key] == struct.pack("<Q", 7)
