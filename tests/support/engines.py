"""Running bytecode on both engines: the program harnesses the engine tests share.

`Both` runs one program on the interpreter and the JIT and asserts they agree; `Harness` is an
env with the builtin and map helpers and a list of maps, for programs that call helpers;
`fuzz_harness` the bare env the engine fuzzers run random bytecode in.
"""
from __future__ import annotations

from ebpfjit import runtime
from ebpfjit.errors import ExecutionError
from ebpfjit.jit import compile as jit

U64 = (1 << 64) - 1


def identity(r1, r2, r3, r4, r5):
    """Helper 5 of the assembly tables: returns its first argument."""
    return r1


class Both:
    """One program on both engines (the JIT compiled at `opt_level`, no disk cache)."""

    def __init__(self, code: bytes, opt_level: int = 2, bounds_checks: bool = True):
        self.env = runtime.Env()
        self.env.register_helper(5, identity)
        self.loaded = runtime.LoadedProgram(code, self.env)
        self.jit = jit.compile_program(code, opt_level=opt_level, bounds_checks=bounds_checks,
                                       cache=False)
        self.loaded.set_jit_function(self.jit.address, self.jit)

    def run(self, engine: str, mem=b"", budget=None):
        """(r0, final mem) or the ExecutionError's (kind, pc, size)."""
        buf = bytearray(mem)
        try:
            r0 = self.loaded.run(buf if mem else b"", engine=engine, budget=budget)
        except ExecutionError as exc:
            return ("error", exc.kind, exc.pc, exc.size), bytes(buf)
        return r0, bytes(buf)

    def both(self, mem=b"", budget=None):
        interp = self.run("interp", mem, budget)
        jitted = self.run("jit", mem, budget)
        assert jitted == interp, f"jit {jitted} != interp {interp}"
        return jitted


class Harness:
    """An env with the map helpers (and, unless `builtin_helpers=False`, every builtin helper:
    bpf_loop, for_each_map_elem, ...) and `maps` as its object's maps (lddw imm = index).
    `map_helpers=False` leaves the map helpers out too."""

    def __init__(self, maps=(), *, builtin_helpers: bool = True, map_helpers: bool = True):
        self.env = runtime.Env()
        if builtin_helpers:
            runtime.lib.ebpfjit_install_builtin_helpers(self.env.ptr)
        if map_helpers:
            runtime.lib.ebpfjit_install_map_helpers(self.env.ptr)
        self.maps = list(maps)
        if self.maps:
            self.env.set_maps([m.ptr for m in self.maps])
            for m in self.maps:
                m.attach(self.env)
        self._keep = []    # loaded programs stay alive as long as the harness

    def load(self, code: bytes, engine: str):
        prog = runtime.LoadedProgram(code, self.env)
        if engine == "jit":
            jc = jit.compile_program(code, cache=False)
            prog.set_jit_function(jc.address, jc)
        self._keep.append(prog)
        return prog

    def run(self, code: bytes, engine: str, budget=None, mem=b""):
        return self.load(code, engine).run(mem, engine=engine, budget=budget)

    def outcome(self, code: bytes, engine: str, budget=None):
        """("ok", r0) or the fault's (kind, pc)."""
        try:
            return ("ok", self.run(code, engine, budget))
        except ExecutionError as exc:
            return (exc.kind, exc.pc)


def fuzz_harness() -> Harness:
    """The engine fuzzers' env: no helper but 5 (`identity`), and as env->maps[0] a bare
    one-entry array map whose 64-byte value is a writable region, so that random `lddw` map
    references and the accesses through them reach real memory. Keep the harness alive while
    its env runs (it owns that memory)."""
    h = Harness(builtin_helpers=False, map_helpers=False)
    h.env.register_helper(5, identity)
    values = runtime.ffi.new("uint8_t[]", 64)
    m = runtime.ffi.new("struct ebpfjit_map_base *", {"value_size": 64, "max_entries": 1})
    m.values = values
    h.env.set_maps([m])
    h.env.add_region(values, 64, writable=True)
    h._keep += [values, m]
    return h
