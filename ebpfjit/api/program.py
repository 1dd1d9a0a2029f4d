"""`Program`: one eBPF program the user can run on either engine, inspect and disassemble.

A Program owns its bytecode (validated at construction), the C-side program record, and — lazily
— its JIT-compiled code. Raw programs follow the conformance convention: r1 points at the input
memory and r2 holds its length.

Imports: ebpfjit.engine, ebpfjit.api.loader, ebpfjit.errors, ebpfjit.isa, ebpfjit.jit, ebpfjit.objects,
    ebpfjit.runtime
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..engine import DEFAULT_ENGINE, Engine, as_engine
from ..errors import EbpfError, VerifierError
from ..isa import insn as _insn
from ..isa.opcodes import Kind, jump_target
from ..objects.helper_names import helper_name
from ..objects.spec import PSEUDO_FUNC, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE, ProgType

ENGINES = tuple(e.value for e in Engine)

# Program type names accepted by `Program.from_bytes(type=...)`, libbpf's spelling first.
PROG_TYPE_NAMES = {
    "raw": ProgType.UNSPEC,
    "xdp": ProgType.XDP,
    "socket_filter": ProgType.SOCKET_FILTER,
    "socket": ProgType.SOCKET_FILTER,
    "sched_cls": ProgType.SCHED_CLS,
    "tc": ProgType.SCHED_CLS,
    "sched_act": ProgType.SCHED_ACT,
    "kprobe": ProgType.KPROBE,
    "tracepoint": ProgType.TRACEPOINT,
    "raw_tracepoint": ProgType.RAW_TRACEPOINT,
    "perf_event": ProgType.PERF_EVENT,
}


def prog_type_from_name(name: str | int | ProgType) -> ProgType:
    if isinstance(name, int):
        return ProgType(name)
    try:
        return PROG_TYPE_NAMES[name]
    except KeyError:
        raise EbpfError(f"unknown program type {name!r}; expected one of "
                        f"{', '.join(PROG_TYPE_NAMES)}") from None


# --- load-time checks -----------------------------------------------------------------------

def check_program(name: str, insns: list, env, nmaps: int | None = None,
                  maps: Sequence[Any] = ()) -> None:
    """The one load-time check: what the kernel verifier would refuse and we can see statically.
    Unknown helpers (against `env`) and kfunc calls always; for an object's program (`nmaps`
    given, `maps` its maps by index) also references to maps that do not exist and callbacks
    outside the program. A raw program (`nmaps` None) has no object: its lddw map and function
    references fault when they run."""
    nslots = _insn.slot_count(insns)
    for pc, ins in _insn.iter_pcs(insns):
        if ins.kind is Kind.CALL and ins.src == _insn.CALL_HELPER:
            if not env.has_helper(ins.imm):
                hname = helper_name(ins.imm)
                raise VerifierError(f"program {name!r}: call to unknown helper {ins.imm}"
                                    + (f" ({hname})" if hname else "")
                                    + " (not implemented by ebpfjit)", pc)
        elif ins.kind is Kind.CALL and ins.src == _insn.CALL_KFUNC:
            raise VerifierError(f"program {name!r}: kfunc calls are not supported "
                                f"(btf id {ins.imm})", pc)
        elif nmaps is None:
            continue
        elif ins.kind is Kind.LDDW and ins.src in (PSEUDO_MAP_FD, PSEUDO_MAP_VALUE):
            index = ins.imm & 0xFFFFFFFF
            if index >= nmaps:
                raise VerifierError(f"program {name!r}: reference to map index {index}, but "
                                    f"the object has {nmaps} maps", pc)
            if ins.src == PSEUDO_MAP_VALUE:
                offset = (ins.imm >> 32) & 0xFFFFFFFF
                m = maps[index]
                if offset >= m.spec.value_size:
                    raise VerifierError(f"program {name!r}: offset {offset} outside the "
                                        f"{m.spec.value_size}-byte value of map "
                                        f"{m.spec.name!r}", pc)
        elif ins.kind is Kind.LDDW and ins.src == PSEUDO_FUNC:
            target = jump_target(pc, ins.imm_lo)
            if not 0 <= target < nslots:
                raise VerifierError(f"program {name!r}: callback at pc {target} is outside the "
                                    f"program of {nslots} slots", pc)


class Program:
    """A validated eBPF program bound to a runtime environment (helpers, maps)."""

    def __init__(self, code: bytes, *, type: str | int | ProgType = "raw", name: str = "prog",
                 env=None, opt_level: int = 2):
        self.code = bytes(code)
        self.insns = _insn.decode(self.code)
        self.name = name
        self.type = prog_type_from_name(type)
        self._env = env
        self._loaded = None
        self._jit = {}
        self._installed_jit = None
        self._fast_jit = None           # the loaded program's JIT runner the fast run uses
        self.opt_level = opt_level

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def from_bytes(cls, code: bytes, type: str | int | ProgType = "raw", **kwargs) -> Program:
        """Program from raw bytecode (8-byte little-endian slots). Raises DecodeError.

        `type="raw"` follows the conformance convention (r1 = memory, r2 = its length). Any other
        type ("xdp", "socket_filter", "tc", ...) runs as the kernel runs that type: its context
        (`struct xdp_md`, `struct __sk_buff`, ...) converted at load, `run(packet)` returning the
        verdict and `test_run` like bpf_prog_test_run_opts, exactly as an object's programs.
        `verify=True` (typed programs) runs the static verifier first (VerifierError with the
        kernel-style log on a rejection).
        """
        prog_type = prog_type_from_name(type)
        if prog_type != ProgType.UNSPEC and cls is Program:
            # Lazy peer import: ObjectProgram (loader) is a Program, so loader imports this module.
            from .loader import program_from_code
            unknown = set(kwargs) - {"name", "opt_level", "verify"}
            if unknown:
                raise EbpfError(f"{', '.join(sorted(unknown))}: not supported with type={type!r}")
            prog = program_from_code(code, prog_type, name=kwargs.get("name", "prog"),
                                     verify=kwargs.get("verify", False))
            prog.opt_level = kwargs.get("opt_level", prog.opt_level)
            return prog
        if kwargs.pop("verify", False):
            raise EbpfError("verify=True needs a program type (raw programs have no context "
                            "the verifier could check)")
        return cls(code, type=type, **kwargs)

    @classmethod
    def from_asm(cls, text: str, type: str | int | ProgType = "raw", **kwargs) -> Program:
        """Program from assembly in the bpf_conformance dialect. Raises AssemblerError."""
        # Lazy: the assembler is ~16 ms of `import ebpfjit`.
        from ..isa.asm import assemble
        return cls.from_bytes(assemble(text), type=type, **kwargs)

    @property
    def opt_level(self) -> int:
        return self._opt_level

    @opt_level.setter
    def opt_level(self, value: int) -> None:
        self._opt_level = value
        self._unbind_fast()     # the fast run may hold code of the previous level

    # --- runtime ------------------------------------------------------------------------------

    @property
    def env(self):
        if self._env is None:
            # A program of its own gets the kernel's helpers by id, as an object's programs do
            # (maps need an object, so map helpers only find none). Lazy: the C module.
            from ..runtime.env import Env
            from ..runtime.helpers import install_builtin_helpers
            self._env = Env()
            install_builtin_helpers(self._env)
        return self._env

    @property
    def loaded(self):
        """The C program record (created on first use, after helper checks)."""
        if self._loaded is None:
            # Lazy: the C module (ebpfjit._rt): `import ebpfjit` does not load it.
            from ..runtime.env import LoadedProgram
            # An unknown helper is a load-time error, as in the kernel, not a run-time surprise.
            check_program(self.name, self.insns, self.env)
            self._loaded = LoadedProgram(self.code, self.env, int(self.type))
            self._loaded.name = self.name
            self._describe_faults(self._loaded)
        return self._loaded

    def _describe_faults(self, loaded) -> None:
        """Tell `loaded` what its fault messages name (source lines, the memory's name)."""

    def register_helper(self, helper_id: int, fn: Callable | int | object) -> None:
        """Install helper `helper_id`: a Python callable (slow path), a cffi function pointer or
        an address of a C function `uint64_t f(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t)`.
        """
        self.env.register_helper(helper_id, fn)

    def compile(self, opt_level: int | None = None, *, bounds_checks: bool = True):
        """JIT-compile (or fetch from the cache) and return the JitCode."""
        level = self.opt_level if opt_level is None else opt_level
        key = (level, bounds_checks)
        if key not in self._jit:
            # Lazy: llvmlite, only when JIT code is asked for.
            from ..jit.compile import compile_program
            self._jit[key] = compile_program(self.code, opt_level=level, bounds_checks=bounds_checks,
                                             maps=self._jit_maps())
        return self._jit[key]

    def _jit_maps(self):
        """env->maps as (type, key_size, value_size, max_entries, flags) per index, for the JIT
        to specialise map lookups on (None: not known)."""
        return None

    def run(self, mem: bytes | bytearray | memoryview = b"", engine: str | Engine = DEFAULT_ENGINE,
            budget: int | None = None, timeout: float | None = None) -> int:
        """Run once and return r0 as an unsigned 64-bit integer.

        `mem` is copied unless it is a writable buffer (bytearray, writable memoryview), which the
        program then modifies in place. Raises ExecutionError on a fault; `timeout` (seconds,
        wall clock) ends the run with ExecutionError kind "timeout".

        (After the first run each instance shadows this method with the loaded program's fast
        run, which comes back here for anything it does not handle: see `_bind_fast`.)
        """
        loaded = self._loaded if self._loaded is not None else self.loaded
        engine = as_engine(engine)
        if engine is Engine.JIT and self._installed_jit != (self.opt_level, True):
            self._ensure_jit(loaded)
        self._bind_fast(loaded)
        return loaded.run(mem, engine=engine, budget=budget, timeout=timeout)

    def _bind_fast(self, loaded) -> None:
        """Shadow `run` with the loaded program's fast closure (one Python call and one cffi
        call per run) while it is equivalent to this class's `run`: the installed JIT code is
        the current opt level's (or none, and the closure then falls back to compile)."""
        if type(self).run is not Program.run or self._fast_jit is loaded._rn_jit and \
                "run" in self.__dict__:
            return
        if self._installed_jit not in (None, (self.opt_level, True)):
            return
        self.run = loaded.make_run(self._run_fallback, DEFAULT_ENGINE)
        self._fast_jit = loaded._rn_jit

    def _run_fallback(self, mem, engine, budget, r1, r2) -> int:
        if r1 is not None or r2 is not None:
            raise TypeError("Program.run() takes no r1/r2 (use Program.loaded.run)")
        return Program.run(self, mem, engine, budget)

    def _rebind_fast(self, loaded) -> None:
        # set_jit_function rebuilt the loaded program's run: rebuild ours from it.
        if "run" in self.__dict__:
            self._unbind_fast()
            self._bind_fast(loaded)

    def _unbind_fast(self) -> None:
        self.__dict__.pop("run", None)
        self._fast_jit = None

    def _ensure_jit(self, loaded) -> None:
        code = self.compile()
        if getattr(loaded, "_jit_address", None) != code.address:
            loaded.set_jit_function(code.address, code, code.callback_address)
            loaded._jit_address = code.address
            self._rebind_fast(loaded)
        # Remembered so that the per-run fast path skips compile()'s cache lookup.
        self._installed_jit = (self.opt_level, True)

    # --- inspection ---------------------------------------------------------------------------

    def disassemble(self, syntax: str = "llvm") -> str:
        # Lazy: the disassembler is ~7 ms of `import ebpfjit`.
        from ..isa.disasm import disassemble
        return disassemble(self.insns, syntax=syntax)

    def llvm_ir(self, optimized: bool = False) -> str:
        # Lazy: llvmlite, only when JIT code is asked for.
        from ..jit.compile import llvm_ir
        return llvm_ir(self.code, optimized=optimized, opt_level=self.opt_level,
                       maps=self._jit_maps())

    def native_asm(self, target: str | None = None) -> str:
        # Lazy: llvmlite, only when JIT code is asked for.
        from ..jit.compile import native_asm
        return native_asm(self.code, target=target, opt_level=self.opt_level,
                          maps=self._jit_maps())

    def __repr__(self) -> str:
        return f"<Program {self.name!r} type={self.type.name.lower()} insns={len(self.insns)}>"
