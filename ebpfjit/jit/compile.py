"""The LLVM JIT: target machines, the pass pipeline, object code, loading and symbol binding.

`compile_program(code)` looks the program up in the on-disk cache (ebpfjit.cache) first: a hit
is a JIT image (ebpfjit.jit.image) that the C loader maps at once, without importing llvmlite
(the key is computed without it too). A miss lowers bytecode to LLVM IR (ebpfjit.jit.lower),
verifies and optimises it with the new pass manager, emits a relocatable object for the host,
links it into a JIT image, loads that, and stores it. The runtime's C functions
(ebpfjit_fault, ebpfjit_access_ok, ...) are bound by name at load time, so the machine code
embeds no process address. An object the image linker does not take is linked by one
process-wide LLJIT instead (and cached as the ELF object).

Must not import: ebpfjit.cli, ebpfjit.program (they import this module).

Imports: ebpfjit.errors, ebpfjit.isa, ebpfjit.jit.cache, ebpfjit.jit.hostkey, ebpfjit.jit.image,
    ebpfjit.jit.lower, ebpfjit.jit.lower.debugloc, ebpfjit.objects.elf, ebpfjit.runtime,
    ebpfjit.version
"""
from __future__ import annotations

import gc
import hashlib
import itertools
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import JitError
from ..isa.insn import decode
from ..runtime import env as runtime
from ..runtime.native_image import MappedImage
from ..version import __version__
from . import hostkey, image, lower
from .cache import resolve_cache
from .lower import LOWERING_VERSION

if TYPE_CHECKING:
    from llvmlite import ir

log = logging.getLogger("ebpfjit.jit")


class _LazyBinding:
    """`llvmlite.binding`, imported on first use: importing it loads libLLVM (~30 ms), which a
    cache hit never needs. The first attribute access replaces this stand-in by the module."""

    def __getattr__(self, name: str):
        import llvmlite.binding as binding
        globals()["llvm"] = binding
        return getattr(binding, name)


llvm = _LazyBinding()

TARGET_TRIPLES = {
    "x86_64": "x86_64-unknown-linux-gnu",
    "aarch64": "aarch64-unknown-linux-gnu",
    "arm64": "aarch64-unknown-linux-gnu",
}

_lock = threading.RLock()
_native_ready = False
_all_ready = False
_machines: dict[tuple, llvm.TargetMachine] = {}
_lljit = None
_lib_ids = itertools.count()


def _init_native() -> None:
    global _native_ready
    if not _native_ready:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        _native_ready = True


def _init_all() -> None:
    global _all_ready
    _init_native()
    if not _all_ready:
        llvm.initialize_all_targets()
        llvm.initialize_all_asmprinters()
        _all_ready = True


@dataclass(frozen=True)
class TargetSpec:
    """What code is generated for: triple, CPU name and features (host: the running CPU)."""
    triple: str
    cpu: str = ""
    features: str = ""

    @classmethod
    def resolve(cls, target: str | None) -> TargetSpec:
        if target is None or target == "host":
            _init_native()
            return host_target()
        _init_all()
        triple = TARGET_TRIPLES.get(target, target)
        if triple == llvm.get_process_triple():
            return host_target()
        return cls(triple)

    def key(self) -> str:
        return f"{self.triple}|{self.cpu}|{self.features}"


_host: TargetSpec | None = None


def host_target() -> TargetSpec:
    global _host
    if _host is None:
        _init_native()
        _host = TargetSpec(llvm.get_process_triple(), llvm.get_host_cpu_name(),
                           llvm.get_host_cpu_features().flatten())
    return _host


def target_machine(spec: TargetSpec, opt_level: int) -> llvm.TargetMachine:
    """One TargetMachine per (target, opt level) per process (never handed to MCJIT)."""
    key = (spec, opt_level)
    with _lock:
        tm = _machines.get(key)
        if tm is None:
            target = llvm.Target.from_triple(spec.triple)
            tm = target.create_target_machine(cpu=spec.cpu, features=spec.features,
                                              opt=opt_level, reloc="pic", codemodel="small")
            _machines[key] = tm
        return tm


# --- runtime glue -------------------------------------------------------------------------------

_layout: lower.StateLayout | None = None
_symbols: dict[str, int] | None = None


def state_layout() -> lower.StateLayout:
    """The runtime's struct layout (cffi offsetof), as the lowering consumes it."""
    global _layout
    if _layout is None:
        _layout = lower.StateLayout.from_runtime(runtime.state_layout())
    return _layout


def runtime_symbols() -> dict[str, int]:
    """Addresses of the runtime functions generated code calls, bound at load time."""
    global _symbols
    if _symbols is None:
        symbols = runtime.helper_symbols()
        missing = [name for name in lower.RUNTIME_DECLS if name not in symbols]
        if missing:
            raise JitError(f"the C runtime's import table (csrc/jit_support.c) lacks "
                           f"{', '.join(missing)}")
        _symbols = symbols
    return _symbols


# --- pipeline -----------------------------------------------------------------------------------

def _check_opt(opt_level: int) -> int:
    if opt_level not in (0, 1, 2, 3):
        raise JitError(f"opt_level must be 0..3, not {opt_level!r}")
    return opt_level


def normalize_maps(maps) -> tuple | None:
    """`maps` as compile_program takes it: None, or per env->maps index a
    (type, key_size, value_size, max_entries, flags) tuple of ints (None for unknown)."""
    if maps is None:
        return None
    out = []
    for m in maps:
        if m is None:
            out.append(None)
        else:
            out.append(tuple(int(v) for v in m)[:5])
    return tuple(out)


@contextmanager
def _gc_paused():
    """Lowering creates tens of thousands of small objects (llvmlite's IR values), all alive
    until the module is printed: the cyclic collector's passes over them find nothing to free
    and took a quarter of the Python time of a 4000-instruction compile. Paused for the
    lowering and printing only (process-wide, so briefly; restored even on errors)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def build_ir(code: bytes, *, bounds_checks: bool = True, spec: TargetSpec | None = None,
             comments: bool = True, maps=None, opt_level: int = 2) -> ir.Module:
    """Decode and lower `code` into an llvmlite IR module (not yet verified)."""
    insns = decode(code)
    ctx = lower.LoweringContext(state_layout(),
                                lower.LoweringOptions(bounds_checks=bounds_checks,
                                                      comments=comments,
                                                      maps=normalize_maps(maps),
                                                      version_entry=opt_level >= 2))
    module = lower.lower_program(insns, ctx)
    if spec is not None:
        module.triple = spec.triple
    return module


_data_layouts: dict[int, str] = {}


def _parse(module: ir.Module, tm: llvm.TargetMachine) -> llvm.ModuleRef:
    text = str(module)
    try:
        mod = llvm.parse_assembly(text)
        mod.triple = tm.triple
        layout = _data_layouts.get(id(tm))
        if layout is None:     # machines live as long as the process (_machines)
            layout = _data_layouts[id(tm)] = str(tm.target_data)
        mod.data_layout = layout
        mod.verify()
    except RuntimeError as exc:
        raise JitError(f"generated IR does not verify: {exc}\n{text}") from exc
    return mod


# Identity of what optimize() does (part of the compile-cache key): bump when it changes.
PIPELINE = "default<O{level}>, no loop/SLP vectorization, v1"


def optimize(mod: llvm.ModuleRef, tm: llvm.TargetMachine, opt_level: int) -> None:
    """Run the new pass manager's default pipeline at `opt_level` (0..3), without the loop and
    SLP vectorizers: eBPF loops carry budget and bounds checks that keep them scalar, so the
    vectorizers cost compile time (about 4% of opt + codegen on bench/progs) and changed no
    benchmark's speed. Unrolling stays on from O2 (checksum and map_lookup need it)."""
    pto = llvm.create_pipeline_tuning_options(speed_level=opt_level)
    pto.loop_vectorization = False
    pto.slp_vectorization = False
    pto.loop_unrolling = opt_level >= 2
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)


def compile_module(code: bytes, spec: TargetSpec, opt_level: int, bounds_checks: bool,
                   maps=None):
    """(optimised ModuleRef, TargetMachine) for `code` on `spec`."""
    tm = target_machine(spec, opt_level)
    with _gc_paused():
        mod = _parse(build_ir(code, bounds_checks=bounds_checks, spec=spec, comments=False,
                              maps=maps, opt_level=opt_level), tm)
    optimize(mod, tm, opt_level)
    return mod, tm


def _object_code(code: bytes, spec: TargetSpec, opt_level: int, bounds_checks: bool,
                 maps=None) -> bytes:
    with _lock:   # LLVM contexts and target machines are not thread-safe
        mod, tm = compile_module(code, spec, opt_level, bounds_checks, maps)
        return tm.emit_object(mod)


# --- loading ------------------------------------------------------------------------------------

def _jit_engine():
    global _lljit
    if _lljit is None:
        _init_native()
        _lljit = llvm.create_lljit_compiler()
    return _lljit


def _lljit_load(obj: bytes):
    """Link a relocatable ELF object into the process-wide LLJIT; (entry address, tracker)."""
    with _lock:
        builder = llvm.JITLibraryBuilder().add_object_img(obj)
        for name, address in runtime_symbols().items():
            if name in lower.RUNTIME_DECLS:
                builder.import_symbol(name, address)
        builder.export_symbol(lower.ENTRY_NAME)
        # Emitted only for programs with callback targets; a string-table entry is NUL-delimited.
        if b"\0" + lower.CALLBACK_NAME.encode() + b"\0" in obj:
            builder.export_symbol(lower.CALLBACK_NAME)
        try:
            tracker = builder.link(_jit_engine(), f"ebpf{next(_lib_ids)}")
        except RuntimeError as exc:
            raise JitError(f"loading object code failed: {exc}") from exc
    address = tracker[lower.ENTRY_NAME]
    if not address:
        raise JitError(f"object code has no {lower.ENTRY_NAME} symbol")
    return address, tracker


def load_object(obj: bytes):
    """Load object code into this process; (entry address, keepalive). A JIT image
    (ebpfjit.jit.image) is mapped by the C loader, without LLVM; an ELF object is linked by
    LLJIT. Keep the keepalive while the code may run (it unmaps / removes the code)."""
    if image.is_image(obj):
        mapped = MappedImage(obj)
        return mapped.entry, mapped
    return _lljit_load(obj)


def _link(elf: bytes):
    """(bytes to cache, (entry address, keepalive)) for the object LLVM emitted: its JIT image
    when the image linker takes it (always for x86-64 code of this lowering), else the ELF
    object linked by LLJIT."""
    try:
        blob = image.from_elf(elf)
        return blob, load_object(blob)
    except JitError as exc:
        log.debug("no JIT image (%s): linking with LLJIT", exc)
        return elf, _lljit_load(elf)


def callback_address(tracker) -> int:
    """Address of the object's `ebpf_callback` entry (0 if it has none)."""
    if isinstance(tracker, MappedImage):
        return tracker.callback
    try:
        return int(tracker[lower.CALLBACK_NAME] or 0)
    except Exception:
        return 0


@dataclass
class JitCode:
    """A compiled, loaded program. `address` is the `ebpfjit_jit_fn` entry point; keep this
    object alive while the address is in use (it owns the mapped code). `object_code` is what
    the cache stores: a JIT image (ebpfjit.jit.image), or the ELF object where no image could
    be made."""
    address: int
    object_code: bytes
    opt_level: int
    bounds_checks: bool
    cache_hit: bool = False
    compile_seconds: float = 0.0
    load_seconds: float = 0.0
    _tracker: object = field(default=None, repr=False)
    # `ebpfjit_jit_callback_fn` entry (runs callback targets for bpf_loop & co.), or 0.
    callback_address: int = 0

    @property
    def code_size(self) -> int:
        """Bytes of machine code (the functions, without stubs, data and padding)."""
        if image.is_image(self.object_code):
            return image.code_size(self.object_code)
        from ..objects.elf import code_size
        return code_size(self.object_code)


_runtime_key: tuple[str, list[str]] | None = None


def _runtime_parts() -> tuple[str, list[str]]:
    """The runtime's struct layout and import table as the cache key has them (from the C
    module, without the lowering)."""
    global _runtime_key
    if _runtime_key is None:
        layout = ",".join(f"{k}={v}" for k, v in sorted(runtime.state_layout().items()))
        # A digest: ~2 KB of offsets would make every key's JSON text that much longer.
        _runtime_key = (hashlib.sha256(layout.encode()).hexdigest()[:32],
                        sorted(runtime.helper_symbols()))
    return _runtime_key


def cache_key_parts(code: bytes, opt_level: int, bounds_checks: bool,
                    spec: TargetSpec | None = None, maps=None) -> dict:
    """Everything the object code depends on (see ebpfjit.cache). Computed without llvmlite
    for the host (a cache hit never loads LLVM): the LLVM build by its library's identity, the
    host CPU by the cpuid words LLVM reads (hostkey)."""
    maps = normalize_maps(maps)
    layout, imports = _runtime_parts()
    return {
        "maps": None if maps is None else [list(m) if m else None for m in maps],
        "bytecode": bytes(code).hex(),
        "ebpfjit": __version__,
        "llvm": hostkey.llvm_identity(),
        "target": spec.key() if spec is not None else hostkey.host_key(lambda: host_target().key()),
        "opt": opt_level,
        "pipeline": PIPELINE,
        "bounds_checks": bool(bounds_checks),
        "lowering": LOWERING_VERSION,
        "layout": layout,
        "runtime": imports,
    }


def compile_program(code: bytes, *, opt_level: int = 2, bounds_checks: bool = True,
                    cache=None, maps=None) -> JitCode:
    """JIT-compile eBPF bytecode for this host and load it.

    Args:
        code: bytecode (8-byte slots); decoded and validated first.
        opt_level: LLVM optimisation level 0..3.
        bounds_checks: emit memory-safety checks (turn off only for verified programs).
        cache: None = the default on-disk cache (unless EBPFJIT_CACHE=0), False = no cache,
            or an `ebpfjit.cache.CompileCache`.
        maps: the env's maps in env->maps order, each (type, key_size, value_size,
            max_entries, flags) (or None): ARRAY lookups on them are inlined (the maps are checked
            once per run, at entry). Part of the cache key; map addresses still come from st->env at run time.
    Returns:
        JitCode with `.address` of `int32_t fn(struct ebpfjit_state *, u64 r1, u64 r2)`.
    Raises:
        DecodeError for malformed bytecode, JitError if LLVM fails.
    """
    _check_opt(opt_level)
    code = bytes(code)
    store = resolve_cache(cache)
    t0 = time.perf_counter()
    key = obj = loaded = None
    if store is not None:
        key = store.key(cache_key_parts(code, opt_level, bounds_checks, maps=maps))
        obj = store.get(key)
    if obj is not None:
        t1 = time.perf_counter()
        try:
            loaded = load_object(obj)
        except JitError as exc:     # authentic but not loadable here: compiled again
            log.debug("ebpfjit cache entry %s does not load (%s): recompiling", key[:16], exc)
            obj = None
    hit = obj is not None
    if obj is None:
        elf = _object_code(code, host_target(), opt_level, bounds_checks, maps)
        t1 = time.perf_counter()
        obj, loaded = _link(elf)
        if store is not None:
            store.put(key, obj)
    address, tracker = loaded
    t2 = time.perf_counter()
    log.debug("compiled %d slots at O%d (%s) in %.2f ms, loaded in %.3f ms", len(code) // 8,
              opt_level, "cache hit" if hit else "compiled", (t1 - t0) * 1e3, (t2 - t1) * 1e3)
    return JitCode(address, obj, opt_level, bounds_checks, hit, t1 - t0, t2 - t1, tracker,
                   callback_address(tracker))


# --- inspection ---------------------------------------------------------------------------------

def llvm_ir(code: bytes, optimized: bool = False, *, opt_level: int = 2, bounds_checks: bool = True,
            target: str | None = None, maps=None) -> str:
    """LLVM IR text of `code`: as lowered (blocks `pc<N>`, a `; pc N: <insn>` comment per
    instruction) or after the optimisation pipeline."""
    _check_opt(opt_level)
    spec = TargetSpec.resolve(target)
    with _gc_paused():
        module = build_ir(code, bounds_checks=bounds_checks, spec=spec, opt_level=opt_level,
                          maps=maps)
        if not optimized:
            return str(module)
    tm = target_machine(spec, opt_level)
    with _lock:
        mod = _parse(module, tm)
        optimize(mod, tm, opt_level)
        return str(mod)


def native_asm(code: bytes, target: str | None = None, opt_level: int = 2, *,
               bounds_checks: bool = True, annotate: bool = True, maps=None) -> str:
    """Assembly text for the host (target=None) or a named target ("x86_64", "aarch64").

    With `annotate`, each run of machine code is preceded by `# pc N: <insn>`, the eBPF
    instruction it came from (through debug line locations whose line is the pc)."""
    _check_opt(opt_level)
    spec = TargetSpec.resolve(target)
    with _lock:
        if not annotate:
            mod, tm = compile_module(bytes(code), spec, opt_level, bounds_checks, maps=maps)
            return tm.emit_assembly(mod)
        tm = target_machine(spec, opt_level)
        module = build_ir(bytes(code), bounds_checks=bounds_checks, spec=spec, comments=True,
                          opt_level=opt_level, maps=maps)
        # debugloc builds llvmlite IR: imported only when assembly is asked for.
        from .lower.debugloc import add_pc_locations, annotate_assembly
        texts = add_pc_locations(module)
        mod = _parse(module, tm)
        optimize(mod, tm, opt_level)
        return annotate_assembly(tm.emit_assembly(mod), texts)


def emit_object(code: bytes, target: str | None = None, opt_level: int = 2, *,
                bounds_checks: bool = True, maps=None) -> bytes:
    """Relocatable ELF object for the host or a named target (cross-compilation works)."""
    _check_opt(opt_level)
    return _object_code(bytes(code), TargetSpec.resolve(target), opt_level, bounds_checks,
                        maps=maps)


__all__ = ["JitCode", "TargetSpec", "compile_program", "emit_object", "llvm_ir", "native_asm",
           "cache_key_parts", "host_target", "load_object", "callback_address"]
