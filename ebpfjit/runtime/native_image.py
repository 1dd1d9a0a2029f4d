"""Machine code mapped by the C loader (csrc/jit_image.c) and the host CPU's identity, for the
JIT (ebpfjit.jit.image makes the images, ebpfjit.jit.compile loads them).

Imports: ebpfjit._rt, ebpfjit.errors
"""
from __future__ import annotations

from .._rt import ffi, lib
from ..errors import JitError

ERR_LEN = 256


class MappedImage:
    """A JIT image mapped in this process (code read+execute, data read-only). `entry` and
    `callback` (0: none) are addresses; the pages are unmapped when this object is collected,
    so keep it alive while its code may run (LoadedProgram keeps its JIT code for its life)."""

    __slots__ = ("_img", "entry", "callback", "size", "__weakref__")

    def __init__(self, blob: bytes):
        img = ffi.new("struct ebpfjit_image *")
        err = ffi.new("char[]", ERR_LEN)
        if lib.ebpfjit_image_load(ffi.from_buffer(blob), len(blob), img, err, ERR_LEN) != 0:
            raise JitError(f"cannot load JIT image: {ffi.string(err).decode(errors='replace')}")
        self._img = ffi.gc(img, lib.ebpfjit_image_free)
        self.entry = int(img.entry)
        self.callback = int(img.callback)
        self.size = int(img.size)

    @property
    def base(self) -> int:
        return int(ffi.cast("uintptr_t", self._img.base))

    @property
    def exec_size(self) -> int:
        return int(self._img.exec_size)


def host_cpu_id() -> tuple[int, ...]:
    """The cpuid words LLVM derives the host CPU name and features from (csrc/jit_image.h);
    () where the C module cannot read them (then only LLVM can say what the host is)."""
    out = ffi.new("uint32_t[]", 128)
    return tuple(ffi.unpack(out, lib.ebpfjit_host_cpu_id(out, 128)))


IMAGE_CONSTANTS = {
    "header": lib.EBPFJIT_IMAGE_HEADER_SIZE,
    "name_len": lib.EBPFJIT_IMAGE_NAME_LEN,
    "reloc_size": lib.EBPFJIT_IMAGE_RELOC_SIZE,
    "max_size": lib.EBPFJIT_IMAGE_MAX_SIZE,
    "max_imports": lib.EBPFJIT_IMAGE_MAX_IMPORTS,
    "no_callback": lib.EBPFJIT_IMAGE_NO_CALLBACK,
    "import_abs64": lib.EBPFJIT_IMAGE_IMPORT_ABS64,
    "base_abs64": lib.EBPFJIT_IMAGE_BASE_ABS64,
}
