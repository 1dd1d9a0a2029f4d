"""Running bpf_conformance `.data` cases on our engines, with the suite's execution conventions.

Shared by the pytest suite, `ebpfjit conformance` and `ebpfjit-conformance-plugin`, so all three
judge a case the same way. The suite expects helper 5 to return its first argument (uBPF and rbpf
register it so; in the kernel, id 5 is bpf_ktime_get_ns, which is why only conformance runs
install it).

Imports: ebpfjit.engine, ebpfjit.api, ebpfjit.errors, ebpfjit.runtime
"""
from __future__ import annotations

from dataclasses import dataclass

from ..api.program import Program
from ..engine import DEFAULT_ENGINE, Engine, parse_engine
from ..errors import EbpfError, EngineError

CONFORMANCE_HELPER_ID = 5
U64 = (1 << 64) - 1


def _identity_helper(r1, r2, r3, r4, r5):
    return r1


def conformance_program(code: bytes, opt_level: int = 2):
    """A raw Program wired the way the conformance suite expects (helper 5 = identity)."""
    # Lazy: the C module (ebpfjit._rt): the CLI reports without it.
    from ..runtime.env import Env
    env = Env()
    env.register_helper(CONFORMANCE_HELPER_ID, _identity_helper)
    return Program.from_bytes(code, env=env, opt_level=opt_level)


@dataclass
class Outcome:
    """How one case went: `passed`, and what was observed when it did not."""
    name: str
    engine: str
    passed: bool
    detail: str = ""


def engine_and_level(engine: str) -> tuple[Engine, int]:
    """'interp', 'jit' (O2) or 'jit-O0'..'jit-O3' -> (engine, opt level)."""
    choice = parse_engine(engine, options=True)
    if not choice.bounds_checks:
        raise EngineError(f"unknown engine {engine!r}; conformance runs keep bounds checks")
    return choice.engine, 2 if choice.opt_level is None else choice.opt_level


def run_case(case, engine: str = str(DEFAULT_ENGINE)) -> Outcome:
    """Run one `ebpfjit.testdata` case. A wrong result, an unexpected error or an error message
    that differs from `-- error` all fail: the harness must be able to fail."""
    kind, level = engine_and_level(engine)
    try:
        prog = conformance_program(case.code, opt_level=level)
        r0 = prog.run(bytearray(case.mem), engine=kind)
    except EbpfError as exc:
        if case.error is not None:
            ok = str(exc) == case.error or getattr(exc, "reason", None) == case.error
            return Outcome(case.name, engine, ok, f"error {str(exc)!r}, expected {case.error!r}")
        return Outcome(case.name, engine, False, f"unexpected error: {exc}")
    if case.error is not None:
        return Outcome(case.name, engine, False, f"returned {r0:#x}, expected error {case.error!r}")
    expected = (case.result or 0) & U64
    if r0 != expected:
        return Outcome(case.name, engine, False, f"r0 = {r0:#x}, expected {expected:#x}")
    return Outcome(case.name, engine, True)
