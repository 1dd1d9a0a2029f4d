"""Regenerate tests/golden/llvm-objdump-19.txt from tests/progs/*.o (needs llvm-objdump-19).

Run from the checkout: `python tests/golden/regen_llvm_objdump.py`. Review the diff like code.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ebpfjit.isa.insn import CALL_HELPER, decode  # noqa: E402
from ebpfjit.isa.opcodes import Kind  # noqa: E402

HEADER = """\
# Instruction text printed by `llvm-objdump-19 -d` for every distinct instruction of
# tests/progs/*.o (clang-19 objects). 32-bit atomics (opcode 0xc3) come from
# `llvm-objdump-19 -d --mattr=+alu32`; the ` <sym+off>` jump annotation is removed;
# local/kfunc calls (documented deviations) are left out. Format: hex<TAB>text.
# Regenerate: see the comment in tests/test_disasm.py.
"""


def objdump(path: Path, *extra: str) -> list[tuple[str, str]]:
    out = subprocess.run(["llvm-objdump-19", "-d", *extra, str(path)], capture_output=True,
                         text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s*(\d+):\t([0-9a-f ]+)\t(.*)$", line)
        if m:
            rows.append((m.group(2).replace(" ", ""), re.sub(r" <[^<>]*>$", "", m.group(3).strip())))
    return rows


def golden_rows(paths: list[Path]) -> dict[str, str]:
    seen: dict[str, str] = {}
    for path in paths:
        for (hex_, plain), (_, alu32) in zip(objdump(path), objdump(path, "--mattr=+alu32")):
            insn = decode(bytes.fromhex(hex_), validate=False)[0]
            if insn.kind is Kind.CALL and insn.src != CALL_HELPER:
                continue
            if insn.kind is Kind.LDIND and insn.imm:
                continue
            seen.setdefault(hex_, alu32 if hex_.startswith("c3") else plain)
    return seen


def main() -> None:
    rows = golden_rows(sorted((ROOT / "tests" / "progs").glob("*.o")))
    text = HEADER + "".join(f"{h}\t{t}\n" for h, t in rows.items())
    (ROOT / "tests" / "golden" / "llvm-objdump-19.txt").write_text(text)


if __name__ == "__main__":
    main()
