"""The kernel as oracle for the verifier: for every program of tests/progs (except objects
written not to load) and tests/security/progs, ebpfjit's verdict (accept/reject) equals the
running kernel's. Each disagreement is a failure; the summary test prints the agreement count.
"""
from __future__ import annotations

import errno
import functools
from pathlib import Path

import pytest

from ebpfjit.errors import KernelError, VerifierError
from ebpfjit.objects.elf import load_spec
from ebpfjit.verifier import verify_spec

pytestmark = pytest.mark.kernel

TESTS = Path(__file__).resolve().parent.parent
DIRS = (TESTS / "progs", TESTS / "security" / "progs")


def _objects():
    for d in DIRS:
        for path in sorted(d.glob("*.o")):
            src = path.with_suffix(".c")
            if src.exists() and src.read_text().startswith("// Not loadable by the kernel"):
                continue
            yield path


def _cases():
    out = []
    for path in _objects():
        for name in load_spec(str(path)).programs:
            out.append(pytest.param(path, name, id=f"{path.stem}:{name}"))
    return out


@functools.lru_cache(maxsize=None)
def kernel_verdict(kmod, path: Path, name: str) -> tuple[bool | None, str]:
    """(True accepted / False rejected by the verifier / None not loadable for another reason
    such as a missing attach target, and the log's last lines)."""
    try:
        ko = kmod.KernelObject(load_spec(str(path)), programs=[name])
    except KernelError as exc:
        log = exc.log.strip()
        if exc.errno in (errno.EACCES, errno.EINVAL) and "processed " in log:
            return False, "\n".join(log.splitlines()[-3:])
        return None, str(exc).splitlines()[0]
    ko.close()
    return True, ""


def our_verdict(path: Path, name: str) -> tuple[bool, str]:
    spec = load_spec(str(path))
    try:
        verify_spec(spec.programs[name], spec)
    except VerifierError as exc:
        return False, str(exc)
    return True, ""


@pytest.mark.parametrize("path, name", _cases())
def test_same_verdict_as_kernel(kernel, path, name):
    want, klog = kernel_verdict(kernel, path, name)
    if want is None:
        pytest.skip(f"the kernel cannot load {name} for a reason other than its verifier: {klog}")
    got, ours = our_verdict(path, name)
    assert got == want, (f"kernel {'accepts' if want else 'rejects'}: {klog}\n"
                         f"ebpfjit {'accepts' if got else 'rejects'}: {ours}")


def test_agreement_summary(kernel, capsys):
    agree = total = 0
    gaps = []
    for param in _cases():
        path, name = param.values
        want, _ = kernel_verdict(kernel, path, name)
        if want is None:
            continue
        total += 1
        got, why = our_verdict(path, name)
        if got == want:
            agree += 1
        else:
            gaps.append(f"{path.stem}:{name}: {why}")
    with capsys.disabled():
        print(f"\nverifier vs kernel: {agree}/{total} programs agree")
    assert total and agree == total, gaps
