"""ebpfjit.elf: the committed clang corpus (tests/progs) loads as its C source says, and malformed
objects (truncated, mutated, unsupported features) fail with ElfError only."""
from __future__ import annotations

import random
import re
import struct
from pathlib import Path

import pytest

from ebpfjit.errors import ElfError
from ebpfjit.objects.elf import load_spec, program_type_for_section
from ebpfjit.objects.spec import (
    BPF_F_MMAPABLE,
    BPF_F_NO_COMMON_LRU,
    BPF_F_NO_PREALLOC,
    BPF_F_RDONLY_PROG,
    PSEUDO_CALL,
    PSEUDO_FUNC,
    PSEUDO_MAP_FD,
    PSEUDO_MAP_VALUE,
    MapType,
    ProgType,
)

PROGS = Path(__file__).parent / "progs"
OBJECTS = sorted(PROGS.glob("*.o"))
BAD = PROGS / "bad"


def obj(name: str) -> Path:
    return PROGS / f"{name}.o"


def slots(code: bytes):
    """(pc, opcode, dst, src, off, imm) per 8-byte slot."""
    for pc in range(len(code) // 8):
        op, regs, off, imm = struct.unpack_from("<BBhi", code, pc * 8)
        yield pc, op, regs & 0xF, regs >> 4, off, imm


def lddws(code: bytes):
    """(pc, src, imm, second-slot imm) of every lddw."""
    out = []
    skip = False
    for pc, op, _dst, src, _off, imm in slots(code):
        if skip:
            skip = False
            continue
        if op == 0x18:
            out.append((pc, src, imm, struct.unpack_from("<i", code, pc * 8 + 12)[0]))
            skip = True
    return out


# ---------------------------------------------------------------------- independent ELF reading
# Tests read section headers, symbols and relocations with their own few lines of struct code,
# so expectations do not come from the module under test.

def elf_sections(data: bytes) -> dict[str, dict]:
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    raw = []
    for i in range(shnum):
        h = shoff + i * shentsize
        name, typ, flags, _addr, off, size, link, info = struct.unpack_from("<IIQQQQII", data, h)
        raw.append(dict(index=i, hdr=h, name_off=name, type=typ, flags=flags, offset=off, size=size,
                        link=link, info=info))
    strtab = raw[shstrndx]
    out = {}
    for s in raw:
        start = strtab["offset"] + s["name_off"]
        s["name"] = data[start:data.index(b"\0", start)].decode()
        out[s["name"]] = s
    return out


def elf_symbols(data: bytes) -> list[dict]:
    secs = elf_sections(data)
    symtab = secs[".symtab"]
    strtab = next(s for s in secs.values() if s["index"] == symtab["link"])
    out = []
    for i in range(symtab["size"] // 24):
        pos = symtab["offset"] + i * 24
        name, info, _other, shndx, value, size = struct.unpack_from("<IBBHQQ", data, pos)
        start = strtab["offset"] + name
        out.append(dict(index=i, pos=pos, name=data[start:data.index(b"\0", start)].decode(),
                        name_off=name, type=info & 0xF, shndx=shndx, value=value, size=size))
    return out


def elf_relocs(data: bytes, target: str) -> list[dict]:
    secs = elf_sections(data)
    rel = secs[".rel" + target]
    out = []
    for i in range(rel["size"] // 16):
        pos = rel["offset"] + i * 16
        off, r_info = struct.unpack_from("<QQ", data, pos)
        out.append(dict(pos=pos, offset=off, type=r_info & 0xFFFFFFFF, sym=r_info >> 32))
    return out


def function_bytes(data: bytes, name: str) -> bytes:
    secs = {s["index"]: s for s in elf_sections(data).values()}
    sym = next(s for s in elf_symbols(data) if s["name"] == name and s["type"] == 2)
    sec = secs[sym["shndx"]]
    return data[sec["offset"] + sym["value"]:sec["offset"] + sym["value"] + sym["size"]]


# ---------------------------------------------------------------------- the corpus


@pytest.mark.parametrize("path", OBJECTS + [BAD / "unknown_helper.o"], ids=lambda p: p.stem)
def test_every_object_loads(path):
    spec = load_spec(path)
    assert spec.programs, "each corpus object defines at least one program"
    for prog in spec.programs.values():
        assert prog.code and len(prog.code) % 8 == 0
        assert prog.func_offsets[prog.name] == 0
        assert prog.license == spec.license
        # every call/lddw pseudo reference is resolved to something inside the program
        for pc, op, _dst, src, _off, imm in slots(prog.code):
            if op == 0x85 and src == PSEUDO_CALL:
                assert pc + imm + 1 in prog.func_offsets.values()
        for pc, src, imm, imm2 in lddws(prog.code):
            if src in (PSEUDO_MAP_FD, PSEUDO_MAP_VALUE):
                assert 0 <= imm < len(spec.maps)
            if src == PSEUDO_MAP_VALUE:
                m = list(spec.maps.values())[imm]
                assert m.is_global_data and 0 <= imm2 <= m.value_size
            if src == PSEUDO_FUNC:
                assert pc + imm + 1 in prog.func_offsets.values()


@pytest.mark.parametrize("path", OBJECTS, ids=lambda p: p.stem)
def test_deterministic_and_bytes_input(path):
    a = load_spec(path)
    b = load_spec(path.read_bytes(), path=str(path))
    assert a == b
    assert load_spec(path.read_bytes()).path == "<bytes>"


@pytest.mark.parametrize("path", OBJECTS, ids=lambda p: p.stem)
def test_map_relocations_match_elf(path):
    """Each lddw with PSEUDO_MAP_FD names the map its ELF relocation symbol names."""
    data = path.read_bytes()
    spec = load_spec(path)
    syms = elf_symbols(data)
    names = list(spec.maps)
    secs = elf_sections(data)
    for prog in spec.programs.values():
        relocs = {r["offset"]: r for r in elf_relocs(data, prog.section)} if ".rel" + prog.section in secs \
            else {}
        entry = next(s for s in syms if s["name"] == prog.name)
        size = entry["size"]
        for pc, src, imm, _ in lddws(prog.code):
            if pc * 8 >= size:
                continue   # appended subprogram: covered by the .text checks
            rel = relocs.get(entry["value"] + pc * 8)
            if src == PSEUDO_MAP_FD:
                assert rel is not None
                assert names[imm] == syms[rel["sym"]]["name"]
            elif src == PSEUDO_MAP_VALUE:
                sym = syms[rel["sym"]]
                sec = next(s for s in secs.values() if s["index"] == sym["shndx"])
                assert names[imm] == sec["name"]


def test_xdp_drop_ip():
    spec = load_spec(obj("xdp_drop_ip"))
    assert list(spec.programs) == ["xdp_drop_ip"]
    p = spec.programs["xdp_drop_ip"]
    assert (p.section, p.type, p.expected_attach_type) == ("xdp", ProgType.XDP, 39)
    assert spec.license == "GPL" and spec.maps == {}
    assert p.code == function_bytes(obj("xdp_drop_ip").read_bytes(), "xdp_drop_ip")
    # 10.0.0.1 in network order, as the compare immediate
    assert any(op == 0x55 or op == 0x15 or op == 0x16 or op == 0x56
               for _, op, _, _, _, imm in slots(p.code) if imm == 0x0100000A)


MAPS = {
    "xdp_parser_counters": {"proto_counts": (MapType.ARRAY, 4, 8, 10, 0)},
    "xdp_rate_limit": {"flows": (MapType.HASH, 4, 24, 4096, 0),
                       ".rodata": (MapType.ARRAY, 4, 8, 1, BPF_F_RDONLY_PROG | BPF_F_MMAPABLE)},
    "lru_percpu": {"cpu_stats": (MapType.PERCPU_ARRAY, 4, 16, 1, 0),
                   "len_hist": (MapType.PERCPU_HASH, 2, 8, 256, 0),
                   "proto_seen": (MapType.LRU_PERCPU_HASH, 4, 4, 64, BPF_F_NO_COMMON_LRU),
                   "last_seen": (MapType.LRU_HASH, 4, 8, 128, 0)},
    "lpm_acl": {"acl": (MapType.LPM_TRIE, 8, 8, 1024, BPF_F_NO_PREALLOC)},
    "atomics": {"vals": (MapType.ARRAY, 4, 64, 1, 0)},
    "tail_calls": {"jump_table": (MapType.PROG_ARRAY, 4, 4, 4, 0),
                   "stage_hits": (MapType.ARRAY, 4, 8, 4, 0)},
    "ringbuf_events": {"events": (MapType.RINGBUF, 0, 0, 65536, 0)},
    "queue_stack": {"jobs": (MapType.QUEUE, 0, 8, 32, 0), "undo": (MapType.STACK, 0, 8, 16, 0),
                    ".bss": (MapType.ARRAY, 4, 4, 1, BPF_F_MMAPABLE)},
    "map_in_map": {"inner_a": (MapType.ARRAY, 4, 8, 8, 0), "inner_b": (MapType.ARRAY, 4, 8, 8, 0),
                   "outer_array": (MapType.ARRAY_OF_MAPS, 4, 4, 4, 0),
                   "outer_hash": (MapType.HASH_OF_MAPS, 4, 4, 16, 0)},
    "event_filter": {"totals": (MapType.ARRAY, 4, 8, 2, 0), "per_comm": (MapType.HASH, 16, 8, 1024, 0),
                     "last_event": (MapType.ARRAY, 4, 40, 1, 0),
                     ".rodata": (MapType.ARRAY, 4, 4, 1, BPF_F_RDONLY_PROG | BPF_F_MMAPABLE)},
    "tc_classifier": {"nat_rules": (MapType.HASH, 4, 8, 256, 0)},
    "legacy_maps": {"legacy_counts": (MapType.ARRAY, 4, 8, 16, 0),
                    "legacy_hash": (MapType.HASH, 4, 4, 128, BPF_F_NO_PREALLOC)},
    "xdp_drop_ip": {},
}


@pytest.mark.parametrize("name", sorted(MAPS))
def test_maps_as_declared(name):
    spec = load_spec(obj(name))
    got = {m.name: (m.type, m.key_size, m.value_size, m.max_entries, m.flags) for m in spec.maps.values()}
    assert got == MAPS[name]


def test_btf_map_type_ids():
    spec = load_spec(obj("xdp_rate_limit"))
    flows = spec.maps["flows"]
    assert spec.btf.describe(flows.value_type_id) == "struct flow_state"
    assert spec.btf.name_of(flows.key_type_id) == "__u32"


def test_global_data():
    spec = load_spec(obj("global_data"))
    assert list(spec.maps) == [".rodata", ".data", ".bss"]
    btf = spec.btf

    def var_offsets(section):
        ds = btf.datasec(section)
        assert ds.size == spec.maps[section].value_size
        return {btf.type(v.type).name: v.offset for v in ds.secinfos}

    ro, rw, bss = spec.maps[".rodata"], spec.maps[".data"], spec.maps[".bss"]
    assert ro.readonly and ro.flags == BPF_F_RDONLY_PROG | BPF_F_MMAPABLE
    assert rw.flags == BPF_F_MMAPABLE and bss.flags == BPF_F_MMAPABLE
    assert bss.initial == bytes(bss.value_size)
    off = var_offsets(".rodata")
    assert struct.unpack_from("<I", ro.initial, off["cfg_drop_proto"])[0] == 17   # IPPROTO_UDP
    assert struct.unpack_from("<Q", ro.initial, off["cfg_magic"])[0] == 0x1122334455667788
    off = var_offsets(".data")
    assert struct.unpack_from("<8H", rw.initial, off["port_weights"]) == (1, 2, 3, 5, 8, 13, 21, 34)
    assert struct.unpack_from("<I", rw.initial, off["data_generation"])[0] == 7

    # Every variable the program touches is reached through a PSEUDO_MAP_VALUE lddw whose
    # second imm is the variable's offset in its section.
    refs = {(list(spec.maps)[imm], imm2) for _, src, imm, imm2 in
            lddws(spec.programs["xdp_global_data"].code) if src == PSEUDO_MAP_VALUE}
    for section, var in [(".bss", "total_packets"), (".bss", "last_len"), (".bss", "dropped_packets"),
                         (".rodata", "cfg_drop_proto"), (".rodata", "cfg_verbose"),
                         (".data", "data_generation"), (".data", "port_weights")]:
        assert (section, var_offsets(section)[var]) in refs, (section, var)


def test_string_literals_and_callbacks():
    spec = load_spec(obj("misc_helpers"))
    strs = spec.maps[".rodata.str1.1"]
    assert strs.readonly and strs.type == MapType.ARRAY and strs.max_entries == 1
    assert b"sum=%llu nz=%llu\0" in strs.initial and b"sum=\0" in strs.initial
    prog = spec.programs["xdp_misc"]
    index = list(spec.maps).index(".rodata.str1.1")
    offsets = {imm2 for _, src, imm, imm2 in lddws(prog.code) if src == PSEUDO_MAP_VALUE and imm == index}
    assert strs.initial.index(b"sum=%llu") in offsets
    assert strs.initial.index(b"sum=\0") in offsets
    # bpf_for_each_map_elem's callback: lddw src=PSEUDO_FUNC to the appended sum_elem
    funcs = [(pc, imm) for pc, src, imm, _ in lddws(prog.code) if src == PSEUDO_FUNC]
    assert len(funcs) == 1
    pc, imm = funcs[0]
    assert pc + imm + 1 == prog.func_offsets["sum_elem"]
    data = obj("misc_helpers").read_bytes()
    start = prog.func_offsets["sum_elem"] * 8
    assert prog.code[start:] == function_bytes(data, "sum_elem")


def test_bpf_loop_callback():
    prog = load_spec(obj("bpf_loop")).programs["xdp_bpf_loop"]
    assert list(prog.func_offsets) == ["xdp_bpf_loop", "sum_byte"]
    (pc, _, imm, _), = [x for x in lddws(prog.code) if x[1] == PSEUDO_FUNC]
    assert pc + imm + 1 == prog.func_offsets["sum_byte"]


def test_subprogram_appending():
    path = obj("subprog_calls")
    data = path.read_bytes()
    spec = load_spec(path)
    main = spec.programs["xdp_subprogs"]
    # libbpf order: depth first in call order; fold32 is reached through flow_hash only.
    assert list(main.func_offsets) == ["xdp_subprogs", "parse_ipv4", "bump", "flow_hash", "fold32"]
    other = spec.programs["xdp_hash_only"]
    assert list(other.func_offsets) == ["xdp_hash_only", "fold32", "bump"]

    for prog in (main, other):
        offsets = sorted(prog.func_offsets.items(), key=lambda kv: kv[1])
        ends = [o for _, o in offsets[1:]] + [prog.insn_count]
        for (name, start), end in zip(offsets, ends):
            assert (end - start) * 8 == len(function_bytes(data, name)), name
        # calls: the callee named by the source is at the resolved target
        targets = {prog.func_offsets[n] for n in prog.func_offsets if n != prog.name}
        called = {pc + imm + 1 for pc, op, _, src, _, imm in slots(prog.code)
                  if op == 0x85 and src == PSEUDO_CALL}
        assert called == targets

    # non-call, non-lddw instructions of appended functions are copied verbatim
    start = main.func_offsets["fold32"]
    assert main.code[start * 8:] == function_bytes(data, "fold32")
    # bump's map reference was relocated inside the appended copy
    bump = main.func_offsets["bump"]
    bump_refs = [(pc, imm) for pc, src, imm, _ in lddws(main.code)
                 if src == PSEUDO_MAP_FD and bump <= pc < main.func_offsets["flow_hash"]]
    assert bump_refs and all(imm == list(spec.maps).index("results") for _, imm in bump_refs)


def test_tail_call_values():
    spec = load_spec(obj("tail_calls"))
    assert spec.maps["jump_table"].values == {0: "stage_ipv4", 2: "stage_drop"}
    assert set(spec.programs) == {"stage_ipv4", "stage_drop", "xdp_dispatch"}
    helpers = [imm for _, op, _, src, _, imm in slots(spec.programs["xdp_dispatch"].code)
               if op == 0x85 and src == 0]
    assert 12 in helpers   # BPF_FUNC_tail_call (clang may merge the call sites)


def test_map_in_map():
    spec = load_spec(obj("map_in_map"))
    outer = spec.maps["outer_array"]
    assert outer.values == {0: "inner_a", 3: "inner_b"}
    assert (outer.inner.type, outer.inner.key_size, outer.inner.value_size, outer.inner.max_entries) == \
        (MapType.ARRAY, 4, 8, 8)
    inner = spec.maps["outer_hash"].inner
    assert (inner.type, inner.key_size, inner.value_size, inner.max_entries) == (MapType.HASH, 2, 4, 32)
    assert "outer_hash.inner" not in spec.maps


def test_legacy_maps_and_version():
    spec = load_spec(obj("legacy_maps"))
    assert spec.kernel_version == 0x060000
    assert spec.programs["legacy_socket"].type == ProgType.SOCKET_FILTER
    assert all(m.section == "maps" for m in spec.maps.values())


SECTIONS = {
    "sec_kprobe": ("kprobe/do_nanosleep", ProgType.KPROBE, 0, "do_nanosleep"),
    "sec_kretprobe": ("kretprobe/do_nanosleep", ProgType.KPROBE, 0, "do_nanosleep"),
    "sec_uprobe": ("uprobe//bin/true:main", ProgType.KPROBE, 0, "/bin/true:main"),
    "sec_uretprobe": ("uretprobe//bin/true:main", ProgType.KPROBE, 0, "/bin/true:main"),
    "sec_tracepoint": ("tracepoint/syscalls/sys_enter_nanosleep", ProgType.TRACEPOINT, 0,
                       "syscalls/sys_enter_nanosleep"),
    "sec_tp": ("tp/syscalls/sys_exit_nanosleep", ProgType.TRACEPOINT, 0, "syscalls/sys_exit_nanosleep"),
    "sec_raw_tracepoint": ("raw_tracepoint/sys_enter", ProgType.RAW_TRACEPOINT, 0, "sys_enter"),
    "sec_raw_tp": ("raw_tp/sys_exit", ProgType.RAW_TRACEPOINT, 0, "sys_exit"),
    "sec_fentry": ("fentry/do_nanosleep", ProgType.TRACING, 24, "do_nanosleep"),
    "sec_fexit": ("fexit/do_nanosleep", ProgType.TRACING, 25, "do_nanosleep"),
    "sec_perf_event": ("perf_event", ProgType.PERF_EVENT, 0, ""),
    "sec_classifier": ("classifier", ProgType.SCHED_CLS, 0, ""),
    "sec_tc": ("tc", ProgType.SCHED_CLS, 0, ""),
    "sec_tcx_ingress": ("tcx/ingress", ProgType.SCHED_CLS, 46, ""),
    "sec_action": ("action", ProgType.SCHED_ACT, 0, ""),
    "sec_xdp_frags": ("xdp.frags", ProgType.XDP, 39, ""),
    "sec_socket": ("socket", ProgType.SOCKET_FILTER, 0, ""),
    "sec_cgroup_skb_ingress": ("cgroup_skb/ingress", ProgType.CGROUP_SKB, 0, ""),
    "sec_lsm": ("lsm/file_open", ProgType.LSM, 27, "file_open"),
    "sec_syscall": ("syscall", ProgType.SYSCALL, 0, ""),
    "sec_custom": ("my_custom_section", ProgType.UNSPEC, 0, ""),
}


def test_section_program_types():
    spec = load_spec(obj("sections"))
    got = {n: (p.section, p.type, p.expected_attach_type, p.attach_to) for n, p in spec.programs.items()}
    assert got == SECTIONS
    assert spec.programs["sec_syscall"].sleepable


@pytest.mark.parametrize("section, ptype", [
    ("xdp", ProgType.XDP), ("xdp/devmap", ProgType.XDP), ("kprobe", ProgType.KPROBE),
    ("fentry.s/x", ProgType.TRACING), ("kprobex", ProgType.UNSPEC), ("xdp/foo", ProgType.UNSPEC),
    ("socket/extra", ProgType.UNSPEC), ("raw_tp.w/x", ProgType.RAW_TRACEPOINT_WRITABLE),
])
def test_section_rules(section, ptype):
    assert program_type_for_section(section)[0] == ptype


def test_isa_v4_instructions():
    code = load_spec(obj("isa_v4")).programs["xdp_isa_v4"].code
    seen = {(op, off) for _, op, _, _, off, _ in slots(code)}
    ops = {op for op, _ in seen}
    assert (0x3F, 1) in seen and (0x3C, 1) in seen        # sdiv64 / sdiv32 (off = 1)
    assert (0x9F, 1) in seen and (0x9C, 1) in seen        # smod64 / smod32
    assert (0xBF, 8) in seen and (0xBF, 16) in seen       # movsx 8/16
    assert {0x91, 0x89, 0x81} <= ops                      # ldsx b/h/w
    assert 0xD7 in ops                                    # bswap
    assert 0x06 in ops                                    # gotol


def test_isa_v2_has_no_jmp32():
    code = load_spec(obj("isa_v2")).programs["xdp_isa_v2"].code
    assert not any(op & 0x07 == 0x06 for _, op, *_ in slots(code))


def test_line_info_matches_source():
    for name in ("xdp_drop_ip", "subprog_calls", "misc_helpers"):
        spec = load_spec(obj(name))
        source = (PROGS / f"{name}.c").read_text().splitlines()
        for prog in spec.programs.values():
            assert prog.line_info
            assert [r[0] for r in prog.line_info] == sorted(r[0] for r in prog.line_info)
            for pc, file, line, text in prog.line_info:
                assert 0 <= pc < prog.insn_count
                assert file.endswith(f"{name}.c")
                assert source[line - 1].strip() == text.strip()


def test_line_info_follows_appended_subprograms():
    spec = load_spec(obj("subprog_calls"))
    source = (PROGS / "subprog_calls.c").read_text().splitlines()
    prog = spec.programs["xdp_hash_only"]
    decl = next(i for i, line in enumerate(source, 1) if "__u32 fold32(" in line)
    at_fold = [line for pc, _, line, _ in prog.line_info if pc == prog.func_offsets["fold32"]]
    assert at_fold and decl <= at_fold[0] <= decl + 5


# ---------------------------------------------------------------------- malformed objects


def expect_error(data: bytes, pattern: str, section: str | None = None, symbol: str | None = None):
    with pytest.raises(ElfError) as info:
        load_spec(data, path="mutant.o")
    err = info.value
    assert re.search(pattern, str(err)), str(err)
    if section is not None:
        assert err.section == section, str(err)
    if symbol is not None:
        assert err.symbol == symbol, str(err)
    return err


def test_truncated_at_many_lengths():
    data = obj("xdp_parser_counters").read_bytes()
    lengths = sorted(set(list(range(0, 80)) + list(range(80, len(data), 97)) + [len(data) - 1]))
    for n in lengths:
        with pytest.raises(ElfError):
            load_spec(data[:n])


def test_wrong_machine():
    data = bytearray(obj("xdp_drop_ip").read_bytes())
    struct.pack_into("<H", data, 0x12, 62)   # EM_X86_64
    expect_error(bytes(data), "wrong machine")


@pytest.mark.parametrize("offset, value, pattern", [
    (4, 1, "not ELF64"), (5, 2, "not little endian"), (0, 0, "not an ELF file"),
], ids=["elf32", "big-endian", "magic"])
def test_bad_ident(offset, value, pattern):
    data = bytearray(obj("xdp_drop_ip").read_bytes())
    data[offset] = value
    expect_error(bytes(data), pattern)


def test_not_relocatable():
    data = bytearray(obj("xdp_drop_ip").read_bytes())
    struct.pack_into("<H", data, 0x10, 2)   # ET_EXEC
    expect_error(bytes(data), "not a relocatable object")


def test_bad_section_offset():
    data = bytearray(obj("xdp_drop_ip").read_bytes())
    xdp = elf_sections(bytes(data))["xdp"]
    struct.pack_into("<Q", data, xdp["hdr"] + 0x18, len(data) + 8)
    expect_error(bytes(data), "past the end", section="xdp")


def _map_reloc(name: str, section: str = "xdp"):
    data = bytearray(obj(name).read_bytes())
    rels = elf_relocs(bytes(data), section)
    syms = elf_symbols(bytes(data))
    return data, rels, syms


def test_relocation_symbol_index_out_of_range():
    data, rels, syms = _map_reloc("xdp_parser_counters")
    struct.pack_into("<Q", data, rels[0]["pos"] + 8, (len(syms) + 50) << 32 | rels[0]["type"])
    expect_error(bytes(data), r"relocation at 0x[0-9a-f]+: symbol index \d+ out of range", section="xdp")


def test_relocation_to_unknown_section():
    data, rels, syms = _map_reloc("xdp_parser_counters")
    lic = next(s for s in syms if s["name"] == "LICENSE")
    struct.pack_into("<Q", data, rels[0]["pos"] + 8, lic["index"] << 32 | rels[0]["type"])
    expect_error(bytes(data), "section 'license', which is not a map", section="xdp", symbol="LICENSE")


def test_relocation_not_on_lddw():
    data, rels, _ = _map_reloc("xdp_parser_counters")
    struct.pack_into("<Q", data, rels[0]["pos"], 0)   # slot 0 reads ctx->data, not an lddw
    expect_error(bytes(data), "relocation at 0x0: R_BPF_64_64 to 'proto_counts' is not an lddw",
                 section="xdp", symbol="proto_counts")


def test_unknown_relocation_type():
    data, rels, _ = _map_reloc("xdp_parser_counters")
    struct.pack_into("<Q", data, rels[0]["pos"] + 8, rels[0]["sym"] << 32 | 77)
    expect_error(bytes(data), "unsupported relocation type 77", section="xdp", symbol="proto_counts")


def test_missing_map():
    # The relocation's symbol no longer names a defined map: rename it and move it off the
    # map definition, so .maps holds nothing at the referenced offset.
    data, rels, syms = _map_reloc("xdp_parser_counters")
    sym = next(s for s in syms if s["name"] == "proto_counts")
    lic = next(s for s in syms if s["name"] == "LICENSE")
    struct.pack_into("<I", data, sym["pos"], lic["name_off"])
    struct.pack_into("<Q", data, sym["pos"] + 8, 0x18)
    expect_error(bytes(data), r"no map at \.maps offset 0x18", section="xdp", symbol="LICENSE")


def test_core_relocation_rejected():
    expect_error((BAD / "core_reloc.o").read_bytes(), "CO-RE relocations are not supported",
                 section="raw_tp/sys_enter", symbol="core_prog")


def test_kfunc_rejected():
    expect_error((BAD / "kfunc.o").read_bytes(), r"kernel function 'bpf_rcu_read_lock' \(kfunc\)",
                 section="xdp", symbol="bpf_rcu_read_lock")


def test_kconfig_extern_rejected():
    expect_error((BAD / "kconfig.o").read_bytes(), r"extern 'CONFIG_HZ' \(\.kconfig\)",
                 section="xdp", symbol="CONFIG_HZ")


def test_kfunc_call_insn_rejected():
    data = bytearray(obj("xdp_drop_ip").read_bytes())
    xdp = elf_sections(bytes(data))["xdp"]
    struct.pack_into("<BBhi", data, xdp["offset"], 0x85, 2 << 4, 0, 1234)
    expect_error(bytes(data), "kfunc call", section="xdp", symbol="xdp_drop_ip")


def test_unknown_helper_is_loadable():
    prog = load_spec(BAD / "unknown_helper.o").programs["unknown_helper"]
    assert any(op == 0x85 and src == 0 and imm == 999 for _, op, _, src, _, imm in slots(prog.code))


def test_missing_file():
    with pytest.raises(ElfError, match="cannot read"):
        load_spec(PROGS / "no_such_object.o")


# Regions worth mutating: headers, tables and the sections the loader interprets (debug info is
# ignored, so random flips there say little).
_INTERESTING = (".symtab", ".strtab", ".BTF", ".BTF.ext", ".maps", "maps", "license", ".text", ".data",
                ".rodata")


@pytest.mark.parametrize("path", OBJECTS + sorted(BAD.glob("*.o")), ids=lambda p: p.stem)
def test_fuzz_only_elf_error(path):
    data = path.read_bytes()
    secs = elf_sections(data)
    shoff, = struct.unpack_from("<Q", data, 0x28)
    regions = [(0, 64), (shoff, len(data) - shoff)]
    for s in secs.values():
        if s["type"] != 8 and s["size"] and (s["name"] in _INTERESTING or s["name"].startswith(".rel")
                                             or s["flags"] & 4):
            regions.append((s["offset"], s["size"]))
    rng = random.Random(f"{path.name}-1")
    for _ in range(150):
        mutant = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            start, size = rng.choice(regions)
            if size:
                i = start + rng.randrange(size)
                mutant[i] = rng.randrange(256) if rng.random() < 0.7 else mutant[i] ^ (1 << rng.randrange(8))
        if rng.random() < 0.05:
            mutant = mutant[:rng.randrange(len(mutant))]
        try:
            load_spec(bytes(mutant))
        except ElfError:
            pass
