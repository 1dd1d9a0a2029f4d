"""Assembler tests: one encode case per instruction form, exact error messages, the suites."""
from __future__ import annotations

import pytest
from conftest import conformance_params, needs_conformance

from ebpfjit.cli import testdata
from ebpfjit.errors import AssemblerError
from ebpfjit.isa.asm import MNEMONICS, assemble, assemble_insns, parse
from ebpfjit.isa.insn import Instruction, decode, encode

# (text, hex of the encoding). The bytes were cross-checked with llvm-objdump-19 (see
# test_disasm.py, which holds its output for the same bytes).
ENCODE = [
    ('add %r1, 2', "0701000002000000"),
    ('add %r1, -2', "07010000feffffff"),
    ('add %r1, 0x7fffffff', "07010000ffffff7f"),
    ('add %r1, %r2', "0f21000000000000"),
    ('add32 %r1, 2', "0401000002000000"),
    ('add32 %r1, -2', "04010000feffffff"),
    ('add32 %r1, %r2', "0c21000000000000"),
    ('sub %r1, 3', "1701000003000000"),
    ('sub32 %r1, %r2', "1c21000000000000"),
    ('mul %r1, 3', "2701000003000000"),
    ('mul32 %r1, %r2', "2c21000000000000"),
    ('div %r1, 3', "3701000003000000"),
    ('div32 %r1, %r2', "3c21000000000000"),
    ('sdiv %r1, 3', "3701010003000000"),
    ('sdiv %r1, %r2', "3f21010000000000"),
    ('sdiv32 %r1, 3', "3401010003000000"),
    ('sdiv32 %r1, %r2', "3c21010000000000"),
    ('mod %r1, 3', "9701000003000000"),
    ('mod32 %r1, %r2', "9c21000000000000"),
    ('smod %r1, -3', "97010100fdffffff"),
    ('smod32 %r1, %r2', "9c21010000000000"),
    ('or %r1, 0xff', "47010000ff000000"),
    ('and32 %r1, 0xff', "54010000ff000000"),
    ('lsh %r1, 3', "6701000003000000"),
    ('rsh32 %r1, %r2', "7c21000000000000"),
    ('arsh %r1, 3', "c701000003000000"),
    ('arsh32 %r1, %r2', "cc21000000000000"),
    ('xor %r1, %r2', "af21000000000000"),
    ('neg %r1', "8701000000000000"),
    ('neg32 %r1', "8401000000000000"),
    ('mov %r1, 0', "b701000000000000"),
    ('mov %r1, -1', "b7010000ffffffff"),
    ('mov %r1, %r2', "bf21000000000000"),
    ('mov32 %r1, 0xffffffff', "b4010000ffffffff"),
    ('mov32 %r1, %r2', "bc21000000000000"),
    ('movsx864 %r1, %r2', "bf21080000000000"),
    ('movsx1664 %r1, %r2', "bf21100000000000"),
    ('movsx3264 %r1, %r2', "bf21200000000000"),
    ('movsx832 %r1, %r2', "bc21080000000000"),
    ('movsx1632 %r1, %r2', "bc21100000000000"),
    ('le16 %r1', "d401000010000000"),
    ('le32 %r1', "d401000020000000"),
    ('le64 %r1', "d401000040000000"),
    ('be16 %r1', "dc01000010000000"),
    ('be32 %r1', "dc01000020000000"),
    ('be64 %r1', "dc01000040000000"),
    ('bswap16 %r1', "d701000010000000"),
    ('bswap32 %r1', "d701000020000000"),
    ('bswap64 %r1', "d701000040000000"),
    ('lddw %r1, 0x100000000', "18010000000000000000000001000000"),
    ('lddw %r1, -1', "18010000ffffffff00000000ffffffff"),
    ('lddw %r1, 7', "18010000070000000000000000000000"),
    ('ldxb %r0, [%r1+4]', "7110040000000000"),
    ('ldxh %r0, [%r1-4]', "6910fcff00000000"),
    ('ldxw %r0, [%r1]', "6110000000000000"),
    ('ldxdw %r0, [%r10-8]', "79a0f8ff00000000"),
    ('ldxsb %r0, [%r1+4]', "9110040000000000"),
    ('ldxsh %r0, [%r1+4]', "8910040000000000"),
    ('ldxsw %r0, [%r1+4]', "8110040000000000"),
    ('stb [%r10-8], 1', "720af8ff01000000"),
    ('sth [%r10-8], -1', "6a0af8ffffffffff"),
    ('stw [%r10-8], 0x12345678', "620af8ff78563412"),
    ('stdw [%r10-8], -2', "7a0af8fffeffffff"),
    ('stxb [%r10-8], %r1', "731af8ff00000000"),
    ('stxh [%r10-8], %r1', "6b1af8ff00000000"),
    ('stxw [%r10-8], %r1', "631af8ff00000000"),
    ('stxdw [%r10-8], %r1', "7b1af8ff00000000"),
    ('lock add [%r10-8], %r1', "db1af8ff00000000"),
    ('lock add32 [%r10-8], %r1', "c31af8ff00000000"),
    ('lock or [%r1+0], %r2', "db21000040000000"),
    ('lock and32 [%r1+0], %r2', "c321000050000000"),
    ('lock xor [%r1+0], %r2', "db210000a0000000"),
    ('lock fetch add [%r1+8], %r2', "db21080001000000"),
    ('lock fetch add32 [%r1+8], %r2', "c321080001000000"),
    ('lock fetch or [%r1+8], %r2', "db21080041000000"),
    ('lock fetch and32 [%r1+8], %r2', "c321080051000000"),
    ('lock fetch xor [%r1+8], %r2', "db210800a1000000"),
    ('lock xchg [%r1+8], %r2', "db210800e1000000"),
    ('lock xchg32 [%r1+8], %r2', "c3210800e1000000"),
    ('lock cmpxchg [%r1+8], %r2', "db210800f1000000"),
    ('lock cmpxchg32 [%r1+8], %r2', "c3210800f1000000"),
    ('ja +1', "0500010000000000"),
    ('ja -1', "0500ffff00000000"),
    ('ja32 +3', "0600000003000000"),
    ('ja32 -3', "06000000fdffffff"),
    ('jeq %r1, 0, +2', "1501020000000000"),
    ('jeq %r1, %r2, +2', "1d21020000000000"),
    ('jgt %r1, -1, +2', "25010200ffffffff"),
    ('jge %r1, %r2, -2', "3d21feff00000000"),
    ('jlt %r1, 5, +2', "a501020005000000"),
    ('jle %r1, %r2, +2', "bd21020000000000"),
    ('jset %r1, 0x80000000, +2', "4501020000000080"),
    ('jne %r1, %r2, +2', "5d21020000000000"),
    ('jsgt %r1, -5, +2', "65010200fbffffff"),
    ('jsge %r1, %r2, +2', "7d21020000000000"),
    ('jslt %r1, 5, +2', "c501020005000000"),
    ('jsle %r1, %r2, +2', "dd21020000000000"),
    ('jeq32 %r1, 0, +2', "1601020000000000"),
    ('jeq32 %r1, %r2, +2', "1e21020000000000"),
    ('jgt32 %r1, -1, +2', "26010200ffffffff"),
    ('jsle32 %r1, %r2, +2', "de21020000000000"),
    ('jset32 %r1, 1, +2', "4601020001000000"),
    ('call 5', "8500000005000000"),
    ('call local +1', "8510000001000000"),
    ('call local -3', "85100000fdffffff"),
    ('call %r2', "8d02000000000000"),
    ('call runtime 7', "8520000007000000"),
    ('ldabsw 4', "2000000004000000"),
    ('ldabsh 4', "2800000004000000"),
    ('ldabsb 4', "3000000004000000"),
    ('ldindw %r1, 4', "4010000004000000"),
    ('ldindb %r1, -4', "50100000fcffffff"),
    ('exit', "9500000000000000"),
    ('call helper 5', "8500000005000000"),
    ('call helper %r3', "8d03000000000000"),
    ('swap16 %r1', "d701000010000000"),
    ('swap64 %r1', "d701000040000000"),
    ('mov r1, r2', "bf21000000000000"),
    ('lddw %r1, 0xffffffffffffffff', "18010000ffffffff00000000ffffffff"),
    ('lddw %r1, 2147483648', "18010000000000800000000000000000"),
    ('lddw %r1, -9223372036854775808', "18010000000000000000000000000080"),
    ('add32 %r1, 0xffffffff', "04010000ffffffff"),
    ('add %r1, -2147483648', "0701000000000080"),
    ('stxw [%r1], %r2', "6321000000000000"),
    ('ldxw %r0, [%r1+0x7fff]', "6110ff7f00000000"),
    ('ldxw %r0, [%r1-32768]', "6110008000000000"),
    ('ldxw %r0, [%r1+0xffff]', "6110ffff00000000"),
    ('ldxw %r0, [ %r1 + 4 ]', "6110040000000000"),
    ('jeq %r1, 0xffffffff, -32768', "15010080ffffffff"),
    ('ja +32767', "0500ff7f00000000"),
    ('ja32 +2147483647', "06000000ffffff7f"),
    ('ja32 -2147483648', "0600000000000080"),
    ('mov %r1, 0x80000000', "b701000000000080"),
    ('stw [%r1-0x4], 1', "6201fcff01000000"),
    ('and %r1, %r2', "5f21000000000000"),
    ('or32 %r1, 5', "4401000005000000"),
    ('lsh32 %r1, %r2', "6c21000000000000"),
    ('rsh %r1, 63', "770100003f000000"),
    ('xor32 %r1, -1', "a4010000ffffffff"),
    ('swap32 %r1', "d701000020000000"),
    ('jge32 %r1, %r2, +1', "3e21010000000000"),
    ('jle32 %r1, 7, +1', "b601010007000000"),
    ('jlt32 %r1, %r2, -1', "ae21ffff00000000"),
    ('jne32 %r1, 0x10, +1', "5601010010000000"),
    ('jsge32 %r1, -1, +1', "76010100ffffffff"),
    ('jsgt32 %r1, %r2, +1', "6e21010000000000"),
    ('jslt32 %r1, 0, +1', "c601010000000000"),
    ('ldindh %r2, 0x10', "4820000010000000"),
]


@pytest.mark.parametrize("text, hex_", ENCODE, ids=[t for t, _ in ENCODE])
def test_encode(text, hex_):
    assert assemble(text).hex() == hex_


def test_every_mnemonic_has_an_encode_case():
    used = {text.split()[0] for text, _ in ENCODE}
    assert set(MNEMONICS) <= used


def test_lddw_is_one_instruction_of_two_slots():
    insns = assemble_insns("lddw %r1, 0x1122334455667788\nexit")
    assert insns[0] == Instruction(0x18, 1, 0, 0, 0x1122334455667788)
    assert len(encode(insns)) == 24


def test_labels_count_slots_and_exit_is_implicit():
    text = """
        jeq %r1, 0, skip      # comment
        lddw %r0, 1
    skip:
        ja exit
        mov %r0, 2
        exit
        exit
    """
    insns = assemble_insns(text)
    assert insns[0].off == 2     # over the two lddw slots
    assert insns[2].off == 1     # first exit, not the second
    assert decode(encode(insns)) == insns


def test_explicit_exit_label_wins():
    insns = assemble_insns("ja exit\nexit\nexit:\nexit")
    assert insns[0].off == 1


def test_label_on_instruction_line_and_at_end():
    insns = assemble_insns("a: ja b\nb: exit")
    assert insns[0].off == 0
    assert assemble_insns("ja end\nexit\nend:")[0].off == 1


def test_call_local_label_and_relative():
    insns = assemble_insns("call local f\nexit\nf:\nmov %r0, 1\nexit")
    assert (insns[0].src, insns[0].imm) == (1, 1)
    assert assemble_insns("call local -1")[0].imm == -1


def test_parser_is_separate_from_encoder():
    (st,) = parse("  lock fetch add32 [%r10-4], %r1  # x")
    assert st.mnemonic == "lock"
    assert [str(op) for op in st.operands] == ["fetch", "add32", "[%r10-4]", "%r1"]


ERRORS = [
    ("mov %r0, 1\nexit\nadd %r11, 1", 3, "line 3 ('add %r11, 1'): invalid register r11"),
    ("or %r0, %r50", 1, "line 1 ('or %r0, %r50'): invalid register r50"),
    ("add %rx, 1", 1, "line 1 ('add %rx, 1'): invalid register rx"),
    ("mov32 %r0, 2147483648", 1,
     "line 1 ('mov32 %r0, 2147483648'): immediate 2147483648 out of range for a 32-bit field"),
    ("mov32 %r0, -2147483649", 1,
     "line 1 ('mov32 %r0, -2147483649'): immediate -2147483649 out of range for a 32-bit field"),
    ("mov32 %r0, 0x100000000", 1,
     "line 1 ('mov32 %r0, 0x100000000'): immediate 0x100000000 out of range for a 32-bit field"),
    ("add %r0, 4294967296", 1,
     "line 1 ('add %r0, 4294967296'): immediate 4294967296 out of range for a 32-bit field"),
    ("lddw %r0, 0x10000000000000000", 1, "line 1 ('lddw %r0, 0x10000000000000000'): "
     "immediate 0x10000000000000000 out of range for a 64-bit field"),
    ("lddw %r0, -9223372036854775809", 1, "line 1 ('lddw %r0, -9223372036854775809'): "
     "immediate -9223372036854775809 out of range for a 64-bit field"),
    ("lddw %r0", 1, "line 1 ('lddw %r0'): wrong number of operands for 'lddw': expected 2 operands, got 1"),
    ("ldxq %r0, %r1", 1, "line 1 ('ldxq %r0, %r1'): unknown mnemonic 'ldxq'"),
    ("ldxb %r0, %r1", 1, "line 1 ('ldxb %r0, %r1'): expected a memory operand [%rN+off], got '%r1'"),
    ("ldxb %r0, [%r1+0x10000]", 1,
     "line 1 ('ldxb %r0, [%r1+0x10000]'): offset +0x10000 out of range for a 16-bit field"),
    ("ldxb %r0, [%r1-32769]", 1,
     "line 1 ('ldxb %r0, [%r1-32769]'): offset -32769 out of range for a 16-bit field"),
    ("ldxb %r0, [%r1+foo]", 1, "line 1 ('ldxb %r0, [%r1+foo]'): invalid offset 'foo' in memory operand"),
    ("ldxb %r0, [%r1+4", 1, "line 1 ('ldxb %r0, [%r1+4'): malformed memory operand '[%r1+4'"),
    ("mov %r0, 0\nja foo\nexit", 2, "line 2 ('ja foo'): unknown label 'foo'"),
    ("ja 3\nexit", 1, "line 1 ('ja 3'): invalid jump target '3' (expected a label or +N/-N)"),
    ("ja +40000", 1, "line 1 ('ja +40000'): jump offset 40000 out of range for a 16-bit field"),
    ("ja -32769", 1, "line 1 ('ja -32769'): jump offset -32769 out of range for a 16-bit field"),
    ("ja32 +2147483648", 1,
     "line 1 ('ja32 +2147483648'): jump offset 2147483648 out of range for a 32-bit field"),
    ("lock or [%r10-8]", 1, "line 1 ('lock or [%r10-8]'): invalid number of operands for lock: "
     "expected 'lock [fetch] op[32] [%rN+off], %rM'"),
    ("lock", 1, "line 1 ('lock'): invalid number of operands for lock: "
     "expected 'lock [fetch] op[32] [%rN+off], %rM'"),
    ("lock nand [%r10-8], %r1", 1, "line 1 ('lock nand [%r10-8], %r1'): invalid atomic operation 'nand'"),
    ("lock fetch xchg [%r10-8], %r1", 1,
     "line 1 ('lock fetch xchg [%r10-8], %r1'): invalid atomic operation 'fetch xchg'"),
    ("call foo 5", 1,
     "line 1 ('call foo 5'): invalid call mode 'foo' (expected helper, local or runtime)"),
    ("call local nowhere", 1, "line 1 ('call local nowhere'): unknown label 'nowhere'"),
    ("neg %r1, 2", 1, "line 1 ('neg %r1, 2'): wrong number of operands for 'neg': expected 1 operand, got 2"),
    ("exit 1", 1, "line 1 ('exit 1'): wrong number of operands for 'exit': expected 0 operands, got 1"),
    ("add 1, %r1", 1, "line 1 ('add 1, %r1'): expected a register, got '1'"),
    ("stxw [%r1], 5", 1, "line 1 ('stxw [%r1], 5'): expected a register, got '5'"),
    ("stw [%r1], %r5", 1, "line 1 ('stw [%r1], %r5'): expected an immediate, got '%r5'"),
    ("add64 %r0, 1", 1, "line 1 ('add64 %r0, 1'): unknown mnemonic 'add64'"),
    ("movsx3232 %r0, %r1", 1, "line 1 ('movsx3232 %r0, %r1'): unknown mnemonic 'movsx3232'"),
    ("be %r0", 1, "line 1 ('be %r0'): unknown mnemonic 'be'"),
    ("a:\na:\nexit", 2, "line 2 ('a:'): duplicate label 'a' (first defined on line 1)"),
    ("ADD %r0, 1", 1, "line 1 ('ADD %r0, 1'): invalid mnemonic 'ADD'"),
    ("mov %r0, 1.5", 1, "line 1 ('mov %r0, 1.5'): invalid operand '1.5'"),
]


@pytest.mark.parametrize("text, line, message", ERRORS, ids=[m.split(": ", 1)[1] for _, _, m in ERRORS])
def test_errors(text, line, message):
    with pytest.raises(AssemblerError) as info:
        assemble(text)
    assert info.value.line == line
    assert str(info.value) == message


def test_label_jump_out_of_range():
    text = "ja far\n" + "mov %r0, 0\n" * 40000 + "far:\nexit"
    with pytest.raises(AssemblerError, match=r"^line 1 \('ja far'\): jump offset 40000 out of range"):
        assemble(text)


def test_testdata_error_uses_file_line_numbers():
    case = testdata.parse_text("# c\n-- asm\nmov %r0, 0\n\nadd %r0, %r12\nexit\n-- result\n0x0\n")
    with pytest.raises(AssemblerError) as info:
        _ = case.code
    assert info.value.line == 5


CONFORMANCE = testdata.conformance_files()


@needs_conformance
def test_suite_is_present():
    assert len(CONFORMANCE) == 313


@pytest.mark.parametrize("path", conformance_params(CONFORMANCE))
def test_conformance_file_assembles_and_validates(path):
    case = testdata.load(path)
    assert case.skip_reason is None
    code = case.code
    insns = decode(code)            # validates fields and program structure
    assert encode(insns) == code
    if case.raw is not None and case.asm is not None:
        assert assemble(case.asm) == case.raw    # lddw.data carries both


NEGATIVE = testdata.negative_cases()
# Well-formed programs with a deliberately wrong expectation: the conformance harness must
# report them as failures (error.data expects an error from a valid program).
WELL_FORMED = {"error", "incorrect_return_value_high_bits"}


@needs_conformance
def test_negative_classification():
    assert len(NEGATIVE) == 60
    assert {c.path.stem for c in NEGATIVE if not c.malformed} == WELL_FORMED


@pytest.mark.parametrize("path", conformance_params(
    c.path for c in NEGATIVE if c.malformed and testdata.load(c.path).skip_reason is None and
    testdata.load(c.path).raw is None))
def test_negative_malformed_asm_raises(path):
    case = testdata.load(path)
    with pytest.raises(AssemblerError) as info:
        _ = case.code
    assert info.value.line is not None
    assert info.value.text


@needs_conformance
@pytest.mark.parametrize("stem, reason", [
    ("empty", "no result or error in test file"),
    ("empty_instructions", "test file has no BPF instructions"),
    ("invalid_unknown_directive", "unknown directive '-- Unknown directive'"),
    ("unused-add64_imm-offset", "no result or error in test file"),
])
def test_negative_skipped(stem, reason):
    assert testdata.load(testdata.CONFORMANCE_DIR / "negative" / f"{stem}.data").skip_reason == reason
