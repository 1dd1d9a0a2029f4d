"""The ISA layer: the opcode table (`opcodes`), instructions and their encoding (`insn`), the
assembler (`asm`) and the disassembler (`disasm`). Makes no system calls and needs neither LLVM nor
the C runtime.

Imports: (nothing)
"""
