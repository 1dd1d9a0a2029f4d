"""Names of program return codes, as the kernel's uapi headers spell them (one table for the
CLI, compare and the API): `XdpAction`, `TcAction`, and `verdict_name(prog_type, retval)`."""
from __future__ import annotations

import enum


class XdpAction(enum.IntEnum):
    """enum xdp_action (uapi/linux/bpf.h)."""
    XDP_ABORTED = 0
    XDP_DROP = 1
    XDP_PASS = 2
    XDP_TX = 3
    XDP_REDIRECT = 4


class TcAction(enum.IntEnum):
    """TC_ACT_* (uapi/linux/pkt_cls.h); tc programs return them as a signed int."""
    TC_ACT_UNSPEC = -1
    TC_ACT_OK = 0
    TC_ACT_RECLASSIFY = 1
    TC_ACT_SHOT = 2
    TC_ACT_PIPE = 3
    TC_ACT_STOLEN = 4
    TC_ACT_QUEUED = 5
    TC_ACT_REPEAT = 6
    TC_ACT_REDIRECT = 7


# The enum of each program type whose return value is an action; others print as numbers
# (a socket filter returns the number of bytes to keep, 0 = drop).
ACTIONS = {"XDP": XdpAction, "SCHED_CLS": TcAction, "SCHED_ACT": TcAction}


def verdict_name(prog_type, retval: int) -> str:
    """`XDP_PASS`, `TC_ACT_SHOT`, ... for `retval` of a program of `prog_type` (a ProgType or
    its name); a value without a name prints in hex."""
    name = getattr(prog_type, "name", prog_type)
    actions = ACTIONS.get(name)
    signed = retval - (1 << 32) if retval & 0x80000000 else retval
    if actions is not None and signed in actions._value2member_map_:
        return actions(signed).name
    return f"{retval:#x}"
