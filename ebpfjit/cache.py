"""On-disk cache of JIT object code, shared by processes.

Key: sha256 of everything the object code depends on (bytecode, ebpfjit and LLVM versions,
target triple + host CPU name/features, opt level, bounds-check flag, lowering version, runtime
state layout; see `jit.cache_key_parts`). Location: `$EBPFJIT_CACHE_DIR`, else
`$XDG_CACHE_HOME/ebpfjit`, else `~/.cache/ebpfjit`. `EBPFJIT_CACHE=0` (or `cache=False`)
disables it.

Each entry is `<key>.o`: a 48-byte header (magic, format version, payload length, sha256 of the
payload) followed by the object bytes. Writes go to a temporary file in the same directory and
are renamed into place (`os.replace`), so readers see a whole entry or none, and concurrent
writers of the same key are harmless. An entry whose header or checksum does not match is
deleted and reported as a miss: corrupt object code is never loaded.

Must not import: ebpfjit.jit (it imports this module).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import tempfile
import threading
from pathlib import Path

log = logging.getLogger("ebpfjit.cache")

MAGIC = b"EBPFJITO"
FORMAT_VERSION = 1
HEADER = struct.Struct("<8sIIQ32s")   # magic, format, reserved, payload length, sha256(payload)
SUFFIX = ".o"


def default_directory() -> Path:
    env = os.environ.get("EBPFJIT_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "ebpfjit"


def cache_enabled() -> bool:
    return os.environ.get("EBPFJIT_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


class CompileCache:
    """A directory of object-code entries. Thread- and process-safe; never raises on I/O."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory) if directory is not None else default_directory()
        self._lock = threading.Lock()
        self._stats = {"hits": 0, "misses": 0, "writes": 0, "corrupt": 0, "errors": 0}

    def _count(self, name: str) -> None:
        with self._lock:
            self._stats[name] += 1

    def stats(self) -> dict[str, int]:
        """Counters: hits, misses, writes, corrupt (entries rejected and deleted), errors."""
        with self._lock:
            return dict(self._stats)

    def stats_json(self) -> str:
        return json.dumps(self.stats(), sort_keys=True)

    @staticmethod
    def key(parts: dict) -> str:
        """Hex sha256 of the canonical JSON of `parts`."""
        text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.directory / (key + SUFFIX)

    def get(self, key: str) -> bytes | None:
        """The object bytes stored under `key`, or None (missing or corrupt: deleted)."""
        path = self.path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            self._count("misses")
            return None
        except OSError as exc:
            log.debug("ebpfjit cache: cannot read %s: %s", path, exc)
            self._count("errors")
            self._count("misses")
            return None
        payload = self._unpack(blob)
        if payload is None:
            log.debug("ebpfjit cache: corrupt entry %s deleted", path.name)
            self._count("corrupt")
            self._count("misses")
            try:
                path.unlink()
            except OSError:
                pass
            return None
        self._count("hits")
        log.debug("ebpfjit cache hit %s (%d bytes)", key[:16], len(payload))
        return payload

    @staticmethod
    def _unpack(blob: bytes) -> bytes | None:
        if len(blob) < HEADER.size:
            return None
        magic, version, _, length, digest = HEADER.unpack_from(blob)
        payload = blob[HEADER.size:]
        if magic != MAGIC or version != FORMAT_VERSION or length != len(payload):
            return None
        if hashlib.sha256(payload).digest() != digest:
            return None
        return payload

    def put(self, key: str, payload: bytes) -> bool:
        """Store `payload` atomically; False (and a debug log line) if the disk refuses."""
        payload = bytes(payload)
        header = HEADER.pack(MAGIC, FORMAT_VERSION, 0, len(payload),
                             hashlib.sha256(payload).digest())
        tmp = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=SUFFIX, dir=self.directory)
            with os.fdopen(fd, "wb") as f:
                f.write(header)
                f.write(payload)
            os.replace(tmp, self.path(key))
            tmp = None
        except OSError as exc:
            log.debug("ebpfjit cache: cannot write %s: %s", self.path(key), exc)
            self._count("errors")
            return False
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
        self._count("writes")
        log.debug("ebpfjit cache store %s (%d bytes)", key[:16], len(payload))
        return True

    def clear(self) -> int:
        """Delete every entry; returns how many were removed."""
        removed = 0
        try:
            entries = list(self.directory.glob("*" + SUFFIX))
        except OSError:
            return 0
        for entry in entries:
            try:
                entry.unlink()
                removed += 1
            except OSError:
                pass
        return removed


_defaults: dict[Path, CompileCache] = {}
_defaults_lock = threading.Lock()


def default_cache() -> CompileCache | None:
    """The process's cache for the configured directory, or None when disabled."""
    if not cache_enabled():
        return None
    directory = default_directory()
    with _defaults_lock:
        cache = _defaults.get(directory)
        if cache is None:
            cache = _defaults[directory] = CompileCache(directory)
        return cache


def resolve_cache(cache) -> CompileCache | None:
    """None/True: the default cache (unless EBPFJIT_CACHE=0); False: none; a path or a
    CompileCache: that one."""
    if cache is None or cache is True:
        return default_cache()
    if cache is False:
        return None
    if isinstance(cache, CompileCache):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return CompileCache(cache)
    raise TypeError(f"cache must be None, a bool, a path or a CompileCache, not {cache!r}")


__all__ = ["CompileCache", "cache_enabled", "default_cache", "default_directory", "resolve_cache"]
