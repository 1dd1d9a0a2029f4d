"""ebpfjit's static verifier: proves a program safe before it runs, or rejects it with the
kernel's log (issue #13). Shaped like the kernel's verifier (kernel/bpf/verifier.c) in its
privileged mode; see walk.py for the walk, regs.py for the state, protos.py for the helper
table. Programs it does not understand are rejected with a message that says so.

    >>> from ebpfjit.verifier import verify                           # doctest: +SKIP
    >>> verify(code, "xdp").processed                                 # doctest: +SKIP

Imports: ebpfjit.errors, ebpfjit.isa, ebpfjit.objects.spec, ebpfjit.verifier
(nothing of the engines or the C module).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import DecodeError, VerifierError
from ..isa.insn import Instruction, decode
from ..objects.spec import ObjectSpec, ProgramSpec, ProgType
from .facts import FactRecorder, ProgramFacts
from .log import LineInfo, kernel_insn, source_line, stats_line
from .walk import INSN_LIMIT, Reject, Walk

__all__ = ["verify", "verify_spec", "VerifyResult", "VerifierError", "ProgramFacts"]


@dataclass
class VerifyResult:
    """An accepted program: the kernel's stats and the log (level 2: every instruction)."""
    name: str
    insns: int
    processed: int
    total_states: int
    peak_states: int
    max_states_per_insn: int
    ms: float
    log: str
    facts: ProgramFacts | None = None     # what the walk proved per instruction (facts.py)


def verify(code: bytes | list[Instruction], prog_type: ProgType | str | int = ProgType.XDP, *,
           maps=(), license: str = "GPL", log_level: int = 1, line_info=(), name: str = "prog",
           map_names=None, insn_limit: int = INSN_LIMIT,
           mem_size: int | None = None) -> VerifyResult:
    """Verify one program. `maps` are the MapSpecs its lddw map references index.

    `mem_size` (raw programs, `prog_type` "unspec"): the raw convention, r1 = `mem_size`
    writable bytes and r2 = `mem_size`; the facts then hold only for runs on exactly that
    many bytes. The result's `.facts` are the per-instruction proofs (ebpfjit.verifier.facts).

    Raises VerifierError whose text is the kernel-style error (first line in the kernel's
    words, the instruction, the source line when line info is given); `.log` holds the log.
    """
    if isinstance(prog_type, str):
        prog_type = ProgType[prog_type.upper()]     # the enum's name: "xdp", "sched_cls", ...
    if isinstance(code, (bytes, bytearray, memoryview)):
        try:
            insns = decode(bytes(code))
        except DecodeError as exc:
            raise _structural(bytes(code), exc, ProgType(int(prog_type)), maps, license,
                              name) from None
    else:
        insns = code
    lines: list[str] = []
    li = LineInfo(line_info)
    names = map_names if map_names is not None else [m.name for m in maps]

    def trace(pc, ins, st):
        rec = li.exact(pc)
        if rec is not None:
            lines.append(source_line(rec))
        lines.append(f"{pc}: {st.format()}")
        lines.append(f"{pc}: {kernel_insn(ins, names)}")

    if mem_size is not None and (ProgType(int(prog_type)) != ProgType.UNSPEC or
                                 not 0 <= mem_size < 1 << 29):
        raise VerifierError(f"mem_size={mem_size!r}: a raw (unspec) program's memory size, "
                            "0 <= size < 2**29", None, program=name)
    t0 = time.perf_counter()
    walk = None
    recorder = FactRecorder()
    try:
        walk = Walk(insns, ProgType(int(prog_type)), maps, gpl=_gpl(license),
                    log_level=log_level, trace=trace if log_level >= 2 else None,
                    insn_limit=insn_limit, facts=recorder, raw_mem=mem_size)
        walk.run()
    except Reject as exc:
        raise _error(exc, walk, insns, li, names, lines, name) from None
    ms = (time.perf_counter() - t0) * 1000
    lines.append(stats_line(walk))
    return VerifyResult(name, len(insns), walk.processed, walk.total_states, walk.peak_states,
                        walk.max_states_per_insn, ms, "\n".join(lines),
                        recorder.finish(walk.nslots))


def verify_spec(pspec: ProgramSpec, spec: ObjectSpec | None = None, *,
                log_level: int = 1) -> VerifyResult:
    """Verify a program of an object (its maps, license and line info)."""
    if pspec.unsupported:       # marked by load_spec(per_program=True): not understood
        raise VerifierError(pspec.unsupported, None, log=pspec.unsupported, program=pspec.name)
    maps = list(spec.maps.values()) if spec is not None else []
    lic = pspec.license or (spec.license if spec is not None else "") or ""
    return verify(pspec.code, pspec.type, maps=maps, license=lic, log_level=log_level,
                  line_info=pspec.line_info, name=pspec.name)


def _structural(code: bytes, exc: DecodeError, prog_type, maps, license, name) -> VerifierError:
    """A program that does not decode: the kernel's words where the walk of the undecoded
    instructions finds the same fault first (`frame pointer is read only`, `jump out of
    range ...`), else the decoder's reason. Always an error."""
    try:
        raw = decode(code, validate=False)
        walk = Walk(raw, prog_type, maps, gpl=_gpl(license))
        walk.run()
    except Reject as rej:
        return _error(rej, None, raw, LineInfo(), [m.name for m in maps], [], name)
    except Exception:       # noqa: BLE001  (malformed beyond what the walk can read)
        pass
    reason = exc.reason
    if reason.endswith("r10 is read-only"):
        reason = "frame pointer is read only"       # the kernel's check_reg_arg wording
    return VerifierError(reason, exc.pc, log=reason, program=name)


def _gpl(license: str) -> bool:
    # The kernel's license_is_gpl_compatible().
    return license.rstrip("\0") in ("GPL", "GPL v2", "GPL and additional rights",
                                    "Dual BSD/GPL", "Dual MIT/GPL", "Dual MPL/GPL")


def _error(exc: Reject, walk, insns, li: LineInfo, names, lines, name) -> VerifierError:
    pc = exc.pc
    by_pc = walk.by_pc if walk is not None else {}
    insn_text = source = None
    if pc is not None and pc in by_pc:
        insn_text = f"{pc}: {kernel_insn(by_pc[pc], names)}"
        rec = li.at(pc)
        if rec is not None:
            source = source_line(rec)
        if not lines or lines[-1] != insn_text:
            if source:
                lines.append(source)
            lines.append(insn_text)
    lines.extend(exc.message.split("\n"))
    if walk is not None:
        lines.append(stats_line(walk))
    return VerifierError(exc.message, pc, log="\n".join(lines), insn_text=insn_text,
                         source=source, program=name)
