"""The `.data` test-vector format (uBPF / bpf_conformance): parsing into TestCase values.

Shared by the tests, the CLI, the conformance plugin's harness and the benchmarks. The rules are
those of the conformance README 1.1 and of the upstream parser (`bpf_test_parser.cc`):

* `#` starts a comment anywhere in a line; a trailing `\\r` is stripped; blank lines are ignored.
* A line containing `--` (after comment removal) opens a section, found by substring in this
  order: `asm`, `result`, `mem`, `raw`, `no register offset`, ` c`, `error`. Anything else is an
  unknown directive: the whole file is skipped (`skip_reason`).
* `result`: the last non-empty line wins; hex if it contains `0x`, else decimal (64-bit).
* `mem`: whitespace-separated hex tokens, each truncated to one byte.
* `raw`: one 64-bit number per slot (`0x` hex or decimal), the little-endian image of the slot;
  it replaces `asm`. Extension: a line of exactly eight 2-digit hex tokens is read as the slot's
  eight bytes (the layout of `negative/unused-*.data`, which the upstream parser cannot read).
* `error`: the last non-empty line is the expected message.
* `c` and `no register offset` sections are ignored.
* A file with neither `result` nor `error` is skipped; so is one without instructions.

Must not import: runtime, lower, jit, kernel, cli.

Imports: ebpfjit.errors, ebpfjit.isa
"""
from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from ..errors import AssemblerError, DecodeError
from ..isa.asm import assemble
from ..isa.insn import decode

__all__ = ["TestCase", "load", "parse_text", "iter_dir", "negative_cases", "NegativeCase",
           "CONFORMANCE_DIR", "CONFORMANCE_ENV", "CONFORMANCE_HOWTO", "conformance_files",
           "negative_files"]

# The bpf_conformance suite (a directory holding `tests/*.data` and `negative/*.data`), found
# through one setting: $EBPFJIT_CONFORMANCE_DIR; without it, `../shared/conformance` beside the
# checkout. ($EBPFJIT_SHARED/conformance is still read as a fallback for older setups.)
CONFORMANCE_ENV = "EBPFJIT_CONFORMANCE_DIR"
CONFORMANCE_HOWTO = (f"set {CONFORMANCE_ENV} to a directory holding bpf_conformance's tests/*.data "
                     "(git clone https://github.com/Alan-Jowett/bpf_conformance; see DEVELOPERS.md)")


def _conformance_dir() -> Path:
    if os.environ.get(CONFORMANCE_ENV):
        return Path(os.environ[CONFORMANCE_ENV])
    if os.environ.get("EBPFJIT_SHARED"):
        return Path(os.environ["EBPFJIT_SHARED"]) / "conformance"
    # This file is <checkout>/ebpfjit/cli/testdata.py: parents[3] holds the checkout.
    return Path(__file__).resolve().parents[3] / "shared" / "conformance"


CONFORMANCE_DIR = _conformance_dir()


_SECTIONS = (("asm", "asm"), ("result", "result"), ("mem", "mem"), ("raw", "raw"),
             ("no register offset", None), (" c", None), ("error", "error"))
_BYTE_LINE = re.compile(r"(?:[0-9a-fA-F]{2}\s+){7}[0-9a-fA-F]{2}")


@dataclass(frozen=True)
class TestCase:
    """One `.data` file. `code` assembles `asm` (or takes `raw`) lazily.

    `skip_reason` is set when the upstream runner would skip the file (unknown directive, no
    result/error, no instructions); such a case may still carry whatever was parsed.
    """
    __test__ = False   # not a pytest class

    name: str
    path: Path | None
    asm: str | None
    raw: bytes | None
    mem: bytes = b""
    result: int | None = None
    error: str | None = None
    skip_reason: str | None = None
    sections: tuple[str, ...] = field(default=(), compare=False)
    asm_lines: tuple[int, ...] = field(default=(), compare=False, repr=False)

    @cached_property
    def code(self) -> bytes:
        """The bytecode: `raw` if present, else the assembled `asm`.

        Raises:
            AssemblerError: the asm does not assemble (`line` is the line of the file), or the
            file has no program at all (the message is `skip_reason`).
        """
        if self.raw is not None:
            return self.raw
        if not (self.asm or "").strip():
            raise AssemblerError(self.skip_reason or "test file has no BPF instructions")
        try:
            return assemble(self.asm or "")
        except AssemblerError as exc:
            if exc.line is None or not 0 < exc.line <= len(self.asm_lines):
                raise
            raise AssemblerError(exc.reason, line=self.asm_lines[exc.line - 1], text=exc.text) from None

    @property
    def expected(self) -> int:
        """Expected r0 (the upstream runner expects 0 when only `-- error` is given)."""
        return self.result if self.result is not None else 0


def _parse_int(token: str, what: str) -> int:
    try:
        return int(token, 16) if "0x" in token.lower() else int(token, 10)
    except ValueError:
        raise ValueError(f"invalid {what} value {token!r}") from None


def _parse_raw(lines: list[str]) -> bytes:
    out = bytearray()
    for line in lines:
        if _BYTE_LINE.fullmatch(line.strip()):
            out += bytes(int(tok, 16) for tok in line.split())
            continue
        for token in line.split():
            out += struct.pack("<Q", _parse_int(token, "raw") & (2**64 - 1))
    return bytes(out)


def parse_text(text: str, name: str = "<string>", path: Path | None = None) -> TestCase:
    """Parse the text of a `.data` file (see the module docstring for the rules)."""
    buf: dict[str, list[str]] = {"asm": [], "result": [], "mem": [], "raw": [], "error": []}
    asm_lines: list[int] = []
    seen: list[str] = []
    state: str | None = None
    skip: str | None = None
    for lineno, raw_line in enumerate(text.split("\n"), start=1):
        line = raw_line[:-1] if raw_line.endswith("\r") else raw_line
        line = line.split("#", 1)[0]
        if "--" in line:
            for needle, section in _SECTIONS:
                if needle in line:
                    state = section
                    seen.append(needle.strip())
                    break
            else:
                skip = f"unknown directive {line.strip()!r}"
                break
            continue
        if not line.strip() or state is None:
            continue
        buf[state].append(line)
        if state == "asm":
            asm_lines.append(lineno)
    asm = "\n".join(buf["asm"]) + "\n" if buf["asm"] else None
    result = _parse_int(buf["result"][-1].strip(), "result") & (2**64 - 1) if buf["result"] else None
    error = buf["error"][-1].strip() if buf["error"] else None
    mem = bytes(_parse_int("0x" + tok, "mem") & 0xFF for line in buf["mem"] for tok in line.split())
    raw = _parse_raw(buf["raw"]) if buf["raw"] else None
    if skip is None and result is None and error is None:
        skip = "no result or error in test file"
    if skip is None and raw is None and asm is None:
        skip = "test file has no BPF instructions"
    return TestCase(name, path, asm, raw, mem, result, error, skip, tuple(seen), tuple(asm_lines))


def load(path: str | Path) -> TestCase:
    """Read and parse one `.data` file; `name` is the file name without `.data`."""
    path = Path(path)
    return parse_text(path.read_text(), path.stem, path)


def iter_dir(directory: str | Path) -> list[Path]:
    """Every `*.data` file directly in `directory`, sorted by path (like the upstream runner)."""
    return sorted(Path(directory).glob("*.data"))


def conformance_files() -> list[Path]:
    return iter_dir(CONFORMANCE_DIR / "tests")


def negative_files() -> list[Path]:
    return iter_dir(CONFORMANCE_DIR / "negative")


class NegativeCase(NamedTuple):
    """A file of `negative/`: `malformed` when it cannot yield a runnable program (skipped by
    the parser, asm that does not assemble, raw bytes that do not decode); otherwise it is a
    well-formed program whose expected result is wrong, which a harness must report as failing."""
    path: Path
    malformed: bool


def is_malformed(case: TestCase) -> bool:
    """True when `case` cannot produce a runnable program (see NegativeCase)."""
    if case.skip_reason is not None:
        return True
    try:
        decode(case.code)
    except (AssemblerError, DecodeError):
        return True
    return False


def negative_cases(directory: str | Path | None = None) -> list[NegativeCase]:
    """Classify the negative suite (default: shared/conformance/negative) by trying each file."""
    files = iter_dir(directory) if directory is not None else negative_files()
    return [NegativeCase(path, is_malformed(load(path))) for path in files]
