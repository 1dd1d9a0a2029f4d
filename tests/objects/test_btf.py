"""ebpfjit.btf: type parsing, sizes, resolution, .BTF.ext records and bpftool-compatible
`format_value`, against the committed clang objects (and, where permitted, bpftool itself)."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import uuid

import pytest

from ebpfjit.errors import ElfError
from ebpfjit.objects.btf import Btf, BtfExt, BtfKind
from ebpfjit.objects.elf import load_spec
from tests.support.paths import PROGS_DIR

PROGS = PROGS_DIR


def spec_of(name: str):
    return load_spec(PROGS / f"{name}.o")


def section_bytes(name: str, section: str) -> bytes:
    data = (PROGS / f"{name}.o").read_bytes()
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    hdrs = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab_off = hdrs[shstrndx][4]
    for name_off, _t, _f, _a, off, size in hdrs:
        start = strtab_off + name_off
        if data[start:data.index(b"\0", start)].decode() == section:
            return data[off:off + size]
    raise KeyError(section)


def test_parse_all_kinds_present_in_corpus():
    kinds = set()
    for path in sorted(PROGS.glob("*.o")):
        btf = Btf.parse(section_bytes(path.stem, ".BTF"))
        kinds |= {t.kind for t in btf.types[1:]}
    assert {BtfKind.INT, BtfKind.PTR, BtfKind.ARRAY, BtfKind.STRUCT, BtfKind.ENUM, BtfKind.TYPEDEF,
            BtfKind.VOLATILE, BtfKind.CONST, BtfKind.FUNC, BtfKind.FUNC_PROTO, BtfKind.VAR,
            BtfKind.DATASEC} <= kinds


def test_struct_layout_and_sizes():
    btf = spec_of("event_filter").btf
    ev = btf.find("event", BtfKind.STRUCT)
    t = btf.type(ev)
    assert [(m.name, m.bit_offset // 8) for m in t.members] == [
        ("pid", 0), ("uid", 4), ("ts", 8), ("comm", 16), ("ret", 32), ("flags", 36)]
    assert btf.size_of(ev) == 40
    comm = btf.type(t.members[3].type)
    assert comm.kind is BtfKind.ARRAY and comm.nelems == 16 and btf.size_of(comm.id) == 16
    assert btf.size_of(btf.find("comm_key", BtfKind.STRUCT)) == 16
    other = spec_of("xdp_rate_limit").btf
    assert other.size_of(other.find("flow_state", BtfKind.STRUCT)) == 24


def test_resolve_skips_modifiers():
    btf = spec_of("global_data").btf
    ds = btf.datasec(".rodata")
    var = next(btf.type(v.type) for v in ds.secinfos if btf.type(v.type).name == "cfg_drop_proto")
    assert var.kind is BtfKind.VAR
    chain = []
    tid = var.type
    while btf.type(tid).kind in (BtfKind.CONST, BtfKind.VOLATILE, BtfKind.TYPEDEF):
        chain.append(btf.type(tid).kind)
        tid = btf.type(tid).type
    assert BtfKind.CONST in chain and BtfKind.VOLATILE in chain and BtfKind.TYPEDEF in chain
    resolved = btf.type(btf.resolve(var.type))
    assert (resolved.kind, resolved.name, resolved.size) == (BtfKind.INT, "unsigned int", 4)
    assert btf.size_of(var.type) == 4


def test_datasec_fixed_up_from_symbols():
    spec = spec_of("global_data")
    ds = spec.btf.datasec(".bss")
    assert ds.size == spec.maps[".bss"].value_size
    offsets = sorted(v.offset for v in ds.secinfos)
    assert offsets == sorted(set(offsets)) and offsets[0] == 0
    maps_ds = spec_of("map_in_map").btf.datasec(".maps")
    assert sorted(v.offset for v in maps_ds.secinfos) == [0, 0x20, 0x40, 0x78]


def test_enum_and_func():
    btf = spec_of("lpm_acl").btf
    e = btf.type(btf.find("acl_action", BtfKind.ENUM))
    assert e.enumerators == (("ACL_ALLOW", 1), ("ACL_DENY", 2)) and e.size == 4
    f = btf.type(btf.find("xdp_lpm_acl", BtfKind.FUNC))
    proto = btf.type(f.type)
    assert proto.kind is BtfKind.FUNC_PROTO and [p.name for p in proto.params] == ["ctx"]
    assert btf.describe(proto.params[0].type) == "struct xdp_md *"


def test_btf_ext_records():
    btf = Btf.parse(section_bytes("subprog_calls", ".BTF"))
    ext = BtfExt.parse(section_bytes("subprog_calls", ".BTF.ext"), btf)
    assert set(ext.func_info) == {".text", "xdp"}
    names = {btf.name_of(fi.type_id) for fi in ext.func_info[".text"]}
    assert names == {"fold32", "parse_ipv4", "bump", "flow_hash"}
    assert all(li.file.endswith("subprog_calls.c") and li.line > 0 for li in ext.line_info["xdp"])
    assert ext.core_relos == {}
    core = BtfExt.parse(section_bytes("bad/core_reloc", ".BTF.ext"),
                        Btf.parse(section_bytes("bad/core_reloc", ".BTF")))
    (relo,) = core.core_relos["raw_tp/sys_enter"]
    assert relo.access == "0:1"


def test_format_global_data_like_bpftool():
    spec = spec_of("global_data")
    btf = spec.btf
    data = spec.maps[".data"]
    assert btf.format_value(data.value_type_id, data.initial) == {".data": [
        {"port_weights": [1, 2, 3, 5, 8, 13, 21, 34]},
        {"data_generation": 7},
        {"tunables": {"name": "edge", "level": "LOG_DEBUG", "enabled": "0x1", "mode": "0x5",
                      "spare": "0x0", "offset": -12, "strict": True, "unused_ptr": 0,
                      "raw": [1, 2, 3, 4]}},
    ]}
    ro = spec.maps[".rodata"]
    assert btf.format_value(ro.value_type_id, ro.initial)[".rodata"][:3] == [
        {"cfg_drop_proto": 17}, {"cfg_verbose": 0}, {"cfg_magic": 0x1122334455667788}]


def test_format_struct_values():
    btf = spec_of("event_filter").btf
    ev = btf.find("event", BtfKind.STRUCT)
    raw = struct.pack("<IIQ16siI", 4242, 0, 123456789, b"bash\0", -2, 1)
    assert btf.format_value(ev, raw) == {"pid": 4242, "uid": 0, "ts": 123456789, "comm": "bash",
                                         "ret": -2, "flags": 1}
    # no NUL or a non-printable byte: bpftool falls back to a list of (signed char) ints
    raw = struct.pack("<IIQ16siI", 1, 0, 0, b"A" * 16, 0, 0)
    assert btf.format_value(ev, raw)["comm"] == [65] * 16
    raw = struct.pack("<IIQ16siI", 1, 0, 0, b"a\xffb\0", 0, 0)
    assert btf.format_value(ev, raw)["comm"][:3] == [97, -1, 98]


def test_format_enum_fallback_and_errors():
    btf = spec_of("lpm_acl").btf
    entry = btf.find("acl_entry", BtfKind.STRUCT)
    assert btf.format_value(entry, struct.pack("<iI", 2, 9)) == {"action": "ACL_DENY", "hits": 9}
    assert btf.format_value(entry, struct.pack("<iI", 5, 0)) == {"action": 5, "hits": 0}
    with pytest.raises(ElfError, match="needs 8 bytes"):
        btf.format_value(entry, b"\0" * 7)
    with pytest.raises(ElfError):
        btf.format_value(btf.find("xdp_lpm_acl", BtfKind.FUNC), b"\0" * 8)


@pytest.mark.parametrize("mutate, pattern", [
    (lambda b: b[:3], "truncated"),
    (lambda b: b"\0\0" + b[2:], "bad magic"),
    (lambda b: b[:24], "past the end"),
    (lambda b: b[:8] + struct.pack("<I", 0xFFFF) + b[12:], "past the end"),
])
def test_malformed_btf(mutate, pattern):
    raw = section_bytes("xdp_rate_limit", ".BTF")
    with pytest.raises(ElfError, match=pattern):
        Btf.parse(mutate(raw))


def test_unknown_kind():
    raw = bytearray(section_bytes("xdp_rate_limit", ".BTF"))
    hdr_len, type_off = struct.unpack_from("<II", raw, 4)[0], struct.unpack_from("<I", raw, 8)[0]
    info_at = hdr_len + type_off + 4
    struct.pack_into("<I", raw, info_at, 31 << 24)
    with pytest.raises(ElfError, match="unknown kind 31"):
        Btf.parse(bytes(raw))


# ---------------------------------------------------------------------- against bpftool


def _bpftool(*args: str) -> str:
    return subprocess.run(["bpftool", *args], check=True, capture_output=True, text=True).stdout


def _kernel_ok() -> str | None:
    if shutil.which("bpftool") is None:
        return "bpftool not installed"
    if os.geteuid() != 0:
        return "needs root for bpf(2)"
    if not os.path.ismount("/sys/fs/bpf"):
        return "bpffs not mounted on /sys/fs/bpf"
    return None


@pytest.mark.kernel
@pytest.mark.parametrize("obj, pinned, our_map, key, value", [
    ("lpm_acl", "acl", "acl", struct.pack("<I4B", 32, 10, 0, 0, 1), struct.pack("<iI", 2, 7)),
    ("event_filter", "per_comm", "per_comm", b"bash".ljust(16, b"\0"), struct.pack("<Q", 3)),
    ("event_filter", "last_event", "last_event", struct.pack("<I", 0),
     struct.pack("<IIQ16siI", 4242, 1000, 99, b"sshd", -13, 3)),
    ("xdp_rate_limit", "flows", "flows", bytes([192, 168, 1, 9]), struct.pack("<QQQ", 10, 20, 30)),
    ("global_data", "global_d_data", ".data", None, None),
    ("global_data", "global_d_rodata", ".rodata", None, None),
])
def test_format_matches_bpftool(obj, pinned, our_map, key, value):
    reason = _kernel_ok()
    if reason:
        pytest.skip(reason)
    base = f"/sys/fs/bpf/ebpfjit_btf_{uuid.uuid4().hex[:8]}"
    try:
        try:
            _bpftool("prog", "loadall", str(PROGS / f"{obj}.o"), base, "pinmaps", base + "_maps")
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"kernel refused the object: {exc.stderr.strip()[-200:]}")
        path = f"{base}_maps/{pinned}"
        if key is not None:
            _bpftool("map", "update", "pinned", path, "key", "hex", *(f"{b:02x}" for b in key),
                     "value", "hex", *(f"{b:02x}" for b in value))
        dumped = json.loads(_bpftool("map", "dump", "pinned", path, "-j"))
    finally:
        subprocess.run(["rm", "-rf", base, base + "_maps"], check=False)
    spec = spec_of(obj)
    m = spec.maps[our_map]
    (entry,) = dumped
    raw_value = bytes(int(x, 16) for x in entry["value"])
    assert spec.btf.format_value(m.value_type_id, raw_value) == entry["formatted"]["value"]
    if m.key_type_id:
        raw_key = bytes(int(x, 16) for x in entry["key"])
        assert spec.btf.format_value(m.key_type_id, raw_key) == entry["formatted"]["key"]
