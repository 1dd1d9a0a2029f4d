"""ebpfjit: run kernel eBPF bytecode and clang-built objects in-process, interpreted or JIT-compiled.

Public API: `Program` (raw bytecode / assembly), `load` (ELF objects), `assemble`, `disassemble`,
and the error tree rooted at `EbpfError`. Heavy modules (LLVM, the C runtime) load lazily.

Imports: ebpfjit.api, ebpfjit.errors, ebpfjit.isa, ebpfjit.objects, ebpfjit.version
"""
from .api.program import Program
from .errors import (
    AssemblerError,
    DecodeError,
    EbpfError,
    ElfError,
    ExecutionError,
    JitError,
    KernelError,
    KernelUnavailable,
    MapError,
    VerifierError,
)
from .objects.verdicts import TcAction, XdpAction
from .version import __version__

__all__ = [
    "AssemblerError", "DecodeError", "EbpfError", "ElfError", "ExecutionError", "JitError",
    "KernelError", "KernelUnavailable", "MapError", "Program", "TcAction", "VerifierError",
    "XdpAction", "assemble",
    "disassemble", "load", "__version__",
]


def assemble(text: str) -> bytes:
    """Assemble bpf_conformance-dialect text into bytecode."""
    # Lazy: the assembler is ~16 ms of `import ebpfjit`.
    from .isa.asm import assemble as _assemble
    return _assemble(text)


def disassemble(code, syntax: str = "llvm") -> str:
    """Disassemble bytecode (or instructions) in the llvm-objdump or conformance syntax."""
    # Lazy: the disassembler is ~7 ms of `import ebpfjit`.
    from .isa.disasm import disassemble as _disassemble
    return _disassemble(code, syntax=syntax)


def load(path_or_bytes, **kwargs):
    """Load an eBPF ELF object (path or bytes) as libbpf would; returns an `Object`."""
    # Lazy: the C module (ebpfjit._rt) and pyelftools: `import ebpfjit` loads neither.
    from .api.loader import load as _load
    return _load(path_or_bytes, **kwargs)
