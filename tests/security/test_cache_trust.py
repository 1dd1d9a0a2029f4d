"""Finding 8: the JIT cache must not execute object code another local user could have planted.

The attacker model: someone who can write into the cache folder (a shared or world-writable
XDG_CACHE_HOME, a folder they created first, a file they own inside it) and knows every public
input of a cache key. They can write any entry format, but they cannot read our 0600 HMAC key.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import stat
import warnings
from pathlib import Path

import pytest

from ebpfjit.isa.asm import assemble
from ebpfjit.jit import compile as jit
from ebpfjit.jit.cache import HEADER, KEY_FILE, MAGIC, CacheWarning, CompileCache, UntrustedCache
from ebpfjit.runtime import Env, LoadedProgram

CODE = assemble("mov %r0, 0\nmov %r1, 10\nloop:\nadd %r0, %r1\nsub %r1, 1\njne %r1, 0, loop\nexit")
EXPECTED = 55
EVIL = assemble("mov %r0, 7\nexit")          # the attacker's code: returns 7 instead of 55
NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")


def run_jit(compiled) -> int:
    loaded = LoadedProgram(CODE, Env())
    loaded.set_jit_function(compiled.address, compiled)
    return loaded.run(engine="jit")


def entry_key(cache: CompileCache) -> str:
    return cache.key(jit.cache_key_parts(CODE, 2, True))


def evil_object() -> bytes:
    return jit.emit_object(EVIL)


def old_format(payload: bytes) -> bytes:
    """A format-1 entry: header with a plain sha256 of the payload, which anyone can compute."""
    return HEADER.pack(MAGIC, 1, 0, len(payload), hashlib.sha256(payload).digest()) + payload


def plant(directory: Path, name: str, blob: bytes, mode: int = 0o600) -> Path:
    path = directory / name
    path.write_bytes(blob)
    os.chmod(path, mode)
    return path


def compile_quietly(cache):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheWarning)
        return jit.compile_program(CODE, cache=cache)


def test_planted_old_format_entry_is_never_executed(tmp_path):
    cache = CompileCache(tmp_path)
    key = entry_key(cache)
    planted = plant(tmp_path, key + ".o", old_format(evil_object()))
    compiled = jit.compile_program(CODE, cache=cache)
    assert not compiled.cache_hit
    assert run_jit(compiled) == EXPECTED
    assert cache.stats()["corrupt"] == 1
    # The planted entry is gone; what is there now is our own, authenticated compile.
    assert planted.read_bytes() != old_format(evil_object())
    assert jit.compile_program(CODE, cache=cache).cache_hit


@pytest.mark.parametrize("forgery", ["random-key", "other-cache-key", "no-key"])
def test_entry_with_a_forged_authenticator_is_never_executed(tmp_path, forgery):
    cache = CompileCache(tmp_path)
    cache.check()                                    # creates the folder's key
    key = entry_key(cache)
    evil = evil_object()
    if forgery == "random-key":
        # The current format, authenticated with a key the attacker made up.
        blob = cache._pack(secrets.token_bytes(32), key, evil)
    elif forgery == "other-cache-key":
        # A genuine entry of ours for another program, renamed to this program's key: the
        # HMAC covers the cache key, so it does not transfer.
        other = CompileCache(tmp_path)
        other_key = other.key(jit.cache_key_parts(EVIL, 2, True))
        jit.compile_program(EVIL, cache=other)
        blob = (tmp_path / (other_key + ".o")).read_bytes()
    else:
        blob = cache._pack(b"", key, evil)
    planted = plant(tmp_path, key + ".o", blob)
    compiled = jit.compile_program(CODE, cache=cache)
    assert not compiled.cache_hit and run_jit(compiled) == EXPECTED
    assert cache.stats()["corrupt"] == 1
    assert planted.read_bytes() != blob


@pytest.mark.parametrize("mode", [0o644, 0o660, 0o606])
def test_entry_with_an_open_mode_is_refused_even_when_authentic(tmp_path, mode):
    cache = CompileCache(tmp_path)
    cache.check()
    key = entry_key(cache)
    blob = cache._pack(cache._ready()[1], key, evil_object())   # authentic, but not private
    planted = plant(tmp_path, key + ".o", blob, mode)
    compiled = jit.compile_program(CODE, cache=cache)
    assert not compiled.cache_hit and run_jit(compiled) == EXPECTED
    assert stat.S_IMODE(planted.stat().st_mode) == 0o600 and planted.read_bytes() != blob


@needs_root
def test_entry_owned_by_another_user_is_refused(tmp_path):
    cache = CompileCache(tmp_path)
    cache.check()
    key = entry_key(cache)
    blob = cache._pack(cache._ready()[1], key, evil_object())
    planted = plant(tmp_path, key + ".o", blob)
    os.chown(planted, NOBODY, NOBODY)
    compiled = jit.compile_program(CODE, cache=cache)
    assert not compiled.cache_hit and run_jit(compiled) == EXPECTED
    assert planted.stat().st_uid == os.geteuid()


def test_symlinked_entry_is_refused(tmp_path):
    cache = CompileCache(tmp_path / "c")
    cache.check()
    key = entry_key(cache)
    target = tmp_path / "elsewhere"
    target.write_bytes(cache._pack(cache._ready()[1], key, evil_object()))
    os.chmod(target, 0o600)
    (tmp_path / "c" / (key + ".o")).symlink_to(target)
    compiled = jit.compile_program(CODE, cache=cache)
    assert not compiled.cache_hit and run_jit(compiled) == EXPECTED


def assert_refused(cache: CompileCache, directory: Path, words: str):
    with pytest.warns(CacheWarning, match=words):
        compiled = jit.compile_program(CODE, cache=cache)
    assert not compiled.cache_hit and run_jit(compiled) == EXPECTED
    assert cache.refused and words in cache.refused
    with pytest.raises(UntrustedCache, match=words):
        cache.check()
    # Nothing is read or written there, and the refusal is reported once per process.
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        again = jit.compile_program(CODE, cache=CompileCache(directory))
    assert not again.cache_hit
    assert not list(directory.glob("*.o"))


def test_world_writable_folder_is_refused(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o777)
    # Even an entry that would otherwise pass is not looked at: the folder is not private.
    assert_refused(CompileCache(folder), folder, "writable by other users")


def test_group_writable_folder_is_refused(tmp_path):
    folder = tmp_path / "group"
    folder.mkdir()
    os.chmod(folder, 0o770)
    assert_refused(CompileCache(folder), folder, "writable by other users")


@needs_root
def test_folder_owned_by_another_user_is_refused(tmp_path):
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    os.chown(folder, NOBODY, NOBODY)
    assert_refused(CompileCache(folder), folder, f"owned by uid {NOBODY}")


def test_symlinked_folder_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    assert_refused(CompileCache(link), link, "symbolic link")
    assert not list(real.iterdir())


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_key_file_with_an_open_mode_disables_the_cache(tmp_path, mode):
    CompileCache(tmp_path).check()
    os.chmod(tmp_path / KEY_FILE, mode)
    assert_refused(CompileCache(tmp_path), tmp_path, "not 0600")


@needs_root
def test_key_file_owned_by_another_user_disables_the_cache(tmp_path):
    CompileCache(tmp_path).check()
    os.chown(tmp_path / KEY_FILE, NOBODY, NOBODY)
    assert_refused(CompileCache(tmp_path), tmp_path, f"owned by uid {NOBODY}")


def test_new_folder_key_and_entries_are_private(tmp_path):
    folder = tmp_path / "a" / "b"
    cache = CompileCache(folder)
    jit.compile_program(CODE, cache=cache)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    key_file = folder / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and key_file.stat().st_size == 32
    (entry,) = folder.glob("*.o")
    st = entry.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid()


def test_own_readable_folder_is_tightened_not_refused(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    os.chmod(folder, 0o755)
    cache = CompileCache(folder)
    jit.compile_program(CODE, cache=cache)
    assert cache.refused is None and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert jit.compile_program(CODE, cache=cache).cache_hit


def test_concurrent_key_creation_agrees_on_one_key(tmp_path):
    # Two caches racing on a fresh folder: link() makes the first key win for both.
    a, b = CompileCache(tmp_path), CompileCache(tmp_path)
    a.check()
    b.check()
    assert a._ready()[1] == b._ready()[1] == (tmp_path / KEY_FILE).read_bytes()
    jit.compile_program(CODE, cache=a)
    assert jit.compile_program(CODE, cache=b).cache_hit
