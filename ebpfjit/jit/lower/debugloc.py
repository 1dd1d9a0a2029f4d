"""Line-table debug locations whose line is the eBPF pc, for inspection output only.

`ebpfjit dump --asm` must let a user follow one eBPF instruction to its machine code. LLVM keeps
that mapping through optimisation only as debug locations, so the inspection path attaches a
`DILocation(line=pc)` to every instruction (the lowering marks each pc with a `; pc N: ...`
comment) and turns the `.loc` directives of the emitted assembly back into `# pc N: <insn>`
comments. Compiled code that runs never carries debug info.

Imports: (nothing)
"""
from __future__ import annotations

import re

from llvmlite import ir

_PC_COMMENT = re.compile(r"pc (\d+): (.*)")
_LOC = re.compile(r"^\s*\.loc\s+\d+\s+(\d+)\b")
# Debug-info directives and sections that only add noise to a listing.
_NOISE = re.compile(r"^\s*(\.file\s+\d+|\.loc\b|\.cfi_)")


def add_pc_locations(module: ir.Module) -> dict[int, str]:
    """Give every instruction of `module` a debug location whose line is its eBPF pc.

    Returns {pc: instruction text} gathered from the lowering's comments.
    """
    di_file = module.add_debug_info("DIFile", {"filename": "bytecode.bpf", "directory": "."})
    unit = module.add_debug_info("DICompileUnit", {
        "language": ir.DIToken("DW_LANG_C99"), "file": di_file, "producer": "ebpfjit",
        "isOptimized": True, "runtimeVersion": 0,
        "emissionKind": ir.DIToken("LineTablesOnly"),
    }, is_distinct=True)
    module.add_named_metadata("llvm.dbg.cu", unit)
    i32 = ir.IntType(32)
    module.add_named_metadata("llvm.module.flags",
                              [ir.Constant(i32, 2), "Debug Info Version", ir.Constant(i32, 3)])
    no_types = module.add_debug_info("DISubroutineType", {"types": module.add_metadata([])})
    texts: dict[int, str] = {}
    for fn in module.functions:
        if fn.is_declaration:
            continue
        scope = module.add_debug_info("DISubprogram", {
            "name": fn.name, "file": di_file, "line": 0, "type": no_types, "unit": unit,
            "spFlags": ir.DIToken("DISPFlagDefinition | DISPFlagOptimized"),
        }, is_distinct=True)
        fn.set_metadata("dbg", scope)
        locations: dict[int, ir.DIValue] = {}
        pc = -1    # before the first instruction: the function's own bookkeeping
        for block in fn.blocks:
            for inst in block.instructions:
                if isinstance(inst, ir.Comment):
                    match = _PC_COMMENT.match(inst.text)
                    if match:
                        pc = int(match.group(1))
                        texts.setdefault(pc, match.group(2))
                    continue
                if pc not in locations:
                    # Line pc + 1: line 0 means "no source line" to LLVM, which suits the
                    # bookkeeping that belongs to no instruction.
                    locations[pc] = module.add_debug_info(
                        "DILocation", {"line": pc + 1, "column": 0, "scope": scope})
                inst.set_metadata("dbg", locations[pc])
    return texts


def annotate_assembly(asm: str, texts: dict[int, str]) -> str:
    """Replace `.loc` directives by `# pc N: <insn>` comments (once per change of pc) and drop
    the debug-info sections, keeping the listing readable."""
    out: list[str] = []
    last_pc = None
    skipping_debug_section = False
    for line in asm.splitlines():
        stripped = line.strip()
        if stripped.startswith(".section") and ".debug_" in stripped:
            skipping_debug_section = True
            continue
        if skipping_debug_section:
            if stripped.startswith((".section", ".text")) and ".debug_" not in stripped:
                skipping_debug_section = False
            else:
                continue
        match = _LOC.match(line)
        if match:
            pc = int(match.group(1)) - 1
            if pc != last_pc:
                out.append(f"\t# pc {pc}: {texts[pc]}" if pc in texts
                           else "\t# (ebpfjit: state, frame and budget bookkeeping)")
            last_pc = pc
            continue
        if _NOISE.match(line) or stripped.startswith(".Ltmp") or stripped.startswith(".Ldebug"):
            continue
        out.append(line)
    return "\n".join(out) + "\n"
