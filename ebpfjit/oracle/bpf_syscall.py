"""The bpf(2) system call: its commands and flags, its errors as KernelError/KernelUnavailable
(saying which capability or policy is missing), and the file descriptors it hands out.

No bcc and no libbpf at runtime: the attr structs are declared in csrc/kernel_sys.h (checked
against <linux/bpf.h> at build time) and filled through cffi (the C module, imported lazily).

Must not import: lower, jit, cli.

Imports: ebpfjit.errors, ebpfjit.objects, ebpfjit.runtime
"""
from __future__ import annotations

import enum
import errno as _errno
import os
from collections.abc import Sequence

from ..errors import KernelError, KernelUnavailable
from ..objects.spec import ENOTSUPP, MapType, ProgType


class Cmd(enum.IntEnum):
    """enum bpf_cmd (uapi/linux/bpf.h), the commands this module issues."""
    MAP_CREATE = 0
    MAP_LOOKUP_ELEM = 1
    MAP_UPDATE_ELEM = 2
    MAP_DELETE_ELEM = 3
    MAP_GET_NEXT_KEY = 4
    PROG_LOAD = 5
    PROG_TEST_RUN = 10
    OBJ_GET_INFO_BY_FD = 15
    BTF_LOAD = 18
    MAP_FREEZE = 22


# BPF_PROG_LOAD prog_flags.
BPF_F_SLEEPABLE = 1 << 4
# BPF_PROG_TEST_RUN flags.
BPF_F_TEST_RUN_ON_CPU = 1 << 0
# BPF_PROG_LOAD log_level bits.
BPF_LOG_LEVEL1 = 1
BPF_LOG_LEVEL2 = 2
BPF_LOG_STATS = 4

OBJ_NAME_LEN = 16


def ffi_lib():
    """(ffi, lib) of the C module, whose ebpfjit_sys_bpf issues the system call."""
    # Imported lazily so that `import ebpfjit.oracle.kernel` works (and can report) on a tree
    # whose C runtime is not built yet.
    from ..runtime.env import ffi, lib
    return ffi, lib


_permission_reason: str | None = None
_permission_probed = False


def errno_name(err: int) -> str:
    if err == ENOTSUPP:
        return "ENOTSUPP"
    return _errno.errorcode.get(err, f"errno {err}")


_CAP_NET_ADMIN, _CAP_SYS_ADMIN, _CAP_PERFMON, _CAP_BPF = 12, 21, 38, 39
# Program types the kernel also gates on CAP_NET_ADMIN / CAP_PERFMON (kernel/bpf/syscall.c:
# is_net_admin_prog_type, is_perfmon_prog_type).
_NET_ADMIN_TYPES = frozenset({
    ProgType.SCHED_CLS, ProgType.SCHED_ACT, ProgType.XDP, ProgType.LWT_IN, ProgType.LWT_OUT,
    ProgType.LWT_XMIT, ProgType.LWT_SEG6LOCAL, ProgType.SK_SKB, ProgType.SK_MSG,
    ProgType.FLOW_DISSECTOR, ProgType.CGROUP_DEVICE, ProgType.CGROUP_SOCK, ProgType.CGROUP_SKB,
    ProgType.CGROUP_SOCK_ADDR, ProgType.CGROUP_SOCKOPT, ProgType.CGROUP_SYSCTL, ProgType.SOCK_OPS,
    ProgType.EXT, ProgType.NETFILTER})
_PERFMON_TYPES = frozenset({
    ProgType.KPROBE, ProgType.TRACEPOINT, ProgType.PERF_EVENT, ProgType.RAW_TRACEPOINT,
    ProgType.RAW_TRACEPOINT_WRITABLE, ProgType.TRACING, ProgType.LSM, ProgType.STRUCT_OPS,
    ProgType.EXT})


def _effective_caps() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return None


def missing_capability(prog_type: ProgType | None = None) -> str | None:
    """Which capability this process lacks for bpf() (for a program of `prog_type`), if any."""
    caps = _effective_caps()

    def has(cap: int) -> bool:
        return caps is None or bool(caps >> cap & 1)

    if not (has(_CAP_BPF) or has(_CAP_SYS_ADMIN)):
        text = "needs CAP_BPF (run as root)"
        try:
            with open("/proc/sys/kernel/unprivileged_bpf_disabled", encoding="ascii") as f:
                setting = f.read().strip()
            if setting != "0":
                text += f"; unprivileged bpf() is disabled (kernel.unprivileged_bpf_disabled={setting})"
        except OSError:
            pass
        return text
    if prog_type in _NET_ADMIN_TYPES and not (has(_CAP_NET_ADMIN) or has(_CAP_SYS_ADMIN)):
        return f"{prog_type.name} programs need CAP_NET_ADMIN besides CAP_BPF (run as root)"
    if prog_type in _PERFMON_TYPES and not (has(_CAP_PERFMON) or has(_CAP_SYS_ADMIN)):
        return f"{prog_type.name} programs need CAP_PERFMON besides CAP_BPF (run as root)"
    return None


def missing_permission_text(cmd_name: str, err: int, prog_type: ProgType | None = None) -> str:
    reason = missing_capability(prog_type) or (
        # The capabilities are there: something outside the process refuses.
        "the process has CAP_BPF, so a seccomp filter, LSM or container policy blocks bpf()")
    return f"bpf({cmd_name}) failed with {errno_name(err)}: {reason}"


def probe_permission() -> str | None:
    """Why bpf() cannot be used (None when it can); probed once with a one-slot array map."""
    global _permission_reason, _permission_probed
    if _permission_probed:
        return _permission_reason
    ffi, lib = ffi_lib()
    attr = ffi.new("struct ebpfjit_bpf_map_create_attr *")
    attr.map_type = MapType.ARRAY
    attr.key_size = 4
    attr.value_size = 4
    attr.max_entries = 1
    fd = lib.ebpfjit_sys_bpf(Cmd.MAP_CREATE, attr, ffi.sizeof(attr[0]))
    if fd >= 0:
        os.close(fd)
        reason = None
    elif -fd == _errno.ENOSYS:
        reason = ("bpf() failed with ENOSYS: the kernel has no bpf system call "
                  "(CONFIG_BPF_SYSCALL is off)")
    elif -fd in (_errno.EPERM, _errno.EACCES):
        reason = missing_permission_text("BPF_MAP_CREATE", -fd)
    else:
        reason = f"bpf(BPF_MAP_CREATE) of a 1-entry array map failed with {errno_name(-fd)}"
    _permission_reason, _permission_probed = reason, True
    return reason


def sys_bpf(cmd: Cmd, attr, what: str = "", log: str = "", ok: Sequence[int] = ()) -> int:
    """bpf(cmd, attr); the result (fd or 0), or -errno when errno is in `ok`.

    EPERM/EACCES/ENOSYS become KernelUnavailable only when the process cannot use bpf() at all:
    with permission, EPERM/EACCES are ordinary failures (a frozen map, a verifier rejection).
    """
    ffi, lib = ffi_lib()
    r = lib.ebpfjit_sys_bpf(cmd, attr, ffi.sizeof(attr[0]))
    if r >= 0 or -r in ok:
        return r
    err = -r
    cmd_name = f"BPF_{cmd.name}"
    if err == _errno.ENOSYS:
        raise KernelUnavailable(f"bpf({cmd_name}) failed with ENOSYS: the kernel has no bpf system "
                                "call (CONFIG_BPF_SYSCALL is off)")
    if err in (_errno.EPERM, _errno.EACCES) and not log and probe_permission() is not None:
        raise KernelUnavailable(missing_permission_text(cmd_name, err))
    where = f"{what}: " if what else ""
    message = f"{where}bpf({cmd_name}) failed with {errno_name(err)} ({os.strerror(err)})"
    if log:
        tail = _log_reason(log)
        if tail:
            message += f": {tail}"
    raise KernelError(message, errno=err, log=log)


def _log_reason(log: str) -> str:
    """The verifier's verdict: the last line before the closing statistics block."""
    lines = log.strip().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(("verification time", "processed ")):
            lines = lines[:i]
            break
    lines = [ln for ln in lines if ln.strip()]
    return lines[-1] if lines else ""


def available() -> bool:
    """Whether this process may use bpf(2) (creates and closes a one-entry array map)."""
    try:
        return probe_permission() is None
    except ImportError:
        return False


def check(*prog_types: ProgType) -> None:
    """Raise KernelUnavailable saying what is missing when bpf(2) cannot be used.

    Args:
        prog_types: program types the caller will load; their extra capabilities
            (CAP_NET_ADMIN for XDP/tc, CAP_PERFMON for tracing) are checked too.
    Raises:
        KernelUnavailable: no bpf() syscall, no permission, or the C runtime is not built.
    """
    try:
        reason = probe_permission()
    except ImportError as exc:
        raise KernelUnavailable(f"the C runtime ebpfjit._rt is not built ({exc})") from exc
    if reason is not None:
        raise KernelUnavailable(reason)
    for prog_type in prog_types:
        missing = missing_capability(ProgType(prog_type))
        if missing is not None:
            raise KernelUnavailable(missing)


_possible_cpus: int | None = None


def possible_cpus() -> int:
    """The number of possible CPUs, which sizes per-CPU map values (as libbpf computes it)."""
    global _possible_cpus
    if _possible_cpus is None:
        with open("/sys/devices/system/cpu/possible", encoding="ascii") as f:
            text = f.read().strip()
        n = 0
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            n += (int(hi) if hi else int(lo)) - int(lo) + 1
        _possible_cpus = n
    return _possible_cpus


def kernel_name(name: str) -> str:
    """A map/program name the kernel accepts: [A-Za-z0-9_.], at most 15 characters."""
    clean = "".join(c if c.isascii() and (c.isalnum() or c in "_.") else "_" for c in name)
    return clean[:OBJ_NAME_LEN - 1]


def set_name(dst, name: str) -> None:
    raw = kernel_name(name).encode("ascii")
    dst[0:len(raw)] = raw


def buf_address(ffi, buf) -> int:
    return int(ffi.cast("uintptr_t", buf)) if buf is not None else 0


def _close_fd(fd: int) -> None:
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass


class FdOwner:
    """A kernel object held through one file descriptor, closed on close(), `with` or GC."""

    fd: int = -1

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        _close_fd(fd)

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "fd", -1) >= 0:
            self.close()


def raise_load_error(err: int, what: str, log: str, prog_type: ProgType):
    if err == _errno.ENOSYS:
        raise KernelUnavailable("bpf(BPF_PROG_LOAD) failed with ENOSYS: the kernel has no bpf "
                                "system call (CONFIG_BPF_SYSCALL is off)")
    if err in (_errno.EPERM, _errno.EACCES) and not log.strip():
        # No verifier output: the kernel refused before verifying, i.e. for want of privilege.
        if probe_permission() is not None or missing_capability(prog_type) is not None:
            raise KernelUnavailable(missing_permission_text("BPF_PROG_LOAD", err, prog_type))
    message = f"{what}: bpf(BPF_PROG_LOAD) failed with {errno_name(err)} ({os.strerror(err)})"
    tail = _log_reason(log)
    if tail:
        message += f": {tail}"
    raise KernelError(message, errno=err, log=log)
