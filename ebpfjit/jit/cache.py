"""On-disk cache of JIT object code, shared by one user's processes.

Key: sha256 of everything the object code depends on (bytecode, ebpfjit and LLVM versions,
target triple + host CPU name/features, opt level, bounds-check flag, lowering version, runtime
state layout; see `jit.cache_key_parts`). Location: `$EBPFJIT_CACHE_DIR`, else
`$XDG_CACHE_HOME/ebpfjit`, else `~/.cache/ebpfjit`. `EBPFJIT_CACHE=0` (or `cache=False`)
disables it. `EBPFJIT_CACHE_MAX_BYTES` (bytes, or with a K/M/G suffix; default 256M) bounds its
size: when a write takes it over, the least recently used entries are deleted.

Trust. Cached object code is executed, so the cache must not accept anything another local
user wrote (a shared `XDG_CACHE_HOME`, a predictable path created first by someone else):
- the folder is created 0700; an existing one must be a real directory (not a symlink) owned by
  the effective user and not group/world-writable, else the cache is refused with a warning
  (once per folder and process) and the JIT compiles without it. Every file operation goes
  through a descriptor of the checked folder, so the folder cannot be swapped after the check;
- each entry `<key>.o` must be a regular file owned by the user with mode 0600;
- each entry carries an HMAC-SHA256 over the cache key and the payload, keyed by a per-user
  random key in `<folder>/hmac.key` (0600, created atomically: written in full, then hard-linked
  into place, so concurrent creators agree on one key). A key file with another owner or a
  group/world-accessible mode disables the cache. An entry that fails any check is deleted and
  the program recompiled: it is never loaded.
Writes go to a temporary file in the folder and are renamed into place, so readers see a whole
entry or none. A hit refreshes the entry's mtime (the LRU order).

Must not import: ebpfjit.jit (it imports this module).

Imports: (nothing)
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import stat
import struct
import threading
import warnings
from pathlib import Path

log = logging.getLogger("ebpfjit.cache")

MAGIC = b"EBPFJITO"
FORMAT_VERSION = 2              # 2: HMAC-SHA256 instead of a plain sha256 (v1 entries are refused)
HEADER = struct.Struct("<8sIIQ32s")   # magic, format, reserved, payload length, HMAC
SUFFIX = ".o"
KEY_FILE = "hmac.key"
KEY_BYTES = 32
TMP_PREFIX = ".tmp-"
DEFAULT_MAX_BYTES = 256 << 20
# Entry writes between two full rescans of the folder (other processes write too).
RESCAN_EVERY = 64
_OPEN_FLAGS = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class CacheWarning(UserWarning):
    """The cache folder or its key is not private to this user; the cache is not used."""


class UntrustedCache(Exception):
    """Raised internally (and by `CompileCache.check()`) with the reason a folder is refused."""


def default_directory() -> Path:
    env = os.environ.get("EBPFJIT_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "ebpfjit"


def cache_enabled() -> bool:
    return os.environ.get("EBPFJIT_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def parse_size(text: str) -> int:
    """`"1048576"`, `"512K"`, `"256M"`, `"1G"` (binary units) -> bytes."""
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]?)(?:i?[bB])?\s*", text)
    if not m:
        raise ValueError(f"not a size: {text!r} (bytes, or a number with K, M or G)")
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]


def default_max_bytes() -> int:
    text = os.environ.get("EBPFJIT_CACHE_MAX_BYTES")
    if not text:
        return DEFAULT_MAX_BYTES
    try:
        return parse_size(text)
    except ValueError as exc:
        log.warning("ebpfjit cache: EBPFJIT_CACHE_MAX_BYTES ignored: %s", exc)
        return DEFAULT_MAX_BYTES


_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(directory: Path, reason: str) -> None:
    with _warned_lock:
        if str(directory) in _warned:
            return
        _warned.add(str(directory))
    message = f"ebpfjit cache disabled: {reason}; compiling without the cache"
    log.debug("%s", message)        # the warning is the user-visible report (once)
    warnings.warn(message, CacheWarning, stacklevel=4)


def _private_file(st: os.stat_result, what: str) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise UntrustedCache(f"{what} is not a regular file")
    if st.st_uid != os.geteuid():
        raise UntrustedCache(f"{what} is owned by uid {st.st_uid}, not by this user "
                             f"(uid {os.geteuid()})")
    if st.st_mode & 0o077:
        raise UntrustedCache(f"{what} has mode {stat.S_IMODE(st.st_mode):04o}, not 0600")


class CompileCache:
    """A private directory of authenticated object-code entries. Thread- and process-safe;
    never raises on I/O (a refused or unusable folder makes every lookup a miss)."""

    def __init__(self, directory: str | os.PathLike | None = None, max_bytes: int | None = None):
        self.directory = Path(directory) if directory is not None else default_directory()
        self.max_bytes = default_max_bytes() if max_bytes is None else int(max_bytes)
        self._lock = threading.Lock()
        self._stats = {"hits": 0, "misses": 0, "writes": 0, "corrupt": 0, "errors": 0,
                       "evicted": 0}
        self._fd: int | None = None        # descriptor of the checked folder
        self._key: bytes | None = None
        self.refused: str | None = None    # why the folder is not trusted (then never used)
        self._size_estimate: int | None = None
        self._writes_since_scan = 0

    def __del__(self):
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def _count(self, name: str) -> None:
        with self._lock:
            self._stats[name] += 1

    def stats(self) -> dict[str, int]:
        """Counters: hits, misses, writes, corrupt (entries rejected and deleted), errors,
        evicted (entries removed by the size limit)."""
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

    # --- the folder and its key ------------------------------------------------------------

    def _open_dir(self) -> int:
        """Create (0700) or check the folder; a descriptor of it. UntrustedCache if it is not
        this user's private folder, OSError if it cannot be made."""
        path = self.directory
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                pass
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _OPEN_FLAGS)
        except OSError as exc:
            if os.path.islink(path):
                raise UntrustedCache(f"{path} is a symbolic link") from None
            raise exc
        try:
            st = os.fstat(fd)
            if st.st_uid != os.geteuid():
                raise UntrustedCache(f"{path} is owned by uid {st.st_uid}, not by this user "
                                     f"(uid {os.geteuid()})")
            if st.st_mode & 0o022:
                raise UntrustedCache(f"{path} is writable by other users (mode "
                                     f"{stat.S_IMODE(st.st_mode):04o}); use a private folder "
                                     f"(chmod 700) or set EBPFJIT_CACHE_DIR")
            if st.st_mode & 0o077:
                os.fchmod(fd, 0o700)       # ours and not writable by others: just tighten it
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _load_key(self, fd: int) -> bytes:
        what = f"{self.directory / KEY_FILE}"
        for _ in range(3):
            try:
                kfd = os.open(KEY_FILE, os.O_RDONLY | _OPEN_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                self._create_key(fd)
                continue
            except OSError as exc:
                if os.path.islink(self.directory / KEY_FILE):
                    raise UntrustedCache(f"{what} is a symbolic link") from None
                raise exc
            try:
                _private_file(os.fstat(kfd), what)
                key = os.read(kfd, KEY_BYTES + 1)
            finally:
                os.close(kfd)
            if len(key) == KEY_BYTES:
                return key
            # Ours and private but malformed (a crash of an old writer): replace it. Entries
            # signed with any previous key then fail their check and are recompiled.
            self._create_key(fd, replace=True)
        raise OSError(f"cannot establish {what}")

    @staticmethod
    def _create_key(fd: int, replace: bool = False) -> None:
        import secrets
        tmp = f"{TMP_PREFIX}key-{os.getpid()}-{secrets.token_hex(8)}"
        tfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o600, dir_fd=fd)
        try:
            with os.fdopen(tfd, "wb") as f:
                f.write(secrets.token_bytes(KEY_BYTES))
            if replace:
                os.replace(tmp, KEY_FILE, src_dir_fd=fd, dst_dir_fd=fd)
            else:
                try:        # link() never overwrites: the first creator's key wins
                    os.link(tmp, KEY_FILE, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
                except FileExistsError:
                    pass
        finally:
            try:
                os.unlink(tmp, dir_fd=fd)
            except OSError:
                pass

    def _ready(self) -> tuple[int, bytes] | None:
        """(folder descriptor, HMAC key), or None when the cache cannot be used."""
        with self._lock:
            if self.refused is not None:
                return None
            if self._fd is not None:
                return self._fd, self._key
            fd = None
            try:
                fd = self._open_dir()
                key = self._load_key(fd)
            except UntrustedCache as exc:
                if fd is not None:
                    os.close(fd)
                self.refused = str(exc)
                _warn_once(self.directory, self.refused)
                return None
            except OSError as exc:
                if fd is not None:
                    os.close(fd)
                log.debug("ebpfjit cache: cannot use %s: %s", self.directory, exc)
                self._stats["errors"] += 1
                return None
            self._fd, self._key = fd, key
            return fd, key

    def check(self) -> None:
        """Raise UntrustedCache (with the reason) if the folder is refused, OSError if unusable."""
        if self._ready() is None:
            if self.refused is not None:
                raise UntrustedCache(self.refused)
            raise OSError(f"cannot use the cache folder {self.directory}")

    # --- entries ---------------------------------------------------------------------------

    @staticmethod
    def _mac(secret: bytes, key: str, head: bytes, payload: bytes) -> bytes:
        m = hmac.new(secret, b"ebpfjit-cache\0", hashlib.sha256)
        m.update(key.encode() + b"\0")
        m.update(head)
        m.update(payload)
        return m.digest()

    def _pack(self, secret: bytes, key: str, payload: bytes) -> bytes:
        head = HEADER.pack(MAGIC, FORMAT_VERSION, 0, len(payload), bytes(32))[:-32]
        return head + self._mac(secret, key, head, payload) + payload

    def _unpack(self, secret: bytes, key: str, blob: bytes) -> bytes | None:
        if len(blob) < HEADER.size:
            return None
        magic, version, _, length, mac = HEADER.unpack_from(blob)
        payload = blob[HEADER.size:]
        if magic != MAGIC or version != FORMAT_VERSION or length != len(payload):
            return None
        expected = self._mac(secret, key, blob[:HEADER.size - 32], payload)
        return payload if hmac.compare_digest(mac, expected) else None

    def _discard(self, fd: int, name: str, why: str) -> None:
        log.debug("ebpfjit cache: entry %s deleted: %s", name, why)
        self._count("corrupt")
        try:
            os.unlink(name, dir_fd=fd)
        except OSError:
            pass

    def get(self, key: str) -> bytes | None:
        """The object bytes stored under `key`, or None (missing, refused, or failing a check:
        then deleted)."""
        ready = self._ready()
        if ready is None:
            self._count("misses")
            return None
        fd, secret = ready
        name = key + SUFFIX
        try:
            efd = os.open(name, os.O_RDONLY | _OPEN_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            self._count("misses")
            return None
        except OSError as exc:       # ELOOP: a symlink planted as an entry
            self._discard(fd, name, str(exc))
            self._count("misses")
            return None
        try:
            try:
                _private_file(os.fstat(efd), name)
            except UntrustedCache as exc:
                self._discard(fd, name, str(exc))
                self._count("misses")
                return None
            with os.fdopen(efd, "rb", closefd=False) as f:
                blob = f.read()
            payload = self._unpack(secret, key, blob)
            if payload is None:
                self._discard(fd, name, "bad header or authenticator")
                self._count("misses")
                return None
            try:
                os.utime(efd)        # LRU order: a hit makes the entry the newest
            except OSError:
                pass
        except OSError as exc:
            log.debug("ebpfjit cache: cannot read %s: %s", name, exc)
            self._count("errors")
            self._count("misses")
            return None
        finally:
            os.close(efd)
        self._count("hits")
        log.debug("ebpfjit cache hit %s (%d bytes)", key[:16], len(payload))
        return payload

    def put(self, key: str, payload: bytes) -> bool:
        """Store `payload` atomically (mode 0600); False (and a debug log line) if the folder is
        refused or the disk refuses."""
        ready = self._ready()
        if ready is None:
            return False
        fd, secret = ready
        blob = self._pack(secret, key, bytes(payload))
        import secrets  # (writes only: a hit does not import it)
        tmp = f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}{SUFFIX}"
        try:
            tfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o600,
                          dir_fd=fd)
            try:
                with os.fdopen(tfd, "wb") as f:
                    f.write(blob)
                os.replace(tmp, key + SUFFIX, src_dir_fd=fd, dst_dir_fd=fd)
                tmp = None
            finally:
                if tmp is not None:
                    try:
                        os.unlink(tmp, dir_fd=fd)
                    except OSError:
                        pass
        except OSError as exc:
            log.debug("ebpfjit cache: cannot write %s: %s", self.path(key), exc)
            self._count("errors")
            return False
        self._count("writes")
        log.debug("ebpfjit cache store %s (%d bytes)", key[:16], len(payload))
        self._account(fd, len(blob))
        return True

    # --- size limit ------------------------------------------------------------------------

    def _scan(self, fd: int) -> list[tuple[float, int, str]]:
        """(mtime, size, name) of every entry, oldest first."""
        found = []
        with os.scandir(fd) as it:
            for e in it:
                if not e.name.endswith(SUFFIX) or e.name.startswith("."):
                    continue
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                found.append((st.st_mtime, st.st_size, e.name))
        found.sort()
        return found

    def _account(self, fd: int, added: int) -> None:
        """Keep the folder under max_bytes: a running estimate, a rescan when it says the limit
        is passed (or every RESCAN_EVERY writes), then delete the oldest entries down to 90%."""
        with self._lock:
            self._writes_since_scan += 1
            if self._size_estimate is not None:
                self._size_estimate += added
                if (self._size_estimate <= self.max_bytes
                        and self._writes_since_scan < RESCAN_EVERY):
                    return
            self._writes_since_scan = 0
        try:
            entries = self._scan(fd)
        except OSError:
            return
        total = sum(size for _, size, _ in entries)
        evicted = 0
        if total > self.max_bytes:
            target = self.max_bytes * 9 // 10
            for _, size, name in entries[:-1]:   # never the entry just written
                if total <= target:
                    break
                try:
                    os.unlink(name, dir_fd=fd)
                except FileNotFoundError:
                    pass
                except OSError:
                    continue
                total -= size
                evicted += 1
        with self._lock:
            self._size_estimate = total
            self._stats["evicted"] += evicted
        if evicted:
            log.debug("ebpfjit cache: evicted %d entries (limit %d bytes)", evicted, self.max_bytes)

    # --- maintenance -----------------------------------------------------------------------

    def info(self) -> dict:
        """directory, trusted, refused (reason or None), entries, bytes, max_bytes, and this
        process's counters."""
        out = {"directory": str(self.directory), "max_bytes": self.max_bytes, "entries": 0,
               "bytes": 0, "trusted": False, "refused": None}
        ready = self._ready()
        if ready is None:
            out["refused"] = self.refused or f"cannot open {self.directory}"
        else:
            out["trusted"] = True
            entries = self._scan(ready[0])
            out["entries"] = len(entries)
            out["bytes"] = sum(size for _, size, _ in entries)
        out.update(self.stats())
        return out

    def clear(self) -> int:
        """Delete every entry (and stale temporary files); returns how many entries were
        removed. The key stays. A refused folder is left alone (0)."""
        ready = self._ready()
        if ready is None:
            return 0
        fd = ready[0]
        removed = 0
        try:
            names = os.listdir(fd)
        except OSError:
            return 0
        for name in names:
            if not (name.endswith(SUFFIX) or name.startswith(TMP_PREFIX)):
                continue
            try:
                os.unlink(name, dir_fd=fd)
            except OSError:
                continue
            removed += not name.startswith(TMP_PREFIX)
        with self._lock:
            self._size_estimate = 0
        return removed


_defaults: dict[Path, CompileCache] = {}
_by_environment: dict[tuple, CompileCache] = {}
_defaults_lock = threading.Lock()


def default_cache() -> CompileCache | None:
    """The process's cache for the configured directory, or None when disabled."""
    if not cache_enabled():
        return None
    # What default_directory() reads: looked up first, so a hit builds no Path.
    where = (os.environ.get("EBPFJIT_CACHE_DIR"), os.environ.get("XDG_CACHE_HOME"),
             os.environ.get("HOME"))
    cache = _by_environment.get(where)
    if cache is not None:
        return cache
    directory = default_directory()
    with _defaults_lock:
        cache = _defaults.get(directory)
        if cache is None:
            cache = _defaults[directory] = CompileCache(directory)
        _by_environment[where] = cache
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


__all__ = ["CacheWarning", "CompileCache", "UntrustedCache", "cache_enabled", "default_cache",
           "default_directory", "default_max_bytes", "parse_size", "resolve_cache"]
