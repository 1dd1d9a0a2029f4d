"""The engines a program runs on, named once: `Engine`, the default, and the one parser of engine
names (`parse_engine`), used at the API edge (Program/ObjectProgram runs, the CLI, the
conformance plugin, the fuzzers). Everything below the edge receives an `Engine`.

Imports: ebpfjit.errors
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from .errors import EngineError


class Engine(str, enum.Enum):
    """An execution engine. A `str` enum, so `Engine.JIT == "jit"` and either may be passed."""
    INTERP = "interp"
    JIT = "jit"

    def __str__(self) -> str:
        return self.value


# The engine of run(), run_batch(), test_run() and `ebpfjit run` when none is named.
DEFAULT_ENGINE = Engine.JIT

GRAMMAR = "interp or jit[-O0..3][-nobc]"


@dataclass(frozen=True)
class EngineChoice:
    """A parsed engine name: the engine, an opt level (None: the program's own) and whether
    the JIT keeps its bounds checks."""
    engine: Engine
    opt_level: int | None = None
    bounds_checks: bool = True


def parse_engine(name: str | Engine, *, options: bool = False) -> EngineChoice:
    """'interp' or 'jit' -> EngineChoice; with `options`, also 'jit-O<0..3>' and a '-nobc'
    suffix (the conformance and fuzzing spellings).

    Raises:
        EngineError: anything else (an EbpfError and a ValueError).
    """
    if isinstance(name, Engine):
        return EngineChoice(name)
    try:
        return EngineChoice(Engine(name))
    except ValueError:
        pass
    parts = name.split("-") if options and isinstance(name, str) else []
    if parts and parts[0] == "jit":
        level, checks = None, True
        for p in parts[1:]:
            if re.fullmatch(r"O[0-3]", p) and level is None:
                level = int(p[1])
            elif p == "nobc" and checks:
                checks = False
            else:
                break
        else:
            return EngineChoice(Engine.JIT, level, checks)
    expected = GRAMMAR if options else "'interp' or 'jit'"
    raise EngineError(f"unknown engine {name!r}; expected {expected}")


def as_engine(name: str | Engine) -> Engine:
    """The Engine called `name` ('interp' or 'jit'); EngineError otherwise."""
    return parse_engine(name).engine
