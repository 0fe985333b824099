"""The on-disk cache of built libraries: ~/.cache/fjit (or $FJIT_CACHE_DIR).

An entry is named by a hash of the source and the toolchain (compiler, version, flags,
resolved -march), and the library embeds that hash; an entry that fails to load, has another
hash inside, is not owned by this user, or is writable by others is rebuilt, never trusted.
Builds write to a private temporary name and rename atomically, so processes racing on the
same Program each end up with a complete library.
"""
from __future__ import annotations

import hashlib
import os
import stat
import tempfile

_checked_dirs = set()


def cache_dir() -> str:
    path = os.environ.get("FJIT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "fjit")
    if path not in _checked_dirs:
        os.makedirs(path, mode=0o700, exist_ok=True)
        _checked_dirs.add(path)
    return path


def entry_key(source: str, toolchain_key: str) -> str:
    return hashlib.sha256((toolchain_key + "\0" + source).encode()).hexdigest()[:32]


def trustworthy(path: str) -> bool:
    """Owned by us and not writable by anyone else."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_uid == os.getuid() and not (st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def build_into_cache(key: str, source: str, toolchain) -> str:
    """Compile `source` and publish it as the cache entry for `key`; returns its path."""
    directory = cache_dir()
    final = os.path.join(directory, f"{key}.so")
    fd, src_path = tempfile.mkstemp(prefix=f"{key}-", suffix=".c", dir=directory)
    with os.fdopen(fd, "w") as f:
        f.write(source)
    tmp_so = src_path[:-2] + ".so"
    try:
        toolchain.compile(src_path, tmp_so)
        os.chmod(tmp_so, 0o700)
        os.replace(tmp_so, final)
    finally:
        for leftover in (tmp_so,):
            if os.path.exists(leftover):
                os.unlink(leftover)
        keep = os.environ.get("FJIT_KEEP_SOURCE")
        if keep:
            os.replace(src_path, os.path.join(directory, f"{key}.c"))
        else:
            os.unlink(src_path)
    return final
