"""What the compile-cache key says about the LLVM build and the host CPU, computed without
loading LLVM (a cache hit must not pay the ~30 ms of importing llvmlite.binding).

- The LLVM build: llvmlite's LLVM library and version file, by path, size and mtime (a new
  llvmlite, or the same version rebuilt against another LLVM, is a new file).
- The host CPU: LLVM picks the host CPU name and features (TargetSpec of the compile) from the
  x86 cpuid leaves and XCR0; the key holds those words (csrc/jit_image.c reads them, per-core
  fields left out), so two hosts with the same words get the same code from the same LLVM.
  Where the C module cannot read them (other architectures) the key asks LLVM after all.

Imports: ebpfjit.runtime.native_image
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable

_llvm: str | None = None
_host: str | None = None


def llvm_identity() -> str:
    """`name:size:mtime_ns` of llvmlite's shared library and its _version.py."""
    global _llvm
    if _llvm is None:
        spec = importlib.util.find_spec("llvmlite")
        if spec is None or not spec.origin:
            return "no-llvmlite"
        root = os.path.dirname(spec.origin)
        binding = os.path.join(root, "binding")
        files = sorted(os.path.join(binding, n) for n in os.listdir(binding)
                       if n.startswith("libllvmlite"))
        files.append(os.path.join(root, "_version.py"))
        parts = []
        for path in files:
            try:
                st = os.stat(path)
            except OSError:
                continue
            parts.append(f"{os.path.basename(path)}:{st.st_size}:{st.st_mtime_ns}")
        _llvm = ";".join(parts)
    return _llvm


def host_key(llvm_key: Callable[[], str]) -> str:
    """The host CPU's part of the key: its cpuid words, else `llvm_key()` (LLVM's triple, CPU
    name and features)."""
    global _host
    if _host is None:
        from ..runtime.native_image import host_cpu_id
        words = host_cpu_id()
        if words:
            digest = hashlib.sha256(b"".join(w.to_bytes(4, "little") for w in words))
            _host = f"{os.uname().machine}|cpuid:{digest.hexdigest()[:32]}"
        else:
            _host = llvm_key()
    return _host
