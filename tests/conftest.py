"""Shared fixtures: where the conformance vectors live, and the kernel-availability gate."""
from __future__ import annotations

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = pathlib.Path(os.environ.get("EBPFJIT_SHARED", ROOT.parent / "shared"))
CONFORMANCE_DIR = SHARED / "conformance" / "tests"
NEGATIVE_DIR = SHARED / "conformance" / "negative"
PROGS_DIR = ROOT / "tests" / "progs"

ENGINES = ("interp", "jit-O0", "jit")


def conformance_files():
    return sorted(CONFORMANCE_DIR.glob("*.data"))


@pytest.fixture(scope="session")
def kernel():
    """The ebpfjit.kernel module when bpf(2) is usable; otherwise the test skips, saying why."""
    from ebpfjit import kernel as kmod
    from ebpfjit.errors import KernelUnavailable
    try:
        kmod.check()
    except KernelUnavailable as exc:
        pytest.skip(f"kernel bpf() not usable here: {exc}")
    return kmod
