"""ISA layer: opcode table, decoding, the assembler and disassemblers, conformance, edge cases."""
