"""Shared fixtures: where the conformance vectors live, and the kernel-availability gate.

The bpf_conformance vectors are third-party files found through one setting,
$EBPFJIT_CONFORMANCE_DIR (default `../shared/conformance` beside the checkout; see
ebpfjit.cli.testdata). Without them every test that needs them skips with one reason, and the
assembly-based edge-case tables (tests/test_jit.py, tests/test_differential.py, ...) still cover
the ISA on every engine.
"""
from __future__ import annotations

import pathlib

import pytest

from ebpfjit.cli import testdata

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFORMANCE_DIR = testdata.CONFORMANCE_DIR / "tests"
NEGATIVE_DIR = testdata.CONFORMANCE_DIR / "negative"
PROGS_DIR = ROOT / "tests" / "progs"

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


def pytest_report_header(config):
    if HAVE_CONFORMANCE:
        return f"conformance vectors: {CONFORMANCE_DIR} ({len(conformance_files())} files)"
    return f"conformance vectors: absent; their tests skip ({testdata.CONFORMANCE_HOWTO})"


@pytest.fixture(scope="session")
def kernel():
    """The ebpfjit.kernel module when bpf(2) is usable; otherwise the test skips, saying why."""
    from ebpfjit.errors import KernelUnavailable
    from ebpfjit.oracle import kernel as kmod
    try:
        kmod.check()
    except KernelUnavailable as exc:
        pytest.skip(f"kernel bpf() not usable here: {exc}")
    return kmod
