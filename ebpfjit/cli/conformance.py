"""Running bpf_conformance `.data` cases on our engines, with the suite's execution conventions.

Shared by the pytest suite, `ebpfjit conformance` and `ebpfjit-conformance-plugin`, so all three
judge a case the same way. The suite expects helper 5 to return its first argument (uBPF and rbpf
register it so; in the kernel, id 5 is bpf_ktime_get_ns, which is why only conformance runs
install it).

Imports: ebpfjit.api, ebpfjit.errors, ebpfjit.runtime
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import EbpfError

CONFORMANCE_HELPER_ID = 5
U64 = (1 << 64) - 1


def _identity_helper(r1, r2, r3, r4, r5):
    return r1


def conformance_program(code: bytes, opt_level: int = 2):
    """A raw Program wired the way the conformance suite expects (helper 5 = identity)."""
    from ..api.program import Program
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


def parse_engine(engine: str) -> tuple[str, int]:
    """'interp', 'jit' (O2) or 'jit-O0'..'jit-O3' -> (engine, opt level)."""
    if engine.startswith("jit-O") and engine[5:].isdigit():
        return "jit", int(engine[5:])
    return engine, 2


def run_case(case, engine: str = "interp") -> Outcome:
    """Run one `ebpfjit.testdata` case. A wrong result, an unexpected error or an error message
    that differs from `-- error` all fail: the harness must be able to fail."""
    kind, level = parse_engine(engine)
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
