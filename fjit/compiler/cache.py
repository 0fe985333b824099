"""The on-disk cache of built libraries: ~/.cache/fjit (or $FJIT_CACHE_DIR).

What it promises (ccache's guarantees):
- An entry is named by a hash of the source and the toolchain, and ends in a trailer written
  with it: the key, the library's size and an HMAC-SHA256 of both under a secret only this
  cache's owner can read.  `verified_entry` checks all of it BEFORE anything is loaded, so a
  truncated, corrupt, stale or foreign library (one this user did not write under this key)
  is never `dlopen`ed -- its constructors never run -- and is rebuilt.
- The directory is created 0700; one that others can write, that is not ours, or that cannot
  be created or written (read-only, full, missing parent) is not used: one warning, and this
  process builds into a private temporary cache instead of failing.
- Builds write to private temporary names (`.tmp-<host>-<pid>-...`) and rename atomically;
  temporary files are removed on failure, and those of killed processes on the next start.
- The cache is bounded (`config.cache_max_size`): hits refresh an entry's time, and when a
  build pushes the tracked total past the bound the least recently used entries go.
"""
from __future__ import annotations

import atexit
import errno
import hashlib
import hmac
import os
import re
import shutil
import socket
import stat
import struct
import tempfile
import threading
import time
import warnings

from ..config import config

_MAGIC = b"FJITLIB1"
_TRAILER = struct.Struct("<8s32sQ32s")  # magic, key, size of the library before it, HMAC
_SECRET_NAME = ".fjit-secret"
_TEMP_PREFIX = ".tmp-"
STALE_TEMP_SECONDS = 3600  # a temporary file this old is a leftover, whoever made it
_OLD_TEMP = re.compile(r"^[0-9a-f]{32}-\w{8}\.(c|so)$|\.json\.\d+\.tmp$")  # earlier versions'

_lock = threading.RLock()
_resolved: dict = {}   # configured directory -> the directory this process uses for it
_secrets: dict = {}    # directory -> its secret
_tracked: dict = {}    # directory -> bytes this process believes it holds
_private: list = []    # this process's fallback directory, made on first need
_warned: set = set()


class BuildError(RuntimeError):
    """A target's toolchain could not build a library (its message says why)."""


class CacheWarning(RuntimeWarning):
    """The compile cache cannot be used safely; fjit carries on with a private one."""


def configured_dir() -> str:
    return config.cache_dir


def cache_dir() -> str:
    """The directory this process builds into: the configured one when it is safe and
    writable, else (after one warning) a private temporary one."""
    path = configured_dir()
    directory = _resolved.get(path)
    if directory is None:
        with _lock:
            directory = _resolved.get(path)
            if directory is None:
                problem = _problem_with(path)
                directory = _fall_back(path, problem) if problem else path
                if not problem:
                    sweep_leftovers(path)
                _resolved[path] = directory
    return directory


def _problem_with(path) -> str | None:
    """Why `path` cannot be this user's cache (None: it can); creates it 0700 if missing."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.stat(path)
    except OSError as e:
        return f"cannot be created ({e.strerror or e})"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if st.st_uid != os.getuid():
        return f"belongs to another user (uid {st.st_uid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return (f"is writable by other users (mode {stat.S_IMODE(st.st_mode):04o}; "
                f"`chmod go-w {path}` makes it usable again)")
    try:
        _secret(path)  # creates the secret on first use: also proves the directory writable
    except OSError as e:
        return f"is not writable ({e.strerror or e})"
    return None


def _fall_back(path, why) -> str:
    with _lock:
        if not _private:
            _private.append(tempfile.mkdtemp(prefix="fjit-cache-"))  # 0700
            atexit.register(shutil.rmtree, _private[0], True)
        private = _private[0]
        if path not in _warned:
            _warned.add(path)
            warnings.warn(f"fjit: the compile cache {path} {why}; this process compiles into "
                          f"the private temporary cache {private} instead (nothing built now "
                          "is reused by later processes; set FJIT_CACHE_DIR to choose "
                          "another directory)", CacheWarning, stacklevel=4)
    return private


def using_fallback(directory) -> bool:
    return bool(_private) and directory == _private[0]


def entry_key(source: str, toolchain_key: str) -> str:
    return hashlib.sha256((toolchain_key + "\0" + source).encode()).hexdigest()[:32]


def entry_path(directory, key) -> str:
    return os.path.join(directory, f"{key}.so")


# -- the secret and the trailer ------------------------------------------------------------

def _secret(directory) -> bytes:
    secret = _secrets.get(directory)
    if secret is None:
        path = os.path.join(directory, _SECRET_NAME)
        secret = _read_secret(path)
        if secret is None:
            tmp = temp_path(directory, "secret")
            try:
                _write_new(tmp, os.urandom(32), mode=0o600)
                try:
                    os.link(tmp, path)  # never replaces a secret another process just made
                except FileExistsError:
                    if _read_secret(path) is None:  # a broken one: replace it
                        os.replace(tmp, path)
            finally:
                _remove(tmp)
            secret = _read_secret(path)
            if secret is None:
                raise OSError(errno.EACCES, f"cannot keep a secret in {directory}")
        _secrets[directory] = secret
    return secret


def _read_private(path, limit: int = -1) -> bytes | None:
    """The bytes of `path` if it is a regular file (not a link) that this user owns and no one
    else can write; else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid()
                or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
            return None
        return f.read(limit)


def _read_secret(path) -> bytes | None:
    data = _read_private(path, 33)
    return data if data is not None and len(data) == 32 else None


def _mac(secret, key: str, library: bytes) -> bytes:
    return hmac.new(secret, key.encode() + struct.pack("<Q", len(library)) + library,
                    hashlib.sha256).digest()


def _trailer(secret, key, library: bytes) -> bytes:
    return _TRAILER.pack(_MAGIC, key.encode(), len(library), _mac(secret, key, library))


def intact(data: bytes, key: str, secret: bytes) -> bool:
    """`data` (a whole entry) is a library this cache's owner wrote under `key`."""
    if len(data) < _TRAILER.size or len(key) != 32:
        return False
    magic, written_key, size, mac = _TRAILER.unpack_from(data, len(data) - _TRAILER.size)
    library = memoryview(data)[:len(data) - _TRAILER.size]
    return (magic == _MAGIC and written_key == key.encode() and size == len(library)
            and hmac.compare_digest(mac, _mac(secret, key, library)))


def verified_entry(key: str) -> str | None:
    """The path of the entry for `key` if it is intact (and its time refreshed), else None.
    Reads and checks the file; never loads it."""
    directory = cache_dir()
    path = entry_path(directory, key)
    data = _read_private(path)
    if data is None:
        return None
    try:
        if not intact(data, key, _secret(directory)):
            return None
    except OSError:
        return None
    try:
        os.utime(path)  # least recently used goes first
    except OSError:
        pass
    return path


def verified_payload(key: str) -> bytes | None:
    """The bytes an intact entry for `key` holds (a cubin, loaded from memory rather than
    from the path), else None."""
    path = verified_entry(key)
    data = _read_private(path) if path else None
    if data is None or not intact(data, key, _secret(os.path.dirname(path))):
        return None
    return data[:len(data) - _TRAILER.size]


# -- building ------------------------------------------------------------------------------

_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
_NO_ROOM_TEXT = ("No space left on device", "Disk quota exceeded", "Read-only file system",
                 "Permission denied")


def _no_room(error) -> bool:
    """The cache directory, not the source, made the build fail (full, read-only, ...)."""
    if isinstance(error, OSError):
        return error.errno in _NO_ROOM
    return any(text in str(error) for text in _NO_ROOM_TEXT)


def build_into_cache(key: str, source, toolchain, unit_flags=None) -> str:
    """Compile `source` (a translation unit, or a list of them making one library; each
    unit's extra compiler flags in `unit_flags`) and publish it as the cache entry for
    `key`; returns its path.  A
    directory that turns out full or unwritable is given up (one warning) for the private
    one, and the build is tried there."""
    directory = cache_dir()
    try:
        return _build(directory, key, source, toolchain, unit_flags)
    except (OSError, BuildError) as e:
        if using_fallback(directory) or not _no_room(e):
            raise
        reason = e.strerror if isinstance(e, OSError) and e.strerror else next(
            (t for t in _NO_ROOM_TEXT if t in str(e)), "it refused a write")
        with _lock:
            _resolved[configured_dir()] = _fall_back(
                configured_dir(), f"cannot take more entries ({reason})")
        return _build(cache_dir(), key, source, toolchain, unit_flags)


def _build(directory, key, source, toolchain, unit_flags=None) -> str:
    units = [source] if isinstance(source, str) else list(source)
    final = entry_path(directory, key)
    stem = temp_path(directory, key)
    src_paths = [stem + (".c" if len(units) == 1 else f".{u}.c") for u in range(len(units))]
    tmp_so = stem + ".so"
    try:
        for path, unit in zip(src_paths, units):
            _write_new(path, unit.encode())
        if unit_flags is None:
            toolchain.compile(src_paths, tmp_so)
        else:
            toolchain.compile(src_paths, tmp_so, unit_flags)
        with open(tmp_so, "rb") as f:
            library = f.read()
        trailer = _trailer(_secret(directory), key, library)
        with open(tmp_so, "ab") as f:
            f.write(trailer)
        os.chmod(tmp_so, 0o700)
        os.replace(tmp_so, final)
        added = len(library) + len(trailer)
        if config.keep_source:
            for u, path in enumerate(src_paths):
                name = f"{key}.c" if len(units) == 1 else f"{key}.{u}.c"
                os.replace(path, os.path.join(directory, name))
            added += sum(len(unit) for unit in units)
    finally:
        for path in src_paths:
            _remove(path)
        _remove(tmp_so)
    note_added(directory, added)
    return final


def temp_path(directory, what) -> str:
    """A fresh name for a temporary file, which says who made it (for `sweep_leftovers`)."""
    token = os.urandom(4).hex()
    return os.path.join(directory,
                        f"{_TEMP_PREFIX}{socket.gethostname()}-{os.getpid()}-{token}-{what}")


def write_atomically(path, data: bytes) -> bool:
    """Publish `data` at `path` all at once (readers see the old file or the new one)."""
    tmp = temp_path(os.path.dirname(path), os.path.basename(path))
    try:
        _write_new(tmp, data)
        os.replace(tmp, path)
        return True
    except OSError:
        return False
    finally:
        _remove(tmp)


def _write_new(path, data: bytes, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def sweep_leftovers(directory, now=None):
    """Remove temporary files of processes that died (killed during a build, say): those of
    a dead process on this host, and any older than STALE_TEMP_SECONDS."""
    now = time.time() if now is None else now
    host = socket.gethostname()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if not (name.startswith(_TEMP_PREFIX) or _OLD_TEMP.search(name)):
            continue
        try:
            old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMP_SECONDS
        except OSError:
            continue
        if old or (name.startswith(f"{_TEMP_PREFIX}{host}-")
                   and not _alive(name[len(_TEMP_PREFIX) + len(host) + 1:].split("-")[0])):
            _remove(entry.path)


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except (PermissionError, OverflowError):
        return True
    return True


# -- the size bound ------------------------------------------------------------------------

def _entries(directory):
    """(time, size, paths) of every entry: a library with its kept source, if any."""
    found = {}
    try:
        scan = list(os.scandir(directory))
    except OSError:
        return []
    for entry in scan:
        stem, dot, ext = entry.name.partition(".")
        if ext not in ("so", "c") or len(stem) != 32 or entry.name.startswith("."):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        when, size, paths = found.get(stem, (0.0, 0, []))
        found[stem] = (max(when, st.st_mtime) if ext == "so" else when, size + st.st_size,
                       paths + [entry.path])
    return list(found.values())


def note_added(directory, nbytes):
    """Count a new entry's bytes; past `config.cache_max_size`, evict down to 90% of it.
    The directory is scanned on this process's first build and on each eviction only."""
    limit = config.cache_max_size
    if not limit:
        return
    with _lock:
        total = _tracked.get(directory)
        total = sum(s for _, s, _ in _entries(directory)) if total is None else total + nbytes
        if total > limit:
            total = evict(directory, int(limit * 0.9))
        _tracked[directory] = total


def evict(directory, target) -> int:
    """Remove least recently used entries until at most `target` bytes remain; the total."""
    entries = sorted(_entries(directory), key=lambda e: e[0])
    total = sum(s for _, s, _ in entries)
    for _, size, paths in entries:
        if total <= target:
            break
        for path in paths:
            _remove(path)
        total -= size
    return total
