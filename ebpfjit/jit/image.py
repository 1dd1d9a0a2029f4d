"""JIT images: the relocatable x86-64 ELF object LLVM emits, linked ahead of time into
position-independent machine code that the C loader (csrc/jit_image.c, format in
csrc/jit_image.h) maps without LLVM. This is what the on-disk cache stores, so a cache hit
needs neither llvmlite nor LLJIT.

The layout: the code sections, then one 8-byte stub per imported function that code calls
(`jmp *slot(%rip)`), padded to a page; then the read-only data sections and one 8-byte slot
per symbol code loads through the GOT, padded to a page. Every PC-relative relocation is
resolved here (the distances inside an image do not depend on where it is mapped); what
remains are 64-bit words in the data pages: a slot holding an import's address, or the
image's base plus an offset. Anything else this does not know (a writable section, another
relocation type, a symbol defined outside the image but not imported by name) raises
ImageUnsupported, and the caller links the object with LLJIT instead.

Imports: ebpfjit.errors, ebpfjit.runtime.native_image
"""
from __future__ import annotations

import struct

from ..errors import JitError
from ..runtime.native_image import IMAGE_CONSTANTS as C

MAGIC = b"EBPFIMG1"
PAGE = 4096
EM_X86_64 = 62
HEADER = struct.Struct("<8sIIIIIIIIII")
RELOC = struct.Struct("<IHHq")

SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4
SHT_PROGBITS, SHT_SYMTAB, SHT_RELA, SHT_NOBITS, SHT_REL = 1, 2, 4, 8, 9
SHN_UNDEF, SHN_LORESERVE = 0, 0xFF00
# x86-64 relocation types (psABI)
R_64, R_PC32, R_PLT32, R_GOTPCREL, R_PC64, R_GOTPCRELX, R_REX_GOTPCRELX = 1, 2, 4, 9, 24, 41, 42
GOT_TYPES = (R_GOTPCREL, R_GOTPCRELX, R_REX_GOTPCRELX)
# Sections that need not be loaded: unwind tables (generated code is nounwind, nothing unwinds
# through it) and notes.
SKIPPED = (".eh_frame", ".note.GNU-stack", ".llvm_addrsig", ".comment")


class ImageUnsupported(JitError):
    """The object uses something a JIT image cannot express (then LLJIT links it)."""


def _align(value: int, alignment: int) -> int:
    alignment = max(alignment, 1)
    return (value + alignment - 1) // alignment * alignment


class _Elf:
    """The parts of a relocatable ELF64 little-endian object the linker reads."""

    def __init__(self, obj: bytes):
        if obj[:4] != b"\x7fELF" or obj[4] != 2 or obj[5] != 1:
            raise ImageUnsupported("not an ELF64 little-endian object")
        e_type, e_machine = struct.unpack_from("<HH", obj, 16)
        if e_type != 1 or e_machine != EM_X86_64:
            raise ImageUnsupported(f"ELF type {e_type} machine {e_machine}: not an x86-64 "
                                   f"relocatable object")
        shoff, = struct.unpack_from("<Q", obj, 40)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", obj, 58)
        self.obj = obj
        self.sections = [struct.unpack_from("<IIQQQQIIQQ", obj, shoff + i * shentsize)
                         for i in range(shnum)]
        strtab = self.sections[shstrndx]
        self.names = [self._str(strtab, s[0]) for s in self.sections]

    def _str(self, sec, offset: int) -> str:
        start = sec[4] + offset
        return self.obj[start:self.obj.index(b"\0", start)].decode()

    def data(self, index: int) -> bytes:
        s = self.sections[index]
        return self.obj[s[4]:s[4] + s[5]]

    def raw_symbols(self):
        """(name, info, other, shndx, value, size) per symbol-table entry."""
        for i, s in enumerate(self.sections):
            if s[1] == SHT_SYMTAB:
                strtab = self.sections[s[6]]
                return [(self._str(strtab, n), *rest)
                        for n, *rest in struct.iter_unpack("<IBBHQQ", self.data(i))]
        raise ImageUnsupported("object has no symbol table")

    def symbols(self):
        """(name, shndx, value) per symbol-table entry."""
        return [(name, shndx, value) for name, _i, _o, shndx, value, _s in self.raw_symbols()]


def from_elf(obj: bytes, exports: tuple[str, ...] = ("ebpf_entry", "ebpf_callback")) -> bytes:
    """The JIT image of relocatable object `obj`. `exports`: the entry symbol (required) and
    the callback entry (optional). Raises ImageUnsupported."""
    elf = _Elf(obj)
    secs, names = elf.sections, elf.names
    exec_secs, data_secs = [], []
    for i, s in enumerate(secs):
        _name, typ, flags = s[:3]
        if not flags & SHF_ALLOC or names[i] in SKIPPED or names[i].startswith(".eh_frame"):
            continue
        if flags & SHF_WRITE:
            raise ImageUnsupported(f"writable section {names[i]}")
        if typ not in (SHT_PROGBITS, SHT_NOBITS):
            raise ImageUnsupported(f"section {names[i]} of type {typ}")
        (exec_secs if flags & SHF_EXECINSTR else data_secs).append(i)
    symbols = elf.symbols()
    relas = [(i, s[7]) for i, s in enumerate(secs) if s[1] in (SHT_RELA, SHT_REL)]
    loaded = set(exec_secs) | set(data_secs)
    for i, target in relas:
        if target in loaded and secs[i][1] == SHT_REL:
            raise ImageUnsupported("REL relocations")

    # Imports (by name, in first-use order) and what needs a stub or a GOT slot.
    imports: dict[str, int] = {}
    stubs: dict[str, int] = {}
    got: dict[tuple, int] = {}
    relocations = []
    for i, target in relas:
        if target not in loaded:
            continue
        for off, info, addend in struct.iter_unpack("<QQq", elf.data(i)):
            name, shndx, value = symbols[info >> 32]
            typ = info & 0xFFFFFFFF
            if shndx == SHN_UNDEF:
                imports.setdefault(name, len(imports))
                sym = ("import", name)
            elif shndx >= SHN_LORESERVE or shndx not in loaded:
                raise ImageUnsupported(f"relocation against {name or 'a section'} outside the "
                                       f"loaded sections")
            else:
                sym = ("local", shndx, value)
            if typ == R_PLT32 and sym[0] == "import":
                stubs.setdefault(name, len(stubs))
            elif typ in GOT_TYPES:
                got.setdefault(sym, len(got))
            elif typ in (R_PC32, R_PLT32, R_PC64, R_64):
                if sym[0] == "import" and typ != R_64:
                    raise ImageUnsupported(f"PC-relative data reference to {name}")
            else:
                raise ImageUnsupported(f"relocation type {typ} (against {name or 'a section'})")
            relocations.append((target, off, typ, sym, addend))
    for name in stubs:          # a stub jumps through the import's slot
        got.setdefault(("import", name), len(got))
    if len(imports) > C["max_imports"]:
        raise ImageUnsupported("too many imports")
    for name in imports:
        if len(name.encode()) >= C["name_len"]:
            raise ImageUnsupported(f"import name {name} too long")

    # Layout.
    base: dict[int, int] = {}
    pos = 0
    for i in exec_secs:
        pos = _align(pos, secs[i][8])
        base[i] = pos
        pos += secs[i][5]
    stub_base = _align(pos, 16)
    pos = stub_base + 8 * len(stubs)
    exec_size = _align(max(pos, 1), PAGE)
    pos = exec_size
    for i in data_secs:
        pos = _align(pos, secs[i][8])
        base[i] = pos
        pos += secs[i][5]
    got_base = _align(pos, 8)
    mem_end = got_base + 8 * len(got)
    mem_size = _align(mem_end, PAGE)
    if mem_size > C["max_size"]:
        raise ImageUnsupported(f"image of {mem_size} bytes")
    content = bytearray(mem_end)
    for i in exec_secs + data_secs:
        if secs[i][1] == SHT_PROGBITS:
            content[base[i]:base[i] + secs[i][5]] = elf.data(i)

    def where(sym) -> int:
        return base[sym[1]] + sym[2]

    words = []          # (offset, kind, index, addend) for the loader
    for sym, slot in got.items():
        offset = got_base + 8 * slot
        if sym[0] == "import":
            words.append((offset, C["import_abs64"], imports[sym[1]], 0))
        else:
            words.append((offset, C["base_abs64"], 0, where(sym)))
    for name, n in stubs.items():
        stub = stub_base + 8 * n
        disp = got_base + 8 * got[("import", name)] - (stub + 6)
        content[stub:stub + 8] = b"\xff\x25" + struct.pack("<i", disp) + b"\xcc\xcc"
    for target, off, typ, sym, addend in relocations:
        p = base[target] + off
        if typ == R_64:
            if p < exec_size:
                raise ImageUnsupported("absolute relocation in code")
            if sym[0] == "import":
                words.append((p, C["import_abs64"], imports[sym[1]], addend))
            else:
                words.append((p, C["base_abs64"], 0, where(sym) + addend))
            continue
        if typ in GOT_TYPES:
            s = got_base + 8 * got[sym]
        elif sym[0] == "import":
            s = stub_base + 8 * stubs[sym[1]]
        else:
            s = where(sym)
        value = s + addend - p
        if typ == R_PC64:
            struct.pack_into("<q", content, p, value)
        else:
            if not -(1 << 31) <= value < (1 << 31):
                raise ImageUnsupported("PC-relative relocation out of range")
            struct.pack_into("<i", content, p, value)

    funcs = sum(size for _n, info, _o, shndx, _v, size in elf.raw_symbols()
                if info & 0xF == 2 and shndx in exec_secs)       # STT_FUNC
    code_bytes = funcs or sum(secs[i][5] for i in exec_secs)
    entries = []
    defined = {name: (shndx, value) for name, shndx, value in symbols
               if name and 0 < shndx < SHN_LORESERVE}
    for k, name in enumerate(exports):
        if name in defined and defined[name][0] in exec_secs:
            entries.append(base[defined[name][0]] + defined[name][1])
        elif k == 0:
            raise ImageUnsupported(f"object has no {name} symbol")
        else:
            entries.append(C["no_callback"])
    entry, callback = (entries + [C["no_callback"]])[:2]
    head = HEADER.pack(MAGIC, EM_X86_64, 0, exec_size, mem_size, len(content), entry, callback,
                       len(imports), len(words), code_bytes)
    table = b"".join(name.encode().ljust(C["name_len"], b"\0") for name in imports)
    table += b"".join(RELOC.pack(*w) for w in sorted(words))
    return head + table + bytes(content)


def is_image(blob: bytes) -> bool:
    return blob[:8] == MAGIC


def code_size(blob: bytes) -> int:
    """Bytes of machine code in an image: its functions (the header's code_bytes)."""
    return HEADER.unpack_from(blob)[10]


__all__ = ["ImageUnsupported", "from_elf", "is_image", "MAGIC"]
