"""BTF and BTF.ext: parse the type information clang puts in `.BTF`/`.BTF.ext` into plain data.

Covers every BTF kind of include/uapi/linux/btf.h (INT … ENUM64), sizes and type resolution,
the func_info/line_info/CO-RE records of `.BTF.ext`, and `format_value`, which decodes raw map
keys/values the way `bpftool map dump -j` prints them ("formatted" field of its JSON).

Layout reference: Documentation/bpf/btf.rst. Everything is little endian (only BPF-target objects
are read here). Malformed input raises ElfError naming the section; no other exception escapes.

Must not import: runtime, lower, jit, kernel, cli.

Imports: ebpfjit.errors
"""
from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from ..errors import BtfLimitError, ElfError

BTF_MAGIC = 0xEB9F

# Deeper chains than this are cycles or garbage: real BTF nests a handful of modifiers at most.
_MAX_CHAIN = 64
_MAX_DEPTH = 64
# Arrays of zero-sized elements consume no input bytes; bound them so hostile BTF cannot make
# format_value build a list of billions of empty values.
_MAX_ZERO_SIZED = 1 << 16
# Decoded values (ints, members, array elements) one format_value call may produce. Nested
# arrays of zero-sized (or bitfield-only) structs multiply without consuming input, so only a
# total bound keeps decoding bounded: 2^20 covers a 1 MiB byte array, far above real values.
MAX_DECODED_ELEMENTS = 1 << 20


class BtfKind(enum.IntEnum):
    """BTF_KIND_* (uapi/linux/btf.h): the one table of BTF kinds (the parser here and the
    kernel-side BTF writer, ebpfjit.oracle.btf_writer). Not the instruction `isa.opcodes.Kind`."""
    UNKN = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


# BTF_INT_ENCODING bits.
INT_SIGNED = 1 << 0
INT_CHAR = 1 << 1
INT_BOOL = 1 << 2

# Kinds whose `size_type` word is a size rather than a referenced type id.
_SIZED = {BtfKind.INT, BtfKind.STRUCT, BtfKind.UNION, BtfKind.ENUM, BtfKind.ENUM64, BtfKind.DATASEC,
          BtfKind.FLOAT}
# Kinds that only qualify another type; resolve() looks through them.
_MODIFIERS = {BtfKind.TYPEDEF, BtfKind.VOLATILE, BtfKind.CONST, BtfKind.RESTRICT, BtfKind.TYPE_TAG}


@dataclass(frozen=True)
class Member:
    """A struct/union member; `bit_offset` from the start of the aggregate, `bitfield_size` 0 if none."""
    name: str
    type: int
    bit_offset: int
    bitfield_size: int = 0


@dataclass(frozen=True)
class Param:
    name: str
    type: int


@dataclass(frozen=True)
class VarSecinfo:
    """One variable of a DATASEC: its VAR type id, byte offset and size in the section."""
    type: int
    offset: int
    size: int


@dataclass(frozen=True)
class BtfType:
    """One BTF type. Only the fields of its kind are meaningful; the others keep their defaults.

    `size` is set for sized kinds (INT, STRUCT, UNION, ENUM, ENUM64, DATASEC, FLOAT) and `type`
    for referencing kinds (PTR, TYPEDEF, modifiers, FUNC, FUNC_PROTO's return, VAR, tags).
    """
    id: int
    kind: BtfKind
    name: str = ""
    size: int = 0
    type: int = 0
    vlen: int = 0
    kind_flag: bool = False
    int_encoding: int = 0
    int_offset: int = 0
    int_bits: int = 0
    elem_type: int = 0
    index_type: int = 0
    nelems: int = 0
    members: tuple[Member, ...] = ()
    enumerators: tuple[tuple[str, int], ...] = ()
    params: tuple[Param, ...] = ()
    linkage: int = 0
    secinfos: tuple[VarSecinfo, ...] = ()
    component_idx: int = -1


_VOID = BtfType(0, BtfKind.UNKN, "void")


def _err(message: str, section: str = ".BTF") -> ElfError:
    return ElfError(message, section=section)


class _Reader:
    """Bounds-checked little-endian reads from one blob; every overrun becomes an ElfError."""

    def __init__(self, data: bytes, section: str):
        self.data = data
        self.section = section

    def unpack(self, fmt: str, offset: int) -> tuple:
        size = struct.calcsize(fmt)
        if offset < 0 or offset + size > len(self.data):
            raise _err(f"truncated: {size} bytes at offset {offset:#x} past the end "
                       f"({len(self.data)} bytes)", self.section)
        return struct.unpack_from(fmt, self.data, offset)


@dataclass
class Btf:
    """Parsed `.BTF`: `types[id]` (id 0 is void) and the string table."""
    types: list[BtfType]
    strings: bytes
    _by_name: dict[str, list[int]] = field(default_factory=dict, repr=False)
    _counts: dict[int, int] = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ parsing
    @classmethod
    def parse(cls, data: bytes) -> Btf:
        """Parse a `.BTF` section.

        Raises:
            ElfError: bad magic, truncated header/type/string data, unknown kind.
        """
        data = bytes(data)
        rd = _Reader(data, ".BTF")
        magic, version, _flags, hdr_len = rd.unpack("<HBBI", 0)
        if magic != BTF_MAGIC:
            raise _err(f"bad magic {magic:#06x} (expected {BTF_MAGIC:#06x})")
        if version != 1:
            raise _err(f"unsupported BTF version {version}")
        type_off, type_len, str_off, str_len = rd.unpack("<IIII", 8)
        if hdr_len < 24:
            raise _err(f"header length {hdr_len} is shorter than 24")
        for what, off, length in (("type", type_off, type_len), ("string", str_off, str_len)):
            if hdr_len + off + length > len(data):
                raise _err(f"{what} section [{off:#x}, +{length:#x}) is past the end of .BTF")
        strings = data[hdr_len + str_off:hdr_len + str_off + str_len]
        btf = cls(types=[_VOID], strings=strings)
        btf._parse_types(data[hdr_len + type_off:hdr_len + type_off + type_len])
        for t in btf.types[1:]:
            if t.name:
                btf._by_name.setdefault(t.name, []).append(t.id)
        return btf

    def string(self, offset: int, section: str = ".BTF") -> str:
        """The NUL-terminated string at `offset` of the string table."""
        if offset < 0 or offset > len(self.strings) or (offset == len(self.strings) and offset):
            raise _err(f"string offset {offset:#x} outside the string table "
                       f"({len(self.strings)} bytes)", section)
        end = self.strings.find(b"\0", offset)
        if end < 0:
            end = len(self.strings)
        return self.strings[offset:end].decode("utf-8", errors="replace")

    def _parse_types(self, blob: bytes) -> None:
        rd = _Reader(blob, ".BTF")
        pos = 0
        while pos < len(blob):
            tid = len(self.types)
            name_off, info, size_type = rd.unpack("<III", pos)
            pos += 12
            vlen = info & 0xFFFF
            kind_no = (info >> 24) & 0x1F
            kflag = bool(info >> 31)
            try:
                kind = BtfKind(kind_no)
            except ValueError:
                raise _err(f"type [{tid}]: unknown kind {kind_no}") from None
            if kind is BtfKind.UNKN:
                raise _err(f"type [{tid}]: kind UNKN")
            name = self.string(name_off)
            common = {"id": tid, "kind": kind, "name": name, "vlen": vlen, "kind_flag": kflag}
            if kind in _SIZED:
                common["size"] = size_type
            else:
                common["type"] = size_type
            if kind is BtfKind.INT:
                (word,) = rd.unpack("<I", pos)
                pos += 4
                t = BtfType(**common, int_encoding=(word >> 24) & 0x0F, int_offset=(word >> 16) & 0xFF,
                            int_bits=word & 0xFF)
            elif kind is BtfKind.ARRAY:
                elem, index, nelems = rd.unpack("<III", pos)
                pos += 12
                t = BtfType(**common, elem_type=elem, index_type=index, nelems=nelems)
            elif kind in (BtfKind.STRUCT, BtfKind.UNION):
                members = []
                for _ in range(vlen):
                    m_name, m_type, m_off = rd.unpack("<III", pos)
                    pos += 12
                    if kflag:
                        members.append(Member(self.string(m_name), m_type, m_off & 0xFFFFFF, m_off >> 24))
                    else:
                        members.append(Member(self.string(m_name), m_type, m_off))
                t = BtfType(**common, members=tuple(members))
            elif kind is BtfKind.ENUM:
                values = []
                for _ in range(vlen):
                    e_name, e_val = rd.unpack("<Ii", pos)
                    pos += 8
                    # kind_flag marks a signed enum; otherwise the 32 bits are unsigned.
                    values.append((self.string(e_name), e_val if kflag else e_val & 0xFFFFFFFF))
                t = BtfType(**common, enumerators=tuple(values))
            elif kind is BtfKind.ENUM64:
                values = []
                for _ in range(vlen):
                    e_name, lo, hi = rd.unpack("<III", pos)
                    pos += 12
                    val = (hi << 32) | lo
                    if kflag and val >> 63:
                        val -= 1 << 64
                    values.append((self.string(e_name), val))
                t = BtfType(**common, enumerators=tuple(values))
            elif kind is BtfKind.FUNC_PROTO:
                params = []
                for _ in range(vlen):
                    p_name, p_type = rd.unpack("<II", pos)
                    pos += 8
                    params.append(Param(self.string(p_name), p_type))
                t = BtfType(**common, params=tuple(params))
            elif kind is BtfKind.FUNC:
                t = BtfType(**common, linkage=vlen)
            elif kind is BtfKind.VAR:
                (linkage,) = rd.unpack("<I", pos)
                pos += 4
                t = BtfType(**common, linkage=linkage)
            elif kind is BtfKind.DATASEC:
                infos = []
                for _ in range(vlen):
                    infos.append(VarSecinfo(*rd.unpack("<III", pos)))
                    pos += 12
                t = BtfType(**common, secinfos=tuple(infos))
            elif kind is BtfKind.DECL_TAG:
                (component,) = rd.unpack("<i", pos)
                pos += 4
                t = BtfType(**common, component_idx=component)
            else:   # PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FLOAT, TYPE_TAG: no trailer
                t = BtfType(**common)
            self.types.append(t)

    # ------------------------------------------------------------------ queries
    def type(self, type_id: int) -> BtfType:
        """The type with this id (0 is void).

        Raises:
            ElfError: no such id.
        """
        if not 0 <= type_id < len(self.types):
            raise _err(f"type id {type_id} out of range (BTF has {len(self.types) - 1} types)")
        return self.types[type_id]

    def name_of(self, type_id: int) -> str:
        return self.type(type_id).name

    def find(self, name: str, kind: BtfKind | None = None) -> int:
        """Id of the first type called `name` (of `kind` if given), or 0 when there is none."""
        for tid in self._by_name.get(name, ()):
            if kind is None or self.types[tid].kind is kind:
                return tid
        return 0

    def resolve(self, type_id: int) -> int:
        """Follow typedef/const/volatile/restrict/type_tag to the underlying type id."""
        for _ in range(_MAX_CHAIN):
            t = self.type(type_id)
            if t.kind not in _MODIFIERS:
                return type_id
            type_id = t.type
        raise _err(f"type [{type_id}]: modifier chain longer than {_MAX_CHAIN} (cycle?)")

    def size_of(self, type_id: int) -> int:
        """Byte size of a type as the kernel computes it (btf__resolve_size).

        Raises:
            ElfError: void, functions, forward declarations, or a cyclic definition.
        """
        mult = 1
        for _ in range(_MAX_CHAIN):
            t = self.type(type_id)
            if t.kind in _SIZED:
                return mult * t.size
            if t.kind is BtfKind.PTR:
                return mult * 8
            if t.kind is BtfKind.ARRAY:
                mult *= t.nelems
                type_id = t.elem_type
            elif t.kind in _MODIFIERS or t.kind is BtfKind.VAR:
                type_id = t.type
            else:
                raise _err(f"type [{type_id}] ({t.kind.name} {t.name!r}) has no size")
        raise _err(f"type [{type_id}]: chain longer than {_MAX_CHAIN} (cycle?)")

    def datasec(self, name: str) -> BtfType | None:
        """The DATASEC describing ELF section `name`, if clang emitted one."""
        tid = self.find(name, BtfKind.DATASEC)
        return self.types[tid] if tid else None

    def describe(self, type_id: int, _depth: int = 0) -> str:
        """A short C-like spelling of a type, for messages (`struct flow_state`, `__u32 *`)."""
        t = self.type(type_id)
        if t.kind is BtfKind.PTR:
            return (self.describe(t.type, _depth + 1) if _depth < 8 else "...") + " *"
        if t.kind in (BtfKind.STRUCT, BtfKind.UNION, BtfKind.ENUM, BtfKind.ENUM64):
            word = {BtfKind.STRUCT: "struct", BtfKind.UNION: "union"}.get(t.kind, "enum")
            return f"{word} {t.name or '(anon)'}"
        if t.kind is BtfKind.ARRAY:
            return f"{self.name_of(t.elem_type) or '(anon)'}[{t.nelems}]"
        return t.name or t.kind.name.lower()

    # ------------------------------------------------------------------ formatting
    def format_value(self, type_id: int, data: bytes) -> object:
        """Decode `data` as type `type_id` the way `bpftool map dump -j` shows it ("formatted").

        Integers become ints (unsigned unless the BTF int is signed), bool ints bools, CHAR-encoded
        single chars one-character strings, `char` arrays holding a NUL-terminated printable string
        strings (other arrays lists), structs/unions dicts keyed by member name, enums their
        enumerator name (or the int when no enumerator matches), pointers ints, floats floats.
        Bitfields and 128-bit ints are hex strings ("0x1f"), as bpftool prints them. A VAR is
        `{name: value}` and a DATASEC `{section: [{var: value}, ...]}`.

        Raises:
            ElfError: `data` is shorter than the type, or the type cannot hold a value.
            BtfLimitError (an ElfError): the value would decode to more than
                MAX_DECODED_ELEMENTS values (decoded_count), or nests deeper than 64 types.
        """
        need = self.size_of(type_id)
        if len(data) < need:
            raise _err(f"value of {self.describe(type_id)} needs {need} bytes, got {len(data)}")
        count = self.decoded_count(type_id)
        if count > MAX_DECODED_ELEMENTS:
            raise BtfLimitError(f"value of type [{type_id}] ({self.describe(type_id)}) decodes "
                                f"to {count} values, more than {MAX_DECODED_ELEMENTS}",
                                section=".BTF")
        return self._fmt(type_id, bytes(data), 0, 0, 0)

    def decoded_count(self, type_id: int, _depth: int = 0) -> int:
        """Values (ints, members, elements; a char string counted per byte) format_value
        builds for a value of this type: known before anything is built, so hostile BTF
        costs one walk of its types (memoized), never the list it describes.

        Raises:
            BtfLimitError: the type nests deeper than 64 levels (or is cyclic).
        """
        memo = self._counts
        if type_id in memo:
            return memo[type_id]
        if _depth > _MAX_DEPTH:
            raise BtfLimitError(f"type [{type_id}] nests deeper than {_MAX_DEPTH}", section=".BTF")
        t = self.type(type_id)
        if t.kind in _MODIFIERS or t.kind is BtfKind.VAR:
            n = 1 + self.decoded_count(t.type, _depth + 1)
        elif t.kind is BtfKind.ARRAY:
            n = 1 + t.nelems * self.decoded_count(t.elem_type, _depth + 1)
        elif t.kind in (BtfKind.STRUCT, BtfKind.UNION):
            n = 1 + sum(1 if m.bitfield_size else self.decoded_count(m.type, _depth + 1)
                        for m in t.members)
        elif t.kind is BtfKind.DATASEC:
            n = 1 + sum(self.decoded_count(vs.type, _depth + 1) for vs in t.secinfos)
        else:
            n = 1
        memo[type_id] = n
        return n

    def _fmt(self, type_id: int, data: bytes, off: int, bit_off: int, depth: int) -> object:
        if depth > _MAX_DEPTH:
            raise BtfLimitError(f"type [{type_id}] nests deeper than {_MAX_DEPTH}", section=".BTF")
        t = self.type(type_id)
        k = t.kind
        if k in _MODIFIERS:
            return self._fmt(self.resolve(type_id), data, off, bit_off, depth + 1)
        if k is BtfKind.INT:
            return self._fmt_int(t, data, off, bit_off)
        if k in (BtfKind.STRUCT, BtfKind.UNION):
            out: dict[str, object] = {}
            for m in t.members:
                m_off = off + m.bit_offset // 8
                if m.bitfield_size:
                    out[m.name] = _bitfield(data, m_off, m.bit_offset % 8, m.bitfield_size)
                else:
                    out[m.name] = self._fmt(m.type, data, m_off, m.bit_offset % 8, depth + 1)
            return out
        if k is BtfKind.ARRAY:
            if self._is_str_array(t, data, off):
                end = data.index(b"\0", off)
                return data[off:end].decode("ascii")
            elem = self.size_of(t.elem_type)
            if elem == 0 and t.nelems > _MAX_ZERO_SIZED:
                raise _err(f"array [{type_id}] of {t.nelems} zero-sized elements")
            return [self._fmt(t.elem_type, data, off + i * elem, 0, depth + 1)
                    for i in range(t.nelems)]
        if k in (BtfKind.ENUM, BtfKind.ENUM64):
            size = t.size if t.size in (1, 2, 4, 8) else 0
            if not size:
                raise _err(f"enum [{type_id}] has unsupported size {t.size}")
            value = int.from_bytes(data[off:off + size], "little", signed=True)
            for name, val in t.enumerators:
                # bpftool compares the sign-extended value with each enumerator's bits.
                if value == val or value & ((1 << (8 * size)) - 1) == val & ((1 << (8 * size)) - 1):
                    return name
            return value
        if k is BtfKind.PTR:
            return int.from_bytes(data[off:off + 8], "little")
        if k is BtfKind.FLOAT:
            fmt = {2: "<e", 4: "<f", 8: "<d"}.get(t.size)
            if fmt is None:
                return _hex(int.from_bytes(data[off:off + t.size], "little"))
            return struct.unpack_from(fmt, data, off)[0]
        if k is BtfKind.VAR:
            return {t.name: self._fmt(t.type, data, off, bit_off, depth + 1)}
        if k is BtfKind.DATASEC:
            return {t.name: [self._fmt(vs.type, data, off + vs.offset, 0, depth + 1)
                             for vs in t.secinfos]}
        raise _err(f"type [{type_id}] ({k.name}) cannot hold a value")

    def _fmt_int(self, t: BtfType, data: bytes, off: int, bit_off: int) -> object:
        bits = t.int_bits
        if bit_off or t.int_offset or bits % 8:
            total = bit_off + t.int_offset
            return _bitfield(data, off + total // 8, total % 8, bits)
        raw = data[off:off + bits // 8]
        if bits == 128:
            return _hex(int.from_bytes(raw, "little"))
        if t.int_encoding & INT_BOOL:
            return any(raw)
        if t.int_encoding & INT_CHAR:
            ch = raw[0] if raw else 0
            return chr(ch) if 0x20 <= ch < 0x7F else f"\\u00{ch:02x}"
        if bits not in (8, 16, 32, 64):
            return _bitfield(data, off, 0, bits)
        return int.from_bytes(raw, "little", signed=bool(t.int_encoding & INT_SIGNED))

    def _is_str_array(self, t: BtfType, data: bytes, off: int) -> bool:
        # bpftool's is_str_array(): looks through modifiers but not typedefs, wants a 1-byte int
        # that is CHAR-encoded or named "char", and a NUL before any byte outside 0x20..0x7e.
        if not t.nelems:
            return False
        elem = self.type(t.elem_type)
        for _ in range(_MAX_CHAIN):
            if elem.kind not in (BtfKind.VOLATILE, BtfKind.CONST, BtfKind.RESTRICT, BtfKind.TYPE_TAG):
                break
            elem = self.type(elem.type)
        if elem.kind is not BtfKind.INT or elem.size != 1:
            return False
        if not elem.int_encoding & INT_CHAR and elem.name != "char":
            return False
        for b in data[off:off + t.nelems]:
            if b == 0:
                return True
            if not 0x20 <= b < 0x7F:
                return False
        return False


def _hex(value: int) -> str:
    return f"{value:#x}"


def _bitfield(data: bytes, off: int, bit_off: int, nbits: int) -> str:
    # Little-endian bitfield: skip bit_off low bits of the byte at off, keep nbits.
    nbytes = (bit_off + nbits + 7) // 8
    raw = int.from_bytes(data[off:off + nbytes], "little")
    return _hex((raw >> bit_off) & ((1 << nbits) - 1))


# ---------------------------------------------------------------------- .BTF.ext

@dataclass(frozen=True)
class FuncInfo:
    """A function start: `insn_off` in bytes from its ELF section start, FUNC type id."""
    insn_off: int
    type_id: int


@dataclass(frozen=True)
class LineInfo:
    """A source position for the instruction at `insn_off` (bytes from the ELF section start)."""
    insn_off: int
    file: str
    line_text: str
    line: int
    col: int


@dataclass(frozen=True)
class CoreRelo:
    """A CO-RE relocation record (bpf_core_relo): we only report these, never apply them."""
    insn_off: int
    type_id: int
    access: str
    kind: int


@dataclass
class BtfExt:
    """Parsed `.BTF.ext`, keyed by ELF section name."""
    func_info: dict[str, list[FuncInfo]] = field(default_factory=dict)
    line_info: dict[str, list[LineInfo]] = field(default_factory=dict)
    core_relos: dict[str, list[CoreRelo]] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes, btf: Btf) -> BtfExt:
        """Parse `.BTF.ext`; names come from `btf`'s string table.

        Raises:
            ElfError: bad magic or truncated records (section `.BTF.ext`).
        """
        sec = ".BTF.ext"
        data = bytes(data)
        rd = _Reader(data, sec)
        magic, version, _flags, hdr_len = rd.unpack("<HBBI", 0)
        if magic != BTF_MAGIC:
            raise _err(f"bad magic {magic:#06x} (expected {BTF_MAGIC:#06x})", sec)
        if version != 1:
            raise _err(f"unsupported version {version}", sec)
        if hdr_len < 24:
            raise _err(f"header length {hdr_len} is shorter than 24", sec)
        fi_off, fi_len, li_off, li_len = rd.unpack("<IIII", 8)
        ext = cls()
        ext.func_info = ext._records(rd, btf, hdr_len + fi_off, fi_len, 8, "func_info",
                                     lambda r, o: FuncInfo(*r.unpack("<II", o)))

        def line(r: _Reader, o: int) -> LineInfo:
            insn_off, file_off, line_off, line_col = r.unpack("<IIII", o)
            return LineInfo(insn_off, btf.string(file_off, sec), btf.string(line_off, sec),
                            line_col >> 10, line_col & 0x3FF)

        ext.line_info = ext._records(rd, btf, hdr_len + li_off, li_len, 16, "line_info", line)
        if hdr_len >= 32:
            cr_off, cr_len = rd.unpack("<II", 24)

            def core(r: _Reader, o: int) -> CoreRelo:
                insn_off, type_id, access_off, kind = r.unpack("<IIII", o)
                return CoreRelo(insn_off, type_id, btf.string(access_off, sec), kind)

            ext.core_relos = ext._records(rd, btf, hdr_len + cr_off, cr_len, 16, "core_relo", core)
        return ext

    @staticmethod
    def _records(rd: _Reader, btf: Btf, start: int, length: int, min_rec: int, what: str,
                 decode) -> dict[str, list]:
        out: dict[str, list] = {}
        if not length:
            return out
        sec = rd.section
        if start + length > len(rd.data):
            raise _err(f"{what} [{start:#x}, +{length:#x}) is past the end", sec)
        end = start + length
        (rec_size,) = rd.unpack("<I", start)
        # Newer producers may append fields; records never shrink below the known layout.
        if rec_size < min_rec or rec_size % 4:
            raise _err(f"{what} record size {rec_size} (need at least {min_rec})", sec)
        pos = start + 4
        while pos < end:
            name_off, count = rd.unpack("<II", pos)
            pos += 8
            if pos + count * rec_size > end:
                raise _err(f"{what}: {count} records of {rec_size} bytes overrun the section", sec)
            name = btf.string(name_off, sec)
            out.setdefault(name, []).extend(decode(rd, pos + i * rec_size) for i in range(count))
            pos += count * rec_size
        return out
