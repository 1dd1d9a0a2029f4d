"""The public bpf_conformance suite on every engine, through the library and the plugin protocol.

Every one of the 313 files must pass on every engine; none is skipped. The negative cases check
the harness itself: malformed assembly is rejected, and deliberately wrong expectations fail.
"""
from __future__ import annotations

import io
import subprocess
import sys

import pytest

from ebpfjit.cli import testdata
from ebpfjit.cli.conformance import run_case
from ebpfjit.errors import AssemblerError
from tests.support.conformance import (
    CONFORMANCE_DIR,
    ENGINES,
    NEGATIVE_DIR,
    conformance_files,
    conformance_params,
    needs_conformance,
)

FILES = conformance_files()


@needs_conformance
def test_suite_is_complete():
    # Guards against a silently missing or partial copy of the vectors.
    assert len(FILES) == 313


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("path", conformance_params(FILES))
def test_conformance(path, engine):
    outcome = run_case(testdata.load(path), engine)
    assert outcome.passed, outcome.detail


def _negative_files():
    return sorted(NEGATIVE_DIR.glob("*.data"))


@pytest.mark.parametrize("path", conformance_params(_negative_files()))
def test_negative_cases_are_rejected_or_fail(path):
    """A malformed file must not assemble; a well-formed one has a wrong expectation and must
    be reported as failing on every engine (a harness that cannot fail is worthless)."""
    try:
        case = testdata.load(path)
        code = case.code
    except AssemblerError as exc:
        assert exc.line is None or exc.line >= 1
        assert str(exc)
        return
    if not code:
        pytest.fail(f"{path.name}: produced no instructions but was not rejected")
    for engine in ("interp", "jit"):
        outcome = run_case(case, engine)
        assert not outcome.passed, f"{path.name} passed on {engine}; its expectation is wrong"


def _plugin(argv, program_hex):
    from ebpfjit.cli import plugin
    old_stdin, old_stdout = sys.stdin, sys.stdout
    sys.stdin, sys.stdout = io.StringIO(program_hex + "\n"), io.StringIO()
    try:
        status = plugin.main(argv)
        return status, sys.stdout.getvalue()
    finally:
        sys.stdin, sys.stdout = old_stdin, old_stdout


def _runner_hex(data: bytes) -> str:
    # Exactly how bpf_conformance_runner encodes bytes: two hex digits and two spaces each.
    return "".join(f"{b:02x}  " for b in data)


@needs_conformance
@pytest.mark.parametrize("engine", ("interp", "jit"))
def test_plugin_protocol_whole_suite(engine):
    failures = []
    for path in FILES:
        case = testdata.load(path)
        argv = ([_runner_hex(case.mem)] if case.mem else []) + ["--engine", engine]
        status, out = _plugin(argv, _runner_hex(case.code))
        if status != 0 or int(out.strip(), 16) != (case.result or 0) & (2**64 - 1):
            failures.append(f"{path.stem}: exit {status}, output {out.strip()!r}")
    assert not failures, "\n".join(failures)


@needs_conformance
def test_plugin_console_script_subprocess():
    case = testdata.load(CONFORMANCE_DIR / "mem-len.data")
    proc = subprocess.run(
        [sys.executable, "-m", "ebpfjit.cli.plugin", _runner_hex(case.mem), "--engine", "jit"],
        input=_runner_hex(case.code) + "\n", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert int(proc.stdout, 16) == case.result


def test_plugin_reports_errors_on_one_line():
    status, out = _plugin([], _runner_hex(bytes.fromhex("ff00000000000000")))
    assert status == 1
    assert out.count("\n") == 1 and "unknown opcode 0xff" in out


@needs_conformance
def test_plugin_elf_input(tmp_path):
    """--elf: the runner sends a small ELF whose .text holds the program."""
    case = testdata.load(CONFORMANCE_DIR / "add.data")
    elf = _minimal_elf(case.code)
    status, out = _plugin(["--elf"], _runner_hex(elf))
    assert status == 0, out
    assert int(out, 16) == case.result


def _minimal_elf(text: bytes) -> bytes:
    """An ELF64 relocatable with .shstrtab and .text, as the runner builds for --elf."""
    import struct
    shstr = b"\0.text\0.shstrtab\0"
    text_off = 64
    shstr_off = text_off + len(text)
    sh_off = (shstr_off + len(shstr) + 7) & ~7
    header = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, 1, 247, 1, 0, 0,
                         sh_off, 0, 64, 0, 0, 64, 3, 2)
    null = bytes(64)
    text_sh = struct.pack("<IIQQQQIIQQ", 1, 1, 6, 0, text_off, len(text), 0, 0, 8, 0)
    str_sh = struct.pack("<IIQQQQIIQQ", 7, 3, 0, 0, shstr_off, len(shstr), 0, 0, 1, 0)
    body = header + text + shstr
    body += bytes(sh_off - len(body))
    return body + null + text_sh + str_sh


def test_default_conformance_dir_is_beside_the_checkout(monkeypatch):
    # Without any setting the vectors are looked for in ../shared/conformance next to the
    # checkout, wherever the module lives inside the package.
    from ebpfjit.cli import testdata
    from tests.support.paths import ROOT
    monkeypatch.delenv(testdata.CONFORMANCE_ENV, raising=False)
    monkeypatch.delenv("EBPFJIT_SHARED", raising=False)
    assert testdata._conformance_dir() == ROOT.resolve().parent / "shared" / "conformance"
