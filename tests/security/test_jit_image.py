"""JIT images and their C loader (csrc/jit_image.c): W^X, and a malformed image is an error
message, never a crash and never executable memory, even one the cache authenticated."""
from __future__ import annotations

import random
import struct

import pytest

from ebpfjit.errors import JitError
from ebpfjit.isa.asm import assemble
from ebpfjit.jit import compile as jit
from ebpfjit.jit import image
from ebpfjit.jit.cache import CompileCache
from ebpfjit.runtime import Env, LoadedProgram
from ebpfjit.runtime.native_image import MappedImage

CODE = assemble("mov %r0, 0\nmov %r1, 10\nloop:\nadd %r0, %r1\nsub %r1, 1\njne %r1, 0, loop\nexit")
# Calls a helper (an import through a stub and its slot) and has a callback entry.
HELPER = assemble("mov %r1, 3\ncall 5\nexit")


def valid_image(code: bytes = HELPER) -> bytes:
    return image.from_elf(jit.emit_object(code))


def run(code: bytes, address: int, keepalive) -> int:
    env = Env()
    env.register_helper(5, lambda r1, r2, r3, r4, r5: r1 + 1)
    loaded = LoadedProgram(code, env)
    loaded.set_jit_function(address, keepalive)
    return loaded.run(engine="jit")


def mappings(lo: int, hi: int) -> list[str]:
    """Permissions of the mappings overlapping [lo, hi)."""
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            if start < hi and end > lo:
                out.append(line.split()[1])
    return out


def test_compiled_code_is_an_image_and_runs():
    compiled = jit.compile_program(HELPER, cache=False)
    assert image.is_image(compiled.object_code)
    assert 0 < compiled.code_size < len(compiled.object_code)
    assert run(HELPER, compiled.address, compiled) == 4


def test_pages_are_never_writable_and_executable():
    mapped = MappedImage(valid_image())
    perms = mappings(mapped.base, mapped.base + mapped.size)
    code = mappings(mapped.base, mapped.base + mapped.exec_size)
    data = mappings(mapped.base + mapped.exec_size, mapped.base + mapped.size)
    assert code == ["r-xp"] and data == ["r--p"], perms
    assert run(HELPER, mapped.entry, mapped) == 4


def _header(blob: bytes) -> list:
    return list(image.HEADER.unpack_from(blob))


def _with_header(blob: bytes, **fields) -> bytes:
    names = ["magic", "machine", "flags", "exec_size", "mem_size", "content", "entry",
             "callback", "nimports", "nrelocs", "code_bytes"]
    values = _header(blob)
    for name, value in fields.items():
        values[names.index(name)] = value
    return image.HEADER.pack(*values) + blob[image.HEADER.size:]


def _reloc(blob: bytes, i: int, **fields) -> bytes:
    h = _header(blob)
    at = image.HEADER.size + h[8] * 48 + i * image.RELOC.size
    off, kind, index, addend = image.RELOC.unpack_from(blob, at)
    values = {"off": off, "kind": kind, "index": index, "addend": addend, **fields}
    out = bytearray(blob)
    image.RELOC.pack_into(out, at, values["off"], values["kind"], values["index"],
                          values["addend"])
    return bytes(out)


def _import_name(blob: bytes, name: bytes) -> bytes:
    out = bytearray(blob)
    out[image.HEADER.size:image.HEADER.size + 48] = name.ljust(48, b"\0")[:48]
    return bytes(out)


MALFORMED = {
    "empty": (lambda b: b"", "too short"),
    "truncated": (lambda b: b[:-1], "does not match"),
    "longer": (lambda b: b + b"\0", "does not match"),
    "magic": (lambda b: b"EBPFIMG2" + b[8:], "bad magic"),
    "machine": (lambda b: _with_header(b, machine=183), "machine 183"),
    "flags": (lambda b: _with_header(b, flags=1), "unknown flags"),
    "exec-not-page": (lambda b: _with_header(b, exec_size=100), "page multiples"),
    "exec-zero": (lambda b: _with_header(b, exec_size=0), "page multiples"),
    "exec-over-mem": (lambda b: _with_header(b, exec_size=_header(b)[4] + 4096), "page multiples"),
    "huge": (lambda b: _with_header(b, mem_size=1 << 31), "page multiples"),
    "content-over-mem": (lambda b: _with_header(b, content=_header(b)[4] + 1), "exceeds"),
    "entry-outside": (lambda b: _with_header(b, entry=_header(b)[3]), "entry point"),
    "callback-outside": (lambda b: _with_header(b, callback=_header(b)[3] + 8), "entry point"),
    "code-bytes": (lambda b: _with_header(b, code_bytes=_header(b)[3] + 1), "code size"),
    "many-imports": (lambda b: _with_header(b, nimports=100000), "too many"),
    "many-relocs": (lambda b: _with_header(b, nrelocs=1 << 30), "too many"),
    "unknown-import": (lambda b: _import_name(b, b"system"), "unknown symbol 'system'"),
    "unterminated-name": (lambda b: _import_name(b, b"x" * 48), "not NUL-terminated"),
    "reloc-in-code": (lambda b: _reloc(b, 0, off=0), "not in its data"),
    "reloc-past-end": (lambda b: _reloc(b, 0, off=_header(b)[4] - 4), "not in its data"),
    "reloc-kind": (lambda b: _reloc(b, 0, kind=7), "unknown kind 7"),
    "reloc-import": (lambda b: _reloc(b, 0, kind=1, index=200), "import 200"),
    "reloc-base-outside": (lambda b: _reloc(b, 0, kind=2, addend=1 << 40), "outside the image"),
    "reloc-base-negative": (lambda b: _reloc(b, 0, kind=2, addend=-8), "outside the image"),
}


@pytest.mark.parametrize("damage", sorted(MALFORMED))
def test_malformed_image_is_refused(damage):
    make, message = MALFORMED[damage]
    blob = valid_image()
    assert _header(blob)[8] >= 1 and _header(blob)[9] >= 1   # an import and a relocation
    with pytest.raises(JitError, match="cannot load JIT image: .*" + message):
        MappedImage(make(blob))


def test_random_damage_never_crashes():
    """Flipped bytes anywhere in the header and tables: the loader refuses or maps (the
    result is never run); either way the process lives and nothing is left mapped."""
    blob = valid_image()
    h = _header(blob)
    tables = image.HEADER.size + h[8] * 48 + h[9] * image.RELOC.size
    rng = random.Random(14)
    for _ in range(600):
        damaged = bytearray(blob)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(tables)
            damaged[at] ^= 1 << rng.randrange(8)
        try:
            MappedImage(bytes(damaged))
        except JitError:
            pass


def test_authentic_but_unloadable_entry_is_recompiled(tmp_path):
    """An entry that passes the HMAC (written with the cache's own key) but is no loadable
    image: never run, compiled again and replaced."""
    cache = CompileCache(tmp_path)
    key = cache.key(jit.cache_key_parts(CODE, 2, True))
    fd, secret = cache._ready()
    bad = _with_header(valid_image(CODE), entry=1 << 30)
    path = tmp_path / (key + ".o")
    path.write_bytes(cache._pack(secret, key, bad))
    path.chmod(0o600)
    compiled = jit.compile_program(CODE, cache=cache)
    assert not compiled.cache_hit
    assert run(CODE, compiled.address, compiled) == 55
    again = jit.compile_program(CODE, cache=cache)
    assert again.cache_hit and run(CODE, again.address, again) == 55


def test_unsupported_object_falls_back_to_lljit(tmp_path, monkeypatch):
    """An object the image linker refuses is linked by LLJIT, and cached (and reloaded) as
    the ELF object."""
    def refuse(obj, *args, **kwargs):
        raise image.ImageUnsupported("test: refused")
    monkeypatch.setattr(image, "from_elf", refuse)
    cache = CompileCache(tmp_path)
    compiled = jit.compile_program(HELPER, cache=cache)
    assert compiled.object_code[:4] == b"\x7fELF"
    assert run(HELPER, compiled.address, compiled) == 4
    again = jit.compile_program(HELPER, cache=cache)
    assert again.cache_hit and run(HELPER, again.address, again) == 4


def test_image_linker_refuses_what_it_cannot_express():
    obj = bytearray(jit.emit_object(CODE))
    # e_machine EM_AARCH64: not an x86-64 object
    struct.pack_into("<H", obj, 18, 183)
    with pytest.raises(image.ImageUnsupported, match="machine 183"):
        image.from_elf(bytes(obj))
    with pytest.raises(image.ImageUnsupported, match="not an ELF64"):
        image.from_elf(b"\x7fELF" + bytes(60))
