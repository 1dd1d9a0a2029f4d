"""Fixtures for every test: the kernel-availability gate, and the run header naming the
conformance vectors used. Shared code (paths, the conformance gate, builders) is in
tests/support/; test modules import it from there, never from this file."""
from __future__ import annotations

import pytest

from ebpfjit.cli import testdata
from tests.support.conformance import CONFORMANCE_DIR, HAVE_CONFORMANCE, conformance_files


def pytest_report_header(config):
    if HAVE_CONFORMANCE:
        return f"conformance vectors: {CONFORMANCE_DIR} ({len(conformance_files())} files)"
    return f"conformance vectors: absent; their tests skip ({testdata.CONFORMANCE_HOWTO})"


@pytest.fixture(scope="session")
def kernel():
    """The ebpfjit.oracle.kernel module when bpf(2) is usable; otherwise the test skips, saying why."""
    from ebpfjit.errors import KernelUnavailable
    from ebpfjit.oracle import kernel as kmod
    try:
        kmod.check()
    except KernelUnavailable as exc:
        pytest.skip(f"kernel bpf() not usable here: {exc}")
    return kmod
