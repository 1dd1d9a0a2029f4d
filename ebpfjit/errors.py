"""The exception tree of ebpfjit: every error the library raises derives from EbpfError.

Must not import anything from ebpfjit.

Imports: (nothing)
"""
from __future__ import annotations


class EbpfError(Exception):
    """Base class of every error raised by ebpfjit."""


class DecodeError(EbpfError, ValueError):
    """Malformed bytecode. `pc` is the instruction slot index (or None for whole-program faults)."""

    def __init__(self, message: str, pc: int | None = None):
        self.pc = pc
        self.reason = message
        super().__init__(f"pc {pc}: {message}" if pc is not None else message)


class AssemblerError(EbpfError, ValueError):
    """Text that does not assemble. `line` is 1-based."""

    def __init__(self, message: str, line: int | None = None, text: str | None = None):
        self.line = line
        self.text = text
        self.reason = message
        where = f"line {line}" if line is not None else "assembler"
        if text:
            where += f" ({text.strip()!r})"
        super().__init__(f"{where}: {message}")


class EngineError(EbpfError, ValueError):
    """An engine name that is not one (ebpfjit.engine.parse_engine)."""


class ElfError(EbpfError, ValueError):
    """An ELF object that cannot be loaded; names the section/symbol/relocation at fault."""

    def __init__(self, message: str, path: str | None = None, section: str | None = None,
                 symbol: str | None = None):
        self.path = path
        self.section = section
        self.symbol = symbol
        self.reason = message
        parts = [p for p in (path, f"section {section!r}" if section else None,
                             f"symbol {symbol!r}" if symbol else None) if p]
        super().__init__(": ".join(parts + [message]))


class BtfLimitError(ElfError):
    """BTF whose decoding would exceed a bound (total decoded values, nesting depth)."""


class VerifierError(EbpfError, ValueError):
    """A program rejected before it runs (e.g. an unknown helper). `pc` names the instruction."""

    def __init__(self, message: str, pc: int | None = None):
        self.pc = pc
        self.reason = message
        super().__init__(f"pc {pc}: {message}" if pc is not None else message)


class ExecutionError(EbpfError, RuntimeError):
    """A run stopped by the runtime: out-of-bounds access, unknown helper, call depth, budget.

    `kind` is a short machine-readable word, `pc` the faulting instruction slot. Where known:
    `insn_text` (the instruction, llvm-objdump syntax), `source_file`/`line`/`source_text` (from
    .BTF.ext line info), `region` and `offset` (the memory a stray access overlaps or comes
    nearest to, e.g. "packet", "stack", "map 'counts' value"), and `packet_index`, set by whoever
    runs packets in batches (run_batch, the CLI) to the index of the packet that faulted.
    """

    def __init__(self, message: str, kind: str = "fault", pc: int | None = None,
                 addr: int | None = None, size: int | None = None, *,
                 insn_text: str | None = None, source_file: str | None = None,
                 line: int | None = None, source_text: str | None = None,
                 region: str | None = None, offset: int | None = None):
        self.kind = kind
        self.pc = pc
        self.addr = addr
        self.size = size
        self.reason = message
        self.insn_text = insn_text
        self.source_file = source_file
        self.line = line
        self.source_text = source_text
        self.region = region
        self.offset = offset
        self.packet_index: int | None = None
        text = f"pc {pc}: {message}" if pc is not None else message
        # The instruction is named for memory faults and in objects with line info; other
        # faults of raw bytecode keep their one-line text.
        if insn_text and (source_file or kind in ("oob_load", "oob_store")):
            text += f"\n  insn {pc}: {insn_text}"
        if source_file:
            text += f"\n  ; {(source_text or '').strip()} @ {source_file}:{line}"
        super().__init__(text)

    def __str__(self) -> str:
        text = super().__str__()
        return text if self.packet_index is None else f"packet {self.packet_index}: {text}"


class MapError(EbpfError, ValueError):
    """Misuse of a map from Python: wrong key/value size, bad flags, full map, missing key."""

    def __init__(self, message: str, errno: int | None = None):
        self.errno = errno
        super().__init__(message)


class JitError(EbpfError):
    """LLVM failed to verify or compile generated code (a bug in ebpfjit if the input decoded)."""


class KernelUnavailable(EbpfError):
    """The running kernel cannot be used (no bpf() permission, missing feature); tests skip."""


class KernelError(EbpfError):
    """A bpf(2) call failed. `log` holds the kernel verifier log where there is one."""

    def __init__(self, message: str, errno: int | None = None, log: str = ""):
        self.errno = errno
        self.log = log
        super().__init__(message)
