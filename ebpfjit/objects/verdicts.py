"""Verdict names: what a packet program's return value means, by program type.

`verdict_name(prog_type, retval)` gives `XDP_PASS`, `TC_ACT_SHOT`, ... (hex for values without a
name); `kept(prog_type, retval, keep)` says whether a packet counts as passed or dropped, for
`run --pcap -o OUT --keep pass|drop`: XDP passes with XDP_PASS and drops with XDP_DROP or
XDP_ABORTED (XDP_TX/XDP_REDIRECT are neither); tc passes with TC_ACT_OK/TC_ACT_UNSPEC and drops
with TC_ACT_SHOT; a socket filter or cgroup skb program passes with any non-zero value.

Imports: ebpfjit.objects.spec
"""
from __future__ import annotations

import enum

from .spec import ProgType

__all__ = ["XdpAction", "TcAction", "SkAction", "verdict_name", "kept"]


class XdpAction(enum.IntEnum):
    """enum xdp_action (uapi/linux/bpf.h)."""
    XDP_ABORTED = 0
    XDP_DROP = 1
    XDP_PASS = 2
    XDP_TX = 3
    XDP_REDIRECT = 4


class TcAction(enum.IntEnum):
    """TC_ACT_* (uapi/linux/pkt_cls.h)."""
    TC_ACT_UNSPEC = -1
    TC_ACT_OK = 0
    TC_ACT_RECLASSIFY = 1
    TC_ACT_SHOT = 2
    TC_ACT_PIPE = 3
    TC_ACT_STOLEN = 4
    TC_ACT_QUEUED = 5
    TC_ACT_REPEAT = 6
    TC_ACT_REDIRECT = 7


class SkAction(enum.IntEnum):
    """enum sk_action (cgroup skb, sk_reuseport, ...)."""
    SK_DROP = 0
    SK_PASS = 1


_TC_TYPES = (ProgType.SCHED_CLS, ProgType.SCHED_ACT)


def _enum_for(prog_type):
    if isinstance(prog_type, str):      # a ProgType name, as JSON reports carry it
        prog_type = ProgType[prog_type]
    if prog_type == ProgType.XDP:
        return XdpAction
    if prog_type in _TC_TYPES:
        return TcAction
    if prog_type == ProgType.CGROUP_SKB:
        return SkAction
    return None


def verdict_name(prog_type: int, retval: int) -> str:
    """The name of `retval` (r0 as u32, as the kernel reports it) for `prog_type`."""
    names = _enum_for(prog_type)
    signed = retval - (1 << 32) if retval & 0x80000000 else retval
    if names is not None:
        try:
            return names(signed).name
        except ValueError:
            pass
    return f"{retval:#x}"


def kept(prog_type: int, retval: int, keep: str) -> bool:
    """Whether a packet with verdict `retval` is kept by `keep` ("all", "pass" or "drop")."""
    if keep == "all":
        return True
    signed = retval - (1 << 32) if retval & 0x80000000 else retval
    if prog_type == ProgType.XDP:
        passed, dropped = signed == XdpAction.XDP_PASS, signed in (0, 1)
    elif prog_type in _TC_TYPES:
        passed, dropped = signed in (-1, 0), signed == TcAction.TC_ACT_SHOT
    else:
        passed, dropped = signed != 0, signed == 0
    if keep == "pass":
        return passed
    if keep == "drop":
        return dropped
    raise ValueError(f"keep must be 'all', 'pass' or 'drop', not {keep!r}")
