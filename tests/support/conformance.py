"""The bpf_conformance vectors: where they are, and the gate for tests that need them.

They are third-party files found through one setting, $EBPFJIT_CONFORMANCE_DIR (default
`../shared/conformance` beside the checkout; see ebpfjit.testdata). Without them every test that
needs them skips with one reason, and the assembly tables (tests/isa/test_edge_cases.py,
tests/engines/test_differential.py, ...) still cover the ISA on every engine.
"""
from __future__ import annotations

import pytest

from ebpfjit.cli import testdata

CONFORMANCE_DIR = testdata.CONFORMANCE_DIR / "tests"
NEGATIVE_DIR = testdata.CONFORMANCE_DIR / "negative"

ENGINES = ("interp", "jit-O0", "jit")

HAVE_CONFORMANCE = bool(testdata.conformance_files())
CONFORMANCE_SKIP = f"bpf_conformance vectors not found in {CONFORMANCE_DIR}: {testdata.CONFORMANCE_HOWTO}"
needs_conformance = pytest.mark.skipif(not HAVE_CONFORMANCE, reason=CONFORMANCE_SKIP)


def conformance_files():
    return testdata.conformance_files()


def conformance_params(paths=None):
    """Parameters for a test over conformance files: one per file, or, when the vectors are
    absent, one placeholder that skips with CONFORMANCE_SKIP (instead of pytest's anonymous
    'empty parameter set')."""
    paths = conformance_files() if paths is None else list(paths)
    if not HAVE_CONFORMANCE:
        return [pytest.param(None, id="no-conformance-vectors", marks=needs_conformance)]
    return [pytest.param(p, id=p.stem) for p in paths]
