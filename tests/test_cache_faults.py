"""Faults injected into the compile cache: each must end in a correct result, a rebuilt entry
(or a private fallback cache with one warning), and never in loading what fjit did not
write."""
import errno
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import warnings
from collections import OrderedDict

import numpy as np
import pytest

import fjit
from fjit.compiler import cache
from fjit.compiler.targets.c import executable as backend, toolchain

pytestmark = pytest.mark.c_backend


@pytest.fixture
def cache_path(tmp_path, monkeypatch, set_option):
    """A fresh cache directory for this test (and fjit's memory of directories restored)."""
    path = tmp_path / "cache"
    set_option("cache_dir", str(path))
    monkeypatch.setattr(cache, "_resolved", {}, raising=False)
    monkeypatch.setattr(cache, "_warned", set(), raising=False)
    monkeypatch.setattr(cache, "_tracked", {}, raising=False)
    # and no library in memory: Programs that differ only in constants or sizes share one
    monkeypatch.setattr(backend, "_loaded_libraries", OrderedDict())
    return path


def _compiled(scale=3.0):
    program = fjit.make_program(lambda x: x * scale + 1.0)(np.ones(4, np.float32))
    compiled = backend.compile_program(program)
    backend._loaded_libraries.pop(compiled.key, None)  # not in memory: from disk or built
    return program, compiled


def _run_c(program):
    """Run `program` on a fresh executable; (result, how its library was found)."""
    backend._loaded_libraries.pop(backend.compile_program(program).key, None)
    exe = backend.CExecutable(program)
    return exe([np.arange(4, dtype=np.float32)])[0], exe.cache_state


def _expected(scale=3.0):
    return np.arange(4, dtype=np.float32) * np.float32(scale) + 1


def _entry(cache_path):
    (entry,) = [p for p in cache_path.iterdir() if p.suffix == ".so"]
    return entry



_PROGRAM = """
    import numpy as np, fjit, fjit.numpy as jnp
    print(float(fjit.jit(lambda x: jnp.sum(x * 2.5 + 1.0))(np.arange(6, dtype=np.float32))))
"""


def test_truncated_entry_is_rebuilt_not_loaded(tmp_path, run_fjit):
    first = run_fjit(_PROGRAM, tmp_path)
    assert first.returncode == 0, first.stderr
    entry = _entry(tmp_path)
    entry.write_bytes(entry.read_bytes()[:entry.stat().st_size // 2])  # SIGBUS if loaded
    again = run_fjit(_PROGRAM, tmp_path)
    assert again.returncode == 0, (again.returncode, again.stderr)
    assert "cache miss" in again.stderr and float(again.stdout) == 43.5
    key = entry.name[:-len(".so")]  # rebuilt whole: later processes load it
    assert cache.intact(entry.read_bytes(), key, cache._secret(str(tmp_path)))


_FOREIGN = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void planted(void) {
  FILE *f = fopen(getenv("FJIT_TEST_MARKER"), "w");
  if (f) { fputs("constructor ran", f); fclose(f); }
}
const char *fj_key(void) { return "%s"; }
int fj_program(void **b) { return 0; }
void fj_set_blas(void *s, void *d) {}
"""


def test_foreign_library_under_an_entry_name_never_runs(cache_path, tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    monkeypatch.setenv("FJIT_TEST_MARKER", str(marker))
    program, compiled = _compiled(3.5)
    source = tmp_path / "foreign.c"
    source.write_text(_FOREIGN % compiled.key)  # it even answers with the right key
    os.makedirs(cache_path, mode=0o700)
    target = os.path.join(cache_path, f"{compiled.key}.so")
    subprocess.run(["cc", "-shared", "-fPIC", str(source), "-o", target], check=True)
    os.chmod(target, 0o700)
    result, how = _run_c(program)
    assert not marker.exists(), "fjit loaded a library it did not write"
    assert how.startswith("built")  # rebuilt, and the rebuilt library loaded, not the old one
    np.testing.assert_array_equal(result, _expected(3.5))


def test_corrupt_entry_is_rebuilt(cache_path):
    program, compiled = _compiled(4.5)
    path = cache.build_into_cache(compiled.key, compiled.source, toolchain.toolchain())
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    assert cache.verified_entry(compiled.key) is None
    result, how = _run_c(program)
    assert how.startswith("built")
    np.testing.assert_array_equal(result, _expected(4.5))
    assert cache.verified_entry(compiled.key) == path


def test_entry_of_another_key_or_an_older_version_is_rebuilt(cache_path):
    program, compiled = _compiled(5.5)
    # another computation (a constant alone would not do: constants are parameters, and
    # Programs that differ only in them share one library)
    other = fjit.make_program(lambda x: fjit.numpy.exp(x) * 6.5)(np.ones(4, np.float32))
    other_compiled = backend.compile_program(other)
    assert other_compiled.key != compiled.key
    other_path = cache.build_into_cache(other_compiled.key, other_compiled.source,
                                        toolchain.toolchain())
    target = cache.entry_path(str(cache_path), compiled.key)
    shutil.copy(other_path, target)  # a stale entry: intact, but written under another key
    result, how = _run_c(program)
    assert how.startswith("built")
    np.testing.assert_array_equal(result, _expected(5.5))
    # a library as earlier fjit versions wrote it (no trailer) is not trusted either
    with open(target, "rb") as f:
        library = f.read()[:-cache._TRAILER.size]
    with open(target + ".new", "wb") as f:  # a new file: this process has `target` mapped
        f.write(library)
    os.replace(target + ".new", target)
    assert cache.verified_entry(compiled.key) is None
    assert _run_c(program)[1].startswith("built")


def test_an_entry_is_used_only_with_its_own_cache_secret(cache_path, tmp_path, set_option):
    program, compiled = _compiled(7.5)
    cache.build_into_cache(compiled.key, compiled.source, toolchain.toolchain())
    assert cache.verified_entry(compiled.key) is not None
    elsewhere = tmp_path / "copied"
    shutil.copytree(cache_path, elsewhere)
    os.unlink(elsewhere / ".fjit-secret")  # a cache copied in without the secret it was made
    set_option("cache_dir", str(elsewhere))  # under
    assert cache.verified_entry(compiled.key) is None


def _caught_cache_warnings(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    return result, [w for w in caught if issubclass(w.category, cache.CacheWarning)]


def _jit_twice(salt):
    """Two new Programs (`salt` makes them new to this process too) through jit."""
    a = fjit.jit(lambda x: x * 2.0 + salt)(np.ones(3, np.float32))
    b = fjit.jit(lambda x: x * 3.0 + salt)(np.ones(3, np.float32))
    return np.asarray(a).tolist() + np.asarray(b).tolist()


_DIRECTORY_FAULTS = ["world-writable", "group-writable", "not-ours", "parent-is-a-file",
                     "is-a-file", "read-only", "full"]


@pytest.mark.parametrize("fault", _DIRECTORY_FAULTS)
def test_unusable_cache_directory_falls_back_with_one_warning(fault, cache_path, monkeypatch,
                                                             set_option):
    if fault in ("world-writable", "group-writable", "not-ours"):
        os.makedirs(cache_path)
        os.chmod(cache_path, {"world-writable": 0o777, "group-writable": 0o770}.get(fault,
                                                                                      0o700))
        if fault == "not-ours":
            os.chown(cache_path, os.getuid() + 4242, -1)
    elif fault == "parent-is-a-file":  # root cannot create it either
        cache_path.parent.joinpath("file").write_text("")
        set_option("cache_dir", str(cache_path.parent / "file" / "fjit"))
    elif fault == "is-a-file":
        cache_path.write_text("")
    else:  # every write into the directory fails as on a read-only or full file system
        code = errno.EROFS if fault == "read-only" else errno.ENOSPC
        real_open = os.open

        def failing_open(path, flags, *args, **kwargs):
            if str(path).startswith(str(cache_path)) and flags & os.O_CREAT:
                raise OSError(code, os.strerror(code), str(path))
            return real_open(path, flags, *args, **kwargs)
        monkeypatch.setattr(os, "open", failing_open)
    salt = _DIRECTORY_FAULTS.index(fault) / 8
    values, caught = _caught_cache_warnings(lambda: _jit_twice(salt))
    assert values == [2 + salt] * 3 + [3 + salt] * 3
    assert len(caught) == 1, [str(w.message) for w in caught]
    directory = cache.cache_dir()
    assert cache.using_fallback(directory) and stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    if fault in ("world-writable", "group-writable", "not-ours"):
        assert not [p for p in cache_path.iterdir()], "wrote into a directory it refused"


@pytest.mark.parametrize("how", ["compiler", "rename"])
def test_cache_filling_up_during_a_build_falls_back(how, cache_path, monkeypatch):
    assert cache.cache_dir() == str(cache_path)  # usable at first
    if how == "compiler":
        real_compile = toolchain.Toolchain.compile

        def compile_(self, source_paths, output_path):
            if source_paths[0].startswith(str(cache_path)):
                raise toolchain.CompileError(f"cc1: fatal error: {output_path}: "
                                             "No space left on device")
            return real_compile(self, source_paths, output_path)
        monkeypatch.setattr(toolchain.Toolchain, "compile", compile_)
    else:
        real_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            if str(dst).startswith(str(cache_path)):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
            return real_replace(src, dst, *args, **kwargs)
        monkeypatch.setattr(os, "replace", replace)
    program, compiled = _compiled(8.5)
    (result, how_found), caught = _caught_cache_warnings(lambda: _run_c(program))
    np.testing.assert_array_equal(result, _expected(8.5))
    assert len(caught) == 1 and "No space left on device" in str(caught[0].message)
    assert cache.using_fallback(cache.cache_dir())
    assert [p.name for p in cache_path.iterdir()] == [".fjit-secret"]  # no temporary files


def test_temporary_files_are_removed_when_the_compiler_fails(cache_path):
    with pytest.raises(toolchain.CompileError):
        cache.build_into_cache("0" * 32, "this is not C", toolchain.toolchain())
    assert [p.name for p in cache_path.iterdir()] == [".fjit-secret"]


def test_leftovers_of_a_process_killed_during_a_build_are_removed(cache_path, run_fjit):
    code = """
        import os, signal
        from fjit.compiler import cache
        from fjit.compiler.targets.c import toolchain

        def compile_(self, source_path, output_path):
            open(output_path, "wb").write(b"half a library")
            os.kill(os.getpid(), signal.SIGKILL)  # killed while gcc runs
        toolchain.Toolchain.compile = compile_
        cache.build_into_cache("1" * 32, "int x;", toolchain.toolchain())
    """
    killed = run_fjit(code, cache_path)
    assert killed.returncode == -signal.SIGKILL
    left = sorted(p.name for p in cache_path.iterdir() if p.name.startswith(".tmp-"))
    assert [n.rsplit(".", 1)[-1] for n in left] == ["c", "so"], left
    # someone else's, fresh and alive, and an old one of another host
    alive = cache_path / f".tmp-{socket.gethostname()}-{os.getpid()}-abcd-{'2' * 32}.c"
    alive.write_text("")
    remote = cache_path / f".tmp-otherhost-1-abcd-{'3' * 32}.c"
    remote.write_text("")
    os.utime(remote, (1, 1))
    cache.sweep_leftovers(str(cache_path))  # what the next process does when it starts
    assert sorted(p.name for p in cache_path.iterdir() if p.name.startswith(".tmp-")) == \
        [alive.name]


def test_least_recently_used_entries_are_evicted_past_the_size_bound(cache_path,
                                                                     monkeypatch):
    tc = toolchain.toolchain()
    keys = [f"{k:032x}" for k in range(1, 6)]
    paths = [cache.build_into_cache(keys[0], "int fj_a(void) { return 0; }", tc)]
    size = os.path.getsize(paths[0])
    fjit.config.update("cache_max_size", 3 * size + size // 2)  # room for three
    try:
        for k, key in enumerate(keys[1:3], 1):
            paths.append(cache.build_into_cache(key, f"int fj_a(void) {{ return {k}; }}", tc))
        assert all(os.path.exists(p) for p in paths)
        for k, path in enumerate(paths):  # entry 0 is the oldest, then 1, 2
            os.utime(path, (1000 + k, 1000 + k))
        assert cache.verified_entry(keys[0])  # ... but a hit makes 0 the most recent
        paths.append(cache.build_into_cache(keys[3], "int fj_a(void) { return 3; }", tc))
        assert [os.path.exists(p) for p in paths] == [True, False, True, True]
        paths.append(cache.build_into_cache(keys[4], "int fj_a(void) { return 4; }", tc))
        assert [os.path.exists(p) for p in paths] == [True, False, False, True, True]
    finally:
        fjit.config.update("cache_max_size", 1 << 30)
    assert sum(os.path.getsize(p) for p in paths if os.path.exists(p)) <= 3 * size


@pytest.mark.parametrize("content", ["{}", "null", "[]", "garbage{", '"x"',
                                     '{"openmp": "yes", "vector_math": true, "march": "x"}',
                                     '{"openmp": true, "vector_math": true, "march": "$(rm)"}'])
def test_invalid_toolchain_metadata_is_probed_again(content, cache_path):
    tc = toolchain.toolchain()
    flags = [f for f in toolchain.BASE_FLAGS]
    good = toolchain._probe(tc.cc, tc.version, flags)
    (meta,) = cache_path.glob("toolchain-*.json")
    meta.write_text(content)
    again = toolchain._probe(tc.cc, tc.version, flags)
    assert again == good and isinstance(again, dict)
    assert json.loads(meta.read_text()) == good  # rewritten


def test_null_toolchain_metadata_does_not_switch_jit_to_the_reference_backend(tmp_path, run_fjit):
    assert run_fjit(_PROGRAM, tmp_path).returncode == 0
    for meta in tmp_path.glob("toolchain-*.json"):
        meta.write_text("null")
    for entry in tmp_path.glob("*.so"):
        entry.unlink()
    again = run_fjit(_PROGRAM, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "cache miss" in again.stderr and float(again.stdout) == 43.5
