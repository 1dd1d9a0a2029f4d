"""Disassembler tests: llvm-objdump-19 golden text, the conformance round trip, doctests.

The LLVM table and tests/golden/llvm-objdump-19.txt hold what `llvm-objdump-19 -d` printed for
the same bytes (clang-19 objects, and llvm-mc-19 objects built from every instruction form), so
these tests need neither clang nor llvm-objdump. 32-bit atomics were printed with
`--mattr=+alu32` (see ebpfjit/disasm.py). Regenerate the golden file with
`python tests/golden/regen_llvm_objdump.py`.
"""
from __future__ import annotations

import doctest
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import conformance_params

import ebpfjit.isa.asm
import ebpfjit.isa.disasm
import ebpfjit.isa.insn
import ebpfjit.isa.insn as _insn
import ebpfjit.isa.opcodes
from ebpfjit.cli import testdata
from ebpfjit.isa.asm import assemble
from ebpfjit.isa.disasm import disassemble, format_insn
from ebpfjit.isa.insn import Instruction, decode

# (hex of the instruction, llvm-objdump-19 text)
LLVM = [
    ("0701000002000000", 'r1 += 0x2'),
    ("07010000feffffff", 'r1 += -0x2'),
    ("07010000ffffff7f", 'r1 += 0x7fffffff'),
    ("0f21000000000000", 'r1 += r2'),
    ("0401000002000000", 'w1 += 0x2'),
    ("04010000feffffff", 'w1 += -0x2'),
    ("0c21000000000000", 'w1 += w2'),
    ("1701000003000000", 'r1 -= 0x3'),
    ("1c21000000000000", 'w1 -= w2'),
    ("2701000003000000", 'r1 *= 0x3'),
    ("2c21000000000000", 'w1 *= w2'),
    ("3701000003000000", 'r1 /= 0x3'),
    ("3c21000000000000", 'w1 /= w2'),
    ("3701010003000000", 'r1 s/= 0x3'),
    ("3f21010000000000", 'r1 s/= r2'),
    ("3401010003000000", 'w1 s/= 0x3'),
    ("3c21010000000000", 'w1 s/= w2'),
    ("9701000003000000", 'r1 %= 0x3'),
    ("9c21000000000000", 'w1 %= w2'),
    ("97010100fdffffff", 'r1 s%= -0x3'),
    ("9c21010000000000", 'w1 s%= w2'),
    ("47010000ff000000", 'r1 |= 0xff'),
    ("54010000ff000000", 'w1 &= 0xff'),
    ("6701000003000000", 'r1 <<= 0x3'),
    ("7c21000000000000", 'w1 >>= w2'),
    ("c701000003000000", 'r1 s>>= 0x3'),
    ("cc21000000000000", 'w1 s>>= w2'),
    ("af21000000000000", 'r1 ^= r2'),
    ("8701000000000000", 'r1 = -r1'),
    ("8401000000000000", 'w1 = -w1'),
    ("b701000000000000", 'r1 = 0x0'),
    ("b7010000ffffffff", 'r1 = -0x1'),
    ("bf21000000000000", 'r1 = r2'),
    ("b4010000ffffffff", 'w1 = -0x1'),
    ("bc21000000000000", 'w1 = w2'),
    ("bf21080000000000", 'r1 = (s8)r2'),
    ("bf21100000000000", 'r1 = (s16)r2'),
    ("bf21200000000000", 'r1 = (s32)r2'),
    ("bc21080000000000", 'w1 = (s8)w2'),
    ("bc21100000000000", 'w1 = (s16)w2'),
    ("d401000010000000", 'r1 = le16 r1'),
    ("d401000020000000", 'r1 = le32 r1'),
    ("d401000040000000", 'r1 = le64 r1'),
    ("dc01000010000000", 'r1 = be16 r1'),
    ("dc01000020000000", 'r1 = be32 r1'),
    ("dc01000040000000", 'r1 = be64 r1'),
    ("d701000010000000", 'r1 = bswap16 r1'),
    ("d701000020000000", 'r1 = bswap32 r1'),
    ("d701000040000000", 'r1 = bswap64 r1'),
    ("18010000000000000000000001000000", 'r1 = 0x100000000 ll'),
    ("18010000ffffffff00000000ffffffff", 'r1 = -0x1 ll'),
    ("18010000070000000000000000000000", 'r1 = 0x7 ll'),
    ("7110040000000000", 'r0 = *(u8 *)(r1 + 0x4)'),
    ("6910fcff00000000", 'r0 = *(u16 *)(r1 - 0x4)'),
    ("6110000000000000", 'r0 = *(u32 *)(r1 + 0x0)'),
    ("79a0f8ff00000000", 'r0 = *(u64 *)(r10 - 0x8)'),
    ("9110040000000000", 'r0 = *(s8 *)(r1 + 0x4)'),
    ("8910040000000000", 'r0 = *(s16 *)(r1 + 0x4)'),
    ("8110040000000000", 'r0 = *(s32 *)(r1 + 0x4)'),
    ("720af8ff01000000", '*(u8 *)(r10 - 0x8) = 0x1'),
    ("6a0af8ffffffffff", '*(u16 *)(r10 - 0x8) = -0x1'),
    ("620af8ff78563412", '*(u32 *)(r10 - 0x8) = 0x12345678'),
    ("7a0af8fffeffffff", '*(u64 *)(r10 - 0x8) = -0x2'),
    ("731af8ff00000000", '*(u8 *)(r10 - 0x8) = r1'),
    ("6b1af8ff00000000", '*(u16 *)(r10 - 0x8) = r1'),
    ("631af8ff00000000", '*(u32 *)(r10 - 0x8) = r1'),
    ("7b1af8ff00000000", '*(u64 *)(r10 - 0x8) = r1'),
    ("db1af8ff00000000", 'lock *(u64 *)(r10 - 0x8) += r1'),
    ("c31af8ff00000000", 'lock *(u32 *)(r10 - 0x8) += w1'),
    ("db21000040000000", 'lock *(u64 *)(r1 + 0x0) |= r2'),
    ("c321000050000000", 'lock *(u32 *)(r1 + 0x0) &= w2'),
    ("db210000a0000000", 'lock *(u64 *)(r1 + 0x0) ^= r2'),
    ("db21080001000000", 'r2 = atomic_fetch_add((u64 *)(r1 + 0x8), r2)'),
    ("c321080001000000", 'w2 = atomic_fetch_add((u32 *)(r1 + 0x8), w2)'),
    ("db21080041000000", 'r2 = atomic_fetch_or((u64 *)(r1 + 0x8), r2)'),
    ("c321080051000000", 'w2 = atomic_fetch_and((u32 *)(r1 + 0x8), w2)'),
    ("db210800a1000000", 'r2 = atomic_fetch_xor((u64 *)(r1 + 0x8), r2)'),
    ("db210800e1000000", 'r2 = xchg_64(r1 + 0x8, r2)'),
    ("c3210800e1000000", 'w2 = xchg32_32(r1 + 0x8, w2)'),
    ("db210800f1000000", 'r0 = cmpxchg_64(r1 + 0x8, r0, r2)'),
    ("c3210800f1000000", 'w0 = cmpxchg32_32(r1 + 0x8, w0, w2)'),
    ("0500010000000000", 'goto +0x1'),
    ("0500ffff00000000", 'goto -0x1'),
    ("0600000003000000", 'gotol +0x3'),
    ("06000000fdffffff", 'gotol -0x3'),
    ("1501020000000000", 'if r1 == 0x0 goto +0x2'),
    ("1d21020000000000", 'if r1 == r2 goto +0x2'),
    ("25010200ffffffff", 'if r1 > -0x1 goto +0x2'),
    ("3d21feff00000000", 'if r1 >= r2 goto -0x2'),
    ("a501020005000000", 'if r1 < 0x5 goto +0x2'),
    ("bd21020000000000", 'if r1 <= r2 goto +0x2'),
    ("4501020000000080", 'if r1 & -0x80000000 goto +0x2'),
    ("5d21020000000000", 'if r1 != r2 goto +0x2'),
    ("65010200fbffffff", 'if r1 s> -0x5 goto +0x2'),
    ("7d21020000000000", 'if r1 s>= r2 goto +0x2'),
    ("c501020005000000", 'if r1 s< 0x5 goto +0x2'),
    ("dd21020000000000", 'if r1 s<= r2 goto +0x2'),
    ("1601020000000000", 'if w1 == 0x0 goto +0x2'),
    ("1e21020000000000", 'if w1 == w2 goto +0x2'),
    ("26010200ffffffff", 'if w1 > -0x1 goto +0x2'),
    ("de21020000000000", 'if w1 s<= w2 goto +0x2'),
    ("4601020001000000", 'if w1 & 0x1 goto +0x2'),
    ("8500000005000000", 'call 0x5'),
    ("8d02000000000000", 'callx r2'),
    ("2000000004000000", 'r0 = *(u32 *)skb[0x4]'),
    ("2800000004000000", 'r0 = *(u16 *)skb[0x4]'),
    ("3000000004000000", 'r0 = *(u8 *)skb[0x4]'),
    ("9500000000000000", 'exit'),
    ("dd43020000000000", 'if r3 s<= r4 goto +0x2'),
    ("3f43010000000000", 'r3 s/= r4'),
    ("bf43080000000000", 'r3 = (s8)r4'),
    ("bf35000000000000", 'r5 = r3'),
    ("db51000000000000", 'lock *(u64 *)(r1 + 0x0) += r5'),
    ("bf45000000000000", 'r5 = r4'),
    ("db51080001000000", 'r5 = atomic_fetch_add((u64 *)(r1 + 0x8), r5)'),
    ("bf30000000000000", 'r0 = r3'),
    ("db411000f1000000", 'r0 = cmpxchg_64(r1 + 0x10, r0, r4)'),
    ("d703000040000000", 'r3 = bswap64 r3'),
    ("0f53000000000000", 'r3 += r5'),
    ("0f03000000000000", 'r3 += r0'),
    ("81210c0000000000", 'r1 = *(s32 *)(r2 + 0xc)'),
    ("0f13000000000000", 'r3 += r1'),
    ("6121000000000000", 'r1 = *(u32 *)(r2 + 0x0)'),
    ("7401000003000000", 'w1 >>= 0x3'),
    ("bc20000000000000", 'w0 = w2'),
    ("bc04000000000000", 'w4 = w0'),
    ("c341000001000000", 'w4 = atomic_fetch_add((u32 *)(r1 + 0x0), w4)'),
    ("bc32000000000000", 'w2 = w3'),
    ("c321040041000000", 'w2 = atomic_fetch_or((u32 *)(r1 + 0x4), w2)'),
    ("0c42000000000000", 'w2 += w4'),
    ("bc34000000000000", 'w4 = w3'),
    ("c341080050000000", 'lock *(u32 *)(r1 + 0x8) &= w4'),
    ("c3410c00e1000000", 'w4 = xchg32_32(r1 + 0xc, w4)'),
    ("c3311000f1000000", 'w0 = cmpxchg32_32(r1 + 0x10, w0, w3)'),
    ("c3311400e1000000", 'w3 = xchg32_32(r1 + 0x14, w3)'),
    ("0c02000000000000", 'w2 += w0'),
    ("0c32000000000000", 'w2 += w3'),
]


@pytest.mark.parametrize("hex_, text", LLVM, ids=[t for _, t in LLVM])
def test_llvm_objdump_text(hex_, text):
    (insn,) = decode(bytes.fromhex(hex_), validate=False)
    assert format_insn(insn) == text


GOLDEN = Path(__file__).parent / "golden" / "llvm-objdump-19.txt"


def _golden_rows():
    for line in GOLDEN.read_text().splitlines():
        if line and not line.startswith("#"):
            hex_, text = line.split("\t")
            yield hex_, text


def test_llvm_objdump_golden_file():
    rows = list(_golden_rows())
    assert len(rows) > 500
    bad = [(h, t, format_insn(decode(bytes.fromhex(h), validate=False)[0])) for h, t in rows]
    assert [row for row in bad if row[1] != row[2]] == []


# Documented deviations from llvm-objdump-19 (what llvm prints is in the comment).
DEVIATIONS = [
    ("8510000001000000", "call pc+0x1"),                 # llvm: call 0x1 (same as helper 1)
    ("85100000fdffffff", "call pc-0x3"),                 # llvm: call -0x3
    ("8520000007000000", "call kfunc 0x7"),              # llvm: call 0x7
    ("4010000004000000", "r0 = *(u32 *)skb[r1 + 0x4]"),  # llvm: r0 = *(u32 *)skb[r1]
    ("50100000fcffffff", "r0 = *(u8 *)skb[r1 - 0x4]"),   # llvm: r0 = *(u8 *)skb[r1]
    ("1811000003000000" "0000000000000000", "r1 = map_fd(0x3) ll"),  # llvm: r1 = 0x3 ll
    ("1821000000000000" "0000000000000000", "r1 = map_value(0x0) ll"),
]


@pytest.mark.parametrize("hex_, text", DEVIATIONS, ids=[t for _, t in DEVIATIONS])
def test_llvm_deviations(hex_, text):
    (insn,) = decode(bytes.fromhex(hex_), validate=False)
    assert format_insn(insn) == text


def test_listing_format():
    code = assemble("lddw %r0, 0x100000000\njeq %r1, 0, +1\nmov32 %r0, 1\nexit")
    assert disassemble(code) == (
        "   0: r0 = 0x100000000 ll\n"
        "   2: if r1 == 0x0 goto +0x1\n"
        "   3: w0 = 0x1\n"
        "   4: exit")
    assert disassemble(code, labels=True, pcs=False) == (
        "r0 = 0x100000000 ll\n"
        "if r1 == 0x0 goto +0x1 <L4>\n"
        "w0 = 0x1\n"
        "L4:\n"
        "exit")
    assert disassemble(code, "conformance") == (
        "lddw %r0, 0x100000000\njeq %r1, 0, +1\nmov32 %r0, 1\nexit")


def test_listing_pc_width_grows():
    code = assemble("mov %r0, 0\n" * 12345 + "exit")
    assert disassemble(code).splitlines()[-1] == "12345: exit"


def test_conformance_syntax_forms():
    text = """\
sdiv32 %r1, -3
smod %r1, %r2
movsx1632 %r1, %r2
bswap64 %r1
be16 %r1
lock fetch xor32 [%r10-8], %r1
lock cmpxchg [%r1+0], %r2
lock xchg32 [%r1+8], %r2
jset32 %r1, 0x80000000, -1
ja32 +0
call 5
call local -6
call runtime 9
call %r3
ldabsh 16
ldindw %r2, -4
stdw [%r10-8], 0x12345678
lddw %r1, 0xffffffffffffffff
exit"""
    assert disassemble(assemble(text), "conformance") == text


def test_accepts_instruction_lists_and_rejects_unknown_syntax():
    insns = [Instruction(0xb7, 0, 0, 0, 1), Instruction(0x95)]
    assert disassemble(insns, pcs=False) == "r0 = 0x1\nexit"
    with pytest.raises(ValueError, match="unknown syntax 'att'"):
        disassemble(insns, "att")
    with pytest.raises(ValueError, match="unknown syntax"):
        format_insn(insns[0], syntax="att")


CONFORMANCE = testdata.conformance_files()


@pytest.mark.parametrize("path", conformance_params(CONFORMANCE))
def test_round_trip(path):
    code = testdata.load(path).code
    for labels in (False, True):
        for pcs in (False, True):
            assert assemble(disassemble(code, "conformance", labels=labels, pcs=pcs)) == code
    llvm = disassemble(code, labels=True).splitlines()
    assert len([ln for ln in llvm if not ln.startswith("L")]) == len(decode(code))


@pytest.mark.parametrize("module", [ebpfjit.isa.opcodes, ebpfjit.isa.insn, ebpfjit.isa.asm,
                                    ebpfjit.isa.disasm],
                         ids=lambda m: m.__name__)
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


# --- object listings (`ebpfjit disasm OBJ`) against llvm-objdump-19 ---------------------------

_OBJDUMP = shutil.which("llvm-objdump-19")
_PROGS = Path(__file__).parent / "progs"
_SYMBOL = re.compile(r"^([0-9a-f]+) <(.+)>:$")
_ROW = re.compile(r"^\s*(\d+):\t[0-9a-f ]+\t(.*)$")


def _objdump_functions(path: Path) -> dict[str, list[tuple[int, str]]]:
    """{function: [(slot from the function's start, text without <sym+off>)]}"""
    out: dict[str, list[tuple[int, str]]] = {}
    rows = start = None
    text = subprocess.run([_OBJDUMP, "-d", str(path)], check=True, capture_output=True,
                          text=True).stdout
    for line in text.splitlines():
        if m := _SYMBOL.match(line):
            rows = out.setdefault(m.group(2), [])
            start = int(m.group(1), 16) // 8
        elif rows is not None and (m := _ROW.match(line)):
            text = re.sub(r" <[\w.]+(\+0x[0-9a-f]+)?>$", "", m.group(2).strip())
            rows.append((int(m.group(1)) - start, text))
    return out


@pytest.mark.skipif(_OBJDUMP is None, reason="llvm-objdump-19 is not installed")
@pytest.mark.parametrize("path", sorted(_PROGS.glob("*.o")), ids=lambda p: p.stem)
def test_object_listing_matches_llvm_objdump(path):
    import ebpfjit
    obj = ebpfjit.load(path)
    functions = _objdump_functions(path)
    names = list(obj.maps)
    for name, prog in obj.programs.items():
        ours = {}
        for line in prog.disassemble().splitlines():
            if not line.startswith(";"):
                pc, text = line.split(": ", 1)
                ours[int(pc)] = text
        insns = dict(_insn.iter_pcs(_insn.decode(prog.spec.code, validate=False)))
        for slot, text in functions[name]:
            insn = insns[slot]
            if insn.opcode == 0x18 and insn.src in (1, 2):
                # llvm prints the unrelocated value (0 or the symbol's offset in its section);
                # we name the map and the value offset the relocation gave.
                off = (insn.imm >> 32) & 0xFFFFFFFF
                assert re.fullmatch(rf"r{insn.dst} = 0x[0-9a-f]+ ll", text)
                name_ = names[insn.imm & 0xFFFFFFFF]
                assert ours[slot] == (f"r{insn.dst} = map[{name_}] ll" if insn.src == 1 else
                                      f"r{insn.dst} = map[{name_}][0]+{off:#x} ll")
            elif insn.opcode == 0x18 and insn.src == 4:
                # A callback's address: llvm prints the unrelocated 0, we the target slot.
                assert (text, ours[slot]) == (f"r{insn.dst} = 0x0 ll",
                                              f"r{insn.dst} = func({insn.imm:#x}) ll")
            elif insn.opcode == 0x85 and insn.src == 1:
                # The offset is the linked one (subprograms are appended after the entry).
                assert re.fullmatch(r"call -?0x[0-9a-f]+", text)
                assert ours[slot] == ("call pc+" if insn.imm >= 0 else "call pc-") + \
                    f"{abs(insn.imm):#x}"
            elif insn.opcode in (0xc3,) or text == "<unknown>":
                continue    # 32-bit atomics: see the module docstring of ebpfjit.disasm
            else:
                assert ours[slot] == text, (name, slot)


def test_object_listing_interleaves_source_lines_and_names_maps():
    import ebpfjit
    prog = ebpfjit.load(_PROGS / "fault_source.o").program("value_overrun")
    lines = prog.disassemble().splitlines()
    lookup = next(i for i, line in enumerate(lines) if "map[counts] ll" in line)
    assert lines[lookup - 1].startswith("; __u64 *count = bpf_map_lookup_elem(&counts, &key); @ "
                                        "./tests/progs/fault_source.c:")
    assert "map_fd" not in prog.disassemble()


def test_xlated_listing_differs_where_ctx_accesses_are_rewritten(capsys):
    from ebpfjit.cli import commands as cli
    path = str(_PROGS / "xdp_parser_counters.o")
    assert cli.main(["disasm", path]) == 0
    plain = capsys.readouterr().out.splitlines()
    assert cli.main(["disasm", path, "--xlated"]) == 0
    xlated = capsys.readouterr().out.splitlines()
    assert xlated[1] == "; xlated: after the load-time context-access rewrite"
    del xlated[1]
    # xdp_md->data_end (u32 at 4) becomes the model's u64 pointer; nothing else changes.
    assert "   0: r6 = *(u32 *)(r1 + 0x4)" in plain
    assert "   0: r6 = *(u32 *)(r1 + 0x4)" not in xlated
    changed = [(a, b) for a, b in zip(plain, xlated) if a != b]
    assert changed and len(plain) == len(xlated)
    assert all("(r1 + " in a and "*(u64 *)" in b for a, b in changed)
