"""The BTF writer: a parsed object's BTF (ebpfjit.objects.btf) re-encoded as a blob the kernel's
BTF checker accepts (BPF_BTF_LOAD), for map value types and func/line info.

Imports: ebpfjit.objects.btf
"""
from __future__ import annotations

import struct

from ..objects.btf import BtfKind

_FUNC_EXTERN = 2   # enum btf_func_linkage BTF_FUNC_EXTERN


class BtfEncoder:
    """Re-encodes a parsed ebpfjit.btf.Btf into a blob the kernel's BTF checker accepts.

    Object files carry DATASECs of size 0 and VAR offsets that libbpf fixes up from the ELF
    symbol table before BPF_BTF_LOAD. Nothing here needs them (global-data maps are created
    without BTF), so, like libbpf's sanitiser for old kernels, each VAR, DATASEC and DECL_TAG
    becomes an anonymous `const void`, which keeps every other type id unchanged. Extern
    FUNCs (kfunc/ksym declarations) get static linkage, which the kernel accepts.
    """

    def __init__(self, btf) -> None:
        self._strings = bytearray(b"\0")
        self._offsets: dict[str, int] = {"": 0}
        self._types = bytearray()
        for t in btf.types[1:]:
            self._type(t)

    def string(self, text: str) -> int:
        off = self._offsets.get(text)
        if off is None:
            off = self._offsets[text] = len(self._strings)
            self._strings += text.encode() + b"\0"
        return off

    def _head(self, name: str, kind: int, vlen: int, kflag: bool, size_type: int) -> None:
        info = (vlen & 0xFFFF) | (kind << 24) | (int(kflag) << 31)
        self._types += struct.pack("<III", self.string(name), info, size_type)

    def _type(self, t) -> None:
        kind = t.kind
        k = int(kind)
        if kind in (BtfKind.VAR, BtfKind.DATASEC, BtfKind.DECL_TAG):
            self._head("", BtfKind.CONST, 0, False, 0)
        elif kind is BtfKind.INT:
            self._head(t.name, k, 0, False, t.size)
            self._types += struct.pack("<I", (t.int_encoding << 24) | (t.int_offset << 16) | t.int_bits)
        elif kind is BtfKind.ARRAY:
            self._head(t.name, k, 0, False, 0)
            self._types += struct.pack("<III", t.elem_type, t.index_type, t.nelems)
        elif kind in (BtfKind.STRUCT, BtfKind.UNION):
            self._head(t.name, k, len(t.members), t.kind_flag, t.size)
            for m in t.members:
                off = (m.bitfield_size << 24 | m.bit_offset) if t.kind_flag else m.bit_offset
                self._types += struct.pack("<III", self.string(m.name), m.type, off)
        elif kind is BtfKind.ENUM:
            self._head(t.name, k, len(t.enumerators), t.kind_flag, t.size)
            for name, value in t.enumerators:
                self._types += struct.pack("<II", self.string(name), value & 0xFFFFFFFF)
        elif kind is BtfKind.ENUM64:
            self._head(t.name, k, len(t.enumerators), t.kind_flag, t.size)
            for name, value in t.enumerators:
                value &= (1 << 64) - 1
                self._types += struct.pack("<III", self.string(name), value & 0xFFFFFFFF, value >> 32)
        elif kind is BtfKind.FUNC_PROTO:
            self._head(t.name, k, len(t.params), False, t.type)
            for prm in t.params:
                self._types += struct.pack("<II", self.string(prm.name), prm.type)
        elif kind is BtfKind.FUNC:
            self._head(t.name, k, 0 if t.linkage == _FUNC_EXTERN else t.linkage, False, t.type)
        elif kind is BtfKind.FLOAT:
            self._head(t.name, k, 0, False, t.size)
        else:   # PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG
            self._head(t.name, k, 0, t.kind_flag, t.type)

    def blob(self) -> bytes:
        header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(self._types), len(self._types),
                             len(self._strings))
        return header + bytes(self._types) + bytes(self._strings)
