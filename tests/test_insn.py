"""Codec tests: every DecodeError kind with its pc and message, and a decode/encode fuzz."""
from __future__ import annotations

import struct

import pytest
from conftest import needs_conformance
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpfjit.cli import testdata
from ebpfjit.errors import DecodeError
from ebpfjit.isa.insn import Instruction, decode, encode, iter_pcs, slot_count

EXIT = "9500000000000000"

# (id, hex, pc, message). Each row breaks exactly one rule.
BAD = [
    ("length", "b700000007000000" "95000000000000", None, "bytecode length 15 is not a multiple of 8"),
    ("empty", "", None, "empty program"),
    ("unknown-opcode", "b700000007000000" "ff00000000000000" + EXIT, 1, "pc 1: unknown opcode 0xff"),
    ("unknown-opcode-0", "0000000000000000" + EXIT, 0, "pc 0: unknown opcode 0x00"),
    ("alu-imm-src", "0710000001000000" + EXIT, 0,
     "pc 0: ADD64_IMM (0710000001000000): reserved field src must be 0, not 1"),
    ("alu-imm-off", "0700010001000000" + EXIT, 0, "pc 0: ADD64_IMM (0700010001000000): invalid offset 1"),
    ("alu-reg-imm", "0f00000001000000" + EXIT, 0,
     "pc 0: ADD64_REG (0f00000001000000): reserved field imm must be 0, not 1"),
    ("alu-reg-off", "0f00010000000000" + EXIT, 0, "pc 0: ADD64_REG (0f00010000000000): invalid offset 1"),
    ("sdiv-off-2", "3700020001000000" + EXIT, 0, "pc 0: DIV64_IMM (3700020001000000): invalid offset 2"),
    ("movsx-off-4", "bf21040000000000" + EXIT, 0, "pc 0: MOV64_REG (bf21040000000000): invalid offset 4"),
    ("movsx32-from-32", "bc21200000000000" + EXIT, 0,
     "pc 0: MOV32_REG (bc21200000000000): invalid offset 32"),
    ("neg-imm", "8700000001000000" + EXIT, 0,
     "pc 0: NEG64 (8700000001000000): reserved field imm must be 0, not 1"),
    ("neg32-src", "8410000000000000" + EXIT, 0,
     "pc 0: NEG32 (8410000000000000): reserved field src must be 0, not 1"),
    ("endian-width", "d400000008000000" + EXIT, 0, "pc 0: LE (d400000008000000): invalid byte-swap width 8"),
    ("endian-src", "dc10000010000000" + EXIT, 0,
     "pc 0: BE (dc10000010000000): reserved field src must be 0, not 1"),
    ("endian-off", "d700010010000000" + EXIT, 0,
     "pc 0: BSWAP (d700010010000000): reserved field off must be 0, not 1"),
    ("ja-imm", "0500000001000000" + EXIT, 0,
     "pc 0: JA (0500000001000000): reserved field imm must be 0, not 1"),
    ("ja-dst", "0501000000000000" + EXIT, 0,
     "pc 0: JA (0501000000000000): reserved field dst must be 0, not 1"),
    ("ja32-off", "0600010000000000" + EXIT, 0,
     "pc 0: JA32 (0600010000000000): reserved field off must be 0, not 1"),
    ("jcond-imm-src", "1510000000000000" + EXIT, 0,
     "pc 0: JEQ_IMM (1510000000000000): reserved field src must be 0, not 1"),
    ("jcond-reg-imm", "1d00000001000000" + EXIT, 0,
     "pc 0: JEQ_REG (1d00000001000000): reserved field imm must be 0, not 1"),
    ("call-dst", "8501000000000000" + EXIT, 0,
     "pc 0: CALL (8501000000000000): reserved field dst must be 0, not 1"),
    ("call-off", "8500010000000000" + EXIT, 0,
     "pc 0: CALL (8500010000000000): reserved field off must be 0, not 1"),
    ("call-kind", "8530000000000000" + EXIT, 0, "pc 0: CALL (8530000000000000): invalid call kind src=3"),
    ("callx-imm", "8d02000001000000" + EXIT, 0,
     "pc 0: CALLX (8d02000001000000): reserved field imm must be 0, not 1"),
    ("exit-imm", "9500000001000000", 0, "pc 0: EXIT (9500000001000000): reserved field imm must be 0, not 1"),
    ("exit-dst", "9501000000000000", 0, "pc 0: EXIT (9501000000000000): reserved field dst must be 0, not 1"),
    ("lddw-off", "1800010000000000" "0000000000000000" + EXIT, 0,
     "pc 0: LD_DW_IMM (1800010000000000): reserved field off must be 0, not 1"),
    ("lddw-src", "1870000001000000" "0000000000000000" + EXIT, 0,
     "pc 0: LD_DW_IMM (1870000001000000): invalid lddw source src=7 (pseudo forms are 0-6)"),
    ("ldx-imm", "79a0f8ff01000000" + EXIT, 0,
     "pc 0: LD_DW_REG (79a0f8ff01000000): reserved field imm must be 0, not 1"),
    ("st-src", "7a1af8ff00000000" + EXIT, 0,
     "pc 0: ST_DW_IMM (7a1af8ff00000000): reserved field src must be 0, not 1"),
    ("stx-imm", "7b0af8ff01000000" + EXIT, 0,
     "pc 0: ST_DW_REG (7b0af8ff01000000): reserved field imm must be 0, not 1"),
    ("atomic-op", "db1af8ff02000000" + EXIT, 0,
     "pc 0: ATOMIC64 (db1af8ff02000000): invalid atomic operation 0x2"),
    ("ldabs-dst", "2001000004000000" + EXIT, 0,
     "pc 0: LD_ABS_W (2001000004000000): reserved field dst must be 0, not 1"),
    ("bad-dst", "b70b000000000000" + EXIT, 0, "pc 0: MOV64_IMM (b70b000000000000): invalid dst register r11"),
    ("bad-src", "bfb0000000000000" + EXIT, 0, "pc 0: MOV64_REG (bfb0000000000000): invalid src register r11"),
    ("r10-written-alu", "b70a000000000000" + EXIT, 0, "pc 0: MOV64_IMM (b70a000000000000): r10 is read-only"),
    ("r10-written-ldx", "79aa000000000000" + EXIT, 0, "pc 0: LD_DW_REG (79aa000000000000): r10 is read-only"),
    ("jump-forward-out", "0500050000000000" + EXIT, 0, "pc 0: JA: jump target 6 outside program of 2 slots"),
    ("jump-backward-out", "b700000000000000" "0500fdff00000000" + EXIT, 1,
     "pc 1: JA: jump target -1 outside program of 3 slots"),
    ("jcond-out", "1501010000000000" + EXIT, 0, "pc 0: JEQ_IMM: jump target 2 outside program of 2 slots"),
    ("ja32-out", "0600000005000000" + EXIT, 0, "pc 0: JA32: jump target 6 outside program of 2 slots"),
    ("call-local-out", "85100000fdffffff" + EXIT, 0, "pc 0: CALL: call target -2 outside program of 2 slots"),
    ("jump-into-lddw", "0500010000000000" "1800000001000000" "0000000002000000" + EXIT, 0,
     "pc 0: JA: jump target 2 is the second slot of an lddw"),
    ("lddw-truncated", "b700000000000000" "1800000001000000", 1, "pc 1: lddw is missing its second slot"),
    ("lddw-second-regs", "1800000001000000" "0001000002000000" + EXIT, 0,
     "pc 0: lddw second slot has non-zero opcode/regs/offset (0001000002000000)"),
    ("lddw-second-opcode", "1800000001000000" "9500000002000000" + EXIT, 0,
     "pc 0: lddw second slot has non-zero opcode/regs/offset (9500000002000000)"),
    ("lddw-second-off", "1800000001000000" "0000010002000000" + EXIT, 0,
     "pc 0: lddw second slot has non-zero opcode/regs/offset (0000010002000000)"),
    ("fall-off-end", "b700000000000000", 0,
     "pc 0: last instruction MOV64_IMM falls off the end of the program"),
    ("fall-off-after-jcond", "b700000000000000" "1501feff00000000", 1,
     "pc 1: last instruction JEQ_IMM falls off the end of the program"),
]


@pytest.mark.parametrize("hex_, pc, message", [row[1:] for row in BAD], ids=[row[0] for row in BAD])
def test_decode_error(hex_, pc, message):
    with pytest.raises(DecodeError) as info:
        decode(bytes.fromhex(hex_))
    assert info.value.pc == pc
    assert str(info.value) == message


def test_structure_checks_can_be_skipped():
    insns = decode(bytes.fromhex("0500050000000000" + EXIT), validate=False)
    assert insns[0].branch_target(0) == 6


def test_lddw_roundtrip_and_pcs():
    code = bytes.fromhex("18010000ffffffff" "0000000001000000" "b700000007000000" + EXIT)
    insns = decode(code)
    assert insns[0] == Instruction(0x18, 1, 0, 0, 0x1FFFFFFFF)
    assert (insns[0].imm_lo, insns[0].imm_hi) == (-1, 1)
    assert [pc for pc, _ in iter_pcs(insns)] == [0, 2, 3]
    assert slot_count(insns) == 4
    assert encode(insns) == code


@needs_conformance
def test_negative_suite_raw_files_fail_to_decode():
    raw = [p for p in testdata.negative_files() if p.stem.startswith("unused-")]
    assert len(raw) == 45
    for path in raw:
        with pytest.raises(DecodeError) as info:
            decode(testdata.load(path).code)
        assert info.value.pc == 0, path


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=96))
def test_fuzz_decode_is_exact_or_raises(data):
    for validate in (True, False):
        try:
            insns = decode(data, validate=validate)
        except DecodeError:
            continue
        assert encode(insns) == data


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted({0x07, 0x0f, 0x18, 0x05, 0x06, 0x15, 0x1d, 0x61, 0x79,
                                                    0x7b, 0x62, 0x85, 0x8d, 0x95, 0xbf, 0xbc, 0xd4,
                                                    0xd7, 0xdb, 0xc3, 0x37, 0x3f, 0x20, 0x40})),
                          st.integers(0, 255), st.integers(-3, 3), st.integers(-2, 300)),
                min_size=1, max_size=12))
def test_fuzz_plausible_programs(slots):
    """Mostly-valid opcodes with small fields reach the deeper checks (bytes alone rarely do)."""
    data = b"".join(struct.pack("<BBhi", op, regs, off, imm) for op, regs, off, imm in slots)
    try:
        insns = decode(data)
    except DecodeError:
        return
    assert encode(insns) == data
