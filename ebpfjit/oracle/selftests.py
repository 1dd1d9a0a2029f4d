"""The Linux BPF selftests' verifier corpus (tools/testing/selftests/bpf/progs/verifier_*.c) run
against ebpfjit's verifier with the rules of the selftests' test_loader.c (Linux 6.12).

The objects are built by `ci/selftests.sh` into a cache folder (GPL-2.0 sources, never
committed). Per program, as test_loader.c's parse_test_spec() reads them, the BTF decl tags
`comment:test_*` on its FUNC give the expectations:

- `__success` / `__failure` (privileged mode), `__success_unpriv` / `__failure_unpriv`; no
  result tag means success; `__msg("...")` patterns must all be found in the log, in order, each
  after the previous match, `{{...}}` parts being POSIX extended regular expressions (REG_NEWLINE);
  `__retval(N)` (decimal, 0x hex, INT_MIN, POINTER_VALUE = any value, TEST_DATA_LEN) runs the
  program with BPF_PROG_TEST_RUN on 64 zero bytes; `__description` names the test;
  `__log_level`, `__flag` (load flags), `__arch_*` (other architectures are skipped),
  `__btf_path`, `__auxiliary` (not a test; loaded beside every test of its mode), `__xlated` /
  `__jited` (rewritten / native code lines: not compared here, counted).
- The program type comes from the section name (libbpf's rule; a leading `?` only turns
  autoload off).
- test_loader loads each test in privileged mode and, if any `_unpriv` tag is present, again
  without CAP_BPF/CAP_SYS_ADMIN. ebpfjit's verifier implements the privileged mode only (root's
  rules), so unprivileged subtests are counted apart and not judged.
- The kernel's verdict is the annotation. A test is "accepted" by us when ebpfjit.verifier
  accepts the program (loaded with `load_spec(per_program=True)`: a program using a kfunc, an
  extern or a CO-RE relocation is rejected by us with the loader's reason). For a
  kernel-rejected test, "msg" means test_loader's rule holds on our log (all `__msg` patterns
  in order; a test without `__msg` is matched by any rejection). `__retval` tests are run
  unverified (run-time checked) on the interpreter and the JIT; the two tests whose maps
  test_loader fills first (prog_tests/verifier.c: `map_array_ro`, `map_array_48b`) get that
  value. Every program we accept that the kernel rejects is run on the interpreter (and the
  JIT) on the test input: a fault there would be an unsound accept and is reported as one.

    python -m ebpfjit.oracle.selftests [BUILD_DIR] [--types socket,tc,xdp] [--reasons N] [-j]

Imports: ebpfjit.engine, ebpfjit.api, ebpfjit.errors, ebpfjit.isa, ebpfjit.objects, ebpfjit.verifier
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import struct
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..api.loader import load_object_spec
from ..engine import Engine
from ..errors import EbpfError, ExecutionError, VerifierError
from ..objects.btf import BtfKind
from ..objects.elf import load_spec, program_type_for_section
from ..objects.spec import ObjectSpec, ProgType
from ..verifier import verify

POINTER_VALUE = 0xCAFE4A
TEST_DATA_LEN = 64
INT_MIN = -(1 << 31)
NETWORK_TYPES = {"socket": ProgType.SOCKET_FILTER, "tc": ProgType.SCHED_CLS, "xdp": ProgType.XDP}
# prog_tests/verifier.c: maps filled before the test run (struct test_val {index; foo[11]}).
PRE_EXECUTION = {"verifier_array_access": "map_array_ro",
                 "verifier_value_ptr_arith": "map_array_48b"}
HOST_ARCH = {"x86_64": "X86_64", "aarch64": "ARM64", "riscv64": "RISCV64"}.get(
    platform.machine(), "UNKNOWN")
SCRIPT = Path(__file__).resolve().parents[2] / "ci" / "selftests.sh"

_TAG = "comment:"


@dataclass
class Mode:
    """One mode's expectations (test_loader's struct test_subspec)."""
    expect_failure: bool = False
    msgs: list[str] = field(default_factory=list)
    retval: int = 0
    execute: bool = False


@dataclass
class Case:
    """One program of a corpus object and its test_loader spec (struct test_spec)."""
    file: str
    prog: str
    name: str
    section: str
    prog_type: str
    priv: Mode
    unpriv: Mode
    modes: set[str]
    auxiliary: bool = False
    arch: set[str] = field(default_factory=set)
    log_level: int = 0
    flags: list[str] = field(default_factory=list)
    btf_path: str = ""
    xlated: int = 0
    jited: int = 0


@dataclass
class Result:
    """Our verdict on one privileged subtest."""
    file: str
    name: str
    prog_type: str
    kernel_accepts: bool
    we_accept: bool
    reason: str = ""                # our first error line when we reject
    msg_ok: bool | None = None      # kernel-rejected: test_loader's __msg rule on our log
    success_msgs_ok: bool | None = None   # kernel-accepted with __msg: the rule on our log
    retval: int | None = None       # expected (__retval), None when not executed
    retval_ok: dict[str, bool | str] = field(default_factory=dict)   # engine -> ok / error
    unsound: str = ""               # we accept a kernel-rejected test and running it faulted
    not_run: str = ""               # ... or it could not run here (why)
    ms: float = 0.0


# --- building ------------------------------------------------------------------------------

class CorpusUnavailable(Exception):
    """The corpus cannot be fetched or built here (no network/apt/clang); the reason."""


def build(script: Path = SCRIPT) -> Path:
    """Run ci/selftests.sh (fetch once, build what is missing) and return the build folder."""
    if not script.exists():
        raise CorpusUnavailable(f"{script} not found (a source checkout is needed)")
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    if proc.returncode == 3:
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("unavailable:")]
        raise CorpusUnavailable(lines[-1] if lines else proc.stderr.strip()[-300:])
    if proc.returncode != 0:
        raise RuntimeError(f"{script} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


# --- test_loader's rules -------------------------------------------------------------------

def _parse_int(text: str) -> int:
    value = int(text[2:], 16) if text.startswith("0x") else int(text, 10)
    return struct.unpack("<i", struct.pack("<I", value & 0xFFFFFFFF))[0]     # C int


def _parse_retval(text: str) -> int:
    named = {"INT_MIN": INT_MIN, "POINTER_VALUE": POINTER_VALUE, "TEST_DATA_LEN": TEST_DATA_LEN}
    return named[text] if text in named else _parse_int(text)


def _dynamic(tag: str, prefix: str) -> str | None:
    """`<prefix><counter>=<text>` -> text (the __COUNTER__ keeps equal tags distinct)."""
    if not tag.startswith(prefix):
        return None
    rest = tag[len(prefix):]
    eq = rest.find("=")
    return rest[eq + 1:] if eq >= 0 else None


def parse_cases(spec: ObjectSpec, file: str) -> list[Case]:
    """Every program's spec, in the object's program order (test_loader's parse_test_spec)."""
    btf = spec.btf
    cases = []
    for pname, pspec in spec.programs.items():
        func = btf.find(pname, BtfKind.FUNC) if btf is not None else 0
        if not func:
            continue        # test_loader: "failed to find FUNC BTF type": not a test
        priv, unpriv = Mode(), Mode()
        modes: set[str] = set()
        case = Case(file, pname, pname, pspec.section, "", priv, unpriv, modes)
        description = None
        has_unpriv_result = has_unpriv_retval = False
        for t in btf.types:
            if t.kind is not BtfKind.DECL_TAG or t.type != func or t.component_idx != -1:
                continue
            s = t.name
            if not s.startswith(_TAG):
                continue
            tag = s[len(_TAG):]
            if tag.startswith("test_description="):
                description = tag[len("test_description="):]
            elif tag in ("test_expect_failure", "test_expect_success"):
                priv.expect_failure = tag == "test_expect_failure"
                modes.add("priv")
            elif tag in ("test_expect_failure_unpriv", "test_expect_success_unpriv"):
                unpriv.expect_failure = tag == "test_expect_failure_unpriv"
                modes.add("unpriv")
                has_unpriv_result = True
            elif tag in ("test_auxiliary", "test_auxiliary_unpriv"):
                case.auxiliary = True
                modes.add("unpriv" if tag.endswith("unpriv") else "priv")
            elif (m := _dynamic(tag, "test_expect_msg_unpriv=")) is not None:
                unpriv.msgs.append(m)
                modes.add("unpriv")
            elif (m := _dynamic(tag, "test_expect_msg=")) is not None:
                priv.msgs.append(m)
                modes.add("priv")
            elif tag.startswith(("test_jited=", "test_jited_unpriv=")):
                case.jited += 1
            elif tag.startswith(("test_expect_xlated=", "test_expect_xlated_unpriv=")):
                case.xlated += 1
                modes.add("unpriv" if "_unpriv=" in tag else "priv")
            elif tag.startswith("test_retval_unpriv="):
                unpriv.retval = _parse_retval(tag[len("test_retval_unpriv="):])
                unpriv.execute = has_unpriv_retval = True
                modes.add("unpriv")
            elif tag.startswith("test_retval="):
                priv.retval = _parse_retval(tag[len("test_retval="):])
                priv.execute = True
                modes.add("priv")
            elif tag.startswith("test_log_level="):
                case.log_level = _parse_int(tag[len("test_log_level="):])
            elif tag.startswith("test_prog_flags="):
                case.flags.append(tag[len("test_prog_flags="):])
            elif tag.startswith("test_arch="):
                case.arch.add(tag[len("test_arch="):])
            elif tag.startswith("test_btf_path="):
                case.btf_path = tag[len("test_btf_path="):]
        if not modes:
            modes.add("priv")
        if not has_unpriv_result:
            unpriv.expect_failure = priv.expect_failure
        if not has_unpriv_retval:
            unpriv.retval, unpriv.execute = priv.retval, priv.execute
        if not unpriv.msgs:
            unpriv.msgs = list(priv.msgs)
        case.name = description or pname
        case.prog_type = program_type(pspec.section).name
        cases.append(case)
    return cases


def program_type(section: str) -> ProgType:
    """libbpf's section rule; `?` in front only disables autoload."""
    return program_type_for_section(section[1:] if section.startswith("?") else section)[0]


def compile_pattern(pattern: str) -> re.Pattern | None:
    """test_loader's compile_regex(): verbatim text with `{{ERE}}` parts; None: plain substring."""
    if "{{" not in pattern:
        return None
    out, i, in_regex = [], 0, False
    while i < len(pattern):
        if not in_regex and pattern.startswith("{{", i):
            in_regex, i = True, i + 2
        elif in_regex and pattern.startswith("}}", i):
            in_regex, i = False, i + 2
        elif in_regex:
            out.append(pattern[i])
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    # REG_NEWLINE: `.` and bracket negations do not match a newline, ^/$ match at lines.
    regex = re.sub(r"\[\^", "[^\\n", "".join(out))
    return re.compile(regex, re.MULTILINE)


def match_msgs(log: str, msgs: list[str]) -> int:
    """test_loader's validate_msgs(): how many patterns matched in order before the first miss
    (== len(msgs) when all match)."""
    pos = 0
    for i, pattern in enumerate(msgs):
        regex = compile_pattern(pattern)
        if regex is None:
            at = log.find(pattern, pos)
            if at < 0:
                return i
            pos = at + len(pattern)
        else:
            m = regex.search(log, pos)
            if m is None:
                return i
            pos = m.end()
    return len(msgs)


# --- running -------------------------------------------------------------------------------

def _log_level(case: Case) -> int:
    # test_loader at default verbosity keeps the tag's level; libbpf retries a failed load
    # at level 1 when it was 0, so a rejection always has a level-1 log.
    return max(case.log_level & 3, 1)


def judge(case: Case, spec: ObjectSpec, aux: list[str], run_programs: bool = True) -> Result:
    pspec = spec.programs[case.prog]
    ptype = program_type(pspec.section)
    res = Result(case.file, case.name, case.prog_type, not case.priv.expect_failure, False)
    t0 = time.perf_counter()
    log = ""
    try:
        if pspec.unsupported:
            raise VerifierError(pspec.unsupported, log=pspec.unsupported)
        maps = list(spec.maps.values())
        lic = pspec.license or spec.license or ""
        vr = verify(pspec.code, ptype, maps=maps, license=lic, log_level=_log_level(case),
                    line_info=pspec.line_info, name=pspec.name)
        res.we_accept = True
        log = vr.log
    except VerifierError as exc:
        res.reason = exc.reason.splitlines()[0] if exc.reason else str(exc)
        log = exc.log or str(exc)
    except EbpfError as exc:      # anything else the verifier raises on hostile input
        res.reason = f"{type(exc).__name__}: {exc}"
        log = str(exc)
    res.ms = (time.perf_counter() - t0) * 1000
    msgs = case.priv.msgs
    if case.priv.expect_failure:
        res.msg_ok = (not res.we_accept) and match_msgs(log, msgs) == len(msgs)
    elif msgs:
        res.success_msgs_ok = res.we_accept and match_msgs(log, msgs) == len(msgs)
    if not run_programs or pspec.unsupported:
        return res
    if case.priv.execute and not case.priv.expect_failure:
        res.retval = case.priv.retval
        for engine in (Engine.INTERP, Engine.JIT):
            got = _run(case, spec, aux, engine)
            res.retval_ok[engine.value] = (
                got if isinstance(got, str)
                else case.priv.retval == POINTER_VALUE or got == case.priv.retval & 0xFFFFFFFF)
    if res.we_accept and case.priv.expect_failure:
        for engine in (Engine.INTERP, Engine.JIT):
            outcome = _run(case, spec, aux, engine)
            if isinstance(outcome, ExecutionError):
                res.unsound = f"{engine.value}: {outcome}"
                break
            if isinstance(outcome, str):
                res.not_run = outcome
                break
    return res


def _runnable(spec: ObjectSpec, names: list[str]) -> ObjectSpec:
    """The object reduced to `names` (program types from their sections) and the maps they
    reference (lddw map indices renumbered), so a map type the runtime lacks that only other
    programs use does not stop the run; prog_array slots name only programs kept."""
    import dataclasses

    from ..isa.insn import decode, encode
    from ..objects.spec import PSEUDO_MAP_FD, PSEUDO_MAP_VALUE, MapType
    order = list(spec.maps)
    used: set[int] = set()
    decoded = {}
    for name in names:
        insns = decode(spec.programs[name].code, validate=False)
        decoded[name] = insns
        used.update(i.imm & 0xFFFFFFFF for i in insns
                    if i.kind.name == "LDDW" and i.src in (PSEUDO_MAP_FD, PSEUDO_MAP_VALUE))
    for i in list(used):        # inner-map templates of kept map-in-maps
        for ref in spec.maps[order[i]].values.values():
            if isinstance(ref, str) and ref in spec.maps:
                used.add(order.index(ref))
    keep = sorted(used)
    renumber = {old: new for new, old in enumerate(keep)}
    maps = {}
    for old in keep:
        m = spec.maps[order[old]]
        if m.type == MapType.PROG_ARRAY:
            m = dataclasses.replace(m, values={k: v for k, v in m.values.items() if v in names})
        maps[order[old]] = m
    progs = {}
    for name in names:
        insns = [dataclasses.replace(i, imm=(i.imm & ~0xFFFFFFFF) | renumber[i.imm & 0xFFFFFFFF])
                 if i.kind.name == "LDDW" and i.src in (PSEUDO_MAP_FD, PSEUDO_MAP_VALUE) else i
                 for i in decoded[name]]
        progs[name] = dataclasses.replace(spec.programs[name], code=encode(insns),
                                          type=program_type(spec.programs[name].section))
    return dataclasses.replace(spec, programs=progs, maps=maps)


def _run(case: Case, spec: ObjectSpec, aux: list[str], engine: Engine
         ) -> int | str | ExecutionError:
    """Run the program unverified (run-time checked) on the test input, as test_loader does
    (its auxiliary programs loaded beside it): r0, the run-time fault, or why it cannot run."""
    names = [case.prog] + [a for a in aux if a != case.prog]
    try:
        obj = load_object_spec(_runnable(spec, names), ncpus=1)
        mapname = PRE_EXECUTION.get(case.file)
        if mapname and mapname in obj.maps:
            m = obj.maps[mapname]
            value = struct.pack("<I", 7 * 4) + bytes(6 * 4) + struct.pack("<I", 0xABCDEF12)
            m.update(0, value.ljust(m.spec.value_size, b"\0"))
        prog = obj.programs[case.prog]
    except EbpfError as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    try:
        retval = prog.test_run(bytes(TEST_DATA_LEN), engine=engine, budget=10_000_000).retval
    except ExecutionError as exc:
        return exc
    except EbpfError as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return retval & 0xFFFFFFFF


@dataclass
class Corpus:
    results: list[Result]
    unpriv: int                     # unprivileged subtests (not judged)
    skipped_arch: int
    auxiliary: int
    load_errors: dict[str, str]     # file -> why the whole object did not load
    seconds: float
    verify_seconds: float


def run_corpus(build_dir: Path, types: set[str] | None = None, files: list[str] | None = None,
               run_programs: bool = True) -> Corpus:
    """Judge every privileged subtest of the built objects (`types`: program type names)."""
    t0 = time.perf_counter()
    results: list[Result] = []
    unpriv = skipped = aux = 0
    errors: dict[str, str] = {}
    objs = sorted((build_dir / "obj").glob("verifier_*.o"))
    for path in objs:
        file = path.stem
        if files and file not in files:
            continue
        try:
            spec = load_spec(path, per_program=True)
        except EbpfError as exc:
            errors[file] = str(exc)
            continue
        cases = parse_cases(spec, file)
        aux_priv = [c.prog for c in cases if c.auxiliary and "priv" in c.modes]
        for case in cases:
            if types and case.prog_type not in types:
                continue
            if case.auxiliary:
                aux += 1
                continue
            if case.arch and HOST_ARCH not in case.arch:
                skipped += 1
                continue
            if "unpriv" in case.modes:
                unpriv += 1
            if "priv" in case.modes:
                results.append(judge(case, spec, aux_priv, run_programs))
    verify_s = sum(r.ms for r in results) / 1000
    return Corpus(results, unpriv, skipped, aux, errors, time.perf_counter() - t0, verify_s)


# --- reporting -----------------------------------------------------------------------------

@dataclass
class Counts:
    tests: int = 0
    k_acc: int = 0
    k_rej: int = 0
    acc: int = 0            # we accept, of k_acc
    rej: int = 0            # we reject, of k_rej
    msg: int = 0            # of k_rej
    retval: int = 0         # __retval tests passing on both engines
    retval_tests: int = 0
    unsound: int = 0
    not_run: int = 0        # kernel-rejected, we accept, cannot run here

    def add(self, r: Result) -> None:
        self.tests += 1
        if r.kernel_accepts:
            self.k_acc += 1
            self.acc += r.we_accept
        else:
            self.k_rej += 1
            self.rej += not r.we_accept
            self.msg += bool(r.msg_ok)
        if r.retval is not None:
            self.retval_tests += 1
            self.retval += all(v is True for v in r.retval_ok.values())
        self.unsound += bool(r.unsound)
        self.not_run += bool(r.not_run)


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:5.1f}%" if b else "    - "


def summarize(results: list[Result]) -> Counts:
    c = Counts()
    for r in results:
        c.add(r)
    return c


def summary_line(label: str, c: Counts) -> str:
    return (f"{label}: {c.tests} tests; kernel accepts {c.k_acc}, rejects {c.k_rej}; we accept "
            f"{c.acc}/{c.k_acc} ({_pct(c.acc, c.k_acc).strip()}), reject {c.rej}/{c.k_rej} "
            f"({_pct(c.rej, c.k_rej).strip()}); first error line matches {c.msg}/{c.k_rej} "
            f"({_pct(c.msg, c.k_rej).strip()}); retval {c.retval}/{c.retval_tests} on both engines; "
            f"accepts the kernel rejects: {c.unsound} fault when run, {c.not_run} cannot run here")


def table(corpus: Corpus) -> str:
    rows = {}
    for r in corpus.results:
        rows.setdefault(r.file, Counts()).add(r)
    head = (f"{'category':42} {'tests':>5} {'K-acc':>5} {'K-rej':>5} {'we-acc':>12} "
            f"{'we-rej':>12} {'msg':>12} {'retval':>9}")
    out = [head, "-" * len(head)]
    for file in sorted(rows):
        c = rows[file]
        out.append(f"{file.removeprefix('verifier_'):42} {c.tests:5} {c.k_acc:5} {c.k_rej:5} "
                   f"{c.acc:4} {_pct(c.acc, c.k_acc)} {c.rej:4} {_pct(c.rej, c.k_rej)} "
                   f"{c.msg:4} {_pct(c.msg, c.k_rej)} {c.retval:4}/{c.retval_tests:<4}")
    out.append("-" * len(head))
    return "\n".join(out)


def reasons(results: list[Result], n: int) -> str:
    """Why kernel-accepted tests are rejected (our first error lines, numbers masked), and
    the kernel-rejected tests whose message does not match."""
    def norm(text: str) -> str:
        return re.sub(r"-?\d+", "N", text)[:110]
    rej = Counter(norm(r.reason) for r in results if r.kernel_accepts and not r.we_accept)
    acc = Counter(r.file for r in results if not r.kernel_accepts and r.we_accept)
    msg = Counter(norm(r.reason) for r in results
                  if not r.kernel_accepts and not r.we_accept and not r.msg_ok)
    out = ["kernel accepts, we reject (our reason):"]
    out += [f"  {k:5} {v}" for v, k in rej.most_common(n)]
    out.append("kernel rejects, we accept (file):")
    out += [f"  {k:5} {v}" for v, k in acc.most_common(n)]
    out.append("kernel rejects, our message differs (our reason):")
    out += [f"  {k:5} {v}" for v, k in msg.most_common(n)]
    out.append("kernel rejects, we accept, cannot run here:")
    out += [f"  {r.file}: {r.name}: {r.not_run}" for r in results if r.not_run][:n]
    out.append("kernel rejects, we accept, faults when run (unsound):")
    out += [f"  {r.file}: {r.name}: {r.unsound}" for r in results if r.unsound]
    bad = [r for r in results if r.retval is not None
           and not all(v is True for v in r.retval_ok.values())]
    out.append(f"retval failures ({len(bad)}):")
    out += [f"  {r.file}: {r.name}: {r.retval_ok}" for r in bad[:n]]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ebpfjit.oracle.selftests",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("build_dir", nargs="?", help="ci/selftests.sh's build folder (default: run "
                    "the script, which prints it)")
    ap.add_argument("--types", default="", help="program types, comma separated: socket,tc,xdp "
                    "(the network subset), or ProgType names; default all")
    ap.add_argument("--file", action="append", help="only this verifier_*.o (repeatable)")
    ap.add_argument("--reasons", type=int, default=0, metavar="N",
                    help="also list the N most common reasons of each kind of disagreement")
    ap.add_argument("--no-run", action="store_true", help="verify only (no retval/safety runs)")
    ap.add_argument("-j", "--json", action="store_true", help="per-test results as JSON")
    args = ap.parse_args(argv)
    try:
        build_dir = Path(args.build_dir) if args.build_dir else build()
    except CorpusUnavailable as exc:
        print(f"selftests corpus unavailable: {exc}", file=sys.stderr)
        return 2
    types = set()
    for t in filter(None, args.types.split(",")):
        types.add(NETWORK_TYPES[t].name if t in NETWORK_TYPES else t.upper())
    corpus = run_corpus(build_dir, types or None, args.file, not args.no_run)
    if args.json:
        json.dump({"results": [asdict(r) for r in corpus.results],
                   "summary": asdict(summarize(corpus.results)), "unpriv": corpus.unpriv,
                   "load_errors": corpus.load_errors}, sys.stdout, indent=1)
        print()
        return 0
    print(table(corpus))
    net = [r for r in corpus.results if r.prog_type in {t.name for t in NETWORK_TYPES.values()}]
    print(summary_line("all", summarize(corpus.results)))
    if net and len(net) != len(corpus.results):
        print(summary_line("socket/tc/xdp", summarize(net)))
    print(f"not judged: {corpus.unpriv} unprivileged subtests (privileged mode only), "
          f"{corpus.skipped_arch} for other architectures, {corpus.auxiliary} auxiliary programs, "
          f"{len(corpus.load_errors)} objects that did not load"
          + "".join(f"\n  {f}: {e}" for f, e in sorted(corpus.load_errors.items())))
    print(f"verification {corpus.verify_seconds:.1f} s, total {corpus.seconds:.1f} s")
    if args.reasons:
        print(reasons(corpus.results, args.reasons))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("EBPFJIT_CACHE", "0")
    sys.exit(main())
