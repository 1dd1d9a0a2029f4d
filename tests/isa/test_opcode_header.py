"""csrc/ebpfjit_opcodes.h is generated from the ISA table (csrc/opcodegen.py) and committed: it
must match the table, and the C runtime must use its names rather than raw opcode hex."""
from __future__ import annotations

import importlib.util
import re

from ebpfjit.isa.opcodes import OPCODES
from tests.support.paths import ROOT

CSRC = ROOT / "csrc"


def _opcodegen():
    spec = importlib.util.spec_from_file_location("opcodegen", CSRC / "opcodegen.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_header_is_up_to_date():
    committed = (CSRC / "ebpfjit_opcodes.h").read_text(encoding="utf-8")
    assert committed == _opcodegen().render(), \
        "csrc/ebpfjit_opcodes.h is stale: run python csrc/opcodegen.py and commit it"


def test_header_names_every_opcode_of_the_table():
    header = (CSRC / "ebpfjit_opcodes.h").read_text(encoding="utf-8")
    defined = {int(value, 16): name for name, value in
               re.findall(r"#define EBPFJIT_OP_(\w+)\s+(0x[0-9a-f]+)", header)}
    assert defined == {code: info.name for code, info in OPCODES.items()}


def test_check_mode_reports_a_stale_header(tmp_path, monkeypatch, capsys):
    gen = _opcodegen()
    stale = tmp_path / "ebpfjit_opcodes.h"
    stale.write_text(gen.render().replace("EBPFJIT_OP_EXIT", "EBPFJIT_OP_EXIT_OLD"))
    monkeypatch.setattr(gen, "HEADER", str(stale))
    assert gen.main(["--check"]) == 1
    assert "is stale" in capsys.readouterr().err
    stale.write_text(gen.render())
    assert gen.main(["--check"]) == 0


# An opcode, class, op or mode compared with (or switched on) a hex literal.
_RAW_OPCODE = re.compile(
    r"(opcode|\bcls\b)[^;{]*?(==|!=|>=|<=|[<>&])\s*0x[0-9a-fA-F]+|case\s+0x[0-9a-fA-F]+\s*:")


def test_c_runtime_uses_the_names_not_raw_opcode_hex():
    offenders = []
    for path in sorted(CSRC.glob("*.c")):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _RAW_OPCODE.search(line):
                offenders.append(f"{path.name}:{lineno}: {line.strip()}")
    assert offenders == []
