"""Where the checkout and the test data folders are (independent of which test file asks)."""
from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
TESTS_DIR = ROOT / "tests"
PROGS_DIR = TESTS_DIR / "progs"                  # clang-built objects (ci/build_testdata.sh)
PCAPS_DIR = TESTS_DIR / "pcaps"                  # tcpdump-written captures
GOLDEN_DIR = TESTS_DIR / "golden"                # llvm-objdump-19 output for tests/progs
REGRESSIONS_DIR = TESTS_DIR / "regressions"      # kernel-fuzzer corpus
SECURITY_PROGS_DIR = TESTS_DIR / "security" / "progs"   # hostile objects
EXAMPLES_DIR = ROOT / "ebpfjit" / "examples"
