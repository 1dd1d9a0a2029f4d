"""The object API: load a clang-built eBPF ELF object as libbpf would and run its programs.

`load(path)` reads the object (ebpfjit.elf), creates one Env with the builtin helpers, creates
every map (global data with its initial contents, `.rodata` read-only to programs), checks each
program at load the way the kernel verifier would for what we can check (helper ids, map
references, context accesses, converted to the shadow-context layouts of ebpfjit.ctx), and fills
prog_arrays and map-in-maps from the object's static `.values`.

Programs run on a model of the kernel's BPF_PROG_TEST_RUN (csrc/contexts.c): for XDP the packet
sits in a 4 KiB frame with 256 bytes of headroom, for tc/socket filters in an skb whose data
starts at the Ethernet header (tc) or at the network header (socket filter: the kernel's
test-run pulls the Ethernet header, so offsets in LD_ABS/skb_load_bytes are L3-relative and the
output packet's first 14 bytes come back zeroed; cgroup_skb likewise, with direct packet
access). Results are therefore the kernel's.

Must not import: lower, kernel, cli (jit only through Program.compile()).

Imports: ebpfjit.engine, ebpfjit.api.program, ebpfjit.errors, ebpfjit.isa, ebpfjit.objects, ebpfjit.runtime,
    ebpfjit.verifier
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from typing import Any

from ..engine import DEFAULT_ENGINE, Engine, as_engine
from ..errors import EbpfError, ExecutionError, VerifierError
from ..isa import insn as _insn
from ..objects import ctx_layout as _ctx
from ..objects.spec import MapSpec, ObjectSpec, ProgType
from ..runtime import deadline, testrun
from .program import Program, check_program

__all__ = ["load", "Object", "ObjectProgram", "TestRunResult", "CONTEXT_LAYOUTS"]

from ..isa.disasm import disassemble
from ..objects.ctx_layout import CONTEXT_LAYOUTS, SK_BUFF_CGROUP_SKB  # noqa: E402,F401  (one table)
from ..objects.spec import MapType, ProgramSpec
from ..runtime import env as runtime
from ..runtime import helpers as _helpers
from ..runtime.env import Env
from ..runtime.helpers import read_trace
from ..runtime.maps import DEFAULT_MEMORY_LIMIT, Map, MemoryAccount

# skb program types -> is_l2 of the kernel's bpf_prog_test_run_skb: tc sees the Ethernet
# header, socket filters and cgroup_skb start at the network header (it is pulled, and pushed
# back zeroed in data_out).
SKB_TYPES = {ProgType.SCHED_CLS: 1, ProgType.SCHED_ACT: 1, ProgType.SOCKET_FILTER: 0,
             ProgType.CGROUP_SKB: 0}


class TestRunResult(tuple):
    """(retval, data_out, duration_ns) as bpf_prog_test_run_opts reports them; `.ctx_out` is
    the output context (struct xdp_md / __sk_buff bytes) when a ctx_in was given, else None."""

    def __new__(cls, retval: int, data_out: bytes, duration_ns: float,
                ctx_out: bytes | None = None):
        self = super().__new__(cls, (retval, data_out, duration_ns))
        self.ctx_out = ctx_out
        return self

    retval = property(lambda self: self[0])
    data_out = property(lambda self: self[1])
    duration_ns = property(lambda self: self[2])


_result = TestRunResult


def convert_context(insns: list, prog_type: ProgType) -> list:
    """Rewrite context accesses to the shadow layout of this program type (no-op otherwise)."""
    layout = CONTEXT_LAYOUTS.get(prog_type)
    if layout is None:
        return insns
    return _ctx.rewrite_context_accesses(insns, layout)


def _spin_lock_offset(btf, type_id: int) -> int | None:
    """Byte offset of a `struct bpf_spin_lock` member in the value type, if any."""
    if btf is None or not type_id:
        return None
    try:
        t = btf.type(btf.resolve(type_id))
    except Exception:
        return None
    for m in getattr(t, "members", ()):
        try:
            mt = btf.type(btf.resolve(m.type))
        except Exception:
            continue
        if mt.name == "bpf_spin_lock":
            return m.bit_offset // 8
    return None


def _patch_rodata(spec: ObjectSpec, values: dict[str, Any]) -> None:
    """Set `const volatile` globals before load, as libbpf's skeleton `rodata->x = ...`."""
    btf = spec.btf
    for var, value in values.items():
        for mspec in spec.maps.values():
            if not mspec.is_global_data or btf is None:
                continue
            sec = btf.datasec(mspec.section or mspec.name)
            if sec is None:
                continue
            for info in sec.secinfos:
                if btf.type(info.type).name != var:
                    continue
                if isinstance(value, int):
                    data = (value & ((1 << (8 * info.size)) - 1)).to_bytes(info.size, "little")
                else:
                    data = bytes(value)
                    if len(data) > info.size:
                        raise EbpfError(f"value for {var!r} is {len(data)} bytes; the variable "
                                        f"has {info.size}")
                    data = data.ljust(info.size, b"\0")
                init = bytearray(mspec.initial or bytes(mspec.value_size))
                init[info.offset:info.offset + info.size] = data
                mspec.initial = bytes(init)
                break
            else:
                continue
            break
        else:
            raise EbpfError(f"no global variable {var!r} in the object's data sections")


# --- programs ---------------------------------------------------------------------------------

class ObjectProgram(Program):
    """A program of a loaded object: runs on the test-run model of its program type."""

    def __init__(self, spec, code: bytes, env, obj: Object):
        super().__init__(code, type=spec.type, name=spec.name, env=env)
        self.spec = spec
        self.section = spec.section
        self.object = obj

    # --- helpers -------------------------------------------------------------------------

    def disassemble(self, syntax: str = "llvm", *, xlated: bool = False) -> str:
        """The program as the object has it (map names, source lines interleaved), or with
        `xlated` as it runs: after the load-time context-access rewrite (convert_context)."""
        names = list(self.object.maps)
        if not xlated:
            return disassemble(self.spec.code, syntax, map_names=names,
                               line_info=self.spec.line_info)
        # The rewrite keeps every slot where it is, so the line info still applies.
        same_slots = len(self.code) == len(self.spec.code)
        return disassemble(self.insns, syntax, map_names=names,
                           line_info=self.spec.line_info if same_slots else ())

    def _describe_faults(self, loaded) -> None:
        loaded.line_info = self.spec.line_info
        if self._packet_model() is not None:
            loaded.mem_name = "packet"

    def _jit_maps(self):
        # The object's maps, in the order load() gave them to env.set_maps.
        return tuple((int(m.spec.type), int(m.spec.key_size), int(m.spec.value_size),
                      int(m.spec.max_entries), int(m.spec.flags))
                     for m in self.object.maps.values())

    def _prepare(self, engine: str):
        loaded = self.loaded
        engine = as_engine(engine)
        if engine is Engine.JIT:
            self._ensure_jit(loaded)
        # Tail-call targets run on the caller's engine, so they need machine code too.
        if engine is Engine.JIT:
            for target in self.object._prog_array_targets():
                if target is not self:
                    target._ensure_jit(target.loaded)
        return loaded

    def _fail(self, loaded, budget):
        # The test runs took the thread's state one level deeper and gave the level back: right
        # after the call, the current level's state is the one the failed run used.
        loaded._raise(runtime.thread_state(), budget)

    def _engine_code(self, engine: str) -> int:
        return runtime.ENGINE_JIT if engine == "jit" else runtime.ENGINE_INTERP

    # --- running -------------------------------------------------------------------------

    def run(self, packet=b"", engine: str | Engine = DEFAULT_ENGINE, budget: int | None = None,
            timeout: float | None = None) -> int:
        """Run once, the fast path; return the verdict (retval) as the kernel reports it.
        `timeout` (seconds, wall clock) ends the run with ExecutionError kind "timeout".

        For XDP/tc/socket programs `packet` is the frame, run on a fresh test-run context; a
        bytearray is updated in place to the output packet and resized when the program grew
        or shrank it (adjust_head/tail). For other types `packet` is the context: a buffer
        (bytes, bytearray, ctypes or cffi struct: the mem region, writable if the buffer is)
        or, for tracing programs, a sequence of u64 arguments where buffers stand for pointers
        to them.

        (For packet programs, after the first run each instance shadows this method with a
        closure making one C call per packet, `runtime.LoadedProgram.make_packet_run`.)
        """
        with deadline(timeout, self.name):
            if self.type in (ProgType.XDP,) or self.type in SKB_TYPES:
                loaded = self._prepare(engine)
                self._bind_fast(loaded)
                r = self.test_run(packet, engine=engine, budget=budget)
                if isinstance(packet, bytearray) and packet != r.data_out:
                    packet[:] = r.data_out
                return r.retval
            return self._run_ctx(packet, engine, budget, 1)[0]

    def _packet_model(self) -> int | None:
        if self.type == ProgType.XDP:
            return runtime.PKT_XDP
        if self.type in SKB_TYPES:
            return runtime.PKT_SKB_L2 if SKB_TYPES[self.type] else runtime.PKT_SKB_L3
        return None

    def _bind_fast(self, loaded) -> None:
        # Bound while equivalent to ObjectProgram.run: JIT code of the current opt level (its
        # tail-call targets got theirs from _prepare; a target without code still runs, in
        # the interpreter), or none yet (the closure then comes back to run() to compile).
        model = self._packet_model()
        if model is None or type(self).run is not ObjectProgram.run:
            return
        if self._fast_jit is loaded._rn_jit and "run" in self.__dict__:
            return
        if self._installed_jit not in (None, (self.opt_level, True)):
            return
        self.run = loaded.make_packet_run(model, self._run_fallback, DEFAULT_ENGINE)
        self._fast_jit = loaded._rn_jit

    def _run_fallback(self, packet, engine, budget) -> int:
        return ObjectProgram.run(self, packet, engine, budget)

    def test_run(self, data_in=b"", repeat: int = 1, engine: str | Engine = DEFAULT_ENGINE, ctx_in=None,
                 budget: int | None = None, timeout: float | None = None) -> TestRunResult:
        """Like bpf_prog_test_run_opts: (retval, data_out, duration_ns), `.ctx_out` too.

        `repeat` runs share one buffer (changes accumulate, as in the kernel); duration_ns is
        the mean per run, timed in C around the loop. `ctx_in`: struct xdp_md / __sk_buff bytes
        (XDP, tc, socket filter) or the context of other program types. `timeout` (seconds,
        wall clock, for all `repeat` runs) ends the call with ExecutionError kind "timeout".
        """
        with deadline(timeout, self.name):
            return self._test_run(data_in, repeat, engine, ctx_in, budget)

    def _test_run(self, data_in, repeat, engine, ctx_in, budget) -> TestRunResult:
        if self.type == ProgType.XDP:
            return self._run_xdp(bytes(data_in), repeat, engine, ctx_in, budget)
        if self.type in SKB_TYPES:
            return self._run_skb(bytes(data_in), repeat, engine, ctx_in, budget)
        ctx = ctx_in if ctx_in is not None else data_in
        retval, ns = self._run_ctx(ctx, engine, budget, repeat)
        # The test-run attr's retval is a __u32 (the kernel truncates r0), as for packets.
        return _result(retval & 0xFFFFFFFF, b"", ns, None)

    def _run_xdp(self, data: bytes, repeat, engine, ctx_in, budget) -> TestRunResult:
        loaded = self._prepare(engine)
        return _result(*testrun.xdp_run(loaded, self._engine_code(engine), budget, data, repeat,
                                        ctx_in, lambda b: self._fail(loaded, b)))

    def _run_skb(self, data: bytes, repeat, engine, ctx_in, budget) -> TestRunResult:
        loaded = self._prepare(engine)
        return _result(*testrun.skb_run(loaded, self._engine_code(engine), budget, data, repeat,
                                        ctx_in, SKB_TYPES[self.type],
                                        lambda b: self._fail(loaded, b)))

    def _run_ctx(self, ctx, engine, budget, repeat) -> tuple[int, float]:
        loaded = self._prepare(engine)
        return testrun.ctx_run(loaded, self._engine_code(engine), budget, ctx, repeat,
                               lambda b: self._fail(loaded, b))

    def run_batch(self, packets: Iterable, engine: str | Engine = DEFAULT_ENGINE,
                  budget: int | None = None, timeout: float | None = None) -> list[int]:
        """Verdicts of `packets`, each run on a fresh test-run context (the input packets are
        not modified).

        XDP/tc/socket programs run the whole batch in one C loop. A fault stops the batch with
        an ExecutionError whose `batch_index` names the packet and whose `results` holds the
        verdicts of the packets before it (their side effects on maps happened). `timeout`
        (seconds, wall clock) bounds the whole batch: kind "timeout", `packet_index` set.
        """
        with deadline(timeout, self.name):
            return self._run_batch(packets, engine, budget)

    def _run_batch(self, packets, engine, budget) -> list[int]:
        model = self._packet_model()
        if model is None:
            verdicts = []
            for index, packet in enumerate(packets):
                try:
                    verdicts.append(self.test_run(packet, engine=engine, budget=budget).retval)
                except ExecutionError as err:
                    err.batch_index = err.packet_index = index
                    err.results = verdicts
                    raise
            return verdicts
        loaded = self._prepare(engine)
        if not isinstance(packets, (list, tuple)):
            packets = list(packets)
        return loaded.run_packets(model, packets, engine, budget,
                                  refused=lambda p: self.test_run(p, engine=engine))

    def __repr__(self) -> str:
        return (f"<ObjectProgram {self.name!r} section={self.section!r} "
                f"type={self.type.name.lower()} insns={len(self.insns)}>")


# --- objects ----------------------------------------------------------------------------------

class Object:
    """A loaded eBPF object: `programs` and `maps` by name, sharing one Env."""

    def __init__(self, spec: ObjectSpec, env, maps: dict, ncpus: int | None):
        self.spec = spec
        self.env = env
        self.maps = maps
        self.programs: dict[str, ObjectProgram] = {}
        self.license = spec.license
        self.ncpus = ncpus
        self.path = spec.path

    def program(self, name: str | None = None, *, section: str | None = None) -> ObjectProgram:
        """The program called `name`, or the one in ELF section `section`; with neither, the
        only program of the object."""
        if name is not None:
            try:
                return self.programs[name]
            except KeyError:
                raise EbpfError(f"{self.path}: no program {name!r} (have "
                                f"{', '.join(self.programs)})") from None
        if section is not None:
            found = [p for p in self.programs.values() if p.section == section]
            if len(found) != 1:
                raise EbpfError(f"{self.path}: {len(found)} programs in section {section!r} "
                                f"(sections: {', '.join(p.section for p in self.programs.values())})")
            return found[0]
        if len(self.programs) != 1:
            raise EbpfError(f"{self.path}: {len(self.programs)} programs; name one of "
                            f"{', '.join(self.programs)}")
        return next(iter(self.programs.values()))

    def trace_log(self) -> list[str]:
        """bpf_trace_printk lines written since the previous call (trace_pipe semantics)."""
        return read_trace(self.env)

    def _prog_array_targets(self) -> list[ObjectProgram]:
        out = []
        for m in self.maps.values():
            for ref in getattr(m, "_refs", {}).values():
                if isinstance(ref, ObjectProgram):
                    out.append(ref)
        return out

    def __repr__(self) -> str:
        return (f"<Object {os.path.basename(self.path)!r} programs={list(self.programs)} "
                f"maps={list(self.maps)}>")


def load(path_or_bytes, *, ncpus: int | None = None, rodata: dict[str, Any] | None = None,
         programs: Sequence[str] | None = None, memory_limit: int | None = None,
         verify: bool = False) -> Object:
    """Load an eBPF ELF object.

    Args:
        path_or_bytes: a path or the ELF bytes.
        ncpus: virtual CPUs of the object: the slots of its per-CPU maps, and how many of its
            programs may run at once (each concurrent run occupies one CPU, as in the kernel,
            so per-CPU values are never shared). Default: the host's CPU count.
        rodata: values for `const volatile` globals (name -> int or bytes), set before the
            maps are created, as a libbpf skeleton's `skel->rodata->name = value`.
        programs: names of the programs to load (default: all).
        memory_limit: bytes the object's maps may use together (default
            ebpfjit.maps.DEFAULT_MEMORY_LIMIT, 256 MiB); see ebpfjit.maps.MemoryAccount.
            `Object.memory` reports the use.
        verify: run ebpfjit's static verifier (ebpfjit.verifier) on each program first, as
            the kernel does at load; a rejection raises VerifierError with the kernel-style
            log. Opt-in for now (programs are run-time checked either way).
    Returns:
        An Object.
    Raises:
        ElfError: malformed object (from ebpfjit.elf).
        VerifierError: a program calls an unknown helper, references a missing map, or
            accesses its context in a way the kernel would refuse (pc included).
        MapError: a map cannot be created (for instance it does not fit memory_limit).
    """
    # Lazy: pyelftools (~80 ms) only for ELF input (typed raw programs load through here).
    from ..objects.elf import load_spec

    spec = load_spec(path_or_bytes)
    if rodata:
        spec = dataclasses.replace(spec, maps={n: dataclasses.replace(m)
                                               for n, m in spec.maps.items()})
        _patch_rodata(spec, rodata)
    return load_object_spec(spec, ncpus=ncpus, programs=programs, memory_limit=memory_limit,
                            verify=verify)


def program_from_code(code: bytes, prog_type: ProgType, *, name: str = "prog",
                      ncpus: int | None = None, verify: bool = False) -> ObjectProgram:
    """A program of the given type from raw bytecode (no maps), run like an object's program:
    context accesses converted, the type's test-run model (XDP buffer, skb) in both engines."""
    pspec = ProgramSpec(name=name, section="", type=ProgType(prog_type), code=bytes(code),
                        license="GPL")
    spec = ObjectSpec(path="<bytecode>", programs={name: pspec}, maps={}, license="GPL")
    return load_object_spec(spec, ncpus=ncpus, verify=verify).programs[name]


def load_object_spec(spec: ObjectSpec, *, ncpus: int | None = None,
                     programs: Sequence[str] | None = None,
                     memory_limit: int | None = None, verify: bool = False) -> Object:
    """An Object from an ObjectSpec (what `load` does after parsing the ELF)."""

    memory = MemoryAccount(DEFAULT_MEMORY_LIMIT if memory_limit is None else memory_limit)
    env = Env()
    if ncpus is not None:
        env.ncpus = ncpus
    _helpers.install_builtin_helpers(env)
    maps: dict[str, Any] = {}
    for name, mspec in spec.maps.items():
        lock = _spin_lock_offset(spec.btf, mspec.value_type_id)
        maps[name] = Map(mspec, env.ncpus, btf=spec.btf, spin_lock_off=lock, memory=memory)
    for m in maps.values():
        m.attach(env)
    env.set_maps([m.ptr for m in maps.values()])
    env.map_names = list(maps)
    obj = Object(spec, env, maps, ncpus)
    obj.memory = memory
    obj._keep_maps = list(maps.values())
    chosen = list(spec.programs) if programs is None else list(programs)
    map_list = list(maps.values())
    for name in chosen:
        if name not in spec.programs:
            raise EbpfError(f"{spec.path}: no program {name!r} (have {', '.join(spec.programs)})")
        pspec = spec.programs[name]
        if pspec.unsupported:       # a load_spec(per_program=True) spec: refuse, never guess
            raise VerifierError(f"program {name!r}: {pspec.unsupported}")
        if verify:
            # Lazy: the verifier (~80 ms) only with verify=True.
            from ..verifier import verify_spec
            verify_spec(pspec, spec)
        insns = _insn.decode(pspec.code)
        check_program(name, insns, env, len(map_list), map_list)
        insns = convert_context(insns, pspec.type)
        obj.programs[name] = ObjectProgram(pspec, _insn.encode(insns), env, obj)
    _fill_values(obj)
    return obj


def _fill_values(obj: Object) -> None:
    """Static `.values = {...}` of prog_arrays (program names) and map-in-maps (map names)."""
    for name, m in obj.maps.items():
        values = m.spec.values
        if not values:
            continue
        for key, ref in values.items():
            if m.spec.type == MapType.PROG_ARRAY:
                if ref not in obj.programs:
                    if ref in obj.spec.programs:
                        continue    # not chosen for loading: the slot stays empty
                    raise VerifierError(f"prog_array {name!r} slot {key}: no program {ref!r} "
                                        f"in the object")
                m.set_program(key, obj.programs[ref].loaded)
                m._refs[int(key).to_bytes(4, "little")] = obj.programs[ref]
            else:
                if ref not in obj.maps:
                    raise VerifierError(f"map {name!r} key {key}: no inner map {ref!r}")
                m.set_inner(key, obj.maps[ref])


def spec_of(obj_or_spec) -> ObjectSpec:
    return obj_or_spec.spec if isinstance(obj_or_spec, Object) else obj_or_spec


def copy_map_spec(m: MapSpec) -> MapSpec:
    return dataclasses.replace(m)


__all__ += ["check_program", "convert_context", "ExecutionError", "deadline"]
