"""Fixtures for the benchmark suite: the native build and the in-C timer.

Runs are looped in C (LoadedProgram.run_repeat for interp/jit, native.bench_repeat for native),
so the numbers are ns per run without the Python call. A batch is timed twice: by the C loop with
CLOCK_MONOTONIC (`wall_ns`), and by this thread's CPU time around the call (`ns_per_run`, what
the report uses): on a shared, oversubscribed 2-core machine CPU time does not count the time
slices other processes take. For one program the engines are measured in interleaved rounds
(native, interp, jit, ...) and the minimum over the rounds is kept, so that the ratios, which are
the point, come from the same machine state.

Knobs (environment): BENCH_ROUNDS (default 15) rounds per engine, BENCH_BATCH_MS (default 10)
target duration of one C batch. With `--benchmark-disable` (the CI smoke run) nothing is timed:
every program runs a few times per engine for the correctness checks only.
"""
from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import native  # noqa: E402  (bench/ is not a package)

# runner(repeat) -> (r0 of the last run, mean ns per run), the loop being in C.
Runner = Callable[[int], tuple[int, float]]


@dataclass
class Timing:
    """In-C timing of one engine on one program."""
    ns_per_run: float                 # thread CPU time per run, min over rounds
    median_ns: float
    wall_ns: float                    # CLOCK_MONOTONIC per run (the C loop's own), min over rounds
    repeat: int                       # runs per batch
    samples: list[float] = field(default_factory=list)
    r0: int = 0


class CTimer:
    """Measures the engines of a program in interleaved rounds; results cached per program."""

    def __init__(self, rounds: int, batch_ms: float):
        self.rounds = rounds
        self.batch_ns = batch_ms * 1e6
        self.results: dict[str, dict[str, Timing]] = {}

    def _calibrate(self, run: Runner) -> int:
        run(1)                                   # warm caches and branch predictors
        repeat = 1
        while True:
            start = time.perf_counter_ns()
            run(repeat)
            elapsed = time.perf_counter_ns() - start
            if elapsed >= self.batch_ns / 10 or repeat >= 1 << 30:
                return max(1, int(repeat * self.batch_ns / max(elapsed, 1)))
            repeat *= 10

    def measure(self, program: str, runners: dict[str, Runner]) -> dict[str, Timing]:
        if program in self.results:
            return self.results[program]
        repeats = {engine: self._calibrate(run) for engine, run in runners.items()}
        samples: dict[str, list[float]] = {engine: [] for engine in runners}
        walls: dict[str, list[float]] = {engine: [] for engine in runners}
        r0s: dict[str, int] = {}
        for _ in range(self.rounds):
            for engine, run in runners.items():
                start = time.thread_time_ns()
                r0s[engine], wall = run(repeats[engine])
                samples[engine].append((time.thread_time_ns() - start) / repeats[engine])
                walls[engine].append(wall)
        out = {engine: Timing(min(s), statistics.median(s), min(walls[engine]), repeats[engine], s,
                              r0s[engine])
               for engine, s in samples.items()}
        self.results[program] = out
        return out


@pytest.fixture(scope="session")
def native_suite():
    """All of bench/progs/*.c compiled natively into one cffi module (built once per session)."""
    suite = native.build(native.PROGRAM_NAMES)
    yield suite
    shutil.rmtree(suite.tmpdir, ignore_errors=True)


@pytest.fixture(scope="session")
def c_timer() -> CTimer:
    return CTimer(rounds=int(os.environ.get("BENCH_ROUNDS", "15")),
                  batch_ms=float(os.environ.get("BENCH_BATCH_MS", "10")))
