"""The ELF object loader: turns a clang-built eBPF object into an ObjectSpec, the way libbpf does.

This is the only module that imports pyelftools. The file is parsed once into plain data
(`_Elf`), then interpreted with libbpf's rules (tools/lib/bpf/libbpf.c):

- every executable section but `.text` holds programs, one per global STT_FUNC symbol; the program
  type comes from the section name (`SEC("xdp")`, `kprobe/...`);
- `.text` holds subprograms; each program gets a private copy of every subprogram it reaches,
  appended after its own code, with `call` and function-pointer immediates rewritten to the new
  relative slot offsets;
- `R_BPF_64_64` relocations on `lddw` become PSEUDO_MAP_FD (maps) or PSEUDO_MAP_VALUE (global data)
  with imm = map index in ObjectSpec.maps order;
- maps come from the `.maps` BTF definitions, the legacy `maps` section and one single-entry
  ARRAY per global-data section (`.data*`, `.rodata*`, `.bss*`).

Anything the runtime cannot honour (CO-RE relocations, kfuncs, `.kconfig`/`.ksyms` externs) and
any malformed input raise ElfError naming the section, symbol and offset. The result depends only
on the input bytes.

Must not import: runtime, lower, jit, kernel, cli.

Imports: ebpfjit.errors, ebpfjit.isa, ebpfjit.objects.btf, ebpfjit.objects.spec
"""
from __future__ import annotations

import dataclasses
import io
import os
import struct
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from ..errors import ElfError
from ..isa.opcodes import LDDW
from .btf import Btf, BtfExt, BtfKind, BtfType
from .spec import (
    BPF_F_MMAPABLE,
    BPF_F_RDONLY_PROG,
    PSEUDO_CALL,
    PSEUDO_FUNC,
    PSEUDO_KFUNC_CALL,
    PSEUDO_MAP_FD,
    PSEUDO_MAP_VALUE,
    MapSpec,
    MapType,
    ObjectSpec,
    ProgramSpec,
    ProgType,
)

__all__ = ["load_spec", "program_type_for_section"]

EM_BPF = 247
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_NOBITS = 8
SHT_REL = 9
SHF_EXECINSTR = 0x4
SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00

STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION = 0, 1, 2, 3
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2

# Relocation types (llvm/BinaryFormat/ELFRelocs/BPF.def).
R_BPF_NONE = 0
R_BPF_64_64 = 1
R_BPF_64_ABS64 = 2
R_BPF_64_ABS32 = 3
R_BPF_64_NODYLD32 = 4
R_BPF_64_32 = 10
_RELOC_NAMES = {R_BPF_NONE: "R_BPF_NONE", R_BPF_64_64: "R_BPF_64_64", R_BPF_64_ABS64: "R_BPF_64_ABS64",
                R_BPF_64_ABS32: "R_BPF_64_ABS32", R_BPF_64_NODYLD32: "R_BPF_64_NODYLD32",
                R_BPF_64_32: "R_BPF_64_32"}

INSN_SIZE = 8
_MAX_NOBITS = 1 << 26
OP_CALL = 0x85

TEXT = ".text"
BTF_MAPS = ".maps"
LEGACY_MAPS = "maps"
# struct bpf_map_def of the legacy `maps` section: type, key_size, value_size, max_entries, map_flags.
_LEGACY_MAP_DEF = struct.Struct("<IIIII")

# (section name or prefix, program type, expected_attach_type, sleepable) in libbpf's
# section_defs order; the first match wins. A trailing "+" accepts the bare name or "name/..."
# (the rest is the attach target); other entries must match exactly.
_SECTION_DEFS: tuple[tuple[str, ProgType, int, bool], ...] = (
    ("socket", ProgType.SOCKET_FILTER, 0, False),
    ("sk_reuseport/migrate", ProgType.SK_REUSEPORT, 41, False),
    ("sk_reuseport", ProgType.SK_REUSEPORT, 40, False),
    ("kprobe+", ProgType.KPROBE, 0, False),
    ("uprobe+", ProgType.KPROBE, 0, False),
    ("uprobe.s+", ProgType.KPROBE, 0, True),
    ("kretprobe+", ProgType.KPROBE, 0, False),
    ("uretprobe+", ProgType.KPROBE, 0, False),
    ("uretprobe.s+", ProgType.KPROBE, 0, True),
    ("kprobe.multi+", ProgType.KPROBE, 42, False),
    ("kretprobe.multi+", ProgType.KPROBE, 42, False),
    ("uprobe.multi+", ProgType.KPROBE, 48, False),
    ("uretprobe.multi+", ProgType.KPROBE, 48, False),
    ("uprobe.multi.s+", ProgType.KPROBE, 48, True),
    ("uretprobe.multi.s+", ProgType.KPROBE, 48, True),
    ("ksyscall+", ProgType.KPROBE, 0, False),
    ("kretsyscall+", ProgType.KPROBE, 0, False),
    ("usdt+", ProgType.KPROBE, 0, False),
    ("usdt.s+", ProgType.KPROBE, 0, True),
    ("tc/ingress", ProgType.SCHED_CLS, 46, False),
    ("tc/egress", ProgType.SCHED_CLS, 47, False),
    ("tcx/ingress", ProgType.SCHED_CLS, 46, False),
    ("tcx/egress", ProgType.SCHED_CLS, 47, False),
    ("tc", ProgType.SCHED_CLS, 0, False),
    ("classifier", ProgType.SCHED_CLS, 0, False),
    ("action", ProgType.SCHED_ACT, 0, False),
    ("netkit/primary", ProgType.SCHED_CLS, 54, False),
    ("netkit/peer", ProgType.SCHED_CLS, 55, False),
    ("tracepoint+", ProgType.TRACEPOINT, 0, False),
    ("tp+", ProgType.TRACEPOINT, 0, False),
    ("raw_tracepoint+", ProgType.RAW_TRACEPOINT, 0, False),
    ("raw_tp+", ProgType.RAW_TRACEPOINT, 0, False),
    ("raw_tracepoint.w+", ProgType.RAW_TRACEPOINT_WRITABLE, 0, False),
    ("raw_tp.w+", ProgType.RAW_TRACEPOINT_WRITABLE, 0, False),
    ("tp_btf+", ProgType.TRACING, 23, False),
    ("fentry+", ProgType.TRACING, 24, False),
    ("fmod_ret+", ProgType.TRACING, 26, False),
    ("fexit+", ProgType.TRACING, 25, False),
    ("fentry.s+", ProgType.TRACING, 24, True),
    ("fmod_ret.s+", ProgType.TRACING, 26, True),
    ("fexit.s+", ProgType.TRACING, 25, True),
    ("freplace+", ProgType.EXT, 0, False),
    ("lsm+", ProgType.LSM, 27, False),
    ("lsm.s+", ProgType.LSM, 27, True),
    ("lsm_cgroup+", ProgType.LSM, 43, False),
    ("iter+", ProgType.TRACING, 28, False),
    ("iter.s+", ProgType.TRACING, 28, True),
    ("syscall", ProgType.SYSCALL, 0, True),
    ("xdp.frags/devmap", ProgType.XDP, 35, False),
    ("xdp/devmap", ProgType.XDP, 35, False),
    ("xdp.frags/cpumap", ProgType.XDP, 37, False),
    ("xdp/cpumap", ProgType.XDP, 37, False),
    ("xdp.frags", ProgType.XDP, 39, False),
    ("xdp", ProgType.XDP, 39, False),
    ("perf_event", ProgType.PERF_EVENT, 0, False),
    ("lwt_in", ProgType.LWT_IN, 0, False),
    ("lwt_out", ProgType.LWT_OUT, 0, False),
    ("lwt_xmit", ProgType.LWT_XMIT, 0, False),
    ("lwt_seg6local", ProgType.LWT_SEG6LOCAL, 0, False),
    ("sockops", ProgType.SOCK_OPS, 3, False),
    ("sk_skb/stream_parser", ProgType.SK_SKB, 4, False),
    ("sk_skb/stream_verdict", ProgType.SK_SKB, 5, False),
    ("sk_skb/verdict", ProgType.SK_SKB, 40, False),
    ("sk_skb", ProgType.SK_SKB, 0, False),
    ("sk_msg", ProgType.SK_MSG, 7, False),
    ("lirc_mode2", ProgType.LIRC_MODE2, 16, False),
    ("flow_dissector", ProgType.FLOW_DISSECTOR, 17, False),
    ("cgroup_skb/ingress", ProgType.CGROUP_SKB, 0, False),
    ("cgroup_skb/egress", ProgType.CGROUP_SKB, 1, False),
    ("cgroup/skb", ProgType.CGROUP_SKB, 0, False),
    ("cgroup/sock_create", ProgType.CGROUP_SOCK, 2, False),
    ("cgroup/sock_release", ProgType.CGROUP_SOCK, 34, False),
    ("cgroup/sock", ProgType.CGROUP_SOCK, 2, False),
    ("cgroup/post_bind4", ProgType.CGROUP_SOCK, 12, False),
    ("cgroup/post_bind6", ProgType.CGROUP_SOCK, 13, False),
    ("cgroup/bind4", ProgType.CGROUP_SOCK_ADDR, 8, False),
    ("cgroup/bind6", ProgType.CGROUP_SOCK_ADDR, 9, False),
    ("cgroup/connect4", ProgType.CGROUP_SOCK_ADDR, 10, False),
    ("cgroup/connect6", ProgType.CGROUP_SOCK_ADDR, 11, False),
    ("cgroup/sendmsg4", ProgType.CGROUP_SOCK_ADDR, 14, False),
    ("cgroup/sendmsg6", ProgType.CGROUP_SOCK_ADDR, 15, False),
    ("cgroup/recvmsg4", ProgType.CGROUP_SOCK_ADDR, 19, False),
    ("cgroup/recvmsg6", ProgType.CGROUP_SOCK_ADDR, 20, False),
    ("cgroup/getpeername4", ProgType.CGROUP_SOCK_ADDR, 29, False),
    ("cgroup/getpeername6", ProgType.CGROUP_SOCK_ADDR, 30, False),
    ("cgroup/getsockname4", ProgType.CGROUP_SOCK_ADDR, 31, False),
    ("cgroup/getsockname6", ProgType.CGROUP_SOCK_ADDR, 32, False),
    ("cgroup/sysctl", ProgType.CGROUP_SYSCTL, 18, False),
    ("cgroup/getsockopt", ProgType.CGROUP_SOCKOPT, 21, False),
    ("cgroup/setsockopt", ProgType.CGROUP_SOCKOPT, 22, False),
    ("cgroup/dev", ProgType.CGROUP_DEVICE, 6, False),
    ("struct_ops+", ProgType.STRUCT_OPS, 0, False),
    ("struct_ops.s+", ProgType.STRUCT_OPS, 0, True),
    ("sk_lookup", ProgType.SK_LOOKUP, 36, False),
    ("netfilter", ProgType.NETFILTER, 45, False),
)


def program_type_for_section(section: str) -> tuple[ProgType, int, str, bool]:
    """libbpf's section-name rule: (program type, expected attach type, attach target, sleepable).

    Unknown names give ProgType.UNSPEC (the program still loads).

    >>> program_type_for_section("kprobe/do_nanosleep")[0].name, program_type_for_section("tc")[0].name
    ('KPROBE', 'SCHED_CLS')
    """
    for name, ptype, attach, sleepable in _SECTION_DEFS:
        if name.endswith("+"):
            prefix = name[:-1]
            if section == prefix:
                return ptype, attach, "", sleepable
            if section.startswith(prefix + "/"):
                return ptype, attach, section[len(prefix) + 1:], sleepable
        elif section == name:
            return ptype, attach, "", sleepable
    return ProgType.UNSPEC, 0, "", False


# ---------------------------------------------------------------------- plain ELF data

@dataclass
class _Section:
    index: int
    name: str
    type: int
    flags: int
    size: int
    link: int
    info: int
    data: bytes          # zeros for SHT_NOBITS

    @property
    def executable(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR)


@dataclass
class _Symbol:
    index: int
    name: str
    value: int
    size: int
    type: int
    bind: int
    shndx: int


@dataclass
class _Reloc:
    offset: int
    type: int
    sym: int


@dataclass
class _Elf:
    sections: list[_Section]
    symbols: list[_Symbol]
    relocs: dict[int, list[_Reloc]]      # target section index -> relocations


class _Loader:
    """One load: holds the parsed ELF and builds the spec step by step."""

    def __init__(self, data: bytes, path: str, per_program: bool = False):
        self.data = data
        self.path = path
        # per_program: a construct we do not support inside one program's code (kfunc call,
        # extern, CO-RE relocation) marks that program (ProgramSpec.unsupported) instead of
        # failing the whole object. (section index, slot) -> the error it would have raised.
        self.per_program = per_program
        self.unsupported_at: dict[tuple[int, int], ElfError] = {}
        self.elf = self._read_elf()
        self.by_name = {s.name: s for s in self.elf.sections}
        self.btf: Btf | None = None
        self.ext: BtfExt | None = None
        self.maps: dict[str, MapSpec] = {}
        # (section index, byte offset in section) -> map name, for relocations.
        self.map_at: dict[tuple[int, int], str] = {}
        self.data_map: dict[int, str] = {}   # global-data section index -> map name

    def error(self, message: str, section: str | None = None, symbol: str | None = None) -> ElfError:
        return ElfError(message, path=self.path, section=section, symbol=symbol)

    # -------------------------------------------------------------- raw ELF
    def _read_elf(self) -> _Elf:
        data = self.data
        if len(data) < 64:
            raise self.error(f"truncated ELF header: file is {len(data)} bytes, need 64")
        if data[:4] != b"\x7fELF":
            raise self.error("not an ELF file (bad magic)")
        if data[4] != 2:
            raise self.error(f"not ELF64 (EI_CLASS {data[4]})")
        if data[5] != 1:
            raise self.error(f"not little endian (EI_DATA {data[5]})")
        try:
            elf = ELFFile(io.BytesIO(data))
            machine = elf.header["e_machine"]
            if machine not in ("EM_BPF", EM_BPF):
                raise self.error(f"wrong machine {machine} (expected EM_BPF, {EM_BPF})")
            if elf.header["e_type"] != "ET_REL":
                raise self.error(f"not a relocatable object (e_type {elf.header['e_type']})")
            sections = []
            for index in range(elf.num_sections()):
                sec = elf.get_section(index)
                hdr = sec.header
                sections.append((index, sec.name, hdr["sh_type"], hdr["sh_flags"], hdr["sh_offset"],
                                 hdr["sh_size"], hdr["sh_link"], hdr["sh_info"]))
        except ElfError:
            raise
        except ELFError as exc:
            raise self.error(f"malformed ELF: {exc}") from exc
        except (ValueError, IndexError, KeyError, struct.error, UnicodeError, OverflowError) as exc:
            # pyelftools lets some corruptions through as plain Python errors.
            raise self.error(f"malformed ELF: {type(exc).__name__}: {exc}") from exc

        parsed = []
        for index, name, sh_type, flags, offset, size, link, info in sections:
            sh_type = _SHT.get(sh_type, sh_type) if isinstance(sh_type, str) else sh_type
            if not isinstance(sh_type, int):
                sh_type = -1
            if sh_type == SHT_NOBITS:
                # No global-data map can be this large (the kernel caps values far lower); refuse
                # before allocating the zeros.
                if size > _MAX_NOBITS:
                    raise self.error(f"NOBITS size {size:#x} is larger than {_MAX_NOBITS:#x}", section=name)
                body = bytes(size)
            elif index == 0:
                body = b""
            else:
                if offset + size > len(data):
                    raise self.error(f"section data [{offset:#x}, +{size:#x}) is past the end of the "
                                     f"file ({len(data)} bytes)", section=name)
                body = data[offset:offset + size]
            parsed.append(_Section(index, name, sh_type, flags, size, link, info, body))

        symbols = self._read_symbols(parsed)
        relocs: dict[int, list[_Reloc]] = {}
        for sec in parsed:
            if sec.type != SHT_REL:
                continue
            if sec.size % 16:
                raise self.error(f"size {sec.size} is not a multiple of 16", section=sec.name)
            if not 0 < sec.info < len(parsed):
                raise self.error(f"relocation target section index {sec.info} out of range",
                                 section=sec.name)
            entries = relocs.setdefault(sec.info, [])
            for off, r_info in struct.iter_unpack("<QQ", sec.data):
                entries.append(_Reloc(off, r_info & 0xFFFFFFFF, r_info >> 32))
        return _Elf(parsed, symbols, relocs)

    def _read_symbols(self, sections: list[_Section]) -> list[_Symbol]:
        symtabs = [s for s in sections if s.type == SHT_SYMTAB]
        if not symtabs:
            raise self.error("no symbol table")
        if len(symtabs) > 1:
            raise self.error("more than one symbol table")
        symtab = symtabs[0]
        if symtab.size % 24:
            raise self.error(f"size {symtab.size} is not a multiple of 24", section=symtab.name)
        if not 0 < symtab.link < len(sections):
            raise self.error(f"string table index {symtab.link} out of range", section=symtab.name)
        strtab = sections[symtab.link].data
        out = []
        for index, (name_off, info, _other, shndx, value, size) in enumerate(
                struct.iter_unpack("<IBBHQQ", symtab.data)):
            if name_off >= len(strtab) and name_off:
                raise self.error(f"symbol #{index}: name offset {name_off:#x} outside the string table",
                                 section=symtab.name)
            end = strtab.find(b"\0", name_off)
            name = strtab[name_off:end if end >= 0 else len(strtab)].decode("utf-8", "replace")
            out.append(_Symbol(index, name, value, size, info & 0xF, info >> 4, shndx))
        return out

    # -------------------------------------------------------------- helpers
    def section(self, index: int) -> _Section | None:
        if 0 < index < len(self.elf.sections):
            return self.elf.sections[index]
        return None

    def symbol(self, index: int, where: str, offset: int) -> _Symbol:
        if not 0 <= index < len(self.elf.symbols):
            raise self.error(f"relocation at {offset:#x}: symbol index {index} out of range "
                             f"({len(self.elf.symbols)} symbols)", section=where)
        return self.elf.symbols[index]

    def sym_name(self, sym: _Symbol) -> str:
        if sym.type == STT_SECTION:
            sec = self.section(sym.shndx)
            return sec.name if sec else f"section #{sym.shndx}"
        return sym.name

    # -------------------------------------------------------------- build
    def load(self) -> ObjectSpec:
        license_ = self._license()
        version = self._version()
        self._load_btf()
        self._legacy_maps()
        self._btf_maps()
        self._data_maps()
        # Relocation sites name externs best (section and program); this catches the rest.
        programs = self._programs(license_)
        if not self.per_program:
            self._check_externs()
        return ObjectSpec(path=self.path, programs=programs, maps=self.maps, license=license_,
                          kernel_version=version, btf=self.btf)

    def _license(self) -> str:
        sec = self.by_name.get("license")
        if sec is None:
            return ""
        return sec.data.split(b"\0", 1)[0].decode("utf-8", "replace")

    def _version(self) -> int:
        sec = self.by_name.get("version")
        if sec is None:
            return 0
        if sec.size != 4:
            raise self.error(f"size {sec.size} is not 4", section="version")
        return struct.unpack("<I", sec.data)[0]

    def _load_btf(self) -> None:
        sec = self.by_name.get(".BTF")
        if sec is None:
            return
        try:
            self.btf = Btf.parse(sec.data)
            ext = self.by_name.get(".BTF.ext")
            if ext is not None:
                self.ext = BtfExt.parse(ext.data, self.btf)
        except ElfError as exc:
            raise self.error(exc.reason, section=exc.section or ".BTF") from exc
        self._fixup_datasecs()

    def _fixup_datasecs(self) -> None:
        # clang leaves DATASEC sizes and variable offsets at 0; libbpf's btf_fixup_datasec()
        # fills them in from the ELF section size and the symbols' values. Do likewise.
        btf = self.btf
        assert btf is not None
        for i, t in enumerate(btf.types):
            if t.kind is not BtfKind.DATASEC:
                continue
            sec = self.by_name.get(t.name)
            if sec is None:
                continue   # .kconfig/.ksyms: extern sections without ELF data
            syms = {s.name: s for s in self.elf.symbols
                    if s.shndx == sec.index and s.type in (STT_OBJECT, STT_NOTYPE, STT_FUNC)}
            infos = []
            for vs in t.secinfos:
                var = btf.type(vs.type)
                sym = syms.get(var.name)
                infos.append(dataclasses.replace(vs, offset=sym.value) if sym else vs)
            btf.types[i] = dataclasses.replace(t, size=sec.size, secinfos=tuple(infos))

    # -------------------------------------------------------------- maps
    def _add_map(self, spec: MapSpec, section: _Section | None, offset: int | None) -> None:
        if spec.name in self.maps:
            raise self.error("duplicate map name", section=spec.section, symbol=spec.name)
        self.maps[spec.name] = spec
        if section is not None and offset is not None:
            self.map_at[(section.index, offset)] = spec.name

    def _legacy_maps(self) -> None:
        sec = self.by_name.get(LEGACY_MAPS)
        if sec is None:
            return
        syms = [s for s in self.elf.symbols if s.shndx == sec.index and s.type in (STT_OBJECT, STT_NOTYPE)
                and s.bind in (STB_GLOBAL, STB_WEAK)]
        if not syms:
            return
        # libbpf: every definition has the same size, section size / number of maps.
        def_size = sec.size // len(syms)
        if def_size < 16 or def_size * len(syms) != sec.size:
            raise self.error(f"{len(syms)} map definitions do not evenly fill {sec.size} bytes",
                             section=LEGACY_MAPS)
        for sym in sorted(syms, key=lambda s: (s.value, s.index)):
            if sym.value % 4 or sym.value + def_size > sec.size:
                raise self.error(f"definition at {sym.value:#x} outside the section",
                                 section=LEGACY_MAPS, symbol=sym.name)
            raw = sec.data[sym.value:sym.value + min(def_size, _LEGACY_MAP_DEF.size)]
            raw = raw.ljust(_LEGACY_MAP_DEF.size, b"\0")
            mtype, key_size, value_size, max_entries, flags = _LEGACY_MAP_DEF.unpack(raw)
            self._add_map(MapSpec(name=sym.name, type=self._map_type(mtype, LEGACY_MAPS, sym.name),
                                  key_size=key_size, value_size=value_size, max_entries=max_entries,
                                  flags=flags, section=LEGACY_MAPS), sec, sym.value)

    def _map_type(self, value: int, section: str, name: str) -> MapType:
        try:
            return MapType(value)
        except ValueError:
            raise self.error(f"unknown map type {value}", section=section, symbol=name) from None

    def _btf_maps(self) -> None:
        sec = self.by_name.get(BTF_MAPS)
        if sec is None:
            return
        if self.btf is None:
            raise self.error("BTF-defined maps need a .BTF section", section=BTF_MAPS)
        datasec = self.btf.datasec(BTF_MAPS)
        if datasec is None:
            raise self.error("no DATASEC for .maps in BTF", section=BTF_MAPS)
        ranges = []
        for vs in datasec.secinfos:
            var = self._btf_type(vs.type, vs.type)
            if var.kind is not BtfKind.VAR:
                raise self.error(f"DATASEC entry [{vs.type}] is a {var.kind.name}, not a VAR",
                                 section=BTF_MAPS)
            spec, values_off = self._parse_map_def(var.name, var.type, inner=False)
            if vs.offset + vs.size > sec.size:
                raise self.error(f"definition [{vs.offset:#x}, +{vs.size:#x}) outside the section",
                                 section=BTF_MAPS, symbol=var.name)
            self._add_map(spec, sec, vs.offset)
            ranges.append((vs.offset, vs.offset + vs.size, spec, values_off))
        self._map_values(sec, ranges)

    def _btf_type(self, type_id: int, context: object) -> BtfType:
        assert self.btf is not None
        try:
            return self.btf.type(type_id)
        except ElfError as exc:
            raise self.error(exc.reason, section=BTF_MAPS, symbol=str(context)) from exc

    def _skip_mods(self, type_id: int, name: str) -> BtfType:
        assert self.btf is not None
        try:
            return self.btf.type(self.btf.resolve(type_id))
        except ElfError as exc:
            raise self.error(exc.reason, section=BTF_MAPS, symbol=name) from exc

    def _parse_map_def(self, name: str, type_id: int, inner: bool) -> tuple[MapSpec, int]:
        """One `struct { __uint(type, ...); ... }` map definition (libbpf parse_btf_map_def)."""
        assert self.btf is not None
        btf = self.btf
        what = f"{name} (inner map)" if inner else name
        struct_t = self._skip_mods(type_id, what)
        if struct_t.kind is not BtfKind.STRUCT:
            raise self.error(f"map definition is a {struct_t.kind.name}, not a struct",
                             section=BTF_MAPS, symbol=what)
        fields: dict[str, int] = {}
        key_type = value_type = 0
        key_size = value_size = None
        inner_spec = None
        values_off = -1
        for i, m in enumerate(struct_t.members):
            mt = self._skip_mods(m.type, what)
            if m.name in ("type", "max_entries", "map_flags", "numa_node", "key_size", "value_size",
                          "pinning", "map_extra"):
                arr = self._skip_mods(mt.type, what) if mt.kind is BtfKind.PTR else None
                if arr is None or arr.kind is not BtfKind.ARRAY:
                    raise self.error(f"field '{m.name}' is not __uint() (pointer to an array)",
                                     section=BTF_MAPS, symbol=what)
                fields[m.name] = arr.nelems
            elif m.name in ("key", "value"):
                if mt.kind is not BtfKind.PTR:
                    raise self.error(f"field '{m.name}' is not __type() (a pointer)",
                                     section=BTF_MAPS, symbol=what)
                try:
                    size = btf.size_of(mt.type)
                except ElfError as exc:
                    raise self.error(f"field '{m.name}': {exc.reason}", section=BTF_MAPS,
                                     symbol=what) from exc
                if m.name == "key":
                    key_type, key_size = mt.type, size
                else:
                    value_type, value_size = mt.type, size
            elif m.name == "values":
                if mt.kind is not BtfKind.ARRAY or mt.nelems != 0 or i != len(struct_t.members) - 1:
                    raise self.error("'values' must be the last field, a flexible array (__array)",
                                     section=BTF_MAPS, symbol=what)
                if inner:
                    raise self.error("an inner map cannot have 'values'", section=BTF_MAPS, symbol=what)
                ptr = self._skip_mods(mt.elem_type, what)
                target = self._skip_mods(ptr.type, what) if ptr.kind is BtfKind.PTR else None
                if target is None:
                    raise self.error("'values' elements must be pointers", section=BTF_MAPS, symbol=what)
                if target.kind is BtfKind.STRUCT:
                    inner_spec, _ = self._parse_map_def(f"{name}.inner", ptr.type, inner=True)
                elif target.kind is not BtfKind.FUNC_PROTO:
                    raise self.error(f"'values' points to a {target.kind.name}, expected a map "
                                     "struct or a function", section=BTF_MAPS, symbol=what)
                # Map-in-map and prog_array values are 4-byte fds (libbpf sets value_size = 4).
                value_size, value_type = 4, 0
                values_off = m.bit_offset // 8
            else:
                raise self.error(f"unknown field '{m.name}'", section=BTF_MAPS, symbol=what)

        if "type" not in fields:
            raise self.error("map type not specified", section=BTF_MAPS, symbol=what)
        mtype = self._map_type(fields["type"], BTF_MAPS, what)
        for attr, sized in (("key_size", key_size), ("value_size", value_size)):
            if attr in fields and sized is not None and fields[attr] != sized:
                raise self.error(f"conflicting {attr} {fields[attr]} != {sized}", section=BTF_MAPS,
                                 symbol=what)
        if mtype in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS) and inner_spec is None:
            raise self.error("map-in-map needs an inner map definition (__array(values, ...))",
                             section=BTF_MAPS, symbol=what)
        spec = MapSpec(
            name=name, type=mtype,
            key_size=fields.get("key_size", key_size or 0),
            value_size=fields.get("value_size", value_size or 0),
            max_entries=fields.get("max_entries", 0), flags=fields.get("map_flags", 0),
            inner=inner_spec, section=BTF_MAPS, key_type_id=key_type, value_type_id=value_type,
            pinning=fields.get("pinning", 0), numa_node=fields.get("numa_node", 0))
        return spec, values_off

    def _map_values(self, sec: _Section, ranges: list[tuple[int, int, MapSpec, int]]) -> None:
        """`.values = {...}` initialisers: ABS64 relocations in `.maps` (libbpf init_prog_array_slots)."""
        for rel in self.elf.relocs.get(sec.index, []):
            sym = self.symbol(rel.sym, BTF_MAPS, rel.offset)
            target = self.sym_name(sym)
            if rel.type not in (R_BPF_64_ABS64, R_BPF_64_64):
                raise self.error(f"relocation at {rel.offset:#x}: unexpected "
                                 f"{_RELOC_NAMES.get(rel.type, rel.type)}", section=BTF_MAPS, symbol=target)
            owner = next((r for r in ranges if r[0] <= rel.offset < r[1]), None)
            if owner is None or owner[3] < 0:
                raise self.error(f"relocation at {rel.offset:#x} is not inside any map's 'values'",
                                 section=BTF_MAPS, symbol=target)
            start, end, spec, values_off = owner
            slot_off = rel.offset - start - values_off
            if slot_off < 0 or slot_off % 8:
                raise self.error(f"relocation at {rel.offset:#x} is not a 'values' slot",
                                 section=BTF_MAPS, symbol=target)
            index = slot_off // 8
            if index >= spec.max_entries:
                raise self.error(f"'values' index {index} >= max_entries {spec.max_entries}",
                                 section=BTF_MAPS, symbol=spec.name)
            target_sec = self.section(sym.shndx)
            if spec.type == MapType.PROG_ARRAY:
                if sym.type != STT_FUNC or target_sec is None or not target_sec.executable \
                        or target_sec.name == TEXT:
                    raise self.error(f"prog_array slot {index} must point to a program",
                                     section=BTF_MAPS, symbol=target)
            elif spec.type in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS):
                if target_sec is None or target_sec.index != sec.index \
                        or (sec.index, sym.value) not in self.map_at:
                    raise self.error(f"map-in-map slot {index} must point to a map", section=BTF_MAPS,
                                     symbol=target)
                target = self.map_at[(sec.index, sym.value)]
            else:
                raise self.error(f"static 'values' are not supported for {spec.type.name} maps",
                                 section=BTF_MAPS, symbol=spec.name)
            spec.values[index] = target
        for _, _, spec, _ in ranges:
            spec.values = dict(sorted(spec.values.items()))

    def _data_maps(self) -> None:
        for sec in self.elf.sections:
            kind = _data_section_kind(sec.name)
            if kind is None or sec.type not in (SHT_PROGBITS, SHT_NOBITS) or sec.executable:
                continue
            if sec.size == 0:
                continue
            flags = BPF_F_MMAPABLE | (BPF_F_RDONLY_PROG if kind == "rodata" else 0)
            value_type = 0
            if self.btf is not None:
                value_type = self.btf.find(sec.name, BtfKind.DATASEC)
            spec = MapSpec(name=sec.name, type=MapType.ARRAY, key_size=4, value_size=sec.size,
                           max_entries=1, flags=flags, initial=bytes(sec.data), section=sec.name,
                           value_type_id=value_type)
            self._add_map(spec, None, None)
            self.data_map[sec.index] = sec.name

    def _check_externs(self) -> None:
        if self.btf is None:
            return
        for secname in (".kconfig", ".ksyms"):
            ds = self.btf.datasec(secname)
            if ds is None:
                continue
            for vs in ds.secinfos:
                var = self.btf.type(vs.type) if 0 <= vs.type < len(self.btf.types) else None
                name = var.name if var is not None else f"[{vs.type}]"
                what = "kernel function (kfunc)" if var is not None and var.kind is BtfKind.FUNC else "extern"
                raise self.error(f"{what} '{name}' in {secname} is not supported", section=secname,
                                 symbol=name)

    # -------------------------------------------------------------- programs
    def _functions(self, sec: _Section) -> list[_Symbol]:
        funcs = [s for s in self.elf.symbols if s.shndx == sec.index and s.type == STT_FUNC]
        funcs.sort(key=lambda s: (s.value, s.index))
        for f in funcs:
            if f.value % INSN_SIZE or f.size % INSN_SIZE or f.value + f.size > sec.size:
                raise self.error(f"function [{f.value:#x}, +{f.size:#x}) is misaligned or outside the "
                                 f"section ({sec.size} bytes)", section=sec.name, symbol=f.name)
        return funcs

    def _programs(self, license_: str) -> dict[str, ProgramSpec]:
        code_secs = [s for s in self.elf.sections if s.executable and s.type == SHT_PROGBITS and s.size]
        self.funcs: dict[int, list[_Symbol]] = {}
        self.patched: dict[int, bytearray] = {}
        # (section index, slot) -> (target section index, target slot, kind) for calls / func refs.
        self.code_refs: dict[tuple[int, int], tuple[int, int]] = {}
        for sec in code_secs:
            if sec.size % INSN_SIZE:
                raise self.error(f"size {sec.size} is not a multiple of 8", section=sec.name)
            self.funcs[sec.index] = self._functions(sec)
            self.patched[sec.index] = bytearray(sec.data)
            self._relocate(sec)

        programs: dict[str, ProgramSpec] = {}
        for sec in code_secs:
            if sec.name == TEXT:
                continue
            ptype, attach, attach_to, sleepable = program_type_for_section(sec.name)
            entries = [f for f in self.funcs[sec.index] if f.bind in (STB_GLOBAL, STB_WEAK)]
            for f in self.funcs[sec.index]:
                if f.bind == STB_LOCAL:
                    raise self.error("static programs are not supported", section=sec.name, symbol=f.name)
            if not entries:
                raise self.error("executable section has no program symbol", section=sec.name)
            for f in entries:
                if f.size == 0:
                    raise self.error("program has size 0", section=sec.name, symbol=f.name)
                if f.name in programs:
                    raise self.error("duplicate program name", section=sec.name, symbol=f.name)
                code, offsets, placed = self._link(sec, f)
                unsupported = self._program_unsupported(placed) if self.per_program else ""
                programs[f.name] = ProgramSpec(
                    name=f.name, section=sec.name, type=ptype, code=bytes(code), license=license_,
                    expected_attach_type=attach, attach_to=attach_to, func_offsets=offsets,
                    line_info=self._line_info(placed), sleepable=sleepable, unsupported=unsupported)
                if not self.per_program:
                    self._check_core(placed)
        return programs

    def _relocate(self, sec: _Section) -> None:
        """Apply data relocations to the section copy; record call/function-pointer targets."""
        code = self.patched[sec.index]
        relocated_slots = set()
        for rel in self.elf.relocs.get(sec.index, []):
            sym = self.symbol(rel.sym, sec.name, rel.offset)
            name = self.sym_name(sym)
            where = f"relocation at {rel.offset:#x}"
            if rel.offset % INSN_SIZE or rel.offset + INSN_SIZE > len(code):
                raise self.error(f"{where}: offset is misaligned or outside the section", section=sec.name,
                                 symbol=name)
            slot = rel.offset // INSN_SIZE
            opcode, regs, _off, imm = struct.unpack_from("<BBhi", code, rel.offset)
            src = regs >> 4
            rname = _RELOC_NAMES.get(rel.type, f"type {rel.type}")
            relocated_slots.add(slot)
            if rel.type == R_BPF_64_32:
                if opcode != OP_CALL or src != PSEUDO_CALL:
                    raise self.error(f"{where}: {rname} to '{name}' is not a bpf-to-bpf call",
                                     section=sec.name, symbol=name)
                if sym.shndx == SHN_UNDEF:
                    self._unsupported(sec, slot, f"{where}: call to kernel function '{name}' (kfunc) "
                                      "is not supported", name)
                    continue
                target = self.section(sym.shndx)
                if target is None or target.name != TEXT or sym.type not in (STT_FUNC, STT_SECTION):
                    raise self.error(f"{where}: call target '{name}' is not a function in .text",
                                     section=sec.name, symbol=name)
                if sym.value % INSN_SIZE:
                    raise self.error(f"{where}: call target offset {sym.value:#x} is misaligned",
                                     section=sec.name, symbol=name)
                # libbpf: sub_insn_idx = sym_off / 8 + imm + 1 (section symbols carry the offset
                # in imm, function symbols in st_value with imm = -1).
                self.code_refs[(sec.index, slot)] = (target.index, sym.value // INSN_SIZE + imm + 1)
            elif rel.type == R_BPF_64_64:
                if opcode != LDDW or rel.offset + 2 * INSN_SIZE > len(code):
                    raise self.error(f"{where}: {rname} to '{name}' is not an lddw", section=sec.name,
                                     symbol=name)
                self._relocate_lddw(sec, code, rel.offset, sym, name, imm)
            else:
                raise self.error(f"{where}: unsupported relocation {rname} to '{name}' in code",
                                 section=sec.name, symbol=name)

        # Calls and function references without a relocation are relative within the section.
        for slot in range(len(code) // INSN_SIZE):
            opcode, regs, _off, imm = struct.unpack_from("<BBhi", code, slot * INSN_SIZE)
            src = regs >> 4
            if slot in relocated_slots:
                continue
            if opcode == OP_CALL and src == PSEUDO_KFUNC_CALL:
                self._unsupported(sec, slot, f"insn {slot}: kfunc call (src {PSEUDO_KFUNC_CALL}) is "
                                  "not supported", self._func_at(sec, slot))
                continue
            if (opcode == OP_CALL and src == PSEUDO_CALL) or (opcode == LDDW and src == PSEUDO_FUNC):
                self.code_refs[(sec.index, slot)] = (sec.index, slot + imm + 1)

    def _relocate_lddw(self, sec: _Section, code: bytearray, offset: int, sym: _Symbol, name: str,
                       imm: int) -> None:
        where = f"relocation at {offset:#x}"
        if sym.shndx == SHN_UNDEF:
            self._unsupported(sec, offset // INSN_SIZE, f"{where}: extern '{name}' "
                              f"({self._extern_section(name)}) is not supported", name)
            return
        target = self.section(sym.shndx) if sym.shndx < SHN_LORESERVE else None
        if target is None:
            raise self.error(f"{where}: '{name}' is in unknown section #{sym.shndx}", section=sec.name,
                             symbol=name)
        slot = offset // INSN_SIZE
        if target.executable:
            # Function pointer (bpf_loop/for_each_map_elem callback): libbpf marks it
            # PSEUDO_FUNC; its target is (st_value + imm) / 8, resolved when linking.
            if target.name != TEXT or (sym.value + imm) % INSN_SIZE:
                raise self.error(f"{where}: function reference '{name}' must be to .text",
                                 section=sec.name, symbol=name)
            code[offset + 1] = (code[offset + 1] & 0x0F) | (PSEUDO_FUNC << 4)
            self.code_refs[(sec.index, slot)] = (target.index, (sym.value + imm) // INSN_SIZE)
            return
        if target.name in (BTF_MAPS, LEGACY_MAPS):
            map_name = self.map_at.get((target.index, sym.value))
            if map_name is None:
                raise self.error(f"{where}: no map at {target.name} offset {sym.value:#x}",
                                 section=sec.name, symbol=name)
            index = list(self.maps).index(map_name)
            code[offset + 1] = (code[offset + 1] & 0x0F) | (PSEUDO_MAP_FD << 4)
            struct.pack_into("<i", code, offset + 4, index)
            return
        if target.index in self.data_map:
            map_name = self.data_map[target.index]
            value_off = sym.value + imm
            if not 0 <= value_off <= target.size:
                raise self.error(f"{where}: offset {value_off:#x} outside {target.name} "
                                 f"({target.size} bytes)", section=sec.name, symbol=name)
            index = list(self.maps).index(map_name)
            code[offset + 1] = (code[offset + 1] & 0x0F) | (PSEUDO_MAP_VALUE << 4)
            struct.pack_into("<i", code, offset + 4, index)
            struct.pack_into("<i", code, offset + 12, value_off)
            return
        raise self.error(f"{where}: '{name}' is in section '{target.name}', which is not a map or "
                         "global data section", section=sec.name, symbol=name)

    def _unsupported(self, sec: _Section, slot: int, message: str, symbol: str | None) -> None:
        err = self.error(message, section=sec.name, symbol=symbol)
        if not self.per_program:
            raise err
        self.unsupported_at.setdefault((sec.index, slot), err)

    def _program_unsupported(self, placed) -> str:
        """per_program mode: the first unsupported construct in a program's functions."""
        for s, f, _base in placed:
            first, count = f.value // INSN_SIZE, f.size // INSN_SIZE
            for (index, slot), err in self.unsupported_at.items():
                if index == s.index and first <= slot < first + count:
                    return str(err)
        try:
            self._check_core(placed)
        except ElfError as exc:
            return str(exc)
        return ""

    def _extern_section(self, name: str) -> str:
        if self.btf is not None:
            for secname in (".kconfig", ".ksyms"):
                ds = self.btf.datasec(secname)
                for vs in ds.secinfos if ds else ():
                    if 0 <= vs.type < len(self.btf.types) and self.btf.types[vs.type].name == name:
                        return secname
        return "undefined symbol"

    def _func_at(self, sec: _Section, slot: int) -> str | None:
        for f in self.funcs.get(sec.index, []):
            if f.value // INSN_SIZE <= slot < (f.value + f.size) // INSN_SIZE:
                return f.name
        return None

    def _func_starting(self, sec_index: int, slot: int) -> _Symbol | None:
        for f in self.funcs.get(sec_index, []):
            if f.value // INSN_SIZE == slot and f.size:
                return f
        return None

    def _link(self, sec: _Section, entry: _Symbol):
        """Program code with every reachable subprogram appended, depth first as libbpf does.

        Returns (code, func_offsets, placed) where placed lists (section, function, base slot).
        """
        code = bytearray()
        placed: list[tuple[_Section, _Symbol, int]] = []
        base_of: dict[tuple[int, int], int] = {}

        def place(s: _Section, f: _Symbol) -> int:
            base = len(code) // INSN_SIZE
            start = f.value
            code.extend(self.patched[s.index][start:start + f.size])
            base_of[(s.index, f.value // INSN_SIZE)] = base
            placed.append((s, f, base))
            return base

        # Explicit stack (not recursion): fuzzed objects can chain many functions.
        stack = [(sec, entry, place(sec, entry), 0)]
        while stack:
            s, f, base, i = stack.pop()
            first = f.value // INSN_SIZE
            count = f.size // INSN_SIZE
            while i < count:
                ref = self.code_refs.get((s.index, first + i))
                if ref is None:
                    i += 1
                    continue
                tsec_index, tslot = ref
                tsec = self.elf.sections[tsec_index]
                pc = base + i
                if (tsec_index, tslot) not in base_of:
                    callee = self._func_starting(tsec_index, tslot)
                    if callee is None:
                        raise self.error(f"insn {first + i}: call/function reference to slot {tslot} of "
                                         f"{tsec.name}, which is not the start of a function",
                                         section=s.name, symbol=f.name)
                    if tsec_index != s.index and tsec.name != TEXT:
                        raise self.error(f"insn {first + i}: call into another program section "
                                         f"'{tsec.name}'", section=s.name, symbol=f.name)
                    new_base = place(tsec, callee)
                    struct.pack_into("<i", code, pc * INSN_SIZE + 4, new_base - pc - 1)
                    # Finish the callee first (libbpf's depth-first order), then resume here.
                    stack.append((s, f, base, i + 1))
                    stack.append((tsec, callee, new_base, 0))
                    break
                struct.pack_into("<i", code, pc * INSN_SIZE + 4, base_of[(tsec_index, tslot)] - pc - 1)
                i += 1
        offsets = {f.name: b for _, f, b in placed}
        return code, offsets, placed

    def _line_info(self, placed) -> list[tuple[int, str, int, str]]:
        if self.ext is None:
            return []
        out = []
        for s, f, base in placed:
            for li in self.ext.line_info.get(s.name, ()):
                if f.value <= li.insn_off < f.value + f.size:
                    out.append((base + (li.insn_off - f.value) // INSN_SIZE, li.file, li.line, li.line_text))
        out.sort(key=lambda r: r[0])
        return out

    def _check_core(self, placed) -> None:
        if self.ext is None:
            return
        entry = placed[0][1]
        for s, f, _base in placed:
            for cr in self.ext.core_relos.get(s.name, ()):
                if f.value <= cr.insn_off < f.value + f.size:
                    tname = ""
                    if self.btf is not None and 0 <= cr.type_id < len(self.btf.types):
                        tname = self.btf.describe(cr.type_id)
                    raise self.error(
                        f"CO-RE relocation at {cr.insn_off:#x} in '{f.name}' ({tname}, access "
                        f"'{cr.access}', kind {cr.kind}): CO-RE relocations are not supported",
                        section=s.name, symbol=entry.name)


_SHT = {"SHT_NULL": 0, "SHT_PROGBITS": SHT_PROGBITS, "SHT_SYMTAB": SHT_SYMTAB, "SHT_STRTAB": 3,
        "SHT_RELA": 4, "SHT_NOBITS": SHT_NOBITS, "SHT_REL": SHT_REL}


def _data_section_kind(name: str) -> str | None:
    for kind in ("data", "rodata", "bss"):
        prefix = "." + kind
        if name == prefix or name.startswith(prefix + "."):
            return kind
    return None


def load_spec(source: str | os.PathLike | bytes | bytearray | memoryview, path: str | None = None,
              *, per_program: bool = False) -> ObjectSpec:
    """Read an eBPF ELF object (a file path or its bytes) into an ObjectSpec.

    Args:
        source: path to a clang `-target bpf` object, or the object's bytes.
        path: the name to report in errors and ObjectSpec.path (defaults to the path, or
            "<bytes>").
        per_program: a kfunc call, extern or CO-RE relocation in a program's code marks that
            program (`ProgramSpec.unsupported` holds the error) instead of failing the load;
            such a spec is for tools that report per program (the selftests corpus runner):
            loading or verifying a marked program raises that error.

    Returns:
        ObjectSpec with programs in section/symbol order and maps in libbpf's order (legacy
        `maps`, then `.maps`, then global data sections in section order).

    Raises:
        ElfError: unreadable or malformed object, unsupported relocation or feature; the
            message names the section, symbol and offset at fault.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = path or "<bytes>"
    else:
        name = path or os.fspath(source)
        try:
            with open(source, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise ElfError(f"cannot read: {exc.strerror or exc}", path=name) from exc
    try:
        return _Loader(data, name, per_program).load()
    except ElfError as exc:
        if exc.path is not None:
            raise
        # Raised by the BTF layer, which does not know the file name.
        raise ElfError(exc.reason, path=name, section=exc.section, symbol=exc.symbol) from exc


# --- small readers for the tools (pyelftools stays in this module) ---------------------------

def code_size(obj: bytes) -> int:
    """Bytes of machine code in an ELF object (any machine): the sizes of its FUNC symbols, else
    of its .text sections. Used by `ebpfjit compare` on the JIT's objects."""
    elf = ELFFile(io.BytesIO(obj))
    total = 0
    symtab = elf.get_section_by_name(".symtab")
    if symtab is not None:
        for sym in symtab.iter_symbols():
            if sym["st_info"]["type"] == "STT_FUNC":
                total += sym["st_size"]
    if total:
        return total
    return sum(s["sh_size"] for s in elf.iter_sections()
               if s.name.startswith(".text") and s["sh_type"] == "SHT_PROGBITS")


def first_code_section(blob: bytes, names: tuple[str, ...] = (".text", "xdp")) -> bytes | None:
    """The bytes of the first non-empty section among `names` (the bpf_conformance plugin's
    --elf input), or None. Raises ElfError on a malformed ELF."""
    try:
        elf = ELFFile(io.BytesIO(blob))
        for name in names:
            section = elf.get_section_by_name(name)
            if section is not None and section.data_size:
                return section.data()
    except (ELFError, ValueError) as exc:
        raise ElfError(f"bad ELF input: {exc}") from exc
    return None
