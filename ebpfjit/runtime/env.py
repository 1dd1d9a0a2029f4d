"""The Python face of the C runtime `ebpfjit._rt`: envs (helpers, maps, regions), loaded programs,
runs on either engine, fault -> ExecutionError, and the layout/symbol facts the JIT builds on.

This is the only module that imports `ebpfjit._rt`.

Must not import: lower, jit, kernel, cli, program.

Imports: ebpfjit.engine, ebpfjit._rt, ebpfjit.errors, ebpfjit.isa
"""
from __future__ import annotations

import array
import collections
import contextlib
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .._rt import ffi, lib
from ..engine import Engine, as_engine
from ..errors import EbpfError, ExecutionError
from ..isa.disasm import format_insn
from ..isa.insn import decode, iter_pcs

U64 = (1 << 64) - 1
MAX_HELPERS = lib.EBPFJIT_MAX_HELPERS
MAX_FRAMES = lib.EBPFJIT_MAX_FRAMES
STACK_SIZE = lib.EBPFJIT_STACK_SIZE
DEFAULT_BUDGET = lib.EBPFJIT_DEFAULT_BUDGET
ENGINE_INTERP = lib.EBPFJIT_ENGINE_INTERP
ENGINE_JIT = lib.EBPFJIT_ENGINE_JIT
_RUN_FAILED = lib.EBPFJIT_RUN_FAILED
_run_copy = lib.ebpfjit_run_copy
_run_inplace = lib.ebpfjit_run_inplace
_run_empty = lib.ebpfjit_run_empty
_from_buffer = ffi.from_buffer
# Test-run models of the fast packet entry points (LoadedProgram.make_packet_run, run_packets).
PKT_XDP = lib.EBPFJIT_RUNNER_XDP
PKT_SKB_L2 = lib.EBPFJIT_RUNNER_SKB_L2
PKT_OUT_MAX = lib.EBPFJIT_PKT_OUT_MAX
PKT_SKB_L3 = lib.EBPFJIT_RUNNER_SKB_L3

KINDS = {
    lib.EBPFJIT_ERR_OOB_LOAD: "oob_load",
    lib.EBPFJIT_ERR_OOB_STORE: "oob_store",
    lib.EBPFJIT_ERR_UNKNOWN_HELPER: "unknown_helper",
    lib.EBPFJIT_ERR_CALL_DEPTH: "call_depth",
    lib.EBPFJIT_ERR_BUDGET: "budget",
    lib.EBPFJIT_ERR_HELPER: "helper",
    lib.EBPFJIT_ERR_FALL_OFF: "fall_off",
    lib.EBPFJIT_ERR_BAD_INSN: "bad_insn",
    lib.EBPFJIT_ERR_TIMEOUT: "timeout",
}

# Per thread: the exception a Python helper raised during the current run.
_tls = threading.local()
# Env pointer address -> Env, so the C trampolines find the Python callables of the running env.
_ENVS: weakref.WeakValueDictionary[int, Env] = weakref.WeakValueDictionary()


def thread_state():
    """This thread's `struct ebpfjit_state *` at the current nesting level: the state the next
    run from Python uses, and right after a run returns, the state it used (C thread-local)."""
    st = lib.ebpfjit_thread_state()
    if st == ffi.NULL:
        raise ExecutionError(f"runs nested more than {lib.EBPFJIT_MAX_PY_NESTING} deep through "
                             "Python helpers", kind="helper")
    return st


@contextlib.contextmanager
def deadline(timeout: float | None, program: str | None = None):
    """Runs on this thread inside the block end with ExecutionError kind "timeout" once
    `timeout` seconds (wall clock) have passed. The engines read the deadline each time a budget
    chunk runs out (csrc/runtime.c ebpfjit_budget_refill). Nested blocks keep the earlier
    deadline. The error names `program` and the timeout."""
    if timeout is None:
        yield
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    # Past ~292 years the ns count would overflow: no deadline is as good.
    due = lib.ebpfjit_now_ns() + int(min(timeout, 1e9) * 1e9)
    prev = lib.ebpfjit_set_deadline(due)
    if prev and prev < due:
        lib.ebpfjit_set_deadline(prev)
    try:
        yield
    except ExecutionError as err:
        if err.kind == "timeout" and getattr(err, "timeout", None) is None:
            err.timeout = timeout
            where = f"program {program!r}: " if program else ""
            err.args = (where + err.args[0].replace(
                "its wall-clock timeout passed", f"timeout of {timeout:g} s passed"),)
        raise
    finally:
        lib.ebpfjit_set_deadline(prev)


def _addr(ptr) -> int:
    return int(ffi.cast("uintptr_t", ptr))


# --- lifetimes: what a running program may still reach ------------------------------------------

# (epoch ticket, objects) in ticket order: objects unpublished while runs may still use them (a
# PROG_ARRAY's program, a map-in-map's inner map), kept until every run that started before the
# removal has ended (csrc/epoch.h, the kernel's RCU grace period). Reentrant: dropping objects
# runs finalizers, which may retire more.
_limbo: collections.deque[tuple[int, tuple[Any, ...]]] = collections.deque()
_limbo_lock = threading.RLock()


def retire(*objs: Any) -> None:
    """Keep `objs` alive until no run that could have reached them is still running; call after
    unpublishing them (the slot that pointed at them already points elsewhere)."""
    if not objs:
        return
    with _limbo_lock:
        _limbo.append((lib.ebpfjit_epoch_retire(), objs))
    reclaim()


def reclaim() -> int:
    """Release retired objects and run deferred C frees whose grace period has passed; return
    how many retirements are still waiting (Python objects and C memory)."""
    due = []
    with _limbo_lock:
        while _limbo and lib.ebpfjit_epoch_passed(_limbo[0][0]):
            due.append(_limbo.popleft())
    del due         # the objects go here, outside the lock: their finalizers free C maps
    lib.ebpfjit_reclaim()
    return len(_limbo) + int(lib.ebpfjit_deferred_pending())


@ffi.def_extern()
def ebpfjit_py_helper(env, helper_id, r1, r2, r3, r4, r5):
    owner = _ENVS.get(_addr(env))
    fn = owner._py_helpers.get(helper_id) if owner is not None else None
    try:
        if fn is None:
            raise EbpfError(f"no Python callable registered for helper {helper_id}")
        rv = fn(r1, r2, r3, r4, r5)
        return 0 if rv is None else int(rv) & U64
    except BaseException as exc:   # noqa: B036 - must never unwind through C
        _tls.helper_exc = exc
        st = lib.ebpfjit_current()
        if st != ffi.NULL:
            lib.ebpfjit_fault(st, lib.EBPFJIT_ERR_HELPER, -1, 0, 0)
            st.fault_info = helper_id
        return 0


class Env:
    """A `struct ebpfjit_env`: helper table, maps and memory regions shared by programs.

    Starts with an empty helper table. Freed when the Env is garbage-collected (programs keep
    their Env alive).
    """

    def __init__(self) -> None:
        ptr = lib.ebpfjit_env_new()
        if ptr == ffi.NULL:
            raise MemoryError("ebpfjit_env_new failed")
        self.ptr = ffi.gc(ptr, lib.ebpfjit_env_free)
        self._py_helpers: dict[int, Callable[..., Any]] = {}
        self._keep: dict[Any, Any] = {}
        self._maps_array = None
        self.map_names: list[str] | None = None    # names of set_maps' maps, for fault messages
        _ENVS[_addr(self.ptr)] = self

    def register_helper(self, helper_id: int, fn: Callable[..., Any] | int | Any) -> None:
        """Install helper `helper_id`.

        Args:
            helper_id: 0 <= id < EBPFJIT_MAX_HELPERS.
            fn: a Python callable `fn(r1, r2, r3, r4, r5) -> int | None` (slow path; an exception
                stops the run with an ExecutionError chained to it), a cffi function-pointer
                cdata, or the int address of a C `uint64_t f(uint64_t x5)`.
        """
        helper_id = _check_id(helper_id)
        if isinstance(fn, bool):
            raise TypeError("helper must be a callable, a cffi function pointer or an address")
        if isinstance(fn, int):
            if fn == 0:
                raise ValueError("helper address must not be 0")
            ptr = ffi.cast("ebpfjit_helper_fn", fn)
            self._py_helpers.pop(helper_id, None)
        elif isinstance(fn, ffi.CData):
            ptr = ffi.cast("ebpfjit_helper_fn", fn)
            self._py_helpers.pop(helper_id, None)
        elif callable(fn):
            ptr = lib.ebpfjit_py_trampoline(helper_id)
            self._py_helpers[helper_id] = fn
        else:
            raise TypeError("helper must be a callable, a cffi function pointer or an address")
        self._keep[("helper", helper_id)] = fn
        self.ptr.helpers[helper_id] = ptr

    def unregister_helper(self, helper_id: int) -> None:
        helper_id = _check_id(helper_id)
        self.ptr.helpers[helper_id] = ffi.NULL
        self._py_helpers.pop(helper_id, None)
        self._keep.pop(("helper", helper_id), None)

    def has_helper(self, helper_id: int) -> bool:
        return 0 <= helper_id < MAX_HELPERS and self.ptr.helpers[helper_id] != ffi.NULL

    def helper_address(self, helper_id: int) -> int:
        """Address of the C function installed for `helper_id` (0 if none)."""
        return _addr(self.ptr.helpers[_check_id(helper_id)])

    @property
    def ncpus(self) -> int:
        """Virtual CPUs: per-CPU slots, and how many runs of this env may execute at once."""
        return int(self.ptr.ncpus)

    @ncpus.setter
    def ncpus(self, value: int) -> None:
        if lib.ebpfjit_env_set_ncpus(self.ptr, int(value)) != 0:
            raise EbpfError(f"ncpus must be 1..{lib.EBPFJIT_MAX_VCPUS}, not {value}")

    def add_region(self, base: int | Any, length: int, writable: bool) -> None:
        """Let programs of this env touch [base, base+length). `base` is an address, a cdata
        pointer, or a buffer object (kept alive by the Env)."""
        if isinstance(base, int):
            address = base
        elif isinstance(base, ffi.CData):
            address = _addr(base)
            self._keep[("region", len(self._keep))] = base
        else:
            buf = ffi.from_buffer(base, require_writable=bool(writable))
            address = _addr(buf)
            self._keep[("region", len(self._keep))] = buf
        if length < 0:
            raise ValueError(f"region length {length} is negative")
        if lib.ebpfjit_env_add_region(self.ptr, address, length, 1 if writable else 0) != 0:
            raise EbpfError(f"too many env regions (at most {lib.EBPFJIT_MAX_ENV_REGIONS})")

    def set_maps(self, maps: Sequence[Any]) -> None:
        """Set the table `lddw` src=1/2 indexes: map pointers (cdata or int addresses)."""
        items = [ffi.cast("void *", m) for m in maps]
        arr = ffi.new("void *[]", items) if items else ffi.NULL
        self.ptr.maps = arr
        self.ptr.nmaps = len(items)
        if self._maps_array is not None:
            retire(self._maps_array)    # a run in another thread may still read the old table
        self._maps_array = (arr, list(maps))


def _check_id(helper_id: int) -> int:
    if not isinstance(helper_id, int) or not 0 <= helper_id < MAX_HELPERS:
        raise ValueError(f"helper id {helper_id!r} out of range 0..{MAX_HELPERS - 1}")
    return helper_id


def _engine_code(engine: str | Engine) -> int:
    return ENGINE_JIT if as_engine(engine) is Engine.JIT else ENGINE_INTERP


def _mem_args(mem) -> tuple[Any, int, int]:
    """(pointer argument, length, copy flag) for a run's memory."""
    if type(mem) is bytes:
        return mem, len(mem), 1
    if type(mem) is bytearray:
        buf = ffi.from_buffer(mem)
        return buf, len(buf), 0
    if isinstance(mem, (bytearray, memoryview)) or hasattr(mem, "__buffer__") or _is_buffer(mem):
        if isinstance(mem, memoryview) and mem.readonly:
            buf = ffi.from_buffer(mem)
            return buf, len(buf), 1
        try:
            buf = ffi.from_buffer(mem, require_writable=True)
            return buf, len(buf), 0
        except (TypeError, BufferError):
            buf = ffi.from_buffer(mem)
            return buf, len(buf), 1
    raise TypeError(f"mem must be bytes or a buffer, not {type(mem).__name__}")


def _is_buffer(obj) -> bool:
    try:
        memoryview(obj)
    except TypeError:
        return False
    return True


class LoadedProgram:
    """A `struct ebpfjit_prog`: a private copy of the bytecode, its interpreter predecode, and
    optionally the JIT's machine code, bound to an Env."""

    def __init__(self, code: bytes, env: Env, prog_type: int = 0) -> None:
        code = bytes(code)
        if len(code) % 8 or not code:
            raise EbpfError(f"bytecode length {len(code)} is not a positive multiple of 8")
        if len(code) // 8 > lib.EBPFJIT_MAX_INSNS:
            raise EbpfError(f"program has {len(code) // 8} instructions, more than the kernel's "
                            f"limit of {lib.EBPFJIT_MAX_INSNS} (BPF_COMPLEXITY_LIMIT_INSNS)")
        self.env = env
        self.code = code
        self._code = ffi.new("uint8_t[]", code)
        self.ptr = ffi.new("struct ebpfjit_prog *")
        self.ptr.code = self._code
        self.ptr.nslots = len(code) // 8
        self.ptr.prog_type = prog_type
        self.ptr.env = env.ptr
        # What fault messages name (set by the owner): source lines, the name of the run's memory.
        self.line_info: Sequence[tuple[int, str, int, str]] = ()
        self.mem_name = "memory"
        self.name = "prog"              # what a timeout names (set by the owner)
        self._jit_keep = None
        self._jit_retired: list[object] = []
        self._jit_address = None
        self._rn_interp = ffi.new("struct ebpfjit_runner *",
                                  {"prog": self.ptr, "budget": DEFAULT_BUDGET,
                                   "engine": ENGINE_INTERP})
        self._rn_jit = None
        self._pkt_runners: dict[tuple[int, int, int], Any] = {}
        if lib.ebpfjit_interp_prepare(self.ptr) != 0:
            raise MemoryError("ebpfjit_interp_prepare failed")
        self._bind_run()

    def __del__(self) -> None:
        ptr = getattr(self, "ptr", None)
        if ptr is not None:
            lib.ebpfjit_interp_release(ptr)

    def set_jit_function(self, address: int, keepalive: object,
                         callback_address: int | None = None) -> None:
        """Use the machine code at `address` (`int32_t fn(st, r1, r2)`) for engine="jit";
        `keepalive` (the JIT's engine/tracker) lives as long as this program.
        `callback_address` is the object's `ebpfjit_jit_callback_fn` entry (callbacks of
        bpf_loop & co. then run jitted too); None takes `keepalive.callback_address` if the
        keepalive is a JitCode, and 0 runs callbacks in the interpreter."""
        if callback_address is None:
            callback_address = getattr(keepalive, "callback_address", 0) or 0
        self.ptr.jit_fn = ffi.cast("ebpfjit_jit_fn", address) if address else ffi.NULL
        self.ptr.jit_callback = (ffi.cast("ebpfjit_jit_callback_fn", callback_address)
                                 if address and callback_address else ffi.NULL)
        # Code installed before may still be running in another thread (runs release the
        # GIL): it lives as long as this program, never freed under a running thread.
        if self._jit_keep is not None and self._jit_keep is not keepalive:
            self._jit_retired.append(self._jit_keep)
        self._jit_keep = keepalive
        self._rn_jit = (ffi.new("struct ebpfjit_runner *",
                                {"prog": self.ptr, "budget": DEFAULT_BUDGET, "engine": ENGINE_JIT})
                        if address else None)
        self._bind_run()

    def run(self, mem=b"", engine: str = "interp", budget: int | None = None,
            r1: int | None = None, r2: int | None = None) -> int:
        """Run once; return r0 as an unsigned 64-bit int.

        r1 = a pointer to `mem` (a private copy of bytes; writable buffers such as bytearray are
        used in place), r2 = len(mem); empty mem gives r1 = r2 = 0. `r1`/`r2` override them.
        `budget` bounds taken back-edges, bpf-to-bpf calls and callback invocations (helper
        calls end by themselves and spend none; default 1e8). Raises ExecutionError on a fault.

        (Each instance shadows this method with a closure from `_bind_run`, the fast path.)
        """
        return self._run_slow(mem, engine, budget, r1, r2)

    def _bind_run(self) -> None:
        self.run = self.make_run(self._run_slow)

    def make_run(self, fallback: Callable[..., int], default_engine: str = "interp") -> Callable[..., int]:
        """The per-instance fast `run(mem=b"", engine="interp", budget=None, r1=None, r2=None)`:
        bytes / bytearray / no mem on an engine ready to run, everything else through
        `fallback(mem, engine, budget, r1, r2)`. Rebuilt by set_jit_function."""
        # A closure reads its constants as cell variables, cheaper than self/global lookups;
        # a run costs a Python call plus one cffi call of at most 3 arguments (cffi passes 2+
        # arguments through a tuple). It must hold self strongly: `LoadedProgram(...).run()`
        # would otherwise free the program in the middle of its run. The cycle is collected.
        rn_interp, rn_jit = self._rn_interp, self._rn_jit
        run_copy, run_inplace, run_empty = _run_copy, _run_inplace, _run_empty
        from_buffer, failed, prog = ffi.from_buffer, _RUN_FAILED, self

        def run(mem=b"", engine=default_engine, budget=None, r1=None, r2=None, timeout=None):
            # Every test here costs ~10-20 ns on this Python: keep the common case shortest.
            if timeout is not None:
                with deadline(timeout, prog.name):
                    return fallback(mem, engine, budget, r1, r2)
            if engine == "interp":
                rn = rn_interp
            elif engine == "jit" and rn_jit is not None:
                rn = rn_jit
            else:
                return fallback(mem, engine, budget, r1, r2)
            if budget is r1 is r2 is None:
                t = type(mem)
                if t is bytes:
                    r0 = run_copy(rn, mem, len(mem)) if mem else run_empty(rn)
                elif t is bytearray:
                    r0 = run_inplace(rn, from_buffer(mem), len(mem)) if mem else run_empty(rn)
                else:
                    return fallback(mem, engine, budget, r1, r2)
                if r0 != failed:
                    return r0
                st = lib.ebpfjit_thread_state()
                if st.status:
                    prog._raise(st, DEFAULT_BUDGET)
                return r0
            return fallback(mem, engine, budget, r1, r2)

        run.__doc__ = LoadedProgram.run.__doc__
        return run

    # --- packet programs (XDP, tc, socket filter) on the test-run model --------------------

    def _packet_runner(self, ctx: int, engine: int, budget: int):
        key = (ctx, engine, budget)
        rn = self._pkt_runners.get(key)
        if rn is None:
            rn = ffi.new("struct ebpfjit_runner *", {"prog": self.ptr, "budget": budget,
                                                     "engine": engine, "ctx": ctx})
            self._pkt_runners[key] = rn
        return rn

    def make_packet_run(self, ctx: int, fallback: Callable[..., int],
                        default_engine: str = "interp") -> Callable[..., int]:
        """A fast `run(packet=b"", engine="interp", budget=None) -> verdict` on the test-run
        model `ctx` (PKT_XDP, PKT_SKB_L2, PKT_SKB_L3) without ctx_in: bytes are copied into
        the model in C, a bytearray receives the output packet (resized if the program grew or
        shrank it). Engines without code, other buffers, an explicit budget and packets the
        model refuses go through `fallback(packet, engine, budget)` (which must raise the
        test-run error for a refused packet)."""
        rn_interp = self._packet_runner(ctx, ENGINE_INTERP, DEFAULT_BUDGET)
        rn_jit = (self._packet_runner(ctx, ENGINE_JIT, DEFAULT_BUDGET)
                  if self.ptr.jit_fn != ffi.NULL else None)
        run_copy, run_inplace = lib.ebpfjit_pkt_run_copy, lib.ebpfjit_pkt_run_inplace
        from_buffer, prog = ffi.from_buffer, self

        def run(packet=b"", engine=default_engine, budget=None, timeout=None):
            if timeout is not None:
                with deadline(timeout, prog.name):
                    return fallback(packet, engine, budget)
            if engine == "interp":
                rn = rn_interp
            elif engine == "jit" and rn_jit is not None:
                rn = rn_jit
            else:
                return fallback(packet, engine, budget)
            if budget is None:
                t = type(packet)
                if t is bytes:
                    r = run_copy(rn, packet, len(packet))
                elif t is bytearray and packet:
                    r = run_inplace(rn, from_buffer(packet), len(packet))
                else:
                    return fallback(packet, engine, budget)
                if r >= 0:
                    return r
                return prog._packet_failed(r, packet, engine, budget, fallback)
            return fallback(packet, engine, budget)

        return run

    def _packet_failed(self, r, packet, engine, budget, fallback):
        if r == lib.EBPFJIT_PKT_RESIZED:
            out = lib.ebpfjit_thread_out()
            packet[:] = ffi.buffer(out.data, out.len)
            return int(thread_state().r0) & 0xFFFFFFFF
        if r == lib.EBPFJIT_PKT_REFUSED:
            return fallback(packet, engine, budget)     # raises the test run's error
        st = thread_state()
        self._raise(st, DEFAULT_BUDGET if budget is None else budget)
        raise AssertionError("unreachable: a failed packet run without a fault")

    def _engine_and_budget(self, engine: str, budget: int | None) -> tuple[int, int]:
        """The C engine code of `engine` and the budget a run gets (None: DEFAULT_BUDGET), checked
        as every run path checks them: the JIT needs compiled code, a budget is >= 1."""
        e = _engine_code(engine)
        if e == ENGINE_JIT and self.ptr.jit_fn == ffi.NULL:
            raise EbpfError("engine 'jit' requested but no JIT function is set")
        budget = DEFAULT_BUDGET if budget is None else budget
        if budget < 1:
            raise ValueError(f"budget must be >= 1, not {budget}")
        return e, budget

    def run_packets(self, ctx: int, packets: Sequence[Any], engine: str = "interp",
                    budget: int | None = None, refused: Callable[[Any], Any] | None = None
                    ) -> list[int]:
        """Verdicts of `packets` (bytes-like), each on a fresh model `ctx`, in one C loop.

        A fault stops the batch: the ExecutionError names the packet (`batch_index`, and
        `results`: the verdicts of the packets before it). A packet the model refuses calls
        `refused(packet)`, which should raise the test run's error."""
        e, budget = self._engine_and_budget(engine, budget)
        n = len(packets)
        if not n:
            return []
        data = b"".join(packets)
        lens = array.array("I", map(len, packets))
        if sum(lens) != len(data):      # buffers whose len() is not their size in bytes
            lens = array.array("I", (memoryview(p).nbytes for p in packets))
        out = ffi.new("uint32_t[]", n)
        done = lib.ebpfjit_pkt_run_batch(self._packet_runner(ctx, e, budget), data,
                                         ffi.from_buffer("uint32_t[]", lens), n, out)
        verdicts = ffi.unpack(out, n)
        if done == n:
            return verdicts
        st = thread_state()
        if st.status:
            try:
                self._raise(st, budget)
            except ExecutionError as err:
                err.batch_index = err.packet_index = done
                err.results = verdicts[:done]
                if hasattr(err, "add_note"):
                    err.add_note(f"in packet {done} of the batch ({len(verdicts[:done])} "
                                 "packets before it ran)")
                raise
        if refused is not None:
            refused(packets[done])
        raise EbpfError(f"packet {done} of the batch was refused by the test-run model")

    def run_chunk(self, ctx: int, data, lens, verdicts, engine: str = "interp",
                  budget: int | None = None, out=None, out_lens=None) -> tuple[int, int]:
        """Run the packets laid end to end in `data` (lengths: `lens`, an array('I')), each on a
        fresh model `ctx`, in one C loop, storing verdicts in `verdicts` (array('I'), len >=
        len(lens)). With `out` (a writable buffer) and `out_lens` (array('I')), the output
        packets (data_out) are appended to `out`; the loop stops early when `out` may not hold
        the next one. Returns (packets run, bytes of `out` used). Fewer packets than asked
        with no fault and room left in `out` means the model refused the next packet; a fault
        raises ExecutionError with `batch_index` (its index in this chunk)."""
        e, budget = self._engine_and_budget(engine, budget)
        n = len(lens)
        if not n:
            return 0, 0
        rn = self._packet_runner(ctx, e, budget)
        clens = ffi.from_buffer("uint32_t[]", lens)
        cverd = ffi.from_buffer("uint32_t[]", verdicts, require_writable=True)
        if len(verdicts) < n:
            raise ValueError("verdicts is shorter than lens")
        if out is None:
            done, used = lib.ebpfjit_pkt_run_batch(rn, ffi.from_buffer(data), clens, n, cverd), 0
        else:
            if len(out_lens) < n:
                raise ValueError("out_lens is shorter than lens")
            used_p = ffi.new("uint64_t *")
            cout = ffi.from_buffer(out, require_writable=True)
            done = lib.ebpfjit_pkt_run_batch_out(
                rn, ffi.from_buffer(data), clens, n, cverd, cout, len(cout),
                ffi.from_buffer("uint32_t[]", out_lens, require_writable=True), used_p)
            used = int(used_p[0])
        if done < n:
            st = thread_state()
            if st.status:
                try:
                    self._raise(st, budget)
                except ExecutionError as err:
                    err.batch_index = done
                    raise
        return done, used

    def run_pcap_records(self, ctx: int, buf, start: int, end: int, swap: bool, max_rec: int,
                         max_n: int, verdicts, counts, engine: str = "interp",
                         budget: int | None = None) -> tuple[int, int, int]:
        """Run the packets of the complete classic-pcap records in buf[start:end] straight from
        those bytes, each on a fresh model `ctx`, in one C loop (csrc/contexts.h
        ebpfjit_pkt_run_pcap): verdicts go to `verdicts` (array('I'), len >= max_n) and are
        counted into `counts` (array('Q') of COUNTED_VERDICTS + 1; the last: larger values).
        Returns (records run, bytes consumed, stop): stop 0 the records ended, 1 a record is
        longer than max_rec, 3 the model refused the next packet. A fault raises
        ExecutionError with `batch_index` (the record's index from `start`)."""
        e, budget = self._engine_and_budget(engine, budget)
        if (max_n < 0 or len(verdicts) < max_n or len(counts) < COUNTED_VERDICTS + 1
                or not 0 <= start <= end <= len(buf)):
            raise ValueError("run_pcap_records: max_n, counts or the buffer range does not fit")
        consumed = ffi.new("uint64_t *")
        stop = ffi.new("int *")
        n = lib.ebpfjit_pkt_run_pcap(
            self._packet_runner(ctx, e, budget), ffi.from_buffer(buf) + start, end - start,
            1 if swap else 0, max_rec, max_n,
            ffi.from_buffer("uint32_t[]", verdicts, require_writable=True),
            ffi.from_buffer("uint64_t[]", counts, require_writable=True), consumed, stop)
        if stop[0] == 2:
            st = thread_state()
            try:
                self._raise(st, budget)
            except ExecutionError as err:
                err.batch_index = int(n)
                raise
        return int(n), int(consumed[0]), int(stop[0])

    def _run_slow(self, mem, engine, budget, r1, r2) -> int:
        e, budget = self._engine_and_budget(engine, budget)
        buf, n, copy = _mem_args(mem)
        st = thread_state()
        if r1 is None and r2 is None:
            r0 = lib.ebpfjit_run_py(self.ptr, st, e, budget, buf, n, copy)
        else:
            r0 = lib.ebpfjit_run_py_regs(self.ptr, st, e, budget, buf, n, copy,
                                         (r1 is not None) | (r2 is not None) << 1,
                                         (r1 or 0) & U64, (r2 or 0) & U64)
        if r0 == _RUN_FAILED:
            st = lib.ebpfjit_thread_state()
            if st.status:
                self._raise(st, budget)
        return r0

    def _raise(self, st, budget: int):
        err = fault_to_error(st, self._insns(), budget=budget, line_info=self.line_info,
                             mem_name=self.mem_name, map_names=self.env.map_names)
        cause = _tls.__dict__.pop("helper_exc", None)
        if cause is not None and st.status == lib.EBPFJIT_ERR_HELPER:
            if not isinstance(cause, Exception):
                raise cause    # KeyboardInterrupt, SystemExit: not the program's fault
            raise err from cause
        raise err

    def _insns(self):
        try:
            return decode(self.code, validate=False)
        except EbpfError:
            return None

    def run_repeat(self, mem=b"", repeat: int = 1000, engine: str = "interp",
                   budget: int | None = None) -> tuple[int, float]:
        """Run `repeat` times in a C loop over one buffer; return (r0, mean ns per run).

        The buffer is shared by the runs (bytes are copied once), so stores accumulate.
        """
        st = thread_state()
        # "jit-code" times the compiled function alone (called directly after one full run),
        # which is how the machine code is compared with native code; "jit" includes the
        # runner's per-run bookkeeping.
        e = {"interp": ENGINE_INTERP, "jit": ENGINE_JIT, "jit-code": lib.EBPFJIT_ENGINE_JIT_CODE}.get(engine)
        if e is None:
            raise ValueError(f"unknown engine {engine!r} (expected 'interp', 'jit' or 'jit-code')")
        if e != ENGINE_INTERP and self.ptr.jit_fn == ffi.NULL:
            raise EbpfError("engine 'jit' requested but no JIT function is set")
        budget = DEFAULT_BUDGET if budget is None else budget
        if budget < 1 or repeat < 1:
            raise ValueError("budget and repeat must be >= 1")
        buf, n, copy = _mem_args(mem)
        ns = ffi.new("double *")
        r0 = lib.ebpfjit_run_repeat(self.ptr, st, e, budget, buf, n, copy, repeat, ns)
        if r0 == _RUN_FAILED and lib.ebpfjit_thread_state().status:
            self._raise(lib.ebpfjit_thread_state(), budget)
        return r0, ns[0]


# --- faults ----------------------------------------------------------------------------------

def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


# A fault address within this many bytes of a region is described relative to it; farther away
# the message names no address at all (a host address in an error message is an info leak).
_NEAR = 65536


def _regions(st, mem_name: str, map_names: Sequence[str] | None):
    """(describe, base, length) for every memory the faulting run knew; describe(offset from
    base) gives (region name, offset as shown, "of N bytes")."""
    out = []
    depth = min(st.fault_depth, MAX_FRAMES)
    for i in range(depth - 1, -1, -1):
        lo = st.fault_frame_lo[i]
        if lo:
            out.append((lambda off, i=i: ("stack", off - STACK_SIZE, f"of frame {i} "
                                          f"({STACK_SIZE} bytes)"), lo, STACK_SIZE))
    # The snapshot ebpfjit_fault took: a test-run model clears the live regions after the run.
    if st.fault_mem_len:
        out.append((lambda off, n=st.fault_mem_len: (mem_name, off, f"of {n} bytes"),
                    st.fault_mem_base, st.fault_mem_len))
    if st.fault_ctx_len:
        out.append((lambda off, n=st.fault_ctx_len: ("context", off, f"of {n} bytes"),
                    st.fault_ctx_base, st.fault_ctx_len))
    env = st.env
    if env != ffi.NULL and map_names:
        # Only maps the loader named: those are `struct ebpfjit_map` (set_maps takes any pointer).
        for i, name in enumerate(map_names[:env.nmaps]):
            m = ffi.cast("struct ebpfjit_map *", env.maps[i])
            if m.arena != ffi.NULL and m.arena_len and m.value_stride:
                out.append((_map_value_text(name, m), _addr(m.arena), m.arena_len))
            if m.keys != ffi.NULL and m.keys_len:
                out.append((lambda off, name=name, n=m.keys_len:
                            (f"map {name!r} key storage", off, f"of {n} bytes"),
                            _addr(m.keys), m.keys_len))
    return out


def _map_value_text(name: str, m):
    stride, elem, size = m.value_stride, m.elem_size or m.value_stride, m.base.value_size
    count = m.arena_len // stride

    def describe(off: int) -> str:
        # Values are `value_stride` apart (per-CPU copies `elem_size` apart inside one stride):
        # name the offset inside the value the access came nearest to.
        entry = min(max(off // stride, 0), count - 1)
        rest = off - entry * stride
        if 0 <= rest < stride and elem:
            rest %= elem
        return f"map {name!r} value", rest, f"of {size} bytes"
    return describe


def describe_address(st, addr: int, size: int, mem_name: str = "memory",
                     map_names: Sequence[str] | None = None) -> tuple[str | None, int | None, str]:
    """(region, offset, text) for an access of `size` bytes at `addr` in the run `st`.

    The region is the one the access overlaps or comes nearest to (within 64 KiB); the text
    never contains a host address."""
    if addr < 4096:
        return "null", addr, f"null pointer (address {addr:#x})"
    best = None
    for describe, base, length in _regions(st, mem_name, map_names):
        gap = 0 if base <= addr + size and addr <= base + length else min(
            abs(addr - (base + length)), abs(base - (addr + size)))
        if gap <= _NEAR and (best is None or gap < best[0]):
            best = (gap, describe, base)
    if best is None:
        return None, None, f"not in stack, {mem_name} or any map"
    _, describe, base = best
    region, offset, extent = describe(addr - base)
    return region, offset, f"{region} offset {offset} {extent}"


def fault_line(pc: int | None, line_info: Sequence[tuple[int, str, int, str]]):
    """The (file, line, source text) of the last line-info record at or before `pc`."""
    if pc is None or not line_info:
        return None
    found = None
    for slot, file, line, text in line_info:
        if slot > pc:
            break
        found = (file, line, text)
    return found


def fault_to_error(st, insns: Iterable[Any] | None = None, budget: int | None = None, *,
                   line_info: Sequence[tuple[int, str, int, str]] = (), mem_name: str = "memory",
                   map_names: Sequence[str] | None = None) -> ExecutionError:
    """The ExecutionError describing the fault recorded in `st` (a `struct ebpfjit_state *`).

    The one formatter of both engines' faults. `insns` (decoded instructions) and `budget` (the
    run's initial budget) sharpen the message; `line_info` (ProgramSpec.line_info) names the
    source line, `mem_name` the run's memory ("packet" for packet programs) and `map_names`
    (the names of env.maps, in order) the map a stray access came nearest to.
    """
    status = st.status
    pc = st.fault_pc if st.fault_pc >= 0 else None
    kind = KINDS.get(status, "fault")
    addr, size, info = st.fault_addr, st.fault_size, st.fault_info
    insn = None
    if insns is not None and pc is not None:
        insn = next((i for p, i in iter_pcs(insns) if p == pc), None)
    place = _place(pc, insn, line_info)
    if status in (lib.EBPFJIT_ERR_OOB_LOAD, lib.EBPFJIT_ERR_OOB_STORE):
        what = "load" if status == lib.EBPFJIT_ERR_OOB_LOAD else "store"
        region, offset, where = describe_address(st, addr, size, mem_name, map_names)
        message = f"out-of-bounds {what} of {size} bytes at {where}"
        return ExecutionError(message, kind=kind, pc=pc, addr=addr, size=size, region=region,
                              offset=offset, **place)
    if status == lib.EBPFJIT_ERR_UNKNOWN_HELPER:
        message = f"unknown helper {_s32(info) if info >> 32 in (0, 0xFFFFFFFF) else info}"
    elif status == lib.EBPFJIT_ERR_CALL_DEPTH:
        message = f"call depth exceeds {MAX_FRAMES} frames"
    elif status == lib.EBPFJIT_ERR_BUDGET:
        message = (f"instruction budget of {budget} exhausted" if budget is not None
                   else "instruction budget exhausted")
    elif status == lib.EBPFJIT_ERR_TIMEOUT:
        message = "run timed out (its wall-clock timeout passed)"
    elif status == lib.EBPFJIT_ERR_HELPER:
        helper = info
        if insn is not None and insn.opcode == 0x85 and insn.src == 0:
            helper = insn.imm
        reason = _LOCK_REASONS.get(info >> 32) if info & 0xFFFFFFFF in (93, 94) else None
        if info & 0xFFFFFFFF == 2 and info >> 32 in _F_LOCK_REASONS:
            where = describe_address(st, addr, size, mem_name, map_names)[2] if addr else "?"
            reason = _F_LOCK_REASONS[info >> 32].replace("{where}", where)
        if reason is not None:
            return ExecutionError(reason.format(addr=addr), kind=kind, pc=pc, addr=addr or None,
                                  size=size or None, **place)
        if (info & ~0x0FFFFFFF) == lib.EBPFJIT_CALLBACK_TAG:
            message = (f"helper {helper} failed: callback value {info:#x} names pc "
                       f"{info & 0x0FFFFFFF}, which is not a callable function")
            return ExecutionError(message, kind=kind, pc=pc, **place)
        message = f"helper {helper} failed"
        cause = _tls.__dict__.get("helper_exc")
        if cause is not None:
            message += f": {type(cause).__name__}: {cause}"
    elif status == lib.EBPFJIT_ERR_FALL_OFF:
        message = "control runs past the end of the function (no exit or ja at its end)"
    elif status == lib.EBPFJIT_ERR_BAD_INSN:
        message = _bad_insn_message(insn, info)
    else:
        message = f"run failed with status {status}"
    return ExecutionError(message, kind=kind, pc=pc, addr=addr or None, size=size or None, **place)


def _place(pc, insn, line_info) -> dict[str, Any]:
    src = fault_line(pc, line_info)
    return {"insn_text": format_insn(insn) if insn is not None else None,
            "source_file": src[0] if src else None, "line": src[1] if src else None,
            "source_text": src[2] if src else None}


_LOCK_REASONS = {
    1: "bpf_spin_lock: the lock at {addr:#x} is already held by this thread (would deadlock)",
    2: "function returned while holding the bpf_spin_lock at {addr:#x} (bpf_spin_unlock is "
       "missing; released)",
    3: "bpf_spin_unlock: the lock at {addr:#x} is not held by this run",
    4: "bpf_spin_lock: too many locks held at once (taking {addr:#x})",
    5: "bpf_spin_lock: the lock word at {addr:#x} names no live holder (overwritten?)",
    6: "bpf_spin_lock: {addr:#x} is not the struct bpf_spin_lock field (BTF) of a map value",
    7: "bpf_spin_lock: the lock at {addr:#x} stayed held by another thread past the wait limit",
    8: "function calls are not allowed while holding a lock (the bpf_spin_lock at {addr:#x}; "
       "released)",
    9: "callback returned while holding the bpf_spin_lock at {addr:#x} (bpf_spin_unlock is "
       "missing; released)",
}

# bpf_map_update_elem(BPF_F_LOCK) faults (helper 2); {where} names the map and the offset.
_F_LOCK_REASONS = {
    1: "bpf_map_update_elem(BPF_F_LOCK): the bpf_spin_lock at {where} is held by this run "
       "(would deadlock; the kernel verifier refuses helper calls while a lock is held)",
    5: "bpf_map_update_elem(BPF_F_LOCK): the bpf_spin_lock word at {where} names no live "
       "holder (overwritten?)",
    7: "bpf_map_update_elem(BPF_F_LOCK): the bpf_spin_lock at {where} stayed held by another "
       "thread past the wait limit",
}


def _bad_insn_message(insn, info: int) -> str:
    if insn is None:
        return f"instruction cannot be executed (info {info:#x})"
    if insn.opcode == 0x18:
        if insn.src in (1, 2) and info >> 32 == 1:
            return (f"map index {info & 0xFFFFFFFF} is not the map this machine code was "
                    f"compiled for (type, sizes or flags differ)")
        if insn.src in (1, 2):
            return f"lddw refers to map index {info}, which is not loaded"
        return f"lddw with src={insn.src} (pseudo form) cannot be executed"
    if insn.opcode == 0x85 and insn.src == 2:
        return f"kfunc calls are not supported (btf id {insn.imm})"
    target = insn.branch_target(0) if hasattr(insn, "branch_target") else None
    if target is not None:
        return "jump or call target outside the program or inside an lddw"
    return f"instruction {insn.opcode:#04x} cannot be executed"


# --- facts for the JIT -----------------------------------------------------------------------

def helper_symbols() -> dict[str, int]:
    """Name -> real address of every runtime function JIT-compiled code may import: the C
    module's table (csrc/jit_support.c, the one list; contracts in csrc/runtime_api.h)."""
    count = ffi.new("uint32_t *")
    table = lib.ebpfjit_jit_imports(count)
    return {ffi.string(table[i].name).decode(): _addr(table[i].addr) for i in range(count[0])}


def lock_reason(name: str) -> int:
    """EBPFJIT_LOCK_REASON_<name> (csrc/runtime_api.h), the reason code ebpfjit_lock_held takes."""
    return getattr(lib, "EBPFJIT_LOCK_REASON_" + name)


def status_codes() -> dict[str, int]:
    """enum ebpfjit_status (csrc/ebpfjit_rt.h) without its EBPFJIT_ prefix: OK, ERR_OOB_LOAD..."""
    return {name[len("EBPFJIT_"):]: getattr(lib, name) for name in dir(lib)
            if name == "EBPFJIT_OK" or name.startswith("EBPFJIT_ERR_")}


_STATE_FIELDS = ("r0", "status", "fault_pc", "fault_addr", "fault_size", "fault_info", "budget",
                 "depth", "tail_calls", "mem_base", "mem_len", "mem_writable", "frame_lo",
                 "nregions", "cpu", "regions", "env", "tail_target", "run_ctx", "user", "prog",
                 "engine", "nlocks", "locks")


def state_layout() -> dict[str, int]:
    """Byte offsets and sizes of the runtime structs, from the compiled C (one source of truth).

    Keys: "state.<field>" for every field of struct ebpfjit_state (also plain "<field>"),
    "env.helpers", "env.maps", "env.nmaps", "env.nregions", "env.regions",
    "map_base.values" (and its other fields), "prog.<field>", "region.<field>",
    and "sizeof.state", "sizeof.env", "sizeof.map_base", "sizeof.prog", "sizeof.region",
    "sizeof.frame" (EBPFJIT_STACK_SIZE).
    """
    out: dict[str, int] = {}
    for name in _STATE_FIELDS:
        off = ffi.offsetof("struct ebpfjit_state", name)
        out["state." + name] = off
        out[name] = off
    for name in ("helpers", "maps", "nmaps", "nregions", "regions", "user"):
        out["env." + name] = ffi.offsetof("struct ebpfjit_env", name)
    for name in ("type", "key_size", "value_size", "max_entries", "flags", "index", "values"):
        out["map_base." + name] = ffi.offsetof("struct ebpfjit_map_base", name)
    for name in ("code", "nslots", "prog_type", "interp", "jit_fn", "env", "jit_callback"):
        out["prog." + name] = ffi.offsetof("struct ebpfjit_prog", name)
    for name in ("base", "len", "writable"):
        out["region." + name] = ffi.offsetof("struct ebpfjit_region", name)
    out["sizeof.state"] = ffi.sizeof("struct ebpfjit_state")
    out["sizeof.env"] = ffi.sizeof("struct ebpfjit_env")
    out["sizeof.map_base"] = ffi.sizeof("struct ebpfjit_map_base")
    out["sizeof.prog"] = ffi.sizeof("struct ebpfjit_prog")
    out["sizeof.region"] = ffi.sizeof("struct ebpfjit_region")
    out["sizeof.frame"] = STACK_SIZE
    return out


def pcap_scan(buf, start: int, end: int, swap: bool, max_rec: int, max_n: int, out, hdr
              ) -> tuple[int, int, int, bool]:
    """Classic pcap records of buf[start:end] parsed in C (csrc/pcap_scan.h): packets appended
    to `out`, headers to `hdr` (array('I'), 4 per record). Returns (records, bytes consumed,
    bytes of out used, stopped at a record longer than max_rec)."""
    consumed = ffi.new("uint64_t *")
    used = ffi.new("uint64_t *")
    bad = ffi.new("int *")
    if max_n < 0 or 4 * max_n > len(hdr) or not 0 <= start <= end <= len(buf):
        raise ValueError("pcap_scan: max_n or the buffer range does not fit")
    cbuf = ffi.from_buffer(buf)
    cout = ffi.from_buffer(out, require_writable=True)
    n = lib.ebpfjit_pcap_scan(cbuf + start, end - start, 1 if swap else 0, max_rec, max_n,
                              cout, len(cout), ffi.from_buffer("uint32_t[]", hdr,
                                                                 require_writable=True),
                              consumed, used, bad)
    return int(n), int(consumed[0]), int(used[0]), bool(bad[0])


def count_verdicts(verdicts, n: int, counts) -> int:
    """Add the count of each verdict < COUNTED_VERDICTS among verdicts[:n] (array('I')) to
    counts (array('Q') of COUNTED_VERDICTS); returns how many were larger (not counted)."""
    if n > len(verdicts) or len(counts) < COUNTED_VERDICTS:
        raise ValueError("count_verdicts: n or counts does not fit")
    return int(lib.ebpfjit_count_verdicts(ffi.from_buffer("uint32_t[]", verdicts), n,
                                          ffi.from_buffer("uint64_t[]", counts,
                                                          require_writable=True)))


COUNTED_VERDICTS = lib.EBPFJIT_COUNTED_VERDICTS
